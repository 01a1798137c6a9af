/* Forward block kernel for Hopper (sm_90a): wgmma.mma_async, TMA loads, mbarriers,
 * warp-specialised producer/consumer (the design FlashAttention-3 describes).
 *
 * One block owns BM = 128 query rows of one head: two consumer warpgroups of 64 rows each
 * and one producer warpgroup. The producer's first thread TMA-loads Q once, then K and V tiles
 * of BN keys into an ST-stage ring of shared-memory buffers, each stage guarded by "full"
 * barriers (the TMA transaction count) and an "empty" barrier (one arrival per consumer warp).
 * Tiles the mask skips are never loaded: producer and consumers walk the same list, each
 * classifying the per-tile position summaries itself (a pure function, so no block-wide
 * sync is needed to share it).
 *
 * Consumers overlap the softmax with the tensor cores: at tile i a warpgroup issues
 * S_i = Q K_i^T and O += P_{i-1} V_{i-1} back to back, waits only for S_i, computes the
 * masked online softmax of S_i in fp32 while the P V product runs, then waits for it,
 * rescales O and packs P_i (the A operand of the next P V product, kept in registers).
 * The end is the same merge into the caller's normalised fp32 (o, lse) state as the sm_80
 * kernel, so a ring step is just another call. Compiled for sm_90a only (gpu.cmake). */
#include "attn_cuda.cuh"
#include "common/settings.h"
#include "sm90_layout.h"

#include <cuda.h> /* CUtensorMap */

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define LCG_SM90_DEVICE 1
#include "sm90_wgmma.cuh"
#endif

using namespace lcg;

namespace {

constexpr int kBM = 128;     /* query rows per block: two consumer warpgroups */
constexpr int kThreads = 384; /* producer warpgroup + two consumer warpgroups */

template <int D, int BN, int ST> struct Sm90Smem {
    static constexpr uint32_t q_bytes = kBM * D * 2, kv_bytes = BN * D * 2;
    /* 1024 of slack to align the tiles (the swizzle atom), then Q, K[ST], V[ST], barriers */
    static constexpr size_t total = 1024 + q_bytes + 2 * ST * (size_t)kv_bytes + (1 + 3 * ST) * 8;
};

#ifdef LCG_SM90_DEVICE
__device__ __forceinline__ void mbar_init(uint64_t *b, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(b)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_expect_tx(uint64_t *b, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(b)), "r"(bytes)
                 : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t *b) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_u32(b)) : "memory");
}
/* Waits for the phase of parity `parity` to complete. A pipeline bug would otherwise hang
 * the device for good: after ~10 s (at 2 GHz) the kernel traps instead, so the call fails
 * with a launch error that the caller reports. */
__device__ __forceinline__ void mbar_wait(uint64_t *b, unsigned parity) {
    uint32_t done;
    long long t0 = 0;
    for (;;) {
        asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                     "selp.u32 %0, 1, 0, p;\n}\n"
                     : "=r"(done)
                     : "r"(smem_u32(b)), "r"(parity)
                     : "memory");
        if (done) return;
        if (!t0)
            t0 = clock64();
        else if (clock64() - t0 > 20000000000ll)
            __trap();
    }
}
/* 2-D TMA tile load (x = column in elements, y = row) completing on barrier bar. */
__device__ __forceinline__ void tma_load(void *dst, const CUtensorMap *map, uint64_t *bar, int x, int y) {
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], [%2];\n" ::"r"(
                     smem_u32(dst)),
                 "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_u32(bar)), "r"(x), "r"(y)
                 : "memory");
}
__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wg_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
/* Registers an in-flight wgmma writes or reads: the empty asm pins their uses after the
 * wait (and their definitions before the issue), which the compiler cannot see otherwise. */
template <int N> __device__ __forceinline__ void pin(float (&r)[N]) {
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+f"(r[i])::"memory");
}
template <int N> __device__ __forceinline__ void pin(uint32_t (&r)[N][4]) {
#pragma unroll
    for (int i = 0; i < N; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) asm volatile("" : "+r"(r[i][j])::"memory");
}

/* The non-skipped tiles, in order, 32 at a time: lane l classifies tile c0 + l. Every
 * warp that calls this (producer and consumers) gets the same answer. */
