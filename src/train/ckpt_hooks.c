/* The trainer's checkpoint hooks: resume / init-from before the first step, saves after
 * steps. Kept out of trainer.c so that the loop stays readable; the work is in src/ckpt. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "longctx/ckpt.h"
#include "train/ckpt_hooks.h"
#include "train/internal.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

__attribute__((format(printf, 4, 5))) static int conflict(char *err, size_t len, const char *ck, const char *fmt, ...)
{
    int n = snprintf(err, len, "%s was written with ", ck);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < len) vsnprintf(err + n, len - (size_t)n, fmt, ap);
    va_end(ap);
    return LC_ERR_ARG;
}

int lc_trainer_resume_check(const lc_trainer_opts *o, const lc_ckpt_state *st, const char *ck, const lc_tokfile *train,
                            char *err, size_t errlen)
{
    /* each conflict names the flag, both values and, where it is not plain, why it matters */
#define CONFLICT(...) return conflict(err, errlen, ck, __VA_ARGS__)
    if (st->seq_len != o->plan.seq_len)
        CONFLICT("--seq %lld, this run has %lld (the data position counts sequences of that length)",
                 (long long)st->seq_len, (long long)o->plan.seq_len);
    if (st->seed != o->seed)
        CONFLICT("--seed %llu, this run has %llu (the data order follows the seed)", (unsigned long long)st->seed,
                 (unsigned long long)o->seed);
    if (st->weight_decay != o->weight_decay)
        CONFLICT("--wd %g, this run has %g (AdamW's decay)", (double)st->weight_decay, (double)o->weight_decay);
    if (o->warmup >= 0 && st->total_steps > 0 && st->warmup != o->warmup)
        CONFLICT("--warmup %lld, this run has %lld (the schedule goes on as saved)", (long long)st->warmup,
                 (long long)o->warmup);
    if (!st->has_run) return LC_OK; /* format 1 recorded no more */
    const char *dt = lc_dtype_name(o->compute);
    if (strcmp(st->dtype, dt)) CONFLICT("--dtype %s, this run has %s", st->dtype, dt);
    if (st->doc_mask != o->doc_mask)
        CONFLICT("%s, this run %s (which tokens see each other)", st->doc_mask ? "--doc-mask" : "no --doc-mask",
                 o->doc_mask ? "has --doc-mask" : "has none");
    if (st->window != o->window)
        CONFLICT("--window %lld, this run has %lld (which tokens see each other)", (long long)st->window,
                 (long long)o->window);
    if (st->doc_mask && st->doc_sep != o->doc_sep)
        CONFLICT("--doc-sep %d, this run has %d (where documents end)", st->doc_sep, o->doc_sep);
    if (st->clip != o->clip) CONFLICT("--clip %g, this run has %g", (double)st->clip, (double)o->clip);
    const int64_t gb = (int64_t)o->plan.dp * o->accum;
    if (st->global_batch != gb)
        CONFLICT("%lld sequences per step (--dp %d x --accum %d), this run has %lld (--dp %d x --accum %d): give an "
                 "--accum that keeps %lld", (long long)st->global_batch, st->dp, st->accum, (long long)gb, o->plan.dp,
                 o->accum, (long long)st->global_batch);
    if (train && (lc_tokfile_n_tokens(train) != st->train_tokens || lc_tokfile_fingerprint(train) != st->train_fingerprint))
        CONFLICT("--train %s (%lld tokens, fingerprint %016llx), this run's %s holds other tokens (%lld, %016llx)",
                 st->train_path, (long long)st->train_tokens, (unsigned long long)st->train_fingerprint,
                 lc_tokfile_path(train), (long long)lc_tokfile_n_tokens(train),
                 (unsigned long long)lc_tokfile_fingerprint(train));
#undef CONFLICT
    return LC_OK;
}

int lc_train__ckpt_check(const lc_trainer_opts *o, char *err, size_t errlen)
{
    if (o->resume && o->init_from) {
        snprintf(err, errlen, "--resume and --init-from exclude each other (resume continues a run; init-from starts one)");
        return LC_ERR_ARG;
    }
    if (o->resume && !o->resume[0] && !o->save_dir) {
        snprintf(err, errlen, "--resume without a folder needs --save-dir");
        return LC_ERR_ARG;
    }
    if (o->save_every < 0 || o->keep < 0) {
        snprintf(err, errlen, "--save-every %lld and --keep %d must be >= 0", (long long)o->save_every, o->keep);
        return LC_ERR_ARG;
    }
    if (o->save_every > 0 && !o->save_dir) {
        snprintf(err, errlen, "--save-every needs --save-dir");
        return LC_ERR_ARG;
    }
    if (o->keep > 0 && !o->save_dir) {
        snprintf(err, errlen, "--keep needs --save-dir");
        return LC_ERR_ARG;
    }
    return LC_OK;
}

