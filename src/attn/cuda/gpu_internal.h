/* Private helpers shared by every CUDA translation unit of the kernels: the GPU error helpers
 * live in common (common/gpu_err.h). */
#ifndef LONGCTX_GPU_INTERNAL_H
#define LONGCTX_GPU_INTERNAL_H

#include <stdint.h>

#include <cuda_runtime.h>

#include "common/gpu_err.h"

#endif
