/* longctx bench attn: the attention block kernels as a fraction of this core's fp32 FMA peak
 * for the vector width the kernel uses (measured in the same run), beside PyTorch's
 * scaled_dot_product_attention and JAX's dot_product_attention on the CPU when
 * bench/peers/.venv exists. On a shared machine the three are interleaved row by row
 * (ours, then each peer on the same shape, then the peak again), so every ratio compares
 * measurements taken under the same load; with one thread the CPU-time rates are the ones
 * a busy machine does not inflate.
 *
 * FLOPs follow the FlashAttention convention and count only unmasked work: forward
 * 4 * sq * sk * d * hq * (fraction of allowed pairs); backward 2.5x forward. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "bench/bench.h"
#include "bench/bench_util.h"
#include "bench/peak.h"
#include "common/settings.h"
#include "longctx/attn.h"

static const char *const PASSES[] = {"fwd", "fwd_bwd", NULL};
static const char *const DTYPES[] = {"f32", "bf16", NULL};
static const char *const MASKS[] = {"none", "causal", NULL};
static const char *const IMPLS[] = {"auto", "scalar", "avx2", "avx512", NULL};
static const char *const PEERS[] = {"sdpa", "jax", NULL};

typedef struct {
    lc_slist pass, dtype, mask, impl, peer;
    lc_ilist s, d, hq, hkv, threads;
    int json, reps, peers, rounds;
} opts_t;

#define MAX_ROUNDS 15

static void usage(FILE *f)
{
    fprintf(f,
            "usage: longctx bench attn [--pass fwd,fwd_bwd] [--dtype f32,bf16] [--s 1K,8K]\n"
            "                          [--d 64,128] [--hq 32,8 --hkv 8,2] [--mask none,causal]\n"
            "                          [--threads 1] [--impl auto|scalar|avx2|avx512]\n"
            "                          [--reps N] [--rounds R] [--peers sdpa,jax|none] [--no-peers]\n"
            "                          [--json]\n"
            "Each list flag takes a comma list; all combinations run (--hq and --hkv pair up\n"
            "item by item). Defaults are a quick subset: --s 1K,2K --d 128 --hq 8 --hkv 2\n"
            "--mask causal --dtype f32,bf16 --pass fwd,fwd_bwd --threads 1 --impl auto.\n"
            "Peers: bench/peers/{sdpa,jax}_peer.py run with $LONGCTX_PEER_PYTHON or\n"
            "bench/peers/.venv (create it with bench/peers/install.sh), each right after\n"
            "our row of the same shape; 'x sdpa' is our rate over torch's (wall, CPU).\n"
            "--rounds R (1..15, default 1): ours and the peers alternate R times per shape,\n"
            "each timing --reps runs, and the median round of each is reported, so that a\n"
            "shared host's slow spell does not tip a ratio (try --rounds 3 --reps 1).\n"
            "With --impl avx2 on an AVX-512 CPU, torch is held to AVX2 as well\n"
            "(ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2,\n"
            "unless already set) so that both sides emulate an AVX2-only machine.\n");
}

static void set_words(lc_slist *l, const char *a, const char *b)
{
    l->n = b ? 2 : 1;
    snprintf(l->v[0], sizeof l->v[0], "%s", a);
    if (b)
        snprintf(l->v[1], sizeof l->v[1], "%s", b);
}

static void set_ints(lc_ilist *l, long long a, long long b)
{
    l->n = b ? 2 : 1;
    l->v[0] = a;
    l->v[1] = b;
}

static int parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    set_words(&o->pass, "fwd", "fwd_bwd");
    set_words(&o->dtype, "f32", "bf16");
    set_words(&o->mask, "causal", NULL);
    set_words(&o->impl, "auto", NULL);
    set_words(&o->peer, "sdpa", "jax");
    set_ints(&o->s, 1024, 2048);
    set_ints(&o->d, 128, 0);
    set_ints(&o->hq, 8, 0);
    set_ints(&o->hkv, 2, 0);
    set_ints(&o->threads, 1, 0);
    o->reps = 3;
    o->rounds = 1;
    o->peers = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--json")) {
            o->json = 1;
            continue;
        }
        if (!strcmp(a, "--no-peers")) {
            o->peers = 0;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        int known = !strcmp(a, "--pass") || !strcmp(a, "--dtype") || !strcmp(a, "--mask") ||
                    !strcmp(a, "--impl") || !strcmp(a, "--s") || !strcmp(a, "--d") ||
                    !strcmp(a, "--hq") || !strcmp(a, "--hkv") || !strcmp(a, "--threads") ||
                    !strcmp(a, "--reps") || !strcmp(a, "--rounds") || !strcmp(a, "--peers");
        if (!known) {
            fprintf(stderr, "longctx bench attn: unknown option '%s'\n", a);
            usage(stderr);
            return -1;
        }
        if (!v) {
            fprintf(stderr, "longctx bench attn: %s needs a value\n", a);
            return -1;
        }
        i++;
        if (!strcmp(a, "--pass")) bad = lc_parse_word_list(a, v, PASSES, &o->pass);
        else if (!strcmp(a, "--dtype")) bad = lc_parse_word_list(a, v, DTYPES, &o->dtype);
        else if (!strcmp(a, "--mask")) bad = lc_parse_word_list(a, v, MASKS, &o->mask);
        else if (!strcmp(a, "--impl")) bad = lc_parse_word_list(a, v, IMPLS, &o->impl);
        else if (!strcmp(a, "--s")) bad = lc_parse_count_list(a, v, 1, 1 << 24, &o->s);
        else if (!strcmp(a, "--d")) bad = lc_parse_int_list(a, v, &o->d);
        else if (!strcmp(a, "--hq")) bad = lc_parse_int_list(a, v, &o->hq);
        else if (!strcmp(a, "--hkv")) bad = lc_parse_int_list(a, v, &o->hkv);
        else if (!strcmp(a, "--threads")) bad = lc_parse_int_list(a, v, &o->threads);
        else if (!strcmp(a, "--reps")) bad = lc_parse_int_opt(a, v, 1, 100, &o->reps);
        else if (!strcmp(a, "--rounds")) bad = lc_parse_int_opt(a, v, 1, MAX_ROUNDS, &o->rounds);
        else if (!strcmp(a, "--peers")) {
            if (!strcmp(v, "none"))
                o->peers = 0;
            else
                bad = lc_parse_word_list(a, v, PEERS, &o->peer);
        }
        if (bad)
            return -1;
    }
    for (int i = 0; i < o->peer.n; i++) /* each peer once: its rounds are kept per peer */
        for (int j = 0; j < i; j++)
            if (!strcmp(o->peer.v[i], o->peer.v[j])) {
                fprintf(stderr, "longctx bench attn: --peers names '%s' twice\n", o->peer.v[i]);
                return -1;
            }
    if (o->hq.n != o->hkv.n && o->hq.n != 1 && o->hkv.n != 1) {
        fprintf(stderr, "longctx bench attn: --hq and --hkv lists must have the same length "
                        "(or one item)\n");
        return -1;
    }
    int npairs = o->hq.n > o->hkv.n ? o->hq.n : o->hkv.n;
    for (int i = 0; i < npairs; i++) {
        long long hq = o->hq.v[o->hq.n == 1 ? 0 : i], hkv = o->hkv.v[o->hkv.n == 1 ? 0 : i];
        if (hq % hkv) {
            fprintf(stderr, "longctx bench attn: --hq %lld is not a multiple of --hkv %lld\n",
                    hq, hkv);
            return -1;
        }
    }
    for (int i = 0; i < o->s.n; i++)
        if (o->s.v[i] < 1 || o->s.v[i] > (1 << 24)) {
            fprintf(stderr, "longctx bench attn: --s %lld out of range 1..16M\n", o->s.v[i]);
            return -1;
        }
    for (int i = 0; i < o->d.n; i++) {
        lc_attn_desc t = {.sq = 1, .sk = 1, .hq = 1, .hkv = 1, .d = (int)o->d.v[i]};
        if (o->d.v[i] > 4096 || lc_attn_check(&t, NULL, 0) != 0) {
            fprintf(stderr, "longctx bench attn: --d %lld: %s\n", o->d.v[i],
                    lc_attn_last_error());
            return -1;
        }
    }
    for (int i = 0; i < o->threads.n; i++)
        if (o->threads.v[i] > 1024) {
            fprintf(stderr, "longctx bench attn: --threads %lld is too many\n", o->threads.v[i]);
            return -1;
        }
    for (int i = 0; i < o->impl.n; i++) {
        lc_attn_impl im;
        lc_attn_impl_parse(o->impl.v[i], &im);
        if (!lc_attn_impl_supported(im)) {
            fprintf(stderr, "longctx bench attn: --impl %s is not supported by this CPU\n",
                    o->impl.v[i]);
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ FMA peak */

/* One core's fp32 FMA peak for the implementation's vector width (cli/peak.c), re-measured
 * after every row, keeping the maximum. Kernel rates are wall-clock (plus a CPU-time rate
 * for one thread), so on a busy machine the printed fractions of peak are conservative. */
static double measure_peak(lc_attn_impl im)
{
    return lc_fma_peak_gflops(im);
}

static const char *peak_width(lc_attn_impl im)
{
    return im == LC_ATTN_AVX512 ? "zmm (512-bit)" : im == LC_ATTN_AVX2 ? "ymm (256-bit)"
                                                                       : "scalar";
}

/* ------------------------------------------------------------------ runs */

typedef struct {
    lc_attn_desc a;
    void *q, *k, *v, *dout, *out;
    float *o, *lse, *delta, *dq, *dk, *dv;
} bufs;

static void fill(void *x, size_t n, lc_dtype dt, unsigned *seed)
{
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        float f = ((float)(*seed >> 8) / 16777216.0f - 0.5f) * 2.0f;
        if (dt == LC_DT_BF16)
            ((lc_bf16 *)x)[i] = lc_f32_to_bf16(f);
        else
            ((float *)x)[i] = f;
    }
}

static int bufs_make(bufs *b, int s, int d, int hq, int hkv, lc_dtype dt, int bwd)
{
    memset(b, 0, sizeof *b);
    size_t nq = (size_t)s * hq * d, nk = (size_t)s * hkv * d, es = lc_dtype_size(dt);
    unsigned seed = 12345;
    b->q = malloc(nq * es);
    b->k = malloc(nk * es);
    b->v = malloc(nk * es);
    b->o = malloc(nq * 4);
    b->lse = malloc((size_t)s * hq * 4);
    if (!b->q || !b->k || !b->v || !b->o || !b->lse)
        return -1;
    fill(b->q, nq, dt, &seed);
    fill(b->k, nk, dt, &seed);
    fill(b->v, nk, dt, &seed);
    if (bwd) {
        b->dout = malloc(nq * es);
        b->delta = malloc((size_t)s * hq * 4);
        b->dq = calloc(nq, 4);
        b->dk = calloc(nk, 4);
        b->dv = calloc(nk, 4);
        if (!b->dout || !b->delta || !b->dq || !b->dk || !b->dv)
            return -1;
        fill(b->dout, nq, dt, &seed);
    }
    return 0;
}

static void bufs_free(bufs *b)
{
    free(b->q); free(b->k); free(b->v); free(b->dout); free(b->o); free(b->lse);
    free(b->delta); free(b->dq); free(b->dk); free(b->dv);
}

static int run_once(bufs *b, int bwd)
{
    if (lc_attn_fwd(&b->a, b->q, b->k, b->v, b->o, LC_DT_F32, b->lse) != 0)
        return -1;
    if (!bwd)
        return 0;
    if (lc_attn_bwd_prep(&b->a, b->o, b->dout, b->delta) != 0)
        return -1;
    return lc_attn_bwd_block(&b->a, b->q, b->k, b->v, b->dout, b->lse, b->delta, b->dq, b->dk,
                             b->dv);
}

/* A worker pool (threads > 1) and a workspace for the descriptor, as a plan keeps them. */
static int steady_make(lc_attn_desc *a)
{
    size_t bytes;
    if (a->threads > 1 && !(a->pool = lc_attn_pool_create(a->threads)))
        return -1;
    if (lc_attn_workspace_size(a, LC_ATTN_PASS_FWD | LC_ATTN_PASS_BWD, &bytes) != 0)
        return -1;
    a->work = malloc(bytes ? bytes : 1);
    a->work_bytes = bytes;
    return a->work ? 0 : -1;
}

static void steady_free(lc_attn_desc *a)
{
    lc_attn_pool_destroy(a->pool);
    free(a->work);
    a->pool = NULL;
    a->work = NULL;
}

static double frac_unmasked(const char *mask, long long s)
{
    if (!strcmp(mask, "causal"))
        return ((double)s * (s + 1) / 2.0) / ((double)s * s);
    return 1.0;
}

/* ------------------------------------------------------------------ peers */




/* gf_cpu < 0: not measured (several threads). vs/vs_cpu > 0: ratio to the torch peer. */
static void print_row(const opts_t *o, const char *impl, const char *pass, const char *dt,
                      long long s, long long d, long long hq, long long hkv, const char *mask,
                      long long thr, double med, double gf, double gf_cpu, double peak,
                      double vs, double vs_cpu)
{
    double frac = peak > 0 ? gf / (peak * (double)thr) : 0.0;
    if (o->json) {
        printf("{\"bench\":\"attn\",\"impl\":\"%s\",\"pass\":\"%s\",\"dtype\":\"%s\",\"s\":%lld,"
               "\"d\":%lld,\"hq\":%lld,\"hkv\":%lld,\"mask\":\"%s\",\"threads\":%lld,"
               "\"median_s\":%.6g,\"gflops\":%.4g,\"peak_gflops\":%.4g,\"frac_peak\":%.4f,"
               "\"rounds\":%d",
               impl, pass, dt, s, d, hq, hkv, mask, thr, med, gf, peak, frac, o->rounds);
        if (gf_cpu >= 0)
            printf(",\"gflops_cpu\":%.4g", gf_cpu);
        if (vs > 0)
            printf(",\"vs_sdpa\":%.4g", vs);
        if (vs_cpu > 0)
            printf(",\"vs_sdpa_cpu\":%.4g", vs_cpu);
        printf("}\n");
    } else {
        printf("%-10s %-7s %-4s %6lld %4lld %3lld/%-3lld %-6s %3lld %10.4f %9.1f %6.1f%%", impl,
               pass, dt, s, d, hq, hkv, mask, thr, med, gf, 100.0 * frac);
        if (gf_cpu >= 0)
            printf(" %9.1f %6.1f%%", gf_cpu, peak > 0 ? 100.0 * gf_cpu / peak : 0.0);
        else
            printf(" %9s %7s", "-", "-");
        if (vs > 0)
            printf(" %6.2fx", vs);
        if (vs_cpu > 0)
            printf(" %6.2fx", vs_cpu);
        printf("\n");
    }
    fflush(stdout);
}

typedef struct {
    char py[4400], dir[4096];
    int ok;
} peer_env;

static void peer_find(const opts_t *o, peer_env *pe)
{
    const char *envpy = lc__env_str("LONGCTX_PEER_PYTHON");
    int have_dir = lc_bench_peer_dir("sdpa_peer.py", pe->dir, sizeof pe->dir) == 0;
    if (envpy && *envpy)
        snprintf(pe->py, sizeof pe->py, "%s", envpy);
    else if (have_dir) {
        snprintf(pe->py, sizeof pe->py, "%s/.venv/bin/python", pe->dir);
        if (access(pe->py, X_OK) != 0)
            pe->py[0] = 0;
    } else
        pe->py[0] = 0;
    pe->ok = have_dir && pe->py[0];
    if (pe->ok)
        return;
    const char *why = have_dir ? "no bench/peers/.venv and no LONGCTX_PEER_PYTHON"
                               : "bench/peers not found (set LONGCTX_PEER_DIR)";
    if (o->json)
        printf("{\"bench\":\"attn\",\"peers\":\"absent\",\"why\":\"%s\"}\n", why);
    else
        printf("peers absent: %s (run bench/peers/install.sh)\n", why);
}

/* One peer's result on one shape: ok = 0 when it gave no rate (its error row is printed). */
typedef struct {
    char impl[64];
    double med, gf, gfc; /* gfc 0: no CPU-time rate (several threads) */
    int ok;
} peer_res;

/* Runs one peer on one shape; with show, prints its row at once (the peak is the one
 * measured so far). */
static void run_peer(const opts_t *o, const peer_env *pe, const char *name, const char *pass,
                     const char *dt, long long s, long long d, long long hq, long long hkv,
                     const char *mask, long long thr, double peak, int show, peer_res *res)
{
    memset(res, 0, sizeof *res);
    const char *script = !strcmp(name, "sdpa") ? "sdpa_peer.py" : "jax_peer.py";
    char cmd[16384];
    snprintf(cmd, sizeof cmd,
             "'%s' '%s/%s' --pass %s --dtype %s --s %lld --d %lld --hq %lld --hkv %lld "
             "--mask %s --threads %lld --reps %d",
             pe->py, pe->dir, script, pass, dt, s, d, hq, hkv, mask, thr, o->reps);
    FILE *f = popen(cmd, "r");
    if (!f) {
        printf("peer %s: could not start\n", script);
        return;
    }
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, "\"bench\"")) {
            if (!o->json)
                fputs(line, stdout);
            continue;
        }
        char impl[64], ps[32], dts[32], ms[32];
        lc_json_str(line, "impl", impl, sizeof impl);
        lc_json_str(line, "pass", ps, sizeof ps);
        lc_json_str(line, "dtype", dts, sizeof dts);
        lc_json_str(line, "mask", ms, sizeof ms);
        double err = lc_json_num(line, "skipped");
        if (!isnan(err) || strstr(line, "\"error\"")) {
            if (o->json)
                fputs(line, stdout);
            else
                printf("%-10s %s", impl, line);
            continue;
        }
        double g = lc_json_num(line, "gflops"), gc = lc_json_num(line, "gflops_cpu");
        if (!(g > 0)) { /* a row with no rate counts as none: passed on as it came */
            if (o->json)
                fputs(line, stdout);
            else
                printf("peer %s: no rate in: %s", script, line);
            continue;
        }
        snprintf(res->impl, sizeof res->impl, "%s", impl);
        res->med = lc_json_num(line, "median_s");
        res->gf = g;
        res->gfc = isnan(gc) || thr != 1 ? 0 : gc;
        res->ok = 1;
        if (show)
            print_row(o, impl, ps, dts, s, d, hq, hkv, ms, thr, res->med, g,
                      res->gfc > 0 ? res->gfc : -1.0, peak, 0, 0);
    }
    int rc = pclose(f);
    if (rc != 0 && !o->json)
        printf("peer %s exited with status %d\n", script, rc);
}

