/* The architecture header of the emulated ring build (test_ring_emu): the ring's two stream
 * operations, done by the stand-in streams of ../cuda_emu_rt.h. Picked over
 * src/attn/cuda/arch/gpu_arch.h by the include path (src/gpu.cmake); the ring's source is the
 * real one. The add reports the range it reads so the test's race checks see a put into it. */
#ifndef LONGCTX_GPU_ARCH_H
#define LONGCTX_GPU_ARCH_H

#include <stddef.h>

#include <chrono>
#include <thread>

#include <cuda_runtime.h>

#include "attn/core.h" /* lc_dkv_add */

namespace lcg {

inline int stream_add(float *dst, const float *src, size_t n, cudaStream_t s) {
    const int pe = g_emu_pe->id;
    emu_stream_op(s, [=] {
        if (g_emu_read_begin) g_emu_read_begin(pe, src, n * sizeof(float));
        for (size_t i = 0; i < n; i++) dst[i] = lc_dkv_add(src[i], dst[i]);
        std::this_thread::sleep_for(std::chrono::microseconds(50));
        if (g_emu_read_end) g_emu_read_end(pe, src, n * sizeof(float));
    });
    return cudaSuccess;
}

inline int stream_bump(unsigned long long *c, cudaStream_t s) {
    emu_stream_op(s, [=] { *c += 1; });
    return cudaSuccess;
}

} // namespace lcg

#endif
