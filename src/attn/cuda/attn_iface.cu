/* The CUDA kernels behind the device-neutral attention interface (lc_attn_iface, attn.h):
 * lc_attn_cuda maps the shared descriptor onto the GPU entry points (attn_api.cu), the way
 * ggml's CUDA backend fills ggml_backend_i. Host code only, so the emulated ring
 * (tests/gpu/emu/test_ring_emu.cc) compiles this same table over its stand-in entry points. */
#include <string.h>

#include "longctx/gpu_attn.h"

namespace {

lc_gpu_attn_desc gpu_desc(const lc_attn_desc *a) {
    lc_gpu_attn_desc g;
    memset(&g, 0, sizeof g);
    g.sq = a->sq;
    g.sk = a->sk;
    g.hq = a->hq;
    g.hkv = a->hkv;
    g.d = a->d;
    g.dtype = a->qkv_dtype;
    g.scale = a->scale;
    g.q_pos = a->q_pos;
    g.k_pos = a->k_pos;
    g.mask = a->mask;
    if (const lc_gpu_attn_ext *x = (const lc_gpu_attn_ext *)a->dev) {
        g.engine = x->engine;
        g.q_pos_host = x->q_pos_host;
        g.k_pos_host = x->k_pos_host;
        g.q_doc_host = x->q_doc_host;
        g.k_doc_host = x->k_doc_host;
    }
    return g;
}

int cuda_workspace_size(const lc_attn_desc *, unsigned, size_t *bytes) {
    *bytes = 0; /* the kernels and engines keep their own scratch */
    return LC_OK;
}

int cuda_init(const lc_attn_desc *a, float *o, float *lse, void *s) {
    const lc_gpu_attn_desc g = gpu_desc(a);
    return lc_gpu_attn_fwd_init(&g, o, lse, s);
}

int cuda_block(const lc_attn_desc *a, const void *q, const void *k, const void *v, float *o, float *lse, void *s) {
    const lc_gpu_attn_desc g = gpu_desc(a);
    return lc_gpu_attn_fwd_block(&g, q, k, v, o, lse, s);
}

int cuda_finish(const lc_attn_desc *a, const float *o, void *out, lc_dtype out_dtype, void *s) {
    const lc_gpu_attn_desc g = gpu_desc(a);
    return lc_gpu_attn_fwd_finish(&g, o, out, out_dtype, s);
}

int cuda_bwd_prep(const lc_attn_desc *a, const float *o, const void *dout, float *delta, void *s) {
    const lc_gpu_attn_desc g = gpu_desc(a);
    return lc_gpu_attn_bwd_prep(&g, o, dout, delta, s);
}

int cuda_bwd_block(const lc_attn_desc *a, const void *q, const void *k, const void *v, const void *dout,
                   const float *lse, const float *delta, float *dq, float *dk, float *dv, void *s) {
    const lc_gpu_attn_desc g = gpu_desc(a);
    return lc_gpu_attn_bwd_block(&g, q, k, v, dout, lse, delta, dq, dk, dv, s);
}

} // namespace

extern "C" const lc_attn_iface lc_attn_cuda = {
    "cuda", cuda_workspace_size, cuda_init, cuda_block, cuda_finish, cuda_bwd_prep, cuda_bwd_block, lc_gpu_last_error,
};
