/* SIMD tile ops, written once over a small vector vocabulary and instantiated per ISA by
 * avx2.c and avx512.c (each compiled with its own -m flags, so only they use the ISA).
 *
 * The includer defines: V, VW, MR (rows per micro-kernel), NV (vectors per row), and
 * VLOAD VSTORE VZERO VSET1 VFMA VADD VSUB VMUL VMAX VMIN VREDMAX VREDSUM VROUND VPOW2I
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

/* 2^x for x <= 0 (and slightly above), relative error ~1e-7: 2^round(x) times a degree-7
 * polynomial for 2^f, f in [-1/2, 1/2]. Arguments below -127 (masked: -inf) give 0. */
AI V vexp2(V x)
{
    x = VMAX(VSET1(-127.0f), x); /* operand order keeps a NaN input NaN */
    x = VMIN(VSET1(127.0f), x);
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

static void softmax_fwd(int m, float *S, float c, float *mrow, float *lrow, float *O,
                        ptrdiff_t ldo, int d)
{
    V vc = VSET1(c);
    for (int i = 0; i < m; i++) {
        float *s = S + i * BK;
        V x[BK / VW];
        V mx = VSET1(-INFINITY);
        for (int j = 0; j < BK / VW; j++) {
            x[j] = VMUL(VLOAD(s + j * VW), vc);
            mx = VMAX(mx, x[j]);
        }
        float rmax = VREDMAX(mx);
        float mnew = rmax > mrow[i] ? rmax : mrow[i];
        if (mnew == -INFINITY) {
            for (int j = 0; j < BK / VW; j++)
                VSTORE(s + j * VW, VZERO);
            continue;
        }
        V vm = VSET1(mnew), sum = VZERO;
        for (int j = 0; j < BK / VW; j++) {
            V p = vexp2(VSUB(x[j], vm));
            VSTORE(s + j * VW, p);
            sum = VADD(sum, p);
        }
        if (mnew > mrow[i]) {
            float alpha = exp2f(mrow[i] - mnew);
            if (lrow[i] > 0.0f) {
                V va = VSET1(alpha);
                float *o = O + i * ldo;
                for (int j = 0; j < d; j += VW)
                    VSTORE(o + j, VMUL(VLOAD(o + j), va));
            }
            lrow[i] *= alpha;
            mrow[i] = mnew;
        }
        lrow[i] += VREDSUM(sum);
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
        for (int j = 0; j < BK; j += VW)
            VSTORE(s + j, vexp2(VFMA(VLOAD(s + j), vc, nl)));
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