/* Holds torch to the ISA our kernel runs at when that is below what the CPU has (AVX2
 * kernels on an AVX-512 CPU): ATen's own kernels, MKL and oneDNN each pick their ISA. The
 * caller's settings win. Returns whether anything is emulated. */
static const char *const ISA_VARS[][2] = {{"ATEN_CPU_CAPABILITY", "avx2"},
                                          {"MKL_ENABLE_INSTRUCTIONS", "AVX2"},
                                          {"ONEDNN_MAX_CPU_ISA", "AVX2"}};
static int peer_isa_set(lc_attn_impl im, int set[3])
{
    int emu = im == LC_ATTN_AVX2 && lc_attn_impl_supported(LC_ATTN_AVX512);
    for (int i = 0; i < 3; i++) {
        set[i] = emu && !lc__env_str(ISA_VARS[i][0]);
        if (set[i])
            setenv(ISA_VARS[i][0], ISA_VARS[i][1], 1);
    }
    return emu;
}

static void peer_isa_unset(const int set[3])
{
    for (int i = 0; i < 3; i++)
        if (set[i])
            unsetenv(ISA_VARS[i][0]);
}

/* One of our rows: runs the kernel (warm-up, then reps) in the steady state a plan keeps.
 * Returns 0 and the median wall and CPU seconds, or -1. */
