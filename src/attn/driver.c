/* The FlashAttention-2 tile loops, shared by every implementation.
 *
 * Forward: one task per (query head, Q tile) walks the KV tiles with an online softmax in
 * base 2 (x = s * scale * log2 e), keeping an unnormalised fp32 accumulator, then merges
 * the block's (o, lse) into the caller's normalised state with the log-sum-exp rule.
 *
 * Backward: tasks own what they write, so no locks and no dependence on scheduling.
 * Two schedules, chosen by the thread count, give bit-identical results because every
 * output element receives the same tile products in the same order (dK/dV of a KV tile:
 * Q tiles ascending, then the group's query heads ascending; dQ of a Q tile: KV tiles
 * ascending), each through the same gemm call:
 *   - fused (few threads): one task per KV head walks its KV tiles and, for each tile, the
 *     group's query heads and Q tiles, writing dK, dV and dQ from one recomputed S and dP:
 *     5 tile matmuls. Only this task writes dQ of the group's query heads.
 *   - split (more threads than KV heads can feed): (KV head, KV tile) tasks accumulate
 *     dK and dV, and (query head, Q tile) tasks accumulate dQ. The dQ tasks recompute S
 *     and dP (7 matmuls instead of 5) but there are enough tasks to keep every thread busy.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn/internal.h"
#include "attn/parts.h"

#define BQ LC_ATTN_BQ
#define BK LC_ATTN_BK

static int32_t posv(const int32_t *p, int i) { return p ? p[i] : i; }

/* A call's buffers are carved out of one region in a fixed order. Run with base NULL it
 * only measures, so lc_attn_workspace_size and the kernels can never disagree. */
typedef struct {
    uint8_t *base;
    size_t off;
} carve;

static void *take(carve *w, size_t bytes)
{
    w->off = (w->off + 63) & ~(size_t)63;
    void *p = w->base ? w->base + w->off : NULL;
    w->off += bytes;
    return p;
}

