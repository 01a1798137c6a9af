/* `longctx bench train --peers torch,jax`: ours and the Python peers in one run.
 *
 * For each sequence and CP size the workers of ours run first (the usual bench train worker,
 * told --peer-out DIR): PE 0 writes our checkpoint (lc_ckpt_save) of the initial parameters, the
 * token sequence and its own result row into DIR. Then each peer (bench/peers/train_peer.py)
 * loads that checkpoint and those tokens and runs the same steps on the same cores: the torch
 * peer (no CP) on all the cores ours used, the JAX peer with CP host devices. A peer's first
 * step loss must match ours (relative LC_PEER_LOSS_RTOL) before its speed counts. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_train_peers.h"
#include "common/settings.h"
#include "longctx/ckpt.h"

/* fp32 tolerance on the mean CE: the per-token terms agree to a few ulps and both sides sum
 * them in a wide or pairwise order, so the mean agrees to ~1e-6 relative at 16K tokens. */
#define LC_PEER_LOSS_RTOL 1e-5
/* bf16 compute (ours: matmul and attention inputs rounded to bf16, fp32 accumulation; torch:
 * autocast to bf16): the projects' bf16 tolerance */
#define LC_PEER_LOSS_RTOL_BF16 1e-2
#define RTOL(o) ((o)->bf16 ? LC_PEER_LOSS_RTOL_BF16 : LC_PEER_LOSS_RTOL)

/* The optimizer of bench train's step (bench_train.c run_one): AdamW over every parameter,
 * global-norm clipping at 1, constant learning rate. The peers are given the same values. */
static const char *const PEER_OPT_ARGS = "--lr 1e-4 --beta1 0.9 --beta2 0.95 --eps 1e-8 --wd 0.1 --clip 1.0";

int lc_bench_peers_parse(const char *s, unsigned *mask)
{
    *mask = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "torch")) *mask |= LC_PEER_TORCH;
        else if (!strcmp(t, "jax")) *mask |= LC_PEER_JAX;
        else {
            fprintf(stderr, "longctx bench train: --peers: '%s' is not torch or jax\n", t);
            return -1;
        }
    }
    if (!*mask) {
        fprintf(stderr, "longctx bench train: --peers needs torch, jax or torch,jax\n");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ worker side */

int lc_bench_peer_inputs(const char *dir, lc_world *w, lc_model *m, lc_adamw *opt, const int32_t *tok,
                         int64_t S)
{
    char path[4200];
    int me = lc_my_pe(w);
    const lc_model_run *run = lc_model_get_run(m);
    lc_ckpt_state st = {0};
    st.seq_len = S;
    st.dp = st.tp = 1;
    st.cp = lc_n_pes(w);
    st.lr = st.lr_min = 1e-4f;
    st.beta1 = 0.9f;
    st.beta2 = 0.95f;
    st.eps = 1e-8f;
    st.weight_decay = 0.1f;
    snprintf(st.layout, sizeof st.layout, "%s", lc_cp_layout_name(run->plan->layout));
    snprintf(st.model_name, sizeof st.model_name, "bench");
    lc_ckpt_save_opts so = {lc_team_world(w), me == 0, 1, 0};
    snprintf(path, sizeof path, "%s/ckpt", dir);
    if (lc_ckpt_save(m, opt, &st, path, &so)) {
        fprintf(stderr, "bench train: PE %d: checkpoint for the peers: %s\n", me, lc_ckpt_last_error());
        return -1;
    }
    if (me != 0) return 0;
    snprintf(path, sizeof path, "%s/tokens.i32", dir);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(tok, sizeof *tok, (size_t)S, f) != (size_t)S || fclose(f)) {
        fprintf(stderr, "bench train: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int lc_bench_peer_ours(const char *dir, const char *model, int64_t S, int cp, int threads,
                       const char *lowering, double step_s, double tps, double mem, double loss0, double cpu_s,
                       double flops_tok, double peak_gflops, double cores)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/ours.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "bench train: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f,
            "{\"bench\":\"train\",\"impl\":\"longctx\",\"model\":\"%s\",\"s\":%lld,\"cp\":%d,\"tp\":1,"
            "\"threads\":%d,\"lowering\":\"%s\",\"step_s\":%.6g,\"tokens_per_s\":%.6g,"
            "\"peak_mem_bytes\":%.0f,\"loss0\":%.9g,\"cpu_s\":%.6g,\"flops_per_token\":%.9g,"
            "\"peak_gflops_core\":%.6g,\"cores\":%.0f}\n",
            model, (long long)S, cp, threads, lowering, step_s, tps, mem, loss0, cpu_s, flops_tok, peak_gflops, cores);
    return fclose(f) ? -1 : 0;
}

