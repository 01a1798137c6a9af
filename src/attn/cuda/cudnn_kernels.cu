/* The memory-bound kernels around cuDNN's SDPA calls: merge a piece's 16-bit partial into the
 * fp32 state, round the final o to 16 bits for the backward, lay the lse out as cuDNN's
 * stats, and accumulate 16-bit gradients into the fp32 accumulators. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cudnn_engine.h"
#include "cudnn_plan.h"

namespace {

__device__ inline float ld(const __nv_bfloat16 *p, size_t i) { return __bfloat162float(p[i]); }
__device__ inline float ld(const __half *p, size_t i) { return __half2float(p[i]); }
__device__ inline void st16(__nv_bfloat16 *p, size_t i, float x) { p[i] = __float2bfloat16(x); }
__device__ inline void st16(__half *p, size_t i, float x) { p[i] = __float2half(x); }

/* one warp per (row, head); the coefficients are the same for the whole row */
template <typename T>
__global__ void merge_kernel(float *o, float *lse, const T *op, const float *st, int q0, int nq, int hq, int d) {
    const int w = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
    if (w >= nq * hq) return;
    const int i = w / hq, h = w % hq;
    float *lrow = lse + (size_t)(q0 + i) * hq + h;
    float a, b, nl;
    if (!lcg_merge_coef(*lrow, st[(size_t)h * nq + i], &a, &b, &nl)) return;
    float *orow = o + ((size_t)(q0 + i) * hq + h) * d;
    const T *prow = op + ((size_t)i * hq + h) * d;
    if (a == 0.f) /* the state's first visible block: nothing to read back */
        for (int t = lane; t < d; t += 32) orow[t] = b * ld(prow, t);
    else
        for (int t = lane; t < d; t += 32) orow[t] = a * orow[t] + b * ld(prow, t);
    __syncwarp();
    if (lane == 0) *lrow = nl;
}

template <typename T>
__global__ void to16_kernel(const float *src, T *dst, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        st16(dst, i, src[i]);
}

template <typename T>
__global__ void add16_kernel(float *dst, const T *src, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] += ld(src, i);
}

__global__ void lse_t_kernel(const float *lse, float *dst, int q0, int nq, int hq) {
    const size_t n = (size_t)nq * hq;
    for (size_t x = blockIdx.x * (size_t)blockDim.x + threadIdx.x; x < n; x += (size_t)gridDim.x * blockDim.x) {
        const size_t i = x / hq, h = x % hq;
        dst[h * nq + i] = lse[(q0 + i) * hq + h];
    }
}

int grid(size_t n) {
    size_t b = (n + 255) / 256;
    return (int)(b > 4096 ? 4096 : (b ? b : 1));
}

} // namespace

int lcg_cudnn_merge(float *o, float *lse, const void *op, const float *st, int q0, int nq, int hq, int d, int dtype,
                    cudaStream_t s) {
    const size_t rows = (size_t)nq * hq;
    if (!rows) return LC_OK;
    const int blocks = (int)((rows * 32 + 255) / 256);
    if (dtype == LC_DT_BF16)
        merge_kernel<<<blocks, 256, 0, s>>>(o, lse, (const __nv_bfloat16 *)op, st, q0, nq, hq, d);
    else
        merge_kernel<<<blocks, 256, 0, s>>>(o, lse, (const __half *)op, st, q0, nq, hq, d);
    return lcg_cuda(cudaGetLastError(), "cuDNN engine merge kernel");
}

int lcg_cudnn_to16(const float *src, void *dst, size_t n, int dtype, cudaStream_t s) {
    if (!n) return LC_OK;
    if (dtype == LC_DT_BF16) to16_kernel<<<grid(n), 256, 0, s>>>(src, (__nv_bfloat16 *)dst, n);
    else to16_kernel<<<grid(n), 256, 0, s>>>(src, (__half *)dst, n);
    return lcg_cuda(cudaGetLastError(), "cuDNN engine o rounding kernel");
}

int lcg_cudnn_lse_t(const float *lse, float *dst, int q0, int nq, int hq, cudaStream_t s) {
    const size_t n = (size_t)nq * hq;
    if (!n) return LC_OK;
    lse_t_kernel<<<grid(n), 256, 0, s>>>(lse, dst, q0, nq, hq);
    return lcg_cuda(cudaGetLastError(), "cuDNN engine stats kernel");
}

int lcg_cudnn_add16(float *dst, const void *src, size_t n, int dtype, cudaStream_t s) {
    if (!n) return LC_OK;
    if (dtype == LC_DT_BF16) add16_kernel<<<grid(n), 256, 0, s>>>(dst, (const __nv_bfloat16 *)src, n);
    else add16_kernel<<<grid(n), 256, 0, s>>>(dst, (const __half *)src, n);
    return lcg_cuda(cudaGetLastError(), "cuDNN engine gradient add kernel");
}
