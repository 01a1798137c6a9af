/* Portable scalar tile ops: the reference implementation of lc_attn_ops, correct on any CPU. */
#include <math.h>

#include "attn/internal.h"

#define BK LC_ATTN_BK

static void gemm(int m, int n, int k, const float *A, ptrdiff_t ars, ptrdiff_t aks,
                 const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc, int acc)
{
    for (int i = 0; i < m; i++) {
        float *c = C + i * ldc;
        if (!acc)
            for (int j = 0; j < n; j++)
                c[j] = 0.0f;
        for (int p = 0; p < k; p++) {
            float x = A[i * ars + p * aks];
            const float *b = B + p * ldb;
            for (int j = 0; j < n; j++)
                c[j] += x * b[j];
        }
    }
}

static void softmax_fwd(int m, float *S, float c, float *mrow, float *lrow, float *O,
                        ptrdiff_t ldo, int d)
{
    for (int i = 0; i < m; i++) {
        float *s = S + i * BK;
        float mx = -INFINITY;
        for (int j = 0; j < BK; j++) {
            s[j] *= c;
            if (s[j] > mx)
                mx = s[j];
        }
        float mnew = mx > mrow[i] ? mx : mrow[i];
        if (mnew == -INFINITY) {
            for (int j = 0; j < BK; j++)
                s[j] = 0.0f;
            continue;
        }
        float sum = 0.0f;
        for (int j = 0; j < BK; j++) {
            s[j] = exp2f(s[j] - mnew);
            sum += s[j];
        }
        if (mnew > mrow[i]) {
            float alpha = exp2f(mrow[i] - mnew);
            float *o = O + i * ldo;
            for (int x = 0; x < d; x++)
                o[x] *= alpha;
            lrow[i] *= alpha;
            mrow[i] = mnew;
        }
        lrow[i] += sum;
    }
}

static void softmax_bwd(int m, float *S, float c, const float *lse2)
{
    for (int i = 0; i < m; i++) {
        float *s = S + i * BK;
        for (int j = 0; j < BK; j++)
            s[j] = lse2[i] == -INFINITY ? 0.0f : exp2f(s[j] * c - lse2[i]);
    }
}

static void dsoftmax(int m, const float *P, float *dP, const float *delta, float scale)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < BK; j++)
            dP[i * BK + j] = scale * P[i * BK + j] * (dP[i * BK + j] - delta[i]);
}

const lc_attn_ops lc_attn_ops_scalar = {
    .name = "scalar",
    .vblock = 16,
    .gemm = gemm,
    .softmax_fwd = softmax_fwd,
    .softmax_bwd = softmax_bwd,
    .dsoftmax = dsoftmax,
    .qk_bf16 = NULL,
};
