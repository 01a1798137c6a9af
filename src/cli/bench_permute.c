/* longctx bench permute: ring collective-permute bandwidth and latency per lowering, beside
 * the machine's limit for the same traffic measured in the same run: every PE doing a memcpy
 * of the same size at the same time (they share the memory system, as the permute does). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/bench_util.h"
#include "cli/cli.h"
#include "longctx/symm.h"

static const char *const LOWERINGS[] = {"one_sided", "two_sided", NULL};
static const long long DEFAULT_BYTES[] = {8, 64, 512, 4096, 32768, 262144, 1 << 20, 4 << 20,
                                          16 << 20, 64 << 20, 256 << 20};

typedef struct {
    lc_ilist pes, bytes;
    lc_slist lowering;
    int json, reps;
} opts_t;

static void usage(void)
{
    fprintf(stderr,
            "usage: longctx bench permute [--pes 2,4] [--bytes 8,1M,16M] [--lowering one_sided,two_sided]\n"
            "                             [--reps N] [--json]\n");
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
    *worker = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--json")) o->json = 1;
        else if (!strcmp(a, "--worker")) *worker = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            exit(0);
        } else if (strcmp(a, "--pes") && strcmp(a, "--bytes") && strcmp(a, "--lowering") && strcmp(a, "--reps")) {
            fprintf(stderr, "longctx bench permute: unknown option '%s'\n", a);
            bad = 1;
        } else if (!v) {
            fprintf(stderr, "longctx bench permute: %s needs a value\n", a);
            bad = 1;
        } else if (!strcmp(a, "--pes")) bad = lc_parse_count_list(a, v, 1, LC_CLI_MAX_PES, &o->pes), i++;
        else if (!strcmp(a, "--bytes")) bad = lc_parse_size_list(a, v, &o->bytes), i++;
        else if (!strcmp(a, "--lowering")) bad = lc_parse_word_list(a, v, LOWERINGS, &o->lowering), i++;
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

static int worker(const opts_t *o)
{
    lc_world *w;
    if (lc_world_init(NULL, &w)) return 1;
    lc_team *t = lc_team_world(w);
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
    lc_barrier(t);
    if (me == 0 && !o->json)
        printf("%-10s %-10s %12s %10s %9s %10s\n", "bytes", "lowering", "median", "GB/s", "%memcpy",
               "1s/2s");
    /* Latency of the raw primitive first: a token hopping PE to PE. */
    {
        hop_ctx hc = {w, sig, slot, 0};
        int laps = 2000;
        double lap = time_op(t, do_hop_lap, &hc, laps, o->reps, &err);
        if (!err && me == 0) {
            double hop = lap / n;
            if (o->json)
                printf("{\"bench\":\"putsignal_hop\",\"backend\":\"shm\",\"pes\":%d,\"bytes\":8,\"median_s\":%.9g}\n", n, hop);
            else printf("8-byte put-with-signal ring hop: %.3f us (P=%d)\n", hop * 1e6, n);
        }
    }
    for (int bi = 0; bi < o->bytes.n && !err; bi++) {
        size_t b = (size_t)o->bytes.v[bi];
        int iters = (int)((64u << 20) / (b + 4096));
        if (iters < 1) iters = 1;
        if (iters > 2000) iters = 2000;
        perm_ctx mc = {t, src, priv, b, LC_LOWER_AUTO};
        double tm = time_op(t, do_memcpy, &mc, iters, o->reps, &err);
        double gm = (double)b / tm / 1e9, g1 = 0, g2 = 0;
        char bb[32];
        if (me == 0) {
            if (o->json) printf("{\"bench\":\"memcpy\",\"pes\":%d,\"bytes\":%zu,\"median_s\":%.9g,\"gbps\":%.6g}\n", n, b, tm, gm);
            else printf("%-10s %-10s %10.3f us %10.3f %9s %10s\n", lc_fmt_bytes((double)b, bb, sizeof bb),
                        "memcpy", tm * 1e6, gm, "100%", "");
        }
        for (int li = 0; li < o->lowering.n && !err; li++) {
            lc_lowering l;
            lc_lowering_parse(o->lowering.v[li], &l);
            perm_ctx pc = {t, src, dst, b, l};
            double tp = time_op(t, do_permute, &pc, iters, o->reps, &err);
            double g = (double)b / tp / 1e9;
            if (l == LC_LOWER_ONE_SIDED) g1 = g;
            else g2 = g;
            if (me == 0 && !err) {
                /* 0 bytes measures latency only: no fraction of a zero bandwidth (JSON has no NaN). */
                char frac[32] = "null";
                if (gm > 0) snprintf(frac, sizeof frac, "%.4f", g / gm);
                if (o->json)
                    printf("{\"bench\":\"permute\",\"backend\":\"shm\",\"lowering\":\"%s\",\"pes\":%d,"
                           "\"bytes\":%zu,\"median_s\":%.9g,\"gbps\":%.6g,\"frac_of_memcpy\":%s}\n",
                           o->lowering.v[li], n, b, tp, g, frac);
                else {
                    char ratio[16] = "";
                    if (g1 > 0 && g2 > 0) snprintf(ratio, sizeof ratio, "%.2fx", g1 / g2);
                    char pct[16] = "-";
                    if (gm > 0) snprintf(pct, sizeof pct, "%.0f%%", 100 * g / gm);
                    printf("%-10s %-10s %10.3f us %10.3f %9s %10s\n", lc_fmt_bytes((double)b, bb, sizeof bb),
                           o->lowering.v[li], tp * 1e6, g, pct, ratio);
                }
            }
        }
        /* Sanity: the last permute delivered my left neighbour's bytes. */
        unsigned char expect = (unsigned char)(1 + (me + n - 1) % n);
        if (!err && b && (((unsigned char *)dst)[0] != expect || ((unsigned char *)dst)[b - 1] != expect)) {
            fprintf(stderr, "bench permute: PE %d received wrong bytes at size %zu\n", me, b);
            err = 1;
        }
        fflush(stdout);
    }
    free(src);
    free(priv);
    int rc = lc_world_finalize(w);
    return err || rc ? 1 : 0;
}

int lc_cmd_bench_permute(int argc, char **argv)
{
    opts_t o;
    int is_worker;
    if (parse(argc, argv, &o, &is_worker)) return 2;
    if (is_worker) return worker(&o);
    size_t maxb = 8;
    for (int i = 0; i < o.bytes.n; i++)
        if ((size_t)o.bytes.v[i] > maxb) maxb = (size_t)o.bytes.v[i];
    /* Re-run this binary as the PEs, one launch per PE count. */
    int rc = 0;
    size_t heap;
    for (int pi = 0; pi < o.pes.n && !rc; pi++) {
        char what[96];
        snprintf(what, sizeof what, "--bytes %zu (lower --bytes)", maxb);
        /* dst in the heap, src and a private copy outside */
        if (lc_bench_fits_memory("permute", 3.0 * (double)maxb + (64u << 20), (int)o.pes.v[pi], what) ||
            lc_bench_heap("permute", maxb + (64u << 20), &heap))
            return 2;
        if (!o.json) printf("== ring permute, shm backend, P = %lld ==\n", o.pes.v[pi]);
        rc = lc_bench_launch_workers("permute", argc, argv, (int)o.pes.v[pi], heap);
    }
    return rc;
}
