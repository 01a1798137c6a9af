/* AVX-512 tile ops (the file is compiled with -mavx512f/bw/vl -mfma; only the bf16 dot
 * product carries avx512bf16, per function, so nothing else can pick up those instructions).
 * Used only when cpuid reports the features. */
#include <immintrin.h>
#include <string.h>

#define V __m512
#define VW 16
#define MR 6
#define NV 4
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps(p, v)
#define VZERO _mm512_setzero_ps()
#define VSET1(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VSUB(a, b) _mm512_sub_ps(a, b)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VMAX(a, b) _mm512_max_ps(a, b)
#define VMIN(a, b) _mm512_min_ps(a, b)
#define VREDMAX(v) _mm512_reduce_max_ps(v)
#define VFIRST(v) _mm512_cvtss_f32(v)
#define VREDSUM(v) _mm512_reduce_add_ps(v)
#define VROUND(v) _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VPOW2I(n)                                                                          \
    _mm512_castsi512_ps(_mm512_slli_epi32(                                                 \
        _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23))

#include "attn/simd_tmpl.h"

/* S[m x BK] = Q . K^T with bf16 inputs: vdpbf16ps multiplies pairs of bf16 along d and
 * accumulates in fp32, so K is packed as [d/2][BK][2] and a pair of Q values is broadcast
 * as one 32-bit lane. Products of two bf16 are exact in fp32. */
#define BF16_TARGET __attribute__((target("avx512bf16")))
AI BF16_TARGET void ukr_bf16(const int mr, int d, const uint16_t *Q, ptrdiff_t ldq,
                             const uint16_t *Kp, float *S)
{
    __m512 c[MR][4];
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < 4; v++)
            c[r][v] = _mm512_setzero_ps();
    for (int p = 0; p < d; p += 2) {
        __m512bh b[4];
        for (int v = 0; v < 4; v++)
            b[v] = (__m512bh)_mm512_loadu_si512(Kp + ((size_t)(p / 2) * BK + v * 16) * 2);
        for (int r = 0; r < mr; r++) {
            uint32_t pair;
            memcpy(&pair, Q + r * ldq + p, 4);
            __m512bh x = (__m512bh)_mm512_set1_epi32((int)pair);
            for (int v = 0; v < 4; v++)
                c[r][v] = _mm512_dpbf16_ps(c[r][v], x, b[v]);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < 4; v++)
            _mm512_storeu_ps(S + r * BK + v * 16, c[r][v]);
}

BF16_TARGET static void qk_bf16(int m, int d, const uint16_t *Q, ptrdiff_t ldq,
                                const uint16_t *Kp, float *S)
{
    for (int i0 = 0; i0 < m; i0 += MR) {
        const uint16_t *q = Q + i0 * ldq;
        float *s = S + i0 * BK;
        switch (m - i0 < MR ? m - i0 : MR) {
        case 1: ukr_bf16(1, d, q, ldq, Kp, s); break;
        case 2: ukr_bf16(2, d, q, ldq, Kp, s); break;
        case 3: ukr_bf16(3, d, q, ldq, Kp, s); break;
        case 4: ukr_bf16(4, d, q, ldq, Kp, s); break;
        case 5: ukr_bf16(5, d, q, ldq, Kp, s); break;
        default: ukr_bf16(6, d, q, ldq, Kp, s); break;
        }
    }
}

const lc_attn_ops lc_attn_ops_avx512 = {
    .name = "avx512",
    .vblock = NV * VW,
    .gemm = gemm,
    .softmax_fwd = softmax_fwd,
    .softmax_bwd = softmax_bwd,
    .dsoftmax = dsoftmax,
    .qk_bf16 = NULL,
};

const lc_attn_ops lc_attn_ops_avx512bf16 = {
    .name = "avx512bf16",
    .vblock = NV * VW,
    .gemm = gemm,
    .softmax_fwd = softmax_fwd,
    .softmax_bwd = softmax_bwd,
    .dsoftmax = dsoftmax,
    .qk_bf16 = qk_bf16,
};
