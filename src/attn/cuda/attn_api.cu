/* C entry points of the CUDA attention kernels, the small memory-bound kernels around them
 * (state init, finish, delta, per-tile position summaries) and the error plumbing. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "attn_check.h"
#include "attn_cuda.cuh"
#include "attn_ref32.h"
#include "attn_select.h"
#include "attn_small.cuh"
#include "cudnn_engine.h"
#include "gpu_internal.h"
#include "longctx/gpu_attn.h"

// The one error convention (src/common/err.h): the GPU entry points have no handle, so their
// messages go to the calling thread's buffer, which lc_attn_last_error reads too.
extern "C" const char *lc_gpu_last_error(void) { return lc__thread_error(); }

using namespace lcg;

extern "C" int lc_gpu_device_count(char *why, size_t whylen) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        if (why && whylen) snprintf(why, whylen, "no CUDA device (%s)", cudaGetErrorString(e));
        (void)cudaGetLastError();
        return 0;
    }
    if (n == 0 && why && whylen) snprintf(why, whylen, "no CUDA device (count is 0)");
    return n;
}

extern "C" int lc_gpu_attn_check(const lc_gpu_attn_desc *a, char *err, size_t errlen) {
    const char *why = lcg_attn_invalid(a, LCG_USES_BLOCK);
    if (why) {
        if (err && errlen) snprintf(err, errlen, "%s", why);
        return lcg_fail(LC_ERR_ARG, "lc_gpu_attn: %s", why);
    }
    return LC_OK;
}

/* The rules of one entry point (attn_check.h), the message naming it. */
static int check_for(const lc_gpu_attn_desc *a, int uses, const char *fn) {
    const char *why = lcg_attn_invalid(a, uses);
    return why ? lcg_fail(LC_ERR_ARG, "%s: %s", fn, why) : LC_OK;
}

namespace {

int grid_for(size_t n) {
    size_t b = (n + 255) / 256;
    return (int)(b > 4096 ? 4096 : (b ? b : 1));
}

struct Scratch {
    lc_tile_sum *q, *k;
    void *base;
};

/* Per-call summaries live in stream-ordered allocations: no hidden state between calls,
 * nothing to size up front, and they are legal inside CUDA graph capture. */
int make_sums(const lc_gpu_attn_desc *a, int bm, int bn, cudaStream_t s, Scratch *sc) {
    const int nq = (a->sq + bm - 1) / bm, nk = (a->sk + bn - 1) / bn;
    const bool doc = (a->mask.kind & LC_MASK_DOC) != 0;
    size_t bytes = (size_t)(nq + nk) * sizeof(lc_tile_sum);
    sc->base = NULL;
    int rc = lcg_cuda(cudaMallocAsync(&sc->base, bytes, s), "cudaMallocAsync(tile summaries)");
    if (rc) return rc;
    sc->q = (lc_tile_sum *)sc->base;
    sc->k = sc->q + nq;
    tile_sum_kernel<<<(nq * 32 + 127) / 128, 128, 0, s>>>(a->q_pos, doc ? a->mask.q_doc : NULL,
                                                          a->sq, bm, nq, sc->q);
    tile_sum_kernel<<<(nk * 32 + 127) / 128, 128, 0, s>>>(a->k_pos, doc ? a->mask.k_doc : NULL,
                                                          a->sk, bn, nk, sc->k);
    return lcg_cuda(cudaGetLastError(), "tile summary kernel");
}

bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

float eff_scale(const lc_gpu_attn_desc *a) { return a->scale > 0.f ? a->scale : 1.f / sqrtf((float)a->d); }

} // namespace

extern "C" int lc_gpu_attn_fwd_init(const lc_gpu_attn_desc *a, float *o, float *lse,
                                    lc_gpu_stream s) {
    int rc = check_for(a, LCG_USES_STATE, "lc_gpu_attn_fwd_init");
    if (rc) return rc;
    cudaStream_t st = (cudaStream_t)s;
    const size_t rows = (size_t)a->sq * a->hq;
    if (rows == 0) return LC_OK;
    rc = lcg_cuda(cudaMemsetAsync(o, 0, rows * a->d * sizeof(float), st), "memset o");
    if (rc) return rc;
    fill_kernel<<<grid_for(rows), 256, 0, st>>>(lse, rows, -INFINITY);
    return lcg_cuda(cudaGetLastError(), "fill lse");
}