int lc_train__ckpt_begin(const lc_trainer_opts *o, lc_model *m, lc_adamw *opt, lc_loader *l, const lc_tokfile *train,
                         const lc_mesh *mesh, int64_t *start_step, int64_t *sched_steps, int64_t *sched_warmup)
{
    *start_step = 0;
    if (!o->resume && !o->init_from) return LC_OK;
    char path[4096];
    int rc = LC_OK;
    lc_ckpt_state st;
    double t0 = now();
    if (o->init_from) {
        snprintf(path, sizeof path, "%s", o->init_from);
        if (lc_ckpt_load_hf(m, path, o->rope_theta_set)) rc = lc_train__fail(LC_ERR_ARG, "--init-from: %s", lc_ckpt_last_error());
    } else {
        const char *dir = o->resume[0] ? o->resume : o->save_dir;
        /* leftovers of a writer that died mid-save are never candidates; PE 0 removes them */
        if (lc_team_my_pe(mesh->world) == 0) lc_ckpt_clean_tmp(dir);
        if (lc_ckpt_find_latest(dir, path, sizeof path))
            rc = lc_train__fail(LC_ERR_ARG, "--resume: %s", lc_ckpt_last_error());
        else if (lc_ckpt_load(m, opt, path, o->rope_theta_set, &st))
            rc = lc_train__fail(LC_ERR_ARG, "--resume: %s", lc_ckpt_last_error());
        else {
            char why[1024];
            if (lc_trainer_resume_check(o, &st, path, train, why, sizeof why))
                rc = lc_train__fail(LC_ERR_ARG, "--resume: %s", why);
        }
        /* The loader commits only after the model and optimizer did (lc_ckpt_load staged). */
        if (!rc) {
            lc_loader_set_position(l, st.data_position);
            *start_step = st.step;
            /* the schedule the run was on (a checkpoint without one keeps the caller's) */
            if (st.total_steps > 0) {
                *sched_steps = st.total_steps;
                *sched_warmup = st.warmup;
            }
        }
    }
    /* Every PE read the files itself; nobody steps unless everybody loaded. The lowest PE that
     * could not speaks for all (they usually fail alike, and one line says it): every PE takes
     * its message, so each returns the same error and the CLI prints it once. */
    lc_team *world = mesh->world;
    const int me = lc_team_my_pe(world), n = lc_team_n_pes(world);
    double mine = rc ? (double)me : (double)n, first;
    int crc = lc_allreduce_max_f64(world, &first, &(double){-mine}, 1);
    if (crc) return lc_train__fail(crc, "checkpoint load status all-reduce failed");
    int who = (int)-first;
    if (who < n) {
        char mine_msg[512] = "", msg[512];
        snprintf(mine_msg, sizeof mine_msg, "%s", lc_train_last_error());
        if ((crc = lc_broadcast(world, msg, mine_msg, sizeof msg, who)))
            return lc_train__fail(crc, "sharing PE %d's checkpoint error failed", who);
        msg[sizeof msg - 1] = 0;
        return lc_train__fail_agreed(who, rc ? rc : LC_ERR_ARG, "PE %d: %s", who, msg);
    }
    if (lc_team_my_pe(mesh->world) == 0 && !o->quiet) {
        if (o->init_from)
            printf("train: initialised from %s (%.2f s)\n", path, now() - t0);
        else
            printf("train: resumed from %s at step %lld, data position %lld (%s written under DP %d x CP %d x TP %d, "
                   "%s; %.2f s)\n", path, (long long)st.step, (long long)st.data_position, st.model_name, st.dp, st.cp,
                   st.tp, st.layout, now() - t0);
        fflush(stdout);
    }
    return LC_OK;
}

int lc_train__ckpt_save(const lc_trainer_opts *o, lc_model *m, lc_adamw *opt, lc_loader *l, const lc_tokfile *train,
                        const lc_mesh *mesh, int64_t steps_done, int64_t total_steps, int64_t warmup, float lr_min)
{
    lc_ckpt_state st;
    memset(&st, 0, sizeof st);
    st.step = steps_done;
    st.data_position = lc_loader_position(l);
    st.optimizer_steps = lc_adamw_steps(opt);
    st.seed = o->seed;
    st.total_steps = total_steps;
    st.warmup = warmup;
    st.lr = o->lr;
    st.lr_min = lr_min;
    st.beta1 = o->beta1;
    st.beta2 = o->beta2;
    st.eps = o->eps;
    st.weight_decay = o->weight_decay;
    st.seq_len = o->plan.seq_len;
    st.dp = mesh->dp;
    st.cp = mesh->cp;
    st.tp = mesh->tp;
    snprintf(st.layout, sizeof st.layout, "%s", lc_cp_layout_name(o->plan.layout));
    snprintf(st.model_name, sizeof st.model_name, "%s", o->model_name ? o->model_name : "custom");
    st.has_run = 1;
    snprintf(st.dtype, sizeof st.dtype, "%s", lc_dtype_name(o->compute));
    if (o->compute == LC_DT_BF16) snprintf(st.bf16_dot, sizeof st.bf16_dot, "%s", lc_bf16_dot_name(lc_attn_bf16_dot()));
    st.doc_mask = o->doc_mask;
    st.doc_sep = o->doc_sep;
    st.window = o->window;
    st.ulysses = o->plan.algo == LC_CP_HYBRID ? o->plan.ulysses : 0;
    snprintf(st.cp_algo, sizeof st.cp_algo, "%s", lc_cp_algo_name(o->plan.algo));
    snprintf(st.lowering, sizeof st.lowering, "%s", lc_lowering_name(o->plan.lowering));
    st.accum = o->accum;
    st.global_batch = (int64_t)mesh->dp * o->accum;
    st.clip = o->clip;
    snprintf(st.train_path, sizeof st.train_path, "%s", o->train_path);
    snprintf(st.val_path, sizeof st.val_path, "%s", o->val_path ? o->val_path : "");
    st.train_tokens = lc_tokfile_n_tokens(train);
    st.train_fingerprint = lc_tokfile_fingerprint(train);
    const int me = lc_team_my_pe(mesh->world);
    lc_ckpt_save_opts so = {mesh->world, me == 0, mesh->dp_rank == 0 && mesh->cp_rank == 0, o->keep};
    double t0 = now();
    int rc = lc_ckpt_save(m, opt, &st, o->save_dir, &so);
    if (rc) return lc_train__fail(rc, "%s", lc_ckpt_last_error());
    if (me == 0 && !o->quiet) {
        printf("train: saved %s/step-%08lld (%.2f s)\n", o->save_dir, (long long)steps_done, now() - t0);
        fflush(stdout);
    }
    return LC_OK;
}
