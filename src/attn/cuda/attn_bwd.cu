/* Backward block kernel (FlashAttention-2 algorithm 2) on mma.sync m16n8k16.
 *
 * One block owns a tile of 16*NW keys of one KV head and keeps its dK/dV in registers (each
 * of the NW warps owns 16 keys). It walks every (query head of the GQA group, Q tile) pair
 * that the mask does not skip: S^T = K Q^T, P^T = exp(S^T - lse) from the FINAL lse,
 * dV += P^T dO, dP^T = V dO^T, dS^T = P^T (dP^T - delta), dK += dS^T Q, and dQ += dS K
 * through fp32 atomics (other key tiles add to the same rows). dK/dV are added to the
 * caller's accumulators at the end: the block is their only writer. */
#include "attn_cuda.cuh"
#include "common/settings.h"

using namespace lcg;

namespace {

/* NW = 8 (128 keys per block) shares each Q/dO tile between twice the warps and halves
 * the dQ atomics per FLOP; NW = 4 keeps two blocks per SM on A100. Both are compiled. */
template <typename T, int D, int BMB, int NW>
__global__ void __launch_bounds__(NW * 32) bwd_kernel(const BwdParams p) {
    constexpr int BN = 16 * NW, SD = D + 8, NT = NW * 32, SS = BN + 8;
    constexpr int RT = BMB / 16;          /* 16-row tiles of Q in the dQ product */
    constexpr int WR = NW / RT;           /* warps sharing one row tile (by columns) */
    constexpr int DCOLS = D / WR;         /* dQ columns per warp */
    static_assert(NW % RT == 0 && DCOLS % 32 == 0, "dQ work split");
    LCG_DYNAMIC_SMEM(smem);
    T *sK = reinterpret_cast<T *>(smem);
    T *sV = sK + BN * SD;
    T *sQ = sV + BN * SD;      /* [2][BMB][SD] */
    T *sdO = sQ + 2 * BMB * SD; /* [2][BMB][SD] */
    T *sDS = sdO + 2 * BMB * SD; /* [BMB][SS] */
    float *sLse = reinterpret_cast<float *>(sDS + BMB * SS); /* [2][BMB] */
    float *sDelta = sLse + 2 * BMB;
    int32_t *sQp = reinterpret_cast<int32_t *>(sDelta + 2 * BMB);
    int32_t *sQd = sQp + 2 * BMB;
    int32_t *sKp = sQd + 2 * BMB; /* [BN] positions, then [BN] document ids of my keys */
    int *sList = sKp + 2 * BN;
    __shared__ int sWarpCnt[NW];

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, t = lane & 3;
    const int jt = blockIdx.x, hk = blockIdx.y;
    const int k0 = jt * BN;
    const lc_tile_sum ksum = p.ksum[jt];
    if (ksum.nvalid == 0) return;

    const size_t qstride = (size_t)p.hq * D, kstride = (size_t)p.hkv * D;
    const T *K = reinterpret_cast<const T *>(p.k) + (size_t)hk * D;
    const T *V = reinterpret_cast<const T *>(p.v) + (size_t)hk * D;
    const bool use_doc = (p.kind & LC_MASK_DOC) != 0;

    load_tile<T, D, BN, NT>(sK, K, kstride, k0, p.sk);
    load_tile<T, D, BN, NT>(sV, V, kstride, k0, p.sk);
    cp_commit();

    /* the keys' positions and documents wait in shared memory: only masked tiles read them,
     * and four registers fewer across the whole loop is what keeps dK/dV from spilling */
    load_pos(sKp, p.k_pos, k0, BN, p.sk, 1);
    if (use_doc) load_pos(sKp + BN, p.k_doc, k0, BN, p.sk, 0);

    float dK[D / 8][4], dV[D / 8][4];
#pragma unroll
    for (int i = 0; i < D / 8; i++)
#pragma unroll
        for (int e = 0; e < 4; e++) dK[i][e] = dV[i][e] = 0.f;

    const int nqt = (p.sq + BMB - 1) / BMB;
    const int nitems = nqt * p.group;
    auto issue = [&](int item, int b) {
        const int qt = item % nqt, h = hk * p.group + item / nqt;
        const int q0 = qt * BMB;
        const T *Q = reinterpret_cast<const T *>(p.q) + (size_t)h * D;
        const T *dO = reinterpret_cast<const T *>(p.dout) + (size_t)h * D;
        load_tile<T, D, BMB, NT>(sQ + b * BMB * SD, Q, qstride, q0, p.sq);
        load_tile<T, D, BMB, NT>(sdO + b * BMB * SD, dO, qstride, q0, p.sq);
        for (int i = tid; i < BMB; i += NT) {
            const int r = q0 + i;
            if (r < p.sq) {
                cp4(sLse + b * BMB + i, p.lse + (size_t)r * p.hq + h);
                cp4(sDelta + b * BMB + i, p.delta + (size_t)r * p.hq + h);
            } else {
                sLse[b * BMB + i] = -INFINITY;
                sDelta[b * BMB + i] = 0.f;
            }
        }
        load_pos(sQp + b * BMB, p.q_pos, q0, BMB, p.sq, 1);
        if (use_doc) load_pos(sQd + b * BMB, p.q_doc, q0, BMB, p.sq, 0);
        cp_commit();
    };

    for (int c0 = 0; c0 < nitems; c0 += kChunk) {
        /* The list holds items; their class depends only on the Q tile, so the summary
         * array is indexed through item % nqt in a local copy of build_list's logic. */
        int cls = LC_BLOCK_SKIP;
        const int it = c0 + tid;
        if (tid < kChunk && it < nitems) {
            lc_tile_sum qs = p.qsum[it % nqt];
            cls = lc_tile_classify(p.kind, p.window, &qs, &ksum);
        }
        const unsigned bal = __ballot_sync(0xffffffffu, cls != LC_BLOCK_SKIP);
        if (lane == 0) sWarpCnt[warp] = __popc(bal);
        __syncthreads();
        int off = 0, n = 0;
        for (int w = 0; w < NW; w++) {
            if (w < warp) off += sWarpCnt[w];
            n += sWarpCnt[w];
        }
        if (cls != LC_BLOCK_SKIP)
            sList[off + __popc(bal & ((1u << lane) - 1u))] = it | (cls == LC_BLOCK_FULL ? (1 << 30) : 0);
        __syncthreads();
        if (n == 0) continue;
        issue(sList[0] & ((1 << 30) - 1), 0);

        for (int i = 0; i < n; i++) {
            const int e = sList[i], b = i & 1;
            const int item = e & ((1 << 30) - 1);
            const bool full = (e >> 30) & 1;
            const int qt = item % nqt, h = hk * p.group + item / nqt;
            cp_wait_all();
            __syncthreads();
            if (i + 1 < n) issue(sList[i + 1] & ((1 << 30) - 1), b ^ 1);
            const T *qb = sQ + b * BMB * SD, *ob = sdO + b * BMB * SD;
            const float *lse = sLse + b * BMB, *dlt = sDelta + b * BMB;

            /* S^T for my 16 keys x BMB queries */
            float st[BMB / 8][4];
#pragma unroll
            for (int j = 0; j < BMB / 8; j++) st[j][0] = st[j][1] = st[j][2] = st[j][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                uint32_t a[4];
                ldsm_x4(a, sK + (warp * 16 + (lane & 15)) * SD + kk * 16 + (lane >> 4) * 8);
#pragma unroll
                for (int np = 0; np < BMB / 16; np++) {
                    uint32_t r[4];
                    ldsm_x4(r, qb + (np * 16 + (lane & 7) + (lane >> 4) * 8) * SD + kk * 16 +
                                   ((lane >> 3) & 1) * 8);
                    Mma<T>::mma(st[2 * np], a, r[0], r[1]);
                    Mma<T>::mma(st[2 * np + 1], a, r[2], r[3]);
                }
            }
            /* dP^T = V dO^T while S^T is still raw: both fp32 tiles end here, and only their
             * packed 16-bit forms (P^T and dS^T, the MMA operands) live through the two
             * accumulating products below, which is what keeps dK/dV out of local memory */
            float dpt[BMB / 8][4];
#pragma unroll
            for (int j = 0; j < BMB / 8; j++) dpt[j][0] = dpt[j][1] = dpt[j][2] = dpt[j][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                uint32_t a[4];
                ldsm_x4(a, sV + (warp * 16 + (lane & 15)) * SD + kk * 16 + (lane >> 4) * 8);
#pragma unroll
                for (int np = 0; np < BMB / 16; np++) {
                    uint32_t r[4];
                    ldsm_x4(r, ob + (np * 16 + (lane & 7) + (lane >> 4) * 8) * SD + kk * 16 +
                                   ((lane >> 3) & 1) * 8);
                    Mma<T>::mma(dpt[2 * np], a, r[0], r[1]);
                    Mma<T>::mma(dpt[2 * np + 1], a, r[2], r[3]);
                }
            }
            const int32_t *qp = sQp + b * BMB, *qd = sQd + b * BMB;
            uint32_t pk[BMB / 8][2], dsk[BMB / 8][2]; /* P^T and dS^T, two 16-bit values each */
#pragma unroll
            for (int j = 0; j < BMB / 8; j++)
#pragma unroll
                for (int h2 = 0; h2 < 2; h2++) {
                    float pv[2], dv[2];
#pragma unroll
                    for (int e1 = 0; e1 < 2; e1++) {
                        const int e2 = 2 * h2 + e1, col = j * 8 + 2 * t + e1;
                        const float L = lse[col];
                        bool ok = L != -INFINITY;
                        if (!full && ok)
                            ok = lc_mask_allowed(p.kind, p.window, qp[col], sKp[warp * 16 + g + 8 * h2],
                                               use_doc ? qd[col] : 0,
                                               use_doc ? sKp[BN + warp * 16 + g + 8 * h2] : 0);
                        pv[e1] = ok ? exp2f(fmaf(st[j][e2], p.scale_log2, -L * kLog2e)) : 0.f;
                        dv[e1] = pv[e1] * (dpt[j][e2] - dlt[col]);
                        sDS[col * SS + warp * 16 + g + 8 * h2] = Mma<T>::from_f(dv[e1]);
                    }
                    pk[j][h2] = Mma<T>::pack(pv[0], pv[1]);
                    dsk[j][h2] = Mma<T>::pack(dv[0], dv[1]);
                }
            /* dV += P^T dO */
#pragma unroll
            for (int kk = 0; kk < BMB / 16; kk++) {
                const uint32_t a[4] = {pk[2 * kk][0], pk[2 * kk][1], pk[2 * kk + 1][0], pk[2 * kk + 1][1]};
#pragma unroll
                for (int dp = 0; dp < D / 16; dp++) {
                    uint32_t r[4];
                    ldsm_x4_t(r, ob + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * SD +
                                     dp * 16 + (lane >> 4) * 8);
                    Mma<T>::mma(dV[2 * dp], a, r[0], r[1]);
                    Mma<T>::mma(dV[2 * dp + 1], a, r[2], r[3]);
                }
            }
            /* dK += dS^T Q */
#pragma unroll
            for (int kk = 0; kk < BMB / 16; kk++) {
                const uint32_t a[4] = {dsk[2 * kk][0], dsk[2 * kk][1], dsk[2 * kk + 1][0], dsk[2 * kk + 1][1]};
#pragma unroll
                for (int dp = 0; dp < D / 16; dp++) {
                    uint32_t r[4];
                    ldsm_x4_t(r, qb + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * SD +
                                     dp * 16 + (lane >> 4) * 8);
                    Mma<T>::mma(dK[2 * dp], a, r[0], r[1]);
                    Mma<T>::mma(dK[2 * dp + 1], a, r[2], r[3]);
                }
            }
            __syncthreads(); /* dS complete from all four warps */
            /* dQ += scale * dS K, 32 columns at a time to keep registers for dK/dV */
            const int rt = warp % RT, cbase = (warp / RT) * DCOLS;
            const int qrow0 = qt * BMB + rt * 16 + g;
            float *dqh = p.dq + (size_t)h * D;
#pragma unroll
            for (int cc = 0; cc < DCOLS / 32; cc++) {
                float dq[4][4];
#pragma unroll
                for (int x = 0; x < 4; x++) dq[x][0] = dq[x][1] = dq[x][2] = dq[x][3] = 0.f;
#pragma unroll
                for (int kk = 0; kk < BN / 16; kk++) {
                    uint32_t a[4];
                    ldsm_x4(a, sDS + (rt * 16 + (lane & 15)) * SS + kk * 16 + (lane >> 4) * 8);
#pragma unroll
                    for (int dp = 0; dp < 2; dp++) {
                        const int d0 = cbase + cc * 32 + dp * 16;
                        uint32_t r[4];
                        ldsm_x4_t(r, sK + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * SD +
                                         d0 + (lane >> 4) * 8);
                        Mma<T>::mma(dq[2 * dp], a, r[0], r[1]);
                        Mma<T>::mma(dq[2 * dp + 1], a, r[2], r[3]);
                    }
                }
#pragma unroll
                for (int x = 0; x < 4; x++)
#pragma unroll
                    for (int e2 = 0; e2 < 4; e2++) {
                        const int row = qrow0 + 8 * (e2 >> 1);
                        const int col = cbase + cc * 32 + x * 8 + 2 * t + (e2 & 1);
                        if (row < p.sq && dq[x][e2] != 0.f)
                            atomicAdd(dqh + (size_t)row * qstride + col, dq[x][e2] * p.scale);
                    }
            }
        }
        __syncthreads();
    }

#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        const int row = k0 + warp * 16 + g + 8 * rr;
        if (row >= p.sk) continue;
        float *dkr = p.dk + ((size_t)row * p.hkv + hk) * D;
        float *dvr = p.dv + ((size_t)row * p.hkv + hk) * D;
#pragma unroll
        for (int dn = 0; dn < D / 8; dn++) {
            float2 *kq = reinterpret_cast<float2 *>(dkr + dn * 8 + 2 * t);
            float2 *vq = reinterpret_cast<float2 *>(dvr + dn * 8 + 2 * t);
            float2 a = *kq, c = *vq;
            a.x += dK[dn][2 * rr] * p.scale;
            a.y += dK[dn][2 * rr + 1] * p.scale;
            c.x += dV[dn][2 * rr];
            c.y += dV[dn][2 * rr + 1];
            *kq = a;
            *vq = c;
        }
    }
}

