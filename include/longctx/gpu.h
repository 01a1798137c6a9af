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
 */
#ifndef LONGCTX_GPU_H
#define LONGCTX_GPU_H

#include <stddef.h>
#include <stdint.h>

#include "longctx/attn.h"
#include "longctx/cp.h"
#include "longctx/symm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void *lc_gpu_stream; /* cudaStream_t; NULL = the legacy default stream */

/* Number of CUDA devices, 0 when none answers (why gets cudaGetErrorString). */
int lc_gpu_device_count(char *why, size_t whylen);
const char *lc_gpu_last_error(void); /* thread-local */

/* ---- attention block kernels ---- */
typedef struct lc_gpu_attn_engine lc_gpu_attn_engine; /* see "attention engines" below */
typedef struct {
    int sq, sk;          /* rows of Q, rows of K/V */
    int hq, hkv, d;      /* d in {64, 128}; hq a multiple of hkv */
    lc_dtype dtype;      /* LC_DT_BF16 or LC_DT_F16 for q, k, v, dout */
    float scale;         /* 0: 1/sqrt(d) */
    const int32_t *q_pos; /* device [sq] global positions; NULL: 0..sq-1 */
    const int32_t *k_pos; /* device [sk]; NULL: 0..sk-1 */
    lc_mask mask;         /* q_doc/k_doc are device pointers */
    /* Which engine runs the block calls: NULL = our kernels. The cuDNN engine plans each
     * block on the host, so it also reads host copies of the positions (NULL here with a
     * NULL device pointer = 0..n-1) and, under LC_MASK_DOC, of the document ids; a block
     * whose host copies are missing runs on our kernels and is counted. */
    lc_gpu_attn_engine *engine;
    const int32_t *q_pos_host, *k_pos_host;
    const int32_t *q_doc_host, *k_doc_host;
} lc_gpu_attn_desc;

int lc_gpu_attn_check(const lc_gpu_attn_desc *a, char *err, size_t errlen);
int lc_gpu_attn_fwd_init(const lc_gpu_attn_desc *a, float *o, float *lse, lc_gpu_stream s);
int lc_gpu_attn_fwd_block(const lc_gpu_attn_desc *a, const void *q, const void *k,
                          const void *v, float *o, float *lse, lc_gpu_stream s);
/* out [sq,hq,d] in out_dtype (F32, BF16 or F16) from the fp32 state. */
int lc_gpu_attn_fwd_finish(const lc_gpu_attn_desc *a, const float *o, void *out,
                           lc_dtype out_dtype, lc_gpu_stream s);
/* delta[i,h] = sum_d dout[i,h,:] * o[i,h,:] (o fp32, dout in a->dtype). With a cuDNN engine in
 * a->engine it keeps a 16-bit copy of o for cuDNN's backward instead, and delta is written
 * only when (and just before) a block call falls back to our kernels. */
int lc_gpu_attn_bwd_prep(const lc_gpu_attn_desc *a, const float *o, const void *dout,
                         float *delta, lc_gpu_stream s);
/* The forward kernel lc_gpu_attn_fwd_block runs for this dtype and head dim on the current
 * device: "sm80" (mma.sync, every card) or "sm90" (wgmma + TMA, compute capability 9.0).
 * $LONGCTX_GPU_KERNEL = sm80 | sm90 | auto (default) chooses; auto takes sm90 only after it
 * matched the sm80 kernel in a one-time start-up check. NULL (lc_gpu_last_error says why)
 * when the choice cannot be met, e.g. sm90 forced on another card. */
const char *lc_gpu_attn_fwd_kernel(lc_dtype dtype, int d);
int lc_gpu_attn_bwd_block(const lc_gpu_attn_desc *a, const void *q, const void *k,
                          const void *v, const void *dout, const float *lse,
                          const float *delta, float *dq, float *dk, float *dv,
                          lc_gpu_stream s);