static int time_ours(const opts_t *o, lc_attn_impl im, int bwd, lc_dtype dt, long long s,
                     long long d, long long hq, long long hkv, const char *mask,
                     long long thr, double *med, double *medc)
{
    bufs b;
    if (bufs_make(&b, (int)s, (int)d, (int)hq, (int)hkv, dt, bwd) != 0) {
        fprintf(stderr, "bench attn: out of memory at S=%lld\n", s);
        bufs_free(&b);
        return -1;
    }
    b.a = (lc_attn_desc){.sq = (int)s, .sk = (int)s, .hq = (int)hq, .hkv = (int)hkv,
                         .d = (int)d, .qkv_dtype = dt, .threads = (int)thr, .impl = im};
    if (!strcmp(mask, "causal"))
        b.a.mask.kind = LC_MASK_CAUSAL;
    /* Workers started and the workspace allocated once, outside the timing. */
    int err = steady_make(&b.a);
    double t[100], tc[100];
    if (!err)
        err = run_once(&b, bwd); /* warm-up */
    for (int r = 0; r < o->reps && !err; r++) {
        double t0 = lc_wall(), c0 = lc_cpu_time();
        err = run_once(&b, bwd);
        t[r] = lc_wall() - t0;
        tc[r] = lc_cpu_time() - c0;
    }
    if (err)
        fprintf(stderr, "bench attn: %s\n", lc_attn_last_error());
    steady_free(&b.a);
    bufs_free(&b);
    if (err)
        return -1;
    *med = lc_median(t, o->reps);
    *medc = lc_median(tc, o->reps);
    return 0;
}

