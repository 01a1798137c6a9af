/* The GPU's device table (src/model/device.h, include/longctx/model_gpu.h): the model's step
 * on one CUDA stream. The memory-bound layers are layers_gpu.cu's kernels, the linear layers
 * cuBLASLt through the GEMM seam (fp32 without TF32, or bf16 operands with fp32
 * accumulation), attention the GPU ring over the NVSHMEM world (or NCCL). Built by nvcc for
 * lc_model_gpu, and by the host compiler with LCG_EMU (tests/gpu/emu/test_device_emu.cc), where
 * memory is host memory, the kernels run on CPU threads and the GEMMs are CPU loops: the
 * same table then runs the whole model step against the CPU model's, with the host's
 * attention in place of the ring.
 *
 * bf16: the GEMMs take bf16 operands. The weights are packed once a step (weights_bf16) into
 * the model's weight copy (2 bytes a parameter); the linear ops still get them at their params
 * address (W() of step.c), and a GEMM operand inside the parameters is read from the copy at the
 * same offset. Activations are packed into one of two scratch buffers per GEMM, rounding to
 * nearest even as the CPU's bf16 GEMMs do. */
#ifndef LCG_EMU
#include <cuda_runtime.h>
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/cuda/layers_gpu.h"
extern "C" {
#include "longctx/model_gpu.h"
#include "model/device.h"
#include "model/internal.h"
}

#define LCM_GEMM_WORKSPACE (32u << 20)

namespace {

struct gctx {
    lc_model_device dev; /* first: the device handed to the model is the context's */
    lc_model__dev_ops ops;
    lc_model_gpu_opts o;
    void *stream;
    int own_stream;
    lcm_blas *blas;
    lc_dtype dtype;
    /* scratch, sized at setup */
    uint16_t *a16, *b16; /* bf16 GEMM operands */
    size_t cap16;
    const float *wbase;  /* the parameters whose bf16 copy (w16) this step's GEMMs read, and their count */
    size_t wn;
    uint16_t *w16;
    double *loss_row, *loss;
    double *norm_part; /* the gradient norm's partial sums, lcm_norm_partials(n_params) */
    size_t n_params;
    int32_t *count_h, *by_h, *ids_h, *starts_h; /* the embedding's index, host and device */
    int32_t *by_d, *ids_d, *starts_d;
    int rows, vocab;
    int32_t *pos_d;  /* my rows' global positions (the ring's q_pos and k_pos) */
    float *o32;      /* bf16: the ring's fp32 output and its backward's O */
    size_t att_n, kv_n; /* elements of my rows' attention output (and q), and of k or v */
    size_t scratch_bytes;
#ifndef LCG_EMU
    lc_gpu_ring *ring;
#endif
    int *ring_pes; /* the CP team's PEs in the GPU world */
    char err[512];
};

thread_local char g_create_err[256];

int fail(gctx *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int fail(gctx *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- memory: cudaMalloc on a GPU, the heap under the emulator ---- */
#ifndef LCG_EMU
#define S_ ((cudaStream_t)c->stream)
int cu(gctx *c, cudaError_t e, const char *what)
{
    return e == cudaSuccess ? LC_OK : fail(c, LC_ERR_SYS, "%s: %s", what, cudaGetErrorString(e));
}
void *raw_alloc(size_t bytes)
{
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 64) != cudaSuccess) return NULL;
    if (cudaMemset(p, 0, bytes) != cudaSuccess) {
        cudaFree(p);
        return NULL;
    }
    return p;
}
void raw_free(void *p) { cudaFree(p); }
#else
void *raw_alloc(size_t bytes)
{
    bytes = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p) memset(p, 0, bytes ? bytes : 64);
    return p;
}
void raw_free(void *p) { free(p); }
#endif

gctx *C(void *ctx) { return (gctx *)ctx; }

