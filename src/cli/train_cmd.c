/* longctx train: parses the flags, checks everything that can be checked before any PE
 * starts (mesh, model shape, layout, data files), then re-runs itself as the PEs of a
 * DP x CP mesh on the shm backend (or runs as the PEs of `longctx launch`). */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench/peak.h"
#include "cli/cli.h"
#include "cli/train_opts.h"
#include "planner/planner.h"
#include "common/settings.h"
#include "longctx/ckpt.h"
#include "longctx/trainer.h"

static double measure_peak(void)
{
    return lc_fma_peak_gflops(lc_attn_impl_best());
}

static int file_exists(const char *p)
{
    struct stat st;
    return !stat(p, &st);
}

/* --resume: the run's recorded settings come from the checkpoint (train_opts.c says which).
 * *has = 1 when there is one (st, ck: its state and folder); a folder without one is reported
 * later, where the model or the load is. */
static int take_from_checkpoint(lc_train_args *a, lc_ckpt_state *st, char *ck, size_t cap, int *has, char *took,
                                char *said, size_t said_len, char *err, size_t len)
{
    *has = 0;
    if (!a->o.resume || a->o.init_from) return 0;
    const char *src = a->o.resume[0] ? a->o.resume : a->o.save_dir;
    if (!src || lc_ckpt_find_latest(src, ck, cap) || lc_ckpt_read_state(ck, st)) return 0;
    *has = 1;
    return lc_train_args_resume(a, st, ck, took, said_len, said, said_len, err, len);
}

/* `train` exits with this when it stopped early on request (SIGTERM) with its progress saved:
 * the same command with --resume goes on (sysexits' EX_TEMPFAIL). */
#define LC_EXIT_STOPPED 75

static void on_term(int sig)
{
    (void)sig;
    lc_trainer_request_stop();
}

/* One metrics.jsonl record per restart, beside the steps' (continue_metrics keeps them). */
static void record_restart(const lc_trainer_opts *o, int n, int64_t from, const lc_launch_report *r, double lost)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/metrics.jsonl", o->out_dir);
    FILE *f = fopen(p, "a");
    if (!f) return;
    fprintf(f, "{\"restart\":%d,\"resumed_from_step\":%lld,\"failed_pe\":%d,\"how\":\"%s\",\"seconds_lost\":%.1f}\n",
            n, (long long)from, r->pe, r->how, lost);
    fclose(f);
}

/* The newest complete checkpoint under dir: its step and age in seconds, or -1 when none. */
static int64_t newest_step(const char *dir, double *age_s)
{
    char ck[4096];
    lc_ckpt_state st;
    struct stat sb;
    if (lc_ckpt_find_latest(dir, ck, sizeof ck) || lc_ckpt_read_state(ck, &st)) return -1;
    *age_s = stat(ck, &sb) == 0 ? difftime(time(NULL), sb.st_mtime) : 0;
    return st.step;
}

/* A PE lost this soon after its world started, twice in a row, cannot be started again. */
#define LC_QUICK_FAIL_S 20.0

/* The largest valid mesh of fewer PEs than plan p (at least min_pes) that keeps the global
 * batch (dp x accum sequences: DP must divide it, the accumulation takes the rest): the most
 * PEs, then p's TP, then the most CP. 0 with *out set, or -1 when there is none. */
static int smaller_mesh(const lc_trainer_opts *o, int min_pes, lc_plan *out)
{
    const lc_plan *p = &o->plan;
    const int64_t gb = (int64_t)p->dp * o->accum;
    const int n = p->dp * p->cp * p->tp;
    char e[256];
    for (int pes = n - 1; pes >= min_pes && pes >= 1; pes--) {
        int best = 0;
        lc_plan c = *p;
        for (int tp = 1; tp <= pes; tp++)
            for (int cp = 1; tp * cp <= pes; cp++) {
                if (pes % (tp * cp)) continue;
                int dp = pes / (tp * cp);
                if (gb % dp) continue;
                lc_plan q = *p;
                q.dp = dp, q.cp = cp, q.tp = tp;
                if (q.tp == 1) q.sp = 0;
                if (lc_plan_validate(&q, pes, e, sizeof e) || lc_model_tp_check(&o->model, tp, e, sizeof e)) continue;
                int score = (tp == p->tp) * 1000 + cp; /* the same TP, then the most CP */
                if (!best || score > best) best = score, c = q;
            }
        if (best) {
            *out = c;
            return 0;
        }
    }
    return -1;
}

