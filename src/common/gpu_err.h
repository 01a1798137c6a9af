/* The GPU code's error helpers, in common so that the CUDA sources of every layer (the
 * NVSHMEM/NCCL backends in symm, the kernels in attn, the ring in cp) report through the one
 * error convention (err.h) without including a layer above them. Included from CUDA/C++ only:
 * it needs cuda_runtime.h (the emulated builds put their stand-in first on the path). */
#ifndef LONGCTX_COMMON_GPU_ERR_H
#define LONGCTX_COMMON_GPU_ERR_H

#include <cuda_runtime.h>

#include "longctx/status.h"

#ifdef __cplusplus
extern "C" {
#endif
/* Records a thread-local message (read by lc_gpu_last_error, lc_attn_last_error) and returns
 * status. Defined in src/common/err.c. */
int lcg_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#ifdef __cplusplus
}
#endif

/* LC_OK, or LC_ERR_SYS with "what: cuda error string". */
static inline int lcg_cuda(cudaError_t e, const char *what)
{
    return e == cudaSuccess ? LC_OK : lcg_fail(LC_ERR_SYS, "%s: %s", what, cudaGetErrorString(e));
}

#endif
