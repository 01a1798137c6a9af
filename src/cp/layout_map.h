/* The sharding map of the context-parallel layouts as pure inline C, shared by the CPU plan
 * (layout.c), the GPU ring (ring_gpu.cu via ring_gpu_layout.h) and their tests, so both
 * rings shard any S the same way. Layout numbers are lc_cp_layout's (and lc_gpu_layout's):
 * 0 contiguous, 1 zigzag, 2 striped. Every layout pads S up to its chunking and keeps the
 * padding at the end of each PE's rows (global position grows with the local row), padded
 * rows get position -1.
 *
 * The ring schedule lives here too: at step j a PE computes on the block that left its owner
 * (me - j) j hops ago, received blocks alternate between two slots (j & 1). */
#ifndef LONGCTX_CP_LAYOUT_MAP_H
#define LONGCTX_CP_LAYOUT_MAP_H

#include <stdint.h>

enum { LC_LAYOUT_MAP_CONTIG = 0, LC_LAYOUT_MAP_ZIGZAG = 1, LC_LAYOUT_MAP_STRIPED = 2 };

static inline int64_t lc_layout_pad_rows(int layout, int64_t s, int p) {
    const int64_t c = layout == LC_LAYOUT_MAP_ZIGZAG ? 2 * (int64_t)p : (int64_t)p;
    const int64_t rows = (s + c - 1) / c;
    return layout == LC_LAYOUT_MAP_ZIGZAG ? 2 * rows : rows;
}

static inline int64_t lc_layout_global_of(int layout, int64_t n_pad, int p, int pe, int64_t i) {
    switch (layout) {
    case LC_LAYOUT_MAP_STRIPED: return i * p + pe;
    case LC_LAYOUT_MAP_ZIGZAG: {
        const int64_t c = n_pad / 2;
        return i < c ? pe * c + i : (2 * (int64_t)p - 1 - pe) * c + (i - c);
    }
    default: return pe * n_pad + i;
    }
}

/* Positions of PE pe's lc_layout_pad_rows() local rows into pos (may be NULL), -1 for
 * padding; *n_pad gets the padded row count. Returns the number of real rows, or -1 for a
 * bad argument or a padded sequence beyond int32 positions. */
static inline int lc_layout_positions(int layout, int64_t s, int p, int pe, int32_t *pos, int *n_pad) {
    if (p < 1 || pe < 0 || pe >= p || s < 1 || layout < 0 || layout > LC_LAYOUT_MAP_STRIPED) return -1;
    const int64_t np = lc_layout_pad_rows(layout, s, p);
    if (np * p > INT32_MAX) return -1;
    int real = 0;
    for (int64_t i = 0; i < np; i++) {
        const int64_t g = lc_layout_global_of(layout, np, p, pe, i);
        if (g < s) real++;
        if (pos) pos[i] = g < s ? (int32_t)g : -1;
    }
    if (n_pad) *n_pad = (int)np;
    return real;
}

/* Ring schedule: the owner of the block a PE computes on at step j, and its neighbours. */
static inline int lc_ring_owner(int me, int step, int p) { return ((me - step) % p + p) % p; }
static inline int lc_ring_next(int me, int p) { return (me + 1) % p; }
static inline int lc_ring_prev(int me, int p) { return (me + p - 1) % p; }

#endif