/* Starts the PEs of the mesh as copies of this command (shm backend) and, with
 * --max-restarts, starts them again from the newest checkpoint when one was lost: a PE
 * killed, gone without finalizing, or silent past its heartbeat. An error the PEs reported
 * themselves would only repeat, so it ends the run; so does a signal to this process. */
static int run_pes(const lc_train_args *a, const lc_trainer_opts *o, int argc, char **argv, int n_pes)
{
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        fprintf(stderr, "longctx train: cannot find my own executable\n");
        return 1;
    }
    self[len] = 0;
    char **args = calloc((size_t)argc + 16, sizeof *args);
    if (!args) return 1;
    lc_launch_report rep;
    lc_launch_opts lo = {n_pes, a->heap, 0, a->term_grace, &rep};
    int rc = 0, from_ck = 0; /* from_ck: the next start resumes from the save dir */
    lc_plan mesh = o->plan;   /* the mesh now: smaller than asked once a PE could not start */
    int shrunk = 0, last_quick_pe = -1;
    char dims[3][16];
    for (int attempt = 0;; attempt++) {
        int k = 0;
        args[k++] = self;
        args[k++] = "train";
        args[k++] = "--worker";
        for (int i = 1; i < argc; i++) {
            /* a restart resumes from the save dir: the first start's --resume / --init-from go */
            int drop = from_ck && (!strcmp(argv[i], "--resume") || !strcmp(argv[i], "--init-from"));
            /* a smaller mesh: its own --dp --cp --tp, and --accum follows from the batch */
            static const char *const MESH[5] = {"--dp", "--cp", "--tp", "--pes", "--accum"};
            for (int m = 0; m < 5 && shrunk && !drop; m++) drop = !strcmp(argv[i], MESH[m]);
            if (drop) {
                if (i + 1 < argc && strncmp(argv[i + 1], "--", 2)) i++;
                continue;
            }
            args[k++] = argv[i];
        }
        if (from_ck) {
            args[k++] = "--resume";
            args[k++] = "auto";
        }
        if (shrunk) {
            snprintf(dims[0], 16, "%d", mesh.dp);
            snprintf(dims[1], 16, "%d", mesh.cp);
            snprintf(dims[2], 16, "%d", mesh.tp);
            args[k++] = "--dp", args[k++] = dims[0], args[k++] = "--cp", args[k++] = dims[1];
            args[k++] = "--tp", args[k++] = dims[2];
        }
        args[k] = NULL;
        fflush(stdout);
        double t_start = lc_now_s();
        rc = lc_launch(&lo, args);
        if (rc <= 0 || rc == LC_EXIT_STOPPED || !rep.lost) break;
        /* the same PE lost at once again: it cannot be started, so go on without it */
        int quick = rep.t_fail - t_start < LC_QUICK_FAIL_S;
        int cannot_start = quick && rep.pe == last_quick_pe;
        last_quick_pe = quick ? rep.pe : -1;
        if (cannot_start && a->min_pes > 0) {
            lc_trainer_opts now = *o;
            now.plan = mesh;
            now.accum = (int)(((int64_t)o->plan.dp * o->accum) / mesh.dp);
            lc_plan next;
            if (smaller_mesh(&now, a->min_pes, &next)) {
                fprintf(stderr, "longctx train: PE %d cannot be started again (%s) and no valid mesh of %d or more PEs "
                        "below DP %d x CP %d x TP %d keeps the global batch\n", rep.pe, rep.how, a->min_pes, mesh.dp,
                        mesh.cp, mesh.tp);
                break;
            }
            printf("train: PE %d cannot be started again (%s twice at start): going on with DP %d x CP %d x TP %d "
                   "(%d PEs) instead of DP %d x CP %d x TP %d\n", rep.pe, rep.how, next.dp, next.cp, next.tp,
                   next.dp * next.cp * next.tp, mesh.dp, mesh.cp, mesh.tp);
            mesh = next;
            shrunk = 1;
            last_quick_pe = -1;
            lo.n_pes = mesh.dp * mesh.cp * mesh.tp;
        }
        if (attempt == a->max_restarts) {
            fprintf(stderr, "longctx train: PE %d %s; no restart left after %d (--max-restarts)\n", rep.pe, rep.how,
                    a->max_restarts);
            break;
        }
        double age = 0;
        int64_t from = newest_step(o->save_dir, &age);
        /* since the newest checkpoint (or this start) until now: the steps to run again, the
         * detection and the teardown */
        double lost = from >= 0 ? age : lc_now_s() - t_start;
        from_ck = from >= 0; /* else nothing saved yet: start again as the first time */
        printf("train: restart %d/%d: PE %d %s; resuming from %s (about %.0f s of work lost)\n", attempt + 1,
               a->max_restarts, rep.pe, rep.how, from < 0 ? "the start" : "the newest checkpoint", lost);
        if (from >= 0) printf("train: restart %d/%d: the newest checkpoint is step %lld\n", attempt + 1,
                              a->max_restarts, (long long)from);
        fflush(stdout);
        if (o->out_dir) record_restart(o, attempt + 1, from < 0 ? 0 : from, &rep, lost);
    }
    free(args);
    return rc < 0 ? 1 : rc;
}

