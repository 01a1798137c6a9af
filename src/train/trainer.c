/* The training loop: data -> model forward/backward over the CP x TP teams -> gradient
 * all-reduce over the PEs holding the same slices -> clip by the full model's norm -> AdamW, with validation, metrics and the loss plot on PE 0.
 * Everything a step needs (token buffers, optimizer state, metric history) is allocated
 * before the first step. */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "longctx/ckpt.h"
#include "longctx/trainer.h"
#include "train/ckpt_hooks.h"
#include "longctx/train_cuda.h"
#include "train/internal.h"

void lc_trainer_defaults(lc_trainer_opts *o)
{
    memset(o, 0, sizeof *o);
    lc_model_preset("small", &o->model);
    o->model_name = "small";
    lc_plan_init(&o->plan); /* one PE, zigzag ring, auto lowering */
    o->plan.seq_len = 16384;
    o->compute = LC_DT_F32;
    o->bf16_dot = LC_BF16_DOT_AUTO;
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

int lc_trainer_on_gpu(const lc_trainer_opts *o) { return o->device && !strcmp(o->device, "cuda"); }

int lc_trainer_check(const lc_trainer_opts *o, int n_pes, char *err, size_t errlen)
{
    char e[256];
    if (lc_model_config_check(&o->model, e, sizeof e)) {
        snprintf(err, errlen, "model: %s", e);
        return LC_ERR_ARG;
    }
    /* The plan is validated here, once; the model and lc_cp ask lc_plan_fits over their own
     * team rather than repeating the rule. */
    if (lc_plan_validate(&o->plan, n_pes, err, errlen)) return LC_ERR_ARG;
    if (lc_model_tp_check(&o->model, o->plan.tp, e, sizeof e)) {
        snprintf(err, errlen, "model: --tp %d: %s", o->plan.tp, e);
        return LC_ERR_ARG;
    }
    const int uly = lc_plan_ulysses_degree(&o->plan), tp = o->plan.tp;
    if (uly > 1 && lc_plan_heads_split(o->model.n_heads / tp, o->model.n_kv_heads % tp ? 1 : o->model.n_kv_heads / tp,
                                       uly, e, sizeof e)) {
        snprintf(err, errlen, "model: --cp-algo %s over %d PEs: %s", lc_cp_algo_name(o->plan.algo), uly, e);
        return LC_ERR_ARG;
    }
    if (o->plan.seq_len > o->model.max_seq) {
        snprintf(err, errlen, "--seq %lld must be in [1, %lld] (the model's max_seq)", (long long)o->plan.seq_len,
                 (long long)o->model.max_seq);
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
    if (o->device && strcmp(o->device, "cpu") && strcmp(o->device, "cuda")) {
        snprintf(err, errlen, "--device %s: cpu or cuda", o->device);
        return LC_ERR_ARG;
    }
    if (lc_trainer_on_gpu(o) && o->plan.tp > 1) {
        snprintf(err, errlen, "--device cuda runs DP x CP; --tp %d: tensor parallelism runs on the CPU only (its "
                              "collectives on the GPU are not written)",
                 o->plan.tp);
        return LC_ERR_ARG;
    }
    if (lc_trainer_on_gpu(o) && o->plan.balance == LC_CP_BALANCE_MASK) {
        snprintf(err, errlen, "--device cuda: --balance mask moves rows between steps, which the GPU ring does not "
                              "follow; use --balance tokens");
        return LC_ERR_ARG;
    }
    if (lc_train__ckpt_check(o, err, errlen)) return LC_ERR_ARG;
    const char *paths[2] = {o->train_path, o->val_path};
    for (int i = 0; i < 2; i++) {
        if (!paths[i]) continue;
        lc_tokfile *f;
        if (lc_tokfile_open(paths[i], o->model.vocab, o->plan.seq_len + 1, &f)) {
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

/* ,"key":v (null when not finite): every field after the first ("step") starts with its comma,
 * so optional fields cannot leave the line malformed */
static void json_num(FILE *f, const char *key, double v)
{
    if (isfinite(v)) fprintf(f, ",\"%s\":%.9g", key, v);
    else fprintf(f, ",\"%s\":null", key);
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

/* Everything one run holds, from set-up to the report. */
typedef struct {
    const lc_trainer_opts *o;
    const lc_plan *plan; /* the options' plan, validated once; the model holds it too */
    lc_world *w;
    int me, n_pes, threads;
    lc_mesh mesh;
    int have_mesh;
    lc_model *m;
    /* --device cuda: the GPU plugin, its state and the model's device. The optimizer and the
     * gradient all-reduce run on the GPU (the plugin's opt_*); the host lc_adamw keeps the
     * step count and stages the moments for checkpoints; params and grads below are then host
     * copies, read only for --dump-params and --dump-grads */
    const lc_cuda_plugin *gpu;
    void *gpu_state;
    lc_model_device *dev;
    float *host_params, *host_grads;
    double gpu_mem;
    lc_tokfile *ftrain, *fval;
    lc_loader *ltrain, *lval;
    lc_adamw *opt;
    seqbuf b;
    double *hist; /* train step, loss, val step, val loss */
    FILE *jf;
    size_t np;
    float *params, *grads, grad_scale;
    int64_t steps, warmup, start_step;
    int64_t sched_steps; /* the lr schedule's end: steps, or a resumed run's saved one */
    int sched_saved;     /* the schedule came from the checkpoint: the time budget leaves it */
    float lr_min;
    int eval_every, n_val;
    double peak, cores, flops_tok, tokens_step; /* for MFU and tokens/s */
    char bf16_why[256];  /* bf16: which inner product the kernels run, and why */
    double t_start, t_steps;
} trainer;

/* What one step measured, for the progress line and metrics.jsonl. */
typedef struct {
    double loss, norm, peak_mem, dt;
    double imbalance; /* max over CP teams of the mean (over micro-batches) max / mean PE attention work */
    float lr;
    int stop; /* some PE was asked to stop: every PE ends after this step */
} step_result;

static volatile sig_atomic_t g_stop_requested;

void lc_trainer_request_stop(void) { g_stop_requested = 1; }

static int coll_fail(trainer *t, int rc)
{
    return lc_train__fail(rc, "collective failed: %s", lc_last_error(t->w));
}

/* PE 0's banner: model, mesh and plan, data and optimizer, the machine's peak. */
static void print_banner(const trainer *t)
{
    const lc_trainer_opts *o = t->o;
    const lc_plan *p = t->plan;
    const lc_model_config *c = &o->model;
    printf("train: %s (%d layers, dim %d, heads %d/%d, ffn %d, vocab %d; %.2fM params), seq %lld, "
           "batch %d x %d seqs (%.0f tokens/step)\n",
           o->model_name ? o->model_name : "custom", c->n_layers, c->dim, c->n_heads, c->n_kv_heads,
           c->ffn_dim, c->vocab, (double)t->np / 1e6, (long long)p->seq_len, p->dp, o->accum, t->tokens_step);
    static const char *const ax[3] = {"tp", "cp", "dp"};
    printf("train: mesh DP %d x CP %d x TP %d%s on %d PEs (%s; order %s,%s,%s innermost first), %d thread%s "
           "per PE; CP %s, %s layout, %s lowering; %s compute%s%s\n",
           p->dp, p->cp, p->tp, p->sp ? " +SP" : "", t->n_pes, lc_world_backend(t->w), ax[t->mesh.order[0]], ax[t->mesh.order[1]],
           ax[t->mesh.order[2]], t->threads, t->threads == 1 ? "" : "s", p->algo == LC_CP_RING ? "ring" : "all-gather",
           lc_cp_layout_name(p->layout), lc_lowering_name(p->lowering), lc_dtype_name(o->compute),
           o->recompute ? ", recompute" : "", o->doc_mask ? ", packed-document masking" : "");
    printf("train: data %s (%lld tokens, %lld sequences)%s%s; AdamW lr %.3g -> %.3g (warmup %lld), wd %g, "
           "clip %g, seed %llu\n",
           o->train_path, (long long)lc_tokfile_n_tokens(t->ftrain), (long long)lc_loader_n_windows(t->ltrain),
           t->fval ? ", val " : "", t->fval ? o->val_path : "", o->lr, t->lr_min, (long long)t->warmup,
           o->weight_decay, o->clip, (unsigned long long)o->seed);
    if (o->compute == LC_DT_BF16)
        printf("train: bf16 inner product: %s\ntrain: bf16 GEMMs: %s\n", t->bf16_why, lc_model_bf16_gemm_name());
    if (t->gpu) {
        char d[256];
        t->gpu->describe(t->gpu_state, d, sizeof d);
        printf("train: device %s: %s; the optimizer and the gradient all-reduce on the host\n", t->gpu->kind, d);
        if (t->peak > 0)
            printf("train: MFU against the GPUs' dense bf16 peak, %.0f TFLOP/s; %.3g model FLOPs per token\n",
                   t->peak / 1e3, t->flops_tok);
    } else if (t->peak > 0)
        printf("train: FMA peak %.1f GFLOP/s per core (%s), %.0f core%s -> MFU against %.1f "
               "GFLOP/s; %.3g model FLOPs per token\n",
               t->peak, o->peak_gflops_core > 0 ? "given by --peak" : "measured now", t->cores,
               t->cores == 1 ? "" : "s", t->peak * t->cores, t->flops_tok);
    fflush(stdout);
}

/* PE 0's output files; returns 1 when it could not create them (the message is set). */
static int open_outputs(trainer *t)
{
    const char *dir = t->o->out_dir;
    if (!dir) return 0;
    if (lc_ckpt_mkdirs(dir)) {
        lc_train__fail(LC_ERR_SYS, "cannot create --out %s: %s", dir, strerror(errno));
        return 1;
    }
    char p[4096];
    snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
    /* A resume keeps the history: continue_metrics trims it to the checkpoint's step once that
     * is known. */
    if (!(t->jf = fopen(p, t->o->resume ? "a" : "w"))) {
        lc_train__fail(LC_ERR_SYS, "cannot create %s: %s", p, strerror(errno));
        return 1;
    }
    return 0;
}

/* "key":number in a metrics line, or NAN (absent or null). */
static double json_field(const char *line, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *at = strstr(line, k);
    if (!at) return NAN;
    char *end;
    double v = strtod(at + strlen(k), &end);
    return end == at + strlen(k) ? NAN : v;
}

/* PE 0, on resume: the history of the run so far stays in OUT/metrics.jsonl up to the
 * checkpoint's step (records past it belong to steps about to run again) and is loaded into
 * the loss history, so the file and loss.png cover the whole run. A history that cannot be
 * read or rewritten is not worth stopping the run for: it is said, and the file starts over. */
static void continue_metrics(trainer *t)
{
    char p[4096], tmp[4160];
    snprintf(p, sizeof p, "%s/metrics.jsonl", t->o->out_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    fclose(t->jf);
    t->jf = NULL;
    FILE *in = fopen(p, "r"), *out = in ? fopen(tmp, "w") : NULL;
    int ok = in && out;
    if (ok) {
        char line[4096];
        while (fgets(line, sizeof line, in)) {
            long long n;
            if (!strncmp(line, "{\"restart\":", 11)) { /* the run's restarts (longctx train --max-restarts) */
                ok &= fputs(line, out) >= 0;
                continue;
            }
            if (sscanf(line, "{\"step\":%lld", &n) != 1 || n < 1 || n > t->start_step) continue;
            t->hist[2 * (n - 1)] = (double)n;
            t->hist[2 * (n - 1) + 1] = json_field(line, "loss");
            double val = json_field(line, "val_loss");
            if (isfinite(val)) {
                t->hist[2 * t->o->steps + 2 * t->n_val] = (double)n;
                t->hist[2 * t->o->steps + 2 * t->n_val + 1] = val;
                t->n_val++;
            }
            ok &= fputs(line, out) >= 0;
        }
    }
    if (in) fclose(in);
    if (out) ok &= fclose(out) == 0;
    if (ok) ok = rename(tmp, p) == 0;
    if (!ok) {
        fprintf(stderr, "train: could not carry over the history in %s (%s): it starts again at step %lld\n", p,
                strerror(errno), (long long)t->start_step + 1);
        unlink(tmp);
        memset(t->hist, 0, sizeof *t->hist * 4 * (size_t)t->o->steps);
        t->n_val = 0;
    }
    if (!(t->jf = fopen(p, ok ? "a" : "w")))
        fprintf(stderr, "train: cannot write %s: %s (no metrics from here on)\n", p, strerror(errno));
}

/* A resumed run goes on with the schedule it was on (its warmup, its cosine's end); past that
 * end lc_lr_at holds the rate at lr_min. --extend-schedule re-fits the cosine to this run's
 * steps instead, from the same warmup. Either way the console says which. */
static void continue_schedule(trainer *t, int64_t saved_steps, int64_t saved_warmup)
{
    t->warmup = saved_warmup;
    t->sched_steps = t->o->extend_schedule ? t->steps : saved_steps;
    t->sched_saved = !t->o->extend_schedule;
    if (t->me != 0 || t->o->quiet || saved_steps == t->steps) return;
    if (t->o->extend_schedule)
        printf("train: --extend-schedule: the lr schedule's cosine now ends at step %lld (it was %lld), warmup %lld\n",
               (long long)t->steps, (long long)saved_steps, (long long)saved_warmup);
    else if (saved_steps < t->steps)
        printf("train: the lr schedule goes on as saved (warmup %lld, cosine to step %lld); from step %lld to %lld the "
               "rate holds at lr_min %.3g (--extend-schedule re-fits it to %lld steps)\n",
               (long long)saved_warmup, (long long)saved_steps, (long long)saved_steps + 1, (long long)t->steps,
               t->lr_min, (long long)t->steps);
    else
        printf("train: the lr schedule goes on as saved (warmup %lld, cosine to step %lld); this run stops at step "
               "%lld\n", (long long)saved_warmup, (long long)saved_steps, (long long)t->steps);
    fflush(stdout);
}

/* The plan, the mesh, the model and its optimizer, the data, the step buffers and the
 * machine's peak; then a resume or init-from. Nothing is allocated after this. */
int lc_train_choose_bf16_dot(lc_team *world, lc_bf16_dot want, char *why, size_t len)
{
    int32_t pick = want;
    if (pick == LC_BF16_DOT_AUTO) {
        if (lc_team_my_pe(world) == 0) pick = lc_attn_bf16_dot_measure(why, len);
        int rc = lc_broadcast(world, &pick, &pick, sizeof pick, 0);
        if (rc) return lc_train__fail(rc, "sharing PE 0's bf16 inner product: %s", lc_last_error(lc_team_get_world(world)));
    } else {
        snprintf(why, len, "%s, as given (--bf16-dot, or the checkpoint resumed)", lc_bf16_dot_name(want));
    }
    lc_attn_set_bf16_dot((lc_bf16_dot)pick);
    size_t n = strlen(why);
    if (lc_attn_bf16_dot() != (lc_bf16_dot)pick && n < len) /* the CPU or LONGCTX_ATTN_BF16_DOT says otherwise */
        snprintf(why + n, len - n, "; running %s (%s)", lc_bf16_dot_name(lc_attn_bf16_dot()),
                 lc_attn_cpu_has_bf16() ? "LONGCTX_ATTN_BF16_DOT" : "no avx512bf16 here");
    return LC_OK;
}

/* --device cuda: the GPU plugin's world and the model's device (collective: all fail
 * together, each naming its reason). */
static int gpu_open(trainer *t)
{
    char err[768];
    const lc_cuda_plugin *pl = lc_train_cuda_plugin(err, sizeof err);
    /* the plugin is the same file for every PE, but a PE that cannot load it must not leave
     * the others waiting inside the GPU set-up */
    double bad = pl ? 0.0 : 1.0, any = 0.0;
    int rc = lc_allreduce_max_f64(lc_team_world(t->w), &any, &bad, 1);
    if (rc) return coll_fail(t, rc);
    if (any > 0) return pl ? lc_train__fail(LC_ERR_ABORT, "--device cuda: another PE could not load the GPU plugin")
                           : lc_train__fail(LC_ERR_UNSUPPORTED, "%s", err);
    if ((rc = pl->open(lc_team_world(t->w), t->mesh.cp_team, t->o->gpu_engine ? t->o->gpu_engine : "own",
                       &t->o->model, &t->o->plan, t->o->compute, &t->gpu_state, &t->dev, err, sizeof err)))
        return lc_train__fail(rc, "--device cuda: %s", err);
    t->gpu = pl;
    return LC_OK;
}

static int setup(trainer *t)
{
    const lc_trainer_opts *o = t->o;
    lc_team *world = lc_team_world(t->w);
    char err[512];
    int rc;
    /* Checks every PE makes identically (the same files, the same flags). */
    if ((rc = lc_trainer_check(o, t->n_pes, err, sizeof err))) return lc_train__fail(rc, "%s", err);
    const lc_plan *p = t->plan = &o->plan;
    if ((rc = lc_mesh_create_plan(world, p, &t->mesh))) return rc;
    t->have_mesh = 1;
    t->threads = o->threads > 0 ? o->threads : lc_cores_per_pe(t->w);
    if (t->me == 0 && t->threads > lc_cores_per_pe(t->w))
        fprintf(stderr, "train: --threads %d is more than the %d core%s each PE has: its threads will share "
                        "cores (slower, not wrong)\n", t->threads, lc_cores_per_pe(t->w),
                lc_cores_per_pe(t->w) == 1 ? "" : "s");
    /* bf16: one inner product for the whole job (the two are not bit-equal), before any
     * workspace is sized */
    if (o->compute == LC_DT_BF16 &&
        (rc = lc_train_choose_bf16_dot(world, o->bf16_dot, t->bf16_why, sizeof t->bf16_why)))
        return rc;
    if (lc_trainer_on_gpu(o) && (rc = gpu_open(t))) return rc;
    lc_model_run run = {.cp_team = t->mesh.cp_team, .plan = p, .compute = o->compute, .doc_mask = o->doc_mask,
                         .window = o->window,
                        .threads = t->threads, .recompute = o->recompute,
                        .tp_team = p->tp > 1 ? t->mesh.tp_team : NULL, .device = t->dev};
    if ((rc = lc_model_create(&o->model, &run, &t->m))) return lc_train__fail(rc, "%s", lc_model_last_error(NULL));
    if ((rc = lc_model_init_params(t->m, o->seed))) return lc_train__fail(rc, "init: %s", lc_model_last_error(t->m));
    t->np = lc_model_n_params(t->m);
    lc_adamw_config ac = {o->beta1, o->beta2, o->eps, o->weight_decay};
    if ((rc = lc_adamw_create(t->np, &ac, &t->opt))) return lc_train__fail(rc, "%s", lc_optim_last_error());
    for (int i = 0; i < lc_model_n_tensors(t->m); i++) {
        const lc_model_tensor *mt = lc_model_tensor_at(t->m, i);
        if ((rc = lc_adamw_set_decay(t->opt, mt->offset, mt->numel, mt->decay)))
            return lc_train__fail(rc, "%s", lc_optim_last_error());
    }
    if (t->gpu && (rc = t->gpu->opt_create(t->gpu_state, t->m, &ac, err, sizeof err)))
        return lc_train__fail(rc, "--device cuda: %s", err);
    lc_loader_config lct = {p->seq_len, o->seed, t->mesh.dp_rank, p->dp, 1, o->doc_mask ? o->doc_sep : -1};
    lc_loader_config lcv = {p->seq_len, 0, 0, 1, 0, o->doc_mask ? o->doc_sep : -1};
    if ((rc = lc_tokfile_open(o->train_path, o->model.vocab, p->seq_len + 1, &t->ftrain)) ||
        (rc = lc_loader_create(t->ftrain, &lct, &t->ltrain)))
        return rc;
    if (o->val_path && ((rc = lc_tokfile_open(o->val_path, o->model.vocab, p->seq_len + 1, &t->fval)) ||
                        (rc = lc_loader_create(t->fval, &lcv, &t->lval))))
        return rc;
    size_t S = (size_t)p->seq_len;
    t->b.tok = malloc(S * sizeof *t->b.tok);
    t->b.tgt = malloc(S * sizeof *t->b.tgt);
    t->b.doc = malloc(S * sizeof *t->b.doc);
    t->hist = calloc((size_t)o->steps * 4, sizeof *t->hist);
    if (!t->b.tok || !t->b.tgt || !t->b.doc || !t->hist)
        return lc_train__fail(LC_ERR_SYS, "out of memory for the step buffers");
    t->steps = o->steps;
    /* With a time budget the total is known only after two steps: warm up over those two. */
    t->warmup = o->warmup >= 0 ? o->warmup : o->time_budget_s > 0 ? 2 : o->steps / 10;
    t->lr_min = o->lr_min >= 0 ? o->lr_min : o->lr / 10;
    t->sched_steps = t->steps;
    t->eval_every = o->eval_every >= 0 ? o->eval_every : (int)(o->steps / 5 > 0 ? o->steps / 5 : 1);

    /* The machine's limit, measured now: one core's FMA peak (max over PEs, each on its core). */
    t->peak = o->peak_gflops_core;
    if (t->gpu) t->peak = t->gpu->peak_tflops_bf16(t->gpu_state) * 1e3; /* all the GPUs, as one "core" */
    else if (!(t->peak > 0) && o->peak_fn) {
        double mine = o->peak_fn();
        if ((rc = lc_allreduce_max_f64(world, &t->peak, &mine, 1))) return coll_fail(t, rc);
    }
    long onln = sysconf(_SC_NPROCESSORS_ONLN);
    t->cores = (double)t->threads * t->n_pes;
    if (onln > 0 && t->cores > (double)onln) t->cores = (double)onln;
    if (t->gpu) t->cores = 1;
    t->flops_tok = lc_model_flops_per_token(&o->model, p->seq_len);
    t->tokens_step = (double)p->seq_len * o->accum * p->dp;

    int local_bad = t->me == 0 && open_outputs(t);
    if (t->me == 0 && !o->quiet) print_banner(t);
    /* Nobody steps unless everybody could set up. */
    double bad = local_bad, any;
    if ((rc = lc_allreduce_max_f64(world, &any, &bad, 1))) return coll_fail(t, rc);
    if (any > 0) return local_bad ? LC_ERR_SYS : lc_train__fail(LC_ERR_ABORT, "PE 0 could not set up its output");

    /* Resume or init-from: after every buffer exists, before the first step. */
    int64_t saved_steps = 0, saved_warmup = t->warmup;
    if ((rc = lc_train__ckpt_begin(o, t->m, t->opt, t->ltrain, t->ftrain, &t->mesh, &t->start_step, &saved_steps,
                                   &saved_warmup)))
        return rc;
    if (o->resume && saved_steps > 0) continue_schedule(t, saved_steps, saved_warmup);
    /* At --steps exactly, the run is complete and nothing runs (a finished job started again
     * ends well, with its outputs); past it, the user asked for a shorter run than they have. */
    if (t->start_step > t->steps)
        return lc_train__fail_agreed(0, LC_ERR_ARG, "the checkpoint resumed is at step %lld, already past --steps "
                                     "%lld: nothing to train (give a larger --steps)",
                                     (long long)t->start_step, (long long)t->steps);
    if (t->me == 0 && t->jf && t->start_step > 0) continue_metrics(t);
    t->params = lc_model_params(t->m);
    t->grads = lc_model_grads(t->m);
    if (t->gpu) {
        /* the moments a resume loaded (zeros otherwise) go to the GPU's optimizer */
        if ((rc = t->gpu->opt_moments(t->gpu_state, lc_adamw_m(t->opt), lc_adamw_v(t->opt), 1, err, sizeof err)))
            return lc_train__fail(rc, "--device cuda: %s", err);
        if (o->dump_params && !(t->params = t->host_params = malloc(sizeof(float) * t->np)))
            return lc_train__fail(LC_ERR_SYS, "out of memory for the host copy of the weights");
        if (o->dump_grads && !(t->grads = t->host_grads = malloc(sizeof(float) * t->np)))
            return lc_train__fail(LC_ERR_SYS, "out of memory for the host copy of the gradients");
    }
    t->grad_scale = 1.0f / (float)(o->accum * p->dp);
    return LC_OK;
}

/* The host's update: the gradients summed over the PEs holding the same slices, clipped by
 * the full model's norm, AdamW. */
static int host_update(trainer *t, int64_t step, step_result *r)
{
    const lc_trainer_opts *o = t->o;
    int rc;
    if ((rc = lc_mesh_allreduce_grads(&t->mesh, t->grads, t->np))) return coll_fail(t, rc);
    if (step == 0 && o->dump_grads && (rc = dump_full(t->m, &t->mesh, t->grads, o->dump_grads))) return rc;
    if (t->plan->tp == 1) r->norm = lc_global_norm(t->grads, t->np);
    else if ((rc = lc_model_global_norm(t->m, t->grads, &r->norm)))
        return lc_train__fail(rc, "gradient norm: %s", lc_model_last_error(t->m));
    r->lr = lc_lr_at(step, t->warmup, t->sched_steps, o->lr, t->lr_min);
    lc_adamw_step(t->opt, t->params, t->grads, r->lr, lc_clip_factor(r->norm, o->clip));
    return LC_OK;
}

/* The same on the GPU (the plugin's optimizer); the host lc_adamw counts the step. */
static int gpu_update(trainer *t, int64_t step, step_result *r)
{
    const lc_trainer_opts *o = t->o;
    char err[512];
    int64_t n = lc_adamw_steps(t->opt) + 1;
    r->lr = lc_lr_at(step, t->warmup, t->sched_steps, o->lr, t->lr_min);
    int rc = t->gpu->opt_step(t->gpu_state, t->m, n, r->lr, o->clip, &r->norm, err, sizeof err);
    if (rc) return lc_train__fail(rc, "step %lld: --device cuda: %s", (long long)step, err);
    lc_adamw_set_steps(t->opt, n);
    if (step == 0 && o->dump_grads) { /* the summed gradients stay on the device through AdamW */
        if ((rc = lc_model_read(t->m, lc_model_grads(t->m), t->grads)))
            return lc_train__fail(rc, "%s", lc_model_last_error(t->m));
        if ((rc = dump_full(t->m, &t->mesh, t->grads, o->dump_grads))) return rc;
    }
    double g = t->gpu->mem_used(t->gpu_state);
    t->gpu_mem = g > t->gpu_mem ? g : t->gpu_mem;
    return LC_OK;
}

/* One training step: accum micro-batches of forward + backward, the gradients summed over
 * the PEs holding the same slices, clipped by the full model's norm, AdamW. */
static int train_step(trainer *t, int64_t step, step_result *r)
{
    const lc_trainer_opts *o = t->o;
    seqbuf *b = &t->b;
    int32_t *doc = o->doc_mask ? b->doc : NULL;
    int rc;
    double t0 = now();
    lc_model_zero_grads(t->m);
    double loss_sum = 0, imb = 0;
    for (int a = 0; a < o->accum; a++) {
        float loss;
        lc_model_times tm;
        lc_loader_next(t->ltrain, b->tok, b->tgt, doc);
        if ((rc = lc_model_forward_backward(t->m, b->tok, b->tgt, doc, t->grad_scale, &loss)))
            return lc_train__fail(rc, "step %lld: forward/backward: %s", (long long)step, lc_model_last_error(t->m));
        lc_model_get_times(t->m, &tm);
        loss_sum += loss;
        imb += tm.cp_imbalance / o->accum;
    }
    if (t->gpu) {
        if ((rc = gpu_update(t, step, r))) return rc;
    } else if ((rc = host_update(t, step, r))) {
        return rc;
    }
    /* The mean loss over every token of the step, and the largest peak memory. */
    /* ... and whether any PE was asked to stop, so that all stop after the same step. */
    double stats[4] = {loss_sum, (double)lc_peak_rss_bytes(), g_stop_requested ? 1.0 : 0.0, imb}, red[4];
    if ((rc = lc_allreduce_sum_f64(t->mesh.dp_team, red, stats, 1))) return coll_fail(t, rc);
    if ((rc = lc_allreduce_max_f64(lc_team_world(t->w), red + 1, stats + 1, 3))) return coll_fail(t, rc);
    r->loss = red[0] / (o->accum * t->plan->dp);
    r->peak_mem = red[1];
    r->stop = red[2] > 0;
    r->imbalance = red[3];
    r->dt = now() - t0;
    t->t_steps += r->dt;
    if (!isfinite(r->loss) || !isfinite(r->norm))
        return lc_train__fail(LC_ERR_ARG, "step %lld: the loss (%g) or gradient norm (%g) is not finite; "
                              "lower --lr (now %g) or raise --warmup",
                              (long long)step, r->loss, r->norm, o->lr);
    return LC_OK;
}

/* After a step: validation when due, the history, PE 0's progress line and metrics. */
static int report_step(trainer *t, int64_t step, const step_result *r)
{
    const lc_trainer_opts *o = t->o;
    int rc;
    double val = NAN;
    int do_eval = t->lval && ((t->eval_every > 0 && (step + 1) % t->eval_every == 0) || step + 1 == t->steps);
    if (do_eval && (rc = evaluate(t->m, t->lval, &t->mesh, o, &t->b, &val))) return rc;
    double tps = t->tokens_step / r->dt, mfu = t->peak > 0 ? t->flops_tok * tps / (t->peak * 1e9 * t->cores) : NAN;
    t->hist[step * 2] = (double)(step + 1);
    t->hist[step * 2 + 1] = r->loss;
    if (do_eval) {
        t->hist[2 * o->steps + t->n_val * 2] = (double)(step + 1);
        t->hist[2 * o->steps + t->n_val * 2 + 1] = val;
        t->n_val++;
    }
    if (t->me != 0) return LC_OK;
    if (!o->quiet) {
        char eta[32];
        fmt_eta((now() - t->t_start) / (double)(step + 1 - t->start_step) * (double)(t->steps - step - 1), eta, sizeof eta);
        printf("step %5lld/%lld | loss %.4f | lr %.2e | norm %6.3f | %8.0f tok/s | MFU %5.1f%% | %6.2f s/step | ETA %s",
               (long long)step + 1, (long long)t->steps, r->loss, r->lr, r->norm, tps, 100 * mfu, r->dt, eta);
        if (do_eval) printf(" | val %.4f", val);
        printf("\n");
        fflush(stdout);
    }
    if (t->jf) {
        FILE *jf = t->jf;
        fprintf(jf, "{\"step\":%lld", (long long)step + 1);
        json_num(jf, "loss", r->loss);
        json_num(jf, "val_loss", val);
        json_num(jf, "lr", r->lr);
        json_num(jf, "grad_norm", r->norm);
        json_num(jf, "tokens_per_s", tps);
        json_num(jf, "mfu", mfu);
        json_num(jf, "step_s", r->dt);
        json_num(jf, "peak_mem_bytes", r->peak_mem);
        if (t->gpu) json_num(jf, "gpu_mem_bytes", t->gpu_mem);
        if (t->plan->cp > 1) json_num(jf, "cp_imbalance", r->imbalance);
        if (t->o->compute == LC_DT_BF16)
            fprintf(jf, ",\"bf16_dot\":\"%s\",\"bf16_gemm\":\"%s\"", lc_bf16_dot_name(lc_attn_bf16_dot()),
                    strncmp(lc_model_bf16_gemm_name(), "oneDNN", 6) ? "sgemm" : "onednn");
        fprintf(jf, "}\n");
        fflush(jf);
    }
    return LC_OK;
}

/* With --time-budget: fit the rest into the budget from the pace so far (evaluations
 * included); only ever shorten. PE 0's clock decides so that every PE agrees on the total. */
static int fit_budget(trainer *t, int64_t step)
{
    const lc_trainer_opts *o = t->o;
    if (!(o->time_budget_s > 0 && step >= t->start_step + 1 && step + 1 < t->steps)) return LC_OK;
    double el = now() - t->t_start, per = el / (double)(step + 1 - t->start_step); /* this run's pace */
    double want = (double)(step + 1) + floor(fmax(0, o->time_budget_s - el) / per), fit;
    int rc = lc_allreduce_max_f64(lc_team_world(t->w), &fit, t->me == 0 ? &want : (double[]){0}, 1);
    if (rc) return coll_fail(t, rc);
    if (fit < 3) fit = 3;
    if (fit < (double)t->steps) {
        if (t->me == 0 && !o->quiet && (step == 1 || fit < (double)t->steps - 1)) {
            printf("train: --time-budget %.0f s at %.1f s/step: %lld steps instead of %lld\n",
                   o->time_budget_s, per, (long long)fit, (long long)t->steps);
            fflush(stdout);
        }
        t->steps = (int64_t)fit;
        if (!t->sched_saved) t->sched_steps = t->steps;
        if (o->eval_every < 0) t->eval_every = (int)(t->steps / 5 > 0 ? t->steps / 5 : 1);
    }
    return LC_OK;
}

/* The end, on PE 0: the time split and the loss plot. */
static void report_end(trainer *t)
{
    const lc_trainer_opts *o = t->o;
    const lc_plan *p = t->plan;
    int64_t steps = t->steps, start_step = t->start_step;
    int n_val = t->n_val;
    lc_model_times tm;
    lc_model_get_times(t->m, &tm);
    double total = now() - t->t_start;
    if (!o->quiet) {
        double tt = tm.total_s > 0 ? tm.total_s : 1;
        /* this run's steps against this run's time: a resumed run did not run the first start_step */
        const int64_t ran = steps - start_step;
        if (ran == 0)
            printf("train: the checkpoint resumed is at step %lld = --steps: the run is complete, no step ran\n",
                   (long long)start_step);
        else
            printf("train: %lld steps%s in %.1f s (%.0f tokens/s); PE 0 step time: matmul %.0f%%, attention "
                   "%.0f%%, CP communication %.0f%%, TP communication %.0f%%, other %.0f%%; peak memory %.1f MiB "
                   "per PE (max)\n",
                   (long long)ran, start_step ? " (resumed)" : "", total, t->tokens_step * (double)ran / t->t_steps,
                   100 * tm.matmul_s / tt, 100 * tm.attn_s / tt, 100 * tm.comm_s / tt, 100 * tm.tp_comm_s / tt,
                   100 * tm.other_s / tt, (double)lc_peak_rss_bytes() / 1048576.0);
        if (ran > 0 && t->gpu)
            printf("train: on the GPU the split above times launches, not kernels; GPU memory in use at most %.1f "
                   "MiB (every process on the GPU, cudaMemGetInfo)\n",
                   t->gpu_mem / 1048576.0);
    }
    if (!o->out_dir) return;
    char path[4096], title[160];
    snprintf(path, sizeof path, "%s/loss.png", o->out_dir);
    snprintf(title, sizeof title, "%s  seq %lld  dp %d x cp %d x tp %d%s  %s", o->model_name ? o->model_name : "custom",
             (long long)p->seq_len, p->dp, p->cp, p->tp, p->sp ? " +sp" : "", lc_dtype_name(o->compute));
    double *xs = malloc((size_t)(steps + n_val) * 2 * sizeof *xs);
    if (!xs) return;
    const double *hist = t->hist;
    double *ys = xs + steps, *vx = ys + steps, *vy = vx + n_val;
    /* the whole run: a resumed one has its earlier steps from metrics.jsonl (continue_metrics) */
    int n_train = 0;
    for (int64_t i = 0; i < steps; i++)
        if (hist[2 * i] > 0) xs[n_train] = hist[2 * i], ys[n_train++] = hist[2 * i + 1];
    for (int i = 0; i < n_val; i++) vx[i] = hist[2 * o->steps + 2 * i], vy[i] = hist[2 * o->steps + 2 * i + 1];
    lc_plot_series se[2] = {{xs, ys, n_train, {31, 119, 180}, "train"},
                            {vx, vy, n_val, {214, 39, 40}, "val"}};
    if (lc_plot_png(path, 800, 480, title, "step", "loss (nats/token)", se, n_val ? 2 : 1))
        fprintf(stderr, "train: %s\n", lc_train_last_error());
    else if (!o->quiet)
        printf("train: wrote %s/metrics.jsonl and %s\n", o->out_dir, path);
    free(xs);
}

/* A stop on request after `done` steps: said once, with how to go on. */
static int stopped(trainer *t, int64_t done)
{
    const lc_trainer_opts *o = t->o;
    const int64_t asked = t->steps;
    t->steps = done; /* the summary and the plot cover the steps that ran */
    if (t->me == 0) {
        report_end(t);
        if (o->save_dir)
            printf("train: stopped on request after step %lld of %lld; saved %s/step-%08lld: the same command with "
                   "--resume goes on from there\n", (long long)done, (long long)asked, o->save_dir, (long long)done);
        else
            printf("train: stopped on request after step %lld of %lld, without a checkpoint (no --save-dir)\n",
                   (long long)done, (long long)asked);
        fflush(stdout);
    }
    return LC_STOPPED;
}

static int teardown(trainer *t, int rc)
{
    if (rc && rc != LC_ERR_ABORT && rc != LC_STOPPED && t->n_pes > 1 && t->m) {
        /* A failure after setup may be mine alone: make sure nobody waits for me. */
        char err[512];
        snprintf(err, sizeof err, "PE %d: %s", t->me, lc_train_last_error());
        lc_world_abort(t->w, err);
    }
    if (t->jf) fclose(t->jf);
    free(t->hist);
    free(t->b.tok);
    free(t->b.tgt);
    free(t->b.doc);
    lc_adamw_destroy(t->opt);
    lc_loader_destroy(t->ltrain);
    lc_loader_destroy(t->lval);
    lc_tokfile_close(t->ftrain);
    lc_tokfile_close(t->fval);
    /* Both are collective: after a failure only a world of one can still release them (the
     * others end their process). */
    const int whole = rc == LC_OK || rc == LC_STOPPED; /* every PE is here: collectives still work */
    if (t->m && (whole || t->n_pes == 1)) lc_model_destroy(t->m);
    if (t->gpu_state && (whole || t->n_pes == 1)) t->gpu->close(t->gpu_state);
    free(t->host_params);
    free(t->host_grads);
    if (t->have_mesh && (whole || t->n_pes == 1)) lc_mesh_destroy(&t->mesh);
    return rc;
}

/* Before a checkpoint: the GPU's AdamW moments into the host lc_adamw the checkpoint saves. */
static int gpu_moments_to_host(trainer *t)
{
    char err[512];
    int rc = t->gpu->opt_moments(t->gpu_state, lc_adamw_m(t->opt), lc_adamw_v(t->opt), 0, err, sizeof err);
    return rc ? lc_train__fail(rc, "--device cuda: %s", err) : LC_OK;
}

int lc_trainer_run(lc_world *w, const lc_trainer_opts *o)
{
    trainer t = {.o = o, .w = w, .me = lc_my_pe(w), .n_pes = lc_n_pes(w)};
    int rc = setup(&t);
    if (rc) return t.have_mesh ? teardown(&t, rc) : rc;
    t.t_start = now();
    lc_model_reset_times(t.m);
    for (int64_t step = t.start_step; step < t.steps; step++) {
        step_result r;
        if ((rc = train_step(&t, step, &r)) || (rc = report_step(&t, step, &r)) || (rc = fit_budget(&t, step)))
            return teardown(&t, rc);
        int save = (o->save_every > 0 && (step + 1) % o->save_every == 0) || step + 1 == t.steps || r.stop;
        if (o->save_dir && save && t.gpu && (rc = gpu_moments_to_host(&t))) return teardown(&t, rc);
        if (o->save_dir && save &&
            (rc = lc_train__ckpt_save(o, t.m, t.opt, t.ltrain, t.ftrain, &t.mesh, step + 1, t.sched_steps, t.warmup, t.lr_min)))
            return teardown(&t, rc);
        if (r.stop && step + 1 < t.steps) return teardown(&t, stopped(&t, step + 1));
    }
    if (t.me == 0) report_end(&t);
    if (o->dump_params && t.gpu && (rc = lc_model_read(t.m, lc_model_params(t.m), t.params)))
        return teardown(&t, lc_train__fail(rc, "%s", lc_model_last_error(t.m)));
    if (o->dump_params && (rc = dump_full(t.m, &t.mesh, t.params, o->dump_params))) return teardown(&t, rc);
    return teardown(&t, LC_OK);
}
