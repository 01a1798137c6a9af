/* `longctx train --device cuda` (train layer, public so the benchmarks use it too): the
 * trainer's GPU part is a plugin (liblongctx_cuda.so,
 * src/train/cuda/plugin.cu) that the trainer loads with dlopen when asked for it, so the
 * longctx binary itself links no CUDA library and starts on machines without a GPU or a
 * driver. The plugin takes the binary's own symbols (the world, the teams, the model: the
 * binary exports them), and gives the trainer a model device (model.h, src/model/device.h)
 * over the GPU world of the CP team.
 *
 * LONGCTX_CUDA_PLUGIN names another file: the tests load the emulated build of the same source
 * (liblongctx_cuda_emu.so: the kernels on CPU threads, host attention), which runs the whole
 * trainer's GPU wiring where there is no GPU. */
#ifndef LONGCTX_TRAIN_CUDA_H
#define LONGCTX_TRAIN_CUDA_H

#include <stddef.h>

#include "longctx/model.h"
#include "longctx/optim.h"
#include "longctx/symm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LC_CUDA_PLUGIN_ABI 3
#define LC_CUDA_PLUGIN_SYMBOL "lc_cuda_plugin_get"

typedef struct {
    int abi;          /* LC_CUDA_PLUGIN_ABI */
    const char *kind; /* "cuda", or "cuda (emulated on the CPU)" */
    /* Collective over world: every PE calls it, and all fail together (each names its own
     * reason; err on a PE that was fine names the PE that was not). The GPU world of every PE
     * (numbered as the host world) and a device for one model on it, whose ring is the model's
     * CP team. engine: "own", "cudnn" or "auto" (the ring's blocks). cfg, plan and dtype are
     * the model's: they size NVSHMEM's symmetric heap (the ring's slots, the all-reduce's)
     * unless NVSHMEM_SYMMETRIC_SIZE is set. */
    int (*open)(lc_team *world, lc_team *cp_team, const char *engine, const lc_model_config *cfg, const lc_plan *plan,
                lc_dtype dtype, void **state, lc_model_device **dev, char *err, size_t len);
    void (*close)(void *state); /* collective; after the model that used the device is destroyed */
    void (*describe)(void *state, char *buf, size_t len); /* the GPU, its memory, how many PEs share it */
    double (*peak_tflops_bf16)(void *state); /* dense bf16 tensor peak of all the GPUs the world uses (0: unknown) */
    double (*mem_used)(void *state);                       /* bytes in use on the GPU now, every process's */
    /* The optimizer on the GPU, for model m on the device (collective): AdamW's moments in
     * device memory, zero; cfg as lc_adamw_create's. The trainer keeps its host lc_adamw for
     * the step count and as the checkpoints' staging (opt_moments). */
    int (*opt_create)(void *state, lc_model *m, const lc_adamw_config *cfg, char *err, size_t len);
    /* One optimizer step (collective): the gradients summed over the world (DP x CP: the
     * device has no TP) in rank order,
     * *norm their L2 norm, AdamW at lr with the clipping factor of clip, t the step count
     * after it (bias correction), as lc_adamw_step and lc_clip_factor compute them. */
    int (*opt_step)(void *state, lc_model *m, int64_t t, float lr, float clip, double *norm, char *err, size_t len);
    /* The moments from the device into m_h, v_h (to_device 0) or back (1) [n_params each]. */
    int (*opt_moments)(void *state, float *m_h, float *v_h, int to_device, char *err, size_t len);
} lc_cuda_plugin;

typedef const lc_cuda_plugin *(*lc_cuda_plugin_fn)(void);

/* Loads the plugin once ($LONGCTX_CUDA_PLUGIN, else liblongctx_cuda.so beside the running
 * binary, else in ../<libdir> from it, where `cmake --install` puts it): NULL with the reason in err when it cannot. The trainer
 * and `bench train --device cuda` use it. */
const lc_cuda_plugin *lc_train_cuda_plugin(char *err, size_t len);

#ifdef __cplusplus
}
#endif
#endif
