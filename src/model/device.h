/* Where a model's tensors live and what runs its layers: the one seam between the decoder's
 * step (step.c, model.c) and the memory that holds it. The host's table (device_cpu.c) calls
 * the CPU layers, BLAS and lc_cp as they always have; a GPU's (src/model/cuda/device_gpu.cu)
 * calls the CUDA kernels, cuBLASLt and the GPU ring on one stream. step.c is written once
 * over this table, so the CPU and GPU models are the same layer list, not two copies of it.
 *
 * Every pointer an op takes is in the table's memory unless named host (_h). Ops return
 * LC_OK or a negative lc_status and leave the reason in the table's err(). Ops are ordered
 * (a stream on a GPU): only download and the loss return after their result exists. */
#ifndef LONGCTX_MODEL_DEVICE_H
#define LONGCTX_MODEL_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "longctx/model.h"

/* What the model tells its device once at create, for sizing the device's own scratch and
 * its attention (the CP plan, with this PE's heads). */
typedef struct {
    int rows, dim, vocab, max_cols; /* max_cols: the widest layer activation row */
    size_t max_operand;             /* elements of the largest activation a GEMM reads */
    size_t n_params;                /* the parameters' floats (the bf16 weight copy) */
    lc_cp *cp;                      /* the host plan: layout, positions, shards */
    const lc_cp_config *attn;       /* the attention the plan runs (heads, dtype, mask) */
    lc_team *cp_team;
    int64_t seq_len;
    const int32_t *pos_h;           /* [rows] my rows' global positions */
} lc_model__dev_setup;

typedef struct lc_model__dev_ops {
    const char *name; /* "cpu", "cuda" */
    size_t logits_max; /* floats of one LM-head chunk of logits: small on a CPU (cache, RAM), big
                          enough on a GPU that the head's GEMMs are not a few rows each */
    int wcopy_bytes;   /* bytes per parameter of bf16 compute's weight copy */
    int (*setup)(void *ctx, const lc_model__dev_setup *s); /* collective (the attention) */
    void (*teardown)(void *ctx);                            /* collective */
    const char *(*err)(void *ctx);
    /* memory: alloc is zeroed and 64-byte aligned (NULL: out of memory) */
    void *(*alloc)(void *ctx, size_t bytes);
    void (*release)(void *ctx, void *p);
    int (*upload)(void *ctx, void *dst, const void *src_h, size_t bytes);
    int (*download)(void *ctx, void *dst_h, const void *src, size_t bytes); /* waits */
    int (*copy)(void *ctx, void *dst, const void *src, size_t bytes);
    int (*zero)(void *ctx, void *p, size_t bytes);
    /* rows of width bytes, from src with row pitch spitch to dst with pitch dpitch */
    int (*copy_rows)(void *ctx, void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                     size_t rows);
    /* the layers (layers.c's contracts) */
    int (*embed_fwd)(void *ctx, const float *emb, const int32_t *tok, int rows, int dim, float *out);
    /* tok_h: the same tokens on the host (a GPU groups the rows by id there) */
    int (*embed_bwd)(void *ctx, float *demb, const int32_t *tok, const int32_t *tok_h, int rows, int dim,
                     int vocab, const float *dout);
    int (*rmsnorm_fwd)(void *ctx, const float *x, const float *w, int rows, int dim, float eps, float *out,
                       float *rstd);
    int (*rmsnorm_bwd)(void *ctx, const float *x, const float *w, const float *rstd, const float *dout, int rows,
                       int dim, int accumulate, float *dx, float *dw);
    int (*rope_table)(void *ctx, const int32_t *pos_h, int rows, int hd, float theta, float *cos_t, float *sin_t);
    int (*rope_apply)(void *ctx, float *x, int rows, int heads, int hd, const float *cos_t, const float *sin_t,
                      int inverse);
    int (*swiglu_fwd)(void *ctx, const float *h, int rows, int ffn, float *act);
    int (*swiglu_bwd)(void *ctx, const float *h, float *dh, float *act, int rows, int ffn);
    /* bf16: values rounded in place; packed to bf16 bits and back */
    int (*round_bf16)(void *ctx, float *x, size_t n);
    int (*to_bf16)(void *ctx, const float *x, size_t n, uint16_t *out);
    int (*from_bf16)(void *ctx, const uint16_t *x, size_t n, float *out);
    /* the linear layers (linear.c's contracts); bf16: the operands hold bf16 values */
    int (*linear_fwd)(void *ctx, const float *x, const float *w, int rows, int in, int out, float *y, int acc,
                      int bf16);
    int (*linear_bwd_dx)(void *ctx, const float *dy, const float *w, int rows, int in, int out, float *dx, int ldx,
                         int acc, int bf16);
    int (*linear_bwd_dw)(void *ctx, const float *dy, const float *x, int rows, int in, int out, float *dw,
                         int bf16);
    /* bf16: the weights the GEMMs read this step, made once a step from params into copy
     * (wcopy_bytes x n); *base: the pointer the linear ops get the weights at (the copy itself
     * on the host; params on a GPU, whose GEMMs find the copy by the offset) */
    int (*weights_bf16)(void *ctx, const float *params, void *copy, size_t n, const float **base);
    /* cross-entropy in place (lc_model__ce_fwd_bwd); *sum_h: the rows' loss sum, on the host */
    int (*ce)(void *ctx, float *logits, const int32_t *tgt, int rows, int vocab, int grad, float dscale,
              double *sum_h);
    /* attention over the CP team (lc_cp_forward / lc_cp_backward's contracts; cp is the
     * model's plan, which a device's own ring may ignore; doc: my rows' document ids) */
    int (*attn_fwd)(void *ctx, lc_cp *cp, const void *q, const void *k, const void *v, const int32_t *doc, void *out,
                    float *lse);
    int (*attn_bwd)(void *ctx, lc_cp *cp, const void *q, const void *k, const void *v, const int32_t *doc, const void *out,
                    const float *lse, const void *dout, float *dq, float *dk, float *dv);
    int (*sync)(void *ctx); /* waits for every op so far (timings, the end of a step) */
} lc_model__dev_ops;

struct lc_model_device {
    const lc_model__dev_ops *ops;
    void *ctx;
};

/* The host: the CPU layers, BLAS (oneDNN for bf16 where it runs) and the model's lc_cp. */
const lc_model_device *lc_model__host_device(void);

#endif