template <typename T, int D, int BMB, int NW> constexpr size_t bwd_smem() {
    return (size_t)(2 * 16 * NW + 4 * BMB) * (D + 8) * sizeof(T) + (size_t)BMB * (16 * NW + 8) * sizeof(T) +
           8 * BMB * sizeof(float) + 2 * 16 * NW * sizeof(int32_t) + kChunk * sizeof(int);
}

template <typename T, int D, int BMB, int NW> int launch_bwd(const BwdParams &p, cudaStream_t s) {
    const size_t smem = bwd_smem<T, D, BMB, NW>();
    /* A100 allows 163 KiB of dynamic shared memory per block, H100/H200 227 KiB */
    static_assert(bwd_smem<T, D, BMB, NW>() <= 163 * 1024, "shared memory over the sm_80 limit");
    int e = set_dyn_smem(bwd_kernel<T, D, BMB, NW>, smem);
    if (e) return e;
    return lcg::launch(bwd_kernel<T, D, BMB, NW>, dim3((p.sk + 16 * NW - 1) / (16 * NW), p.hkv), NW * 32, smem, s, p);
}

/* Query rows per step: 64 at D=64; 32 at D=128, where dK and dV alone hold 128 floats per
 * thread and a 64-row score tile would push the warp into spills. */