struct TileScan {
    unsigned live, full;
};
__device__ __forceinline__ TileScan scan32(int c0, int ntiles, const lc_tile_sum &qs, const lc_tile_sum *ks,
                                           unsigned kind, long long window) {
    const int j = c0 + (threadIdx.x & 31);
    int cls = LC_BLOCK_SKIP;
    if (j < ntiles) {
        const lc_tile_sum o = ks[j];
        cls = lc_tile_classify(kind, window, &qs, &o);
    }
    TileScan r;
    r.live = __ballot_sync(0xffffffffu, cls != LC_BLOCK_SKIP);
    r.full = __ballot_sync(0xffffffffu, cls == LC_BLOCK_FULL);
    return r;
}
#endif

template <typename T, int D, int BN, int ST>
__global__ void __launch_bounds__(kThreads, 1)
    fwd_sm90_kernel(const FwdParams p, const __grid_constant__ CUtensorMap tq, const __grid_constant__ CUtensorMap tk,
                    const __grid_constant__ CUtensorMap tv) {
#ifdef LCG_SM90_DEVICE
    using S = Sm90Smem<D, BN, ST>;
    constexpr int NCH = D / 64;
    extern __shared__ __align__(1024) unsigned char smem_raw[];
    unsigned char *base = reinterpret_cast<unsigned char *>(
        (reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~static_cast<uintptr_t>(1023));
    unsigned char *sQ = base, *sK = sQ + S::q_bytes, *sV = sK + ST * S::kv_bytes;
    uint64_t *bar = reinterpret_cast<uint64_t *>(sV + ST * S::kv_bytes);
    uint64_t *barQ = bar, *fullK = bar + 1, *fullV = bar + 1 + ST, *empty = bar + 1 + 2 * ST;

    const int tid = threadIdx.x, lane = tid & 31;
    const int h = blockIdx.y, hk = h / p.group;
    const int qb = gridDim.x - 1 - blockIdx.x; /* last row blocks (most tiles when causal) first */
    const int m0 = qb * kBM;
    const lc_tile_sum qsum = p.qsum[qb];
    if (qsum.nvalid == 0) return; /* uniform over the block: nothing initialised yet */
    const int ntiles = (p.sk + BN - 1) / BN;

    if (tid == 0) {
        mbar_init(barQ, 1);
        for (int s = 0; s < ST; s++) {
            mbar_init(&fullK[s], 1);
            mbar_init(&fullV[s], 1);
            mbar_init(&empty[s], 8); /* one arrival per consumer warp */
        }
        asm volatile("fence.mbarrier_init.release.cluster;\nfence.proxy.async.shared::cta;\n" ::: "memory");
    }
    __syncthreads();

    if (tid >= 256) {
        /* producer warpgroup: gives registers to the consumers; one warp scans, one lane issues */
        asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
        if (tid >= 288) return;
        if (lane == 0) {
            mbar_expect_tx(barQ, S::q_bytes);
#pragma unroll
            for (int c = 0; c < NCH; c++) tma_load(sQ + c * kBM * 128, &tq, barQ, h * D + c * 64, m0);
        }
        int i = 0;
        for (int c0 = 0; c0 < ntiles; c0 += 32) {
            const TileScan sc = scan32(c0, ntiles, qsum, p.ksum, p.kind, p.window);
            unsigned live = sc.live;
            while (live) {
                const int j = c0 + __ffs(live) - 1;
                live &= live - 1;
                const int s = i % ST;
                if (lane == 0) {
                    if (i >= ST) mbar_wait(&empty[s], ((i / ST) - 1) & 1);
                    unsigned char *kb = sK + s * S::kv_bytes, *vb = sV + s * S::kv_bytes;
                    mbar_expect_tx(&fullK[s], S::kv_bytes);
#pragma unroll
                    for (int c = 0; c < NCH; c++) tma_load(kb + c * BN * 128, &tk, &fullK[s], hk * D + c * 64, j * BN);
                    mbar_expect_tx(&fullV[s], S::kv_bytes);
#pragma unroll
                    for (int c = 0; c < NCH; c++) tma_load(vb + c * BN * 128, &tv, &fullV[s], hk * D + c * 64, j * BN);
                }
                i++;
            }
        }
        return;
    }

    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");
    const int wg = tid >> 7, wq = (tid >> 5) & 3; /* consumer warpgroup, warp inside it */
    const int g = lane >> 2, t = lane & 3;
    const bool use_doc = (p.kind & LC_MASK_DOC) != 0;
    int32_t qp[2], qd[2];
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        const int row = m0 + wg * 64 + wq * 16 + g + 8 * rr;
        qp[rr] = row_pos(p.q_pos, row, p.sq);
        qd[rr] = use_doc ? row_doc(p.q_doc, row, p.sq) : 0;
    }
    const uint32_t q_s = smem_u32(sQ), k_s = smem_u32(sK), v_s = smem_u32(sV);

    float o[D / 2], sc[BN / 2];
#pragma unroll
    for (int x = 0; x < D / 2; x++) o[x] = 0.f;
    float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.f, 0.f};
    uint32_t pk[BN / 16][4]; /* P of the previous tile: the A fragments of its P V product */
    int prev_s = -1;

    mbar_wait(barQ, 0);
    int i = 0;
    for (int c0 = 0; c0 < ntiles; c0 += 32) {
        const TileScan tsc = scan32(c0, ntiles, qsum, p.ksum, p.kind, p.window);
        unsigned live = tsc.live;
        while (live) {
            const int bit = __ffs(live) - 1;
            live &= live - 1;
            const int j = c0 + bit;
            const bool full = (tsc.full >> bit) & 1u;
            const int s = i % ST;
            mbar_wait(&fullK[s], (i / ST) & 1);
            /* S_i = Q K_i^T; the registers of both products below are pinned before the
             * fence, so that nothing the compiler moves lands inside the pipeline stage. */
            pin(sc);
            if (prev_s >= 0) {
                pin(o);
                pin(pk);
            }
            wg_fence();
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++)
                sm90::wgmma_ss<T, BN>(sc, lc_sm90_desc_kmajor(q_s, kBM, wg * 64, kk),
                                      lc_sm90_desc_kmajor(k_s + s * S::kv_bytes, BN, 0, kk), kk > 0);
            wg_commit();
            /* O += P_{i-1} V_{i-1}, running while the softmax of S_i is computed */
            if (prev_s >= 0) {
#pragma unroll
                for (int kk = 0; kk < BN / 16; kk++)
                    sm90::wgmma_rs_tb<T, D>(o, pk[kk], lc_sm90_desc_nmajor(v_s + prev_s * S::kv_bytes, BN, kk));
            }
            /* The second group is empty when there is no previous tile: the same two groups
             * and the same waits on every path. With a wait<0> on the first tile's path instead,
             * ptxas could not tell that S_i is complete after wait<1> and serialised every
             * wgmma of the kernel (C7515; tests/gpu/sm90_ptxas.sh keeps it out). */
            wg_commit();
            wg_wait<1>();
            pin(sc);

            if (!full) {
#pragma unroll
                for (int nb = 0; nb < BN / 8; nb++)
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        const int col = j * BN + nb * 8 + 2 * t + e;
                        const int32_t kp = row_pos(p.k_pos, col, p.sk);
                        const int32_t kd = use_doc ? row_doc(p.k_doc, col, p.sk) : 0;
#pragma unroll
                        for (int rr = 0; rr < 2; rr++)
                            if (!lc_mask_allowed(p.kind, p.window, qp[rr], kp, qd[rr], kd)) sc[nb * 4 + 2 * rr + e] = -INFINITY;
                    }
            }
            float alpha[2];
