/* Private to src/model: the model struct and the per-layer forward/backward kernels, each
 * callable on its own so the tests can check every layer against finite differences. */
#ifndef LONGCTX_MODEL_INTERNAL_H
#define LONGCTX_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "longctx/model.h"

/* ---- per-layer kernels (rows are this PE's local rows; all fp32 row-major) ---- */

/* out[i] = emb[tok[i]] */
void lc_model__embed_fwd(const float *emb, const int32_t *tok, int rows, int dim, float *out);
/* demb[tok[i]] += dout[i] */
void lc_model__embed_bwd(float *demb, const int32_t *tok, int rows, int dim, const float *dout);

/* RMSNorm (transformers' LlamaRMSNorm): out = w * x / sqrt(mean(x^2) + eps); rstd[i] saved. */
void lc_model__rmsnorm_fwd(const float *x, const float *w, int rows, int dim, float eps,
                           float *out, float *rstd);
/* dx (+= when accumulate) and dw (+=) from dout, x and the saved rstd. */
void lc_model__rmsnorm_bwd(const float *x, const float *w, const float *rstd, const float *dout,
                           int rows, int dim, int accumulate, float *dx, float *dw);

/* RoPE tables for local rows: cos/sin [rows, hd/2] at the rows' global positions. Angles are
 * (float)pos * inv_freq in fp32 (transformers' convention), cos/sin evaluated in double. */
void lc_model__rope_table(const int32_t *pos, int rows, int hd, float theta, float *cos_t,
                          float *sin_t);
/* In place on x [rows, heads, hd]: rotate_half convention. inverse = 1 applies R^T (backward). */
void lc_model__rope_apply(float *x, int rows, int heads, int hd, const float *cos_t,
                          const float *sin_t, int inverse);

/* SwiGLU on h [rows, 2*ffn] = [gate | up] per row: act = silu(gate) * up, act [rows, ffn]. */
void lc_model__swiglu_fwd(const float *h, int rows, int ffn, float *act);
/* In: dact in the up half of dh ([rows, 2*ffn], columns ffn..2ffn). Out: dh = [dgate | dup]
 * and act = silu(gate) * up (as the forward computes it). */
void lc_model__swiglu_bwd(const float *h, float *dh, float *act, int rows, int ffn);

/* Cross-entropy on logits [rows, vocab] in place: returns the sum over rows whose target is
 * >= 0 of -log softmax[target]; with grad the logits are overwritten with
 * dscale * (softmax - onehot) (0 for ignored rows). */
double lc_model__ce_fwd_bwd(float *logits, const int32_t *targets, int rows, int vocab,
                            int grad, float dscale);

/* Linear layers through BLAS (y = x W^T with W [out, in]). bf16: xb/wb are the bf16-rounded
 * operands (the caller rounds); the product accumulates in fp32. */
void lc_model__linear_fwd(const float *x, const float *w, int rows, int in, int out, float *y,
                          int accumulate);
/* dx (+= when accumulate) = dy W ; dw += dy^T x */
void lc_model__linear_bwd_dx(const float *dy, const float *w, int rows, int in, int out,
                             float *dx, int accumulate);
/* The same with a row stride ldx >= in for dx (writes into a wider buffer's columns). */
void lc_model__linear_bwd_dx_ld(const float *dy, const float *w, int rows, int in, int out,
                                float *dx, int ldx);
void lc_model__linear_bwd_dw(const float *dy, const float *x, int rows, int in, int out,
                             float *dw);
int lc_model__blas_init(void); /* loads OpenBLAS once; -1: lc_model_blas_info says why */
void lc_model__blas_threads(int n);
void lc_model__round_bf16(float *x, size_t n); /* in place: values become bf16-representable */

