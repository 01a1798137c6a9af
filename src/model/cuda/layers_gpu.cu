/* The decoder's memory-bound layers on the GPU (layers_gpu.h). Built by nvcc for the GPU
 * library, and by the host compiler with LCG_EMU for the emulated tests
 * (tests/gpu/emu/test_model_emu.cc), so the kernels are written for any power-of-two block
 * of at most LCM_MAX_THREADS threads. */
#ifndef LCG_EMU
#include <cuda_runtime.h>
#endif
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "model/cuda/layers_gpu.h"

#define LCM_MAX_THREADS 256
#define LCM_NORM_CHUNK 8192 /* gradient elements per block of the norm's first pass */

/* A block's sum in a fixed tree order (every thread gets it). */
template <typename T> __device__ T block_sum(T v, T *red)
{
    red[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
        __syncthreads();
    }
    T r = red[0];
    __syncthreads();
    return r;
}

__device__ float block_max(float v, float *red)
{
    red[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + s]);
        __syncthreads();
    }
    float r = red[0];
    __syncthreads();
    return r;
}

__global__ void embed_fwd_kernel(const float *emb, const int32_t *tok, int dim, float *out)
{
    const float *src = emb + (size_t)tok[blockIdx.x] * dim;
    float *dst = out + (size_t)blockIdx.x * dim;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) dst[j] = src[j];
}

/* one block per distinct id: its rows added in row order, column by column */
__global__ void embed_bwd_kernel(float *demb, const int32_t *by_tok, const int32_t *ids, const int32_t *starts,
                                 int dim, const float *dout)
{
    float *g = demb + (size_t)ids[blockIdx.x] * dim;
    const int r0 = starts[blockIdx.x], r1 = starts[blockIdx.x + 1];
    for (int j = threadIdx.x; j < dim; j += blockDim.x) {
        float acc = g[j];
        for (int r = r0; r < r1; r++) acc += dout[(size_t)by_tok[r] * dim + j];
        g[j] = acc;
    }
}

__global__ void rmsnorm_fwd_kernel(const float *x, const float *w, int dim, float eps, float *out, float *rstd)
{
    __shared__ float red[LCM_MAX_THREADS];
    const float *xi = x + (size_t)blockIdx.x * dim;
    float *oi = out + (size_t)blockIdx.x * dim;
    float ss = 0.0f;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) ss += xi[j] * xi[j];
    ss = block_sum(ss, red);
    const float r = 1.0f / sqrtf(ss / dim + eps);
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) oi[j] = w[j] * (xi[j] * r);
}

__global__ void rmsnorm_bwd_dx_kernel(const float *x, const float *w, const float *rstd, const float *dout, int dim,
                                      int accumulate, float *dx)
{
    __shared__ float red[LCM_MAX_THREADS];
    const size_t o = (size_t)blockIdx.x * dim;
    const float r = rstd[blockIdx.x];
    float dot = 0.0f;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) dot += w[j] * dout[o + j] * x[o + j];
    dot = block_sum(dot, red);
    const float c = dot * r * r * r / dim;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) {
        const float d = r * w[j] * dout[o + j] - c * x[o + j];
        dx[o + j] = accumulate ? dx[o + j] + d : d;
    }
}

/* dw: one thread per column, the rows in order (the CPU's order) */
__global__ void rmsnorm_bwd_dw_kernel(const float *x, const float *rstd, const float *dout, int rows, int dim, float *dw)
{
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= dim) return;
    float acc = dw[j];
    for (int i = 0; i < rows; i++) acc += dout[(size_t)i * dim + j] * x[(size_t)i * dim + j] * rstd[i];
    dw[j] = acc;
}

/* inv_freq comes from the host (lcm_rope_inv_freq: the CPU's powf, so the two tables agree
 * bit for bit where the device's powf would differ by an ulp); the angle's cos and sin in
 * double, as the CPU table */
__global__ void rope_table_kernel(const int32_t *pos, int rows, int hd, const float *inv_freq, float *cos_t,
                                  float *sin_t)
{
    const int half = hd / 2;
    const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= (size_t)rows * half) return;
    const int i = (int)(k / half), j = (int)(k % half);
    const float ang = (float)(pos[i] < 0 ? 0 : pos[i]) * inv_freq[j];
    cos_t[k] = (float)cos((double)ang);
    sin_t[k] = (float)sin((double)ang);
}

__global__ void rope_apply_kernel(float *x, int rows, int heads, int hd, const float *cos_t, const float *sin_t,
                                  int inverse)
{
    const int half = hd / 2;
    const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= (size_t)rows * heads * half) return;
    const int j = (int)(k % half);
    const size_t ih = k / half, i = ih / heads;
    float *a = x + ih * hd, *b = a + half;
    const float c = cos_t[i * half + j], s = sin_t[i * half + j], aj = a[j], bj = b[j];
    if (!inverse) {
        a[j] = aj * c - bj * s;
        b[j] = bj * c + aj * s;
    } else {
        a[j] = aj * c + bj * s;
        b[j] = bj * c - aj * s;
    }
}