/* ---- the CUDA kernels behind lc_attn_iface (attn.h) ----
 * lc_attn_cuda runs the calls above on the descriptor's fields: sq, sk, hq, hkv, d,
 * qkv_dtype (LC_DT_BF16 or LC_DT_F16), scale, q_pos, k_pos and mask (device pointers); CPU
 * resources (threads, impl, pool, work) are ignored, workspace_size gives 0 (the kernels keep
 * their own), the stream is a cudaStream_t. a->dev may point at an lc_gpu_attn_ext. */
typedef struct {
    lc_gpu_attn_engine *engine;               /* NULL: our kernels */
    const int32_t *q_pos_host, *k_pos_host;   /* as in lc_gpu_attn_desc */
    const int32_t *q_doc_host, *k_doc_host;
} lc_gpu_attn_ext;
extern const lc_attn_iface lc_attn_cuda;

/* ---- attention engines: our kernels or cuDNN's SDPA graphs (issue 12) ----
 * LC_GPU_ENGINE_CUDNN cuts each block into at most 16 pieces whose mask is a cuDNN diagonal
 * band (src/attn/cuda/cudnn_plan.h), runs cuDNN's fused SDPA forward per piece (16-bit
 * partial o and its log-sum-exp) and merges it into the fp32 (o, lse) state; the backward
 * runs cuDNN's SDPA backward per piece from the final lse and a 16-bit copy of the final o
 * (made by lc_gpu_attn_bwd_prep) and adds its 16-bit dq/dk/dv into the fp32 accumulators.
 * Blocks outside that rule (too many pieces, no host positions, a shape cuDNN refuses) run
 * on our kernels and are counted (lc_gpu_attn_engine_stats), never silently.
 * LC_GPU_ENGINE_AUTO runs our kernels until gpu-check has measured cuDNN within the bf16
 * tolerance and faster (docs/GPU.md, "the cuDNN engine"). */
typedef enum { LC_GPU_ENGINE_OWN = 0, LC_GPU_ENGINE_CUDNN = 1, LC_GPU_ENGINE_AUTO = 2 } lc_gpu_engine_kind;
/* "own", "cudnn" or "auto" (NULL or "" = own); LC_ERR_ARG naming the word otherwise. */
int lc_gpu_engine_parse(const char *s, lc_gpu_engine_kind *out);
const char *lc_gpu_engine_name(lc_gpu_engine_kind k);
/* 1 when this build has the cuDNN engine and the cuDNN library answers; 0 and why if not. */
int lc_gpu_have_cudnn(char *why, size_t whylen);
/* CUDNN without cuDNN (not built, or the library fails): LC_ERR_UNSUPPORTED, with the reason
 * in lc_gpu_last_error. Create on the thread and device that will use it; one engine serves
 * one stream at a time. */
int lc_gpu_attn_engine_create(lc_gpu_engine_kind kind, lc_gpu_attn_engine **out);
int lc_gpu_attn_engine_destroy(lc_gpu_attn_engine *e);
typedef struct {
    lc_gpu_engine_kind kind;     /* asked for */
    lc_gpu_engine_kind resolved; /* what runs the blocks: OWN or CUDNN */
    long long fwd_cudnn, bwd_cudnn; /* block calls run by cuDNN */
    long long fwd_own, bwd_own;     /* block calls that ran on our kernels by the per-block rule */
    long long pieces;               /* cuDNN executions (forward + backward) */
    int graphs;                     /* graphs built and cached (forward + backward) */
    int graphs_refused;             /* shapes cuDNN refused (their blocks run on our kernels) */
    double graph_build_s;           /* wall time spent building graphs (first use of a shape) */
    char last_own_why[200];         /* why the last block ran on our kernels */
} lc_gpu_engine_stats;
int lc_gpu_attn_engine_stats(const lc_gpu_attn_engine *e, lc_gpu_engine_stats *out);

/* ---- NVSHMEM backend ---- */
#define LC_GPU_UID_BYTES 128
typedef struct { unsigned char bytes[LC_GPU_UID_BYTES]; } lc_gpu_uid;

typedef struct lc_gpu_world lc_gpu_world;
typedef struct lc_gpu_team lc_gpu_team;

