/* The attention core both devices compile: the mask rule, tile summaries and their
 * classification, the log-sum-exp merge, the dK/dV add. Plain C, static inline, no runtime: gcc builds it
 * into the CPU driver (src/attn/common.c, driver.c), nvcc into the CUDA kernels
 * (src/attn/cuda) and the host C++ compiler into the emulated kernels (tests/gpu/emu), so a
 * mask or a skip/full/partial verdict cannot differ between them (tests/gpu/test_gpu_logic.c
 * checks that both sides classify through these functions).
 *
 * The dtype (lc_dtype, with LC_DT_F16 for the GPU), mask flags (LC_MASK_*) and block classes
 * (LC_BLOCK_*) are attn.h's, one enum each for both devices. */
#ifndef LONGCTX_ATTN_CORE_H
#define LONGCTX_ATTN_CORE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "longctx/attn.h"

/* Host and device: nvcc needs both qualifiers on a function the kernels call. */
#ifdef __CUDACC__
#define LC_HD __host__ __device__ __forceinline__
#else
#define LC_HD static inline
#endif

/* The element rule: padding (negative position) never attends or is attended. The
 * difference is taken in 64 bits because positions span the whole int32 range. */
LC_HD int lc_mask_allowed(unsigned kind, int64_t window, int32_t qp, int32_t kp, int32_t qd, int32_t kd)
{
    if (qp < 0 || kp < 0) return 0;
    if ((kind & LC_MASK_CAUSAL) && kp > qp) return 0;
    if ((kind & LC_MASK_WINDOW) && (int64_t)qp - (int64_t)kp >= window) return 0;
    if ((kind & LC_MASK_DOC) && qd != kd) return 0;
    return 1;
}

/* Summary of one tile of rows: ranges over the non-padding rows only, and how many of the
 * tile's slots hold a real row, so that FULL can require a tile without padding or tail.
 * 32 bytes: the CUDA kernels read one with two aligned 16-byte loads. */
typedef struct {
    int32_t pmin, pmax; /* positions of valid rows (pmin > pmax when none) */
    int32_t dmin, dmax; /* document ids of valid rows */
    int32_t nvalid;     /* valid rows */
    int32_t cap;        /* slots in the tile (rows summarised, or the tile size) */
    int32_t pad0, pad1;
} lc_tile_sum;

LC_HD void lc_tile_sum_init(lc_tile_sum *s, int32_t cap)
{
    s->pmin = INT32_MAX;
    s->pmax = INT32_MIN;
    s->dmin = INT32_MAX;
    s->dmax = INT32_MIN;
    s->nvalid = 0;
    s->cap = cap;
    s->pad0 = s->pad1 = 0;
}

LC_HD void lc_tile_sum_add(lc_tile_sum *s, int32_t pos, int32_t doc)
{
    if (pos < 0) return;
    s->pmin = pos < s->pmin ? pos : s->pmin;
    s->pmax = pos > s->pmax ? pos : s->pmax;
    s->dmin = doc < s->dmin ? doc : s->dmin;
    s->dmax = doc > s->dmax ? doc : s->dmax;
    s->nvalid++;
}

LC_HD void lc_tile_sum_merge(lc_tile_sum *s, const lc_tile_sum *o)
{
    s->pmin = o->pmin < s->pmin ? o->pmin : s->pmin;
    s->pmax = o->pmax > s->pmax ? o->pmax : s->pmax;
    s->dmin = o->dmin < s->dmin ? o->dmin : s->dmin;
    s->dmax = o->dmax > s->dmax ? o->dmax : s->dmax;
    s->nvalid += o->nvalid;
}

/* LC_BLOCK_SKIP only when no (q, k) pair of the tiles is allowed, LC_BLOCK_FULL only when
 * every slot pair is a real, allowed pair; anything else is LC_BLOCK_PARTIAL and masked per
 * element. Document ranges are read only under LC_MASK_DOC. */
LC_HD int lc_tile_classify(unsigned kind, int64_t window, const lc_tile_sum *q, const lc_tile_sum *k)
{
    if (q->nvalid == 0 || k->nvalid == 0) return LC_BLOCK_SKIP;
    int full = q->nvalid == q->cap && k->nvalid == k->cap;
    if (kind & LC_MASK_CAUSAL) {
        if (k->pmin > q->pmax) return LC_BLOCK_SKIP;
        if (k->pmax > q->pmin) full = 0;
    }
    if (kind & LC_MASK_WINDOW) {
        /* the closest pair has q - k = qmin - kmax; the farthest qmax - kmin */
        if ((int64_t)q->pmin - (int64_t)k->pmax >= window) return LC_BLOCK_SKIP;
        if ((int64_t)q->pmax - (int64_t)k->pmin >= window) full = 0;
    }
    if (kind & LC_MASK_DOC) {
        if (q->dmax < k->dmin || k->dmax < q->dmin) return LC_BLOCK_SKIP;
        if (!(q->dmin == q->dmax && k->dmin == k->dmax && q->dmin == k->dmin)) full = 0;
    }
    return full ? LC_BLOCK_FULL : LC_BLOCK_PARTIAL;
}

/* The one rule for accumulating fp32 gradient partials (dK/dV travelling a ring, the CUDA
 * ring's add kernel alike): the arriving partial plus the one held. cp/core.h fixes the
 * order of the chain. */
LC_HD float lc_dkv_add(float in, float acc) { return in + acc; }

/* Numerically safe merge of two normalised partial softmax states (natural-log lse). */
LC_HD float lc_lse_merge(float a, float b)
{
    if (a == -__builtin_inff()) return b;
    if (b == -__builtin_inff()) return a;
    float m = a > b ? a : b;
    float n = a > b ? b : a;
    return m + log1pf(expf(n - m));
}

#endif
