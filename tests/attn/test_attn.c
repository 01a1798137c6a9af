/* Attention kernels against the float64 oracle.
 *
 *   test_attn <section>   section: basic | fwd | bwd | big | threads
 *
 * Inputs are fresh random each run; the seed is printed and LONGCTX_SEED overrides it.
 * LONGCTX_TEST_QUICK=N runs about 1/N of the sweep (1 means 2) and most of the long lengths,
 * for slow sanitizer builds. Every implementation the CPU
 * supports is tested; the others are skipped with a message.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/fail.h"
#include "common/rng.h"
#include "longctx/attn.h"
#include "attn/internal.h"

static uint64_t g_rng;
static int g_fail, g_checks, g_quick;

static uint64_t rnd(void) { return lc_test_rng(&g_rng); }
static double urand(void) { return (double)(rnd() >> 11) * (1.0 / 9007199254740992.0); }
static int irand(int n) { return (int)(rnd() % (uint64_t)n); }

#define FAIL(...) LC_TEST_FAIL(g_fail, __VA_ARGS__)

static const char *mask_name(unsigned m)
{
    static const char *n[] = {"none",   "causal",        "window", "causal+window",
                              "doc",    "causal+doc",    "window+doc", "causal+window+doc"};
    return n[m & 7];
}

static const unsigned k_masks[] = {LC_MASK_NONE,
                                   LC_MASK_CAUSAL,
                                   LC_MASK_WINDOW,
                                   LC_MASK_DOC,
                                   LC_MASK_CAUSAL | LC_MASK_DOC,
                                   LC_MASK_CAUSAL | LC_MASK_WINDOW};
#define NMASKS 6
static const int k_dims[] = {64, 80, 96, 128, 256};
static const int k_gqa[][2] = {{2, 2}, {8, 2}, {8, 1}, {3, 1}}; /* ratios 1, 4, 8, MQA */
static const lc_attn_impl k_impls[] = {LC_ATTN_SCALAR, LC_ATTN_AVX2, LC_ATTN_AVX512};

typedef struct {
    lc_attn_impl impl;
    int sq, sk, hq, hkv, d, threads, posmode, nsplit;
    unsigned mask;
    lc_dtype dt, out_dt;
} cfg;

/* One problem instance: inputs in storage dtype plus their float64 values. */
typedef struct {
    cfg c;
    lc_attn_desc a;
    int32_t *qpos, *kpos, *qdoc, *kdoc;
    void *q, *k, *v, *dout;
    double *qd, *kd, *vd, *doutd;
} prob;

static void fill(void *x, double *xd, size_t n, lc_dtype dt, double amp)
{
    for (size_t i = 0; i < n; i++) {
        float f = (float)((urand() * 2.0 - 1.0) * amp);
        if (dt == LC_DT_BF16) {
            lc_bf16 b = lc_f32_to_bf16(f);
            ((lc_bf16 *)x)[i] = b;
            xd[i] = lc_bf16_to_f32(b);
        } else {
            ((float *)x)[i] = f;
            xd[i] = f;
        }
    }
}

static void prob_make(prob *p, const cfg *c)
{
    memset(p, 0, sizeof *p);
    p->c = *c;
    int sq = c->sq, sk = c->sk;
    size_t nq = (size_t)sq * c->hq * c->d, nk = (size_t)sk * c->hkv * c->d;
    size_t es = lc_dtype_size(c->dt);
    p->qpos = malloc(sizeof(int32_t) * (sq + 1));
    p->kpos = malloc(sizeof(int32_t) * (sk + 1));
    p->qdoc = malloc(sizeof(int32_t) * (sq + 1));
    p->kdoc = malloc(sizeof(int32_t) * (sk + 1));
    /* posmode 0: rows are positions; 1: Q rows after the K rows (a later ring step);
     * 2: padding rows; 3: striped (K even positions, Q odd); 4: Q rows 4096.. against K
     * rows that straddle 4096 (a ring step where the causal edge cuts the block). */
    int off = c->posmode == 1 ? sk + irand(3) : c->posmode == 4 ? 4096 : 0;
    int koff = c->posmode == 4 ? 4096 - sk / 2 : 0;
    for (int i = 0; i < sq; i++)
        p->qpos[i] = c->posmode == 3 ? 2 * i + 1 : off + i;
    for (int j = 0; j < sk; j++)
        p->kpos[j] = c->posmode == 3 ? 2 * j : koff + j;
    if (c->posmode == 2) {
        for (int i = 0; i < sq; i++)
            if (irand(6) == 0 || (sq > 8 && i >= sq - 3))
                p->qpos[i] = -1;
        for (int j = 0; j < sk; j++)
            if (irand(6) == 0 || (sk > 8 && j < 3))
                p->kpos[j] = -1 - irand(5);
    }
    int doclen = 3 + irand(40);
    for (int i = 0; i < sq; i++)
        p->qdoc[i] = p->qpos[i] >= 0 ? p->qpos[i] / doclen : 99999;
    for (int j = 0; j < sk; j++)
        p->kdoc[j] = p->kpos[j] >= 0 ? p->kpos[j] / doclen : -5;
    p->q = malloc(nq * es + 1);
    p->dout = malloc(nq * es + 1);
    p->k = malloc(nk * es + 1);
    p->v = malloc(nk * es + 1);
    p->qd = malloc(nq * 8 + 8);
    p->doutd = malloc(nq * 8 + 8);
    p->kd = malloc(nk * 8 + 8);
    p->vd = malloc(nk * 8 + 8);
    fill(p->q, p->qd, nq, c->dt, 2.0);
    fill(p->k, p->kd, nk, c->dt, 2.0);
    fill(p->v, p->vd, nk, c->dt, 1.0);
    fill(p->dout, p->doutd, nq, c->dt, 1.0);
    lc_attn_desc *a = &p->a;
    a->sq = sq;
    a->sk = sk;
    a->hq = c->hq;
    a->hkv = c->hkv;
    a->d = c->d;
    a->qkv_dtype = c->dt;
    a->scale = 0.0f;
    a->q_pos = c->posmode == 0 ? NULL : p->qpos;
    a->k_pos = c->posmode == 0 ? NULL : p->kpos;
    a->mask.kind = c->mask;
    a->mask.window = 1 + irand(sk + sq + 1);
    if (c->mask & LC_MASK_DOC) {
        a->mask.q_doc = p->qdoc;
        a->mask.k_doc = p->kdoc;
    }
    a->threads = c->threads;
    a->impl = c->impl;
}