__global__ void swiglu_fwd_kernel(const float *h, int rows, int ffn, float *act)
{
    const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= (size_t)rows * ffn) return;
    const size_t i = k / ffn, j = k % ffn;
    const float g = h[i * 2 * ffn + j], u = h[i * 2 * ffn + ffn + j];
    const float sg = 1.0f / (1.0f + expf(-g));
    act[k] = g * sg * u;
}

__global__ void swiglu_bwd_kernel(const float *h, float *dh, float *act, int rows, int ffn)
{
    const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= (size_t)rows * ffn) return;
    const size_t i = k / ffn, j = k % ffn, o = i * 2 * ffn;
    const float g = h[o + j], u = h[o + ffn + j], da = dh[o + ffn + j];
    const float s = 1.0f / (1.0f + expf(-g)), silu = g * s;
    act[k] = silu * u;
    dh[o + ffn + j] = da * silu;
    dh[o + j] = da * u * s * (1.0f + g * (1.0f - s));
}

__global__ void ce_kernel(float *logits, const int32_t *targets, int vocab, int grad, float dscale, double *loss_row)
{
    __shared__ float redf[LCM_MAX_THREADS];
    __shared__ double redd[LCM_MAX_THREADS];
    float *l = logits + (size_t)blockIdx.x * vocab;
    const int t = targets[blockIdx.x];
    if (t < 0) { /* every thread of the block takes this branch: no barrier is skipped by some */
        if (grad)
            for (int j = threadIdx.x; j < vocab; j += blockDim.x) l[j] = 0.0f;
        if (threadIdx.x == 0) loss_row[blockIdx.x] = 0.0;
        return;
    }
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) mx = fmaxf(mx, l[j]);
    mx = block_max(mx, redf);
    double sum = 0.0;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) sum += exp((double)(l[j] - mx));
    sum = block_sum(sum, redd);
    const double lse = mx + log(sum);
    const float lt = l[t];
    __syncthreads(); /* every thread has read l[t] before it is overwritten */
    if (threadIdx.x == 0) loss_row[blockIdx.x] = lse - lt;
    if (grad) {
        for (int j = threadIdx.x; j < vocab; j += blockDim.x) l[j] = dscale * (float)exp((double)l[j] - lse);
        __syncthreads();
        if (threadIdx.x == 0) l[t] -= dscale;
    }
}

/* The vocabulary-parallel cross-entropy under TP, in three passes around the caller's two
 * all-reduces (as step.c's ce_tp): my rows' max over my vocabulary slice; with the global
 * max, the sum of exp and the target's logit when my slice holds it; with the global sums,
 * the loss per row and the gradient in place. */
__global__ void ce_tp_max_kernel(const float *logits, int vl, double *mx)
{
    __shared__ float red[LCM_MAX_THREADS];
    const float *l = logits + (size_t)blockIdx.x * vl;
    float m = -INFINITY;
    for (int j = threadIdx.x; j < vl; j += blockDim.x) m = fmaxf(m, l[j]);
    m = block_max(m, red);
    if (threadIdx.x == 0) mx[blockIdx.x] = m;
}

__global__ void ce_tp_sum_kernel(const float *logits, const int32_t *targets, int vl, int v0, const double *mx,
                                 double *st)
{
    __shared__ double red[LCM_MAX_THREADS];
    const float *l = logits + (size_t)blockIdx.x * vl;
    const float M = (float)mx[blockIdx.x];
    double s = 0.0;
    for (int j = threadIdx.x; j < vl; j += blockDim.x) s += exp((double)(l[j] - M));
    s = block_sum(s, red);
    if (threadIdx.x == 0) {
        const int tg = targets[blockIdx.x], t = tg - v0;
        st[2 * blockIdx.x] = s;
        st[2 * blockIdx.x + 1] = tg >= 0 && t >= 0 && t < vl ? (double)l[t] : 0.0;
    }
}

