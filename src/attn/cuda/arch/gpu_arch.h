/* The architecture header of the real GPU build (nvcc): what the attention kernels and the
 * GPU ring ask of the hardware, and nothing else. The emulated builds put their own
 * gpu_arch.h on the include path instead (tests/gpu/emu for the kernels, tests/gpu/emu/ring
 * for the ring's host code), so src/ carries one source and no emulator branches: the
 * kernels and the ring are the same text in every build, only these primitives change.
 *
 * Provides: the CUDA types and runtime; LCG_DYNAMIC_SMEM(name); in namespace lcg the tensor
 * core mma (mma_bf16, mma_f16: m16n8k16, fp32 accumulators), ldmatrix (ldsm_x4, ldsm_x4_t),
 * cp.async (cp16, cp4, cp_commit, cp_wait_all), kernel launch (set_dyn_smem, launch) and the
 * ring's two stream operations (stream_add, stream_bump). */
#ifndef LONGCTX_GPU_ARCH_H
#define LONGCTX_GPU_ARCH_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "attn/core.h" /* lc_dkv_add */

#define LCG_DYNAMIC_SMEM(name) extern __shared__ __align__(16) unsigned char name[]

namespace lcg {

__device__ __forceinline__ void mma_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void mma_f16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t smem_u32(const void *p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void ldsm_x4(uint32_t r[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_u32(p)));
}

__device__ __forceinline__ void ldsm_x4_t(uint32_t r[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_u32(p)));
}

/* 16 bytes, zero-filled when !valid (src must still be a mapped address). */
__device__ __forceinline__ void cp16(void *s, const void *g, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(s)), "l"(g),
                 "r"(valid ? 16 : 0));
}

__device__ __forceinline__ void cp4(void *s, const void *g) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(smem_u32(s)), "l"(g));
}

__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }

/* The dynamic shared memory a kernel may use (set on every launch: the limit belongs to the
 * current device's context). Returns a cudaError_t as int. */
template <typename K> int set_dyn_smem(K kernel, size_t bytes) {
    return (int)cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
}

/* kernel<<<grid, threads, smem, s>>>(args...); returns the launch's cudaError_t as int. */
template <typename K, typename... A>
int launch(K kernel, dim3 grid, unsigned threads, size_t smem, cudaStream_t s, const A &...args) {
    kernel<<<grid, threads, smem, s>>>(args...);
    return (int)cudaGetLastError();
}

/* The ring's stream work: dst = lc_dkv_add(src, dst) elementwise (the dK/dV accumulation
 * rule of attn/core.h), and a device counter + 1. */
template <int = 0> __global__ void add_kernel(float *dst, const float *src, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = lc_dkv_add(src[i], dst[i]);
}
template <int = 0> __global__ void bump_kernel(unsigned long long *c) { *c += 1; }

inline int stream_add(float *dst, const float *src, size_t n, cudaStream_t s) {
    const size_t b = (n + 255) / 256;
    return launch(add_kernel<0>, dim3((unsigned)(b > 2048 ? 2048 : (b ? b : 1))), 256, 0, s, dst, src, n);
}
inline int stream_bump(unsigned long long *c, cudaStream_t s) { return launch(bump_kernel<0>, dim3(1), 1, 0, s, c); }

} // namespace lcg

#endif