extern "C" int lc_gpu_attn_fwd_block(const lc_gpu_attn_desc *a, const void *q, const void *k,
                                     const void *v, float *o, float *lse, lc_gpu_stream s) {
    int rc = check_for(a, LCG_USES_BLOCK, "lc_gpu_attn_fwd_block");
    if (rc) return rc;
    if (a->sq == 0 || a->sk == 0) return LC_OK;
    if (!aligned16(q) || !aligned16(k) || !aligned16(v) || !aligned16(o))
        return lcg_fail(LC_ERR_ARG, "lc_gpu_attn_fwd_block: q, k, v and o must be 16-byte aligned");
    if (a->dtype == LC_DT_F32) /* the reference kernels; no engine takes fp32 */
        return lcg_cuda((cudaError_t)lcg_ref32_fwd(a, (const float *)q, (const float *)k, (const float *)v, o, lse, s),
                        "attention forward kernel (f32 reference)");
    if (a->engine && (rc = lcg_engine_fwd_block(a, q, k, v, o, lse, (cudaStream_t)s)) != LCG_USE_OWN) return rc;
    int kern = LCG_KERNEL_SM80;
    rc = lcg_pick_fwd_kernel((int)a->dtype, a->d, (cudaStream_t)s, &kern);
    if (rc) return rc;
    return lcg_fwd_block_with(a, q, k, v, o, lse, (cudaStream_t)s, kern);
}

/* The forward block through one kernel family (attn_select.cu picks it; its start-up check
 * calls this with each). Arguments are already checked. */
int lcg_fwd_block_with(const lc_gpu_attn_desc *a, const void *q, const void *k, const void *v, float *o,
                       float *lse, cudaStream_t st, int kern) {
    const bool h = kern == LCG_KERNEL_SM90;
    Scratch sc;
    int rc = make_sums(a, h ? lcg_fwd_sm90_bm(a->d) : lcg_fwd_bm(a->d), h ? lcg_fwd_sm90_bn(a->d) : kBN, st, &sc);
    if (rc) return rc;
    FwdParams p;
    p.q = q; p.k = k; p.v = v; p.o = o; p.lse = lse;
    p.q_pos = a->q_pos; p.k_pos = a->k_pos;
    p.q_doc = a->mask.q_doc; p.k_doc = a->mask.k_doc;
    p.qsum = sc.q; p.ksum = sc.k;
    p.sq = a->sq; p.sk = a->sk; p.hq = a->hq; p.hkv = a->hkv; p.group = a->hq / a->hkv;
    p.kind = a->mask.kind; p.window = a->mask.window;
    p.scale = eff_scale(a); p.scale_log2 = p.scale * kLog2e;
    int e = h ? lcg_launch_fwd_sm90((int)a->dtype, a->d, p, st) : lcg_launch_fwd((int)a->dtype, a->d, p, st);
    cudaFreeAsync(sc.base, st);
    return lcg_cuda((cudaError_t)e, h ? "attention forward kernel (sm90)" : "attention forward kernel");
}

extern "C" int lc_gpu_attn_fwd_finish(const lc_gpu_attn_desc *a, const float *o, void *out,
                                      lc_dtype out_dtype, lc_gpu_stream s) {
    int rc = check_for(a, LCG_USES_STATE, "lc_gpu_attn_fwd_finish");
    if (rc) return rc;
    cudaStream_t st = (cudaStream_t)s;
    const size_t n = (size_t)a->sq * a->hq * a->d;
    if (n == 0) return LC_OK;
    switch (out_dtype) {
    case LC_DT_F32:
        if (out == o) return LC_OK;
        return lcg_cuda(cudaMemcpyAsync(out, o, n * 4, cudaMemcpyDeviceToDevice, st), "copy out");
    case LC_DT_BF16: finish_kernel<<<grid_for(n), 256, 0, st>>>(o, (__nv_bfloat16 *)out, n); break;
    case LC_DT_F16: finish_kernel<<<grid_for(n), 256, 0, st>>>(o, (__half *)out, n); break;
    default: return lcg_fail(LC_ERR_ARG, "lc_gpu_attn_fwd_finish: bad out dtype");
    }
    return lcg_cuda(cudaGetLastError(), "finish kernel");
}

