/* One core's fp32 FMA peak, measured (the limit MFU and kernel efficiencies are judged by). */
#include "bench/peak.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "bench/bench_util.h"

#define PEAK_ITERS 10000000L

#if defined(__x86_64__) || defined(__i386__)
/* Twelve independent accumulator chains cover the FMA latency (4 cycles) times two pipes.
 * Written out by hand so that -O2 keeps every chain in a register. */
#define PEAK_BODY(T, SET1, FMA, ADD)                                                       \
    T a = SET1(0.999999f), b = SET1(1e-7f);                                                \
    T c0 = SET1(0.f), c1 = SET1(1.f), c2 = SET1(2.f), c3 = SET1(3.f), c4 = SET1(4.f);      \
    T c5 = SET1(5.f), c6 = SET1(6.f), c7 = SET1(7.f), c8 = SET1(8.f), c9 = SET1(9.f);      \
    T c10 = SET1(10.f), c11 = SET1(11.f);                                                  \
    double t0 = lc_cpu_time();                                                             \
    for (long it = 0; it < PEAK_ITERS; it++) {                                             \
        c0 = FMA(c0, a, b); c1 = FMA(c1, a, b); c2 = FMA(c2, a, b); c3 = FMA(c3, a, b);    \
        c4 = FMA(c4, a, b); c5 = FMA(c5, a, b); c6 = FMA(c6, a, b); c7 = FMA(c7, a, b);    \
        c8 = FMA(c8, a, b); c9 = FMA(c9, a, b); c10 = FMA(c10, a, b); c11 = FMA(c11, a, b); \
        __asm__ volatile("" ::: "memory");                                                 \
    }                                                                                      \
    double t = lc_cpu_time() - t0;                                                         \
    T s = ADD(ADD(ADD(c0, c1), ADD(c2, c3)), ADD(ADD(c4, c5), ADD(c6, c7)));               \
    s = ADD(s, ADD(ADD(c8, c9), ADD(c10, c11)));                                           \
    volatile T sink = s;                                                                   \
    (void)sink;

__attribute__((target("avx512f,fma"))) static double peak_avx512(void)
{
    PEAK_BODY(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps)
    return (double)PEAK_ITERS * 12 * 16 * 2 / t * 1e-9;
}

__attribute__((target("avx2,fma"))) static double peak_avx2(void)
{
    PEAK_BODY(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps)
    return (double)PEAK_ITERS * 12 * 8 * 2 / t * 1e-9;
}

__attribute__((target("fma"))) static double peak_scalar_fma(void)
{
    PEAK_BODY(__m128, _mm_set_ss, _mm_fmadd_ss, _mm_add_ss)
    return (double)PEAK_ITERS * 12 * 2 / t * 1e-9;
}
#endif

/* Best of three (~0.1 s each), timed in this thread's CPU time so that other processes
 * sharing the core do not lower it. */
double lc_fma_peak_gflops(lc_attn_impl im)
{
    double best = 0;
#if defined(__x86_64__) || defined(__i386__)
    for (int r = 0; r < 3; r++) {
        double p = im == LC_ATTN_AVX512 ? peak_avx512()
                   : im == LC_ATTN_AVX2 ? peak_avx2()
                   : __builtin_cpu_supports("fma") ? peak_scalar_fma() : 0.0;
        if (p > best)
            best = p;
    }
#else
    (void)im;
#endif
    return best;
}
