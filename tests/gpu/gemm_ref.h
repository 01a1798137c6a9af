/* The GEMM seam's reference, shared by its emulated test (tests/gpu/emu/test_model_emu.cc) and
 * its device test (tests/gpu/test_gpu_model.c): want[M, N] = (acc ? C + : ) op(A) op(B) in
 * double, with lcm_gemm's row-major operands and transposes (layers_gpu.h). */
#ifndef LONGCTX_TEST_GEMM_REF_H
#define LONGCTX_TEST_GEMM_REF_H
#include <stddef.h>

static inline void gemm_ref(int ta, int tb, int M, int N, int K, const float *a, int lda, const float *b, int ldb,
                            const float *c, int ldc, int acc, float *want)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = acc ? c[(size_t)i * ldc + j] : 0.0;
            for (int k = 0; k < K; k++)
                s += (double)a[ta ? (size_t)k * lda + i : (size_t)i * lda + k] * b[tb ? (size_t)j * ldb + k : (size_t)k * ldb + j];
            want[(size_t)i * N + j] = (float)s;
        }
}
#endif