void *alloc(void *ctx, size_t bytes)
{
    (void)ctx;
    return raw_alloc(bytes);
}
void release(void *ctx, void *p)
{
    (void)ctx;
    if (p) raw_free(p);
}
int upload(void *ctx, void *dst, const void *src_h, size_t bytes)
{
    gctx *c = C(ctx);
    if (!bytes) return LC_OK;
#ifndef LCG_EMU
    return cu(c, cudaMemcpyAsync(dst, src_h, bytes, cudaMemcpyHostToDevice, S_), "upload");
#else
    (void)c;
    memcpy(dst, src_h, bytes);
    return LC_OK;
#endif
}
int download(void *ctx, void *dst_h, const void *src, size_t bytes)
{
    gctx *c = C(ctx);
    if (!bytes) return LC_OK;
#ifndef LCG_EMU
    int rc = cu(c, cudaMemcpyAsync(dst_h, src, bytes, cudaMemcpyDeviceToHost, S_), "download");
    return rc ? rc : cu(c, cudaStreamSynchronize(S_), "download: stream");
#else
    (void)c;
    memcpy(dst_h, src, bytes);
    return LC_OK;
#endif
}
int copy(void *ctx, void *dst, const void *src, size_t bytes)
{
    gctx *c = C(ctx);
    if (!bytes || dst == src) return LC_OK;
#ifndef LCG_EMU
    return cu(c, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, S_), "copy");
#else
    (void)c;
    memmove(dst, src, bytes);
    return LC_OK;
#endif
}
int zero(void *ctx, void *p, size_t bytes)
{
    gctx *c = C(ctx);
    if (!bytes) return LC_OK;
#ifndef LCG_EMU
    return cu(c, cudaMemsetAsync(p, 0, bytes, S_), "zero");
#else
    (void)c;
    memset(p, 0, bytes);
    return LC_OK;
#endif
}
int copy_rows(void *ctx, void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t rows)
{
    gctx *c = C(ctx);
    if (!rows || !width) return LC_OK;
#ifndef LCG_EMU
    return cu(c, cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, rows, cudaMemcpyDeviceToDevice, S_), "copy_rows");
#else
    (void)c;
    for (size_t i = 0; i < rows; i++) memcpy((char *)dst + i * dpitch, (const char *)src + i * spitch, width);
    return LC_OK;
#endif
}

/* ---- the bf16 packing kernels: lc_model__f2bf's rounding (to nearest even, NaN kept) ---- */
/* mode 0: x -> bf16 bits in out16; 1: bf16 bits in16 -> out32; 2: x rounded in place */
__global__ void bf16_kernel(const float *x, uint16_t *out16, const uint16_t *in16, float *out32, size_t n, int mode)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        if (mode == 0) out16[i] = lc_model__f2bf(x[i]);
        else if (mode == 1) out32[i] = lc_model__bf2f(in16[i]);
        else out32[i] = lc_model__bf2f(lc_model__f2bf(out32[i]));
    }
}

#ifndef LCG_EMU
#define LAUNCH(grid, threads, kernel, ...) kernel<<<(grid), (threads), 0, S_>>>(__VA_ARGS__)
#define THREADS 256
#define MAX_GRID (65535u * 16)
int launched(gctx *c, const char *what) { return cu(c, cudaGetLastError(), what); }
#else
#define LAUNCH(grid, threads, kernel, ...) emu_launch((grid), 1, (threads), 0, [&] { kernel(__VA_ARGS__); })
#define THREADS 32
#define MAX_GRID 4u /* a CPU thread per emulated thread: few, each striding */
int launched(gctx *, const char *) { return LC_OK; }
#endif

int bf16_op(gctx *c, const float *x, uint16_t *o16, const uint16_t *i16, float *o32, size_t n, int mode)
{
    if (!n) return LC_OK;
    size_t b = (n + THREADS - 1) / THREADS;
    unsigned grid = (unsigned)(b < MAX_GRID ? b : MAX_GRID); /* grid-stride beyond */
    LAUNCH(grid, THREADS, bf16_kernel, x, o16, i16, o32, n, mode);
    return launched(c, "bf16 packing kernel");
}
int round_bf16(void *ctx, float *x, size_t n) { return bf16_op(C(ctx), NULL, NULL, NULL, x, n, 2); }
int to_bf16(void *ctx, const float *x, size_t n, uint16_t *out) { return bf16_op(C(ctx), x, out, NULL, NULL, n, 0); }
int from_bf16(void *ctx, const uint16_t *x, size_t n, float *out)
{
    return bf16_op(C(ctx), NULL, NULL, x, out, n, 1);
}

