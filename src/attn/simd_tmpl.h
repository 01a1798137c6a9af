/* SIMD tile ops, written once over a small vector vocabulary and instantiated per ISA by
 * avx2.c and avx512.c (each compiled with its own -m flags, so only they use the ISA).
 *
 * The includer defines: V, VW, MR (rows per micro-kernel), NV (vectors per row), and
 * VLOAD VSTORE VZERO VSET1 VFMA VADD VSUB VMUL VMAX VMIN VREDMAX VREDSUM VROUND VPOW2I VFIRST
 * (2^n for an integral-valued vector n in [-127, 127]; -127 gives exactly 0).
 */
#include <math.h>

#include "attn/internal.h"

#define BK LC_ATTN_BK
#define AI static inline __attribute__((always_inline))

/* MR x NV register block of C (+)= A * B; mr and nv are constants after inlining, so the
 * accumulators live in registers and the loops unroll. */
AI void ukr(const int mr, const int nv, int k, const float *A, ptrdiff_t ars, ptrdiff_t aks,
            const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc, int acc)
{
    V c[MR][NV];
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++)
            c[r][v] = acc ? VLOAD(C + r * ldc + v * VW) : VZERO;
    for (int p = 0; p < k; p++) {
        V b[NV];
        for (int v = 0; v < nv; v++)
            b[v] = VLOAD(B + p * ldb + v * VW);
        const float *ap = A + p * aks;
        for (int r = 0; r < mr; r++) {
            V x = VSET1(ap[r * ars]);
            for (int v = 0; v < nv; v++)
                c[r][v] = VFMA(x, b[v], c[r][v]);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++)
            VSTORE(C + r * ldc + v * VW, c[r][v]);
}

#define UK(R, N)                                                                           \
    case (R) * 8 + (N): ukr(R, N, k, A + i0 * ars, ars, aks, B + j0, ldb, C + i0 * ldc + j0, \
                            ldc, acc);                                                     \
        break;
#if NV == 4
#define UKROW(R) UK(R, 1) UK(R, 2) UK(R, 3) UK(R, 4)
#else
#define UKROW(R) UK(R, 1) UK(R, 2)
#endif

static void gemm(int m, int n, int k, const float *A, ptrdiff_t ars, ptrdiff_t aks,
                 const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc, int acc)
{
    for (int j0 = 0; j0 < n; j0 += NV * VW) {
        int nv = (n - j0) / VW < NV ? (n - j0) / VW : NV;
        for (int i0 = 0; i0 < m; i0 += MR) {
            int mr = m - i0 < MR ? m - i0 : MR;
            switch (mr * 8 + nv) {
                UKROW(1)
                UKROW(2)
                UKROW(3)
                UKROW(4)
                UKROW(5)
                UKROW(6)
            default: break;
            }
        }
    }
}

/* 2^x for x <= 0 (and slightly above; callers bound x by 127), relative error ~1e-7 (about
 * one ulp): 2^round(x) times a degree-7 polynomial for 2^f, f in [-1/2, 1/2]. The two extra
 * FMAs over a degree-5 fit cost under 1% of a tile (2*D FMAs per score) and keep layouts'
 * results (one PE vs CP, TP) within the fp32 tolerance after optimizer steps. Arguments
 * below -127 (masked: -inf) give exactly 0. */
AI V vexp2(V x)
{
    x = VMAX(VSET1(-127.0f), x); /* operand order keeps a NaN input NaN */
    V n = VROUND(x);
    V f = VSUB(x, n);
    V p = VSET1(1.525273380405984e-05f);
    p = VFMA(p, f, VSET1(1.5403530393381608e-04f));
    p = VFMA(p, f, VSET1(1.3333558146428443e-03f));
    p = VFMA(p, f, VSET1(9.618129107628477e-03f));
    p = VFMA(p, f, VSET1(5.550410866482158e-02f));
    p = VFMA(p, f, VSET1(2.402265069591007e-01f));
    p = VFMA(p, f, VSET1(6.931471805599453e-01f));
    p = VFMA(p, f, VSET1(1.0f));
    return VMUL(p, VPOW2I(n));
}

#define NB (BK / VW) /* vectors per score row */

