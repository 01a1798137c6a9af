/* longctx bench permute: ring collective-permute bandwidth and latency per lowering, beside
 * the machine's limit for the same traffic measured in the same run: every PE doing a memcpy
 * of the same size at the same time (they share the memory system, as the permute does).
 * --backend shm,mpi runs the PEs on each backend in turn (mpi: under mpirun, started here
 * unless this process already is an MPI rank); on mpi, MPI itself is measured in the same
 * processes at the same sizes (bench_mpi.c). Variants are interleaved rep by rep, so a
 * loaded machine's slow moments fall on all of them alike, and medians are reported. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/bench_mpi.h"
#include "bench/bench_util.h"
#include "longctx/symm.h"

static const char *const LOWERINGS[] = {"one_sided", "two_sided", NULL};
static const char *const BACKENDS[] = {"shm", "mpi", NULL};
static const long long DEFAULT_BYTES[] = {8, 64, 512, 4096, 32768, 262144, 1 << 20, 4 << 20,
                                          16 << 20, 64 << 20, 256 << 20};

typedef struct {
    lc_ilist pes, bytes;
    lc_slist lowering, backend;
    int json, reps;
} opts_t;

static void usage(void)
{
    fprintf(stderr,
            "usage: longctx bench permute [--pes 2,4] [--bytes 8,1M,16M] [--lowering one_sided,two_sided]\n"
            "                             [--reps N] [--json] [--backend shm,mpi]\n"
            "  --backend mpi: PEs under mpirun (started here, or run this under mpirun -n P),\n"
            "  with MPI_Sendrecv and MPI_Put + flush + signal measured beside the permute\n");
}

static int parse(int argc, char **argv, opts_t *o, int *worker)
{
    memset(o, 0, sizeof *o);
    o->pes.n = 1;
    o->pes.v[0] = 2;
    o->bytes.n = (int)(sizeof DEFAULT_BYTES / sizeof *DEFAULT_BYTES);
    memcpy(o->bytes.v, DEFAULT_BYTES, sizeof DEFAULT_BYTES);
    o->lowering.n = 2;
    strcpy(o->lowering.v[0], "one_sided");
    strcpy(o->lowering.v[1], "two_sided");
    o->reps = 7;
    o->backend.n = 1;
    strcpy(o->backend.v[0], "shm");
    *worker = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--json")) o->json = 1;
        else if (!strcmp(a, "--worker")) *worker = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            exit(0);
        } else if (strcmp(a, "--pes") && strcmp(a, "--bytes") && strcmp(a, "--lowering") && strcmp(a, "--reps") &&
                   strcmp(a, "--backend")) {
            fprintf(stderr, "longctx bench permute: unknown option '%s'\n", a);
            bad = 1;
        } else if (!v) {
            fprintf(stderr, "longctx bench permute: %s needs a value\n", a);
            bad = 1;
        } else if (!strcmp(a, "--pes")) bad = lc_parse_count_list(a, v, 1, LC_CLI_MAX_PES, &o->pes), i++;
        else if (!strcmp(a, "--bytes")) bad = lc_parse_size_list(a, v, &o->bytes), i++;
        else if (!strcmp(a, "--lowering")) bad = lc_parse_word_list(a, v, LOWERINGS, &o->lowering), i++;
        else if (!strcmp(a, "--backend")) bad = lc_parse_word_list(a, v, BACKENDS, &o->backend), i++;
        else bad = lc_parse_int_opt(a, v, 1, 64, &o->reps), i++;
        if (bad) { /* the parsers name the option and the value */
            usage();
            return -1;
        }
    }
    for (int i = 0; i < o->pes.n; i++)
        if (o->pes.v[i] < 2) {
            fprintf(stderr, "longctx bench permute: --pes must be >= 2 (a ring needs two PEs)\n");
            return -1;
        }
    return 0;
}

/* Seconds per operation for `iters` back-to-back runs, the slowest PE's view, median of reps. */
typedef int (*op_fn)(void *ctx);

static double time_op(lc_team *t, op_fn fn, void *ctx, int iters, int reps, int *err)
{
    double v[64];
    if (reps > 64) reps = 64;
    for (int w = 0; w < 2 && !*err; w++) *err = fn(ctx); /* warm-up: page faults, caches */
    for (int r = 0; r < reps && !*err; r++) {
        lc_barrier(t);
        double t0 = lc_wall();
        for (int i = 0; i < iters && !*err; i++) *err = fn(ctx);
        double dt = (lc_wall() - t0) / iters, mx;
        if (lc_allreduce_max_f64(t, &mx, &dt, 1)) *err = 1;
        v[r] = mx;
    }
    return lc_median(v, reps);
}