#pragma unroll
            for (int rr = 0; rr < 2; rr++) {
                float mx = mrow[rr];
#pragma unroll
                for (int nb = 0; nb < BN / 8; nb++) mx = fmaxf(mx, fmaxf(sc[nb * 4 + 2 * rr], sc[nb * 4 + 2 * rr + 1]));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                /* a row with nothing allowed yet keeps max -inf; 0 avoids inf - inf */
                const float ms = mx == -INFINITY ? 0.f : mx * p.scale_log2;
                alpha[rr] = exp2f(mrow[rr] * p.scale_log2 - ms);
                mrow[rr] = mx;
                float ls = 0.f;
#pragma unroll
                for (int nb = 0; nb < BN / 8; nb++) {
                    sc[nb * 4 + 2 * rr] = exp2f(fmaf(sc[nb * 4 + 2 * rr], p.scale_log2, -ms));
                    sc[nb * 4 + 2 * rr + 1] = exp2f(fmaf(sc[nb * 4 + 2 * rr + 1], p.scale_log2, -ms));
                    ls += sc[nb * 4 + 2 * rr] + sc[nb * 4 + 2 * rr + 1];
                }
                lrow[rr] = lrow[rr] * alpha[rr] + ls;
            }
            wg_wait<0>();
            if (prev_s >= 0) {
                pin(o);
                pin(pk);
                __syncwarp();
                if (lane == 0) mbar_arrive(&empty[prev_s]); /* K and V of tile i-1 are free */
            }