/* ---- the layers ---- */
int kern(gctx *c, int e, const char *what)
{
    return e ? fail(c, LC_ERR_SYS, "%s kernel: CUDA error %d", what, e) : LC_OK;
}
int embed_fwd(void *ctx, const float *emb, const int32_t *tok, int rows, int dim, float *out)
{
    gctx *c = C(ctx);
    return kern(c, lcm_embed_fwd(emb, tok, rows, dim, out, c->stream), "embedding");
}
int embed_bwd(void *ctx, float *demb, const int32_t *tok, const int32_t *tok_h, int rows, int dim, int vocab,
              const float *dout)
{
    gctx *c = C(ctx);
    (void)tok;
    if (rows > c->rows || vocab > c->vocab)
        return fail(c, LC_ERR_ARG, "embedding backward: %d rows, vocabulary %d exceed the setup's %d, %d", rows, vocab,
                    c->rows, c->vocab);
    int n = lcm_embed_index(tok_h, rows, vocab, c->count_h, c->by_h, c->ids_h, c->starts_h);
    if (n < 0) return fail(c, LC_ERR_ARG, "embedding backward: a token outside [0, %d)", vocab);
    int rc = upload(c, c->by_d, c->by_h, sizeof(int32_t) * (size_t)rows);
    if (!rc) rc = upload(c, c->ids_d, c->ids_h, sizeof(int32_t) * (size_t)n);
    if (!rc) rc = upload(c, c->starts_d, c->starts_h, sizeof(int32_t) * (size_t)(n + 1));
    if (rc) return rc;
    return kern(c, lcm_embed_bwd(demb, c->by_d, c->ids_d, c->starts_d, n, dim, dout, c->stream), "embedding backward");
}
int rmsnorm_fwd(void *ctx, const float *x, const float *w, int rows, int dim, float eps, float *out, float *rstd)
{
    gctx *c = C(ctx);
    return kern(c, lcm_rmsnorm_fwd(x, w, rows, dim, eps, out, rstd, c->stream), "RMSNorm");
}
int rmsnorm_bwd(void *ctx, const float *x, const float *w, const float *rstd, const float *dout, int rows, int dim,
                int accumulate, float *dx, float *dw)
{
    gctx *c = C(ctx);
    return kern(c, lcm_rmsnorm_bwd(x, w, rstd, dout, rows, dim, accumulate, dx, dw, c->stream), "RMSNorm backward");
}
/* The table is made on the host by the CPU's own function (bit for bit the CPU model's
 * angles) and uploaded: it changes only at create. */
int rope_table(void *ctx, const int32_t *pos_h, int rows, int hd, float theta, float *cos_t, float *sin_t)
{
    gctx *c = C(ctx);
    size_t n = (size_t)rows * (size_t)(hd / 2);
    float *h = (float *)malloc(sizeof(float) * 2 * (n ? n : 1));
    if (!h) return fail(c, LC_ERR_SYS, "RoPE table: out of host memory");
    lc_model__rope_table(pos_h, rows, hd, theta, h, h + n);
    int rc = upload(c, cos_t, h, sizeof(float) * n);
    if (!rc) rc = upload(c, sin_t, h + n, sizeof(float) * n);
#ifndef LCG_EMU
    if (!rc) rc = cu(c, cudaStreamSynchronize(S_), "RoPE table upload"); /* h is freed next */
#endif
    free(h);
    return rc;
}
int rope_apply(void *ctx, float *x, int rows, int heads, int hd, const float *cos_t, const float *sin_t, int inverse)
{
    gctx *c = C(ctx);
    return kern(c, lcm_rope_apply(x, rows, heads, hd, cos_t, sin_t, inverse, c->stream), "RoPE");
}
int swiglu_fwd(void *ctx, const float *h, int rows, int ffn, float *act)
{
    gctx *c = C(ctx);
    return kern(c, lcm_swiglu_fwd(h, rows, ffn, act, c->stream), "SwiGLU");
}
int swiglu_bwd(void *ctx, const float *h, float *dh, float *act, int rows, int ffn)
{
    gctx *c = C(ctx);
    return kern(c, lcm_swiglu_bwd(h, dh, act, rows, ffn, c->stream), "SwiGLU backward");
}

/* A GEMM operand for cuBLASLt: fp32 as it is; in bf16 the packed weights where p is one,
 * else p packed into scratch buffer slot (0 or 1). */
