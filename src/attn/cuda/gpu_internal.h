/* Private helpers shared by every CUDA translation unit of longctx_gpu. */
#ifndef LONGCTX_GPU_INTERNAL_H
#define LONGCTX_GPU_INTERNAL_H

#include <cuda_runtime.h>

/* Records a thread-local message for lc_gpu_last_error and returns status. */
int lcg_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* LC_OK, or LC_ERR_SYS with "what: cuda error string". */
int lcg_cuda(cudaError_t e, const char *what);

#endif
