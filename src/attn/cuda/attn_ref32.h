/* The fp32 reference attention kernels (attn_ref32.cu): what lc_gpu_attn_* run for
 * LC_DT_F32 inputs. Arguments are already checked (attn_check.h); pointers are device memory
 * (host memory under the emulator); each returns 0 or a CUDA error. */
#ifndef LONGCTX_ATTN_REF32_H
#define LONGCTX_ATTN_REF32_H

#include "longctx/gpu_attn.h"

#define LCG_REF32_MAX_D 128

int lcg_ref32_fwd(const lc_gpu_attn_desc *a, const float *q, const float *k, const float *v, float *o, float *lse,
                  void *stream);
/* delta[i, h] = dout . o */
int lcg_ref32_delta(const lc_gpu_attn_desc *a, const float *o, const float *dout, float *delta, void *stream);
/* dq, dk, dv += the block's gradients from the final lse and delta */
int lcg_ref32_bwd(const lc_gpu_attn_desc *a, const float *q, const float *k, const float *v, const float *dout,
                  const float *lse, const float *delta, float *dq, float *dk, float *dv, void *stream);

#endif