static void prob_free(prob *p)
{
    free(p->qpos); free(p->kpos); free(p->qdoc); free(p->kdoc);
    free(p->q); free(p->k); free(p->v); free(p->dout);
    free(p->qd); free(p->kd); free(p->vd); free(p->doutd);
}

static double tol_of(const cfg *c)
{
    return c->dt == LC_DT_BF16 || c->out_dt == LC_DT_BF16 ? 1e-2 : 1e-5;
}

static void cfg_str(const cfg *c, char *buf, size_t n)
{
    snprintf(buf, n,
             "impl=%s dt=%s out=%s mask=%s sq=%d sk=%d hq=%d hkv=%d d=%d pos=%d split=%d "
             "thr=%d",
             lc_attn_impl_name(c->impl), lc_dtype_name(c->dt), lc_dtype_name(c->out_dt),
             mask_name(c->mask), c->sq, c->sk, c->hq, c->hkv, c->d, c->posmode, c->nsplit,
             c->threads);
}

/* ||x - ref|| / ||ref||; NaN anywhere fails. -inf entries of ref (lse of empty rows) must be
 * -inf in x and are left out of the norms. */
static int compare_floor(const char *what, const cfg *c, const double *ref, const float *x,
                         size_t n, double tol, double rms_floor)
{
    double num = 0, den = 0;
    g_checks++;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i]) || isnan(ref[i])) {
            char b[256];
            cfg_str(c, b, sizeof b);
            FAIL("%s: NaN at %zu (%s)", what, i, b);
            return 0;
        }
        if (isinf(ref[i]) || isinf(x[i])) {
            if ((double)x[i] != ref[i]) {
                char b[256];
                cfg_str(c, b, sizeof b);
                FAIL("%s: [%zu] = %g, want %g (%s)", what, i, (double)x[i], ref[i], b);
                return 0;
            }
            continue;
        }
        num += (x[i] - ref[i]) * (x[i] - ref[i]);
        den += ref[i] * ref[i];
    }
    if (den < rms_floor * rms_floor * (double)n)
        den = rms_floor * rms_floor * (double)n;
    double rel = den > 0 ? sqrt(num / den) : sqrt(num);
    if (!(rel < tol)) {
        char b[256];
        cfg_str(c, b, sizeof b);
        FAIL("%s: relative error %.3g >= %.g (%s)", what, rel, tol, b);
        return 0;
    }
    return 1;
}

static int compare(const char *what, const cfg *c, const double *ref, const float *x, size_t n,
                   double tol)
{
    return compare_floor(what, c, ref, x, n, tol, 0.0);
}

/* dS = P * (dP - delta) cancels when a row sees few keys (one key: exactly 0 in float64,
 * fp32 round-off in the kernel), so dq and dk, whose norms can collapse that way, are judged
 * against at least a tenth of the natural size of a gradient entry in the same problem: the
 * larger of RMS(dv) (P^T dO, which does not cancel; large when few keys gather many rows)
 * and scale * sqrt(d) * rms(dout) * rms(v) * rms(k) (one row's dq without cancellation). */
static double rms(const double *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i] * x[i];
    return n ? sqrt(s / (double)n) : 0.0;
}

static double lc_attn_scale_of(const lc_attn_desc *a)
{
    return a->scale != 0.0f ? a->scale : 1.0 / sqrt((double)a->d);
}

static void to_f32(const void *x, lc_dtype dt, float *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        f[i] = dt == LC_DT_F32 ? ((const float *)x)[i] : lc_bf16_to_f32(((const lc_bf16 *)x)[i]);
}

static void poison(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = NAN;
}

/* Block b of nsplit contiguous KV blocks: rows [*k0, *k0 + *n). */
static void split_range(int sk, int nsplit, int b, int *k0, int *n)
{
    int lo = (int)((long)sk * b / nsplit), hi = (int)((long)sk * (b + 1) / nsplit);
    *k0 = lo;
    *n = hi - lo;
}

static lc_attn_desc sub_desc(const prob *p, int k0, int n)
{
    lc_attn_desc s = p->a;
    s.sk = n;
    s.k_pos = p->kpos + k0;
    if (s.mask.kind & LC_MASK_DOC)
        s.mask.k_doc = p->kdoc + k0;
    return s;
}

static const void *kv_at(const prob *p, const void *x, int k0)
{
    return (const char *)x + (size_t)k0 * p->c.hkv * p->c.d * lc_dtype_size(p->c.dt);
}

static void shuffle(int *ord, int n)
{
    for (int i = 0; i < n; i++)
        ord[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = irand(i + 1), t = ord[i];
        ord[i] = ord[j];
        ord[j] = t;
    }
}

/* Forward state over KV split into nsplit blocks fed in a random order. */
static int run_fwd_split(const prob *p, float *o, float *lse)
{
    int ord[64];
    int ns = p->c.nsplit < 1 ? 1 : p->c.nsplit;
    lc_attn_fwd_init(&p->a, o, lse);
    shuffle(ord, ns);
    for (int b = 0; b < ns; b++) {
        int k0, n;
        split_range(p->c.sk, ns, ord[b], &k0, &n);
        lc_attn_desc s = sub_desc(p, k0, n);
        if (lc_attn_fwd_block(&s, p->q, kv_at(p, p->k, k0), kv_at(p, p->v, k0), o, lse) != 0) {
            FAIL("fwd_block: %s", lc_attn_last_error());
            return -1;
        }
    }
    return 0;
}

/* argv[2]: a comma list of impls this run covers (the AVX-512 cases are their own ctest
 * entries, which exit 77 on a CPU without it instead of passing with a SKIP line). */
static const char *g_impls;