double lc_bench_proc_cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) return NAN;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* ------------------------------------------------------------------ parent side */




typedef struct {
    char impl[32], lowering[32], why[400];
    int cp, threads, valid; /* valid: ran, and the loss matched ours */
    double step_s, tps, mem, proc_mem, fw_mem, loss0, cpu_s; /* cpu_s: all PEs' CPU per step */
    /* ours only: the model's FLOPs per token (the MFU count), one core's FMA peak measured by
     * our workers, cores used; every row's MFU is judged by ours */
    double flops_tok, peak, cores;
} row_t;

/* A row's MFU: the model FLOPs per token (lc_model_flops_per_token: causal attention counted
 * without the backward's recomputation) at its tokens/s, over the FMA peak of the cores. */
static double row_mfu(const row_t *r, const row_t *ours)
{
    if (!ours || !(ours->peak > 0) || !(ours->cores > 0) || !(ours->flops_tok > 0)) return NAN;
    return ours->flops_tok * r->tps / (ours->peak * 1e9 * ours->cores);
}

static void print_header(const lc_bench_peer_opts *o)
{
    if (o->json) return;
    printf("# %s compute%s\n", o->bf16 ? "bf16" : "fp32",
           o->bf16 ? " (ours: bf16 matmul and attention inputs, fp32 accumulation and master weights; torch: "
                     "autocast to bf16, fp32 weights)" : "");
    printf("# longctx bench train with peers: one step = forward + backward + AdamW, medians of %d steps\n"
           "# after %d warm-up; same weights (our checkpoint), tokens, sequence and cores; a peer's\n"
           "# first-step loss must match ours within %g relative or its row is invalid.\n"
           "# cpu_s: CPU seconds of a step summed over all threads and PEs (robust to a shared machine)\n"
           "# MFU: the model's FLOPs at that rate over the FMA peak of the cores (the best our workers measured).\n"
           "# ceiling: the most any implementation could beat the peer by, running at 100%% MFU\n"
           "# (1 / the peer's MFU; an upper bound: the backward's recomputation is not counted)\n"
           "%-8s %-6s %7s %3s %4s %-10s %9s %10s %6s %8s %10s %12s %6s %s\n",
           o->steps, o->warm, RTOL(o), "impl", "model", "seq", "cp", "thr", "lowering", "step_s",
           "tok/s", "MFU", "cpu_s", "peakMiB/PE", "loss0", "loss", "vs ours (wall tok/s, cpu, memory/PE)");
}