int operand(gctx *c, const float *p, size_t n, int bf16, int slot, const void **out)
{
    *out = p;
    if (!bf16) return LC_OK;
    if (c->wbase && p >= c->wbase && p < c->wbase + c->wn) {
        *out = c->w16 + (p - c->wbase);
        return LC_OK;
    }
    if (n > c->cap16)
        return fail(c, LC_ERR_ARG, "bf16 GEMM operand of %zu elements exceeds the setup's %zu", n, c->cap16);
    uint16_t *d = slot ? c->b16 : c->a16;
    *out = d;
    return bf16_op(c, p, d, NULL, NULL, n, 0);
}
int gemm(gctx *c, int ta, int tb, int M, int N, int K, const float *A, size_t na, int lda, const float *B, size_t nb,
         int ldb, float *Cm, int ldc, int acc, int bf16)
{
    const void *a, *b;
    int rc = operand(c, A, na, bf16, 0, &a);
    if (!rc) rc = operand(c, B, nb, bf16, 1, &b);
    if (rc) return rc;
    if (lcm_gemm(c->blas, ta, tb, M, N, K, a, lda, b, ldb, Cm, ldc, acc, bf16, c->stream))
        return fail(c, LC_ERR_SYS, "GEMM %dx%dx%d: %s", M, N, K, lcm_blas_error(c->blas));
    return LC_OK;
}
int linear_fwd(void *ctx, const float *x, const float *w, int rows, int in, int out, float *y, int acc, int bf16)
{
    size_t R = (size_t)rows, I = (size_t)in, O = (size_t)out;
    return gemm(C(ctx), 0, 1, rows, out, in, x, R * I, in, w, O * I, in, y, out, acc, bf16);
}
int linear_bwd_dx(void *ctx, const float *dy, const float *w, int rows, int in, int out, float *dx, int ldx, int acc,
                  int bf16)
{
    size_t R = (size_t)rows, I = (size_t)in, O = (size_t)out;
    return gemm(C(ctx), 0, 0, rows, in, out, dy, R * O, out, w, O * I, in, dx, ldx, acc, bf16);
}
int linear_bwd_dw(void *ctx, const float *dy, const float *x, int rows, int in, int out, float *dw, int bf16)
{
    size_t R = (size_t)rows, I = (size_t)in, O = (size_t)out;
    return gemm(C(ctx), 1, 0, out, in, rows, dy, R * O, out, x, R * I, in, dw, in, 1, bf16);
}
int weights_bf16(void *ctx, const float *params, void *copy, size_t n, const float **base)
{
    gctx *c = C(ctx);
    c->wbase = params, c->wn = n, c->w16 = (uint16_t *)copy;
    *base = params; /* the GEMMs take the weights at their params address and find the copy */
    return bf16_op(c, params, c->w16, NULL, NULL, n, 0);
}
int ce(void *ctx, float *logits, const int32_t *tgt, int rows, int vocab, int grad, float dscale, double *sum_h)
{
    gctx *c = C(ctx);
    if (rows > c->rows) return fail(c, LC_ERR_ARG, "cross-entropy: %d rows exceed the setup's %d", rows, c->rows);
    int rc = kern(c, lcm_ce_fwd_bwd(logits, tgt, rows, vocab, grad, dscale, c->loss_row, c->loss, c->stream),
                  "cross-entropy");
    return rc ? rc : download(c, sum_h, c->loss, sizeof(double));
}

