/* The NVSHMEM backend's stream wait, for the GPU ring (cp) above it; defined in nvshmem.cu.
 * The error helpers every GPU source uses are in common/gpu_err.h. */
#ifndef LONGCTX_SYMM_GPU_ERR_H
#define LONGCTX_SYMM_GPU_ERR_H

#include <stdint.h>

#include <cuda_runtime.h> /* the emulated ring build puts its stand-in first on the path */

#include "common/gpu_err.h"

struct lc_gpu_world;
/* Stream waits until *sig >= *count, where count is device memory; with consume, the target
 * is *count + 1 and is stored back once met (one arrival consumed). */
int lcg_wait_count_on_stream(struct lc_gpu_world *w, uint64_t *sig, unsigned long long *count,
                             int consume, cudaStream_t s);

#endif