typedef struct {
    lc_team *t;
    void *src, *dst;
    size_t bytes;
    lc_lowering l;
} perm_ctx;

static int do_permute(void *p)
{
    perm_ctx *c = p;
    lc_permute_req req;
    int rc = lc_permute_start(c->t, 1, c->src, c->dst, c->bytes, c->l, &req);
    if (!rc) rc = lc_permute_done(&req);
    if (rc) fprintf(stderr, "%s\n", lc_last_error(lc_team_get_world(c->t)));
    return rc;
}

static int do_memcpy(void *p)
{
    perm_ctx *c = p;
    memcpy(c->dst, c->src, c->bytes);
    __asm__ volatile("" ::: "memory");
    return 0;
}

typedef struct {
    lc_world *w;
    uint64_t *sig;
    uint64_t *slot;
    uint64_t round;
} hop_ctx;

/* One lap of an 8-byte put-with-signal token around the ring. */
static int do_hop_lap(void *p)
{
    hop_ctx *c = p;
    int me = lc_my_pe(c->w), n = lc_n_pes(c->w), next = (me + 1) % n;
    uint64_t v = ++c->round;
    if (me == 0) {
        if (lc_put_signal(c->w, c->slot, &v, 8, c->sig, v, LC_SIGNAL_SET, next)) return 1;
        return lc_signal_wait_until(c->w, c->sig, LC_CMP_GE, v, NULL);
    }
    if (lc_signal_wait_until(c->w, c->sig, LC_CMP_GE, v, NULL)) return 1;
    return lc_put_signal(c->w, c->slot, &v, 8, c->sig, v, LC_SIGNAL_SET, next);
}

/* One timing block of a variant: the slowest PE's seconds per operation. */
static double time_block(lc_team *t, op_fn fn, void *ctx, int iters, int *err)
{
    lc_barrier(t);
    double t0 = lc_wall();
    for (int i = 0; i < iters && !*err; i++) *err = fn(ctx);
    double dt = (lc_wall() - t0) / iters, mx = dt;
    if (lc_allreduce_max_f64(t, &mx, &dt, 1)) *err = 1;
    return mx;
}

enum { V_MEMCPY, V_ONE, V_TWO, V_MPI_PUT, V_MPI_SENDRECV, V_N };
static const char *const VNAME[V_N] = {"memcpy", "one_sided", "two_sided", "mpi_put", "mpi_sendrecv"};

