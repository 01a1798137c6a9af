/* longctx GPU attention (attn layer): the CUDA block kernels and the attention engines.
 *
 * The kernels keep the contract of attn.h (layouts, normalised fp32 (o, lse) state, global
 * int32 positions with negative = padding, LC_MASK_* flags, backward that recomputes P from
 * the final lse and ACCUMULATES fp32 dq/dk/dv); every pointer passed here is device memory.
 * Streams are cudaStream_t passed as void * so that C code needs no CUDA header. All functions
 * return LC_OK or a negative lc_status; lc_gpu_last_error() says why. Users include gpu.h,
 * which holds all three GPU headers (gpu_attn.h, gpu_symm.h and the ring). */
#ifndef LONGCTX_GPU_ATTN_H
#define LONGCTX_GPU_ATTN_H

#include <stddef.h>
#include <stdint.h>

#include "longctx/attn.h"

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
 * $LONGCTX_GPU_KERNEL = sm80 | sm90 | auto (default) chooses; auto takes sm90 only when
 * $LONGCTX_GPU_SM90_PASSED=1 says its forward test passed on this kind of device (a fault would
 * end the process's CUDA context, so nothing else may try it) and after it matched the sm80
 * kernel in a one-time start-up check. NULL (lc_gpu_last_error says why)
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
/* Sizes the engine's scratch for blocks up to sq x sk once (a ring calls it at create), so that
 * no later call allocates; LC_OK and nothing to do for our own kernels. */
int lc_gpu_attn_engine_reserve(lc_gpu_attn_engine *e, int sq, int sk, int hq, int hkv, int d);

#ifdef __cplusplus
}
#endif
#endif
