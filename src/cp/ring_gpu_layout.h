/* Sharding layouts of the GPU ring: the CPU plan's own map (cp/layout_map.h), so the GPU
 * ring shards any S (padding rows get position -1, which every kernel treats as padding) and
 * offers contiguous, zigzag and striped exactly as lc_cp does. Layout numbers are
 * lc_gpu_layout's = lc_cp_layout's. */
#ifndef LONGCTX_RING_GPU_LAYOUT_H
#define LONGCTX_RING_GPU_LAYOUT_H

#include <stdint.h>

#include "layout_map.h"

/* Local rows (padded) of every PE, or -1 for a bad argument. */
static inline int lc_ring_layout_rows(int layout, int64_t s_global, int n_pes) {
    int np = -1;
    return lc_layout_positions(layout, s_global, n_pes, 0, NULL, &np) < 0 ? -1 : np;
}

/* pos gets lc_ring_layout_rows() entries; returns the real rows of PE pe, or -1. */
static inline int lc_ring_layout_positions(int layout, int64_t s_global, int n_pes, int pe, int32_t *pos) {
    return lc_layout_positions(layout, s_global, n_pes, pe, pos, NULL);
}

#endif