/* Peers' median round: the median of each rate over the rounds that gave one. */
static int peer_median(const peer_res *r, int n, peer_res *out)
{
    double m[MAX_ROUNDS], g[MAX_ROUNDS], gc[MAX_ROUNDS];
    int k = 0, kc = 0;
    memset(out, 0, sizeof *out);
    for (int i = 0; i < n; i++) {
        if (!r[i].ok)
            continue;
        memcpy(out->impl, r[i].impl, sizeof out->impl);
        m[k] = r[i].med;
        g[k++] = r[i].gf;
        if (r[i].gfc > 0)
            gc[kc++] = r[i].gfc;
    }
    if (!k)
        return 0;
    out->med = lc_median(m, k);
    out->gf = lc_median(g, k);
    out->gfc = kc ? lc_median(gc, kc) : 0;
    out->ok = 1;
    return k;
}

/* One shape: R rounds of ours then each peer (then the peak again, max kept); the rows
 * report each side's median round, and the ratios compare those medians. */
static int shape_rounds(const opts_t *o, const peer_env *pe, lc_attn_impl im, double *peak,
                        const char *ps, const char *ds, long long s, long long d, long long hq,
                        long long hkv, const char *ms, long long thr)
{
    int bwd = !strcmp(ps, "fwd_bwd"), R = o->rounds, np = pe->ok ? o->peer.n : 0;
    lc_dtype dt = !strcmp(ds, "bf16") ? LC_DT_BF16 : LC_DT_F32;
    double fl = 4.0 * s * s * d * hq * frac_unmasked(ms, s) * (bwd ? 3.5 : 1.0);
    double med[MAX_ROUNDS], medc[MAX_ROUNDS];
    peer_res pr[sizeof PEERS / sizeof *PEERS - 1][MAX_ROUNDS]; /* parse() refuses repeats */
    for (int r = 0; r < R; r++) {
        if (time_ours(o, im, bwd, dt, s, d, hq, hkv, ms, thr, &med[r], &medc[r]) != 0)
            return -1;
        for (int k = 0; k < np; k++)
            run_peer(o, pe, o->peer.v[k], ps, ds, s, d, hq, hkv, ms, thr, *peak, R == 1,
                     &pr[k][r]);
        double p2 = measure_peak(im);
        if (p2 > *peak)
            *peak = p2;
        if (R > 1 && !o->json) {
            printf("# round %d/%d, %s %s S=%lld d=%lld: ours %.1f GFLOP/s", r + 1, R, ps, ds,
                   s, d, fl / med[r] * 1e-9);
            for (int k = 0; k < np; k++)
                if (pr[k][r].ok)
                    printf("; %s %.1f GFLOP/s (%.2fx)", pr[k][r].impl, pr[k][r].gf,
                           fl / med[r] * 1e-9 / pr[k][r].gf);
            printf("\n");
            fflush(stdout);
        }
    }
    double m = lc_median(med, R), mc = lc_median(medc, R);
    double gf = fl / m * 1e-9, gfc = thr == 1 ? fl / mc * 1e-9 : -1.0;
    double vs = 0, vsc = 0;
    for (int k = 0; k < np; k++) {
        peer_res pm;
        if (!peer_median(pr[k], R, &pm))
            continue;
        if (R > 1)
            print_row(o, pm.impl, ps, ds, s, d, hq, hkv, ms, thr, pm.med, pm.gf,
                      pm.gfc > 0 ? pm.gfc : -1.0, *peak, 0, 0);
        if (!strcmp(o->peer.v[k], "sdpa")) {
            vs = gf / pm.gf;
            vsc = pm.gfc > 0 && gfc > 0 ? gfc / pm.gfc : 0;
        }
    }
    print_row(o, lc_attn_impl_name(im), ps, ds, s, d, hq, hkv, ms, thr, m, gf, gfc, *peak, vs,
              vsc);
    return 0;
}

