/* longctx train: parses the flags, checks everything that can be checked before any PE
 * starts (mesh, model shape, layout, data files), then re-runs itself as the PEs of a
 * DP x CP mesh on the shm backend (or runs as the PEs of `longctx launch`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/peak.h"
#include "cli/cli.h"
#include "longctx/ckpt.h"
#include "longctx/trainer.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: longctx train [--model tiny|small|llama3-8b] [--seq 16K] [--cp 1] [--dp 1] [--steps 50]\n"
            "                     [--data DIR | --train FILE [--val FILE]] [--out train_out] [options]\n"
            "Data: DIR/train.bin and DIR/val.bin (llm.c token files; `longctx prepare-data DIR`).\n"
            "Mesh:      --cp C --dp D --tp T (PEs = D x C x T; spawned here on the shm backend unless run under\n"
            "           `longctx launch -n P`), --pes P (must equal D x C x T), --heap SIZE\n"
            "           --sp (sequence parallelism in the TP team), --mesh-order tp,cp,dp (innermost first:\n"
            "           which PEs are neighbours; the default puts TP on neighbouring cores)\n"
            "           --backend shm|mpi (mpi: started as `mpirun -n P longctx train ...`, picked there\n"
            "           by default)\n"
            "CP:        --cp-algo ring|allgather  --layout zigzag|contiguous|striped\n"
            "           --permute one_sided|two_sided|zero_copy|auto\n"
            "Compute:   --dtype f32|bf16  --recompute  --threads T (default: the PE's CPUs)\n"
            "           --doc-mask [--doc-sep 0]  (packed documents: no attention or prediction across)\n"
            "Optimizer: --lr 3e-3 --lr-min (lr/10) --warmup (steps/10) --wd 0.1 --clip 1.0 --accum 1\n"
            "           --seed 1337\n"
            "Eval/log:  --eval-every (steps/5) --eval-seqs 8 --quiet --peak GFLOPS (skip measuring)\n"
            "           --time-budget SECONDS (after 2 steps, cut --steps to end in time: demos only)\n"
            "           --dump-params FILE (raw fp32 weights after the last step)\n"
            "           --dump-grads FILE (raw fp32 all-reduced gradients of the first step)\n"
            "Shape:     --layers --dim --heads --kv-heads --ffn --vocab --rope-theta (override the preset)\n"
            "Checkpoints: --save-dir DIR --save-every N (and after the last step) --keep K (newest K; 0 all)\n"
            "           --resume [CKPT|DIR|auto] (newest complete one; default --save-dir; auto: resume when\n"
            "           --save-dir has a checkpoint, else start a new run; the lr schedule goes on as saved,\n"
            "           holding at --lr-min past its end, unless --extend-schedule) --init-from HF_DIR\n"
            "           (weights of a save_pretrained folder); without --model or shape flags the model\n"
            "           comes from the checkpoint's config.json; --rope-theta overrides its value\n"
            "Writes OUT/metrics.jsonl (one object per step) and OUT/loss.png.\n");
}

static int given(int argc, char **argv, const char *flag)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], flag)) return 1;
    return 0;
}

/* A run resumes with the settings it was written with, resolved here before any PE starts: a
 * setting the checkpoint records and the command line does not give comes from the checkpoint;
 * one given that changes the math or the data and may not change is an error naming both
 * values. The lr (and lr_min with it) may change; the schedule's length goes on as saved
 * (continue_schedule in the trainer). Returns 0, or 2 after saying what conflicts. */
