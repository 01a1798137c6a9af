/* The training loop: data -> model forward/backward over the CP x TP teams -> gradient
 * all-reduce over the PEs holding the same slices -> clip by the full model's norm -> AdamW, with validation, metrics and the loss plot on PE 0.
 * Everything a step needs (token buffers, optimizer state, metric history) is allocated
 * before the first step. */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt/dir.h"
#include "longctx/trainer.h"
#include "train/ckpt_hooks.h"
#include "train/internal.h"

void lc_trainer_defaults(lc_trainer_opts *o)
{
    memset(o, 0, sizeof *o);
    lc_model_preset("small", &o->model);
    o->model_name = "small";
    o->seq_len = 16384;
    o->dp = o->cp = o->tp = 1;
    o->layout = LC_CP_ZIGZAG;
    o->cp_algo = LC_CP_RING;
    o->lowering = LC_LOWER_AUTO;
    o->compute = LC_DT_F32;
    o->doc_sep = LC_BYTE_DOC_SEP;
    o->steps = 50;
    o->accum = 1;
    o->lr = 3e-3f;
    o->lr_min = -1; /* lr / 10 */
    o->warmup = -1; /* steps / 10 */
    o->weight_decay = 0.1f;
    o->clip = 1.0f;
    o->beta1 = 0.9f;
    o->beta2 = 0.95f;
    o->eps = 1e-8f;
    o->seed = 1337;
    o->eval_every = -1; /* steps / 5 */
    o->eval_seqs = 8;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int lc_trainer_check(const lc_trainer_opts *o, int n_pes, char *err, size_t errlen)
{
    char e[256];
    if (lc_model_config_check(&o->model, e, sizeof e)) {
        snprintf(err, errlen, "model: %s", e);
        return LC_ERR_ARG;
    }
    int ord[3];
    if (lc_mesh_check(n_pes, o->dp, o->cp, o->tp, e, sizeof e) || lc_mesh_parse_order(o->mesh_order, ord, e, sizeof e)) {
        snprintf(err, errlen, "%s", e);
        return LC_ERR_ARG;
    }
    if (lc_model_tp_check(&o->model, o->tp, e, sizeof e)) {
        snprintf(err, errlen, "model: --tp %d: %s", o->tp, e);
        return LC_ERR_ARG;
    }
    if (o->sp && o->tp < 2) {
        snprintf(err, errlen, "--sp (sequence parallelism) needs --tp 2 or more (now --tp %d)", o->tp);
        return LC_ERR_ARG;
    }
    if (o->seq_len < 1 || o->seq_len > o->model.max_seq) {
        snprintf(err, errlen, "--seq %lld must be in [1, %lld] (the model's max_seq)", (long long)o->seq_len,
                 (long long)o->model.max_seq);
        return LC_ERR_ARG;
    }
    /* Every CP rank must own at least one real token under the layout. */
    int need = o->layout == LC_CP_ZIGZAG ? 2 * o->cp : o->cp;
    if (o->seq_len < need) {
        snprintf(err, errlen, "sequence too short for the layout: --seq %lld over CP %d with %s needs at least %d tokens",
                 (long long)o->seq_len, o->cp, lc_cp_layout_name(o->layout), need);
        return LC_ERR_ARG;
    }
    if (o->steps < 1 || o->accum < 1 || o->eval_seqs < 1) {
        snprintf(err, errlen, "--steps %lld, --accum %d and --eval-seqs %d must be >= 1", (long long)o->steps,
                 o->accum, o->eval_seqs);
        return LC_ERR_ARG;
    }
    if (!(o->lr > 0) || !(o->weight_decay >= 0) || !(o->clip >= 0)) {
        snprintf(err, errlen, "--lr %g must be > 0, --wd %g and --clip %g >= 0", o->lr, o->weight_decay, o->clip);
        return LC_ERR_ARG;
    }
    if (o->doc_mask && (o->doc_sep < 0 || o->doc_sep >= o->model.vocab)) {
        snprintf(err, errlen, "--doc-sep %d is not a token of vocab %d", o->doc_sep, o->model.vocab);
        return LC_ERR_ARG;
    }
    if (lc_train__ckpt_check(o, err, errlen)) return LC_ERR_ARG;
    const char *paths[2] = {o->train_path, o->val_path};
    for (int i = 0; i < 2; i++) {
        if (!paths[i]) continue;
        lc_tokfile *f;
        if (lc_tokfile_open(paths[i], o->model.vocab, o->seq_len + 1, &f)) {
            snprintf(err, errlen, "%s", lc_train_last_error());
            return LC_ERR_ARG;
        }
        lc_tokfile_close(f);
    }
    return LC_OK;
}

typedef struct {
    int32_t *tok, *tgt, *doc;
} seqbuf;

/* Mean validation loss over eval_seqs sequences in file order, split over DP ranks. */
static int evaluate(lc_model *m, lc_loader *val, const lc_mesh *mesh, const lc_trainer_opts *o, seqbuf *b,
                    double *out)
{
    double acc[2] = {0, 0}, sum[2];
    int64_t n = o->eval_seqs < lc_loader_n_windows(val) ? o->eval_seqs : lc_loader_n_windows(val);
    for (int64_t g = mesh->dp_rank; g < n; g += mesh->dp) {
        float loss;
        lc_loader_sample(val, g, b->tok, b->tgt, o->doc_mask ? b->doc : NULL);
        int rc = lc_model_forward(m, b->tok, b->tgt, o->doc_mask ? b->doc : NULL, &loss);
        if (rc) return lc_train__fail(rc, "validation forward: %s", lc_model_last_error(m));
        acc[0] += loss;
        acc[1] += 1;
    }
    /* Every CP rank holds the same loss: sum over my DP column only. The ranks that had no
     * sequence still join the collective, with zeros. */
    int rc = lc_allreduce_sum_f64(mesh->dp_team, sum, acc, 2);
    if (rc) return lc_train__fail(rc, "validation all-reduce: %s", lc_last_error(lc_team_get_world(mesh->world)));
    *out = sum[1] > 0 ? sum[0] / sum[1] : NAN;
    return LC_OK;
}

static void fmt_eta(double s, char *buf, size_t n)
{
    if (!(s >= 0) || s > 1e7) snprintf(buf, n, "?");
    else if (s >= 3600) snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60) snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(buf, n, "%.0fs", s);
}

