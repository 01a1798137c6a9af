/* The small memory-bound kernels around the attention kernels (state init, output cast,
 * delta, per-tile position summaries), in a header so the CPU emulator runs them too. */
#ifndef LONGCTX_ATTN_SMALL_CUH
#define LONGCTX_ATTN_SMALL_CUH

#include "attn_cuda.cuh"

/* internal linkage: included by one translation unit per binary */
namespace lcg {
namespace {

__global__ void fill_kernel(float *p, size_t n, float v) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        p[i] = v;
}

template <typename T> __global__ void finish_kernel(const float *o, T *out, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = Mma<T>::from_f(o[i]);
}

/* One warp per (row, head); D is 64 or 128 so each lane takes D/32 elements. */
template <typename T>
__global__ void delta_kernel(const float *o, const T *dout, float *delta, int rows, int d) {
    const int w = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
    if (w >= rows) return;
    const float *op = o + (size_t)w * d;
    const T *dp = dout + (size_t)w * d;
    float acc = 0.f;
    for (int i = lane; i < d; i += 32) acc += op[i] * Mma<T>::to_f(dp[i]);
#pragma unroll
    for (int m = 16; m; m >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, m);
    if (lane == 0) delta[w] = acc;
}

/* One warp per tile. */
__global__ void tile_sum_kernel(const int32_t *pos, const int32_t *doc, int n, int tile,
                                int ntiles, lc_tile_sum *out) {
    const int w = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
    if (w >= ntiles) return;
    lc_tile_sum s;
    lc_tile_sum_init(&s, tile);
    for (int i = lane; i < tile; i += 32) {
        const int r = w * tile + i;
        if (r < n) lc_tile_sum_add(&s, pos ? pos[r] : r, doc ? doc[r] : 0);
    }
#pragma unroll
    for (int m = 16; m; m >>= 1) {
        lc_tile_sum o;
        o.pmin = __shfl_xor_sync(0xffffffffu, s.pmin, m);
        o.pmax = __shfl_xor_sync(0xffffffffu, s.pmax, m);
        o.dmin = __shfl_xor_sync(0xffffffffu, s.dmin, m);
        o.dmax = __shfl_xor_sync(0xffffffffu, s.dmax, m);
        o.nvalid = __shfl_xor_sync(0xffffffffu, s.nvalid, m);
        lc_tile_sum_merge(&s, &o);
    }
    if (lane == 0) out[w] = s;
}

} // namespace
} // namespace lcg

#endif