/* lc_f32_to_bf16 / lc_bf16_to_f32 (attn.h) bit for bit, inline and branch-free: the model's
 * loops over whole activations (rounding, GEMM operand packing) vectorize with these, where a
 * call per element into the attention layer took 8% of a bf16 step. The GPU's packing kernels
 * (src/model/cuda/device_gpu.cu) call the same two. */
#ifdef __CUDACC__
#define LC_MODEL_HD __host__ __device__
#else
#define LC_MODEL_HD
#endif
static inline LC_MODEL_HD uint16_t lc_model__f2bf(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    uint32_t nan = (u & 0x7fffffffu) > 0x7f800000u;
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)(nan ? ((u >> 16) | 0x40u) : r);
}
/* For the loops over whole arrays that use them: vectorized, in the widest ISA the CPU has
 * (the library is built for baseline x86-64; ifunc picks the clone at load time). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LC_MODEL_VEC_LOOP __attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3")))
#else
#define LC_MODEL_VEC_LOOP
#endif
static inline LC_MODEL_HD float lc_model__bf2f(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* gemm_bf16.c: bf16 GEMMs through oneDNN where the CPU has native bf16 kernels. A model's
 * context holds the packed operand copies (max_operand elements each) and the primitives of
 * its shapes. lc_model__gemm16 computes C[M,N] (ldc; + C when acc) = op(A) op(B) from fp32
 * operands holding bf16 values; -1 when it cannot (too large, no primitive): use sgemm. */
typedef struct lc_gemm16 lc_gemm16;
int lc_model__gemm16_available(void);
const char *lc_model__gemm16_info(void);
lc_gemm16 *lc_model__gemm16_create(size_t max_operand);
void lc_model__gemm16_destroy(lc_gemm16 *g);
void lc_model__gemm16_threads(lc_gemm16 *g, int n);
int lc_model__gemm16(lc_gemm16 *g, int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                     int ldb, float *C, int ldc, int acc);
/* The linear layers below take their GEMMs to g (NULL: sgemm) on this thread until reset. */
void lc_model__gemm_use(lc_gemm16 *g);
void lc_model__to_bf16(const float *x, size_t n, uint16_t *out);
void lc_model__from_bf16(const uint16_t *x, size_t n, float *out);

/* ---- the model ---- */

#define LC_MODEL__LOGITS_MAX (8u << 20) /* floats of one LM-head chunk of logits */

typedef struct {
    /* parameter offsets (floats) */
    size_t ln1, wqkv, wo, ln2, wgu, wdown;
} lc_model__layer_off;

/* How a tensor is split over the TP team (shard.c). */
enum { LC_MODEL__REPL = 0, LC_MODEL__ROWS = 1, LC_MODEL__COLS = 2 };
typedef struct {
    int kind;         /* REPL: whole on every member; ROWS/COLS: a block of rows/columns */
    int kv;           /* k/v projection: with KV replication member r holds head r / kvrep */
    int64_t full[2];  /* the full HF shape ([dim, 0] for 1-D) */
    int64_t unit;     /* rows (ROWS) or columns (COLS) one member holds */
} lc_model__part;

/* Saved activations of one layer (pointers into the arena; with recompute every layer's
 * pointers except x point at one shared set). */
typedef struct {
    float *x;      /* [rr, dim] layer input (residual stream) */
    float *ln1;    /* [rr, dim] (sp: my shard; its all-gather is remade when needed) */
    float *rstd1;  /* [rr] */
    void *q, *k, *v;   /* [rows, qdim], [rows, kvdim] x2 after RoPE, in the compute dtype */
    void *att;     /* [rows, qdim] attention out, compute dtype */
    float *lse;    /* [rows, n_heads] */
    float *xmid;   /* [rr, dim] x + o_proj(att) */
    float *ln2;    /* [rr, dim] */
    float *rstd2;  /* [rr] */
    float *h;      /* [rows, 2*ffn] gate|up */
} lc_model__acts;

