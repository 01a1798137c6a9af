/* Forward block kernel (FlashAttention-2 algorithm 1) on mma.sync m16n8k16.
 *
 * One block owns BM = 16*NW query rows of one head; each warp owns 16 rows and keeps its Q
 * fragments in registers. K/V tiles of kBN keys stream through a double-buffered cp.async
 * pipeline; tiles that the mask skips are never loaded (the skip list is built from
 * precomputed per-tile position summaries), FULL tiles run without per-element masking.
 * At the end the block's (o, lse) is merged into the caller's normalised fp32 state, so
 * a ring step is just another call. */
#include "attn_cuda.cuh"
#include "common/settings.h"

using namespace lcg;

namespace {

template <typename T, int D, int NW, int MT>
__global__ void __launch_bounds__(NW * 32) fwd_kernel(const FwdParams p) {
    /* MT m-tiles of 16 rows per warp: with MT = 2 every K/V fragment read from shared
     * memory feeds twice the tensor-core work; Q is then re-read from shared memory at each
     * k-step instead of living in registers, which the doubled accumulators need. */
    constexpr int BM = NW * 16 * MT, BN = kBN, SD = D + 8, NT = NW * 32;
    constexpr bool kQRegs = MT == 1;
    LCG_DYNAMIC_SMEM(smem);
    T *sQ = reinterpret_cast<T *>(smem);
    T *sK = sQ + BM * SD;
    T *sV = sK + 2 * BN * SD;
    int32_t *sKp = reinterpret_cast<int32_t *>(sV + 2 * BN * SD);
    int32_t *sKd = sKp + 2 * BN;
    int *sList = sKd + 2 * BN;
    __shared__ int sWarpCnt[NW];

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, t = lane & 3;
    const int h = blockIdx.y, hk = h / p.group;
    /* last row blocks first: under a causal mask they carry the most tiles, and starting
     * them early keeps the tail of the grid short */
    const int qb = gridDim.x - 1 - blockIdx.x;
    const int m0 = qb * BM;
    const lc_tile_sum qsum = p.qsum[qb];
    if (qsum.nvalid == 0) return; /* padding-only rows: the state stays as it is */

    const size_t qstride = (size_t)p.hq * D, kstride = (size_t)p.hkv * D;
    const T *Q = reinterpret_cast<const T *>(p.q) + (size_t)h * D;
    const T *K = reinterpret_cast<const T *>(p.k) + (size_t)hk * D;
    const T *V = reinterpret_cast<const T *>(p.v) + (size_t)hk * D;
    const bool use_doc = (p.kind & LC_MASK_DOC) != 0;

    load_tile<T, D, BM, NT>(sQ, Q, qstride, m0, p.sq);
    cp_commit();

    int32_t qp[MT][2], qd[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int rr = 0; rr < 2; rr++) {
            const int row = m0 + (warp * MT + mt) * 16 + g + 8 * rr;
            qp[mt][rr] = row_pos(p.q_pos, row, p.sq);
            qd[mt][rr] = use_doc ? row_doc(p.q_doc, row, p.sq) : 0;
        }
    const T *sQw = sQ + warp * MT * 16 * SD;

    cp_wait_all();
    __syncthreads();
    uint32_t qf[kQRegs ? D / 16 : 1][4];
    if (kQRegs) {
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++)
            ldsm_x4(qf[kk], sQw + (lane & 15) * SD + kk * 16 + (lane >> 4) * 8);
    }

    float acc[MT][D / 8][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int i = 0; i < D / 8; i++) acc[mt][i][0] = acc[mt][i][1] = acc[mt][i][2] = acc[mt][i][3] = 0.f;
    float mrow[MT][2], lrow[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        mrow[mt][0] = mrow[mt][1] = -INFINITY;
        lrow[mt][0] = lrow[mt][1] = 0.f;
    }

    const int ntiles = (p.sk + BN - 1) / BN;
    auto issue = [&](int j, int b) {
        load_tile<T, D, BN, NT>(sK + b * BN * SD, K, kstride, j * BN, p.sk);
        load_tile<T, D, BN, NT>(sV + b * BN * SD, V, kstride, j * BN, p.sk);
        load_pos(sKp + b * BN, p.k_pos, j * BN, BN, p.sk, 1);
        if (use_doc) load_pos(sKd + b * BN, p.k_doc, j * BN, BN, p.sk, 0);
        cp_commit();
    };

