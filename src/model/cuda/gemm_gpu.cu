/* The model's GEMM seam on the GPU: row-major C[M,N] (= or +=) op(A)[M,K] op(B)[K,N] with fp32
 * or bf16 operands and fp32 accumulation and output, through cuBLASLt (layers_gpu.h). One
 * plan per shape (descriptors, layouts and the heuristic's algorithm), made on first use and
 * kept, so a steady-state step allocates nothing; one workspace sized at creation. In the
 * emulated build (LCG_EMU) the same call is a plain CPU loop with the same semantics, so the
 * GPU model's code runs under the emulator with its GEMMs on the host. */
#ifndef LCG_EMU
#include <cublasLt.h>
#include <cuda_runtime.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/cuda/layers_gpu.h"

#define LCM_GEMM_PLANS 64

typedef struct {
    int ta, tb, M, N, K, lda, ldb, ldc, bf16;
#ifndef LCG_EMU
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
#endif
} plan_t;

struct lcm_blas {
    plan_t plans[LCM_GEMM_PLANS];
    int n_plans;
    size_t ws_bytes;
    void *ws;
#ifndef LCG_EMU
    cublasLtHandle_t lt;
#endif
    char err[256];
};

#ifdef LCG_EMU
static float ld_elem(const void *p, size_t i, int bf16)
{
    if (!bf16) return ((const float *)p)[i];
    uint32_t u = (uint32_t)((const uint16_t *)p)[i] << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

extern "C" lcm_blas *lcm_blas_create(size_t ws_bytes)
{
    lcm_blas *g = (lcm_blas *)calloc(1, sizeof *g);
    if (g) g->ws_bytes = ws_bytes;
    return g;
}
extern "C" void lcm_blas_destroy(lcm_blas *g) { free(g); }
extern "C" const char *lcm_blas_error(const lcm_blas *g) { return g ? g->err : "no GEMM handle"; }
extern "C" int lcm_gemm(lcm_blas *g, int ta, int tb, int M, int N, int K, const void *A, int lda, const void *B,
                        int ldb, float *C, int ldc, int acc, int bf16, void *stream)
{
    (void)g, (void)stream;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = 0.0f;
            for (int k = 0; k < K; k++)
                s += ld_elem(A, ta ? (size_t)k * lda + i : (size_t)i * lda + k, bf16) *
                     ld_elem(B, tb ? (size_t)j * ldb + k : (size_t)k * ldb + j, bf16);
            C[(size_t)i * ldc + j] = acc ? C[(size_t)i * ldc + j] + s : s;
        }
    return 0;
}
#else
static int lt_fail(lcm_blas *g, const char *what, int st)
{
    snprintf(g->err, sizeof g->err, "cuBLASLt: %s failed (status %d)", what, st);
    return st ? st : -1;
}

extern "C" lcm_blas *lcm_blas_create(size_t ws_bytes)
{
    lcm_blas *g = (lcm_blas *)calloc(1, sizeof *g);
    if (!g) return NULL;
    g->ws_bytes = ws_bytes;
    if (cublasLtCreate(&g->lt) != CUBLAS_STATUS_SUCCESS || (ws_bytes && cudaMalloc(&g->ws, ws_bytes) != cudaSuccess)) {
        if (g->lt) cublasLtDestroy(g->lt);
        free(g);
        return NULL;
    }
    return g;
}

extern "C" void lcm_blas_destroy(lcm_blas *g)
{
    if (!g) return;
    for (int i = 0; i < g->n_plans; i++) {
        plan_t *p = &g->plans[i];
        cublasLtMatrixLayoutDestroy(p->la), cublasLtMatrixLayoutDestroy(p->lb), cublasLtMatrixLayoutDestroy(p->lc);
        cublasLtMatmulDescDestroy(p->desc);
    }
    if (g->ws) cudaFree(g->ws);
    cublasLtDestroy(g->lt);
    free(g);
}

extern "C" const char *lcm_blas_error(const lcm_blas *g) { return g ? g->err : "no GEMM handle"; }

/* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLASLt's A is our B and
 * its B our A; a row-major [r, c] matrix with leading dimension ld is a column-major [c, r]
 * one with the same ld. */
static int make_plan(lcm_blas *g, plan_t *p)
{
    cudaDataType_t in = p->bf16 ? CUDA_R_16BF : CUDA_R_32F;
    cublasOperation_t opa = p->tb ? CUBLAS_OP_T : CUBLAS_OP_N, opb = p->ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    int st;
    if ((st = cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F))) return lt_fail(g, "MatmulDescCreate", st);
    cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa);
    cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb);
    /* stored shapes, column-major: B is [N, K] (tb: [K, N]), A is [K, M] (ta: [M, K]), C [N, M] */
    if ((st = cublasLtMatrixLayoutCreate(&p->la, in, p->tb ? p->K : p->N, p->tb ? p->N : p->K, p->ldb)) ||
        (st = cublasLtMatrixLayoutCreate(&p->lb, in, p->ta ? p->M : p->K, p->ta ? p->K : p->M, p->lda)) ||
        (st = cublasLtMatrixLayoutCreate(&p->lc, CUDA_R_32F, p->N, p->M, p->ldc)))
        return lt_fail(g, "MatrixLayoutCreate", st);
    cublasLtMatmulPreference_t pref;
    if ((st = cublasLtMatmulPreferenceCreate(&pref))) return lt_fail(g, "MatmulPreferenceCreate", st);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &g->ws_bytes,
                                         sizeof g->ws_bytes);
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    st = cublasLtMatmulAlgoGetHeuristic(g->lt, p->desc, p->la, p->lb, p->lc, p->lc, pref, 1, &res, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st || !found) return lt_fail(g, "AlgoGetHeuristic (no algorithm for this shape)", st);
    p->algo = res.algo;
    return 0;
}

extern "C" int lcm_gemm(lcm_blas *g, int ta, int tb, int M, int N, int K, const void *A, int lda, const void *B,
                        int ldb, float *C, int ldc, int acc, int bf16, void *stream)
{
    if (!g) return -1;
    plan_t *p = NULL;
    for (int i = 0; i < g->n_plans && !p; i++) {
        plan_t *q = &g->plans[i];
        if (q->ta == ta && q->tb == tb && q->M == M && q->N == N && q->K == K && q->lda == lda && q->ldb == ldb &&
            q->ldc == ldc && q->bf16 == bf16)
            p = q;
    }
    if (!p) {
        if (g->n_plans == LCM_GEMM_PLANS) {
            snprintf(g->err, sizeof g->err, "more than %d GEMM shapes", LCM_GEMM_PLANS);
            return -1;
        }
        p = &g->plans[g->n_plans];
        memset(p, 0, sizeof *p);
        p->ta = ta, p->tb = tb, p->M = M, p->N = N, p->K = K, p->lda = lda, p->ldb = ldb, p->ldc = ldc, p->bf16 = bf16;
        int rc = make_plan(g, p);
        if (rc) return rc;
        g->n_plans++;
    }
    const float one = 1.0f, beta = acc ? 1.0f : 0.0f;
    int st = cublasLtMatmul(g->lt, p->desc, &one, B, p->la, A, p->lb, &beta, C, p->lc, C, p->lc, &p->algo, g->ws,
                            g->ws_bytes, (cudaStream_t)stream);
    return st ? lt_fail(g, "Matmul", st) : 0;
}
#endif
