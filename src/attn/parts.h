/* Named timing points in the tile loops of driver.c, for bench/attn-parts (where the
 * forward's and the fused backward's time goes). Only with LONGCTX_ATTN_PARTS defined
 * (cmake -DLONGCTX_ATTN_PARTS=ON, or -DLONGCTX_ATTN_PARTS on the compiler's line, as
 * bench/attn-parts/run.sh does): LC_ATTN_TIME_START() starts a cycle counter (rdtsc) in the
 * enclosing block and each LC_ATTN_TIME_POINT(name) adds the cycles since the previous point
 * to the part `name`; the sums go to stderr at exit. Otherwise both expand to nothing and
 * the library's code is what it is without them.
 *
 * The sums are shared, not per thread: time one thread. Included by driver.c alone (the sums
 * and their printer are static). */
#ifndef LONGCTX_ATTN_PARTS_H
#define LONGCTX_ATTN_PARTS_H

#ifdef LONGCTX_ATTN_PARTS
#include <stdio.h>
#include <x86intrin.h>

/* Backward: the Q K^T and dO V^T recomputation with the softmax and its gradient
 * (bwd_tile), the dQ matmul, the dV and dK matmuls, the Q-side copies. Forward: the rest
 * of the loop (prefetch, classification), the score matmul, the mask and online softmax,
 * the P.V matmul. */
enum {
    LC_ATTN_PART_bwd_recompute,
    LC_ATTN_PART_bwd_dq,
    LC_ATTN_PART_bwd_dvdk,
    LC_ATTN_PART_bwd_copies,
    LC_ATTN_PART_fwd_other,
    LC_ATTN_PART_fwd_qk,
    LC_ATTN_PART_fwd_softmax,
    LC_ATTN_PART_fwd_pv,
    LC_ATTN_PARTS
};
static unsigned long long lc_attn_parts_[LC_ATTN_PARTS];

/* The two lines bench/attn-parts/run.sh reads. */
__attribute__((destructor)) static void lc_attn_parts_print(void)
{
    const unsigned long long *p = lc_attn_parts_;
    fprintf(stderr, "parts recompute %.0f dq %.0f dvdk %.0f copies %.0f\n",
            (double)p[LC_ATTN_PART_bwd_recompute], (double)p[LC_ATTN_PART_bwd_dq],
            (double)p[LC_ATTN_PART_bwd_dvdk], (double)p[LC_ATTN_PART_bwd_copies]);
    fprintf(stderr, "fparts pv %.0f qk %.0f softmax %.0f other %.0f\n",
            (double)p[LC_ATTN_PART_fwd_pv], (double)p[LC_ATTN_PART_fwd_qk],
            (double)p[LC_ATTN_PART_fwd_softmax], (double)p[LC_ATTN_PART_fwd_other]);
}

#define LC_ATTN_TIME_START() unsigned long long lc_attn_part_t0_ = __rdtsc()
#define LC_ATTN_TIME_POINT(name)                                                               \
    do {                                                                                       \
        unsigned long long lc_attn_part_t1_ = __rdtsc();                                       \
        lc_attn_parts_[LC_ATTN_PART_##name] += lc_attn_part_t1_ - lc_attn_part_t0_;            \
        lc_attn_part_t0_ = lc_attn_part_t1_;                                                   \
    } while (0)
#else
#define LC_ATTN_TIME_START() ((void)0)
#define LC_ATTN_TIME_POINT(name) ((void)0)
#endif

#endif
