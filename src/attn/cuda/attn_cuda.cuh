/* Private to the CUDA attention kernels: tensor-core fragments (mma.sync m16n8k16 with fp32
 * accumulators, ldmatrix, cp.async) and the parameter blocks the launchers pass. */
#ifndef LONGCTX_ATTN_CUDA_CUH
#define LONGCTX_ATTN_CUDA_CUH

#include <stdint.h>
#include <string.h>

/* The hardware primitives (mma, ldmatrix, cp.async, launch): the real gpu_arch.h
 * (src/attn/cuda/arch) or the emulator's (tests/gpu/emu), whichever the build's include path
 * names; this source is the same in both. */
#include "gpu_arch.h"

#include "attn/core.h"

namespace lcg {

constexpr float kLog2e = 1.4426950408889634f;

/* Keys per K/V tile of the forward: the score tile (16 x 64 per warp) fits 32 registers.
 * The backward's key tile is 16 per warp (lcg_bwd_bn). */
constexpr int kBN = 64;
/* Tiles classified per pass of the skip list: one per thread of a 128-thread block. */
constexpr int kChunk = 128;

struct FwdParams {
    const void *q, *k, *v;
    float *o, *lse;
    const int32_t *q_pos, *k_pos, *q_doc, *k_doc;
    const lc_tile_sum *qsum; /* per BM rows of Q */
    const lc_tile_sum *ksum; /* per kBN rows of K */
    int sq, sk, hq, hkv, group;
    unsigned kind;
    long long window;
    float scale, scale_log2;
};

struct BwdParams {
    const void *q, *k, *v, *dout;
    const float *lse, *delta;
    float *dq, *dk, *dv;
    const int32_t *q_pos, *k_pos, *q_doc, *k_doc;
    const lc_tile_sum *qsum; /* per BMB rows of Q */
    const lc_tile_sum *ksum; /* per lcg_bwd_bn rows of K */
    int sq, sk, hq, hkv, group;
    unsigned kind;
    long long window;
    float scale, scale_log2;
};

template <typename T> struct Mma;

template <> struct Mma<__nv_bfloat16> {
    static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
        __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
        uint32_t u;
        memcpy(&u, &h, 4);
        return u;
    }
    static __device__ __forceinline__ __nv_bfloat16 from_f(float x) { return __float2bfloat16_rn(x); }
    static __device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
    static __device__ __forceinline__ void mma(float c[4], const uint32_t a[4], uint32_t b0,
                                               uint32_t b1) {
        mma_bf16(c, a, b0, b1);
    }
};

template <> struct Mma<__half> {
    static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
        __half2 h = __floats2half2_rn(lo, hi);
        uint32_t u;
        memcpy(&u, &h, 4);
        return u;
    }
    static __device__ __forceinline__ __half from_f(float x) { return __float2half_rn(x); }
    static __device__ __forceinline__ float to_f(__half x) { return __half2float(x); }
    static __device__ __forceinline__ void mma(float c[4], const uint32_t a[4], uint32_t b0,
                                               uint32_t b1) {
        mma_f16(c, a, b0, b1);
    }
};


/* Rows [row0, row0+R) of a [n, heads*D] tensor (head already applied to g) into a padded
 * [R][D+8] tile: the 16-byte pad staggers rows across banks for ldmatrix. */
template <typename T, int D, int R, int NT>
__device__ __forceinline__ void load_tile(T *s, const T *g, size_t gstride, int row0, int n) {
    constexpr int CPR = D / 8;
#pragma unroll
    for (int c = threadIdx.x; c < R * CPR; c += NT) {
        int r = c / CPR, cc = c % CPR;
        bool ok = row0 + r < n;
        const T *src = ok ? g + (size_t)(row0 + r) * gstride + cc * 8 : g;
        cp16(s + r * (D + 8) + cc * 8, src, ok);
    }
}

/* Position and document id of one row; rows past the end are padding. */
__device__ __forceinline__ int32_t row_pos(const int32_t *pos, int r, int n) {
    return r >= n ? -1 : (pos ? pos[r] : r);
}
__device__ __forceinline__ int32_t row_doc(const int32_t *doc, int r, int n) {
    return (doc && r < n) ? doc[r] : 0;
}

/* Fills a slot of n positions/doc ids in shared memory for rows [row0, row0+n), through
 * cp.async where the source exists so that the copy overlaps the current tile's work. */
__device__ __forceinline__ void load_pos(int32_t *s, const int32_t *pos, int row0, int n,
                                         int limit, int fill_missing_with_index) {
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        int r = row0 + i;
        if (r < limit && pos)
            cp4(s + i, pos + r);
        else
            s[i] = r < limit ? (fill_missing_with_index ? r : 0) : -1;
    }
}

/* Builds, in order, the list of non-skipped tiles [c0, c0+kChunk) of this block; bit 30
 * marks a FULL tile. Returns the count; every thread of the block must call it. */
__device__ __forceinline__ int build_list(int *list, int *warp_cnt, int c0, int n,
                                          const lc_tile_sum &mine, const lc_tile_sum *sums,
                                          unsigned kind, long long window) {
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nw = blockDim.x >> 5;
    int cls = LC_BLOCK_SKIP;
    int j = c0 + tid;
    if (tid < kChunk && j < n) {
        lc_tile_sum o = sums[j];
        cls = lc_tile_classify(kind, window, &mine, &o);
    }
    unsigned bal = __ballot_sync(0xffffffffu, cls != LC_BLOCK_SKIP);
    if (lane == 0) warp_cnt[warp] = __popc(bal);
    __syncthreads();
    int off = 0, total = 0;
    for (int w = 0; w < nw; w++) {
        if (w < warp) off += warp_cnt[w];
        total += warp_cnt[w];
    }
    if (cls != LC_BLOCK_SKIP)
        list[off + __popc(bal & ((1u << lane) - 1u))] = j | (cls == LC_BLOCK_FULL ? (1 << 30) : 0);
    __syncthreads();
    return total;
}

} // namespace lcg

/* Launchers, one per direction, dispatching dtype (1 bf16, 2 f16) and head dim. They return
 * a cudaError_t as int. */
int lcg_fwd_bm(int d);
int lcg_bwd_bm(int d);
int lcg_bwd_bn(int d); /* keys per backward block (its K summaries use this tile) */
int lcg_launch_fwd(int dtype, int d, const lcg::FwdParams &p, cudaStream_t s);
int lcg_launch_bwd(int dtype, int d, const lcg::BwdParams &p, cudaStream_t s);
/* The Hopper forward (attn_fwd_sm90.cu, sm_90a only): rows per block, keys per tile. */
int lcg_fwd_sm90_bm(int d);
int lcg_fwd_sm90_bn(int d);
int lcg_launch_fwd_sm90(int dtype, int d, const lcg::FwdParams &p, cudaStream_t s);

#endif