typedef struct {
    int pe, n_pes;        /* this process's PE and the world size */
    const lc_gpu_uid *uid; /* from lc_gpu_uid_create on one PE, shipped to all */
    int device;           /* -1: pe % device count (several PEs may share a GPU) */
    size_t heap_bytes;    /* 0: NVSHMEM's default / $NVSHMEM_SYMMETRIC_SIZE */
    double timeout_s;     /* 0: $LONGCTX_TIMEOUT, else 120; bounds every signal wait */
} lc_gpu_world_opts;

/* 1 when this build has the NVSHMEM backend. */
int lc_gpu_have_nvshmem(void);
/* Call before lc_gpu_world_init on exactly one PE; bootstrap needs no MPI. */
int lc_gpu_uid_create(lc_gpu_uid *uid);
int lc_gpu_world_init(const lc_gpu_world_opts *opts, lc_gpu_world **out);
int lc_gpu_world_finalize(lc_gpu_world *w);
int lc_gpu_my_pe(const lc_gpu_world *w);
int lc_gpu_n_pes(const lc_gpu_world *w);
/* PEs that share my GPU (NVSHMEM's multiple-PEs-per-GPU mode when > 1): team splits,
 * team barriers, collectives and *_wait_until_on_stream are refused there. */
int lc_gpu_pes_per_device(const lc_gpu_world *w);
const char *lc_gpu_world_error(const lc_gpu_world *w);

void *lc_gpu_symm_alloc(lc_gpu_world *w, size_t bytes); /* collective */
int lc_gpu_symm_free(lc_gpu_world *w, void *p);         /* collective */
void *lc_gpu_symm_ptr(lc_gpu_world *w, const void *p, int pe);

/* Stream-ordered one-sided operations; dst and sig are symmetric. op is LC_SIGNAL_SET or
 * LC_SIGNAL_ADD and cmp an LC_CMP_* of symm.h (translated to NVSHMEM's values inside). */
int lc_gpu_put_on_stream(lc_gpu_world *w, void *dst, const void *src, size_t bytes, int pe,
                         lc_gpu_stream s);
int lc_gpu_put_signal_on_stream(lc_gpu_world *w, void *dst, const void *src, size_t bytes,
                                uint64_t *sig, uint64_t value, int op, int pe,
                                lc_gpu_stream s);
int lc_gpu_signal_op_on_stream(lc_gpu_world *w, uint64_t *sig, uint64_t value,
                               int op, int pe, lc_gpu_stream s);
/* One permute hop as one kernel: put bytes of src to dst on PE pe, then (sig op value) on pe,
 * then wait until my own wsig cmp wvalue (the predecessor's put has landed), with the same
 * deadline as lc_gpu_signal_wait_on_stream. The copy runs on up to $LONGCTX_GPU_FUSED_BLOCKS
 * blocks (default: one per SM) of $LONGCTX_GPU_FUSED_CHUNK bytes (default 64 KiB) each.
 * Costs one launch where put + signal + wait cost three; the copy engine is not used. */
int lc_gpu_put_signal_wait_on_stream(lc_gpu_world *w, void *dst, const void *src, size_t bytes,
                                     uint64_t *sig, uint64_t value, int op, int pe,
                                     uint64_t *wsig, int cmp, uint64_t wvalue, lc_gpu_stream s);
/* Put-with-signal without a kernel, where PE pe is load/store reachable (same node, P2P):
 * the copy engine moves the data, the stream's front end then SETs the signal
 * (cuStreamWriteValue64 after a system fence). LC_ERR_UNSUPPORTED where the peer is not
 * reachable or the driver lacks 64-bit stream memory operations. */
int lc_gpu_put_signal_ce_on_stream(lc_gpu_world *w, void *dst, const void *src, size_t bytes,
                                   uint64_t *sig, uint64_t value, int pe, lc_gpu_stream s);
/* The stream waits (cuStreamWaitValue64, no kernel) until my *sig >= value (LC_CMP_GE) or
 * == value (LC_CMP_EQ). NO DEADLINE: a dead peer hangs the stream, as with
 * LONGCTX_GPU_WAIT=nvshmem; lc_gpu_signal_wait_on_stream is the bounded wait. */
int lc_gpu_signal_wait_memop_on_stream(lc_gpu_world *w, uint64_t *sig, int cmp, uint64_t value,
                                       lc_gpu_stream s);
