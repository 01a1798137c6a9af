/* One core's fp32 FMA peak in GFLOP/s for the vector width of an attention implementation
 * (AVX-512, AVX2, else scalar FMA); 0 when it cannot be measured on this CPU. */
#ifndef LONGCTX_BENCH_PEAK_H
#define LONGCTX_BENCH_PEAK_H
#include "longctx/attn.h"

double lc_fma_peak_gflops(lc_attn_impl im);

#endif
