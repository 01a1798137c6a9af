/* The fp32 attention block kernels: the plain algorithm with fp32 inputs, kept as the GPU's
 * reference (the model's fp32 path on a GPU, checked against the CPU's fp32 model within
 * 1e-5), not for speed: one thread per (query row, head) in the forward and dQ, one per (key
 * row, KV head) for dK and dV, each looping over the other side's rows. Same contract as the
 * tensor-core kernels (gpu_attn.h): the normalised fp32 (o, lse) state merged block by block,
 * the mask rule of src/attn/core.h, positions < 0 as padding, dq/dk/dv accumulated from the
 * final lse. Any head dim up to LCG_REF32_MAX_D. Built by nvcc, and by the host compiler
 * with LCG_EMU (tests/gpu/emu/test_ref32_emu.cc: against the float64 oracle). */
#ifndef LCG_EMU
#include <cuda_runtime.h>
#endif
#include <math.h>
#include <stdint.h>

#include "attn/core.h"
#include "attn/cuda/attn_ref32.h"

namespace {

struct Ref32 {
    const float *q, *k, *v, *dout, *lse, *delta;
    float *o, *lse_out, *dq, *dk, *dv;
    const int32_t *q_pos, *k_pos, *q_doc, *k_doc;
    int sq, sk, hq, hkv, d, group;
    unsigned kind;
    int64_t window;
    float scale;
};

__device__ inline int32_t qpos(const Ref32 &p, int i) { return p.q_pos ? p.q_pos[i] : i; }
__device__ inline int32_t kpos(const Ref32 &p, int j) { return p.k_pos ? p.k_pos[j] : j; }
__device__ inline int32_t qdoc(const Ref32 &p, int i) { return (p.kind & LC_MASK_DOC) ? p.q_doc[i] : 0; }
__device__ inline int32_t kdoc(const Ref32 &p, int j) { return (p.kind & LC_MASK_DOC) ? p.k_doc[j] : 0; }
__device__ inline float dot(const float *a, const float *b, int d)
{
    float s = 0.f;
    for (int t = 0; t < d; t++) s = fmaf(a[t], b[t], s);
    return s;
}

__global__ void ref32_fwd_kernel(Ref32 p)
{
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= p.sq * p.hq) return;
    int i = idx / p.hq, h = idx % p.hq, g = h / p.group, d = p.d;
    int32_t qp = qpos(p, i), qd = qdoc(p, i);
    const float *qi = p.q + (size_t)idx * d;
    float m = -INFINITY, l = 0.f, acc[LCG_REF32_MAX_D];
    for (int t = 0; t < d; t++) acc[t] = 0.f;
    for (int j = 0; j < p.sk; j++) {
        if (!lc_mask_allowed(p.kind, p.window, qp, kpos(p, j), qd, kdoc(p, j))) continue;
        const float *kj = p.k + ((size_t)j * p.hkv + g) * d, *vj = p.v + ((size_t)j * p.hkv + g) * d;
        float s = dot(qi, kj, d) * p.scale;
        if (s > m) {
            float c = expf(m - s); /* 0 on the first allowed key (m = -inf) */
            l *= c;
            for (int t = 0; t < d; t++) acc[t] *= c;
            m = s;
        }
        float e = expf(s - m);
        l += e;
        for (int t = 0; t < d; t++) acc[t] = fmaf(e, vj[t], acc[t]);
    }
    if (l == 0.f) return; /* nothing allowed in this block: the state stands */
    float lb = m + logf(l), lo = p.lse_out[idx], mx = fmaxf(lo, lb);
    float wo = lo == -INFINITY ? 0.f : expf(lo - mx), wb = expf(lb - mx), tot = wo + wb;
    float *oi = p.o + (size_t)idx * d;
    for (int t = 0; t < d; t++) oi[t] = (oi[t] * wo + acc[t] / l * wb) / tot;
    p.lse_out[idx] = mx + logf(tot);
}

__global__ void ref32_delta_kernel(Ref32 p)
{
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= p.sq * p.hq) return;
    p.dq[idx] = dot(p.o + (size_t)idx * p.d, p.dout + (size_t)idx * p.d, p.d); /* dq: the delta output */
}

/* P and dS of one (query row i, head h; key row j) pair; 0 when it is masked */
__device__ inline float pair(const Ref32 &p, int i, int h, int j, int g, float *ds)
{
    int d = p.d;
    size_t qi = (size_t)i * p.hq + h, kj = ((size_t)j * p.hkv + g) * d;
    float lse = p.lse[qi];
    *ds = 0.f;
    if (lse == -INFINITY || !lc_mask_allowed(p.kind, p.window, qpos(p, i), kpos(p, j), qdoc(p, i), kdoc(p, j)))
        return 0.f;
    float pr = expf(dot(p.q + qi * d, p.k + kj, d) * p.scale - lse);
    *ds = pr * (dot(p.dout + qi * d, p.v + kj, d) - p.delta[qi]);
    return pr;
}

