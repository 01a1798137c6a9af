/* longctx model on a GPU: the device a model runs on when lc_model_run.device is a GPU's
 * (model.h). Parameters, gradients and activations live in device memory; the memory-bound
 * layers are longctx's CUDA kernels, every linear layer is cuBLASLt (fp32 without TF32, or
 * bf16 operands with fp32 accumulation), and attention is the GPU ring (gpu.h) over the
 * NVSHMEM world, whose PEs must be the model's CP team in order. Built with the GPU library
 * (longctx_gpu); lc_model_gpu_available says whether this build has it. */
#ifndef LONGCTX_MODEL_GPU_H
#define LONGCTX_MODEL_GPU_H

#include "longctx/gpu.h"
#include "longctx/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    lc_gpu_world *world;        /* the ring's PEs = the model's CP team, in order (one-sided) */
    lc_gpu_nccl *nccl;          /* the same for a two-sided plan (NCCL), else NULL */
    lc_gpu_stream stream;       /* NULL: the device makes its own stream */
    lc_gpu_engine_kind engine;  /* attention engine of the ring's blocks (0: ours) */
    int use_graph;              /* replay each ring call as a CUDA graph where it can */
    int host_attention;         /* the emulated build only (device memory is host memory there):
                                   attention by the host's lc_cp instead of the ring */
} lc_model_gpu_opts;

/* One device per model. Creating it allocates only the cuBLASLt handle and the stream; the
 * model's create sizes the rest (lc_model_create with run.device = *out). */
int lc_model_gpu_device_create(const lc_model_gpu_opts *opts, lc_model_device **out);
/* After lc_model_destroy of the model that used it. */
void lc_model_gpu_device_destroy(lc_model_device *d);
/* Bytes of device memory in use by the device's own scratch (the model's buffers are in
 * lc_model_memory), and the stream it runs on. */
size_t lc_model_gpu_scratch_bytes(const lc_model_device *d);
lc_gpu_stream lc_model_gpu_stream(const lc_model_device *d);
/* The optimizer's kernels on the device's stream, for a trainer that keeps AdamW on the GPU
 * (lc_adamw_step's arithmetic): AdamW over [0, n) with one weight decay (bc1, bc2 = 1 - beta^t),
 * and *norm_h = the L2 norm of g[0, n) summed in double in a fixed order (n at most the model's
 * parameters; waits for the result). 0 or LC_ERR_SYS. */
int lc_model_gpu_adamw(const lc_model_device *d, float *p, const float *g, float *m, float *v, size_t n, float lr,
                       float grad_mul, float wd, float b1, float b2, float eps, float bc1, float bc2);
int lc_model_gpu_norm(const lc_model_device *d, const float *g, size_t n, double *norm_h);
/* The message of the last lc_model_gpu_device_create failure on this thread. */
const char *lc_model_gpu_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
