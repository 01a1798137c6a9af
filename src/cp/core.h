/* The context-parallel core both rings compile: the layout map, the ring schedule, the
 * format of a travelling KV slot, the dK/dV accumulation order and the set-up agreement.
 * Plain C, static inline, no runtime: the CPU plan (cp.c, layout.c, ring.c, zcopy.c,
 * allgather.c), the GPU ring (ring_gpu.cu, nvcc) and the emulated GPU ring (tests/gpu/emu)
 * include this one header, so both rings shard, schedule and lay out a block the same way.
 * The attention-level half (mask rule, tile classes) is attn/core.h. */
#ifndef LONGCTX_CP_CORE_H
#define LONGCTX_CP_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "attn/core.h"
#include "longctx/cp.h"

/* ---- layout map: local row <-> global position ----
 * Every layout pads S up to its chunking and keeps the padding at the end of each PE's rows
 * (global position grows with the local row), padded rows get position -1. */
static inline int64_t lc_layout_pad_rows(lc_cp_layout layout, int64_t s, int p)
{
    const int64_t c = layout == LC_CP_ZIGZAG ? 2 * (int64_t)p : (int64_t)p;
    const int64_t rows = (s + c - 1) / c;
    return layout == LC_CP_ZIGZAG ? 2 * rows : rows;
}

static inline int64_t lc_layout_global_of(lc_cp_layout layout, int64_t n_pad, int p, int pe, int64_t i)
{
    switch (layout) {
    case LC_CP_STRIPED: return i * p + pe;
    case LC_CP_ZIGZAG: {
        const int64_t c = n_pad / 2;
        return i < c ? pe * c + i : (2 * (int64_t)p - 1 - pe) * c + (i - c);
    }
    default: return pe * n_pad + i;
    }
}

/* Positions of PE pe's lc_layout_pad_rows() local rows into pos (may be NULL), -1 for
 * padding; *n_pad gets the padded row count. Returns the number of real rows, or -1 for a
 * bad argument or a padded sequence beyond int32 positions. */
