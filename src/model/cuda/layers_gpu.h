/* The decoder's memory-bound layers on the GPU (issue 23, part 2): embedding, RMSNorm, RoPE at
 * global positions, SwiGLU, cross-entropy, AdamW and the global gradient norm, forward and
 * backward, the same arithmetic as src/model/layers.c and src/optim/adamw.c. The matmuls go to
 * cuBLASLt (the seam below) and attention to lc_cp's GPU ring; these are the rest. Every reduction has a fixed
 * order (a block tree, then partials in index order), so a step gives the same bits run to
 * run; the embedding's gradient adds each token's rows in row order, as the CPU does.
 * Pointers are device memory; each launcher runs on `stream` and returns 0 or a CUDA error. */
#ifndef LONGCTX_MODEL_LAYERS_GPU_H
#define LONGCTX_MODEL_LAYERS_GPU_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Host side, once per step: the rows of each token id, for the embedding's backward without
 * atomics. by_tok[rows] lists the rows grouped by id (ascending rows within an id), ids[n]
 * the distinct ids in ascending order, starts[n + 1] their ranges; count[vocab] is scratch.
 * Returns n, or -1 for a token outside [0, vocab). */
int lcm_embed_index(const int32_t *tok, int rows, int vocab, int32_t *count, int32_t *by_tok, int32_t *ids,
                    int32_t *starts);

int lcm_embed_fwd(const float *emb, const int32_t *tok, int rows, int dim, float *out, void *stream);
int lcm_embed_bwd(float *demb, const int32_t *by_tok, const int32_t *ids, const int32_t *starts, int n_ids, int dim,
                  const float *dout, void *stream);
int lcm_rmsnorm_fwd(const float *x, const float *w, int rows, int dim, float eps, float *out, float *rstd,
                    void *stream);
/* dx (= or +=, accumulate) and dw (+=) */
int lcm_rmsnorm_bwd(const float *x, const float *w, const float *rstd, const float *dout, int rows, int dim,
                    int accumulate, float *dx, float *dw, void *stream);
/* Host: the rotary frequencies [hd / 2] exactly as the CPU table computes them; the device
 * table takes a device copy. */
void lcm_rope_inv_freq(int hd, float theta, float *inv_freq);
int lcm_rope_table(const int32_t *pos, int rows, int hd, const float *inv_freq, float *cos_t, float *sin_t,
                   void *stream);
int lcm_rope_apply(float *x, int rows, int heads, int hd, const float *cos_t, const float *sin_t, int inverse,
                   void *stream);
int lcm_swiglu_fwd(const float *h, int rows, int ffn, float *act, void *stream);
int lcm_swiglu_bwd(const float *h, float *dh, float *act, int rows, int ffn, void *stream);
/* logits [rows, vocab] become dscale * d(loss)/d(logits) when grad; loss_row[rows] gets each
 * row's loss (0 for a target < 0), *loss (device, one double) their sum in row order */
int lcm_ce_fwd_bwd(float *logits, const int32_t *targets, int rows, int vocab, int grad, float dscale,
                   double *loss_row, double *loss, void *stream);
/* The same under TP, my vocabulary slice [v0, v0 + vl) of every row, around two all-reduces
 * of the caller's (step.c's ce_tp): mx[rows] <- my rows' max (then all-reduce max);
 * st[rows][2] <- sum of exp(l - mx) and the target's logit where my slice has it, else 0 (then
 * all-reduce sum); then the loss per row, its sum, and the gradient in place. */
int lcm_ce_tp_max(const float *logits, int rows, int vl, double *mx, void *stream);
int lcm_ce_tp_sum(const float *logits, const int32_t *targets, int rows, int vl, int v0, const double *mx, double *st,
                  void *stream);
int lcm_ce_tp_finish(float *logits, const int32_t *targets, int rows, int vl, int v0, const double *mx,
                     const double *st, int grad, float dscale, double *loss_row, double *loss, void *stream);
/* AdamW over [0, n) with one weight decay (the caller splits the no-decay ranges, as
 * lc_adamw_step does); bc1, bc2 = 1 - beta^t */
int lcm_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float grad_mul, float wd, float b1,
              float b2, float eps, float bc1, float bc2, void *stream);
/* *norm (device, one double) = sqrt(sum g^2) in double; partial[] holds
 * lcm_norm_partials(n) doubles */
size_t lcm_norm_partials(size_t n);
int lcm_global_norm(const float *g, size_t n, double *partial, double *norm, void *stream);

/* ---- the GEMM seam (gemm_gpu.cu): cuBLASLt on a GPU, a CPU loop in the emulated build ----
 * Row-major C[M, N] = (acc ? C + : ) op(A)[M, K] op(B)[K, N]: op(A) = A [M, K] (lda) or, with
 * ta, the transpose of A stored [K, M]; likewise B. Operands fp32 or (bf16) bf16 bits;
 * accumulation and C fp32. A plan per shape is made on first use (no allocation after). */
typedef struct lcm_blas lcm_blas; /* the handle: cuBLASLt, the plans, the workspace */
lcm_blas *lcm_blas_create(size_t workspace_bytes);
void lcm_blas_destroy(lcm_blas *g);
const char *lcm_blas_error(const lcm_blas *g);
int lcm_gemm(lcm_blas *g, int ta, int tb, int M, int N, int K, const void *A, int lda, const void *B, int ldb,
             float *C, int ldc, int acc, int bf16, void *stream);

#ifdef __cplusplus
}
#endif
#endif