#pragma unroll
            for (int dn = 0; dn < D / 8; dn++) {
                o[dn * 4 + 0] *= alpha[0];
                o[dn * 4 + 1] *= alpha[0];
                o[dn * 4 + 2] *= alpha[1];
                o[dn * 4 + 3] *= alpha[1];
            }
#pragma unroll
            for (int kk = 0; kk < BN / 16; kk++) {
                pk[kk][0] = Mma<T>::pack(sc[8 * kk + 0], sc[8 * kk + 1]);
                pk[kk][1] = Mma<T>::pack(sc[8 * kk + 2], sc[8 * kk + 3]);
                pk[kk][2] = Mma<T>::pack(sc[8 * kk + 4], sc[8 * kk + 5]);
                pk[kk][3] = Mma<T>::pack(sc[8 * kk + 6], sc[8 * kk + 7]);
            }
            mbar_wait(&fullV[s], (i / ST) & 1);
            prev_s = s;
            i++;
        }
    }
    if (prev_s >= 0) {
        pin(o);
        pin(pk);
        wg_fence();
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++)
            sm90::wgmma_rs_tb<T, D>(o, pk[kk], lc_sm90_desc_nmajor(v_s + prev_s * S::kv_bytes, BN, kk));
        wg_commit();
        wg_wait<0>();
        pin(o);
    } else {
        return; /* every tile skipped: the state stays as it is */
    }

#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        float l = lrow[rr];
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        l += __shfl_xor_sync(0xffffffffu, l, 2);
        const int row = m0 + wg * 64 + wq * 16 + g + 8 * rr;
        const bool live = row < p.sq && l > 0.f;
        float *lse_p = p.lse + (size_t)row * p.hq + h;
        float old_lse = -INFINITY;
        if (live) old_lse = *lse_p;
        __syncwarp(); /* the row's four lanes read the old lse before its first lane writes */
        if (!live) continue;
        const float blk_lse = mrow[rr] * p.scale + logf(l);
        const float new_lse = lc_lse_merge(old_lse, blk_lse);
        const float wo = old_lse == -INFINITY ? 0.f : expf(old_lse - new_lse);
        const float wb = expf(blk_lse - new_lse) / l;
        float *orow = p.o + ((size_t)row * p.hq + h) * D;
#pragma unroll
        for (int dn = 0; dn < D / 8; dn++) {
            float2 *op = reinterpret_cast<float2 *>(orow + dn * 8 + 2 * t);
            float2 ov = wo == 0.f ? make_float2(0.f, 0.f) : *op;
            ov.x = ov.x * wo + o[dn * 4 + 2 * rr] * wb;
            ov.y = ov.y * wo + o[dn * 4 + 2 * rr + 1] * wb;
            *op = ov;
        }
        if (t == 0) *lse_p = new_lse;
    }
#endif
}

} // namespace

/* ---- host side ---- */

#include <cudaTypedefs.h>
#include <stdlib.h>
#include <string.h>

namespace {

PFN_cuTensorMapEncodeTiled_v12000 lookup_encode() {
    void *f = nullptr;
    cudaDriverEntryPointQueryResult q;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) == cudaSuccess &&
        q == cudaDriverEntryPointSuccess)
        return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
    (void)cudaGetLastError();
    return nullptr;
}