static int resolve_from_checkpoint(lc_trainer_opts *o, const char *ck, const lc_ckpt_state *st, int argc,
                                   char **argv, int speak)
{
    char why[512] = "";
    if (!given(argc, argv, "--seq")) o->plan.seq_len = st->seq_len;
    else if (o->plan.seq_len != st->seq_len)
        snprintf(why, sizeof why, "%.300s was written with --seq %lld, this run has %lld (the data position "
                 "counts sequences of that length)", ck, (long long)st->seq_len, (long long)o->plan.seq_len);
    if (!given(argc, argv, "--seed")) o->seed = st->seed;
    else if (!why[0] && o->seed != st->seed)
        snprintf(why, sizeof why, "%.300s was written with --seed %llu, this run has %llu (the data order follows "
                 "the seed)", ck, (unsigned long long)st->seed, (unsigned long long)o->seed);
    if (!given(argc, argv, "--wd")) o->weight_decay = st->weight_decay;
    else if (!why[0] && o->weight_decay != st->weight_decay)
        snprintf(why, sizeof why, "%.300s was written with --wd %g, this run has %g (AdamW's decay)", ck,
                 (double)st->weight_decay, (double)o->weight_decay);
    if (why[0]) {
        if (speak) fprintf(stderr, "longctx train: --resume: %s\n", why);
        return 2;
    }
    /* no flags of their own: always the checkpoint's */
    o->beta1 = st->beta1;
    o->beta2 = st->beta2;
    o->eps = st->eps;
    if (!given(argc, argv, "--lr")) {
        o->lr = st->lr;
        if (!given(argc, argv, "--lr-min")) o->lr_min = st->lr_min;
    }
    return 0;
}

static int parse_i64(const char *flag, const char *v, int64_t lo, int64_t *out)
{
    char *e;
    long long x = strtoll(v, &e, 10);
    if (*e == 'K' || *e == 'k') x *= 1024, e++;
    else if (*e == 'M' || *e == 'm') x *= 1024 * 1024, e++;
    if (*e || x < lo) {
        fprintf(stderr, "longctx train: %s '%s' must be an integer >= %lld\n", flag, v, (long long)lo);
        return -1;
    }
    *out = x;
    return 0;
}

static int parse_f(const char *flag, const char *v, float *out)
{
    char *e;
    *out = strtof(v, &e);
    if (*e || e == v) {
        fprintf(stderr, "longctx train: %s '%s' is not a number\n", flag, v);
        return -1;
    }
    return 0;
}

static double measure_peak(void)
{
    return lc_fma_peak_gflops(lc_attn_impl_best());
}

static int file_exists(const char *p)
{
    struct stat st;
    return !stat(p, &st);
}