int lc_cmd_bench_attn(int argc, char **argv)
{
    opts_t o;
    if (parse(argc, argv, &o) != 0)
        return 2;
    int npairs = o.hq.n > o.hkv.n ? o.hq.n : o.hkv.n;
    peer_env pe = {.ok = 0};
    if (o.peers)
        peer_find(&o, &pe);
    char amx[256];
    int amx_ok = lc_attn_amx_status(amx, sizeof amx);
    if (o.json)
        printf("{\"bench\":\"attn\",\"amx\":%s,\"amx_kernel\":false,\"amx_why\":\"%s\"}\n",
               amx_ok ? "true" : "false", amx);
    else
        printf("# amx: %s; no AMX kernel is built: no AMX machine was available to test one\n",
               amx);
    if (!o.json)
        printf("%-10s %-7s %-4s %6s %4s %7s %-6s %3s %10s %9s %7s %9s %7s %7s %7s\n", "impl",
               "pass", "dtype", "S", "D", "Hq/Hkv", "mask", "thr", "median_s", "GFLOP/s",
               "%peak", "cpuGF/s", "%peak", "x sdpa", "cpu x");
    for (int ii = 0; ii < o.impl.n; ii++) {
        lc_attn_impl want, im;
        lc_attn_impl_parse(o.impl.v[ii], &want);
        im = want == LC_ATTN_AUTO ? lc_attn_impl_best() : want;
        if (want == LC_ATTN_AUTO && lc__env_str("LONGCTX_ATTN_IMPL") &&
            lc_attn_impl_parse(lc__env_str("LONGCTX_ATTN_IMPL"), &im) != 0)
            im = lc_attn_impl_best();
        if (im == LC_ATTN_AUTO)
            im = lc_attn_impl_best();
        int isa_set[3];
        int emu = peer_isa_set(im, isa_set);
        double peak = measure_peak(im);
        /* bf16 rows run the inner product a job would choose here (measured, cached) */
        char dot_why[256];
        lc_attn_set_bf16_dot(lc_attn_bf16_dot_measure(dot_why, sizeof dot_why));
        if (o.json)
            printf("{\"bench\":\"attn\",\"impl\":\"%s\",\"best_impl\":\"%s\",\"peak_gflops\":%.4g,"
                   "\"peak\":\"one thread, register-only FMA loop, %s\",\"peer_isa\":\"%s\",\"bf16_dot\":\"%s\","
                   "\"bf16_dot_why\":\"%s\"}\n",
                   lc_attn_impl_name(im), lc_attn_impl_name(lc_attn_impl_best()), peak,
                   peak_width(im), emu ? "avx2 (emulated)" : "default", lc_bf16_dot_name(lc_attn_bf16_dot()), dot_why);
        else {
            printf("# bf16 inner product: %s\n", dot_why);
            printf("# kernel %s (cpuid best: %s); single-core fp32 FMA peak %.1f GFLOP/s, %s "
                   "FMAs (measured now, re-measured after every row, max kept)\n",
                   lc_attn_impl_name(im), lc_attn_impl_name(lc_attn_impl_best()), peak,
                   peak_width(im));
            if (emu)
                printf("# emulating an AVX2-only CPU: our avx2 kernel, ymm peak, and torch with "
                       "ATEN_CPU_CAPABILITY=%s MKL_ENABLE_INSTRUCTIONS=%s ONEDNN_MAX_CPU_ISA=%s"
                       " (jax is not limited)\n",
                       lc__env_str("ATEN_CPU_CAPABILITY"), lc__env_str("MKL_ENABLE_INSTRUCTIONS"),
                       lc__env_str("ONEDNN_MAX_CPU_ISA"));
        }
        for (int pi = 0; pi < o.pass.n; pi++)
            for (int di = 0; di < o.dtype.n; di++)
                for (int si = 0; si < o.s.n; si++)
                    for (int dd = 0; dd < o.d.n; dd++)
                        for (int hi = 0; hi < npairs; hi++)
                            for (int mi = 0; mi < o.mask.n; mi++)
                                for (int ti = 0; ti < o.threads.n; ti++) {
                                    const char *ps = o.pass.v[pi], *ds = o.dtype.v[di];
                                    const char *ms = o.mask.v[mi];
                                    long long s = o.s.v[si], d = o.d.v[dd];
                                    long long hq = o.hq.v[o.hq.n == 1 ? 0 : hi];
                                    long long hkv = o.hkv.v[o.hkv.n == 1 ? 0 : hi];
                                    long long thr = o.threads.v[ti];
                                    if (shape_rounds(&o, &pe, im, &peak, ps, ds, s, d, hq,
                                                     hkv, ms, thr) != 0) {
                                        peer_isa_unset(isa_set);
                                        return 1;
                                    }
                                }
        peer_isa_unset(isa_set);
    }
    return 0;
}
