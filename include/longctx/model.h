/* longctx model: a Llama-3-architecture decoder (llm.c style) over context parallelism.
 *
 * Token embedding, per layer [RMSNorm, GQA attention with RoPE through lc_cp, residual,
 * RMSNorm, SwiGLU MLP, residual], final RMSNorm, untied LM head, mean cross-entropy.
 * Parameters and gradients are flat fp32 buffers with named views (one tensor table with the
 * Hugging Face Llama names drives init, names and checkpoints); activations live in one
 * arena sized at create from this PE's share of the sequence; a step allocates nothing.
 *
 * Weights follow transformers' LlamaForCausalLM exactly: Linear weights are [out, in]
 * (y = x W^T), RoPE is rotate_half over the two halves of each head with inv_freq and the
 * angle pos * inv_freq computed in fp32 like transformers, so a checkpoint gives the same
 * logits there. RoPE positions are the GLOBAL token positions of the CP layout.
 *
 * Errors return lc_status codes (symm.h) with a message in lc_model_last_error(); a failure
 * inside a collective aborts the world with its reason.
 */
#ifndef LONGCTX_MODEL_H
#define LONGCTX_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "longctx/cp.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int n_layers, dim, n_heads, n_kv_heads, ffn_dim, vocab; /* head_dim = dim / n_heads */
    float rope_theta, norm_eps;
    int64_t max_seq; /* max_position_embeddings (checkpoint metadata; seq_len <= max_seq) */
} lc_model_config;

/* "tiny" (tests), "small" (trains on 2 cores at 16K+), "llama3-8b" (shapes/memory only).
 * Returns LC_ERR_ARG for an unknown name. */
int lc_model_preset(const char *name, lc_model_config *out);
/* Validates a config; on error returns LC_ERR_ARG and writes a message naming the field. */
int lc_model_config_check(const lc_model_config *cfg, char *err, size_t errlen);

typedef struct lc_model_device lc_model_device; /* where a model runs (NULL: the host) */

typedef struct {
    lc_team *cp_team;  /* the CP team this PE computes with (a world team of one for CP=1) */
    const lc_plan *plan; /* cp.h: seq_len (global tokens per sequence; a micro-batch is one
                          sequence), layout, CP algorithm and lowering, sp. Held by reference:
                          it must outlive the model. Its dp/cp/tp are not read here: the
                          teams given are the mesh */
    lc_dtype compute;  /* LC_DT_F32, or LC_DT_BF16: matmul/attention inputs rounded to bf16 */
    int doc_mask;      /* packed-document masking: doc ids passed to every step */
    int64_t window;    /* > 0: sliding-window attention, each token sees itself and the window - 1
                          tokens before it (Mistral's sliding_window); 0: the whole causal past */
    int threads;       /* BLAS + attention threads of this PE (its cores); <= 0: 1 */
    int recompute;     /* keep only layer inputs; recompute each layer in backward */
    lc_team *tp_team;  /* tensor-parallel team (Megatron style); NULL: no TP */
    const lc_model_device *device; /* where the model lives and runs: NULL, the host
                          (CPU layers, BLAS, lc_cp); a GPU's from lc_model_gpu_device
                          (model_gpu.h). One device per model. On a device, params and grads
                          are device memory: read and write them with lc_model_read/write */
} lc_model_run;

/* Tensor parallelism (Megatron style) over run.tp_team of T PEs: query heads split over TP;
 * KV heads split too, or, when T > n_kv_heads (T a multiple of n_kv_heads), replicated so each
 * PE holds the one KV head its query heads use (the replicas' gradients are summed inside the
 * step, so replicas stay equal). q/k/v and gate/up are column-parallel, o and down
 * row-parallel followed by an all-reduce over TP (with plan.sp: a reduce-scatter, and an
 * all-gather before the next column-parallel matmul, so the residual stream and the norms
 * stay sharded along the sequence inside the TP team; rows are padded to a multiple of T).
 * The embedding and the LM head are split by vocabulary, with a TP-parallel cross-entropy
 * (max, sum-exp and target-logit all-reduces): no PE holds full-vocabulary logits. Norm
 * weights are replicated. A PE's CP plan is made on run.cp_team (same DP and TP rank) with
 * its local head counts.
 * Checks that a config splits over tp PEs: n_heads, ffn_dim and vocab divisible by tp, and
 * n_kv_heads divisible by tp or tp by n_kv_heads (a vocabulary that does not divide is an
 * error, not padded). Returns LC_ERR_ARG with a message naming the field. */