template <int D> constexpr int bmb() { return D == 64 ? 64 : 32; }

} // namespace

#include <stdlib.h>

/* $LONGCTX_GPU_BWD_WARPS = 4 or 8 overrides the default (8) so the GPU check can time both. */
static int bwd_warps() {
    static int w = 0;
    if (!w) {
        const char *e = lc__env_str("LONGCTX_GPU_BWD_WARPS");
        w = (e && atoi(e) == 4) ? 4 : 8;
    }
    return w;
}

int lcg_bwd_bm(int d) { return d == 64 ? bmb<64>() : bmb<128>(); }
int lcg_bwd_bn(int) { return 16 * bwd_warps(); }

int lcg_launch_bwd(int dtype, int d, const BwdParams &p, cudaStream_t s) {
    if (bwd_warps() == 4) {
        if (dtype == 1 && d == 64) return launch_bwd<__nv_bfloat16, 64, bmb<64>(), 4>(p, s);
        if (dtype == 1 && d == 128) return launch_bwd<__nv_bfloat16, 128, bmb<128>(), 4>(p, s);
        if (dtype == 2 && d == 64) return launch_bwd<__half, 64, bmb<64>(), 4>(p, s);
        if (dtype == 2 && d == 128) return launch_bwd<__half, 128, bmb<128>(), 4>(p, s);
    } else {
        if (dtype == 1 && d == 64) return launch_bwd<__nv_bfloat16, 64, bmb<64>(), 8>(p, s);
        if (dtype == 1 && d == 128) return launch_bwd<__nv_bfloat16, 128, bmb<128>(), 8>(p, s);
        if (dtype == 2 && d == 64) return launch_bwd<__half, 64, bmb<64>(), 8>(p, s);
        if (dtype == 2 && d == 128) return launch_bwd<__half, 128, bmb<128>(), 8>(p, s);
    }
    return (int)cudaErrorInvalidValue;
}
