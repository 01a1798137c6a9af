/* A CPU stand-in for the few CUDA features the attention kernels use, so that the very
 * kernel source (src/attn/cuda/attn_{fwd,bwd}.cu compiled with -DLCG_EMU by a host C++
 * compiler) runs here without a GPU: one std::thread per CUDA thread, barriers for
 * __syncthreads/__syncwarp, and warp collectives (shuffle, ballot, ldmatrix, mma.sync
 * m16n8k16) computed from the PTX fragment layouts. Slow, but it checks the index and
 * fragment logic the compiler cannot. Shared memory is filled with NaN patterns before each
 * block so a read of something never written shows up in the results. */
#ifndef LONGCTX_CUDA_EMU_H
#define LONGCTX_CUDA_EMU_H

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <vector_functions.h>
#include <vector_types.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <barrier>
#include <memory>
#include <thread>
#include <vector>

#undef __global__
#define __global__
#define __launch_bounds__(...)
#undef __shared__
#define __shared__ static
#ifndef __forceinline__
#define __forceinline__ inline
#endif
#define LCG_DYNAMIC_SMEM(name) unsigned char *name = emu_block()->dyn

struct EmuDim3 {
    unsigned x, y, z;
};
inline thread_local EmuDim3 threadIdx, blockIdx;
inline EmuDim3 blockDim, gridDim;

struct EmuWarp {
    std::unique_ptr<std::barrier<>> bar;
    uint64_t slot[32][8];
};
struct EmuBlock {
    std::unique_ptr<std::barrier<>> bar;
    EmuWarp warps[32];
    std::vector<unsigned char> dynbuf;
    unsigned char *dyn;
    size_t dyn_bytes;
};

/* The hardware faults on these; the emulator stops with a message instead. */
[[noreturn]] inline void emu_fault(const char *what, const void *p) {
    fprintf(stderr, "EMULATED GPU FAULT: %s at %p\n", what, p);
    abort();
}
inline EmuBlock *g_emu_block;
/* Shared-memory operands must be 16-byte aligned and inside the dynamic allocation. */
inline void emu_check_smem(const void *p, size_t n, const char *what) {
    const unsigned char *c = (const unsigned char *)p;
    if ((uintptr_t)p & 15) emu_fault(what, p);
    if (c < g_emu_block->dyn || c + n > g_emu_block->dyn + g_emu_block->dyn_bytes) emu_fault(what, p);
}
inline EmuBlock *emu_block() { return g_emu_block; }
inline EmuWarp &emu_warp() { return g_emu_block->warps[threadIdx.x >> 5]; }
inline int emu_lane() { return (int)(threadIdx.x & 31); }
inline void emu_wsync() { emu_warp().bar->arrive_and_wait(); }