int lc_model_tp_check(const lc_model_config *cfg, int tp, char *err, size_t errlen);

typedef struct {
    const char *name; /* HF Llama name, e.g. model.layers.0.self_attn.q_proj.weight */
    int ndim;         /* 1 or 2 */
    int64_t shape[2]; /* [out, in] for Linear/embedding weights, [dim] for norms */
    size_t offset;    /* floats into the flat parameter (and gradient) buffer */
    size_t numel;
    int decay;        /* 1 for matrices (weight decay applies), 0 for norm weights */
} lc_model_tensor;

typedef struct lc_model lc_model;

/* Collective over run->cp_team. Validates everything first (config fields, heads
 * divisibility, the plan's sequence vs its layout over this CP team by lc_plan_fits: every PE
 * must own at least one token), then allocates
 * parameters, gradients and the activation arena once. Sets the BLAS threads of this process
 * to run->threads. On failure *out is NULL and the message is in lc_model_last_error(NULL). */
int lc_model_create(const lc_model_config *cfg, const lc_model_run *run, lc_model **out);
int lc_model_destroy(lc_model *m); /* collective */
/* NULL m: the message of the last lc_model_create failure on this thread. */
const char *lc_model_last_error(const lc_model *m);
const lc_model_config *lc_model_get_config(const lc_model *m);
const lc_model_run *lc_model_get_run(const lc_model *m);

size_t lc_model_n_params(const lc_model *m);
float *lc_model_params(lc_model *m); /* flat fp32 master weights (device memory on a device) */
float *lc_model_grads(lc_model *m);  /* flat fp32 gradients, same layout */
/* host[n_params] <- src, or dst <- host, where src/dst is lc_model_params or lc_model_grads
 * (a copy on the host; a transfer on a device) */
int lc_model_read(lc_model *m, const float *src, float *host);
int lc_model_write(lc_model *m, float *dst, const float *host);
const char *lc_model_device_name(const lc_model *m); /* "cpu", "cuda" */
int lc_model_n_tensors(const lc_model *m);
const lc_model_tensor *lc_model_tensor_at(const lc_model *m, int i);
int lc_model_find_tensor(const lc_model *m, const char *name); /* index or -1 */
/* Deterministic from seed alone (same on every PE): Linear and embedding weights N(0, 0.02),
 * o_proj/down_proj N(0, 0.02/sqrt(2*n_layers)), norm weights 1. */
int lc_model_init_params(lc_model *m, uint64_t seed);
void lc_model_zero_grads(lc_model *m);

/* ---- layout-independent access (checkpoints, cross-layout resume) ----
 * Under TP a PE holds a slice of some tensors (lc_model_tensor_at gives the slice's shape and
 * place in the flat buffers). These calls convert between a flat buffer laid out like the
 * parameters (params, grads, or an optimizer moment) and the FULL tensor in Hugging Face
 * shape, so a checkpoint does not depend on the layout that wrote it. */
/* The full (unsharded) HF shape of tensor i; shape[1] = 0 for 1-D. Returns its numel. */
size_t lc_model_tensor_full_shape(const lc_model *m, int i, int64_t shape[2]);
/* full <- tensor i gathered from every TP member's src_flat. Collective over the TP team (a
 * no-op copy without TP); every member gets the whole tensor. */
int lc_model_gather_tensor(lc_model *m, int i, const float *src_flat, float *full);
/* dst_flat's slice of tensor i <- this PE's part of the full tensor. Local, no communication. */
int lc_model_scatter_tensor(const lc_model *m, int i, const float *full, float *dst_flat);
/* The L2 norm over the FULL model of a params-shaped flat buffer (gradients after their
 * DP x CP all-reduce): every slice once, tensors replicated over TP (norm weights, replicated
 * KV heads) once, summed in double in a fixed order. Collective over the TP team. */
int lc_model_global_norm(lc_model *m, const float *flat, double *norm);
/* 1 when this PE's copy of tensor i is the one that counts (not a replica of another TP
 * member's copy): sum such tensors over the TP team to cover the model once. */