/* --plan auto: the planner's best layout for this host and model, for --pes (else one PE per
 * core) and a batch of one sequence per PE, so every layout it ranks trains the same tokens per
 * step (the accumulation makes up what DP does not). Every PE decides from the same cached
 * profile; the first run calibrates it. */
static int plan_auto(lc_train_args *a, int speak)
{
    lc_trainer_opts *op = &a->o;
    if (strcmp(a->plan_mode, "auto")) {
        if (speak) fprintf(stderr, "longctx train: --plan %s: the only choice is auto\n", a->plan_mode);
        return -1;
    }
    if (lc_trainer_on_gpu(op)) {
        /* the layouts it ranks are this host's CPU profile; a GPU run would need its own */
        if (speak)
            fprintf(stderr, "longctx train: --plan auto ranks layouts on this host's CPUs (its measured profile); "
                            "with --device cuda give the mesh (--cp, --dp), or ask `longctx plan --profile "
                            "h100-dgx` first\n");
        return -1;
    }
    static const char *const MINE[] = {"--dp", "--cp", "--tp", "--sp", "--cp-algo", "--ulysses", "--layout",
                                       "--permute", "--recompute", "--accum", "--mesh-order"};
    for (size_t i = 0; i < sizeof MINE / sizeof MINE[0]; i++)
        if (lc_train_args_given(a, MINE[i])) {
            if (speak) fprintf(stderr, "longctx train: --plan auto chooses %s itself: give one or the other\n", MINE[i]);
            return -1;
        }
    int lpe = 0, lnp = 0, n = a->pes, launched = lc_launched_as(&lpe, &lnp);
    lc_plan pl = op->plan;
    int rec = 0;
    char why[512] = "";
    if (launched) {
        /* a PE of this launcher: the parent chose (each PE sees only its own core, and must not
         * choose again); under mpirun there is no parent to ask */
        const char *c = lc__env_str("LONGCTX_PLAN_CHOSEN");
        int al = 0, la = 0, lo = 0;
        if (!c || sscanf(c, "%d,%d,%d,%d,%d,%d,%d,%d,%d,%d", &pl.dp, &pl.cp, &pl.tp, &pl.sp, &al, &pl.ulysses, &la,
                         &lo, &rec, &op->accum) != 10) {
            if (speak) fprintf(stderr, "longctx train: --plan auto chooses in the process that starts the PEs; under "
                                       "mpirun, run `longctx plan` and give its layout instead\n");
            return -1;
        }
        pl.algo = (lc_cp_algo)al, pl.layout = (lc_cp_layout)la, pl.lowering = (lc_lowering)lo;
        n = lnp;
    } else {
        if (!n) {
            cpu_set_t cs;
            n = sched_getaffinity(0, sizeof cs, &cs) ? 1 : CPU_COUNT(&cs);
        }
        if (lc_planner_auto(&op->model, op->plan.seq_len, n, n, op->compute, &pl, &rec, why, sizeof why)) return -1;
        op->accum = n / pl.dp;
        char v[128];
        snprintf(v, sizeof v, "%d,%d,%d,%d,%d,%d,%d,%d,%d,%d", pl.dp, pl.cp, pl.tp, pl.sp, (int)pl.algo, pl.ulysses,
                 (int)pl.layout, (int)pl.lowering, rec, op->accum);
        setenv("LONGCTX_PLAN_CHOSEN", v, 1); /* for the PEs this process starts */
    }
    op->plan.dp = pl.dp, op->plan.cp = pl.cp, op->plan.tp = pl.tp, op->plan.sp = pl.sp;
    op->plan.algo = pl.algo, op->plan.ulysses = pl.ulysses, op->plan.layout = pl.layout;
    op->plan.lowering = pl.lowering;
    op->recompute = rec;
    a->pes = n;
    if (launched) return 0;
    if (speak) printf("plan auto: %d PEs, %d sequence%s per step: %s\n", n, n, n == 1 ? "" : "s", why);
    return 0;
}