static void json_num(FILE *f, const char *key, double v, int last)
{
    if (isfinite(v)) fprintf(f, "\"%s\":%.9g%s", key, v, last ? "" : ",");
    else fprintf(f, "\"%s\":null%s", key, last ? "" : ",");
}

/* The full model of a params-shaped flat buffer, HF tensors in table order (the one-PE layout
 * whatever the mesh), to path: gathered over PE 0's TP team, written by PE 0. */
static int dump_full(lc_model *m, const lc_mesh *mesh, const float *flat, const char *path)
{
    if (mesh->dp_rank != 0 || mesh->cp_rank != 0) return LC_OK;
    FILE *f = mesh->tp_rank == 0 ? fopen(path, "wb") : NULL;
    int ok = mesh->tp_rank != 0 || f != NULL;
    float *full = NULL;
    size_t cap = 0;
    for (int i = 0; i < lc_model_n_tensors(m); i++) {
        int64_t sh[2];
        size_t n = lc_model_tensor_full_shape(m, i, sh);
        if (n > cap) {
            float *p = realloc(full, n * sizeof *full);
            if (!p) {
                free(full);
                if (f) fclose(f);
                return lc_train__fail(LC_ERR_SYS, "out of memory dumping %s", path);
            }
            full = p, cap = n;
        }
        int rc = lc_model_gather_tensor(m, i, flat, full);
        if (rc) {
            free(full);
            if (f) fclose(f);
            return lc_train__fail(rc, "dumping %s: %s", path, lc_model_last_error(m));
        }
        if (f && fwrite(full, sizeof *full, n, f) != n) ok = 0;
    }
    free(full);
    if (f && fclose(f)) ok = 0;
    if (!ok) fprintf(stderr, "train: cannot write %s\n", path);
    return LC_OK;
}