    for (int c0 = 0; c0 < ntiles; c0 += kChunk) {
        const int n = build_list(sList, sWarpCnt, c0, ntiles, qsum, p.ksum, p.kind, p.window);
        if (n == 0) continue;
        issue(sList[0] & ((1 << 30) - 1), 0);
        for (int i = 0; i < n; i++) {
            const int e = sList[i], b = i & 1;
            const bool full = (e >> 30) & 1;
            cp_wait_all();
            __syncthreads();
            if (i + 1 < n) issue(sList[i + 1] & ((1 << 30) - 1), b ^ 1);
            const T *kb = sK + b * BN * SD, *vb = sV + b * BN * SD;

            float s[MT][BN / 8][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int j = 0; j < BN / 8; j++) s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                uint32_t qa[MT][4];
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    if (kQRegs) {
#pragma unroll
                        for (int x = 0; x < 4; x++) qa[mt][x] = qf[kQRegs ? kk : 0][x];
                    } else {
                        ldsm_x4(qa[mt], sQw + (mt * 16 + (lane & 15)) * SD + kk * 16 + (lane >> 4) * 8);
                    }
                }
#pragma unroll
                for (int np = 0; np < BN / 16; np++) {
                    uint32_t r[4];
                    ldsm_x4(r, kb + (np * 16 + (lane & 7) + (lane >> 4) * 8) * SD + kk * 16 +
                                   ((lane >> 3) & 1) * 8);
#pragma unroll
                    for (int mt = 0; mt < MT; mt++) {
                        Mma<T>::mma(s[mt][2 * np], qa[mt], r[0], r[1]);
                        Mma<T>::mma(s[mt][2 * np + 1], qa[mt], r[2], r[3]);
                    }
                }
            }
            if (!full) {
                const int32_t *kp = sKp + b * BN, *kd = sKd + b * BN;
#pragma unroll
                for (int mt = 0; mt < MT; mt++)
#pragma unroll
                    for (int j = 0; j < BN / 8; j++)
#pragma unroll
                        for (int e2 = 0; e2 < 4; e2++) {
                            const int col = j * 8 + 2 * t + (e2 & 1);
                            if (!lc_mask_allowed(p.kind, p.window, qp[mt][e2 >> 1], kp[col], qd[mt][e2 >> 1],
                                               use_doc ? kd[col] : 0))
                                s[mt][j][e2] = -INFINITY;
                        }
            }
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int rr = 0; rr < 2; rr++) {
                    float mx = mrow[mt][rr];
#pragma unroll
                    for (int j = 0; j < BN / 8; j++) mx = fmaxf(mx, fmaxf(s[mt][j][2 * rr], s[mt][j][2 * rr + 1]));
                    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                    /* a row with nothing allowed yet keeps max -inf; 0 avoids inf - inf */
                    const float ms = mx == -INFINITY ? 0.f : mx * p.scale_log2;
                    const float alpha = exp2f(mrow[mt][rr] * p.scale_log2 - ms);
                    mrow[mt][rr] = mx;
                    lrow[mt][rr] *= alpha;
#pragma unroll
                    for (int dn = 0; dn < D / 8; dn++) {
                        acc[mt][dn][2 * rr] *= alpha;
                        acc[mt][dn][2 * rr + 1] *= alpha;
                    }
                    float ls = 0.f;
#pragma unroll
                    for (int j = 0; j < BN / 8; j++) {
                        s[mt][j][2 * rr] = exp2f(fmaf(s[mt][j][2 * rr], p.scale_log2, -ms));
                        s[mt][j][2 * rr + 1] = exp2f(fmaf(s[mt][j][2 * rr + 1], p.scale_log2, -ms));
                        ls += s[mt][j][2 * rr] + s[mt][j][2 * rr + 1];
                    }
                    lrow[mt][rr] += ls;
                }
#pragma unroll
            for (int kk = 0; kk < BN / 16; kk++) {
                uint32_t a[MT][4];
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    a[mt][0] = Mma<T>::pack(s[mt][2 * kk][0], s[mt][2 * kk][1]);
                    a[mt][1] = Mma<T>::pack(s[mt][2 * kk][2], s[mt][2 * kk][3]);
                    a[mt][2] = Mma<T>::pack(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
                    a[mt][3] = Mma<T>::pack(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
                }
#pragma unroll
                for (int dp = 0; dp < D / 16; dp++) {
                    uint32_t r[4];
                    ldsm_x4_t(r, vb + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * SD +
                                     dp * 16 + (lane >> 4) * 8);
#pragma unroll
                    for (int mt = 0; mt < MT; mt++) {
                        Mma<T>::mma(acc[mt][2 * dp], a[mt], r[0], r[1]);
                        Mma<T>::mma(acc[mt][2 * dp + 1], a[mt], r[2], r[3]);
                    }
                }
            }
        }
        __syncthreads(); /* the list and both buffers are reused by the next chunk */
    }