__global__ void ce_tp_finish_kernel(float *logits, const int32_t *targets, int vl, int v0, const double *mx,
                                    const double *st, int grad, float dscale, double *loss_row)
{
    float *l = logits + (size_t)blockIdx.x * vl;
    const int tg = targets[blockIdx.x];
    if (tg < 0) {
        if (grad)
            for (int j = threadIdx.x; j < vl; j += blockDim.x) l[j] = 0.0f;
        if (threadIdx.x == 0) loss_row[blockIdx.x] = 0.0;
        return;
    }
    const double lse = (double)(float)mx[blockIdx.x] + log(st[2 * blockIdx.x]);
    if (threadIdx.x == 0) loss_row[blockIdx.x] = lse - st[2 * blockIdx.x + 1];
    if (grad) {
        for (int j = threadIdx.x; j < vl; j += blockDim.x) l[j] = dscale * (float)exp((double)l[j] - lse);
        __syncthreads();
        const int t = tg - v0;
        if (threadIdx.x == 0 && t >= 0 && t < vl) l[t] -= dscale;
    }
}

/* one thread: the rows' losses (or the norm's partials) summed in index order */
__global__ void sum_ordered_kernel(const double *v, size_t n, double *out, int take_sqrt)
{
    if (threadIdx.x || blockIdx.x) return;
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += v[i];
    *out = take_sqrt ? sqrt(s) : s;
}

__global__ void adamw_kernel(float *p, const float *g, float *m, float *v, size_t n, float lr, float grad_mul, float wd,
                             float b1, float b2, float eps, float bc1, float bc2)
{
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float gi = g[i] * grad_mul;
    const float mi = b1 * m[i] + (1.0f - b1) * gi, vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float mh = mi / bc1, vh = vi / bc2;
    p[i] -= lr * (mh / (sqrtf(vh) + eps) + wd * p[i]);
}

