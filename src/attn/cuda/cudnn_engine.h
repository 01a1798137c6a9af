/* Private interface between the attention entry points (attn_api.cu), the cuDNN engine
 * (cudnn_engine.cpp: graphs, cache, dispatch; built with or without cuDNN) and its small
 * kernels (cudnn_kernels.cu). */
#ifndef LONGCTX_CUDNN_ENGINE_H
#define LONGCTX_CUDNN_ENGINE_H

#include <stddef.h>

#include "gpu_internal.h"
#include "longctx/gpu_attn.h"

/* What an engine hook returns when the block is not the engine's (engine OWN, AUTO resolved
 * to own, or the per-block rule of cudnn_plan.h): the caller runs our kernels. */
#define LCG_USE_OWN 1

/* Hooks for the entry points; e is a->engine (non-NULL). LC_OK when the engine did the work,
 * LCG_USE_OWN when our kernels must, or a negative lc_status. */
int lcg_engine_fwd_block(const lc_gpu_attn_desc *a, const void *q, const void *k, const void *v, float *o,
                         float *lse, cudaStream_t s);
/* bwd_prep keeps a 16-bit copy of the final o: cuDNN's backward reads O (it computes
 * rowsum(dO * O) itself). Our delta is then deferred: LC_OK means the engine took the prep
 * over, LCG_USE_OWN that our delta must run now (engine on our kernels). */
int lcg_engine_bwd_prep(const lc_gpu_attn_desc *a, const float *o, const void *dout, cudaStream_t s);
/* Before a block falls back to our backward kernel: 1 (once per prep) with the o and dout of
 * the deferred delta, which the caller must compute first; 0 when it is done already. */
int lcg_engine_take_delta(lc_gpu_attn_engine *e, const float **o, const void **dout);
int lcg_engine_bwd_block(const lc_gpu_attn_desc *a, const void *q, const void *k, const void *v, const void *dout,
                         const float *lse, float *dq, float *dk, float *dv, cudaStream_t s);

/* The cuDNN frontend's own validation of one piece's graph (dir 0 forward, 1 backward) for a
 * given SM version, without a device: the host test (C, test_gpu_cudnn.c declares it) checks
 * the engine's graphs for Hopper on any machine. LC_ERR_UNSUPPORTED with the frontend's message (or: no engine in this build). */
extern "C" int lcg_cudnn_validate_piece(int dir, int hq, int hkv, int d, int dtype, float scale, int nq, int nk,
                                        int right, int left, int sm_version, char *why, size_t whylen);

/* cudnn_kernels.cu. dtype is LC_DT_BF16 or LC_DT_F16 for the 16-bit operands. */
/* state rows q0..q0+nq (o [.,hq,d] fp32, lse [.,hq]) <- piece partial op [nq,hq,d] 16-bit
 * and its stats st [hq,nq] (cuDNN's layout) */
int lcg_cudnn_merge(float *o, float *lse, const void *op, const float *st, int q0, int nq, int hq, int d,
                    int dtype, cudaStream_t s);
int lcg_cudnn_to16(const float *src, void *dst, size_t n, int dtype, cudaStream_t s);
/* dst [hq, nq] <- lse rows q0..q0+nq ([., hq]) */
int lcg_cudnn_lse_t(const float *lse, float *dst, int q0, int nq, int hq, cudaStream_t s);
/* dst[i] += src[i] (src 16-bit) */
int lcg_cudnn_add16(float *dst, const void *src, size_t n, int dtype, cudaStream_t s);

#endif