int lc_cmd_train(int argc, char **argv)
{
    static lc_train_args args;
    lc_train_args *a = &args;
    lc_train_args_defaults(a);
    lc_trainer_opts *op = &a->o;
    char err[2048];
    int prc = lc_train_args_parse(a, argc, argv, err, sizeof err);
    if (prc == 1) {
        lc_train_usage(stdout);
        return 0;
    }
    if (prc) {
        fprintf(stderr, "longctx train: %s\n", err);
        return 2;
    }
    int lpe = 0, lnp = 0, launched0 = lc_launched_as(&lpe, &lnp);
    const int speak_err = !launched0 || lpe == 0;
    /* --resume auto: one command that starts a run and restarts it (a job script's): resume
     * from --save-dir's newest complete checkpoint when there is one, else start fresh. Every
     * PE decides before any of them saves, so all decide alike. */
    const char *auto_fresh = NULL;
    if (op->resume && !strcmp(op->resume, "auto")) {
        char latest[4096];
        if (!op->save_dir) {
            fprintf(stderr, "longctx train: --resume auto needs --save-dir (the folder the run saves to and "
                            "resumes from)\n");
            return 2;
        }
        if (lc_ckpt_find_latest(op->save_dir, latest, sizeof latest) == 0) {
            op->resume = "";
        } else {
            op->resume = NULL;
            auto_fresh = op->save_dir;
        }
    }
    static char ck[4096], took[2048], said[2048];
    static lc_ckpt_state st;
    int has_ck = 0;
    if (take_from_checkpoint(a, &st, ck, sizeof ck, &has_ck, took, said, sizeof said, err, sizeof err)) {
        if (speak_err) fprintf(stderr, "longctx train: --resume: %s\n", err);
        return 2;
    }
    int any_shape = 0;
    static const char *const SHAPE[6] = {"--layers", "--dim", "--heads", "--kv-heads", "--ffn", "--vocab"};
    for (int k = 0; k < 6; k++) any_shape |= lc_train_args_given(a, SHAPE[k]);
    if ((op->resume || op->init_from) && !any_shape && !lc_train_args_given(a, "--model")) {
        /* The model is the checkpoint's: read its config.json (every PE reads the same). */
        char cfgp[4200], dir[4096];
        const char *src = op->init_from ? op->init_from : op->resume[0] ? op->resume : op->save_dir;
        int bad = !src;
        if (!bad && op->init_from) snprintf(dir, sizeof dir, "%s", src);
        else if (!bad) bad = lc_ckpt_find_latest(src, dir, sizeof dir) != 0;
        if (!bad) {
            snprintf(cfgp, sizeof cfgp, "%s/config.json", dir);
            float theta = op->model.rope_theta;
            bad = lc_ckpt_read_config(cfgp, &op->model, NULL) != 0;
            if (op->rope_theta_set) op->model.rope_theta = theta;
            op->model_name = "checkpoint";
        }
        if (bad) {
            fprintf(stderr, "longctx train: %s%s\n", op->init_from ? "--init-from: " : "--resume: ",
                    src ? lc_ckpt_last_error() : "give a folder or --save-dir");
            return 2;
        }
    }
    if (op->plan.seq_len > op->model.max_seq) op->model.max_seq = op->plan.seq_len; /* max_seq is checkpoint metadata */
    if (a->data && !a->train[0]) { /* an explicit --train wins over --data */
        snprintf(a->train, sizeof a->train, "%s/train.bin", a->data);
        if (!a->val[0]) {
            snprintf(a->val, sizeof a->val, "%s/val.bin", a->data);
            if (!file_exists(a->val)) a->val[0] = 0;
        }
    }
    if (!a->train[0]) {
        fprintf(stderr, "longctx train: give --data DIR (with train.bin, from `longctx prepare-data DIR`) or --train FILE\n");
        return 2;
    }
    op->train_path = a->train;
    op->val_path = a->val[0] ? a->val : NULL;
    if (has_ck) {
        /* a given setting that conflicts with the checkpoint's, found before any PE starts */
        lc_tokfile *tf = NULL;
        if (lc_tokfile_open(op->train_path, 0, 0, &tf) == 0 &&
            lc_trainer_resume_check(op, &st, ck, tf, err, sizeof err)) {
            lc_tokfile_close(tf);
            if (speak_err) fprintf(stderr, "longctx train: --resume: %s\n", err);
            return 2;
        }
        lc_tokfile_close(tf);
    }
    if (a->plan_mode && plan_auto(a, speak_err)) return 2;
    lc_trainer_opts o = *op;
    const char *backend = a->backend;
    const int pes = a->pes, worker = a->worker;
    const size_t heap = a->heap;

    int launched_pe = 0, launched_n = 0, launched = lc_launched_as(&launched_pe, &launched_n);
    int n_pes = launched ? launched_n : (pes ? pes : o.plan.dp * o.plan.cp * o.plan.tp);
    if (pes && pes != n_pes) {
        fprintf(stderr, "longctx train: --pes %d but the launcher started %d PEs\n", pes, n_pes);
        return 2;
    }
    /* Everything checkable before a PE starts is checked here; under a launcher every PE
     * checks, PE 0 speaks. */
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
    if (has_ck && !o.quiet && ((launched && my_pe == 0) || (!launched && n_pes == 1))) {
        if (took[0]) printf("train: --resume: as recorded in %s: %s\n", ck, took);
        if (said[0]) printf("train: --resume: this run changes %s\n", said);
    }
    if (a->max_restarts > 0 && launched && !worker) {
        if (my_pe == 0)
            fprintf(stderr, "longctx train: --max-restarts needs train to start its own PEs (not `longctx launch` or "
                            "mpirun, which own the processes: restart the job with --resume auto instead)\n");
        return 2;
    }
    if (!worker && a->min_pes > 0 && (a->max_restarts < 1 || a->min_pes >= n_pes)) {
        fprintf(stderr, "longctx train: --min-pes %d needs --max-restarts and must be below the mesh's %d PEs\n",
                a->min_pes, n_pes);
        return 2;
    }
    if (a->max_restarts > 0 && !o.save_dir) {
        fprintf(stderr, "longctx train: --max-restarts needs --save-dir (a restart goes on from the newest checkpoint)\n");
        return 2;
    }
    if (!launched && (n_pes > 1 || a->max_restarts > 0)) return run_pes(a, &o, argc, argv, n_pes);
    /* tests: a PE that cannot start (it dies at once, every time, while the mesh has it) */
    const char *fail_pe = lc__env_str("LONGCTX_TEST_FAIL_PE");
    if (fail_pe && launched && atoi(fail_pe) == launched_pe) raise(SIGKILL);
    lc_world *w;
    lc_world_opts wo = {0};
    wo.heap_bytes = heap;
    if (lc_world_init(&wo, &w)) {
        fprintf(stderr, "longctx train: cannot join the world\n");
        return 1;
    }
    /* Every PE measures its own core at once (the launcher binds each PE to its core). */
    if (!(o.peak_gflops_core > 0)) o.peak_fn = measure_peak;
    /* SIGTERM (from the launcher or a scheduler): finish the step, save, exit 75 */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    int rc = lc_trainer_run(w, &o);
    if (rc == LC_STOPPED) return lc_world_finalize(w) ? 1 : LC_EXIT_STOPPED;
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