/* ---- attention: the GPU ring over the world (the CP team) ---- */
#ifndef LCG_EMU
int ring_fail(gctx *c, int rc, const char *what) { return fail(c, rc, "%s: %s", what, lc_gpu_last_error()); }
#endif
int attn_fwd(void *ctx, lc_cp *cp, const void *q, const void *k, const void *v, const int32_t *doc, void *out,
             float *lse)
{
    gctx *c = C(ctx);
    (void)cp;
#ifndef LCG_EMU
    if (!c->ring) return fail(c, LC_ERR_ARG, "attention: the device has no ring (no GPU world was given)");
    int bf = c->dtype == LC_DT_BF16;
    int rc = lc_gpu_ring_fwd(c->ring, q, k, v, c->pos_d, c->pos_d, doc, doc, bf ? c->o32 : (float *)out, lse,
                             c->stream);
    if (rc) return ring_fail(c, rc, "ring forward");
    return bf ? to_bf16(c, c->o32, c->att_n, (uint16_t *)out) : LC_OK;
#else
    (void)q, (void)k, (void)v, (void)doc, (void)out, (void)lse;
    return fail(c, LC_ERR_UNSUPPORTED, "attention: the emulated build has no GPU ring");
#endif
}
/* lc_cp_backward overwrites dq, dk, dv; the ring accumulates into them */
int attn_bwd(void *ctx, lc_cp *cp, const void *q, const void *k, const void *v, const int32_t *doc, const void *out,
             const float *lse, const void *dout, float *dq, float *dk, float *dv)
{
    gctx *c = C(ctx);
    (void)cp;
#ifndef LCG_EMU
    if (!c->ring) return fail(c, LC_ERR_ARG, "attention: the device has no ring (no GPU world was given)");
    int bf = c->dtype == LC_DT_BF16, rc = LC_OK;
    const float *o = (const float *)out;
    if (bf) {
        if ((rc = from_bf16(c, (const uint16_t *)out, c->att_n, c->o32))) return rc;
        o = c->o32;
    }
    if ((rc = zero(c, dq, sizeof(float) * c->att_n)) || (rc = zero(c, dk, sizeof(float) * c->kv_n)) ||
        (rc = zero(c, dv, sizeof(float) * c->kv_n)))
        return rc;
    rc = lc_gpu_ring_bwd(c->ring, q, k, v, c->pos_d, c->pos_d, doc, doc, o, lse, dout, dq, dk, dv, c->stream);
    return rc ? ring_fail(c, rc, "ring backward") : LC_OK;
#else
    (void)q, (void)k, (void)v, (void)doc, (void)out, (void)lse, (void)dout, (void)dq, (void)dk, (void)dv;
    return fail(c, LC_ERR_UNSUPPORTED, "attention: the emulated build has no GPU ring");
#endif
}

int sync(void *ctx)
{
    gctx *c = C(ctx);
#ifndef LCG_EMU
    int rc = cu(c, cudaStreamSynchronize(S_), "step");
    if (!rc) rc = cu(c, cudaGetLastError(), "step");
    if (!rc && c->o.world && (rc = lc_gpu_world_check(c->o.world, c->stream)))
        return fail(c, rc, "step: %s", lc_gpu_world_error(c->o.world));
    return rc;
#else
    (void)c;
    return LC_OK;
#endif
}

/* ---- set-up: the scratch, and the ring (collective over the world) ---- */
void *scratch(gctx *c, size_t bytes)
{
    void *p = raw_alloc(bytes);
    if (p) c->scratch_bytes += bytes;
    return p;
}
void free_scratch(gctx *c)
{
    void *d[] = {c->a16, c->b16, c->loss_row, c->loss, c->by_d, c->ids_d, c->starts_d, c->pos_d, c->o32, c->norm_part};
    for (void *p : d)
        if (p) raw_free(p);
    free(c->count_h), free(c->by_h), free(c->ids_h), free(c->starts_h), free(c->ring_pes);
    c->a16 = c->b16 = NULL, c->loss_row = c->loss = NULL, c->by_d = c->ids_d = c->starts_d = c->pos_d = NULL;
    c->o32 = NULL, c->count_h = c->by_h = c->ids_h = c->starts_h = NULL, c->norm_part = NULL, c->ring_pes = NULL;
    c->scratch_bytes = 0;
}

