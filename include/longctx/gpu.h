/* longctx GPU path: CUDA attention block kernels, the NVSHMEM backend of the symmetric
 * runtime, its NCCL two-sided twin, and ring attention over them.
 *
 * The kernels keep the contract of attn.h (layouts, normalised fp32 (o, lse) state, global
 * int32 positions with negative = padding, LC_MASK_* flags, backward that recomputes P from
 * the final lse and ACCUMULATES fp32 dq/dk/dv); every pointer passed here is device memory.
 * Streams are cudaStream_t passed as void * so that C code needs no CUDA header.
 *
 * All functions return LC_OK or a negative lc_status; lc_gpu_last_error() says why.
 * A build without CUDA still links these symbols only if longctx_gpu was built; callers
 * test lc_gpu_device_count() before anything else.
 *
 * The header users include. Each layer's part is its own header, so a layer's sources include
 * only their own and those below: gpu_attn.h (attn: kernels, engines), gpu_symm.h (symm:
 * NVSHMEM world, NCCL twin); this file adds the ring (cp).
 */
#ifndef LONGCTX_GPU_H
#define LONGCTX_GPU_H

#include <stddef.h>
#include <stdint.h>

#include "longctx/cp.h"
#include "longctx/gpu_attn.h"
#include "longctx/gpu_symm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- ring attention over the NVSHMEM world ---- */
/* The GPU ring shards like lc_cp, with the same map (lc_cp_layout, src/cp/core.h): any S,
 * each layout pads S up to its chunking and every PE holds the same number of rows (n_pad of
 * lc_cp_layout_positions, the ring's s_local), padding at the end with position -1 (the
 * kernels skip it); lc_cp_layout_positions gives a PE's positions. */

typedef struct lc_gpu_ring lc_gpu_ring;
typedef struct {
    lc_gpu_world *world;  /* ONE_SIDED: the ring is the world's PEs in order, or ring_pes */
    int s_local;          /* rows of the local Q and KV shard */
    int hq, hkv, d;
    lc_dtype dtype;
    float scale;          /* 0: 1/sqrt(d) */
    unsigned mask_kind;   /* LC_MASK_* */
    int64_t window;
    lc_lowering lowering; /* ONE_SIDED: NVSHMEM put-with-signal into symmetric slots;
                             TWO_SIDED: ncclSend/ncclRecv into private slots (world may be
                             NULL; the ring is the communicator's ranks in order) */
    lc_gpu_nccl *nccl;
    int use_graph;        /* capture each ring call as a CUDA graph and replay it while the
                             pointers stay the same; needs a non-NULL stream, and falls back to
                             eager launches (lc_gpu_ring_graph_status says why) if NVSHMEM
                             refuses capture */
    /* The attention engine of the block calls (0 = OWN). CUDNN plans blocks on the host, so
     * the ring must know every PE's positions: give the layout and the global S the shards
     * came from (lc_cp_layout_positions); the document mask's blocks then run on our
     * kernels (the ids are not known on the host). */
    lc_gpu_engine_kind engine;
    lc_cp_layout layout;
    int64_t s_global;
    /* ONE_SIDED: the ring's PEs, world PEs in ring order (NULL: the whole world in order), so
     * that DP replicas each run a CP ring of their own in one NVSHMEM world. The world's
     * collectives (the set-up's allocations, agreements and barriers) still span every PE:
     * all rings of the world are created and destroyed together, with the same options. */
    const int *ring_pes;
    int n_ring;
} lc_gpu_ring_opts;

/* Collective: allocates the double-buffered KV (and dK/dV) slots (in the symmetric heap when
 * one-sided). */
int lc_gpu_ring_create(const lc_gpu_ring_opts *opts, lc_gpu_ring **out);
int lc_gpu_ring_destroy(lc_gpu_ring *r); /* collective */
/* The ring's attention engine counters (LC_ERR_ARG for a NULL ring). */
int lc_gpu_ring_engine_stats(const lc_gpu_ring *r, lc_gpu_engine_stats *out);
/* 1 when the last call ran as a replayed CUDA graph, 0 eager; why gets the reason. */
int lc_gpu_ring_graph_status(const lc_gpu_ring *r, const char **why);
/* Forward over the whole ring. q [s_local,hq,d], k/v [s_local,hkv,d] in dtype; q_pos/k_pos
 * device int32 [s_local] (global positions of my shard); q_doc/k_doc for LC_MASK_DOC or NULL.
 * o (fp32, normalised) and lse [s_local,hq] are written (not accumulated). */
int lc_gpu_ring_fwd(lc_gpu_ring *r, const void *q, const void *k, const void *v,
                    const int32_t *q_pos, const int32_t *k_pos, const int32_t *q_doc,
                    const int32_t *k_doc, float *o, float *lse, lc_gpu_stream s);
/* Backward: ACCUMULATES fp32 dq into my Q shard's gradient and dk/dv into my KV shard's,
 * after the dK/dV accumulators travelled the ring and came home. */
int lc_gpu_ring_bwd(lc_gpu_ring *r, const void *q, const void *k, const void *v,
                    const int32_t *q_pos, const int32_t *k_pos, const int32_t *q_doc,
                    const int32_t *k_doc, const float *o, const float *lse, const void *dout,
                    float *dq, float *dk, float *dv, lc_gpu_stream s);

#ifdef __cplusplus
}
#endif
#endif