/* the driver's tensor-map encoder, looked up once (thread-safe static initialisation) */
PFN_cuTensorMapEncodeTiled_v12000 encode_fn() {
    static const PFN_cuTensorMapEncodeTiled_v12000 fn = lookup_encode();
    return fn;
}

/* [rows, heads * d] 16-bit tensor, boxes of 64 columns x box_rows rows, 128-byte swizzle;
 * rows past the end read as zeros. */
int make_map(CUtensorMap *m, const void *ptr, int rows, int heads, int d, int box_rows) {
    PFN_cuTensorMapEncodeTiled_v12000 fn = encode_fn();
    if (!fn) return (int)cudaErrorNotSupported;
    cuuint64_t dims[2] = {(cuuint64_t)heads * d, (cuuint64_t)rows};
    cuuint64_t strides[1] = {(cuuint64_t)heads * d * 2};
    cuuint32_t box[2] = {64, (cuuint32_t)box_rows};
    cuuint32_t es[2] = {1, 1};
    CUresult r = fn(m, CU_TENSOR_MAP_DATA_TYPE_UINT16, 2, const_cast<void *>(ptr), dims, strides, box, es,
                    CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                    CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    return r == CUDA_SUCCESS ? 0 : (int)cudaErrorInvalidValue;
}

template <typename T, int D, int BN, int ST> int launch(const FwdParams &p, cudaStream_t s) {
    using S = Sm90Smem<D, BN, ST>;
    static_assert(S::total <= 227 * 1024, "shared memory over the sm_90 limit");
    CUtensorMap tq, tk, tv;
    int e;
    if ((e = make_map(&tq, p.q, p.sq, p.hq, D, kBM)) || (e = make_map(&tk, p.k, p.sk, p.hkv, D, BN)) ||
        (e = make_map(&tv, p.v, p.sk, p.hkv, D, BN)))
        return e;
    cudaError_t ce = cudaFuncSetAttribute(fwd_sm90_kernel<T, D, BN, ST>,
                                          cudaFuncAttributeMaxDynamicSharedMemorySize, (int)S::total);
    if (ce != cudaSuccess) return (int)ce;
    dim3 grid((p.sq + kBM - 1) / kBM, p.hq);
    fwd_sm90_kernel<T, D, BN, ST><<<grid, kThreads, S::total, s>>>(p, tq, tk, tv);
    return (int)cudaGetLastError();
}

/* Keys per tile and pipeline stages: 128 x 2 (default) or 64 x 4, chosen by
 * $LONGCTX_GPU_SM90_BN (128 | 64) so the GPU check times both. */
int sm90_bn() {
    static int bn = 0;
    if (!bn) {
        const char *e = lc__env_str("LONGCTX_GPU_SM90_BN");
        bn = (e && atoi(e) == 64) ? 64 : 128;
    }
    return bn;
}

} // namespace

int lcg_fwd_sm90_bm(int) { return kBM; }
int lcg_fwd_sm90_bn(int) { return sm90_bn(); }

int lcg_launch_fwd_sm90(int dtype, int d, const FwdParams &p, cudaStream_t s) {
    if (sm90_bn() == 128) {
        if (dtype == 1 && d == 64) return launch<__nv_bfloat16, 64, 128, 2>(p, s);
        if (dtype == 1 && d == 128) return launch<__nv_bfloat16, 128, 128, 2>(p, s);
        if (dtype == 2 && d == 64) return launch<__half, 64, 128, 2>(p, s);
        if (dtype == 2 && d == 128) return launch<__half, 128, 128, 2>(p, s);
    } else {
        if (dtype == 1 && d == 64) return launch<__nv_bfloat16, 64, 64, 4>(p, s);
        if (dtype == 1 && d == 128) return launch<__nv_bfloat16, 128, 64, 4>(p, s);
        if (dtype == 2 && d == 64) return launch<__half, 64, 64, 4>(p, s);
        if (dtype == 2 && d == 128) return launch<__half, 128, 64, 4>(p, s);
    }
    return (int)cudaErrorInvalidValue;
}
