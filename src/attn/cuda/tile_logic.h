/* Mask and tile-classification logic shared by the CUDA kernels and host code.
 *
 * Everything here is a pure function of positions and mask parameters, written once so the
 * CPU tests (tests/gpu/test_tile_logic.c) check the very code the kernels run.
 */
#ifndef LONGCTX_GPU_TILE_LOGIC_H
#define LONGCTX_GPU_TILE_LOGIC_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define LC_HD __host__ __device__ __forceinline__
#else
#define LC_HD static inline
#endif

/* Same values as attn.h (LC_MASK_*); repeated so device code needs no host header. */
#define LC_TL_CAUSAL 1u
#define LC_TL_WINDOW 2u
#define LC_TL_DOC 4u

enum { LC_TL_SKIP = 0, LC_TL_FULL = 1, LC_TL_PARTIAL = 2 };

/* Element rule of attn.h: padding (negative position) never attends or is attended. The
 * difference is taken in 64 bits because positions span the whole int32 range. */
LC_HD int lc_tl_allowed(unsigned kind, int64_t window, int32_t qp, int32_t kp, int32_t qd,
                        int32_t kd) {
    if (qp < 0 || kp < 0) return 0;
    if ((kind & LC_TL_CAUSAL) && kp > qp) return 0;
    if ((kind & LC_TL_WINDOW) && (int64_t)qp - (int64_t)kp >= window) return 0;
    if ((kind & LC_TL_DOC) && qd != kd) return 0;
    return 1;
}

/* Summary of one tile of rows: ranges over the non-padding rows only, and how many of the
 * tile's slots hold a real row, so that "full" can require a tile without padding or tail. */
typedef struct {
    int32_t pmin, pmax; /* positions of valid rows (pmin > pmax when none) */
    int32_t dmin, dmax; /* document ids of valid rows */
    int32_t nvalid;     /* valid rows */
    int32_t cap;        /* slots in the tile (the tile size) */
    int32_t pad0, pad1; /* keeps the struct 32 bytes: two aligned 16-byte loads */
} lc_tile_sum;

LC_HD void lc_tl_sum_init(lc_tile_sum *s, int32_t cap) {
    s->pmin = INT32_MAX;
    s->pmax = INT32_MIN;
    s->dmin = INT32_MAX;
    s->dmax = INT32_MIN;
    s->nvalid = 0;
    s->cap = cap;
    s->pad0 = s->pad1 = 0;
}

LC_HD void lc_tl_sum_add(lc_tile_sum *s, int32_t pos, int32_t doc) {
    if (pos < 0) return;
    s->pmin = pos < s->pmin ? pos : s->pmin;
    s->pmax = pos > s->pmax ? pos : s->pmax;
    s->dmin = doc < s->dmin ? doc : s->dmin;
    s->dmax = doc > s->dmax ? doc : s->dmax;
    s->nvalid++;
}

LC_HD void lc_tl_sum_merge(lc_tile_sum *s, const lc_tile_sum *o) {
    s->pmin = o->pmin < s->pmin ? o->pmin : s->pmin;
    s->pmax = o->pmax > s->pmax ? o->pmax : s->pmax;
    s->dmin = o->dmin < s->dmin ? o->dmin : s->dmin;
    s->dmax = o->dmax > s->dmax ? o->dmax : s->dmax;
    s->nvalid += o->nvalid;
}

/* Conservative: SKIP only when no (q, k) pair of the tiles is allowed, FULL only when every
 * slot pair is a real, allowed pair; anything else is PARTIAL and masked per element. */
LC_HD int lc_tl_classify(unsigned kind, int64_t window, const lc_tile_sum *q,
                         const lc_tile_sum *k) {
    if (q->nvalid == 0 || k->nvalid == 0) return LC_TL_SKIP;
    int full = q->nvalid == q->cap && k->nvalid == k->cap;
    if (kind & LC_TL_CAUSAL) {
        if (k->pmin > q->pmax) return LC_TL_SKIP;
        if (!(k->pmax <= q->pmin)) full = 0;
    }
    if (kind & LC_TL_WINDOW) {
        /* the closest pair has q - k = qmin - kmax; the farthest qmax - kmin */
        if ((int64_t)q->pmin - (int64_t)k->pmax >= window) return LC_TL_SKIP;
        if (!((int64_t)q->pmax - (int64_t)k->pmin < window)) full = 0;
    }
    if (kind & LC_TL_DOC) {
        if (q->dmax < k->dmin || k->dmax < q->dmin) return LC_TL_SKIP;
        if (!(q->dmin == q->dmax && k->dmin == k->dmax && q->dmin == k->dmin)) full = 0;
    }
    return full ? LC_TL_FULL : LC_TL_PARTIAL;
}

/* Numerically safe merge of two normalised partial softmax states (natural-log lse). */
LC_HD float lc_tl_lse_merge(float a, float b) {
    if (a == -__builtin_inff()) return b;
    if (b == -__builtin_inff()) return a;
    float m = a > b ? a : b;
    float n = a > b ? b : a;
    return m + log1pf(expf(n - m));
}

#endif
