/* Forward block kernel (FlashAttention-2 algorithm 1) on mma.sync m16n8k16.
 *
 * One block owns BM = 16*NW query rows of one head; each warp owns 16 rows and keeps its Q
 * fragments in registers. K/V tiles of kBN keys stream through a double-buffered cp.async
 * pipeline; tiles that the mask skips are never loaded (the skip list is built from
 * precomputed per-tile position summaries), FULL tiles run without per-element masking.
 * At the end the block's (o, lse) is merged into the caller's normalised fp32 state, so
 * a ring step is just another call. */
#include "attn_cuda.cuh"

using namespace lcg;

namespace {

template <typename T, int D, int NW>
__global__ void __launch_bounds__(NW * 32) fwd_kernel(const FwdParams p) {
    constexpr int BM = NW * 16, BN = kBN, SD = D + 8, NT = NW * 32;
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
    const int m0 = blockIdx.x * BM;
    const lc_tile_sum qsum = p.qsum[blockIdx.x];
    if (qsum.nvalid == 0) return; /* padding-only rows: the state stays as it is */

    const size_t qstride = (size_t)p.hq * D, kstride = (size_t)p.hkv * D;
    const T *Q = reinterpret_cast<const T *>(p.q) + (size_t)h * D;
    const T *K = reinterpret_cast<const T *>(p.k) + (size_t)hk * D;
    const T *V = reinterpret_cast<const T *>(p.v) + (size_t)hk * D;
    const bool use_doc = (p.kind & LC_TL_DOC) != 0;

    load_tile<T, D, BM, NT>(sQ, Q, qstride, m0, p.sq);
    cp_commit();

    const int r0 = m0 + warp * 16 + g, r1 = r0 + 8;
    const int32_t qp0 = row_pos(p.q_pos, r0, p.sq), qp1 = row_pos(p.q_pos, r1, p.sq);
    const int32_t qd0 = use_doc ? row_doc(p.q_doc, r0, p.sq) : 0;
    const int32_t qd1 = use_doc ? row_doc(p.q_doc, r1, p.sq) : 0;

    cp_wait_all();
    __syncthreads();
    uint32_t qf[D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
        ldsm_x4(qf[kk], sQ + (warp * 16 + (lane & 15)) * SD + kk * 16 + (lane >> 4) * 8);

    float acc[D / 8][4];
#pragma unroll
    for (int i = 0; i < D / 8; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
    float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.f, 0.f};

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

            float s[BN / 8][4];
#pragma unroll
            for (int j = 0; j < BN / 8; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
#pragma unroll
                for (int np = 0; np < BN / 16; np++) {
                    uint32_t r[4];
                    ldsm_x4(r, kb + (np * 16 + (lane & 7) + (lane >> 4) * 8) * SD + kk * 16 +
                                   ((lane >> 3) & 1) * 8);
                    Mma<T>::mma(s[2 * np], qf[kk], r[0], r[1]);
                    Mma<T>::mma(s[2 * np + 1], qf[kk], r[2], r[3]);
                }
            }
            if (!full) {
                const int32_t *kp = sKp + b * BN, *kd = sKd + b * BN;
#pragma unroll
                for (int j = 0; j < BN / 8; j++)
#pragma unroll
                    for (int e2 = 0; e2 < 4; e2++) {
                        const int col = j * 8 + 2 * t + (e2 & 1);
                        const int32_t qp = (e2 >> 1) ? qp1 : qp0, qd = (e2 >> 1) ? qd1 : qd0;
                        if (!lc_tl_allowed(p.kind, p.window, qp, kp[col], qd,
                                           use_doc ? kd[col] : 0))
                            s[j][e2] = -INFINITY;
                    }
            }
#pragma unroll
            for (int rr = 0; rr < 2; rr++) {
                float mx = mrow[rr];
#pragma unroll
                for (int j = 0; j < BN / 8; j++) mx = fmaxf(mx, fmaxf(s[j][2 * rr], s[j][2 * rr + 1]));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                /* a row with nothing allowed yet keeps max -inf; 0 avoids inf - inf */
                const float ms = mx == -INFINITY ? 0.f : mx * p.scale_log2;
                const float alpha = exp2f(mrow[rr] * p.scale_log2 - ms);
                mrow[rr] = mx;
                lrow[rr] *= alpha;
#pragma unroll
                for (int dn = 0; dn < D / 8; dn++) {
                    acc[dn][2 * rr] *= alpha;
                    acc[dn][2 * rr + 1] *= alpha;
                }
                float ls = 0.f;
#pragma unroll
                for (int j = 0; j < BN / 8; j++) {
                    s[j][2 * rr] = exp2f(fmaf(s[j][2 * rr], p.scale_log2, -ms));
                    s[j][2 * rr + 1] = exp2f(fmaf(s[j][2 * rr + 1], p.scale_log2, -ms));
                    ls += s[j][2 * rr] + s[j][2 * rr + 1];
                }
                lrow[rr] += ls;
            }
#pragma unroll
            for (int kk = 0; kk < BN / 16; kk++) {
                uint32_t a[4] = {Mma<T>::pack(s[2 * kk][0], s[2 * kk][1]),
                                 Mma<T>::pack(s[2 * kk][2], s[2 * kk][3]),
                                 Mma<T>::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                 Mma<T>::pack(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
                for (int dp = 0; dp < D / 16; dp++) {
                    uint32_t r[4];
                    ldsm_x4_t(r, vb + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * SD +
                                     dp * 16 + (lane >> 4) * 8);
                    Mma<T>::mma(acc[2 * dp], a, r[0], r[1]);
                    Mma<T>::mma(acc[2 * dp + 1], a, r[2], r[3]);
                }
            }
        }
        __syncthreads(); /* the list and both buffers are reused by the next chunk */
    }

#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        float l = lrow[rr];
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        l += __shfl_xor_sync(0xffffffffu, l, 2);
        const int row = rr ? r1 : r0;
        float old_lse = -INFINITY;
        const bool live = row < p.sq && l > 0.f;
        float *lse_p = p.lse + (size_t)row * p.hq + h;
        if (live) old_lse = *lse_p;
        __syncwarp();
        if (!live) continue;
        const float blk_lse = mrow[rr] * p.scale + logf(l);
        const float new_lse = lc_tl_lse_merge(old_lse, blk_lse);
        const float wo = old_lse == -INFINITY ? 0.f : expf(old_lse - new_lse);
        const float wb = expf(blk_lse - new_lse) / l;
        float *orow = p.o + ((size_t)row * p.hq + h) * D;
#pragma unroll
        for (int dn = 0; dn < D / 8; dn++) {
            float2 *op = reinterpret_cast<float2 *>(orow + dn * 8 + 2 * t);
            float2 ov = wo == 0.f ? make_float2(0.f, 0.f) : *op;
            ov.x = ov.x * wo + acc[dn][2 * rr] * wb;
            ov.y = ov.y * wo + acc[dn][2 * rr + 1] * wb;
            *op = ov;
        }
        if (t == 0) *lse_p = new_lse;
    }
}

template <typename T, int D, int NW> constexpr size_t fwd_smem() {
    return (size_t)(NW * 16 + 4 * kBN) * (D + 8) * sizeof(T) + 4 * kBN * sizeof(int32_t) +
           kChunk * sizeof(int);
}

#ifndef LCG_EMU
template <typename T, int D, int NW> int launch(const FwdParams &p, cudaStream_t s) {
    constexpr int BM = NW * 16;
    const size_t smem = fwd_smem<T, D, NW>();
    /* set on every call: the limit belongs to the current device's context */
    cudaError_t e = cudaFuncSetAttribute(fwd_kernel<T, D, NW>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess) return (int)e;
    dim3 grid((p.sq + BM - 1) / BM, p.hq);
    fwd_kernel<T, D, NW><<<grid, NW * 32, smem, s>>>(p);
    return (int)cudaGetLastError();
}
#endif

/* Four warps (64 query rows) per block: 16 rows per warp keeps Q fragments, the score tile
 * and the output accumulators (64 floats at D=128) in registers without spilling. */
constexpr int kFwdWarps = 4;

} // namespace

int lcg_fwd_bm(int) { return kFwdWarps * 16; }

#ifndef LCG_EMU
int lcg_launch_fwd(int dtype, int d, const FwdParams &p, cudaStream_t s) {
    if (dtype == 1 && d == 64) return launch<__nv_bfloat16, 64, kFwdWarps>(p, s);
    if (dtype == 1 && d == 128) return launch<__nv_bfloat16, 128, kFwdWarps>(p, s);
    if (dtype == 2 && d == 64) return launch<__half, 64, kFwdWarps>(p, s);
    if (dtype == 2 && d == 128) return launch<__half, 128, kFwdWarps>(p, s);
    return (int)cudaErrorInvalidValue;
}
#endif