__global__ void ref32_dq_kernel(Ref32 p)
{
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= p.sq * p.hq) return;
    int i = idx / p.hq, h = idx % p.hq, g = h / p.group, d = p.d;
    float acc[LCG_REF32_MAX_D];
    for (int t = 0; t < d; t++) acc[t] = 0.f;
    for (int j = 0; j < p.sk; j++) {
        float ds;
        if (pair(p, i, h, j, g, &ds) == 0.f) continue;
        const float *kj = p.k + ((size_t)j * p.hkv + g) * d;
        for (int t = 0; t < d; t++) acc[t] = fmaf(ds, kj[t], acc[t]);
    }
    float *dq = p.dq + (size_t)idx * d;
    for (int t = 0; t < d; t++) dq[t] += acc[t] * p.scale;
}

__global__ void ref32_dkv_kernel(Ref32 p)
{
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= p.sk * p.hkv) return;
    int j = idx / p.hkv, g = idx % p.hkv, d = p.d;
    float ak[LCG_REF32_MAX_D], av[LCG_REF32_MAX_D];
    for (int t = 0; t < d; t++) ak[t] = av[t] = 0.f;
    for (int h = g * p.group; h < (g + 1) * p.group; h++)
        for (int i = 0; i < p.sq; i++) {
            float ds, pr = pair(p, i, h, j, g, &ds);
            if (pr == 0.f) continue;
            const float *qi = p.q + ((size_t)i * p.hq + h) * d, *doi = p.dout + ((size_t)i * p.hq + h) * d;
            for (int t = 0; t < d; t++) {
                ak[t] = fmaf(ds, qi[t], ak[t]);
                av[t] = fmaf(pr, doi[t], av[t]);
            }
        }
    float *dk = p.dk + (size_t)idx * d, *dv = p.dv + (size_t)idx * d;
    for (int t = 0; t < d; t++) {
        dk[t] += ak[t] * p.scale;
        dv[t] += av[t];
    }
}

Ref32 params(const lc_gpu_attn_desc *a)
{
    Ref32 p = {};
    p.q_pos = a->q_pos, p.k_pos = a->k_pos, p.q_doc = a->mask.q_doc, p.k_doc = a->mask.k_doc;
    p.sq = a->sq, p.sk = a->sk, p.hq = a->hq, p.hkv = a->hkv, p.d = a->d, p.group = a->hq / a->hkv;
    p.kind = a->mask.kind, p.window = a->mask.window;
    p.scale = a->scale > 0.f ? a->scale : 1.f / sqrtf((float)a->d);
    return p;
}

#ifndef LCG_EMU
#define LAUNCH(n, kernel, p) kernel<<<(unsigned)(((n) + 127) / 128), 128, 0, (cudaStream_t)stream>>>(p)
int done() { return (int)cudaGetLastError(); }
#else
#define LAUNCH(n, kernel, p) emu_launch((unsigned)(((n) + 31) / 32), 1, 32, 0, [&] { kernel(p); })
int done() { return 0; }
#endif

} // namespace

int lcg_ref32_fwd(const lc_gpu_attn_desc *a, const float *q, const float *k, const float *v, float *o, float *lse,
                  void *stream)
{
    Ref32 p = params(a);
    p.q = q, p.k = k, p.v = v, p.o = o, p.lse_out = lse;
    if (a->sq > 0 && a->sk > 0) LAUNCH((size_t)a->sq * a->hq, ref32_fwd_kernel, p);
    return done();
}

int lcg_ref32_delta(const lc_gpu_attn_desc *a, const float *o, const float *dout, float *delta, void *stream)
{
    Ref32 p = params(a);
    p.o = (float *)o, p.dout = dout, p.dq = delta;
    if (a->sq > 0) LAUNCH((size_t)a->sq * a->hq, ref32_delta_kernel, p);
    return done();
}

int lcg_ref32_bwd(const lc_gpu_attn_desc *a, const float *q, const float *k, const float *v, const float *dout,
                  const float *lse, const float *delta, float *dq, float *dk, float *dv, void *stream)
{
    Ref32 p = params(a);
    p.q = q, p.k = k, p.v = v, p.dout = dout, p.lse = lse, p.delta = delta, p.dq = dq, p.dk = dk, p.dv = dv;
    if (a->sq > 0 && a->sk > 0) {
        LAUNCH((size_t)a->sq * a->hq, ref32_dq_kernel, p);
        LAUNCH((size_t)a->sk * a->hkv, ref32_dkv_kernel, p);
    }
    return done();
}