/* Max and sum over a row's NB vectors as trees (depth log2 NB, not NB). */
AI V tree_max(V *x)
{
    V t[NB];
    for (int j = 0; j < NB; j++)
        t[j] = x[j];
    for (int w = NB / 2; w >= 1; w /= 2)
        for (int j = 0; j < w; j++)
            t[j] = VMAX(t[j], t[j + w]);
    return t[0];
}

AI V tree_sum(V *x)
{
    for (int w = NB / 2; w >= 1; w /= 2)
        for (int j = 0; j < w; j++)
            x[j] = VADD(x[j], x[j + w]);
    return x[0];
}

/* Two passes over the tile: the row maxima first (rows independent, so their reduction
 * latencies overlap), then the exponentials and sums; one pass per row chained a row's
 * max reduction, exponentials and sum reduction into one long dependency.
 * The scale c > 0 (always, unless a caller asks for a negative softmax scale) commutes
 * with the max, so the max is taken on the raw scores and c folds into the exponent's FMA:
 * x = s * c - m. */
static void softmax_fwd(int m, float *S, float c, float *mrow, float *lrow, float *O,
                        ptrdiff_t ldo, int d)
{
    float mnew[LC_ATTN_BQ];
    V vc = VSET1(c);
    if (!(c > 0.0f)) { /* scale first, then the same as c = 1 */
        for (int i = 0; i < m * BK; i += VW)
            VSTORE(S + i, VMUL(VLOAD(S + i), vc));
        c = 1.0f;
        vc = VSET1(1.0f);
    }
    for (int i = 0; i < m; i++) {
        V x[NB];
        for (int j = 0; j < NB; j++)
            x[j] = VLOAD(S + i * BK + j * VW);
        float r = VREDMAX(tree_max(x)) * c;
        mnew[i] = r > mrow[i] ? r : mrow[i];
    }
    /* The exponentials of the whole tile first, then each row's sum from the stored values:
     * a row's sum reduction no longer waits on its own exponentials, so the exponentials of
     * consecutive rows overlap instead of running one row's dependent chain (exp2's range
     * reduction, seven FMAs, scaling, then the sum tree) at a time. */
    for (int i = 0; i < m; i++) {
        float *s = S + i * BK;
        if (mnew[i] == -INFINITY) {
            for (int j = 0; j < NB; j++)
                VSTORE(s + j * VW, VZERO);
            continue;
        }
        V nm = VSET1(-mnew[i]);
        for (int j = 0; j < NB; j++)
            VSTORE(s + j * VW, vexp2(VFMA(VLOAD(s + j * VW), vc, nm)));
    }
    for (int i = 0; i < m; i++) {
        float *s = S + i * BK;
        if (mnew[i] == -INFINITY)
            continue;
        V x[NB];
        for (int j = 0; j < NB; j++)
            x[j] = VLOAD(s + j * VW);
        float sum = VREDSUM(tree_sum(x));
        if (mnew[i] > mrow[i]) {
            /* On vectors: no libm call (which would spill every vector register). */
            V va = vexp2(VSET1(mrow[i] - mnew[i]));
            if (lrow[i] > 0.0f) {
                float *o = O + i * ldo;
                for (int j = 0; j < d; j += VW)
                    VSTORE(o + j, VMUL(VLOAD(o + j), va));
            }
            lrow[i] *= VFIRST(va);
            mrow[i] = mnew[i];
        }
        lrow[i] += sum;
    }
}

static void softmax_bwd(int m, float *S, float c, const float *lse2)
{
    V vc = VSET1(c);
    for (int i = 0; i < m; i++) {
        float *s = S + i * BK;
        if (lse2[i] == -INFINITY) {
            for (int j = 0; j < BK; j += VW)
                VSTORE(s + j, VZERO);
            continue;
        }
        V nl = VSET1(-lse2[i]);
        for (int j = 0; j < BK; j += VW) /* x <= 0 up to rounding unless lse2 is wrong */
            VSTORE(s + j, vexp2(VMIN(VSET1(127.0f), VFMA(VLOAD(s + j), vc, nl))));
    }
}

static void dsoftmax(int m, const float *P, float *dP, const float *delta, float scale)
{
    V vs = VSET1(scale);
    for (int i = 0; i < m; i++) {
        V dl = VSET1(delta[i]);
        for (int j = 0; j < BK; j += VW) {
            float *g = dP + i * BK + j;
            VSTORE(g, VMUL(VMUL(VLOAD(P + i * BK + j), vs), VSUB(VLOAD(g), dl)));
        }
    }
}