int lc_model_tensor_counts(const lc_model *m, int i);

/* This PE's share of the sequence under the layout (real rows, and their global positions). */
int lc_model_local_rows(const lc_model *m);
const int32_t *lc_model_local_pos(const lc_model *m);

/* tokens, targets: the WHOLE global sequence [seq_len] on every PE (int32; tokens in
 * [0, vocab); target -1 = ignore, e.g. padding or a document's last token); doc: [seq_len]
 * doc ids (required iff run->doc_mask, else ignored). The model shards with the CP layout.
 * *loss = mean CE over all real targets of the global sequence, identical on every CP member
 * (0 when there is none). Gradients of (loss * grad_scale) are ADDED to grads; they are this
 * PE's partial sums: the caller all-reduces grads (sum) over the CP x DP team.
 * Collective over the CP team. */
int lc_model_forward_backward(lc_model *m, const int32_t *tokens, const int32_t *targets,
                              const int32_t *doc, float grad_scale, float *loss);
/* Eval only: no gradients touched. */
int lc_model_forward(lc_model *m, const int32_t *tokens, const int32_t *targets,
                     const int32_t *doc, float *loss);
/* lc_model_forward that also copies this PE's logits into logits [lc_model_local_rows(m),
 * vocab]: row i is global position lc_model_local_pos(m)[i] (cross-checks against other
 * implementations of the model). Collective over the CP team. */
int lc_model_forward_logits(lc_model *m, const int32_t *tokens, const int32_t *targets,
                            const int32_t *doc, float *loss, float *logits);

/* Model FLOPs per token of one forward+backward (for MFU), with N = matmul parameters
 * (all Linear weights incl. the LM head, not the embedding, not norms):
 *   6*N + 6 * n_layers * dim * seq_len     (attention QK^T and PV: 2 matmuls * 2*dim*S
 *                                            per token, x3 for fwd+bwd, halved for causal)
 * i.e. 6N + 12*L*dim*S/2. */
double lc_model_flops_per_token(const lc_model_config *cfg, int64_t seq_len);
/* Bytes the model will hold on one PE for a run, before any PE exists (for planning: longctx
 * plan; the measured peak comes from the OS). Unlike lc_model_create, this reads the mesh from
 * run->plan (cp, tp, sp, seq_len, layout, algorithm) and ignores the teams: under TP the split
 * weights and activations are one PE's share, with sp the residual stream's too. The
 * optimizer's state is not the model's (lc_adamw: 8 bytes per parameter). */
typedef struct {
    double weights;     /* fp32 master weights (+ their bf16 copies) */
    double grads;       /* fp32 gradients */
    double activations; /* the activation arena and the logits chunk */
    double attention;   /* the CP plan's buffers (lc_cp_mem_estimate) */
} lc_model_mem;
int lc_model_memory_estimate(const lc_model_config *cfg, const lc_model_run *run, lc_model_mem *out);

/* Wall time split of this PE since the last reset. attn_s is time inside the attention
 * kernels, comm_s the time inside the CP communication (both from lc_cp stats), matmul_s
 * inside BLAS calls, tp_comm_s inside the TP collectives (all-reduces, or reduce-scatters and
 * all-gathers with sp, the vocab-parallel loss's all-reduces and the KV-replica gradient
 * sums; waiting for a slower member included), other_s the rest of the step calls (norms,
 * RoPE, SwiGLU, softmax, loss all-reduce). */
typedef struct {
    double matmul_s, attn_s, comm_s, other_s, total_s;
    long steps;
    double tp_comm_s;
    double cp_bytes;   /* bytes this PE's CP attention sent (lc_cp_stats.bytes_sent) */
    double cp_imbalance; /* the last sequence's max / mean PE attention work (lc_cp_imbalance); 0: CP 1 */
} lc_model_times;
void lc_model_get_times(const lc_model *m, lc_model_times *t);
void lc_model_reset_times(lc_model *m);
/* Which bf16 matmul path this build uses: "sbgemm" (OpenBLAS bf16 GEMM) or "sgemm-rounded". */
const char *lc_model_bf16_gemm_name(void);
/* The BLAS in use: OpenBLAS version, kernel family and how it was chosen. */
const char *lc_model_blas_info(void);

#ifdef __cplusplus
}
#endif
#endif