int lc_cmd_train(int argc, char **argv)
{
    lc_trainer_opts o;
    lc_trainer_defaults(&o);
    static char train_path[4096], val_path[4096];
    const char *data = NULL, *model = "small";
    int worker = 0, pes = 0;
    const char *backend = NULL;
    size_t heap = 0;
    int64_t shape[7];
    int have_shape[7] = {0};
    static const char *const SHAPE[7] = {"--layers", "--dim", "--heads", "--kv-heads", "--ffn", "--vocab", "--rope-theta"};
    /* The preset first: shape flags override it, whatever their order. */
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--model")) model = argv[i + 1];
    if (lc_model_preset(model, &o.model)) {
        fprintf(stderr, "longctx train: unknown --model '%s' (tiny, small, llama3-8b)\n", model);
        return 2;
    }
    o.model_name = model;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t x;
        float f;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--worker")) { worker = 1; continue; }
        if (!strcmp(a, "--recompute")) { o.recompute = 1; continue; }
        if (!strcmp(a, "--extend-schedule")) { o.extend_schedule = 1; continue; }
        if (!strcmp(a, "--sp")) { o.plan.sp = 1; continue; }
        if (!strcmp(a, "--doc-mask")) { o.doc_mask = 1; continue; }
        if (!strcmp(a, "--quiet")) { o.quiet = 1; continue; }
        if (!strcmp(a, "--resume")) { /* the folder is optional */
            o.resume = v && strncmp(v, "--", 2) ? argv[++i] : "";
            continue;
        }
        if (!v || strncmp(a, "--", 2)) {
            fprintf(stderr, "longctx train: %s %s\n", a, v ? "is not an option (see --help)" : "needs a value");
            return 2;
        }
        i++;
        int bad = 0, k;
        for (k = 0; k < 7 && strcmp(a, SHAPE[k]); k++) {}
        if (k < 7) {
            if (k == 6) {
                bad = parse_f(a, v, &f);
                o.model.rope_theta = f;
                o.rope_theta_set = 1;
            } else {
                bad = parse_i64(a, v, 1, &shape[k]);
                have_shape[k] = 1;
            }
        } else if (!strcmp(a, "--model")) {
        } else if (!strcmp(a, "--seq")) bad = parse_i64(a, v, 1, &o.plan.seq_len);
        else if (!strcmp(a, "--cp")) bad = parse_i64(a, v, 1, &x), o.plan.cp = (int)x;
        else if (!strcmp(a, "--dp")) bad = parse_i64(a, v, 1, &x), o.plan.dp = (int)x;
        else if (!strcmp(a, "--tp")) bad = parse_i64(a, v, 1, &x), o.plan.tp = (int)x;
        else if (!strcmp(a, "--pes")) bad = parse_i64(a, v, 1, &x), pes = (int)x;
        else if (!strcmp(a, "--backend")) backend = v;
        else if (!strcmp(a, "--steps")) bad = parse_i64(a, v, 1, &o.steps);
        else if (!strcmp(a, "--accum")) bad = parse_i64(a, v, 1, &x), o.accum = (int)x;
        else if (!strcmp(a, "--warmup")) bad = parse_i64(a, v, 0, &o.warmup);
        else if (!strcmp(a, "--eval-every")) bad = parse_i64(a, v, 0, &x), o.eval_every = (int)x;
        else if (!strcmp(a, "--eval-seqs")) bad = parse_i64(a, v, 1, &x), o.eval_seqs = (int)x;
        else if (!strcmp(a, "--threads")) bad = parse_i64(a, v, 1, &x), o.threads = (int)x;
        else if (!strcmp(a, "--doc-sep")) bad = parse_i64(a, v, 0, &x), o.doc_sep = (int)x;
        else if (!strcmp(a, "--seed")) bad = parse_i64(a, v, 0, &x), o.seed = (uint64_t)x;
        else if (!strcmp(a, "--lr")) bad = parse_f(a, v, &o.lr);
        else if (!strcmp(a, "--lr-min")) bad = parse_f(a, v, &o.lr_min);
        else if (!strcmp(a, "--wd")) bad = parse_f(a, v, &o.weight_decay);
        else if (!strcmp(a, "--clip")) bad = parse_f(a, v, &o.clip);
        else if (!strcmp(a, "--peak")) bad = parse_f(a, v, &f), o.peak_gflops_core = f;
        else if (!strcmp(a, "--time-budget")) bad = parse_f(a, v, &f) || !(f > 0), o.time_budget_s = f;
        else if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--train")) snprintf(train_path, sizeof train_path, "%s", v);
        else if (!strcmp(a, "--val")) snprintf(val_path, sizeof val_path, "%s", v);
        else if (!strcmp(a, "--out")) o.out_dir = v;
        else if (!strcmp(a, "--mesh-order")) {
            char e[256];
            if ((bad = lc_plan_parse_order(v, o.plan.order, e, sizeof e) != 0)) fprintf(stderr, "longctx train: %s\n", e);
        }
        else if (!strcmp(a, "--dump-params")) o.dump_params = v;
        else if (!strcmp(a, "--dump-grads")) o.dump_grads = v;
        else if (!strcmp(a, "--save-dir")) o.save_dir = v;
        else if (!strcmp(a, "--save-every")) bad = parse_i64(a, v, 1, &o.save_every);
        else if (!strcmp(a, "--keep")) bad = parse_i64(a, v, 0, &x), o.keep = (int)x;
        else if (!strcmp(a, "--init-from")) o.init_from = v;
        else if (!strcmp(a, "--heap")) {
            if (lc_parse_size(v, &heap) || !heap) bad = 1, fprintf(stderr, "longctx train: --heap '%s' is not a size\n", v);
        } else if (!strcmp(a, "--layout")) {
            if (lc_cp_layout_parse(v, &o.plan.layout)) bad = 1, fprintf(stderr, "longctx train: --layout '%s': zigzag, contiguous or striped\n", v);
        } else if (!strcmp(a, "--cp-algo")) {
            if (!strcmp(v, "ring")) o.plan.algo = LC_CP_RING;
            else if (!strcmp(v, "allgather")) o.plan.algo = LC_CP_ALLGATHER;
            else bad = 1, fprintf(stderr, "longctx train: --cp-algo '%s': ring or allgather\n", v);
        } else if (!strcmp(a, "--permute")) {
            if (lc_lowering_parse(v, &o.plan.lowering) || o.plan.lowering == LC_LOWER_COMPUTE_ONLY)
                bad = 1, fprintf(stderr, "longctx train: --permute '%s': one_sided, two_sided, zero_copy or auto\n", v);
        } else if (!strcmp(a, "--dtype")) {
            if (!strcmp(v, "f32")) o.compute = LC_DT_F32;
            else if (!strcmp(v, "bf16")) o.compute = LC_DT_BF16;
            else bad = 1, fprintf(stderr, "longctx train: --dtype '%s': f32 or bf16\n", v);
        } else {
            fprintf(stderr, "longctx train: unknown option %s (see --help)\n", a);
            return 2;
        }
        if (bad) return 2;
    }
    int *dst[6] = {&o.model.n_layers, &o.model.dim, &o.model.n_heads, &o.model.n_kv_heads, &o.model.ffn_dim, &o.model.vocab};
    for (int k = 0; k < 6; k++)
        if (have_shape[k]) {
            if (shape[k] > (1 << 30)) {
                fprintf(stderr, "longctx train: %s %lld is too large\n", SHAPE[k], (long long)shape[k]);
                return 2;
            }
            *dst[k] = (int)shape[k];
            o.model_name = "custom";
        }
    /* --resume auto: one command that starts a run and restarts it (a job script's): resume
     * from --save-dir's newest complete checkpoint when there is one, else start fresh. Every
     * PE decides before any of them saves, so all decide alike. */
    const char *auto_fresh = NULL;
    if (o.resume && !strcmp(o.resume, "auto")) {
        char latest[4096];
        if (!o.save_dir) {
            fprintf(stderr, "longctx train: --resume auto needs --save-dir (the folder the run saves to and "
                            "resumes from)\n");
            return 2;
        }
        if (lc_ckpt_find_latest(o.save_dir, latest, sizeof latest) == 0) {
            o.resume = "";
        } else {
            o.resume = NULL;
            auto_fresh = o.save_dir;
        }
    }
    if (o.resume && !o.init_from) {
        const char *src = o.resume[0] ? o.resume : o.save_dir;
        char ck[4096];
        lc_ckpt_state st;
        int lpe = 0, lnp = 0, speak = !lc_launched_as(&lpe, &lnp) || lpe == 0;
        /* a folder without a checkpoint is reported where the model or the load is */
        if (src && lc_ckpt_find_latest(src, ck, sizeof ck) == 0 && lc_ckpt_read_state(ck, &st) == 0 &&
            resolve_from_checkpoint(&o, ck, &st, argc, argv, speak))
            return 2;
    }
    int any_shape = 0;
    for (int k = 0; k < 6; k++) any_shape |= have_shape[k];
    if ((o.resume || o.init_from) && !any_shape && !given(argc, argv, "--model")) {
        /* The model is the checkpoint's: read its config.json (every PE reads the same). */
        char ck[4096], cfgp[4200];
        const char *src = o.init_from ? o.init_from : o.resume[0] ? o.resume : o.save_dir;
        int bad = !src;
        if (!bad && o.init_from) snprintf(ck, sizeof ck, "%s", src);
        else if (!bad) bad = lc_ckpt_find_latest(src, ck, sizeof ck) != 0;
        if (!bad) {
            snprintf(cfgp, sizeof cfgp, "%s/config.json", ck);
            float theta = o.model.rope_theta;
            bad = lc_ckpt_read_config(cfgp, &o.model, NULL) != 0;
            if (o.rope_theta_set) o.model.rope_theta = theta;
            o.model_name = "checkpoint";
        }
        if (bad) {
            fprintf(stderr, "longctx train: %s%s\n", o.init_from ? "--init-from: " : "--resume: ",
                    src ? lc_ckpt_last_error() : "give a folder or --save-dir");
            return 2;
        }
    }
    if (o.plan.seq_len > o.model.max_seq) o.model.max_seq = o.plan.seq_len; /* max_seq is checkpoint metadata */
    if (data && !train_path[0]) { /* an explicit --train wins over --data */
        snprintf(train_path, sizeof train_path, "%s/train.bin", data);
        if (!val_path[0]) {
            snprintf(val_path, sizeof val_path, "%s/val.bin", data);
            if (!file_exists(val_path)) val_path[0] = 0;
        }
    }
    if (!train_path[0]) {
        fprintf(stderr, "longctx train: give --data DIR (with train.bin, from `longctx prepare-data DIR`) or --train FILE\n");
        return 2;
    }
    o.train_path = train_path;
    o.val_path = val_path[0] ? val_path : NULL;
    if (!o.out_dir) o.out_dir = "train_out";

    int launched_pe = 0, launched_n = 0, launched = lc_launched_as(&launched_pe, &launched_n);
    int n_pes = launched ? launched_n : (pes ? pes : o.plan.dp * o.plan.cp * o.plan.tp);
    if (pes && pes != n_pes) {
        fprintf(stderr, "longctx train: --pes %d but the launcher started %d PEs\n", pes, n_pes);
        return 2;
    }
    /* Everything checkable before a PE starts is checked here; under a launcher every PE
     * checks, PE 0 speaks. */
    char err[1024];
    int my_pe = launched_pe;
    if (backend) {
        if (strcmp(backend, "shm") && strcmp(backend, "mpi") && strcmp(backend, "auto")) {
            fprintf(stderr, "longctx train: --backend %s: expected shm, mpi or auto\n", backend);
            return 2;
        }
        if (!strcmp(backend, "mpi") && !launched && n_pes > 1) {
            fprintf(stderr, "longctx train: --backend mpi: start the PEs with mpirun -n %d longctx train ...\n", n_pes);
            return 2;
        }
        setenv("LONGCTX_BACKEND", backend, 1);
    }
    if (!worker && lc_trainer_check(&o, n_pes, err, sizeof err)) {
        if (my_pe == 0) fprintf(stderr, "longctx train: %s\n", err);
        return 2;
    }
    if (auto_fresh && !o.quiet && ((launched && my_pe == 0) || (!launched && n_pes == 1)))
        printf("train: --resume auto: no checkpoint in %s yet, starting a new run\n", auto_fresh);
    if (!launched && n_pes > 1) {
        /* Re-run as the PEs of the mesh. */
        char self[4096];
        ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
        if (len <= 0) {
            fprintf(stderr, "longctx train: cannot find my own executable\n");
            return 1;
        }
        self[len] = 0;
        char **args = calloc((size_t)argc + 4, sizeof *args);
        if (!args) return 1;
        int k = 0;
        args[k++] = self;
        args[k++] = "train";
        args[k++] = "--worker";
        for (int i = 1; i < argc; i++) args[k++] = argv[i];
        fflush(stdout);
        lc_launch_opts lo = {n_pes, heap, 0};
        int rc = lc_launch(&lo, args);
        free(args);
        return rc < 0 ? 1 : rc;
    }
    lc_world *w;
    lc_world_opts wo = {0};
    wo.heap_bytes = heap;
    if (lc_world_init(&wo, &w)) {
        fprintf(stderr, "longctx train: cannot join the world\n");
        return 1;
    }
    /* Every PE measures its own core at once (the launcher binds each PE to its core). */
    if (!(o.peak_gflops_core > 0)) o.peak_fn = measure_peak;
    int rc = lc_trainer_run(w, &o);
    if (rc) {
        /* an error all PEs agreed on is printed by the one that speaks for them */
        int who = lc_train_error_reporter();
        if (who < 0) fprintf(stderr, "longctx train: PE %d: %s\n", lc_my_pe(w), lc_train_last_error());
        else if (who == lc_my_pe(w)) fprintf(stderr, "longctx train: %s\n", lc_train_last_error());
        if (rc == LC_ERR_ABORT || lc_n_pes(w) > 1) _exit(1); /* the world may be unusable */
        lc_world_finalize(w);
        return 1;
    }
    return lc_world_finalize(w) ? 1 : 0;
}