static int worker(const opts_t *o)
{
    lc_world *w;
    if (lc_world_init(NULL, &w)) return 1;
    lc_team *t = lc_team_world(w);
    const char *be = lc_world_backend(w);
    int me = lc_my_pe(w), n = lc_n_pes(w), err = 0;
    size_t maxb = 8;
    for (int i = 0; i < o->bytes.n; i++)
        if ((size_t)o->bytes.v[i] > maxb) maxb = (size_t)o->bytes.v[i];
    void *dst = lc_symm_alloc(w, maxb);
    uint64_t *sig = lc_symm_alloc(w, 64), *slot = lc_symm_alloc(w, 64);
    void *src = malloc(maxb), *priv = malloc(maxb);
    if (!dst || !sig || !slot || !src || !priv) {
        fprintf(stderr, "bench permute: %s\n", dst ? "out of memory" : lc_last_error(w));
        lc_world_finalize(w);
        return 1;
    }
    memset(src, 1 + me, maxb);
    memset(priv, 0, maxb);
    *sig = 0;
    /* MPI itself, in these processes, when they are MPI ranks. */
    lc_bench_mpi *raw = strcmp(be, "mpi") ? NULL : lc_bench_mpi_open(maxb, src, priv);
    int use[V_N] = {1, 0, 0, raw != NULL, raw != NULL};
    for (int li = 0; li < o->lowering.n; li++) use[strcmp(o->lowering.v[li], "one_sided") ? V_TWO : V_ONE] = 1;
    lc_barrier(t);
    if (me == 0 && !o->json)
        printf("%-10s %-13s %12s %10s %9s\n", "bytes", "variant", "median", "GB/s", "%memcpy");
    /* Latency of the raw primitive first: a token hopping PE to PE. */
    {
        hop_ctx hc = {w, sig, slot, 0};
        int laps = 2000;
        double lap = time_op(t, do_hop_lap, &hc, laps, o->reps, &err);
        if (!err && me == 0) {
            double hop = lap / n;
            if (o->json)
                printf("{\"bench\":\"putsignal_hop\",\"backend\":\"%s\",\"pes\":%d,\"bytes\":8,\"median_s\":%.9g}\n", be,
                       n, hop);
            else printf("8-byte put-with-signal ring hop: %.3f us (P=%d, %s backend)\n", hop * 1e6, n, be);
        }
    }
    for (int bi = 0; bi < o->bytes.n && !err; bi++) {
        size_t b = (size_t)o->bytes.v[bi];
        int iters = (int)((64u << 20) / (b + 4096));
        if (iters < 1) iters = 1;
        if (iters > 2000) iters = 2000;
        perm_ctx mc = {t, src, priv, b, LC_LOWER_AUTO};
        perm_ctx p1 = {t, src, dst, b, LC_LOWER_ONE_SIDED}, p2 = {t, src, dst, b, LC_LOWER_TWO_SIDED};
        op_fn fn[V_N] = {do_memcpy, do_permute, do_permute, lc_bench_mpi_put, lc_bench_mpi_sendrecv};
        void *ctx[V_N] = {&mc, &p1, &p2, raw, raw};
        if (raw) lc_bench_mpi_set_bytes(raw, b);
        double tv[V_N][64], med[V_N] = {0};
        int reps = o->reps > 64 ? 64 : o->reps;
        for (int v = 0; v < V_N && !err; v++) /* warm-up: page faults, caches, connections */
            for (int k = 0; k < 2 && use[v] && !err; k++) err = fn[v](ctx[v]);
        for (int r = 0; r < reps && !err; r++)
            for (int v = 0; v < V_N && !err; v++)
                if (use[v]) tv[v][r] = time_block(t, fn[v], ctx[v], iters, &err);
        /* Sanity: the last permute delivered my left neighbour's bytes. */
        unsigned char expect = (unsigned char)(1 + (me + n - 1) % n);
        if (!err && b && (use[V_ONE] || use[V_TWO]) &&
            (((unsigned char *)dst)[0] != expect || ((unsigned char *)dst)[b - 1] != expect)) {
            fprintf(stderr, "bench permute: PE %d received wrong bytes at size %zu\n", me, b);
            err = 1;
        }
        if (err || me != 0) continue;
        for (int v = 0; v < V_N; v++)
            if (use[v]) med[v] = lc_median(tv[v], reps);
        double gm = (double)b / med[V_MEMCPY] / 1e9;
        char bb[32];
        lc_fmt_bytes((double)b, bb, sizeof bb);
        for (int v = 0; v < V_N; v++) {
            if (!use[v]) continue;
            double g = (double)b / med[v] / 1e9;
            /* 0 bytes measures latency only: no fraction of a zero bandwidth (JSON has no NaN). */
            char frac[32] = "null", pct[16] = "-";
            if (gm > 0) snprintf(frac, sizeof frac, "%.4f", g / gm), snprintf(pct, sizeof pct, "%.0f%%", 100 * g / gm);
            if (o->json && v == V_MEMCPY)
                printf("{\"bench\":\"memcpy\",\"pes\":%d,\"bytes\":%zu,\"median_s\":%.9g,\"gbps\":%.6g}\n", n, b,
                       med[v], gm);
            else if (o->json && (v == V_ONE || v == V_TWO))
                printf("{\"bench\":\"permute\",\"backend\":\"%s\",\"lowering\":\"%s\",\"pes\":%d,"
                       "\"bytes\":%zu,\"median_s\":%.9g,\"gbps\":%.6g,\"frac_of_memcpy\":%s}\n",
                       be, VNAME[v], n, b, med[v], g, frac);
            else if (o->json)
                printf("{\"bench\":\"mpi_raw\",\"backend\":\"%s\",\"op\":\"%s\",\"pes\":%d,\"bytes\":%zu,"
                       "\"median_s\":%.9g,\"gbps\":%.6g,\"frac_of_memcpy\":%s}\n", be, VNAME[v] + 4, n, b, med[v], g,
                       frac);
            else printf("%-10s %-13s %10.3f us %10.3f %9s\n", bb, VNAME[v], med[v] * 1e6, g, pct);
        }
        if (!o->json) {
            char line[256] = "";
            size_t k = 0;
            if (use[V_ONE] && use[V_TWO])
                k += (size_t)snprintf(line + k, sizeof line - k, "  one_sided/two_sided %.2fx", med[V_TWO] / med[V_ONE]);
            if (raw && use[V_ONE])
                k += (size_t)snprintf(line + k, sizeof line - k, "  one_sided vs MPI_Put %.2fx, vs MPI_Sendrecv %.2fx",
                                      med[V_MPI_PUT] / med[V_ONE], med[V_MPI_SENDRECV] / med[V_ONE]);
            if (raw && use[V_TWO])
                k += (size_t)snprintf(line + k, sizeof line - k, "  two_sided vs MPI_Sendrecv %.2fx",
                                      med[V_MPI_SENDRECV] / med[V_TWO]);
            if (k) printf("%-10s speed-up:%s\n", bb, line);
        }
        fflush(stdout);
    }
    lc_bench_mpi_close(raw);
    free(src);
    free(priv);
    int rc = lc_world_finalize(w);
    return err || rc ? 1 : 0;
}