static void print_row(const lc_bench_peer_opts *o, long long S, const row_t *r, const row_t *ours)
{
    double rel = ours && r != ours ? fabs(r->loss0 - ours->loss0) / fabs(ours->loss0) : 0.0;
    if (o->json) {
        printf("{\"bench\":\"train\",\"impl\":\"%s\",\"model\":\"%s\",\"s\":%lld,\"cp\":%d,\"tp\":1,"
               "\"threads\":%d,\"lowering\":\"%s\"",
               r->impl, o->model, S, r->cp, r->threads, r->lowering);
        if (r->why[0]) {
            printf(",\"valid\":false,\"error\":\"%s\"}\n", r->why);
            return;
        }
        printf(",\"step_s\":%.6g,\"tokens_per_s\":%.6g,\"peak_mem_bytes\":%.0f,\"loss0\":%.9g,\"cpu_s\":%.6g,"
               "\"tokens_per_cpu_s\":%.6g,\"mfu\":%.6g,\"peak_gflops_core\":%.4g,\"cores\":%.0f",
               r->step_s, r->tps, r->mem, r->loss0, r->cpu_s, (double)S / r->cpu_s, row_mfu(r, ours),
               ours ? ours->peak : NAN, ours ? ours->cores : NAN);
        if (r != ours) {
            printf(",\"process_peak_bytes\":%.0f,\"framework_rss_bytes\":%.0f,\"ours_cp\":%d,\"ours_loss0\":%.9g,\"loss_rel_err\":%.3g,\"loss_rtol\":%g,"
                   "\"valid\":%s",
                   r->proc_mem, r->fw_mem, ours ? ours->cp : 0, ours ? ours->loss0 : NAN, rel, RTOL(o), r->valid ? "true" : "false");
            if (r->valid && ours)
                printf(",\"ours_speedup\":%.4g,\"ours_cpu_speedup\":%.4g,\"ours_mem_ratio\":%.4g,"
                       "\"speedup_ceiling\":%.4g",
                       ours->tps / r->tps, r->cpu_s / ours->cpu_s, ours->mem / r->mem, 1.0 / row_mfu(r, ours));
        }
        printf("}\n");
    } else {
        printf("%-8s %-6s %7lld %3d %4d %-10s ", r->impl, o->model, S, r->cp, r->threads, r->lowering);
        if (r->why[0]) {
            printf("-- %s\n", r->why);
            return;
        }
        printf("%9.3f %10.1f %5.1f%% %8.2f %10.1f %12.7f ", r->step_s, r->tps, 100 * row_mfu(r, ours), r->cpu_s,
               r->mem / 1048576.0, r->loss0);
        if (r == ours) printf("%6s %s\n", "-", "-");
        else if (!r->valid)
            printf("%6s INVALID: loss %.9g vs ours %.9g (rel %.3g > %g)\n", "BAD", r->loss0, ours ? ours->loss0 : NAN,
                   rel, RTOL(o));
        else
            printf("%6s ours (cp %d) %.2fx tok/s (ceiling %.2fx), %.2fx cpu, %.2fx memory/PE\n", "ok", ours->cp,
                   ours->tps / r->tps, 1.0 / row_mfu(r, ours), r->cpu_s / ours->cpu_s, ours->mem / r->mem);
    }
    fflush(stdout);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    if (remove(p)) fprintf(stderr, "bench train: cannot remove %s: %s\n", p, strerror(errno));
    return 0;
}

/* Nothing this command starts outlives it: a SIGTERM, SIGINT or SIGHUP (a scheduler ending
 * the job, ^C) stops the peer running now, its whole process group (the shell, python and
 * whatever it started), and the command then removes its folders and ends with the signal.
 * Our own workers are lc_launch's, which forwards the signal to them itself. */
static volatile sig_atomic_t g_stop_sig, g_peer_pgid;

static void on_stop(int sig)
{
    g_stop_sig = sig;
    if (g_peer_pgid > 0) kill(-(pid_t)g_peer_pgid, SIGTERM);
}