static inline int lc_layout_positions(lc_cp_layout layout, int64_t s, int p, int pe, int32_t *pos, int *n_pad)
{
    if (p < 1 || pe < 0 || pe >= p || s < 1 || (int)layout < 0 || (int)layout > LC_CP_STRIPED) return -1;
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

/* ---- ring schedule ----
 * At step j a PE computes on the block that left its owner j hops ago (the owner at step 0 is
 * the PE itself); blocks travel to the next PE; received blocks alternate between two slots
 * (j & 1), so the slot a neighbour writes is never the one being read. */
static inline int lc_ring_owner(int me, int step, int p) { return ((me - step) % p + p) % p; }
/* The PE that works on owner's block at step j: the inverse of lc_ring_owner. */
static inline int lc_ring_visitor(int owner, int step, int p) { return lc_ring_owner(owner, -step, p); }
static inline int lc_ring_next(int me, int p) { return (me + 1) % p; }
static inline int lc_ring_prev(int me, int p) { return (me + p - 1) % p; }

/* ---- KV slot format ----
 * A travelling block is one contiguous buffer, so one transfer moves all the kernel needs:
 * [K rows*hkv*d][V same][pos rows int32][doc rows int32], each part starting at a multiple
 * of LC_CP_SLOT_ALIGN bytes from the slot's start.
 * 256, the GPU ring's, not the CPU plan's former 64: the GPU slots have always been laid out
 * at cudaMalloc's 256-byte granularity and the kernels' 16-byte cp.async / TMA loads of K and V
 * need at least 16; the CPU kernels want 64 (a cache line, one AVX-512 vector), which 256 is
 * a multiple of. The CPU's bits cannot change with it: the parts only move to later offsets
 * past padding that no kernel reads, and a block grows by at most 3 x 192 bytes. */
#define LC_CP_SLOT_ALIGN 256u

typedef struct {
    size_t k, v, pos, doc, bytes;
} lc_cp_slot_fmt;

static inline size_t lc_cp_slot_round(size_t x)
{
    return (x + (LC_CP_SLOT_ALIGN - 1)) & ~(size_t)(LC_CP_SLOT_ALIGN - 1);
}

/* The slot of a block of `rows` rows holding kv_bytes of K (and as many of V) each. */
static inline lc_cp_slot_fmt lc_cp_slot_format(size_t kv_bytes, size_t rows)
{
    lc_cp_slot_fmt f;
    f.k = 0;
    f.v = lc_cp_slot_round(kv_bytes);
    f.pos = f.v + lc_cp_slot_round(kv_bytes);
    f.doc = f.pos + lc_cp_slot_round(sizeof(int32_t) * rows);
    f.bytes = f.doc + lc_cp_slot_round(sizeof(int32_t) * rows);
    return f;
}

/* ---- dK/dV accumulation order ----
 * A block's accumulator starts with its owner's contribution (step 0) and visits the PEs in
 * ring order (lc_ring_visitor(owner, 1), (owner, 2), ...), each adding its own with
 * lc_dkv_add (attn/core.h: in + acc). Ring, zero-copy, all-gather and the GPU ring all sum
 * this chain in this order, which is what makes them bit-identical to each other. */

/* ---- set-up agreement ----
 * What must be the same on every PE of a ring before any collective allocation: one record
 * for both rings. Each side fills the fields it has (0 for the rest: the CPU plan has no
 * engine, graph or separate row count; the GPU ring no algorithm choice), and every PE learns
 * every PE's set-up status and record: the lowest failing PE is named first, then the first
 * field, in this order, where a PE differs from PE 0. The CPU plan gathers whole records
 * (lc_allgather) and names the field and both values; the GPU ring gathers (status,
 * fingerprint) pairs (lc_gpu_agree, read by symm/gpu_agree.h, below this layer) and prints
 * its own record. */
enum {
    LC_CP_SETUP_SEQ, LC_CP_SETUP_HQ, LC_CP_SETUP_HKV, LC_CP_SETUP_D, LC_CP_SETUP_DTYPE,
    LC_CP_SETUP_LAYOUT, LC_CP_SETUP_MASK, LC_CP_SETUP_WINDOW, LC_CP_SETUP_SCALE, LC_CP_SETUP_ALGO,
    LC_CP_SETUP_LOWERING, LC_CP_SETUP_ROWS, LC_CP_SETUP_ENGINE, LC_CP_SETUP_GRAPH, LC_CP_SETUP_ULYSSES,
    LC_CP_SETUP_BALANCE, LC_CP_SETUP_N
};
typedef struct {
    int64_t f[LC_CP_SETUP_N];
} lc_cp_setup;

static inline const char *lc_cp_setup_name(int i)
{
    static const char *const n[LC_CP_SETUP_N] = {"seq_len", "hq", "hkv", "d", "dtype", "layout", "mask",
                                                 "window", "scale", "algo", "lowering", "s_local", "engine",
                                                 "graph", "ulysses", "balance"};
    return i >= 0 && i < LC_CP_SETUP_N ? n[i] : "?";
}

/* The fields both rings share; the window counts only under a window mask, the scale as the
 * bits of its double. */
static inline void lc_cp_setup_init(lc_cp_setup *s, int64_t seq_len, int hq, int hkv, int d, int dtype,
                                    int layout, unsigned mask, int64_t window, float scale, int algo,
                                    int lowering)
{
    const double sc = scale;
    int64_t sc_bits;
    memcpy(&sc_bits, &sc, sizeof sc_bits);
    memset(s, 0, sizeof *s);
    s->f[LC_CP_SETUP_SEQ] = seq_len;
    s->f[LC_CP_SETUP_HQ] = hq;
    s->f[LC_CP_SETUP_HKV] = hkv;
    s->f[LC_CP_SETUP_D] = d;
    s->f[LC_CP_SETUP_DTYPE] = dtype;
    s->f[LC_CP_SETUP_LAYOUT] = layout;
    s->f[LC_CP_SETUP_MASK] = mask;
    s->f[LC_CP_SETUP_WINDOW] = (mask & LC_MASK_WINDOW) ? window : 0;
    s->f[LC_CP_SETUP_SCALE] = sc_bits;
    s->f[LC_CP_SETUP_ALGO] = algo;
    s->f[LC_CP_SETUP_LOWERING] = lowering;
}

/* FNV-1a over the record: the GPU ring's fingerprint. */
static inline uint32_t lc_cp_setup_fingerprint(const lc_cp_setup *s)
{
    uint32_t h = 2166136261u;
    const unsigned char *b = (const unsigned char *)s->f;
    for (size_t i = 0; i < sizeof s->f; i++) h = (h ^ b[i]) * 16777619u;
    return h;
}

#ifdef __cplusplus
extern "C" {
#endif
/* Field i's value as text: dtype, layout and lowering by name, the mask in hex, the scale as
 * a number (src/cp/plan.c). */
void lc_cp_setup_value(const lc_cp_setup *s, int i, char *buf, size_t len);
/* "seq_len 4096, hq 8, ..." over the whole record. */
void lc_cp_setup_str(const lc_cp_setup *s, char *buf, size_t len);
#ifdef __cplusplus
}
#endif

#endif