/* Runs this binary's worker as P MPI ranks under mpirun (root needs OpenMPI's consent). */
static int launch_mpi(int argc, char **argv, int pes, size_t heap)
{
    char self[4096], np[16], hs[32];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) return 1;
    self[len] = 0;
    char **args = calloc((size_t)argc + 16, sizeof *args);
    if (!args) return 1;
    int k = 0;
    snprintf(np, sizeof np, "%d", pes);
    const char *pre[] = {"mpirun", "--oversubscribe", "--bind-to", "none", "-n", np, self, "bench", "permute", "--worker"};
    for (size_t i = 0; i < sizeof pre / sizeof *pre; i++) args[k++] = (char *)pre[i];
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--pes") && strcmp(argv[i], "--backend")) args[k++] = argv[i];
        else i++;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (geteuid() == 0) {
            setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
            setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
        }
        snprintf(hs, sizeof hs, "%zu", heap);
        setenv("LONGCTX_HEAP_SIZE", hs, 1);
        setenv("LONGCTX_BACKEND", "mpi", 1);
        execvp("mpirun", args);
        fprintf(stderr, "longctx bench permute --backend mpi: cannot run mpirun (apt-get install openmpi-bin)\n");
        _exit(127);
    }
    free(args);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0) return 1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int lc_cmd_bench_permute(int argc, char **argv)
{
    opts_t o;
    int is_worker;
    if (parse(argc, argv, &o, &is_worker)) return 2;
    /* Already one PE of many (longctx launch, or mpirun -n P longctx bench permute). */
    if (is_worker || lc_launched_as(NULL, NULL)) return worker(&o);
    size_t maxb = 8;
    for (int i = 0; i < o.bytes.n; i++)
        if ((size_t)o.bytes.v[i] > maxb) maxb = (size_t)o.bytes.v[i];
#ifndef LONGCTX_HAVE_MPI
    for (int bi = 0; bi < o.backend.n; bi++)
        if (!strcmp(o.backend.v[bi], "mpi")) {
            fprintf(stderr, "longctx bench permute: --backend mpi: this longctx was built without MPI (install "
                            "libopenmpi-dev and configure with -DLONGCTX_MPI=ON)\n");
            return 2;
        }
#endif
    /* Re-run this binary as the PEs, one launch per PE count and backend. */
    int rc = 0;
    size_t heap;
    for (int pi = 0; pi < o.pes.n && !rc; pi++) {
        char what[96];
        snprintf(what, sizeof what, "--bytes %zu (lower --bytes)", maxb);
        /* dst in the heap, src and a private copy outside */
        if (lc_bench_fits_memory("permute", 3.0 * (double)maxb + (64u << 20), (int)o.pes.v[pi], what) ||
            lc_bench_heap("permute", maxb + (64u << 20), &heap))
            return 2;
        for (int bi = 0; bi < o.backend.n && !rc; bi++) {
            int mpi = !strcmp(o.backend.v[bi], "mpi");
            if (!o.json) printf("== ring permute, %s backend, P = %lld ==\n", o.backend.v[bi], o.pes.v[pi]);
            rc = mpi ? launch_mpi(argc, argv, (int)o.pes.v[pi], heap)
                     : lc_bench_launch_workers("permute", argc, argv, (int)o.pes.v[pi], heap);
        }
    }
    return rc;
}