int setup(void *ctx, const lc_model__dev_setup *s)
{
    gctx *c = C(ctx);
    if (c->rows) return fail(c, LC_ERR_ARG, "this device already serves a model (one device per model)");
    const lc_cp_config *a = s->attn;
    size_t R = (size_t)s->rows;
    c->rows = s->rows, c->vocab = s->vocab, c->dtype = a->dtype;
    c->att_n = R * (size_t)a->hq * (size_t)a->d;
    c->kv_n = R * (size_t)a->hkv * (size_t)a->d;
    c->cap16 = a->dtype == LC_DT_BF16 ? s->max_operand : 0;
    int bf = a->dtype == LC_DT_BF16;
    c->loss_row = (double *)scratch(c, sizeof(double) * R);
    c->loss = (double *)scratch(c, sizeof(double));
    c->n_params = s->n_params;
    c->norm_part = (double *)scratch(c, sizeof(double) * lcm_norm_partials(s->n_params));
    c->by_d = (int32_t *)scratch(c, sizeof(int32_t) * R);
    c->ids_d = (int32_t *)scratch(c, sizeof(int32_t) * R);
    c->starts_d = (int32_t *)scratch(c, sizeof(int32_t) * (R + 1));
    c->pos_d = (int32_t *)scratch(c, sizeof(int32_t) * R);
    c->count_h = (int32_t *)calloc((size_t)s->vocab, sizeof(int32_t));
    c->by_h = (int32_t *)calloc(R, sizeof(int32_t));
    c->ids_h = (int32_t *)calloc(R, sizeof(int32_t));
    c->starts_h = (int32_t *)calloc(R + 1, sizeof(int32_t));
    if (bf) {
        c->a16 = (uint16_t *)scratch(c, 2 * c->cap16);
        c->b16 = (uint16_t *)scratch(c, 2 * c->cap16);
        c->o32 = (float *)scratch(c, sizeof(float) * c->att_n);
    }
    if (!c->loss_row || !c->loss || !c->norm_part || !c->by_d || !c->ids_d || !c->starts_d || !c->pos_d || !c->count_h || !c->by_h ||
        !c->ids_h || !c->starts_h || (bf && (!c->a16 || !c->b16 || !c->o32))) {
        free_scratch(c);
        return fail(c, LC_ERR_SYS, "out of memory for the device's scratch (%zu bf16 operand elements)", c->cap16);
    }
    int rc = upload(c, c->pos_d, s->pos_h, sizeof(int32_t) * R);
    if (rc) return rc;
#ifndef LCG_EMU
    if (!c->o.world && !c->o.nccl) return LC_OK; /* a caller that brings its own attention (tests) */
    int two = a->plan.lowering == LC_LOWER_TWO_SIDED;
    /* the ring's PEs: the CP team's, as PEs of the GPU world, which numbers them as the host
     * world does (a DP x CP mesh has one ring per replica in the one world) */
    int T = lc_team_n_pes(s->cp_team), wme = lc_team_my_pe(lc_team_world(lc_team_get_world(s->cp_team)));
    int wn = two ? (c->o.nccl ? lc_gpu_nccl_size(c->o.nccl) : -1) : (c->o.world ? lc_gpu_n_pes(c->o.world) : -1);
    int gme = two ? (c->o.nccl ? lc_gpu_nccl_rank(c->o.nccl) : -1) : (c->o.world ? lc_gpu_my_pe(c->o.world) : -1);
    if (two ? wn != T || gme != lc_team_my_pe(s->cp_team) : gme != wme || T > wn)
        return fail(c, LC_ERR_ARG,
                    "the GPU %s has %d PEs and this PE is %d there, but the host world has it as PE %d and the CP "
                    "team has %d PEs: the GPU world must number the PEs as the host world does%s",
                    two ? "NCCL communicator" : "world", wn, gme, wme, T,
                    two ? " (two-sided: the communicator is the CP team)" : "");
    c->ring_pes = (int *)malloc(sizeof(int) * (size_t)T);
    if (!c->ring_pes) return fail(c, LC_ERR_SYS, "out of memory");
    for (int r = 0; r < T; r++)
        c->ring_pes[r] = lc_team_translate_pe(s->cp_team, r, lc_team_world(lc_team_get_world(s->cp_team)));
    lc_gpu_ring_opts ro;
    memset(&ro, 0, sizeof ro);
    ro.world = c->o.world, ro.nccl = c->o.nccl, ro.s_local = s->rows, ro.hq = a->hq, ro.hkv = a->hkv, ro.d = a->d;
    ro.dtype = a->dtype, ro.scale = a->scale, ro.mask_kind = a->mask, ro.window = a->window;
    ro.lowering = two ? LC_LOWER_TWO_SIDED : LC_LOWER_ONE_SIDED;
    ro.use_graph = c->o.use_graph, ro.engine = c->o.engine, ro.layout = a->plan.layout, ro.s_global = s->seq_len;
    if (!two && T < wn) ro.ring_pes = c->ring_pes, ro.n_ring = T;
    if ((rc = lc_gpu_ring_create(&ro, &c->ring))) {
        c->ring = NULL;
        return ring_fail(c, rc, "the GPU ring");
    }
#endif
    return LC_OK;
}

void teardown(void *ctx)
{
    gctx *c = C(ctx);
#ifndef LCG_EMU
    if (c->ring) lc_gpu_ring_destroy(c->ring);
    c->ring = NULL;
#endif
    free_scratch(c);
    c->rows = 0;
}

const char *err(void *ctx) { return C(ctx)->err; }

