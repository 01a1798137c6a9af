/* The GPU layers' error and wait helpers, at the bottom of the GPU stack (symm) so the
 * NVSHMEM and NCCL backends need nothing from the layers above them; the CUDA attention
 * kernels (src/attn/cuda) and the GPU ring (src/cp) use them too. Defined in nvshmem.cu. */
#ifndef LONGCTX_SYMM_GPU_ERR_H
#define LONGCTX_SYMM_GPU_ERR_H

#include <stdint.h>

#include <cuda_runtime.h> /* the emulated ring build puts its stand-in first on the path */

/* Records a thread-local message for lc_gpu_last_error and returns status. */
int lcg_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* LC_OK, or LC_ERR_SYS with "what: cuda error string". */
int lcg_cuda(cudaError_t e, const char *what);

struct lc_gpu_world;
/* Stream waits until *sig >= *count, where count is device memory; with consume, the target
 * is *count + 1 and is stored back once met (one arrival consumed). */
int lcg_wait_count_on_stream(struct lc_gpu_world *w, uint64_t *sig, unsigned long long *count,
                             int consume, cudaStream_t s);

#endif