#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int rr = 0; rr < 2; rr++) {
            float l = lrow[mt][rr];
            l += __shfl_xor_sync(0xffffffffu, l, 1);
            l += __shfl_xor_sync(0xffffffffu, l, 2);
            const int row = m0 + (warp * MT + mt) * 16 + g + 8 * rr;
            float old_lse = -INFINITY;
            const bool live = row < p.sq && l > 0.f;
            float *lse_p = p.lse + (size_t)row * p.hq + h;
            if (live) old_lse = *lse_p;
            __syncwarp();
            if (!live) continue;
            const float blk_lse = mrow[mt][rr] * p.scale + logf(l);
            const float new_lse = lc_lse_merge(old_lse, blk_lse);
            const float wo = old_lse == -INFINITY ? 0.f : expf(old_lse - new_lse);
            const float wb = expf(blk_lse - new_lse) / l;
            float *orow = p.o + ((size_t)row * p.hq + h) * D;
#pragma unroll
            for (int dn = 0; dn < D / 8; dn++) {
                float2 *op = reinterpret_cast<float2 *>(orow + dn * 8 + 2 * t);
                float2 ov = wo == 0.f ? make_float2(0.f, 0.f) : *op;
                ov.x = ov.x * wo + acc[mt][dn][2 * rr] * wb;
                ov.y = ov.y * wo + acc[mt][dn][2 * rr + 1] * wb;
                *op = ov;
            }
            if (t == 0) *lse_p = new_lse;
        }
}

template <typename T, int D, int NW, int MT> constexpr size_t fwd_smem() {
    return (size_t)(NW * 16 * MT + 4 * kBN) * (D + 8) * sizeof(T) + 4 * kBN * sizeof(int32_t) +
           kChunk * sizeof(int);
}

template <typename T, int D, int NW, int MT> int launch_fwd(const FwdParams &p, cudaStream_t s) {
    constexpr int BM = NW * 16 * MT;
    const size_t smem = fwd_smem<T, D, NW, MT>();
    /* A100 allows 163 KiB of dynamic shared memory per block, H100/H200 227 KiB */
    static_assert(fwd_smem<T, D, NW, MT>() <= 163 * 1024, "shared memory over the sm_80 limit");
    int e = set_dyn_smem(fwd_kernel<T, D, NW, MT>, smem);
    if (e) return e;
    return lcg::launch(fwd_kernel<T, D, NW, MT>, dim3((p.sq + BM - 1) / BM, p.hq), NW * 32, smem, s, p);
}

/* Four warps per block. Rows per warp (16 * MT) are a run-time choice between the two
 * compiled variants ($LONGCTX_GPU_FWD_MT = 1 or 2 overrides), so the GPU check can time
 * both. */
constexpr int kFwdWarps = 4;

} // namespace

#include <stdlib.h>

/* Default: two m-tiles at D=64; one at D=128, where two spill (ptxas: 255 registers and
 * 256 bytes of spill loads per tile); the GPU check times both. */
static int fwd_mt(int d) {
    static int env = -1;
    if (env < 0) {
        const char *e = lc__env_str("LONGCTX_GPU_FWD_MT");
        env = e ? atoi(e) : 0;
    }
    if (env == 1 || env == 2) return env;
    return d == 64 ? 2 : 1;
}

int lcg_fwd_bm(int d) { return kFwdWarps * 16 * fwd_mt(d); }

int lcg_launch_fwd(int dtype, int d, const FwdParams &p, cudaStream_t s) {
    if (fwd_mt(d) == 1) {
        if (dtype == 1 && d == 64) return launch_fwd<__nv_bfloat16, 64, kFwdWarps, 1>(p, s);
        if (dtype == 1 && d == 128) return launch_fwd<__nv_bfloat16, 128, kFwdWarps, 1>(p, s);
        if (dtype == 2 && d == 64) return launch_fwd<__half, 64, kFwdWarps, 1>(p, s);
        if (dtype == 2 && d == 128) return launch_fwd<__half, 128, kFwdWarps, 1>(p, s);
    } else {
        if (dtype == 1 && d == 64) return launch_fwd<__nv_bfloat16, 64, kFwdWarps, 2>(p, s);
        if (dtype == 1 && d == 128) return launch_fwd<__nv_bfloat16, 128, kFwdWarps, 2>(p, s);
        if (dtype == 2 && d == 64) return launch_fwd<__half, 64, kFwdWarps, 2>(p, s);
        if (dtype == 2 && d == 128) return launch_fwd<__half, 128, kFwdWarps, 2>(p, s);
    }
    return (int)cudaErrorInvalidValue;
}