/* lc_bf16_to_f32, inline: the tile packers call it per element. */
static inline float bf2f(lc_bf16 b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Widens a [rows, heads*d] bf16 array to fp32 into f. */
static void widen(float *f, const void *x, size_t n)
{
    const lc_bf16 *b = x;
    for (size_t i = 0; i < n; i++) f[i] = bf2f(b[i]);
}

/* [s, heads, d] (qkv dtype) -> fp32 V tiles for the P.V matmul: per (head, KV tile),
 * column blocks of w = vblock(d) columns, each [BK][w] contiguous. In the caller's layout
 * consecutive rows are heads*d*4 bytes apart (a multiple of 4 KiB at common head counts),
 * and even head-major rows of d floats put a w-column slice into a fraction of the L1
 * sets; a contiguous [BK][w] block stays in L1 while every row block of the tile uses it. */
static void pack_v(float *f, const void *x, lc_dtype dt, int s, int heads, int d, int w)
{
    size_t ld = (size_t)heads * d;
    int nkt = (s + BK - 1) / BK;
    for (int h = 0; h < heads; h++)
        for (int r = 0; r < s; r++) {
            float *dst = f + ((size_t)h * nkt + r / BK) * (size_t)d * BK + (size_t)(r % BK) * w;
            size_t src = r * ld + (size_t)h * d;
            for (int jb = 0; jb < d; jb += w, dst += (size_t)BK * w)
                if (dt == LC_DT_F32)
                    memcpy(dst, (const float *)x + src + jb, (size_t)w * sizeof(float));
                else
                    for (int p = 0; p < w; p++)
                        dst[p] = bf2f(((const lc_bf16 *)x)[src + jb + p]);
        }
}

/* Shared read-only state of one call. */
typedef struct {
    const lc_attn_desc *a;
    const lc_attn_ops *ops;
    int nqt, nkt, g, d;
    int nth;  /* workers this call may use (scratch is sized for them) */
    int fg;   /* query heads per forward task (a divisor of g) */
    int bg;   /* query heads per copied batch in the fused backward (a divisor of g) */
    int bdot; /* bf16 inputs take the CPU's bf16 dot product */
    float c, scale; /* c = scale * log2(e) */
    const float *qf, *kf, *dof;
    const lc_bf16 *qb, *dob; /* bf16 inputs when the bf16 dot product is used */
    /* bf16 inputs that the tile copies widen as they copy (then qf, kf, dof are NULL): a
     * whole widened array would cost a pass writing twice its bytes, and every copy would
     * then read twice the bytes. */
    const lc_bf16 *q16, *k16, *do16;
    const float *kt, *vt;          /* packed transposed tiles [hkv][nkt][BK/kw][d][kw] fp32 */
    int kw;                        /* their column block: the micro-kernel's width */
    const float *vh;               /* forward: V tiles [hkv][nkt][d/vw][BK][vw] fp32 */
    int vw;                        /* their column block */
    const lc_bf16 *ktb, *vtb;      /* or [hkv][nkt][d/2][BK][2] bf16 pairs */
    lc_tile_sum *qs, *ks;
    float *scratch;
    size_t scratch_floats;
    /* forward */
    float *o, *lse;
    /* backward */
    const float *lse_in, *delta;
    float *dq, *dk, *dv;
} call;

typedef struct {
    const call *c;
    const void *src; /* k or v, in qkv dtype */
    void *dst;
    int bf16pairs;
} pack_job;

/* Transposes each KV tile of one head into column blocks [BK/kw][d][kw] (zero-padded past
 * the tail) so the score matmul streams keys along the vector lanes, one block per
 * micro-kernel column: each block's d rows are one contiguous run (8 KiB at d = 128, kw = 16)
 * that the hardware prefetcher follows, where rows of a whole [d][BK] tile put a kw-column
 * slice at a 256-byte stride (16 of L1's 64 sets, all 8 ways). The score matmul alone over
 * tiles streamed from beyond L2, with the forward's next-tile prefetch, ran 7% (d = 128, four
 * heads per tile) to 11% (d = 64, two heads) faster blocked; in the whole kernel the change
 * stayed within a noisy host's spread. The micro-kernel calls and sums are unchanged. */
static void pack_task(void *ctx, int t, int worker)
{
    (void)worker;
    const pack_job *j = ctx;
    const call *c = j->c;
    const lc_attn_desc *a = c->a;
    int kvh = t / c->nkt, kt = t % c->nkt, d = c->d;
    int k0 = kt * BK, nk = a->sk - k0 < BK ? a->sk - k0 : BK;
    size_t ld = (size_t)a->hkv * d;
    size_t tile = (size_t)t * d * BK;
    if (j->bf16pairs) {
        lc_bf16 *dst = (lc_bf16 *)j->dst + tile;
        const lc_bf16 *src = (const lc_bf16 *)j->src + (size_t)k0 * ld + (size_t)kvh * d;
        for (int p = 0; p < d; p += 2)
            for (int r = 0; r < BK; r++) {
                lc_bf16 *e = dst + ((size_t)(p / 2) * BK + r) * 2;
                e[0] = r < nk ? src[r * ld + p] : 0;
                e[1] = r < nk ? src[r * ld + p + 1] : 0;
            }
    } else {
        float *dst = (float *)j->dst + tile;
        int kw = c->kw;
#define KT_AT(p, r) dst[(size_t)((r) / kw) * d * kw + (size_t)(p) * kw + (r) % kw]
        for (int p = 0; p < d; p++)
            for (int r = nk; r < BK; r++)
                KT_AT(p, r) = 0.0f;
        if (a->qkv_dtype == LC_DT_F32) {
            const float *src = (const float *)j->src + (size_t)k0 * ld + (size_t)kvh * d;
            for (int r = 0; r < nk; r++)
                for (int p = 0; p < d; p++)
                    KT_AT(p, r) = src[r * ld + p];
        } else {
            const lc_bf16 *src = (const lc_bf16 *)j->src + (size_t)k0 * ld + (size_t)kvh * d;
            for (int r = 0; r < nk; r++)
                for (int p = 0; p < d; p++)
                    KT_AT(p, r) = bf2f(src[r * ld + p]);
        }
#undef KT_AT
    }
}

/* C[m x n] (+)= A * B with B stored as column panels of w columns, panel j at
 * Bp + j * pstride with row stride w (packed K^T, V and K tiles): one gemm per panel, the
 * same micro-kernel calls, so the same sums, as one gemm over a row-major B. */
static void gemm_panels(const call *c, int m, int n, int k, const float *A, ptrdiff_t ars,
                        const float *Bp, size_t pstride, int w, float *C, ptrdiff_t ldc, int acc)
{
    for (int jb = 0; jb < n; jb += w)
        c->ops->gemm(m, w, k, A, ars, 1, Bp + (size_t)(jb / w) * pstride, w, C + jb, ldc, acc);
}

/* S[nq x BK] (row stride BK) = X (nq rows of d, stride ldx) . a packed K^T tile. */
static void qk_packed(const call *c, int nq, int d, const float *X, ptrdiff_t ldx,
                      const float *kt, float *S)
{
    gemm_panels(c, nq, BK, d, X, ldx, kt, (size_t)d * c->kw, c->kw, S, BK, 0);
}

static void run(const call *c, int ntasks, void (*fn)(void *, int, int), void *ctx)
{
    if (c->a->pool)
        lc_attn_pool_run(c->a->pool, c->nth, ntasks, fn, ctx);
    else
        lc_attn_parallel(c->nth, ntasks, fn, ctx);
}

static size_t packed_bytes(const call *c)
{
    return (size_t)c->a->hkv * c->nkt * c->d * BK * (c->bdot ? 2 : 4);
}

static void pack(call *c, const void *src, void *dst)
{
    pack_job j = {c, src, dst, c->bdot};
    run(c, c->a->hkv * c->nkt, pack_task, &j);
}

/* Puts -inf on the score entries the mask removes (and the tail columns). */
static void mask_tile(const call *c, lc_block_class cls, int q0, int nq, int k0, int nk,
                      float *S)
{
    const lc_attn_desc *a = c->a;
    if (nk < BK)
        for (int i = 0; i < nq; i++)
            for (int j = nk; j < BK; j++)
                S[i * BK + j] = -INFINITY;
    if (cls != LC_BLOCK_PARTIAL)
        return;
    const lc_mask *m = &a->mask;
    if (m->kind == LC_MASK_CAUSAL) {
        /* The common case, inline and branch-free (lc_attn_allowed's rule: positions
         * >= 0, key not after the query), instead of a call per score. */
        for (int i = 0; i < nq; i++) {
            int32_t qp = posv(a->q_pos, q0 + i);
            float *s = S + i * BK;
            if (a->k_pos)
                for (int j = 0; j < nk; j++) {
                    int32_t kp = a->k_pos[k0 + j];
                    s[j] = (kp > qp) | (kp < 0) | (qp < 0) ? -INFINITY : s[j];
                }
            else
                for (int j = 0; j < nk; j++)
                    s[j] = (k0 + j > qp) | (qp < 0) ? -INFINITY : s[j];
        }
        return;
    }
    int doc = (m->kind & LC_MASK_DOC) != 0;
    for (int i = 0; i < nq; i++) {
        int32_t qp = posv(a->q_pos, q0 + i), qd = doc ? m->q_doc[q0 + i] : 0;
        for (int j = 0; j < nk; j++)
            if (!lc_attn_allowed(m, qp, posv(a->k_pos, k0 + j), qd,
                                 doc ? m->k_doc[k0 + j] : 0))
                S[i * BK + j] = -INFINITY;
    }
}

static size_t tile_off(const call *c, int kvh, int kt)
{
    return ((size_t)kvh * c->nkt + kt) * (size_t)c->d * BK;
}

/* One task per (Q tile, fg query heads of one GQA group): the heads walk the KV tiles
 * together, so each packed K tile and V tile is fetched from memory once and then served
 * from L2 to all of them, instead of once per query head. Each row's arithmetic is that of a
 * one-head walk, so the result does not depend on the grouping or the thread count. */
static void fwd_task(void *ctx, int t, int worker)
{
    const call *c = ctx;
    const lc_attn_desc *a = c->a;
    int hq = a->hq, d = c->d, g = c->fg, ntg = hq / g;
    /* Largest causal tiles first, so the tail of the schedule is short. */
    int qt = c->nqt - 1 - t / ntg, h0 = (t % ntg) * g, kvh = h0 / c->g;
    int q0 = qt * BQ, nq = a->sq - q0 < BQ ? a->sq - q0 : BQ;
    float *S = c->scratch + (size_t)worker * c->scratch_floats;
    float *O = S + BQ * BK, *mrow = O + (size_t)g * BQ * d, *lrow = mrow + (size_t)g * BQ;
    float *Qc = lrow + (size_t)g * BQ;
    size_t ldq = (size_t)hq * d;
    memset(O, 0, (size_t)g * BQ * d * sizeof(float));
    for (int i = 0; i < g * BQ; i++) {
        mrow[i] = -INFINITY;
        lrow[i] = 0.0f;
    }
    /* The Q tiles are read once per KV tile by the score matmul; contiguous copies keep
     * their rows from colliding in L1 (see pack_v). Head hh's rows start at hh * BQ. */
    for (int hh = 0; hh < g; hh++) {
        size_t src = (size_t)q0 * ldq + (size_t)(h0 + hh) * d;
        for (int i = 0; i < nq; i++) {
            size_t dst = ((size_t)hh * BQ + i) * d;
            if (c->qb)
                memcpy((lc_bf16 *)Qc + dst, c->qb + src + i * ldq, (size_t)d * 2);
            else if (c->q16)
                widen(Qc + dst, c->q16 + src + i * ldq, (size_t)d);
            else
                memcpy(Qc + dst, c->qf + src + i * ldq, (size_t)d * 4);
        }
    }
    LC_ATTN_TIME_START();
    for (int kt = 0; kt < c->nkt; kt++) {
        lc_block_class cls = lc_attn_classify_sum(&a->mask, &c->qs[qt], &c->ks[kt]);
        if (cls == LC_BLOCK_SKIP)
            continue;
        int k0 = kt * BK, nk = a->sk - k0 < BK ? a->sk - k0 : BK;
        size_t off = tile_off(c, kvh, kt);
        const float *vt = c->vh + off;
        for (int hh = 0; hh < g; hh++) {
            size_t r0 = (size_t)hh * BQ;
            /* The next KV tile into L2 while this one computes, a share per head: the
             * first head's demand misses on every fresh K and V tile otherwise stall it. */
            if (kt + 1 < c->nkt) {
                size_t nx = tile_off(c, kvh, kt + 1), vl = (size_t)d * BK * 4 / 64 / g;
                size_t kl = c->kt ? vl : vl / 2; /* lines per head: bf16 K tiles are half */
                const char *kn = c->kt ? (const char *)(c->kt + nx) : (const char *)(c->ktb + nx);
                const char *vn = (const char *)(c->vh + nx);
                for (size_t l = hh * kl; l < (hh + 1) * kl; l++)
                    __builtin_prefetch(kn + l * 64, 0, 2);
                for (size_t l = hh * vl; l < (hh + 1) * vl; l++)
                    __builtin_prefetch(vn + l * 64, 0, 2);
            }
            LC_ATTN_TIME_POINT(fwd_other);
            if (c->ktb)
                c->ops->qk_bf16(nq, d, (const lc_bf16 *)Qc + r0 * d, d, c->ktb + off, S);
            else
                qk_packed(c, nq, d, Qc + r0 * d, d, c->kt + off, S);
            LC_ATTN_TIME_POINT(fwd_qk);
            mask_tile(c, cls, q0, nq, k0, nk, S);
            c->ops->softmax_fwd(nq, S, c->c, mrow + r0, lrow + r0, O + r0 * d, d, d);
            LC_ATTN_TIME_POINT(fwd_softmax);
            gemm_panels(c, nq, d, nk, S, BK, vt, (size_t)BK * c->vw, c->vw, O + r0 * d, d, 1);
            LC_ATTN_TIME_POINT(fwd_pv);
        }
    }
    for (int hh = 0; hh < g; hh++)
        for (int i = 0; i < nq; i++) {
            size_t ri = (size_t)hh * BQ + i;
            if (!(lrow[ri] > 0.0f))
                continue; /* this block gave the row no key: the state is unchanged */
            size_t r = (size_t)(q0 + i) * hq + h0 + hh;
            float *o = c->o + r * d;
            const float *acc = O + ri * d;
            double lb = ((double)mrow[ri] + log2((double)lrow[ri])) * M_LN2;
            double lo = c->lse[r];
            if (lo == -INFINITY) {
                float inv = (float)(1.0 / lrow[ri]);
                for (int x = 0; x < d; x++)
                    o[x] = acc[x] * inv;
                c->lse[r] = (float)lb;
                continue;
            }
            double mx = lo > lb ? lo : lb;
            double ln = mx + log(exp(lo - mx) + exp(lb - mx));
            float wo = (float)exp(lo - ln), wb = (float)(exp(lb - ln) / lrow[ri]);
            for (int x = 0; x < d; x++)
                o[x] = o[x] * wo + acc[x] * wb;
            c->lse[r] = (float)ln;
        }
}

/* Workers a call uses: the descriptor's threads, capped by the pool when there is one. */
static int workers_of(const lc_attn_desc *a)
{
    if (a->pool) {
        int n = lc_attn_pool_threads(a->pool);
        return a->threads <= 0 || a->threads > n ? n : a->threads;
    }
    return a->threads <= 0 ? 1 : a->threads > LC_ATTN_MAX_THREADS ? LC_ATTN_MAX_THREADS : a->threads;
}

/* Everything about a call that does not touch its buffers. */
static int setup(call *c, const lc_attn_desc *a)
{
    lc_attn_impl impl;
    memset(c, 0, sizeof *c);
    if (lc_attn_resolve_impl(a->impl, &impl) != 0)
        return LC_ERR_ARG;
    c->a = a;
    c->ops = lc_attn_ops_for(impl, a->qkv_dtype);
    c->d = a->d;
    c->g = a->hq / a->hkv;
    c->nqt = (a->sq + BQ - 1) / BQ;
    c->nkt = (a->sk + BK - 1) / BK;
    c->scale = lc_attn_scale(a);
    c->c = c->scale * (float)M_LOG2E;
    c->nth = workers_of(a);
    c->bdot = a->qkv_dtype == LC_DT_BF16 && c->ops->qk_bf16;
    c->vw = c->d % c->ops->vblock == 0 ? c->ops->vblock : c->d;
    c->kw = c->ops->vblock; /* BK is a multiple of every vblock (16 or 64) */
    /* The whole group per forward task, unless that leaves threads without work: then
     * smaller divisors of g, down to one head per task. */
    /* The fused backward copies the Q, dO, dQ rows of bg heads at once: a row's heads are
     * adjacent in memory, so bg * d contiguous floats per row instead of d. Up to 512
     * floats per row: 3 x 128 KiB of tiles beside the KV range in L2. */
    c->bg = c->g;
    while (c->bg > 1 && (c->bg * c->d > 512 || c->g % c->bg))
        c->bg--;
    c->fg = c->g;
    while (c->fg > 1 && (long long)(a->hq / c->fg) * c->nqt < 2LL * c->nth) {
        int f = c->fg - 1;
        while (c->g % f)
            f--;
        c->fg = f;
    }
    return 0;
}

static void summarise(call *c)
{
    const lc_attn_desc *a = c->a;
    int doc = (a->mask.kind & LC_MASK_DOC) != 0;
    for (int t = 0; t < c->nqt; t++)
        lc_attn_summarise(a->q_pos, doc ? a->mask.q_doc : NULL, t * BQ,
                          (t + 1) * BQ < a->sq ? (t + 1) * BQ : a->sq, &c->qs[t]);
    for (int t = 0; t < c->nkt; t++)
        lc_attn_summarise(a->k_pos, doc ? a->mask.k_doc : NULL, t * BK,
                          (t + 1) * BK < a->sk ? (t + 1) * BK : a->sk, &c->ks[t]);
}

/* The forward's buffers: tile summaries, head-major V, per-worker scratch, packed K
 * tiles. */
static void carve_fwd(call *c, carve *w, void **ktp)
{
    const lc_attn_desc *a = c->a;
    c->qs = take(w, sizeof(lc_tile_sum) * (size_t)(c->nqt + c->nkt));
    c->ks = c->qs ? c->qs + c->nqt : NULL;
    c->vh = take(w, (size_t)a->hkv * c->nkt * BK * a->d * sizeof(float));
    /* S; then per query head of a group: O, row max, row sum, Q tile copy. */
    c->scratch_floats = (size_t)BQ * BK + (size_t)c->fg * (2 * (size_t)BQ * a->d + 2 * BQ);
    c->scratch = take(w, c->scratch_floats * sizeof(float) * (size_t)c->nth);
    *ktp = take(w, packed_bytes(c));
}

/* Fused costs 5 matmuls per tile pair but only hkv tasks; split costs 7 with plenty of
 * tasks. Compare makespans: ceil(hkv/threads) * 5 against hkv * 7 / threads. */
static int use_fused(int hkv, int nth)
{
    int rounds = (hkv + nth - 1) / nth;
    return 5LL * rounds * nth <= 7LL * hkv;
}

/* KV tiles the fused task works on per pass over the query tiles: each Q, dO and dQ tile
 * copy then serves this many KV tiles, while K, dK, dV of the range (3 x 256 KiB at
 * d = 128) stay in L2. */
#define BWD_KV_TILES(d) ((d) <= 128 ? 8 : 4)

/* The backward's buffers: tile summaries, widened Q, K, dO (bf16 on the split path; the
 * fused path widens its tile copies), per-worker scratch, packed K and V tiles. */
static void carve_bwd(call *c, carve *w, void **ktp, void **vtp)
{
    const lc_attn_desc *a = c->a;
    size_t nq = (size_t)a->sq * a->hq * a->d, nkv = (size_t)a->sk * a->hkv * a->d;
    c->qs = take(w, sizeof(lc_tile_sum) * (size_t)(c->nqt + c->nkt));
    c->ks = c->qs ? c->qs + c->nqt : NULL;
    int fused = use_fused(a->hkv, c->nth);
    if (a->qkv_dtype == LC_DT_BF16 && !fused) {
        c->qf = take(w, nq * sizeof(float));
        c->kf = take(w, nkv * sizeof(float));
        c->dof = take(w, nq * sizeof(float));
    }
    /* S, dP, row values; the fused path adds contiguous Q, dO, dQ tiles and K, dK, dV of a
     * KV tile range. */
    c->scratch_floats =
        2 * (size_t)(fused ? c->bg : 1) * BQ * BK + 2 * BQ +
        (fused ? 3 * ((size_t)c->bg * BQ + (size_t)BWD_KV_TILES(a->d) * BK) * a->d : 0);
    c->scratch = take(w, c->scratch_floats * sizeof(float) * (size_t)c->nth);
    *ktp = take(w, packed_bytes(c));
    *vtp = take(w, packed_bytes(c));
}

int lc_attn_workspace_size(const lc_attn_desc *a, unsigned passes, size_t *bytes)
{
    if (!bytes) return lc_attn_fail("lc_attn_workspace_size: bytes is NULL");
    *bytes = 0;
    if (lc_attn_validate(a) != 0) return LC_ERR_ARG;
    if (passes & ~(unsigned)(LC_ATTN_PASS_FWD | LC_ATTN_PASS_BWD))
        return lc_attn_fail("lc_attn_workspace_size: passes = 0x%x has unknown bits", passes);
    call c;
    if (setup(&c, a) != 0) return LC_ERR_ARG;
    size_t need = 0;
    void *x, *y;
    if (passes & LC_ATTN_PASS_FWD) {
        carve w = {NULL, 0};
        carve_fwd(&c, &w, &x);
        need = w.off;
    }
    if (passes & LC_ATTN_PASS_BWD) {
        carve w = {NULL, 0};
        carve_bwd(&c, &w, &x, &y);
        if (w.off > need) need = w.off;
    }
    *bytes = need ? need + 64 : 0; /* + 64: the caller's pointer need not be aligned */
    return 0;
}

/* The region a call carves from: the caller's workspace, or (convenience) a fresh one that
 * *owned gets and the caller frees. */
static int region(const call *c, size_t need, const char *fn, carve *w, void **owned)
{
    const lc_attn_desc *a = c->a;
    *owned = NULL;
    if (a->work) {
        uintptr_t p = (uintptr_t)a->work, al = (p + 63) & ~(uintptr_t)63;
        if (a->work_bytes < al - p || a->work_bytes - (al - p) < need)
            return lc_attn_fail("%s: workspace of %zu bytes is smaller than the %zu this call "
                                "needs (lc_attn_workspace_size)", fn, a->work_bytes, need + 64);
        *w = (carve){(uint8_t *)al, 0};
        return 0;
    }
    if (!(*owned = aligned_alloc(64, need ? (need + 63) & ~(size_t)63 : 64)))
        return lc_attn_fail("%s: out of memory for a %zu-byte workspace", fn, need);
    *w = (carve){*owned, 0};
    return 0;
}

int lc_attn_fwd_block(const lc_attn_desc *a, const void *q, const void *k, const void *v,
                      float *o, float *lse)
{
    if (lc_attn_validate(a) != 0)
        return LC_ERR_ARG;
    if (a->sq == 0 || a->sk == 0)
        return 0;
    if (!q) return lc_attn_fail("lc_attn_fwd_block: q is NULL");
    if (!k) return lc_attn_fail("lc_attn_fwd_block: k is NULL");
    if (!v) return lc_attn_fail("lc_attn_fwd_block: v is NULL");
    if (!o) return lc_attn_fail("lc_attn_fwd_block: o (forward state) is NULL");
    if (!lse) return lc_attn_fail("lc_attn_fwd_block: lse is NULL");
    call c;
    if (setup(&c, a) != 0)
        return LC_ERR_ARG;
    void *ktp, *owned;
    carve w = {NULL, 0};
    carve_fwd(&c, &w, &ktp);
    if (region(&c, w.off, "lc_attn_fwd_block", &w, &owned) != 0)
        return LC_ERR_ARG;
    carve_fwd(&c, &w, &ktp);
    if (a->qkv_dtype == LC_DT_F32)
        c.qf = q;
    c.o = o;
    c.lse = lse;
    summarise(&c);
    if (c.bdot)
        c.qb = q;
    else if (a->qkv_dtype == LC_DT_BF16)
        c.q16 = q;
    pack_v((float *)c.vh, v, a->qkv_dtype, a->sk, a->hkv, a->d, c.vw);
    pack(&c, k, ktp);
    if (c.bdot)
        c.ktb = ktp;
    else
        c.kt = ktp;
    run(&c, a->hq / c.fg * c.nqt, fwd_task, &c);
    free(owned);
    return 0;
}

/* S <- P and dP <- dS for query head h, Q tile qt, KV tile kt. On the fp32 path the Q and
 * dO rows are read from xq and xdo (row stride ldx), which may be contiguous tile copies;
 * the bf16 dot product reads the caller's bf16 rows. */
static void bwd_tile(const call *c, lc_block_class cls, int h, int qt, int kt,
                     const float *xq, const float *xdo, ptrdiff_t ldx, float *S, float *dP,
                     float *rowv)
{
    const lc_attn_desc *a = c->a;
    int kvh = h / c->g, hq = a->hq, d = c->d;
    int q0 = qt * BQ, nq = a->sq - q0 < BQ ? a->sq - q0 : BQ;
    int k0 = kt * BK, nk = a->sk - k0 < BK ? a->sk - k0 : BK;
    size_t off = tile_off(c, kvh, kt), ldq = (size_t)hq * d, qr = (size_t)q0 * ldq + (size_t)h * d;
    float *lse2 = rowv, *delta = rowv + BQ;
    for (int i = 0; i < nq; i++) {
        size_t r = (size_t)(q0 + i) * hq + h;
        lse2[i] = c->lse_in[r] * (float)M_LOG2E;
        delta[i] = c->delta[r];
    }
    if (c->ktb)
        c->ops->qk_bf16(nq, d, c->qb + qr, ldq, c->ktb + off, S);
    else
        qk_packed(c, nq, d, xq, ldx, c->kt + off, S);
    mask_tile(c, cls, q0, nq, k0, nk, S);
    c->ops->softmax_bwd(nq, S, c->c, lse2);
    if (c->vtb)
        c->ops->qk_bf16(nq, d, c->dob + qr, ldq, c->vtb + off, dP);
    else
        qk_packed(c, nq, d, xdo, ldx, c->vt + off, dP);
    c->ops->dsoftmax(nq, S, dP, delta, c->scale);
}

static void bwd_task(void *ctx, int t, int worker)
{
    const call *c = ctx;
    const lc_attn_desc *a = c->a;
    int hq = a->hq, hkv = a->hkv, d = c->d;
    float *S = c->scratch + (size_t)worker * c->scratch_floats;
    float *dP = S + BQ * BK, *rowv = dP + BQ * BK;
    size_t ldq = (size_t)hq * d, ldkv = (size_t)hkv * d;
    int ndk = hkv * c->nkt;
    if (t < ndk) {
        int kvh = t / c->nkt, kt = t % c->nkt;
        int k0 = kt * BK, nk = a->sk - k0 < BK ? a->sk - k0 : BK;
        size_t kr = (size_t)k0 * ldkv + (size_t)kvh * d;
        for (int qt = 0; qt < c->nqt; qt++) {
            lc_block_class cls = lc_attn_classify_sum(&a->mask, &c->qs[qt], &c->ks[kt]);
            if (cls == LC_BLOCK_SKIP)
                continue;
            for (int h = kvh * c->g; h < (kvh + 1) * c->g; h++) {
                int q0 = qt * BQ, nq = a->sq - q0 < BQ ? a->sq - q0 : BQ;
                size_t qr = (size_t)q0 * ldq + (size_t)h * d;
                bwd_tile(c, cls, h, qt, kt, c->qf + qr, c->dof + qr, ldq, S, dP, rowv);
                c->ops->gemm(nk, d, nq, S, 1, BK, c->dof + qr, ldq, c->dv + kr, ldkv, 1);
                c->ops->gemm(nk, d, nq, dP, 1, BK, c->qf + qr, ldq, c->dk + kr, ldkv, 1);
            }
        }
    } else {
        t -= ndk;
        int qt = c->nqt - 1 - t / hq, h = t % hq, kvh = h / c->g;
        int q0 = qt * BQ, nq = a->sq - q0 < BQ ? a->sq - q0 : BQ;
        size_t qr = (size_t)q0 * ldq + (size_t)h * d;
        for (int kt = 0; kt < c->nkt; kt++) {
            lc_block_class cls = lc_attn_classify_sum(&a->mask, &c->qs[qt], &c->ks[kt]);
            if (cls == LC_BLOCK_SKIP)
                continue;
            int k0 = kt * BK, nk = a->sk - k0 < BK ? a->sk - k0 : BK;
            bwd_tile(c, cls, h, qt, kt, c->qf + qr, c->dof + qr, ldq, S, dP, rowv);
            c->ops->gemm(nq, d, nk, dP, BK, 1, c->kf + (size_t)k0 * ldkv + (size_t)kvh * d,
                         ldkv, c->dq + qr, ldq, 1);
        }
    }
}

/* Copies the rows x (heads * d) block at element off of f, or of b widened (whichever is
 * not NULL; row stride lds), into heads contiguous [rows][d] tiles (exact, so the tile
 * arithmetic is the same bits as on the strided array); rows_out is the way back. With
 * heads = D/w segments of d = w columns and tile = cap * w it copies rows x D into column
 * panels [D/w][cap][w], a micro-kernel's w-column slice being one contiguous run. */
static void rows_in(float *dst, const float *f, const lc_bf16 *b, size_t off, ptrdiff_t lds,
                    int rows, int heads, int d, size_t tile)
{
    for (int i = 0; i < rows; i++)
        for (int hh = 0; hh < heads; hh++) {
            float *t = dst + hh * tile + (size_t)i * d;
            size_t e = off + i * lds + (size_t)hh * d;
            if (b)
                widen(t, b + e, (size_t)d);
            else
                memcpy(t, f + e, (size_t)d * sizeof(float));
        }
}

static void rows_out(float *dst, ptrdiff_t ldd, const float *src, int rows, int heads, int d,
                     size_t tile)
{
    for (int i = 0; i < rows; i++)
        for (int hh = 0; hh < heads; hh++)
            memcpy(dst + i * ldd + (size_t)hh * d, src + hh * tile + (size_t)i * d,
                   (size_t)d * sizeof(float));
}

/* One KV head: dK, dV of all its KV tiles and dQ of its query heads. KV tiles are taken in
 * ascending ranges, and within a range the Q tiles and then the query heads ascend, so
 * every output element gets its tile products in the split path's order. Tiles are worked
 * on as contiguous copies: the row strides of the [s, heads, d] arrays are multiples of
 * 4 KiB at common head counts, so strided tile rows fall into the same few L1 sets. The
 * query side is copied bg heads at a time: a row's heads are adjacent, and the copies,
 * bound by memory bandwidth, ran 1.6x faster on rows of 4 heads than of one. The batch's
 * P and dS tiles of one KV tile are kept, so dV and dK take one matmul over all of its
 * heads (k = bg * BQ): the same products in the same order as one call per head, with
 * the accumulators loaded and stored once instead of bg times. The range's K rows, dQ's B
 * operand, are copied as column panels (rows_in): as rows 512 bytes apart (d = 128)
 * each micro-kernel's 16-column slice fell into 8 of L1's 64 sets. Timed by part
 * (bench/attn-parts/run.sh, Zen 3, d = 128, S = 8K, one thread), dQ took 0.47-0.48 of the
 * time of the Q K^T and dO V^T recomputation instead of 0.51-0.52, with no sum changed.
 * Padding the other copies' rows to an odd number of lines moved dV + dK by +-5% in
 * opposite directions in two such runs, so they stay unpadded. */
static void bwd_fused_task(void *ctx, int kvh, int worker)
{
    const call *c = ctx;
    const lc_attn_desc *a = c->a;
    int hq = a->hq, hkv = a->hkv, d = c->d, nkc = BWD_KV_TILES(d), bg = c->bg;
    size_t qtile = (size_t)BQ * d;
    size_t stile = (size_t)BQ * BK;
    float *S = c->scratch + (size_t)worker * c->scratch_floats;
    float *dP = S + bg * stile, *rowv = dP + bg * stile;
    float *Qc = rowv + 2 * BQ, *dOc = Qc + bg * qtile, *dQc = dOc + bg * qtile;
    float *Kc = dQc + bg * qtile, *dKc = Kc + (size_t)nkc * BK * d;
    float *dVc = dKc + (size_t)nkc * BK * d;
    size_t ldq = (size_t)hq * d, ldkv = (size_t)hkv * d;
    int f32dot = c->ktb == NULL;
    for (int kc0 = 0; kc0 < c->nkt; kc0 += nkc) {
        int kc1 = kc0 + nkc < c->nkt ? kc0 + nkc : c->nkt;
        int r0 = kc0 * BK, nr = (kc1 * BK < a->sk ? kc1 * BK : a->sk) - r0;
        size_t kr = (size_t)r0 * ldkv + (size_t)kvh * d;
        rows_in(Kc, c->kf, c->k16, kr, ldkv, nr, d / c->vw, c->vw, (size_t)nkc * BK * c->vw);
        rows_in(dKc, c->dk, NULL, kr, ldkv, nr, 1, d, 0);
        rows_in(dVc, c->dv, NULL, kr, ldkv, nr, 1, d, 0);
        for (int qt = 0; qt < c->nqt; qt++) {
            int q0 = qt * BQ, nq = a->sq - q0 < BQ ? a->sq - q0 : BQ, active = 0;
            for (int kt = kc0; kt < kc1 && !active; kt++)
                active = lc_attn_classify_sum(&a->mask, &c->qs[qt], &c->ks[kt]) !=
                         LC_BLOCK_SKIP;
            if (!active)
                continue;
            for (int h0 = kvh * c->g; h0 < (kvh + 1) * c->g; h0 += bg) {
                LC_ATTN_TIME_START();
                size_t qr = (size_t)q0 * ldq + (size_t)h0 * d;
                rows_in(dOc, c->dof, c->do16, qr, ldq, nq, bg, d, qtile);
                rows_in(Qc, c->qf, c->q16, qr, ldq, nq, bg, d, qtile);
                rows_in(dQc, c->dq, NULL, qr, ldq, nq, bg, d, qtile);
                LC_ATTN_TIME_POINT(bwd_copies);
                for (int kt = kc0; kt < kc1; kt++) {
                    lc_block_class cls =
                        lc_attn_classify_sum(&a->mask, &c->qs[qt], &c->ks[kt]);
                    if (cls == LC_BLOCK_SKIP)
                        continue;
                    int nk = a->sk - kt * BK < BK ? a->sk - kt * BK : BK;
                    size_t ko = (size_t)(kt - kc0) * BK * d;
                    for (int hh = 0; hh < bg; hh++) {
                        float *q = Qc + hh * qtile, *dout = dOc + hh * qtile;
                        float *s = S + hh * stile, *dp = dP + hh * stile;
                        bwd_tile(c, cls, h0 + hh, qt, kt, f32dot ? q : NULL,
                                 f32dot ? dout : NULL, d, s, dp, rowv);
                        LC_ATTN_TIME_POINT(bwd_recompute);
                        gemm_panels(c, nq, d, nk, dp, BK, Kc + (size_t)(kt - kc0) * BK * c->vw,
                                    (size_t)nkc * BK * c->vw, c->vw, dQc + hh * qtile, d, 1);
                        LC_ATTN_TIME_POINT(bwd_dq);
                    }
                    /* A partial Q tile's rows past nq hold stale values: per head. */
                    int nst = nq == BQ ? 1 : bg, kq = nq == BQ ? bg * BQ : nq;
                    for (int hh = 0; hh < nst; hh++) {
                        c->ops->gemm(nk, d, kq, S + hh * stile, 1, BK, dOc + hh * qtile, d,
                                     dVc + ko, d, 1);
                        c->ops->gemm(nk, d, kq, dP + hh * stile, 1, BK, Qc + hh * qtile, d,
                                     dKc + ko, d, 1);
                    }
                    LC_ATTN_TIME_POINT(bwd_dvdk);
                }
                rows_out(c->dq + qr, ldq, dQc, nq, bg, d, qtile);
                LC_ATTN_TIME_POINT(bwd_copies);
            }
        }
        rows_out(c->dk + kr, ldkv, dKc, nr, 1, d, 0);
        rows_out(c->dv + kr, ldkv, dVc, nr, 1, d, 0);
    }
}

int lc_attn_bwd_block(const lc_attn_desc *a, const void *q, const void *k, const void *v,
                      const void *dout, const float *lse, const float *delta, float *dq,
                      float *dk, float *dv)
{
    if (lc_attn_validate(a) != 0)
        return LC_ERR_ARG;
    if (a->sq == 0 || a->sk == 0)
        return 0;
    if (!q) return lc_attn_fail("lc_attn_bwd_block: q is NULL");
    if (!k) return lc_attn_fail("lc_attn_bwd_block: k is NULL");
    if (!v) return lc_attn_fail("lc_attn_bwd_block: v is NULL");
    if (!dout) return lc_attn_fail("lc_attn_bwd_block: dout is NULL");
    if (!lse) return lc_attn_fail("lc_attn_bwd_block: lse is NULL");
    if (!delta) return lc_attn_fail("lc_attn_bwd_block: delta is NULL");
    if (!dq) return lc_attn_fail("lc_attn_bwd_block: dq is NULL");
    if (!dk) return lc_attn_fail("lc_attn_bwd_block: dk is NULL");
    if (!dv) return lc_attn_fail("lc_attn_bwd_block: dv is NULL");
    call c;
    if (setup(&c, a) != 0)
        return LC_ERR_ARG;
    void *ktp, *vtp, *owned;
    carve w = {NULL, 0};
    carve_bwd(&c, &w, &ktp, &vtp);
    if (region(&c, w.off, "lc_attn_bwd_block", &w, &owned) != 0)
        return LC_ERR_ARG;
    carve_bwd(&c, &w, &ktp, &vtp);
    if (a->qkv_dtype == LC_DT_F32) {
        c.qf = q;
        c.kf = k;
        c.dof = dout;
    }
    size_t nq = (size_t)a->sq * a->hq * a->d, nkv = (size_t)a->sk * a->hkv * a->d;
    c.lse_in = lse;
    c.delta = delta;
    c.dq = dq;
    c.dk = dk;
    c.dv = dv;
    summarise(&c);
    int fused = use_fused(a->hkv, c.nth);
    if (a->qkv_dtype == LC_DT_BF16 && fused) {
        c.q16 = q;
        c.k16 = k;
        c.do16 = dout;
    } else if (a->qkv_dtype == LC_DT_BF16) {
        widen((float *)c.qf, q, nq);
        widen((float *)c.kf, k, nkv);
        widen((float *)c.dof, dout, nq);
    }
    if (c.bdot) {
        c.qb = q;
        c.dob = dout;
    }
    pack(&c, k, ktp);
    pack(&c, v, vtp);
    if (c.bdot) {
        c.ktb = ktp;
        c.vtb = vtp;
    } else {
        c.kt = ktp;
        c.vt = vtp;
    }
    if (fused)
        run(&c, a->hkv, bwd_fused_task, &c);
    else
        run(&c, a->hkv * c.nkt + a->hq * c.nqt, bwd_task, &c);
    free(owned);
    return 0;
}