/* 128 Mi floats (512 MiB) of logits per LM-head chunk: at Llama 3's vocabulary about 1000 rows
 * per GEMM, where the host's 8 Mi gives 65 */
const lc_model__dev_ops g_ops = {
    "cuda", (size_t)128 << 20, 2, setup, teardown, err, alloc, release, upload, download, copy, zero, copy_rows,
    embed_fwd, embed_bwd, rmsnorm_fwd, rmsnorm_bwd, rope_table, rope_apply, swiglu_fwd, swiglu_bwd,
    round_bf16, to_bf16, from_bf16, linear_fwd, linear_bwd_dx, linear_bwd_dw, weights_bf16, ce,
    attn_fwd, attn_bwd, sync,
};

} // namespace

extern "C" const char *lc_model_gpu_last_error(void) { return g_create_err; }

extern "C" int lc_model_gpu_device_create(const lc_model_gpu_opts *opts, lc_model_device **out)
{
    if (!out) return LC_ERR_ARG;
    *out = NULL;
    gctx *c = (gctx *)calloc(1, sizeof *c);
    if (!c) {
        snprintf(g_create_err, sizeof g_create_err, "lc_model_gpu_device_create: out of memory");
        return LC_ERR_SYS;
    }
    if (opts) c->o = *opts;
    c->stream = c->o.stream;
#ifndef LCG_EMU
    if (!c->stream) {
        cudaStream_t st;
        cudaError_t e = cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
        if (e != cudaSuccess) {
            snprintf(g_create_err, sizeof g_create_err, "lc_model_gpu_device_create: cudaStreamCreate: %s",
                     cudaGetErrorString(e));
            free(c);
            return LC_ERR_SYS;
        }
        c->stream = st, c->own_stream = 1;
    }
#endif
    if (!(c->blas = lcm_blas_create(LCM_GEMM_WORKSPACE))) {
        snprintf(g_create_err, sizeof g_create_err, "lc_model_gpu_device_create: the cuBLASLt handle could not be made");
        lc_model_gpu_device_destroy(&c->dev);
        return LC_ERR_SYS;
    }
    c->ops = g_ops;
    if (c->o.host_attention) {
#ifdef LCG_EMU
        c->ops.attn_fwd = lc_model__host_device()->ops->attn_fwd;
        c->ops.attn_bwd = lc_model__host_device()->ops->attn_bwd;
#else
        snprintf(g_create_err, sizeof g_create_err,
                 "lc_model_gpu_device_create: host_attention is for the emulated build (device memory is not the host's)");
        lc_model_gpu_device_destroy(&c->dev);
        return LC_ERR_ARG;
#endif
    }
    c->dev.ops = &c->ops;
    c->dev.ctx = c;
    *out = &c->dev;
    return LC_OK;
}

extern "C" void lc_model_gpu_device_destroy(lc_model_device *d)
{
    if (!d) return;
    gctx *c = (gctx *)d; /* dev is the context's first member */
    free_scratch(c);
    lcm_blas_destroy(c->blas);
#ifndef LCG_EMU
    if (c->own_stream) cudaStreamDestroy((cudaStream_t)c->stream);
#endif
    free(c);
}

extern "C" size_t lc_model_gpu_scratch_bytes(const lc_model_device *d) { return d ? ((const gctx *)d)->scratch_bytes : 0; }
extern "C" lc_gpu_stream lc_model_gpu_stream(const lc_model_device *d) { return d ? ((const gctx *)d)->stream : NULL; }

extern "C" int lc_model_gpu_adamw(const lc_model_device *d, float *p, const float *g, float *m, float *v, size_t n,
                                  float lr, float grad_mul, float wd, float b1, float b2, float eps, float bc1, float bc2)
{
    const gctx *c = (const gctx *)d;
    return lcm_adamw(p, g, m, v, n, lr, grad_mul, wd, b1, b2, eps, bc1, bc2, c->stream) ? LC_ERR_SYS : LC_OK;
}

extern "C" int lc_model_gpu_norm(const lc_model_device *d, const float *g, size_t n, double *norm_h)
{
    gctx *c = (gctx *)d;
    if (!c->norm_part || n > c->n_params) return LC_ERR_ARG; /* before the model's setup, or too long */
    if (lcm_global_norm(g, n, c->norm_part, c->loss, c->stream)) return LC_ERR_SYS;
    return download(c, norm_h, c->loss, sizeof(double));
}