__global__ void norm_partial_kernel(const float *g, size_t n, double *partial)
{
    __shared__ double red[LCM_MAX_THREADS];
    const size_t lo = (size_t)blockIdx.x * LCM_NORM_CHUNK, hi = lo + LCM_NORM_CHUNK < n ? lo + LCM_NORM_CHUNK : n;
    double s = 0.0;
    for (size_t i = lo + threadIdx.x; i < hi; i += blockDim.x) s += (double)g[i] * g[i];
    s = block_sum(s, red);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

extern "C" int lcm_embed_index(const int32_t *tok, int rows, int vocab, int32_t *count, int32_t *by_tok, int32_t *ids,
                               int32_t *starts)
{
    memset(count, 0, sizeof(int32_t) * (size_t)vocab);
    for (int i = 0; i < rows; i++) {
        if (tok[i] < 0 || tok[i] >= vocab) return -1;
        count[tok[i]]++;
    }
    int n = 0, at = 0;
    for (int v = 0; v < vocab; v++)
        if (count[v]) {
            ids[n] = v;
            starts[n++] = at;
            const int c = count[v];
            count[v] = at; /* now: where this id's next row goes */
            at += c;
        }
    starts[n] = at;
    for (int i = 0; i < rows; i++) by_tok[count[tok[i]]++] = i; /* rows ascend within an id */
    return n;
}

extern "C" void lcm_rope_inv_freq(int hd, float theta, float *inv_freq)
{
    /* transformers: inv_freq = 1 / theta ** (arange(0, hd, 2) / hd) in fp32 (layers.c) */
    for (int j = 0; j < hd / 2; j++) inv_freq[j] = 1.0f / powf(theta, (float)(2 * j) / (float)hd);
}

extern "C" size_t lcm_norm_partials(size_t n) { return (n + LCM_NORM_CHUNK - 1) / LCM_NORM_CHUNK; }

/* ---- launchers: on a GPU a <<<>>> launch on the stream; in the emulated build
 * (cuda_emu.h) the same kernel on CPU threads, with smaller blocks (one thread each) ---- */
#ifndef LCG_EMU
#define LCM_THREADS LCM_MAX_THREADS
#define LAUNCH(grid, threads, kernel, ...) kernel<<<(grid), (threads), 0, (cudaStream_t)stream>>>(__VA_ARGS__)
static int launched(void) { return (int)cudaGetLastError(); }
#else
#define LCM_THREADS 32
#define LAUNCH(grid, threads, kernel, ...) emu_launch((grid), 1, (threads), 0, [&] { kernel(__VA_ARGS__); })
static int launched(void) { return 0; }
#endif
static unsigned blocks_for(size_t n) { return (unsigned)((n + LCM_THREADS - 1) / LCM_THREADS); }

extern "C" int lcm_embed_fwd(const float *emb, const int32_t *tok, int rows, int dim, float *out, void *stream)
{
    if (rows > 0) LAUNCH(rows, LCM_THREADS, embed_fwd_kernel, emb, tok, dim, out);
    return launched();
}
extern "C" int lcm_embed_bwd(float *demb, const int32_t *by_tok, const int32_t *ids, const int32_t *starts, int n_ids,
                             int dim, const float *dout, void *stream)
{
    if (n_ids > 0) LAUNCH(n_ids, LCM_THREADS, embed_bwd_kernel, demb, by_tok, ids, starts, dim, dout);
    return launched();
}
extern "C" int lcm_rmsnorm_fwd(const float *x, const float *w, int rows, int dim, float eps, float *out, float *rstd,
                               void *stream)
{
    if (rows > 0) LAUNCH(rows, LCM_THREADS, rmsnorm_fwd_kernel, x, w, dim, eps, out, rstd);
    return launched();
}
extern "C" int lcm_rmsnorm_bwd(const float *x, const float *w, const float *rstd, const float *dout, int rows, int dim,
                               int accumulate, float *dx, float *dw, void *stream)
{
    if (rows > 0) LAUNCH(rows, LCM_THREADS, rmsnorm_bwd_dx_kernel, x, w, rstd, dout, dim, accumulate, dx);
    LAUNCH(blocks_for((size_t)dim), LCM_THREADS, rmsnorm_bwd_dw_kernel, x, rstd, dout, rows, dim, dw);
    return launched();
}
extern "C" int lcm_rope_table(const int32_t *pos, int rows, int hd, const float *inv_freq, float *cos_t,
                              float *sin_t, void *stream)
{
    size_t n = (size_t)rows * (hd / 2);
    if (n) LAUNCH(blocks_for(n), LCM_THREADS, rope_table_kernel, pos, rows, hd, inv_freq, cos_t, sin_t);
    return launched();
}
extern "C" int lcm_rope_apply(float *x, int rows, int heads, int hd, const float *cos_t, const float *sin_t,
                              int inverse, void *stream)
{
    size_t n = (size_t)rows * heads * (hd / 2);
    if (n) LAUNCH(blocks_for(n), LCM_THREADS, rope_apply_kernel, x, rows, heads, hd, cos_t, sin_t, inverse);
    return launched();
}
extern "C" int lcm_swiglu_fwd(const float *h, int rows, int ffn, float *act, void *stream)
{
    size_t n = (size_t)rows * ffn;
    if (n) LAUNCH(blocks_for(n), LCM_THREADS, swiglu_fwd_kernel, h, rows, ffn, act);
    return launched();
}
extern "C" int lcm_swiglu_bwd(const float *h, float *dh, float *act, int rows, int ffn, void *stream)
{
    size_t n = (size_t)rows * ffn;
    if (n) LAUNCH(blocks_for(n), LCM_THREADS, swiglu_bwd_kernel, h, dh, act, rows, ffn);
    return launched();
}
extern "C" int lcm_ce_fwd_bwd(float *logits, const int32_t *targets, int rows, int vocab, int grad, float dscale,
                              double *loss_row, double *loss, void *stream)
{
    if (rows > 0) LAUNCH(rows, LCM_THREADS, ce_kernel, logits, targets, vocab, grad, dscale, loss_row);
    LAUNCH(1, 32, sum_ordered_kernel, loss_row, (size_t)rows, loss, 0);
    return launched();
}
extern "C" int lcm_ce_tp_max(const float *logits, int rows, int vl, double *mx, void *stream)
{
    if (rows > 0) LAUNCH(rows, LCM_THREADS, ce_tp_max_kernel, logits, vl, mx);
    return launched();
}
extern "C" int lcm_ce_tp_sum(const float *logits, const int32_t *targets, int rows, int vl, int v0, const double *mx,
                             double *st, void *stream)
{
    if (rows > 0) LAUNCH(rows, LCM_THREADS, ce_tp_sum_kernel, logits, targets, vl, v0, mx, st);
    return launched();
}
extern "C" int lcm_ce_tp_finish(float *logits, const int32_t *targets, int rows, int vl, int v0, const double *mx,
                                const double *st, int grad, float dscale, double *loss_row, double *loss, void *stream)
{
    if (rows > 0)
        LAUNCH(rows, LCM_THREADS, ce_tp_finish_kernel, logits, targets, vl, v0, mx, st, grad, dscale, loss_row);
    LAUNCH(1, 32, sum_ordered_kernel, loss_row, (size_t)rows, loss, 0);
    return launched();
}
extern "C" int lcm_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float grad_mul, float wd,
                         float b1, float b2, float eps, float bc1, float bc2, void *stream)
{
    if (n) LAUNCH(blocks_for(n), LCM_THREADS, adamw_kernel, p, g, m, v, n, lr, grad_mul, wd, b1, b2, eps, bc1, bc2);
    return launched();
}
extern "C" int lcm_global_norm(const float *g, size_t n, double *partial, double *norm, void *stream)
{
    size_t np = lcm_norm_partials(n);
    if (np) LAUNCH((unsigned)np, LCM_THREADS, norm_partial_kernel, g, n, partial);
    LAUNCH(1, 32, sum_ordered_kernel, partial, np, norm, 1);
    return launched();
}
