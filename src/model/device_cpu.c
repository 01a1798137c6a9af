/* The host's device table (device.h): the CPU layers, BLAS and lc_cp, on host memory. Every
 * op is the call step.c made before the seam existed, so the CPU model's arithmetic and speed
 * are what they were. The GEMMs go where lc_model__gemm_use points this thread (oneDNN's bf16
 * or sgemm), as step.c sets it around each call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/device.h"
#include "model/internal.h"

static _Thread_local char g_err[512];

static int setup(void *ctx, const lc_model__dev_setup *s)
{
    (void)ctx, (void)s;
    return LC_OK;
}
static void teardown(void *ctx) { (void)ctx; }
static const char *err(void *ctx)
{
    (void)ctx;
    return g_err;
}

static void *alloc(void *ctx, size_t bytes)
{
    (void)ctx;
    bytes = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p) memset(p, 0, bytes);
    return p;
}
static void release(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}
static int copy(void *ctx, void *dst, const void *src, size_t bytes)
{
    (void)ctx;
    if (dst != src && bytes) memmove(dst, src, bytes);
    return LC_OK;
}
static int zero(void *ctx, void *p, size_t bytes)
{
    (void)ctx;
    if (bytes) memset(p, 0, bytes);
    return LC_OK;
}
static int copy_rows(void *ctx, void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t rows)
{
    (void)ctx;
    for (size_t i = 0; i < rows; i++) memcpy((char *)dst + i * dpitch, (const char *)src + i * spitch, width);
    return LC_OK;
}

static int embed_fwd(void *ctx, const float *emb, const int32_t *tok, int rows, int dim, float *out)
{
    (void)ctx;
    lc_model__embed_fwd(emb, tok, rows, dim, out);
    return LC_OK;
}
static int embed_bwd(void *ctx, float *demb, const int32_t *tok, const int32_t *tok_h, int rows, int dim, int vocab,
                     const float *dout)
{
    (void)ctx, (void)tok_h, (void)vocab;
    lc_model__embed_bwd(demb, tok, rows, dim, dout);
    return LC_OK;
}
static int rmsnorm_fwd(void *ctx, const float *x, const float *w, int rows, int dim, float eps, float *out,
                       float *rstd)
{
    (void)ctx;
    lc_model__rmsnorm_fwd(x, w, rows, dim, eps, out, rstd);
    return LC_OK;
}
static int rmsnorm_bwd(void *ctx, const float *x, const float *w, const float *rstd, const float *dout, int rows,
                       int dim, int accumulate, float *dx, float *dw)
{
    (void)ctx;
    lc_model__rmsnorm_bwd(x, w, rstd, dout, rows, dim, accumulate, dx, dw);
    return LC_OK;
}
static int rope_table(void *ctx, const int32_t *pos_h, int rows, int hd, float theta, float *cos_t, float *sin_t)
{
    (void)ctx;
    lc_model__rope_table(pos_h, rows, hd, theta, cos_t, sin_t);
    return LC_OK;
}
static int rope_apply(void *ctx, float *x, int rows, int heads, int hd, const float *cos_t, const float *sin_t,
                      int inverse)
{
    (void)ctx;
    lc_model__rope_apply(x, rows, heads, hd, cos_t, sin_t, inverse);
    return LC_OK;
}
static int swiglu_fwd(void *ctx, const float *h, int rows, int ffn, float *act)
{
    (void)ctx;
    lc_model__swiglu_fwd(h, rows, ffn, act);
    return LC_OK;
}
static int swiglu_bwd(void *ctx, const float *h, float *dh, float *act, int rows, int ffn)
{
    (void)ctx;
    lc_model__swiglu_bwd(h, dh, act, rows, ffn);
    return LC_OK;
}
static int round_bf16(void *ctx, float *x, size_t n)
{
    (void)ctx;
    lc_model__round_bf16(x, n);
    return LC_OK;
}
static int to_bf16(void *ctx, const float *x, size_t n, uint16_t *out)
{
    (void)ctx;
    lc_model__to_bf16(x, n, out);
    return LC_OK;
}
static int from_bf16(void *ctx, const uint16_t *x, size_t n, float *out)
{
    (void)ctx;
    lc_model__from_bf16(x, n, out);
    return LC_OK;
}
static int linear_fwd(void *ctx, const float *x, const float *w, int rows, int in, int out, float *y, int acc,
                      int bf16)
{
    (void)ctx, (void)bf16;
    lc_model__linear_fwd(x, w, rows, in, out, y, acc);
    return LC_OK;
}
static int linear_bwd_dx(void *ctx, const float *dy, const float *w, int rows, int in, int out, float *dx, int ldx,
                         int acc, int bf16)
{
    (void)ctx, (void)bf16;
    if (ldx == in) lc_model__linear_bwd_dx(dy, w, rows, in, out, dx, acc);
    else if (!acc) lc_model__linear_bwd_dx_ld(dy, w, rows, in, out, dx, ldx);
    else {
        snprintf(g_err, sizeof g_err, "linear_bwd_dx: accumulate with a row stride is not a form the host has");
        return LC_ERR_ARG;
    }
    return LC_OK;
}
static int linear_bwd_dw(void *ctx, const float *dy, const float *x, int rows, int in, int out, float *dw, int bf16)
{
    (void)ctx, (void)bf16;
    lc_model__linear_bwd_dw(dy, x, rows, in, out, dw);
    return LC_OK;
}
static int weights_bf16(void *ctx, const float *params, void *copy, size_t n, const float **base)
{
    (void)ctx;
    float *w = copy; /* fp32 holding bf16 values: what the bf16 GEMMs (and sgemm) take here */
    memcpy(w, params, sizeof(float) * n);
    lc_model__round_bf16(w, n);
    *base = w;
    return LC_OK;
}
static int ce(void *ctx, float *logits, const int32_t *tgt, int rows, int vocab, int grad, float dscale,
              double *sum_h)
{
    (void)ctx;
    *sum_h = lc_model__ce_fwd_bwd(logits, tgt, rows, vocab, grad, dscale);
    return LC_OK;
}
static int attn_fwd(void *ctx, lc_cp *cp, const void *q, const void *k, const void *v, const int32_t *doc,
                    void *out, float *lse)
{
    (void)ctx;
    int rc = lc_cp_forward(cp, q, k, v, doc, out, lse);
    if (rc) snprintf(g_err, sizeof g_err, "%s", lc_cp_last_error(cp));
    return rc;
}
static int attn_bwd(void *ctx, lc_cp *cp, const void *q, const void *k, const void *v, const int32_t *doc,
                    const void *out, const float *lse, const void *dout, float *dq, float *dk, float *dv)
{
    (void)ctx;
    int rc = lc_cp_backward(cp, q, k, v, doc, out, lse, dout, dq, dk, dv);
    if (rc) snprintf(g_err, sizeof g_err, "%s", lc_cp_last_error(cp));
    return rc;
}
static int sync(void *ctx)
{
    (void)ctx;
    return LC_OK;
}

static const lc_model__dev_ops g_host_ops = {
    .name = "cpu", .logits_max = LC_MODEL__LOGITS_MAX, .wcopy_bytes = 4, .setup = setup, .teardown = teardown, .err = err,
    .alloc = alloc, .release = release, .upload = copy, .download = copy, .copy = copy, .zero = zero,
    .copy_rows = copy_rows,
    .embed_fwd = embed_fwd, .embed_bwd = embed_bwd, .rmsnorm_fwd = rmsnorm_fwd, .rmsnorm_bwd = rmsnorm_bwd,
    .rope_table = rope_table, .rope_apply = rope_apply, .swiglu_fwd = swiglu_fwd, .swiglu_bwd = swiglu_bwd,
    .round_bf16 = round_bf16, .to_bf16 = to_bf16, .from_bf16 = from_bf16,
    .linear_fwd = linear_fwd, .linear_bwd_dx = linear_bwd_dx, .linear_bwd_dw = linear_bwd_dw,
    .weights_bf16 = weights_bf16, .ce = ce, .attn_fwd = attn_fwd, .attn_bwd = attn_bwd, .sync = sync,
};
static const lc_model_device g_host = {&g_host_ops, NULL};

const lc_model_device *lc_model__host_device(void) { return &g_host; }
