/* AVX2 + FMA tile ops (compiled with -mavx2 -mfma). */
#include <immintrin.h>

#define V __m256
#define VW 8
#define MR 6
#define NV 2

static inline float hmax8(__m256 v)
{
    __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    x = _mm_max_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

static inline float hsum8(__m256 v)
{
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps(p, v)
#define VZERO _mm256_setzero_ps()
#define VSET1(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VADD(a, b) _mm256_add_ps(a, b)
#define VSUB(a, b) _mm256_sub_ps(a, b)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VMAX(a, b) _mm256_max_ps(a, b)
#define VMIN(a, b) _mm256_min_ps(a, b)
#define VREDMAX(v) hmax8(v)
#define VFIRST(v) _mm256_cvtss_f32(v)
#define VREDSUM(v) hsum8(v)
#define VROUND(v) _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VPOW2I(n)                                                                          \
    _mm256_castsi256_ps(_mm256_slli_epi32(                                                 \
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23))

#include "attn/simd_tmpl.h"

const lc_attn_ops lc_attn_ops_avx2 = {
    .name = "avx2",
    .vblock = NV * VW,
    .gemm = gemm,
    .softmax_fwd = softmax_fwd,
    .softmax_bwd = softmax_bwd,
    .dsoftmax = dsoftmax,
    .qk_bf16 = NULL,
};