static int impl_listed(lc_attn_impl i)
{
    if (!g_impls) return 1;
    const char *name = lc_attn_impl_name(i), *p = g_impls;
    size_t n = strlen(name);
    while ((p = strstr(p, name))) {
        if ((p == g_impls || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return 1;
        p += n;
    }
    return 0;
}

static int impl_ok(lc_attn_impl i)
{
    static int said[4];
    if (!impl_listed(i))
        return 0;
    if (lc_attn_impl_supported(i))
        return 1;
    if (!said[i]++)
        printf("SKIP impl %s: not supported by this CPU\n", lc_attn_impl_name(i));
    return 0;
}

static void check_fwd(const cfg *c)
{
    prob p;
    prob_make(&p, c);
    size_t nq = (size_t)c->sq * c->hq * c->d, nr = (size_t)c->sq * c->hq;
    double *ro = malloc(nq * 8 + 8), *rl = malloc(nr * 8 + 8);
    float *o = malloc(nq * 4 + 4), *lse = malloc(nr * 4 + 4), *of = malloc(nq * 4 + 4);
    void *out = malloc(nq * 4 + 4);
    if (lc_attn_ref_fwd(&p.a, p.qd, p.kd, p.vd, ro, rl) != 0)
        FAIL("ref_fwd: %s", lc_attn_last_error());
    /* whole KV in one call, into the requested output dtype */
    poison(out, nq);
    poison(lse, nr);
    if (lc_attn_fwd(&p.a, p.q, p.k, p.v, out, c->out_dt, lse) != 0) {
        FAIL("lc_attn_fwd: %s", lc_attn_last_error());
    } else {
        to_f32(out, c->out_dt, of, nq);
        compare("fwd out", c, ro, of, nq, tol_of(c));
        compare("fwd lse", c, rl, lse, nr, tol_of(c));
    }
    /* KV in several blocks, any order */
    if (c->nsplit > 1) {
        poison(o, nq);
        poison(lse, nr);
        if (run_fwd_split(&p, o, lse) == 0) {
            cfg c2 = *c;
            c2.out_dt = LC_DT_F32;
            compare("split fwd out", c, ro, o, nq, tol_of(&c2));
            compare("split fwd lse", c, rl, lse, nr, tol_of(&c2));
        }
    }
    free(ro); free(rl); free(o); free(lse); free(of); free(out);
    prob_free(&p);
}

static void check_bwd(const cfg *c)
{
    prob p;
    prob_make(&p, c);
    size_t nq = (size_t)c->sq * c->hq * c->d, nr = (size_t)c->sq * c->hq;
    size_t nk = (size_t)c->sk * c->hkv * c->d;
    double *rdq = malloc(nq * 8 + 8), *rdk = malloc(nk * 8 + 8), *rdv = malloc(nk * 8 + 8);
    float *o = malloc(nq * 4 + 4), *lse = malloc(nr * 4 + 4), *delta = malloc(nr * 4 + 4);
    float *dq = malloc(nq * 4 + 4), *dk = malloc(nk * 4 + 4), *dv = malloc(nk * 4 + 4);
    float *base = malloc((nq + 2 * nk) * 4 + 4);
    double *gq = malloc(nq * 8 + 8), *gk = malloc(nk * 8 + 8), *gv = malloc(nk * 8 + 8);
    if (lc_attn_ref_bwd(&p.a, p.qd, p.kd, p.vd, p.doutd, rdq, rdk, rdv) != 0)
        FAIL("ref_bwd: %s", lc_attn_last_error());
    poison(o, nq);
    poison(lse, nr);
    if (run_fwd_split(&p, o, lse) != 0)
        goto out;
    poison(delta, nr);
    if (lc_attn_bwd_prep(&p.a, o, p.dout, delta) != 0) {
        FAIL("bwd_prep: %s", lc_attn_last_error());
        goto out;
    }
    /* The kernel accumulates (dq over the KV blocks here); the "+=" on a non-zero start is
     * checked in the basic section, where a start of O(1) cannot hide small gradients. */
    for (size_t i = 0; i < nq + 2 * nk; i++)
        base[i] = 0.0f;
    memcpy(dq, base, nq * 4);
    memcpy(dk, base + nq, nk * 4);
    memcpy(dv, base + nq + nk, nk * 4);
    int ord[64], ns = c->nsplit < 1 ? 1 : c->nsplit;
    shuffle(ord, ns);
    for (int b = 0; b < ns; b++) {
        int k0, n;
        split_range(c->sk, ns, ord[b], &k0, &n);
        lc_attn_desc s = sub_desc(&p, k0, n);
        size_t ko = (size_t)k0 * c->hkv * c->d;
        if (lc_attn_bwd_block(&s, p.q, kv_at(&p, p.k, k0), kv_at(&p, p.v, k0), p.dout, lse,
                              delta, dq, dk + ko, dv + ko) != 0) {
            FAIL("bwd_block: %s", lc_attn_last_error());
            goto out;
        }
    }
    for (size_t i = 0; i < nq; i++)
        gq[i] = (double)dq[i] - base[i];
    for (size_t i = 0; i < nk; i++) {
        gk[i] = (double)dk[i] - base[nq + i];
        gv[i] = (double)dv[i] - base[nq + nk + i];
    }
    {
        float *t = malloc((nq > nk ? nq : nk) * 4 + 4);
        double tol = tol_of(c);
        for (size_t i = 0; i < nq; i++) t[i] = (float)gq[i];
        double nat = lc_attn_scale_of(&p.a) * sqrt((double)c->d) * rms(p.doutd, nq) *
                     rms(p.vd, nk) * rms(p.kd, nk);
        double floor = 0.1 * fmax(rms(rdv, nk), nat);
        compare_floor("bwd dq", c, rdq, t, nq, tol, floor);
        for (size_t i = 0; i < nk; i++) t[i] = (float)gk[i];
        compare_floor("bwd dk", c, rdk, t, nk, tol, floor);
        for (size_t i = 0; i < nk; i++) t[i] = (float)gv[i];
        compare("bwd dv", c, rdv, t, nk, tol);
        free(t);
    }
out:
    free(rdq); free(rdk); free(rdv); free(o); free(lse); free(delta);
    free(dq); free(dk); free(dv); free(base); free(gq); free(gk); free(gv);
    prob_free(&p);
}

/* ---------------------------------------------------------------- sweeps */

static const int k_lens[] = {1, 7, 33, 64, 100, 130};

static cfg sweep_cfg(lc_attn_impl impl, unsigned mask, lc_dtype dt, int d, int idx)
{
    cfg c = {0};
    c.impl = impl;
    c.mask = mask;
    c.dt = dt;
    c.d = d;
    c.hq = k_gqa[idx % 4][0];
    c.hkv = k_gqa[idx % 4][1];
    c.sq = k_lens[idx % 6];
    c.sk = k_lens[(idx * 7 + 3) % 6];
    c.posmode = (idx / 3) % 5;
    c.nsplit = 1 + (idx / 2) % 4;
    c.out_dt = (idx / 5) % 2 ? LC_DT_BF16 : LC_DT_F32;
    c.threads = 1 + (idx / 7) % 2;
    return c;
}

static void sweep(void (*check)(const cfg *), int dmax)
{
    int idx = 0;
    for (int ii = 0; ii < 3; ii++) {
        if (!impl_ok(k_impls[ii]))
            continue;
        for (int mi = 0; mi < NMASKS; mi++)
            for (int dti = 0; dti < 2; dti++)
                for (int di = 0; di < 5; di++)
                    for (int gi = 0; gi < 4; gi++) {
                        idx++;
                        if (k_dims[di] > dmax || (g_quick && idx % g_quick != 0))
                            continue;
                        cfg c = sweep_cfg(k_impls[ii], k_masks[mi], (lc_dtype)dti, k_dims[di],
                                          idx + ii);
                        c.hq = k_gqa[gi][0];
                        c.hkv = k_gqa[gi][1];
                        check(&c);
                    }
        /* every mask with every position layout, a few Q and KV tiles each */
        for (int pm = 0; pm < 5; pm++)
            for (int mi = 0; mi < NMASKS; mi++) {
                if (g_quick && (pm * NMASKS + mi) % g_quick)
                    continue;
                cfg c = sweep_cfg(k_impls[ii], k_masks[mi], (lc_dtype)(mi % 2), 64, mi + pm);
                c.posmode = pm;
                c.sq = 150 + irand(60);
                c.sk = 150 + irand(80);
                c.nsplit = 1 + irand(5);
                check(&c);
            }
    }
}

static void section_big(void)
{
    lc_attn_impl best = lc_attn_impl_best();
    if (g_quick) {
        printf("quick mode: only S=1000 of the long lengths\n");
        cfg q = {.impl = best, .sq = 1000, .sk = 1000, .hq = 2, .hkv = 1, .d = 64,
                 .posmode = 2, .nsplit = 3, .mask = LC_MASK_CAUSAL | LC_MASK_DOC,
                 .dt = LC_DT_F32, .out_dt = LC_DT_F32, .threads = 2};
        check_fwd(&q);
        check_bwd(&q);
        return;
    }
    cfg c = {.impl = best, .sq = 4097, .sk = 1000, .hq = 2, .hkv = 1, .d = 64,
             .posmode = 1, .nsplit = 3, .mask = LC_MASK_CAUSAL, .dt = LC_DT_F32,
             .out_dt = LC_DT_F32, .threads = 2};
    check_fwd(&c);
    c.sq = 1000;
    c.sk = 4097;
    c.posmode = 0;
    c.mask = LC_MASK_CAUSAL | LC_MASK_WINDOW;
    c.dt = LC_DT_BF16;
    check_fwd(&c);
    /* every implementation on the odd long lengths */
    for (int ii = 0; ii < 3; ii++) {
        if (!impl_ok(k_impls[ii]))
            continue;
        cfg s = {.impl = k_impls[ii], .sq = 4097, .sk = 1000, .hq = 1, .hkv = 1, .d = 64,
                 .posmode = 4, .nsplit = 4, .mask = LC_MASK_CAUSAL | LC_MASK_DOC,
                 .dt = (lc_dtype)(ii % 2), .out_dt = LC_DT_F32, .threads = 2};
        check_fwd(&s);
        s.sq = 1000;
        s.sk = 4097;
        s.posmode = 2;
        s.mask = LC_MASK_NONE;
        check_fwd(&s);
    }
    cfg b = {.impl = best, .sq = 1000, .sk = 1000, .hq = 2, .hkv = 1, .d = 128,
             .posmode = 2, .nsplit = 2, .mask = LC_MASK_CAUSAL | LC_MASK_DOC, .dt = LC_DT_F32,
             .out_dt = LC_DT_F32, .threads = 2};
    check_bwd(&b);
    b.impl = LC_ATTN_SCALAR;
    b.d = 64;
    b.mask = LC_MASK_CAUSAL;
    b.posmode = 0;
    check_bwd(&b);
}

/* ---------------------------------------------------------------- threads */

static int same(const float *x, const float *y, size_t n)
{
    return memcmp(x, y, n * sizeof(float)) == 0;
}

/* Thread counts exercise both backward schedules: 1 thread (and 2 threads with 2 KV heads)
 * run the fused per-KV-head tasks, 3 threads with 2 KV heads and 2 threads with 1 KV head
 * run the split dK/dV + dQ tasks. All must give the same bits as 1 thread. */
static void section_threads(void)
{
    /* 16/1 at d = 64: the fused path copies its group in two batches of 8 heads
     * (512 / d), so dK/dV meet both batches and the stacked per-batch matmuls. */
    static const int gqa[][2] = {{8, 2}, {3, 1}, {16, 1}};
    static const int nthr[] = {2, 3};
    for (int ii = 0; ii < 3; ii++) {
        if (!impl_ok(k_impls[ii]))
            continue;
        for (int gi = 0; gi < 3; gi++)
            for (int dti = 0; dti < 2; dti++) {
                cfg c = {.impl = k_impls[ii], .sq = 150, .sk = 200, .hq = gqa[gi][0],
                         .hkv = gqa[gi][1], .d = 64, .posmode = 2, .nsplit = 1,
                         .mask = LC_MASK_CAUSAL | LC_MASK_DOC, .dt = (lc_dtype)dti,
                         .out_dt = LC_DT_F32, .threads = 1};
                if (g_quick) {
                    c.sq = 70, c.sk = 90;
                    if (gi == 0)
                        c.hq = 4;
                }
                prob p;
                prob_make(&p, &c);
                size_t nq = (size_t)c.sq * c.hq * c.d, nr = (size_t)c.sq * c.hq;
                size_t nk = (size_t)c.sk * c.hkv * c.d;
                float *o[3], *l[3], *dq[3], *dk[3], *dv[3], *delta = malloc(nr * 4);
                for (int t = 0; t < 3; t++) {
                    o[t] = malloc(nq * 4);
                    l[t] = malloc(nr * 4);
                    dq[t] = calloc(nq, 4);
                    dk[t] = calloc(nk, 4);
                    dv[t] = calloc(nk, 4);
                    p.a.threads = t == 0 ? 1 : nthr[t - 1];
                    lc_attn_fwd_init(&p.a, o[t], l[t]);
                    if (lc_attn_fwd_block(&p.a, p.q, p.k, p.v, o[t], l[t]) != 0 ||
                        lc_attn_bwd_prep(&p.a, o[0], p.dout, delta) != 0 ||
                        lc_attn_bwd_block(&p.a, p.q, p.k, p.v, p.dout, l[0], delta, dq[t],
                                          dk[t], dv[t]) != 0)
                        FAIL("threads: %s", lc_attn_last_error());
                }
                for (int t = 1; t < 3; t++) {
                    g_checks++;
                    if (!same(o[0], o[t], nq) || !same(l[0], l[t], nr))
                        FAIL("impl %s %s hq/hkv %d/%d: forward differs between 1 and %d "
                             "threads",
                             lc_attn_impl_name(c.impl), lc_dtype_name(c.dt), c.hq, c.hkv,
                             nthr[t - 1]);
                    if (!same(dq[0], dq[t], nq) || !same(dk[0], dk[t], nk) ||
                        !same(dv[0], dv[t], nk))
                        FAIL("impl %s %s hq/hkv %d/%d: backward differs between 1 and %d "
                             "threads",
                             lc_attn_impl_name(c.impl), lc_dtype_name(c.dt), c.hq, c.hkv,
                             nthr[t - 1]);
                }
                for (int t = 0; t < 3; t++) {
                    free(o[t]); free(l[t]); free(dq[t]); free(dk[t]); free(dv[t]);
                }
                free(delta);
                prob_free(&p);
            }
    }
}

/* ---------------------------------------------------------------- basic */

/* The bf16 inner product a job picks: the names, the environment's force, the measurement
 * and its cache (one line per CPU model, rewritten in place). */
static void check_bf16_dot_choice(void)
{
    static const char *const names[3] = {"auto", "fma", "dpbf16"};
    for (int i = 0; i < 3; i++) {
        lc_bf16_dot d;
        g_checks++;
        if (lc_bf16_dot_parse(names[i], &d) || strcmp(lc_bf16_dot_name(d), names[i])) FAIL("bf16 dot name %s", names[i]);
    }
    lc_bf16_dot d;
    if (!lc_bf16_dot_parse("vnni", &d)) FAIL("'vnni' parsed as a bf16 dot variant");
    char dir[] = "/tmp/lc_bf16dot_XXXXXX", path[128], why[256], line[640];
    if (!mkdtemp(dir)) {
        FAIL("mkdtemp");
        return;
    }
    setenv("XDG_CACHE_HOME", dir, 1);
    unsetenv("LONGCTX_ATTN_BF16_DOT");
    snprintf(path, sizeof path, "%s/longctx/bf16-dot", dir);
    const int has = lc_attn_cpu_has_bf16();
    for (int call = 0; call < 2; call++) {
        d = lc_attn_bf16_dot_measure(why, sizeof why);
        g_checks++;
        printf("bf16 dot, measured (%d): %s\n", call + 1, why);
        if (!has && (d != LC_BF16_DOT_FMA || !strstr(why, "no avx512bf16")))
            FAIL("a CPU without avx512bf16 chose %s (%s)", lc_bf16_dot_name(d), why);
        if (has) {
            FILE *f = fopen(path, "r");
            int n = 0;
            while (f && fgets(line, sizeof line, f)) n++;
            if (f) fclose(f);
            if (n != 1) FAIL("the cache %s has %d lines after %d measurements (want 1)", path, n, call + 1);
            if (d != LC_BF16_DOT_FMA && d != LC_BF16_DOT_DPBF16) FAIL("measured %d", (int)d);
            if (call == 1 && !strstr(why, "cached") && !strstr(why, "the faster"))
                FAIL("the second measurement does not say how the cache weighed in: %s", why);
        }
    }
    setenv("LONGCTX_ATTN_BF16_DOT", "0", 1);
    lc_attn_set_bf16_dot(LC_BF16_DOT_DPBF16);
    g_checks++;
    if (lc_attn_bf16_dot_measure(why, sizeof why) != LC_BF16_DOT_FMA || lc_attn_bf16_dot() != LC_BF16_DOT_FMA)
        FAIL("LONGCTX_ATTN_BF16_DOT=0 does not force fma (%s)", why);
    unsetenv("LONGCTX_ATTN_BF16_DOT");
    g_checks++;
    if (lc_attn_bf16_dot() != (has ? LC_BF16_DOT_DPBF16 : LC_BF16_DOT_FMA)) FAIL("the set choice is not what runs");
    lc_attn_set_bf16_dot(LC_BF16_DOT_AUTO);
    g_checks++;
    if (lc_attn_bf16_dot() != LC_BF16_DOT_FMA) FAIL("with no choice set the kernels do not take fma");
    remove(path);
    snprintf(path, sizeof path, "%s/longctx", dir);
    rmdir(path);
    rmdir(dir);
}

static void check_bf16(void)
{
    struct { uint32_t in; uint16_t out; } cases[] = {
        {0x3f800000u, 0x3f80}, {0x3f808000u, 0x3f80}, {0x3f818000u, 0x3f82},
        {0x3f808001u, 0x3f81}, {0x7f800000u, 0x7f80}, {0xff800000u, 0xff80},
        {0x7f7fffffu, 0x7f80}, {0x80000000u, 0x8000}, {0x00000001u, 0x0000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float f;
        memcpy(&f, &cases[i].in, 4);
        g_checks++;
        if (lc_f32_to_bf16(f) != cases[i].out)
            FAIL("bf16(0x%08x) = 0x%04x, want 0x%04x", cases[i].in, lc_f32_to_bf16(f),
                 cases[i].out);
    }
    g_checks++;
    if (!isnan(lc_bf16_to_f32(lc_f32_to_bf16(NAN))) || lc_bf16_to_f32(0x4040) != 3.0f)
        FAIL("bf16 NaN/decode");
}

static void check_classify(void)
{
    for (int it = 0; it < 3000; it++) {
        int32_t qp[16], kp[16], qd[16], kd[16];
        int nq = 1 + irand(16), nk = 1 + irand(16);
        int base = irand(40), step = 1 + irand(2), pad = irand(4) == 0;
        for (int i = 0; i < nq; i++) {
            qp[i] = pad && irand(3) == 0 ? -1 : base + irand(20) + i * step;
            qd[i] = qp[i] / (1 + irand(2) * 8);
        }
        for (int j = 0; j < nk; j++) {
            kp[j] = pad && irand(3) == 0 ? -1 : irand(40) + j * step;
            kd[j] = kp[j] / (1 + irand(2) * 8);
        }
        lc_mask m = {.kind = (unsigned)irand(8), .window = 1 + irand(30), .q_doc = qd,
                     .k_doc = kd};
        lc_block_class cls = lc_attn_classify(&m, qp, 0, nq, kp, 0, nk);
        int any = 0, all = 1;
        for (int i = 0; i < nq; i++)
            for (int j = 0; j < nk; j++) {
                int ok = lc_attn_allowed(&m, qp[i], kp[j], qd[i], kd[j]);
                any |= ok;
                all &= ok;
            }
        g_checks++;
        if ((cls == LC_BLOCK_SKIP && any) || (cls == LC_BLOCK_FULL && !all))
            FAIL("classify %d with any=%d all=%d (mask %s)", (int)cls, any, all,
                 mask_name(m.kind));
    }
    /* exact answers on a plain causal layout */
    int32_t pos[256];
    for (int i = 0; i < 256; i++)
        pos[i] = i;
    lc_mask c = {.kind = LC_MASK_CAUSAL};
    g_checks++;
    if (lc_attn_classify(&c, pos, 64, 128, pos, 0, 64) != LC_BLOCK_FULL ||
        lc_attn_classify(&c, pos, 64, 128, pos, 64, 128) != LC_BLOCK_PARTIAL ||
        lc_attn_classify(&c, pos, 0, 64, pos, 64, 128) != LC_BLOCK_SKIP ||
        lc_attn_classify(NULL, pos, 0, 64, pos, 64, 128) != LC_BLOCK_FULL)
        FAIL("causal classification");
    lc_mask w = {.kind = LC_MASK_WINDOW | LC_MASK_CAUSAL, .window = 64};
    g_checks++;
    if (lc_attn_classify(&w, pos, 192, 256, pos, 0, 64) != LC_BLOCK_SKIP ||
        lc_attn_classify(&w, pos, 128, 192, pos, 64, 128) != LC_BLOCK_PARTIAL)
        FAIL("window classification");
}

typedef void (*mutator)(lc_attn_desc *a);
static void m_sq(lc_attn_desc *a) { a->sq = -1; }
static void m_sk(lc_attn_desc *a) { a->sk = -3; }
static void m_hq(lc_attn_desc *a) { a->hq = 0; }
static void m_hkv0(lc_attn_desc *a) { a->hkv = 0; }
static void m_hkv(lc_attn_desc *a) { a->hq = 6; a->hkv = 4; }
static void m_d(lc_attn_desc *a) { a->d = 100; }
static void m_d0(lc_attn_desc *a) { a->d = 0; }
static void m_dt(lc_attn_desc *a) { a->qkv_dtype = (lc_dtype)7; }
static void m_scale(lc_attn_desc *a) { a->scale = NAN; }
static void m_kind(lc_attn_desc *a) { a->mask.kind = 0x10; }
static void m_win(lc_attn_desc *a) { a->mask.kind = LC_MASK_WINDOW; a->mask.window = 0; }
static void m_qdoc(lc_attn_desc *a) { a->mask.kind = LC_MASK_DOC; a->mask.q_doc = NULL; }
static void m_kdoc(lc_attn_desc *a) { a->mask.kind = LC_MASK_DOC; a->mask.k_doc = NULL; }
static void m_impl(lc_attn_desc *a) { a->impl = (lc_attn_impl)9; }

static void check_bad_args(void)
{
    struct { mutator f; const char *field; } cases[] = {
        {m_sq, "sq"},       {m_sk, "sk"},       {m_hq, "hq"},         {m_hkv0, "hkv"},
        {m_hkv, "hkv"},     {m_d, "d = 100"},   {m_d0, "d = 0"},      {m_dt, "qkv_dtype"},
        {m_scale, "scale"}, {m_kind, "mask.kind"}, {m_win, "mask.window"},
        {m_qdoc, "mask.q_doc"}, {m_kdoc, "mask.k_doc"}, {m_impl, "impl"},
    };
    enum { SQ = 5, SK = 6, H = 2, D = 64 };
    static float q[SQ * H * D], k[SK * H * D], v[SK * H * D], o[SQ * H * D], g[SQ * H * D];
    static float lse[SQ * H], dl[SQ * H], dq[SQ * H * D], dk[SK * H * D], dv[SK * H * D];
    static double qd[SQ * H * D], kd[SK * H * D], vd[SK * H * D], od[SQ * H * D];
    static int32_t qdoc[SQ], kdoc[SK];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lc_attn_desc a = {.sq = SQ, .sk = SK, .hq = H, .hkv = H, .d = D, .threads = 1};
        a.mask.q_doc = qdoc;
        a.mask.k_doc = kdoc;
        cases[i].f(&a);
        char err[256] = "";
        int rc[7];
        const char *msg[7];
        static char keep[7][256];
        rc[0] = lc_attn_check(&a, err, sizeof err);
        msg[0] = err;
        rc[1] = lc_attn_fwd_block(&a, q, k, v, o, lse);
        snprintf(keep[1], 256, "%s", lc_attn_last_error());
        rc[2] = lc_attn_bwd_block(&a, q, k, v, g, lse, dl, dq, dk, dv);
        snprintf(keep[2], 256, "%s", lc_attn_last_error());
        rc[3] = lc_attn_bwd_prep(&a, o, g, dl);
        snprintf(keep[3], 256, "%s", lc_attn_last_error());
        rc[4] = lc_attn_fwd(&a, q, k, v, o, LC_DT_F32, lse);
        snprintf(keep[4], 256, "%s", lc_attn_last_error());
        rc[5] = lc_attn_ref_fwd(&a, qd, kd, vd, od, NULL);
        snprintf(keep[5], 256, "%s", lc_attn_last_error());
        rc[6] = lc_attn_fwd_finish(&a, o, o, LC_DT_F32);
        snprintf(keep[6], 256, "%s", lc_attn_last_error());
        for (int j = 1; j < 7; j++)
            msg[j] = keep[j];
        for (int j = 0; j < 7; j++) {
            g_checks++;
            if (rc[j] != -1 || !strstr(msg[j], cases[i].field))
                FAIL("bad arg '%s': call %d gave %d, message '%s'", cases[i].field, j, rc[j],
                     msg[j]);
        }
    }
    /* NULL buffers and a NULL descriptor */
    lc_attn_desc a = {.sq = SQ, .sk = SK, .hq = H, .hkv = H, .d = D};
    const char *last;
#define NULLCASE(call, want)                                                               \
    do {                                                                                   \
        int r_ = (call);                                                                   \
        last = lc_attn_last_error();                                                       \
        g_checks++;                                                                        \
        if (r_ != -1 || !strstr(last, want))                                               \
            FAIL("%s: rc %d message '%s', want '%s'", #call, r_, last, want);             \
    } while (0)
    NULLCASE(lc_attn_fwd_block(&a, NULL, k, v, o, lse), "q is NULL");
    NULLCASE(lc_attn_fwd_block(&a, q, NULL, v, o, lse), "k is NULL");
    NULLCASE(lc_attn_fwd_block(&a, q, k, NULL, o, lse), "v is NULL");
    NULLCASE(lc_attn_fwd_block(&a, q, k, v, NULL, lse), "o (forward state) is NULL");
    NULLCASE(lc_attn_fwd_block(&a, q, k, v, o, NULL), "lse is NULL");
    NULLCASE(lc_attn_bwd_block(&a, q, k, v, NULL, lse, dl, dq, dk, dv), "dout is NULL");
    NULLCASE(lc_attn_bwd_block(&a, q, k, v, g, NULL, dl, dq, dk, dv), "lse is NULL");
    NULLCASE(lc_attn_bwd_block(&a, q, k, v, g, lse, NULL, dq, dk, dv), "delta is NULL");
    NULLCASE(lc_attn_bwd_block(&a, q, k, v, g, lse, dl, NULL, dk, dv), "dq is NULL");
    NULLCASE(lc_attn_bwd_block(&a, q, k, v, g, lse, dl, dq, NULL, dv), "dk is NULL");
    NULLCASE(lc_attn_bwd_block(&a, q, k, v, g, lse, dl, dq, dk, NULL), "dv is NULL");
    NULLCASE(lc_attn_bwd_prep(&a, NULL, g, dl), "out is NULL");
    NULLCASE(lc_attn_fwd(&a, q, k, v, NULL, LC_DT_F32, lse), "out is NULL");
    NULLCASE(lc_attn_fwd(&a, q, k, v, o, (lc_dtype)5, lse), "out_dtype");
    NULLCASE(lc_attn_fwd_block(NULL, q, k, v, o, lse), "descriptor is NULL");
    NULLCASE(lc_attn_ref_fwd(&a, NULL, kd, vd, od, NULL), "q is NULL");
    lc_attn_impl im;
    NULLCASE(lc_attn_impl_parse("avx9", &im), "avx9");
    /* an unknown forced impl in the environment is an error, not a silent fallback */
    setenv("LONGCTX_ATTN_IMPL", "bogus", 1);
    NULLCASE(lc_attn_fwd_block(&a, q, k, v, o, lse), "LONGCTX_ATTN_IMPL");
    unsetenv("LONGCTX_ATTN_IMPL");
    /* a valid forced impl is what AUTO runs: bit-identical to asking for it by name */
    {
        cfg c = {.impl = LC_ATTN_SCALAR, .sq = 70, .sk = 80, .hq = 2, .hkv = 1, .d = 64,
                 .mask = LC_MASK_CAUSAL, .dt = LC_DT_F32, .out_dt = LC_DT_F32, .threads = 1};
        prob p;
        prob_make(&p, &c);
        size_t nq = (size_t)c.sq * c.hq * c.d;
        float *o1 = malloc(nq * 4), *o2 = malloc(nq * 4);
        lc_attn_fwd(&p.a, p.q, p.k, p.v, o1, LC_DT_F32, NULL);
        p.a.impl = LC_ATTN_AUTO;
        setenv("LONGCTX_ATTN_IMPL", "scalar", 1);
        lc_attn_fwd(&p.a, p.q, p.k, p.v, o2, LC_DT_F32, NULL);
        unsetenv("LONGCTX_ATTN_IMPL");
        g_checks++;
        if (memcmp(o1, o2, nq * 4) != 0)
            FAIL("LONGCTX_ATTN_IMPL=scalar did not select the scalar kernels");
        free(o1);
        free(o2);
        prob_free(&p);
    }
    /* empty blocks are valid no-ops, even with NULL buffers */
    lc_attn_desc e = a;
    e.sq = 0;
    g_checks++;
    if (lc_attn_fwd_block(&e, NULL, k, v, NULL, NULL) != 0 ||
        lc_attn_bwd_block(&e, NULL, k, v, NULL, NULL, NULL, NULL, dk, dv) != 0)
        FAIL("sq = 0 must be a no-op: %s", lc_attn_last_error());
    e = a;
    e.sk = 0;
    lc_attn_fwd_init(&e, o, lse);
    g_checks++;
    if (lc_attn_fwd_block(&e, q, NULL, NULL, o, lse) != 0 || lse[0] != -INFINITY || o[0] != 0)
        FAIL("sk = 0 must leave the state alone: %s", lc_attn_last_error());
    g_checks++;
    if (lc_attn_impl_parse("avx512", &im) != 0 || im != LC_ATTN_AVX512 ||
        strcmp(lc_attn_impl_name(LC_ATTN_AVX2), "avx2") != 0)
        FAIL("impl names");
}

/* L = sum(out * w) as a function of one input coordinate. */
static double loss_ref(const prob *p, const double *w)
{
    size_t nq = (size_t)p->c.sq * p->c.hq * p->c.d;
    double *o = malloc(nq * 8);
    lc_attn_ref_fwd(&p->a, p->qd, p->kd, p->vd, o, NULL);
    double s = 0;
    for (size_t i = 0; i < nq; i++)
        s += o[i] * w[i];
    free(o);
    return s;
}

static double loss_kernel(const prob *p, const double *w)
{
    size_t nq = (size_t)p->c.sq * p->c.hq * p->c.d;
    float *o = malloc(nq * 4);
    if (lc_attn_fwd(&p->a, p->q, p->k, p->v, o, LC_DT_F32, NULL) != 0)
        FAIL("fd fwd: %s", lc_attn_last_error());
    double s = 0;
    for (size_t i = 0; i < nq; i++)
        s += o[i] * w[i];
    free(o);
    return s;
}

/* Central differences against the analytic gradient, on the float64 oracle (tight) and on
 * the scalar fp32 kernel (loose: fp32 round-off over a step of 1e-2). */
static void check_fd(int kernel)
{
    cfg c = {.impl = LC_ATTN_SCALAR, .sq = 3, .sk = 5, .hq = 2, .hkv = 1, .d = 16,
             .posmode = 1, .nsplit = 1, .mask = LC_MASK_CAUSAL | LC_MASK_WINDOW,
             .dt = LC_DT_F32, .out_dt = LC_DT_F32, .threads = 1};
    prob p;
    prob_make(&p, &c);
    p.a.mask.window = 6;
    for (int i = 0; i < c.sq; i++)
        p.qpos[i] = 3 + i;
    size_t nq = (size_t)c.sq * c.hq * c.d, nk = (size_t)c.sk * c.hkv * c.d;
    double *dq = malloc(nq * 8), *dk = malloc(nk * 8), *dv = malloc(nk * 8);
    if (!kernel) {
        lc_attn_ref_bwd(&p.a, p.qd, p.kd, p.vd, p.doutd, dq, dk, dv);
    } else {
        float *o = malloc(nq * 4), *l = malloc(nq * 4), *de = malloc(nq * 4);
        float *fq = calloc(nq, 4), *fk = calloc(nk, 4), *fv = calloc(nk, 4);
        lc_attn_fwd(&p.a, p.q, p.k, p.v, o, LC_DT_F32, l);
        lc_attn_bwd_prep(&p.a, o, p.dout, de);
        lc_attn_bwd_block(&p.a, p.q, p.k, p.v, p.dout, l, de, fq, fk, fv);
        for (size_t i = 0; i < nq; i++) dq[i] = fq[i];
        for (size_t i = 0; i < nk; i++) { dk[i] = fk[i]; dv[i] = fv[i]; }
        free(o); free(l); free(de); free(fq); free(fk); free(fv);
    }
    double h = kernel ? 1e-2 : 1e-5, tol = kernel ? 2e-3 : 1e-7;
    struct { double *xd; float *xf; double *g; size_t n; const char *name; } in[] = {
        {p.qd, p.q, dq, nq, "q"}, {p.kd, p.k, dk, nk, "k"}, {p.vd, p.v, dv, nk, "v"}};
    for (int t = 0; t < 3; t++)
        for (size_t i = 0; i < in[t].n; i++) {
            double x0 = in[t].xd[i], f[2];
            for (int s = 0; s < 2; s++) {
                double x = x0 + (s ? -h : h);
                in[t].xd[i] = x;
                in[t].xf[i] = (float)x;
                f[s] = kernel ? loss_kernel(&p, p.doutd) : loss_ref(&p, p.doutd);
            }
            in[t].xd[i] = x0;
            in[t].xf[i] = (float)x0;
            double fd = (f[0] - f[1]) / (2 * h);
            g_checks++;
            if (fabs(fd - in[t].g[i]) > tol * (1.0 + fabs(fd)))
                FAIL("finite difference (%s) d%s[%zu]: fd %.9g analytic %.9g",
                     kernel ? "scalar kernel" : "oracle", in[t].name, i, fd, in[t].g[i]);
        }
    free(dq); free(dk); free(dv);
    prob_free(&p);
}

/* bwd_block adds to dq/dk/dv: twice from zero gives twice the gradient. */
static void check_accumulate(void)
{
    for (int ii = 0; ii < 3; ii++) {
        if (!impl_ok(k_impls[ii]))
            continue;
        cfg c = {.impl = k_impls[ii], .sq = 40, .sk = 70, .hq = 4, .hkv = 2, .d = 80,
                 .posmode = 0, .nsplit = 1, .mask = LC_MASK_CAUSAL, .dt = LC_DT_F32,
                 .out_dt = LC_DT_F32, .threads = 2};
        prob p;
        prob_make(&p, &c);
        size_t nq = (size_t)c.sq * c.hq * c.d, nr = (size_t)c.sq * c.hq;
        size_t nk = (size_t)c.sk * c.hkv * c.d;
        float *o = malloc(nq * 4), *l = malloc(nr * 4), *de = malloc(nr * 4);
        float *g1 = calloc(nq + 2 * nk, 4), *g2 = calloc(nq + 2 * nk, 4);
        lc_attn_fwd(&p.a, p.q, p.k, p.v, o, LC_DT_F32, l);
        lc_attn_bwd_prep(&p.a, o, p.dout, de);
        lc_attn_bwd_block(&p.a, p.q, p.k, p.v, p.dout, l, de, g1, g1 + nq, g1 + nq + nk);
        for (int r = 0; r < 2; r++)
            lc_attn_bwd_block(&p.a, p.q, p.k, p.v, p.dout, l, de, g2, g2 + nq, g2 + nq + nk);
        double num = 0, den = 0;
        for (size_t i = 0; i < nq + 2 * nk; i++) {
            num += (g2[i] - 2.0 * g1[i]) * (g2[i] - 2.0 * g1[i]);
            den += 4.0 * g1[i] * g1[i];
        }
        g_checks++;
        if (!(den > 0 && num <= 1e-10 * den))
            FAIL("impl %s: bwd_block does not accumulate", lc_attn_impl_name(c.impl));
        free(o); free(l); free(de); free(g1); free(g2);
        prob_free(&p);
    }
}

int main(int argc, char **argv)
{
    const char *sec = argc > 1 ? argv[1] : "all";
    const char *s = getenv("LONGCTX_SEED");
    uint64_t seed = s && *s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)clock();
    const char *qk = getenv("LONGCTX_TEST_QUICK");
    g_quick = qk && *qk ? atoi(qk) : 0;
    if (g_quick == 1)
        g_quick = 2;
    if (g_quick < 0)
        g_quick = 0;
    g_rng = seed;
    printf("test_attn %s: seed %llu (LONGCTX_SEED=%llu reproduces)%s; best impl %s\n", sec,
           (unsigned long long)seed, (unsigned long long)seed, g_quick ? ", quick" : "",
           lc_attn_impl_name(lc_attn_impl_best()));
    g_impls = argc > 2 ? argv[2] : NULL;
    for (size_t k = 0; g_impls && k < sizeof k_impls / sizeof *k_impls; k++)
        if (impl_listed(k_impls[k]) && !lc_attn_impl_supported(k_impls[k])) {
            printf("SKIP: impl %s is not supported by this CPU (or build); nothing of '%s' runs\n",
                   lc_attn_impl_name(k_impls[k]), g_impls);
            return 77;
        }
    if (getenv("LONGCTX_ATTN_BF16_DOT") && !lc_attn_cpu_has_bf16()) {
        printf("SKIP: LONGCTX_ATTN_BF16_DOT asks for the bf16 dot-product kernels, but this "
               "CPU has no avx512bf16\n");
        return 77;
    }
    int all = strcmp(sec, "all") == 0, known = all;
    if (all || strcmp(sec, "basic") == 0) {
        known = 1;
        check_bf16();
        check_classify();
        check_bad_args();
        check_fd(0);
        check_fd(1);
        check_accumulate();
    }
    if (all || strcmp(sec, "bf16dot") == 0) {
        known = 1;
        check_bf16_dot_choice();
    }
    if (all || strcmp(sec, "fwd") == 0) {
        known = 1;
        sweep(check_fwd, 256);
    }
    if (all || strcmp(sec, "bwd") == 0) {
        known = 1;
        sweep(check_bwd, 256);
    }
    if (all || strcmp(sec, "big") == 0) {
        known = 1;
        section_big();
    }
    if (all || strcmp(sec, "threads") == 0) {
        known = 1;
        section_threads();
    }
    if (!known) {
        fprintf(stderr, "unknown section '%s' (basic, fwd, bwd, big, threads, all)\n", sec);
        return 2;
    }
    printf("%d checks, %d failures (seed %llu)\n", g_checks, g_fail, (unsigned long long)seed);
    return g_fail ? 1 : 0;
}
