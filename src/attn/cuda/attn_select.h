/* Which forward kernel family runs a block (attn_select.cu): the sm_80 mma.sync kernel, or
 * the Hopper wgmma/TMA kernel on sm_90 devices. Private to the CUDA attention code. */
#ifndef LONGCTX_ATTN_SELECT_H
#define LONGCTX_ATTN_SELECT_H

#include <cuda_runtime.h>

#include "longctx/gpu_attn.h"

enum { LCG_KERNEL_SM80 = 0, LCG_KERNEL_SM90 = 1 };

/* $LONGCTX_GPU_KERNEL = sm80 | sm90 | auto (default): auto takes sm90 on an sm_90 device
 * only with $LONGCTX_GPU_SM90_PASSED=1 (its forward test passed there; without it the Hopper
 * kernel is never launched) and once it matched the sm80 kernel in a start-up check for this
 * dtype and head dim (skipped, and sm80 used, while the stream is being captured). */
int lcg_pick_fwd_kernel(int dtype, int d, cudaStream_t s, int *kern);
/* The forward block through one family (attn_api.cu); arguments already checked. */
int lcg_fwd_block_with(const lc_gpu_attn_desc *a, const void *q, const void *k, const void *v, float *o,
                       float *lse, cudaStream_t st, int kern);

#endif