/* Makes s wait until (*sig cmp value) on my copy. A device-side wait kernel with a
 * deadline does it (works with several PEs per GPU); $LONGCTX_GPU_WAIT=nvshmem uses
 * nvshmemx_signal_wait_until_on_stream instead. A wait that passes its deadline marks the
 * world failed: lc_gpu_world_check then returns LC_ERR_TIMEOUT. */
int lc_gpu_signal_wait_on_stream(lc_gpu_world *w, uint64_t *sig, int cmp, uint64_t value,
                                 lc_gpu_stream s);
int lc_gpu_quiet_on_stream(lc_gpu_world *w, lc_gpu_stream s);
int lc_gpu_quiet(lc_gpu_world *w);
int lc_gpu_barrier_all(lc_gpu_world *w);                       /* host, collective */
int lc_gpu_barrier_all_on_stream(lc_gpu_world *w, lc_gpu_stream s);
/* Synchronises s and reports a device-side wait timeout. */
int lc_gpu_world_check(lc_gpu_world *w, lc_gpu_stream s);

/* What every PE said in an agreement: the lowest PE whose status was not LC_OK (-1: none)
 * and that status; the lowest PE whose key differs from PE 0's (-1: none) and both keys. */
typedef struct {
    int n_pes, bad_pe, bad_status, key_pe;
    uint32_t key0, key_bad;
} lc_gpu_agreement;
/* Host collective: each PE gives its own status and a fingerprint of what must be the same on
 * every PE (shapes, options), and all learn everyone's. Every PE calls it, also after a local
 * failure, so that none waits in a later collective for a PE that has already left. Returns
 * LC_OK when the exchange itself worked (then out says what the PEs said). */
int lc_gpu_agree(lc_gpu_world *w, int status, uint32_t key, lc_gpu_agreement *out);

lc_gpu_team *lc_gpu_team_world(lc_gpu_world *w);
int lc_gpu_team_split_strided(lc_gpu_team *parent, int start, int stride, int size,
                              lc_gpu_team **out);
int lc_gpu_team_my_pe(const lc_gpu_team *t);
int lc_gpu_team_n_pes(const lc_gpu_team *t);
/* World PE of team member r. */
int lc_gpu_team_world_pe(const lc_gpu_team *t, int r);
void lc_gpu_team_destroy(lc_gpu_team *t);

/* ---- NCCL two-sided twin ---- */
typedef struct lc_gpu_nccl lc_gpu_nccl;
int lc_gpu_have_nccl(void);
int lc_gpu_nccl_uid_create(lc_gpu_uid *uid);
int lc_gpu_nccl_init(const lc_gpu_uid *uid, int pe, int n_pes, lc_gpu_nccl **out);
/* Every rank sends bytes of src to (me + shift) mod n and receives into dst from
 * (me - shift) mod n: ncclSend/ncclRecv in one group. */
int lc_gpu_nccl_permute(lc_gpu_nccl *c, int shift, const void *src, void *dst, size_t bytes,
                        lc_gpu_stream s);
int lc_gpu_nccl_finalize(lc_gpu_nccl *c);
int lc_gpu_nccl_rank(const lc_gpu_nccl *c);
int lc_gpu_nccl_size(const lc_gpu_nccl *c);
/* lc_gpu_agree over the NCCL communicator (an all-gather). */
int lc_gpu_nccl_agree(lc_gpu_nccl *c, int status, uint32_t key, lc_gpu_agreement *out);

/* ---- ring attention over the NVSHMEM world ---- */
/* The GPU ring shards like lc_cp, with the same map (lc_cp_layout, src/cp/core.h): any S,
 * each layout pads S up to its chunking and every PE holds the same number of rows (n_pad of
 * lc_cp_layout_positions, the ring's s_local), padding at the end with position -1 (the
 * kernels skip it); lc_cp_layout_positions gives a PE's positions. */

typedef struct lc_gpu_ring lc_gpu_ring;
typedef struct {
    lc_gpu_world *world;  /* ONE_SIDED: the ring is the world's PEs in order */
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
