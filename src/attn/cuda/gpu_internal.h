/* Private helpers shared by every CUDA translation unit of longctx_gpu: the GPU error and
 * wait helpers live below, in symm (symm/gpu_err.h). */
#ifndef LONGCTX_GPU_INTERNAL_H
#define LONGCTX_GPU_INTERNAL_H

#include <stdint.h>

#include <cuda_runtime.h>

#include "symm/gpu_err.h"

#endif