inline void __syncthreads() { g_emu_block->bar->arrive_and_wait(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu_wsync(); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }

template <typename T> inline T __shfl_xor_sync(unsigned, T v, int m) {
    static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
    EmuWarp &w = emu_warp();
    const int l = emu_lane();
    memcpy(&w.slot[l][0], &v, sizeof v);
    emu_wsync();
    T r;
    memcpy(&r, &w.slot[l ^ m][0], sizeof r);
    emu_wsync();
    return r;
}

inline unsigned __ballot_sync(unsigned, int pred) {
    EmuWarp &w = emu_warp();
    const int l = emu_lane();
    w.slot[l][0] = pred ? 1 : 0;
    emu_wsync();
    unsigned m = 0;
    for (int i = 0; i < 32; i++)
        if (w.slot[i][0]) m |= 1u << i;
    emu_wsync();
    return m;
}

inline float atomicAdd(float *p, float v) {
    std::atomic_ref<float> r(*p);
    return r.fetch_add(v);
}

/* ldmatrix .x4: lanes 8i..8i+7 give the row addresses of matrix i; lane L gets row L/4,
 * elements 2(L%4) and 2(L%4)+1 (with .trans: column L/4 of rows 2(L%4), 2(L%4)+1). */
inline void emu_ldsm(uint32_t r[4], const void *p, bool trans) {
    EmuWarp &w = emu_warp();
    const int L = emu_lane();
    emu_check_smem(p, 16, "ldmatrix row address misaligned or outside shared memory");
    w.slot[L][0] = (uint64_t)(uintptr_t)p;
    emu_wsync();
    for (int i = 0; i < 4; i++) {
        uint16_t lo, hi;
        if (!trans) {
            const uint16_t *row = (const uint16_t *)(uintptr_t)w.slot[8 * i + L / 4][0];
            lo = row[2 * (L % 4)];
            hi = row[2 * (L % 4) + 1];
        } else {
            const uint16_t *r0 = (const uint16_t *)(uintptr_t)w.slot[8 * i + 2 * (L % 4)][0];
            const uint16_t *r1 = (const uint16_t *)(uintptr_t)w.slot[8 * i + 2 * (L % 4) + 1][0];
            lo = r0[L / 4];
            hi = r1[L / 4];
        }
        r[i] = (uint32_t)lo | ((uint32_t)hi << 16);
    }
    emu_wsync();
}

inline float emu_h2f(uint16_t h, int dt) {
    if (dt == 1) {
        uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    __half_raw r;
    r.x = h;
    return __half2float(__half(r));
}

/* mma.sync.m16n8k16.row.col f32 += {bf16|f16}: A[r][k] sits in lane (r%8)*4 + (k%8)/2,
 * register (r/8) + 2*(k/8), half k%2; B[k][n] in lane n*4 + (k%8)/2, register k/8, half
 * k%2; C/D[r][n] in lane (r%8)*4 + n/2... as c[(r/8)*2 + n%2] with n = 2*(lane%4) + {0,1}. */
inline void emu_mma(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1, int dt) {
    EmuWarp &w = emu_warp();
    const int L = emu_lane();
    for (int i = 0; i < 4; i++) w.slot[L][i] = a[i];
    w.slot[L][4] = b0;
    w.slot[L][5] = b1;
    emu_wsync();
    const int g = L / 4, t = L % 4;
    for (int e = 0; e < 4; e++) {
        const int row = g + 8 * (e >> 1), col = 2 * t + (e & 1);
        float acc = 0.f;
        for (int k = 0; k < 16; k++) {
            const uint32_t ar = (uint32_t)w.slot[(row % 8) * 4 + (k % 8) / 2][(row / 8) + 2 * (k / 8)];
            const uint32_t br = (uint32_t)w.slot[col * 4 + (k % 8) / 2][4 + k / 8];
            const float av = emu_h2f((uint16_t)(k % 2 ? ar >> 16 : ar & 0xffff), dt);
            const float bv = emu_h2f((uint16_t)(k % 2 ? br >> 16 : br & 0xffff), dt);
            acc += av * bv;
        }
        c[e] += acc;
    }
    emu_wsync();
}

namespace lcg {
inline void ldsm_x4(uint32_t r[4], const void *p) { emu_ldsm(r, p, false); }
inline void ldsm_x4_t(uint32_t r[4], const void *p) { emu_ldsm(r, p, true); }
inline void cp16(void *s, const void *g, bool valid) {
    emu_check_smem(s, 16, "cp.async 16-byte destination misaligned or outside shared memory");
    if ((uintptr_t)g & 15) emu_fault("cp.async 16-byte source misaligned", g);
    if (valid)
        memcpy(s, g, 16);
    else
        memset(s, 0, 16);
}
inline void cp4(void *s, const void *g) {
    if (((uintptr_t)s & 3) || ((uintptr_t)g & 3)) emu_fault("cp.async 4-byte operand misaligned", s);
    memcpy(s, g, 4);
}
inline void cp_commit() {}
inline void cp_wait_all() {}
} // namespace lcg

/* Runs kernel() for every block of grid, threads CPU threads per block, in order. */
template <typename F> void emu_launch(unsigned gx, unsigned gy, unsigned threads, size_t smem, F kernel) {
    gridDim = {gx, gy, 1};
    blockDim = {threads, 1, 1};
    for (unsigned by = 0; by < gy; by++)
        for (unsigned bx = 0; bx < gx; bx++) {
            EmuBlock b;
            b.bar = std::make_unique<std::barrier<>>((std::ptrdiff_t)threads);
            for (unsigned wi = 0; wi < threads / 32; wi++) b.warps[wi].bar = std::make_unique<std::barrier<>>(32);
            b.dynbuf.assign(smem + 64, 0xff); /* NaN in bf16, f16 and f32 */
            b.dyn = (unsigned char *)(((uintptr_t)b.dynbuf.data() + 15) & ~(uintptr_t)15);
            b.dyn_bytes = smem;
            g_emu_block = &b;
            std::vector<std::thread> ts;
            ts.reserve(threads);
            for (unsigned t = 0; t < threads; t++)
                ts.emplace_back([&, t] {
                    threadIdx = {t, 0, 0};
                    blockIdx = {bx, by, 0};
                    kernel();
                });
            for (auto &th : ts) th.join();
            g_emu_block = nullptr;
        }
}

#endif