/* rm -r of a run folder this process created (no symlinks followed) */
static void rm_run_dir(const char *d) { nftw(d, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

/* Runs one peer; fills r (why[] set when it did not produce a number). */
static void run_peer(const lc_bench_peer_opts *o, const char *py, const char *pdir, const char *impl,
                     const char *ckpt, const char *rundir, long long S, int cp, int threads, const row_t *ours, row_t *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->impl, sizeof r->impl, "%s", impl);
    snprintf(r->lowering, sizeof r->lowering, "%s", strcmp(impl, "jax") ? "none" : "ppermute");
    r->cp = cp;
    r->threads = threads / cp; /* per PE: the JAX peer's CP devices share its threads */
    if (!py[0]) {
        snprintf(r->why, sizeof r->why, "peer not installed (run bench/peers/install.sh)");
        return;
    }
    char cmd[12000];
    snprintf(cmd, sizeof cmd,
             "'%s' '%s/train_peer.py' --impl %s --ckpt '%s' --tokens '%s/tokens.i32' --seq %lld --cp %d "
             "--threads %d --steps %d --warm %d --dtype %s %s",
             py, pdir, impl, ckpt, rundir, S, cp, threads, o->steps, o->warm, o->bf16 ? "bf16" : "f32", PEER_OPT_ARGS);
    fflush(stdout);
    /* popen, but in a process group of its own, so that a stop reaches everything it started */
    int fd[2] = {-1, -1};
    pid_t pid = -1;
    if (pipe(fd) == 0 && (pid = fork()) == 0) {
        setpgid(0, 0);
        close(fd[0]);
        dup2(fd[1], STDOUT_FILENO);
        close(fd[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    if (pid < 0) { /* no pipe, or no fork: nothing started */
        snprintf(r->why, sizeof r->why, "could not start %s: %s", py, strerror(errno));
        if (fd[0] >= 0) close(fd[0]), close(fd[1]);
        return;
    }
    setpgid(pid, pid); /* both sides set it: whichever runs first, no kill misses the group */
    g_peer_pgid = pid;
    close(fd[1]);
    if (g_stop_sig) kill(-pid, SIGTERM); /* the stop came while it was starting */
    FILE *f = fdopen(fd[0], "r");
    if (!f) {
        snprintf(r->why, sizeof r->why, "could not read %s: %s", py, strerror(errno));
        close(fd[0]);
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
        g_peer_pgid = 0;
        return;
    }
    char line[8192];
    int got = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, "\"bench\":\"train\"")) {
            if (!o->json) fputs(line, stdout);
            continue;
        }
        got = 1;
        lc_json_str(line, "error", r->why, sizeof r->why);
        if (r->why[0]) continue;
        r->step_s = lc_json_num(line, "step_s");
        r->tps = lc_json_num(line, "tokens_per_s");
        r->mem = lc_json_num(line, "peak_mem_bytes");
        r->proc_mem = lc_json_num(line, "process_peak_bytes");
        r->fw_mem = lc_json_num(line, "framework_rss_bytes");
        r->cpu_s = lc_json_num(line, "cpu_s");
        r->loss0 = lc_json_num(line, "loss0");
        lc_json_str(line, "lowering", r->lowering, sizeof r->lowering);
    }
    fclose(f);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    g_peer_pgid = 0;
    if (g_stop_sig) {
        snprintf(r->why, sizeof r->why, "stopped by signal %d", (int)g_stop_sig);
        return;
    }
    if (!got && !r->why[0])
        snprintf(r->why, sizeof r->why, "peer %s exited (status %d) without a result", impl, st);
    if (r->why[0]) return;
    /* NaN never passes */
    double rel = fabs(r->loss0 - ours->loss0) / fabs(ours->loss0);
    r->valid = isfinite(r->tps) && r->tps > 0 && rel <= RTOL(o);
}

static int read_ours(const char *rundir, row_t *r)
{
    char p[4400], line[4096];
    snprintf(p, sizeof p, "%s/ours.json", rundir);
    FILE *f = fopen(p, "r");
    memset(r, 0, sizeof *r);
    if (!f) return -1;
    int ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    if (!ok) return -1;
    snprintf(r->impl, sizeof r->impl, "longctx");
    lc_json_str(line, "lowering", r->lowering, sizeof r->lowering);
    r->cp = (int)lc_json_num(line, "cp");
    r->threads = (int)lc_json_num(line, "threads");
    r->step_s = lc_json_num(line, "step_s");
    r->tps = lc_json_num(line, "tokens_per_s");
    r->mem = lc_json_num(line, "peak_mem_bytes");
    r->loss0 = lc_json_num(line, "loss0");
    r->cpu_s = lc_json_num(line, "cpu_s");
    r->flops_tok = lc_json_num(line, "flops_per_token");
    r->peak = lc_json_num(line, "peak_gflops_core");
    r->cores = lc_json_num(line, "cores");
    r->valid = 1;
    return 0;
}

/* The row of the median tokens/s among rows[0..n) (the lower middle for even n); a row
 * that failed or was invalid in any round is reported instead, since a median would hide it. */
static const row_t *median_row(const row_t *rows, int n)
{
    for (int i = 0; i < n; i++)
        if (rows[i].why[0] || !rows[i].valid) return &rows[i];
    int idx[16];
    for (int i = 0; i < n; i++) idx[i] = i;
    for (int i = 1; i < n; i++) /* insertion sort by tokens/s: n <= 15 */
        for (int j = i; j > 0 && rows[idx[j]].tps < rows[idx[j - 1]].tps; j--) {
            int t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
        }
    return &rows[idx[(n - 1) / 2]];
}

/* One round at one CP: our workers (argv re-run with --seq/--cp replaced and --peer-out
 * added), then torch (when torch_row is given: once per round, on the cores ours used) and
 * JAX at this CP, on the checkpoint and tokens our run left. */
static int run_round(const lc_bench_peer_opts *o, const char *py, const char *pdir, const char *base,
                     long long S, int ci, int argc, char **argv, row_t *ours, row_t *torch_row, row_t *jax_row)
{
    int cp = (int)o->cp.v[ci];
    char rundir[4300], sv[32], cv[32];
    snprintf(rundir, sizeof rundir, "%s/s%lld_cp%d", base, S, cp);
    snprintf(sv, sizeof sv, "%lld", S);
    snprintf(cv, sizeof cv, "%d", cp);
    if (mkdir(rundir, 0755)) {
        fprintf(stderr, "longctx bench train: cannot create %s: %s\n", rundir, strerror(errno));
        return 1;
    }
    char **args = calloc((size_t)argc + 8, sizeof *args);
    if (!args) {
        rm_run_dir(rundir);
        return 1;
    }
    int k = 0;
    for (int i = 0; i < argc; i++) {
        int skip = !strcmp(argv[i], "--seq") || !strcmp(argv[i], "--cp") || !strcmp(argv[i], "--peers") ||
                   !strcmp(argv[i], "--layouts") || !strcmp(argv[i], "--tp") || !strcmp(argv[i], "--json") ||
                   !strcmp(argv[i], "--rounds");
        if (skip) {
            i += strcmp(argv[i], "--json") ? 1 : 0;
            continue;
        }
        args[k++] = argv[i];
    }
    args[k++] = "--seq";
    args[k++] = sv;
    args[k++] = "--cp";
    args[k++] = cv;
    args[k++] = "--peer-out";
    args[k++] = rundir;
    int r = lc_bench_launch_workers("train", k, args, cp, 0);
    free(args);
    if (r || read_ours(rundir, ours)) {
        fprintf(stderr, "longctx bench train: our run at seq %lld, CP %d failed (status %d)\n", S, cp, r);
        rm_run_dir(rundir);
        return r ? r : 1;
    }
    char ck[4400], cd[4400];
    snprintf(cd, sizeof cd, "%s/ckpt", rundir);
    if (lc_ckpt_find_latest(cd, ck, sizeof ck)) {
        fprintf(stderr, "longctx bench train: our checkpoint for the peers: %s\n", lc_ckpt_last_error());
        rm_run_dir(rundir);
        return 1;
    }
    int cores = ours->threads * cp;
    /* torch has no CP: it runs once per round on all the cores ours used; its row is
     * compared with each CP of ours */
    if ((o->peers & LC_PEER_TORCH) && torch_row) run_peer(o, py, pdir, "torch", ck, rundir, S, 1, cores, ours, torch_row);
    if (o->peers & LC_PEER_JAX) run_peer(o, py, pdir, "jax", ck, rundir, S, cp, cores, ours, jax_row);
    rm_run_dir(rundir);
    return 0;
}

int lc_bench_train_with_peers(const lc_bench_peer_opts *o, int argc, char **argv)
{
    char pdir[4096], py[4400] = "";
    const char *envpy = lc__env_str("LONGCTX_PEER_PYTHON");
    int have_dir = lc_bench_peer_dir("train_peer.py", pdir, sizeof pdir) == 0;
    if (envpy && *envpy) snprintf(py, sizeof py, "%s", envpy);
    else if (have_dir) {
        snprintf(py, sizeof py, "%s/.venv/bin/python", pdir);
        if (access(py, X_OK) != 0) py[0] = 0;
    }
    if (!have_dir) py[0] = 0;
    const char *tmp = lc__env_str("TMPDIR");
    char base[4096];
    snprintf(base, sizeof base, "%s/longctx-bench-peers-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(base)) {
        fprintf(stderr, "longctx bench train: cannot create %s: %s\n", base, strerror(errno));
        return 1;
    }
    struct sigaction sa = {0}, old[3];
    static const int stop_sigs[3] = {SIGTERM, SIGINT, SIGHUP};
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; i++) sigaction(stop_sigs[i], &sa, &old[i]);
    print_header(o);
    int rc = 0, R = o->rounds < 1 ? 1 : o->rounds, ncp = o->cp.n;
    /* [ci * R + r]: every round's rows, kept until the medians are printed */
    row_t *ours_r = calloc((size_t)ncp * R, sizeof *ours_r), *jax_r = calloc((size_t)ncp * R, sizeof *jax_r);
    row_t *torch_r = calloc((size_t)R, sizeof *torch_r);
    if (!ours_r || !jax_r || !torch_r) {
        fprintf(stderr, "longctx bench train: out of memory\n");
        rc = 1;
    }
    /* sequence outer; per round, every CP of ours with its peers back to back, so a drifting
     * machine speed reaches ours and the peers alike */
    for (int si = 0; si < o->seq.n && !rc; si++) {
        long long S = o->seq.v[si];
        for (int r = 0; r < R && !rc; r++) {
            for (int ci = 0; ci < ncp && !rc; ci++) {
                rc = run_round(o, py, pdir, base, S, ci, argc, argv, &ours_r[ci * R + r],
                               ci == 0 ? &torch_r[r] : NULL, &jax_r[ci * R + r]);
                if (g_stop_sig && !rc) rc = 128 + g_stop_sig;
            }
            if (!rc && R > 1 && !o->json) {
                printf("# round %d/%d, seq %lld:", r + 1, R, S);
                for (int ci = 0; ci < ncp; ci++) {
                    printf(" ours cp %d %.1f tok/s", ours_r[ci * R + r].cp, ours_r[ci * R + r].tps);
                    if (o->peers & LC_PEER_JAX) printf(", jax cp %d %.1f", ours_r[ci * R + r].cp, jax_r[ci * R + r].tps);
                    printf(";");
                }
                if (o->peers & LC_PEER_TORCH) printf(" torch %.1f tok/s", torch_r[r].tps);
                printf("\n");
                fflush(stdout);
            }
        }
        if (rc) break;
        /* One peak for every row: the best any of our workers measured in this run. A peak
         * measured while the host was slow (a co-tenant on the core) would inflate that
         * run's MFU and understate the peers' ceiling. */
        double peak = 0;
        for (int i = 0; i < ncp * R; i++)
            if (ours_r[i].peak > peak) peak = ours_r[i].peak;
        const row_t *tm = (o->peers & LC_PEER_TORCH) ? median_row(torch_r, R) : NULL;
        for (int ci = 0; ci < ncp; ci++) {
            row_t omr = *median_row(ours_r + ci * R, R);
            omr.peak = peak;
            const row_t *om = &omr;
            print_row(o, S, om, om);
            if (tm) {
                row_t t = *tm; /* its loss is checked against each CP of ours */
                if (!t.why[0]) {
                    double rel = fabs(t.loss0 - om->loss0) / fabs(om->loss0);
                    t.valid = isfinite(t.tps) && t.tps > 0 && rel <= RTOL(o);
                }
                print_row(o, S, &t, om);
            }
            if (o->peers & LC_PEER_JAX) print_row(o, S, median_row(jax_r + ci * R, R), om);
        }
    }
    free(ours_r);
    free(jax_r);
    free(torch_r);
    rm_run_dir(base); /* a stopped round may have left its run folder */
    if (access(base, F_OK) == 0) fprintf(stderr, "longctx bench train: cannot remove %s\n", base);
    for (int i = 0; i < 3; i++) sigaction(stop_sigs[i], &old[i], NULL);
    if (g_stop_sig) {
        fprintf(stderr, "longctx bench train: stopped by signal %d; the peer and %s are gone\n", (int)g_stop_sig, base);
        return 128 + g_stop_sig;
    }
    return rc;
}
