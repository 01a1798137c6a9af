/* The architecture header of the emulated kernel build (test_gpu_emu): the primitives
 * src/attn/cuda/arch/gpu_arch.h gives the kernels on a GPU, done here by cuda_emu.h on CPU
 * threads, so the kernels' own source (attn_fwd.cu, attn_bwd.cu, unchanged) runs here. The
 * build picks this file over the real one by its include path (src/gpu.cmake). */
#ifndef LONGCTX_GPU_ARCH_H
#define LONGCTX_GPU_ARCH_H

#include <stddef.h>
#include <stdint.h>

#include "attn/core.h"
#include "cuda_emu.h" /* LCG_DYNAMIC_SMEM, lcg::ldsm_x4, lcg::cp16, ... */

namespace lcg {

inline void mma_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) { emu_mma(c, a, b0, b1, 1); }
inline void mma_f16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) { emu_mma(c, a, b0, b1, 2); }

/* The emulator has no shared-memory limit to raise. */
template <typename K> int set_dyn_smem(K, size_t) { return 0; }

/* Runs the grid in order on the calling thread (the stream is the caller's); blocks of
 * `threads` CPU threads (cuda_emu.h). */
template <typename K, typename... A>
int launch(K kernel, dim3 grid, unsigned threads, size_t smem, cudaStream_t, const A &...args) {
    emu_launch(grid.x, grid.y, threads, smem, [&] { kernel(args...); });
    return 0;
}

} // namespace lcg

#endif