struct lc_model {
    lc_model_config cfg;
    lc_model_run run;
    /* qdim, kvdim, hl, hkvl, ffl, vl: this PE's share under TP (the full sizes without) */
    int hd, qdim, kvdim, me, P;
    int hl, hkvl, ffl, vl, v0; /* local query/KV heads, ffn columns, vocab rows from v0 */
    int T, tr;                 /* TP size and my TP rank (1, 0 without TP) */
    int kvrep;                 /* members holding one KV head (1: no replication) */
    lc_team *tp, *kvteam;      /* TP team (NULL: T = 1); my KV head's replicas (NULL: kvrep 1) */
    lc_model__part *parts;     /* [n_tensors] */
    int rows; /* my real rows */
    /* residual-stream rows: rows, or with sp my shard of rs = ceil(rows / T) rows of the
     * rows padded to rp = rs * T; without sp rs = rp = rows */
    int rr, rs, rp;
    int32_t *pos;     /* [rows] global positions */
    lc_cp *cp;
    lc_world *w;
    const lc_model_device *dev; /* where params, grads and the arena live (device.h) */
    int dev_ready;              /* its setup ran: teardown at destroy */

    /* parameters */
    size_t n_params;
    float *params, *grads;
    int n_tensors;
    lc_model_tensor *tensors;
    char *names; /* storage of the tensor names */
    size_t emb_off, norm_off, lm_off;
    lc_model__layer_off *lo;
    void *wcopy;   /* bf16 compute: the device's copy of params for the GEMMs (NULL in fp32) */
    const float *wbase; /* where W() finds the weights this step: params, or the rounded copy */
    lc_gemm16 *g16; /* bf16 compute with oneDNN's bf16 GEMMs (NULL: sgemm on rounded operands) */

    /* activations arena */
    float *arena;
    size_t arena_floats;
    lc_model__acts *acts; /* [n_layers] */
    float *xlast;         /* [rr, dim] output of the last layer */
    float *xf, *rstdf;    /* final norm output [rr, dim], rstd [rr] */
    float *cos_t, *sin_t; /* [rows, hd/2] */
    int32_t *tok, *tgt, *doc; /* local shards [rows], on the device */
    int32_t *tok_h, *tgt_h, *doc_h; /* the same on the host (the arena's own on the host) */
    int host_shards;                /* tok_h is a host allocation of its own (3 x rows) */
    /* scratch */
    float *qkv;    /* [rows, qdim + 2*kvdim] pre-RoPE projection (also dqkv in backward) */
    float *f_att;  /* [rows, qdim] fp32 copy of att (bf16) / dout of attention */
    float *act;    /* [rows, ffn] */
    float *dres;   /* [rr, dim] gradient of the residual stream */
    float *dtmp;   /* [rp, dim] (also the row-parallel partial sums under TP; pad rows stay 0) */
    float *dfull;  /* sp: [rp, dim] all-gathered dres */
    float *dsh;    /* sp: [rs, dim] one shard (a reduce-scatter's result) */
    float *lnfull; /* sp: [rp, dim] an all-gathered norm output, the input of a GEMM */
    float *gnorm;  /* sp: [(2 * n_layers + 1) * dim] this step's norm-weight grads */
    double *ce;    /* TP: [3 * chunk] the vocab-parallel loss's per-row max, sum-exp, target */
    float *dh;     /* [rows, 2*ffn] */
    float *dq, *dk, *dv; /* fp32 attention grads */
    void *datt;    /* [rows, qdim] dout for attention in compute dtype */
    float *logits; /* [chunk, vocab] */
    int chunk, chunk_alloc; /* LM head rows per chunk (in use, allocated) */
    float *logits_out;      /* lc_model_forward_logits: copy of each chunk's logits, or NULL */

    lc_model_times t;
    char err[512];
};

double lc_model__now(void);
/* Tests: a smaller LM-head chunk so the chunked loss path runs at small shapes. */
void lc_model__set_loss_chunk(lc_model *m, int rows);

#endif