static int launch_delta(const lc_gpu_attn_desc *a, const float *o, const void *dout, float *delta, cudaStream_t st) {
    if (a->dtype == LC_DT_F32)
        return lcg_cuda((cudaError_t)lcg_ref32_delta(a, o, (const float *)dout, delta, st), "delta kernel (f32)");
    const int rows = a->sq * a->hq;
    const int blocks = (rows * 32 + 255) / 256;
    if (a->dtype == LC_DT_BF16)
        delta_kernel<<<blocks, 256, 0, st>>>(o, (const __nv_bfloat16 *)dout, delta, rows, a->d);
    else
        delta_kernel<<<blocks, 256, 0, st>>>(o, (const __half *)dout, delta, rows, a->d);
    return lcg_cuda(cudaGetLastError(), "delta kernel");
}

extern "C" int lc_gpu_attn_bwd_prep(const lc_gpu_attn_desc *a, const float *o, const void *dout,
                                    float *delta, lc_gpu_stream s) {
    int rc = check_for(a, LCG_USES_STATE, "lc_gpu_attn_bwd_prep");
    if (rc) return rc;
    cudaStream_t st = (cudaStream_t)s;
    const int rows = a->sq * a->hq;
    if (rows == 0) return LC_OK;
    /* the cuDNN engine defers our delta until a block falls back to our kernels */
    if (a->engine && a->dtype != LC_DT_F32 && (rc = lcg_engine_bwd_prep(a, o, dout, st)) != LCG_USE_OWN) return rc;
    return launch_delta(a, o, dout, delta, st);
}

extern "C" int lc_gpu_attn_bwd_block(const lc_gpu_attn_desc *a, const void *q, const void *k,
                                     const void *v, const void *dout, const float *lse,
                                     const float *delta, float *dq, float *dk, float *dv,
                                     lc_gpu_stream s) {
    int rc = check_for(a, LCG_USES_BLOCK, "lc_gpu_attn_bwd_block");
    if (rc) return rc;
    if (a->sq == 0 || a->sk == 0) return LC_OK;
    if (!aligned16(q) || !aligned16(k) || !aligned16(v) || !aligned16(dout) || !aligned16(dk) ||
        !aligned16(dv))
        return lcg_fail(LC_ERR_ARG, "lc_gpu_attn_bwd_block: tensors must be 16-byte aligned");
    cudaStream_t st = (cudaStream_t)s;
    if (a->dtype == LC_DT_F32)
        return lcg_cuda((cudaError_t)lcg_ref32_bwd(a, (const float *)q, (const float *)k, (const float *)v,
                                                   (const float *)dout, lse, delta, dq, dk, dv, st),
                        "attention backward kernel (f32 reference)");
    if (a->engine) {
        if ((rc = lcg_engine_bwd_block(a, q, k, v, dout, lse, dq, dk, dv, st)) != LCG_USE_OWN) return rc;
        const float *po;
        const void *pdout;
        if (lcg_engine_take_delta(a->engine, &po, &pdout) && (rc = launch_delta(a, po, pdout, (float *)delta, st)))
            return rc;
    }
    Scratch sc;
    rc = make_sums(a, lcg_bwd_bm(a->d), lcg_bwd_bn(a->d), st, &sc);
    if (rc) return rc;
    BwdParams p;
    p.q = q; p.k = k; p.v = v; p.dout = dout; p.lse = lse; p.delta = delta;
    p.dq = dq; p.dk = dk; p.dv = dv;
    p.q_pos = a->q_pos; p.k_pos = a->k_pos;
    p.q_doc = a->mask.q_doc; p.k_doc = a->mask.k_doc;
    p.qsum = sc.q; p.ksum = sc.k;
    p.sq = a->sq; p.sk = a->sk; p.hq = a->hq; p.hkv = a->hkv; p.group = a->hq / a->hkv;
    p.kind = a->mask.kind; p.window = a->mask.window;
    p.scale = eff_scale(a); p.scale_log2 = p.scale * kLog2e;
    int e = lcg_launch_bwd((int)a->dtype, a->d, p, st);
    cudaFreeAsync(sc.base, st);
    return lcg_cuda((cudaError_t)e, "attention backward kernel");
}