int lc_trainer_run(lc_world *w, const lc_trainer_opts *o)
{
    lc_team *world = lc_team_world(w);
    const int me = lc_my_pe(w), n_pes = lc_n_pes(w);
    char err[512];
    int rc;
    /* 1. Checks every PE makes identically (the same files, the same flags). */
    if ((rc = lc_trainer_check(o, n_pes, err, sizeof err))) return lc_train__fail(rc, "%s", err);

    lc_mesh mesh;
    if ((rc = lc_mesh_create_ordered(world, o->dp, o->cp, o->tp, o->mesh_order, &mesh))) return rc;
    lc_model *m = NULL;
    lc_tokfile *ftrain = NULL, *fval = NULL;
    lc_loader *ltrain = NULL, *lval = NULL;
    lc_adamw *opt = NULL;
    seqbuf b = {0};
    double *hist = NULL;
    FILE *jf = NULL;
    int local_bad = 0;

    const int threads = o->threads > 0 ? o->threads : lc_cores_per_pe(lc_team_get_world(world));
    (void)n_pes;
    lc_model_run run = {mesh.cp_team, o->seq_len, o->layout, o->cp_algo, o->lowering, o->compute,
                        o->doc_mask, threads, o->recompute, o->tp > 1 ? mesh.tp_team : NULL, o->sp};
    if ((rc = lc_model_create(&o->model, &run, &m))) {
        lc_train__fail(rc, "%s", lc_model_last_error(NULL));
        goto out;
    }
    if ((rc = lc_model_init_params(m, o->seed))) {
        lc_train__fail(rc, "init: %s", lc_model_last_error(m));
        goto out;
    }
    const size_t np = lc_model_n_params(m);
    lc_adamw_config ac = {o->beta1, o->beta2, o->eps, o->weight_decay};
    if ((rc = lc_adamw_create(np, &ac, &opt))) goto out;
    for (int i = 0; i < lc_model_n_tensors(m); i++) {
        const lc_model_tensor *t = lc_model_tensor_at(m, i);
        if ((rc = lc_adamw_set_decay(opt, t->offset, t->numel, t->decay))) goto out;
    }
    lc_loader_config lct = {o->seq_len, o->seed, mesh.dp_rank, mesh.dp, 1, o->doc_mask ? o->doc_sep : -1};
    lc_loader_config lcv = {o->seq_len, 0, 0, 1, 0, o->doc_mask ? o->doc_sep : -1};
    if ((rc = lc_tokfile_open(o->train_path, o->model.vocab, o->seq_len + 1, &ftrain)) ||
        (rc = lc_loader_create(ftrain, &lct, &ltrain)))
        goto out;
    if (o->val_path && ((rc = lc_tokfile_open(o->val_path, o->model.vocab, o->seq_len + 1, &fval)) ||
                        (rc = lc_loader_create(fval, &lcv, &lval))))
        goto out;
    size_t S = (size_t)o->seq_len;
    b.tok = malloc(S * sizeof *b.tok);
    b.tgt = malloc(S * sizeof *b.tgt);
    b.doc = malloc(S * sizeof *b.doc);
    hist = calloc((size_t)o->steps * 4, sizeof *hist); /* train step, loss, val step, val loss */
    if (!b.tok || !b.tgt || !b.doc || !hist) {
        rc = lc_train__fail(LC_ERR_SYS, "out of memory for the step buffers");
        goto out;
    }
    int64_t steps = o->steps;
    /* With a time budget the total is known only after two steps: warm up over those two. */
    const int64_t warmup = o->warmup >= 0 ? o->warmup : o->time_budget_s > 0 ? 2 : o->steps / 10;
    const float lr_min = o->lr_min >= 0 ? o->lr_min : o->lr / 10;
    int eval_every = o->eval_every >= 0 ? o->eval_every : (int)(o->steps / 5 > 0 ? o->steps / 5 : 1);

    /* 2. The machine's limit, measured now: one core's FMA peak (max over PEs, each on its core). */
    double peak = o->peak_gflops_core;
    if (!(peak > 0) && o->peak_fn) {
        double mine = o->peak_fn();
        if ((rc = lc_allreduce_max_f64(world, &peak, &mine, 1))) goto coll_fail;
    }
    long onln = sysconf(_SC_NPROCESSORS_ONLN);
    double cores = (double)threads * n_pes;
    if (onln > 0 && cores > (double)onln) cores = (double)onln;
    const double flops_tok = lc_model_flops_per_token(&o->model, o->seq_len);
    const double tokens_step = (double)o->seq_len * o->accum * o->dp;

    if (me == 0) {
        if (o->out_dir) {
            if (lc_ckpt__mkdirs(o->out_dir)) {
                local_bad = 1;
                lc_train__fail(LC_ERR_SYS, "cannot create --out %s: %s", o->out_dir, strerror(errno));
            } else {
                char p[4096];
                snprintf(p, sizeof p, "%s/metrics.jsonl", o->out_dir);
                if (!(jf = fopen(p, "w"))) {
                    local_bad = 1;
                    lc_train__fail(LC_ERR_SYS, "cannot create %s: %s", p, strerror(errno));
                }
            }
        }
        if (!o->quiet) {
            const lc_model_config *c = &o->model;
            printf("train: %s (%d layers, dim %d, heads %d/%d, ffn %d, vocab %d; %.2fM params), seq %lld, "
                   "batch %d x %d seqs (%.0f tokens/step)\n",
                   o->model_name ? o->model_name : "custom", c->n_layers, c->dim, c->n_heads, c->n_kv_heads,
                   c->ffn_dim, c->vocab, (double)np / 1e6, (long long)o->seq_len, o->dp, o->accum, tokens_step);
            static const char *const ax[3] = {"tp", "cp", "dp"};
            printf("train: mesh DP %d x CP %d x TP %d%s on %d PEs (shm; order %s,%s,%s innermost first), %d thread%s "
                   "per PE; CP %s, %s layout, %s lowering; %s compute%s%s\n",
                   o->dp, o->cp, o->tp, o->sp ? " +SP" : "", n_pes, ax[mesh.order[0]], ax[mesh.order[1]],
                   ax[mesh.order[2]], threads, threads == 1 ? "" : "s", o->cp_algo == LC_CP_RING ? "ring" : "all-gather",
                   lc_cp_layout_name(o->layout), lc_lowering_name(o->lowering), lc_dtype_name(o->compute),
                   o->recompute ? ", recompute" : "", o->doc_mask ? ", packed-document masking" : "");
            printf("train: data %s (%lld tokens, %lld sequences)%s%s; AdamW lr %.3g -> %.3g (warmup %lld), wd %g, "
                   "clip %g, seed %llu\n",
                   o->train_path, (long long)lc_tokfile_n_tokens(ftrain), (long long)lc_loader_n_windows(ltrain),
                   fval ? ", val " : "", fval ? o->val_path : "", o->lr, lr_min, (long long)warmup,
                   o->weight_decay, o->clip, (unsigned long long)o->seed);
            if (peak > 0)
                printf("train: FMA peak %.1f GFLOP/s per core (%s), %.0f core%s -> MFU against %.1f "
                       "GFLOP/s; %.3g model FLOPs per token\n",
                       peak, o->peak_gflops_core > 0 ? "given by --peak" : "measured now", cores, cores == 1 ? "" : "s", peak * cores, flops_tok);
            fflush(stdout);
        }
    }
    /* Nobody steps unless everybody could set up. */
    {
        double bad = local_bad, any;
        if ((rc = lc_allreduce_max_f64(world, &any, &bad, 1))) goto coll_fail;
        if (any > 0) {
            rc = local_bad ? LC_ERR_SYS : lc_train__fail(LC_ERR_ABORT, "PE 0 could not set up its output");
            goto out;
        }
    }

    /* Resume or init-from: after every buffer exists, before the first step. */
    int64_t start_step = 0;
    if ((rc = lc_train__ckpt_begin(o, m, opt, ltrain, &mesh, &start_step))) goto out;

    /* 3. The loop. */
    float *params = lc_model_params(m), *grads = lc_model_grads(m);
    const float grad_scale = 1.0f / (float)(o->accum * o->dp);
    double t_start = now(), t_steps = 0;
    int n_val = 0;
    lc_model_reset_times(m);
    for (int64_t step = start_step; step < steps; step++) {
        double t0 = now();
        lc_model_zero_grads(m);
        double loss_sum = 0;
        for (int a = 0; a < o->accum; a++) {
            float loss;
            lc_loader_next(ltrain, b.tok, b.tgt, o->doc_mask ? b.doc : NULL);
            if ((rc = lc_model_forward_backward(m, b.tok, b.tgt, o->doc_mask ? b.doc : NULL, grad_scale, &loss))) {
                lc_train__fail(rc, "step %lld: forward/backward: %s", (long long)step, lc_model_last_error(m));
                goto out;
            }
            loss_sum += loss;
        }
        if ((rc = lc_mesh_allreduce_grads(&mesh, grads, np))) goto coll_fail;
        if (step == 0 && o->dump_grads && (rc = dump_full(m, &mesh, grads, o->dump_grads))) goto out;
        double norm;
        if (o->tp == 1) norm = lc_global_norm(grads, np);
        else if ((rc = lc_model_global_norm(m, grads, &norm))) {
            lc_train__fail(rc, "gradient norm: %s", lc_model_last_error(m));
            goto out;
        }
        float lr = lc_lr_at(step, warmup, steps, o->lr, lr_min);
        lc_adamw_step(opt, params, grads, lr, lc_clip_factor(norm, o->clip));
        double stats[2] = {loss_sum, (double)lc_peak_rss_bytes()}, red[2];
        if ((rc = lc_allreduce_sum_f64(mesh.dp_team, red, stats, 1))) goto coll_fail;
        if ((rc = lc_allreduce_max_f64(world, red + 1, stats + 1, 1))) goto coll_fail;
        double loss = red[0] / (o->accum * o->dp);
        double dt = now() - t0;
        t_steps += dt;
        if (!isfinite(loss) || !isfinite(norm)) {
            rc = lc_train__fail(LC_ERR_ARG, "step %lld: the loss (%g) or gradient norm (%g) is not finite; "
                                "lower --lr (now %g) or raise --warmup",
                                (long long)step, loss, norm, o->lr);
            goto out;
        }
        double val = NAN;
        int do_eval = lval && ((eval_every > 0 && (step + 1) % eval_every == 0) || step + 1 == steps);
        if (do_eval && (rc = evaluate(m, lval, &mesh, o, &b, &val))) goto out;
        double tps = tokens_step / dt, mfu = peak > 0 ? flops_tok * tps / (peak * 1e9 * cores) : NAN;
        hist[step * 2] = (double)(step + 1);
        hist[step * 2 + 1] = loss;
        if (do_eval) {
            hist[2 * o->steps + n_val * 2] = (double)(step + 1);
            hist[2 * o->steps + n_val * 2 + 1] = val;
            n_val++;
        }
        if (me == 0) {
            if (!o->quiet) {
                char eta[32];
                fmt_eta((now() - t_start) / (double)(step + 1 - start_step) * (double)(steps - step - 1), eta, sizeof eta);
                printf("step %5lld/%lld | loss %.4f | lr %.2e | norm %6.3f | %8.0f tok/s | MFU %5.1f%% | %6.2f s/step | ETA %s",
                       (long long)step + 1, (long long)steps, loss, lr, norm, tps, 100 * mfu, dt, eta);
                if (do_eval) printf(" | val %.4f", val);
                printf("\n");
                fflush(stdout);
            }
            if (jf) {
                fprintf(jf, "{\"step\":%lld,", (long long)step + 1);
                json_num(jf, "loss", loss, 0);
                json_num(jf, "val_loss", val, 0);
                json_num(jf, "lr", lr, 0);
                json_num(jf, "grad_norm", norm, 0);
                json_num(jf, "tokens_per_s", tps, 0);
                json_num(jf, "mfu", mfu, 0);
                json_num(jf, "step_s", dt, 0);
                json_num(jf, "peak_mem_bytes", red[1], 1);
                fprintf(jf, "}\n");
                fflush(jf);
            }
        }
        if (o->time_budget_s > 0 && step >= start_step + 1 && step + 1 < steps) {
            /* Fit the rest into the budget from the pace so far (evaluations included); only
             * ever shorten. PE 0's clock decides so that every PE agrees on the total. */
            double el = now() - t_start, per = el / (double)(step + 1 - start_step); /* this run's pace */
            double want = (double)(step + 1) + floor(fmax(0, o->time_budget_s - el) / per), fit;
            if ((rc = lc_allreduce_max_f64(world, &fit, me == 0 ? &want : (double[]){0}, 1))) goto coll_fail;
            if (fit < 3) fit = 3;
            if (fit < (double)steps) {
                if (me == 0 && !o->quiet && (step == 1 || fit < (double)steps - 1)) {
                    printf("train: --time-budget %.0f s at %.1f s/step: %lld steps instead of %lld\n",
                           o->time_budget_s, per, (long long)fit, (long long)steps);
                    fflush(stdout);
                }
                steps = (int64_t)fit;
                if (o->eval_every < 0) eval_every = (int)(steps / 5 > 0 ? steps / 5 : 1);
            }
        }
        if (o->save_dir && ((o->save_every > 0 && (step + 1) % o->save_every == 0) || step + 1 == steps) &&
            (rc = lc_train__ckpt_save(o, m, opt, ltrain, &mesh, step + 1, steps, warmup, lr_min)))
            goto out;
    }
    /* 4. The end: time split, the plot, the parameters for comparisons. */
    if (me == 0) {
        lc_model_times tm;
        lc_model_get_times(m, &tm);
        double total = now() - t_start;
        if (!o->quiet) {
            double tt = tm.total_s > 0 ? tm.total_s : 1;
            printf("train: %lld steps in %.1f s (%.0f tokens/s); PE 0 step time: matmul %.0f%%, attention %.0f%%, "
                   "CP communication %.0f%%, TP communication %.0f%%, other %.0f%%; peak memory %.1f MiB per PE (max)\n",
                   (long long)steps, total, tokens_step * (double)steps / t_steps, 100 * tm.matmul_s / tt,
                   100 * tm.attn_s / tt, 100 * tm.comm_s / tt, 100 * tm.tp_comm_s / tt, 100 * tm.other_s / tt,
                   (double)lc_peak_rss_bytes() / 1048576.0);
        }
        if (o->out_dir) {
            char p[4096], title[160];
            snprintf(p, sizeof p, "%s/loss.png", o->out_dir);
            snprintf(title, sizeof title, "%s  seq %lld  dp %d x cp %d x tp %d%s  %s", o->model_name ? o->model_name : "custom",
                     (long long)o->seq_len, o->dp, o->cp, o->tp, o->sp ? " +sp" : "", lc_dtype_name(o->compute));
            double *xs = malloc((size_t)(steps + n_val) * 2 * sizeof *xs);
            if (xs) {
                double *ys = xs + steps, *vx = ys + steps, *vy = vx + n_val;
                /* a resumed run has the steps from start_step on */
                for (int64_t i = start_step; i < steps; i++)
                    xs[i - start_step] = hist[2 * i], ys[i - start_step] = hist[2 * i + 1];
                for (int i = 0; i < n_val; i++) vx[i] = hist[2 * o->steps + 2 * i], vy[i] = hist[2 * o->steps + 2 * i + 1];
                lc_plot_series se[2] = {{xs, ys, (int)(steps - start_step), {31, 119, 180}, "train"},
                                        {vx, vy, n_val, {214, 39, 40}, "val"}};
                if (lc_plot_png(p, 800, 480, title, "step", "loss (nats/token)", se, n_val ? 2 : 1))
                    fprintf(stderr, "train: %s\n", lc_train_last_error());
                else if (!o->quiet)
                    printf("train: wrote %s/metrics.jsonl and %s\n", o->out_dir, p);
                free(xs);
            }
        }
    }
    if (o->dump_params && (rc = dump_full(m, &mesh, params, o->dump_params))) goto out;
    rc = LC_OK;
    goto out;
coll_fail:
    lc_train__fail(rc, "collective failed: %s", lc_last_error(w));
out:
    if (rc && rc != LC_ERR_ABORT && n_pes > 1 && m) {
        /* A failure after setup may be mine alone: make sure nobody waits for me. */
        snprintf(err, sizeof err, "PE %d: %s", me, lc_train_last_error());
        lc_world_abort(w, err);
    }
    if (jf) fclose(jf);
    free(hist);
    free(b.tok);
    free(b.tgt);
    free(b.doc);
    lc_adamw_destroy(opt);
    lc_loader_destroy(ltrain);
    lc_loader_destroy(lval);
    lc_tokfile_close(ftrain);
    lc_tokfile_close(fval);
    /* Both are collective: after a failure only a world of one can still release them (the
     * others end their process). */
    if (m && (rc == LC_OK || n_pes == 1)) lc_model_destroy(m);
    if (rc == LC_OK || n_pes == 1) lc_mesh_destroy(&mesh);
    return rc;
}
