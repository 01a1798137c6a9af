/* liblongctx_cuda.so: the trainer's GPU part (include/longctx/train_cuda.h). It starts the GPU
 * world of the PEs (NVSHMEM, its unique id broadcast over the host world), makes the model's
 * GPU device over it (include/longctx/model_gpu.h) and reports the GPU for the banner, MFU
 * and memory. Built by nvcc into the plugin, and by the host compiler with LCG_EMU into
 * liblongctx_cuda_emu.so (tests/gpu/emu/plugin_emu.cc), where the device is the emulated one
 * with the host's attention: the trainer's wiring then runs in CI. */
#ifndef LCG_EMU
#include <cuda_runtime.h>
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "common/settings.h"
#include "longctx/model_gpu.h"
#include "longctx/train_cuda.h"
}
#ifndef LCG_EMU
#include "train/cuda/grad_allreduce.h"
#endif

namespace {

struct pstate {
    lc_gpu_world *world;
    lc_model_device *dev;
    lc_team *team; /* the host world (the emulated all-reduce; agreements) */
    int gpu, pes_per_gpu, n_pes, me;
    /* the optimizer */
    lc_adamw_config cfg;
    size_t np;
    float *m, *v;          /* AdamW's moments [np], device */
    float *slots;          /* P > 1: every PE's gradients [P][np], symmetric (NVSHMEM) */
    float *stage;          /* the emulated build's all-reduce: a host copy [np] */
};

/* Every PE learns whether any failed; the lowest failing PE is named to the others. */
int agree(lc_team *world, int rc, char *err, size_t len, const char *stage)
{
    int me = lc_team_my_pe(world), n = lc_team_n_pes(world);
    double mine = rc ? (double)(n - me) : 0.0, worst = 0.0;
    if (lc_allreduce_max_f64(world, &worst, &mine, 1))
        return rc ? rc : (snprintf(err, len, "%s: the agreement over the host world failed", stage), LC_ERR_ABORT);
    if (worst == 0.0) return LC_OK;
    if (!rc) {
        snprintf(err, len, "%s failed on PE %d (its own message says why)", stage, n - (int)worst);
        return LC_ERR_ABORT;
    }
    return rc;
}

void opt_free(pstate *s)
{
#ifndef LCG_EMU
    if (s->m) cudaFree(s->m);
    if (s->v) cudaFree(s->v);
    if (s->slots) lc_gpu_symm_free(s->world, s->slots);
#else
    free(s->m), free(s->v);
#endif
    free(s->stage);
    s->m = s->v = s->slots = s->stage = NULL;
}

void close_(void *state)
{
    pstate *s = (pstate *)state;
    if (!s) return;
    opt_free(s);
    lc_model_gpu_device_destroy(s->dev);
#ifndef LCG_EMU
    if (s->world) lc_gpu_world_finalize(s->world);
#endif
    free(s);
}

#ifndef LCG_EMU
/* NVSHMEM's symmetric heap for one model: the GPU ring's two KV slots (K, V, positions and
 * document ids each) and its dK/dV accumulators (src/cp/ring_gpu.cu), and with several PEs the
 * gradient all-reduce's slot per PE (opt_create), with a quarter and 64 MiB to spare. */
size_t heap_need(const lc_model_config *c, const lc_plan *p, lc_dtype dt, int n_pes)
{
    int cp = p->cp > 0 ? p->cp : 1, rows = 0;
    if (lc_cp_layout_positions(p->layout, p->seq_len, cp, 0, NULL, &rows) < 0) rows = (int)(p->seq_len / cp + 1);
    size_t hd = (size_t)(c->dim / c->n_heads), kvd = (size_t)c->n_kv_heads * hd, R = (size_t)rows;
    size_t kv = R * kvd * (dt == LC_DT_BF16 ? 2 : 4), slot = 2 * kv + 2 * R * 4 + 4 * 4096;
    size_t ring = 2 * slot + 6 * R * kvd * 4 + (1u << 20);
    size_t D = (size_t)c->dim, F = (size_t)c->ffn_dim, V = (size_t)c->vocab;
    size_t np = 2 * V * D + D + (size_t)c->n_layers * (2 * D + D * (D + 2 * kvd) + D * D + 3 * F * D);
    size_t ar = n_pes > 1 ? (size_t)n_pes * np * 4 : 0;
    return (ring + ar) / 4 * 5 + (64u << 20);
}
#endif

int open_(lc_team *world, lc_team *cp, const char *engine, const lc_model_config *cfg, const lc_plan *plan,
          lc_dtype dtype, void **state, lc_model_device **dev, char *err, size_t len)
{
    *state = NULL, *dev = NULL;
    int me = lc_team_my_pe(world), n = lc_team_n_pes(world), rc = LC_OK;
    pstate *s = (pstate *)calloc(1, sizeof *s);
    if (!s) rc = LC_ERR_SYS, snprintf(err, len, "out of memory");
    else s->n_pes = n, s->pes_per_gpu = 1, s->me = me, s->team = world;
    (void)cp; /* the model's device makes its ring on the CP team; the world is every PE */
#ifndef LCG_EMU
    lc_gpu_engine_kind kind = LC_GPU_ENGINE_OWN;
    int ndev = 0;
    if (!rc && lc_gpu_engine_parse(engine, &kind))
        rc = LC_ERR_ARG, snprintf(err, len, "%s", lc_gpu_last_error());
    if (!rc) {
        cudaError_t e = cudaGetDeviceCount(&ndev);
        if (e != cudaSuccess || ndev < 1)
            rc = LC_ERR_UNSUPPORTED, snprintf(err, len, "no CUDA device here (%s)",
                                              e != cudaSuccess ? cudaGetErrorString(e) : "the count is 0");
    }
    if (!rc && !lc_gpu_have_nvshmem())
        rc = LC_ERR_UNSUPPORTED, snprintf(err, len, "this build has no NVSHMEM (the GPU ring's one-sided runtime): "
                                                    "scripts/setup-gpu-deps.sh, then rebuild");
    /* PEs on one host (the shm backend): NVSHMEM's bootstrap over loopback, no remote
     * transport and no NCCL inside it, unless the user chose otherwise; the settings the GPU
     * tests run with, and the lent machines have no network at all */
    if (!strcmp(lc_world_backend(lc_team_get_world(world)), "shm")) {
        setenv("NVSHMEM_BOOTSTRAP_UID_SOCK_IFNAME", "lo", 0);
        setenv("NVSHMEM_REMOTE_TRANSPORT", "none", 0);
        setenv("NVSHMEM_DISABLE_NCCL", "1", 0);
    }
    struct {
        int32_t status;
        lc_gpu_uid uid;
    } msg;
    memset(&msg, 0, sizeof msg);
    if (!rc && me == 0 && (rc = lc_gpu_uid_create(&msg.uid))) snprintf(err, len, "NVSHMEM unique id: %s", lc_gpu_last_error());
    if ((rc = agree(world, rc, err, len, "GPU set-up"))) return close_(s), rc;
    if (lc_broadcast(world, &msg, &msg, sizeof msg, 0)) {
        snprintf(err, len, "broadcasting the NVSHMEM unique id over the host world failed");
        return close_(s), LC_ERR_ABORT;
    }
    lc_gpu_world_opts wo;
    memset(&wo, 0, sizeof wo);
    wo.pe = me, wo.n_pes = n, wo.uid = &msg.uid, wo.device = -1;
    /* NVSHMEM's default heap is 1 GiB; a user's NVSHMEM_SYMMETRIC_SIZE wins */
    size_t need = heap_need(cfg, plan, dtype, n);
    if (!lc__env_str("NVSHMEM_SYMMETRIC_SIZE") && need > ((size_t)1 << 30)) wo.heap_bytes = need;
    if ((rc = lc_gpu_world_init(&wo, &s->world))) {
        s->world = NULL;
        snprintf(err, len, "the NVSHMEM world: %s", lc_gpu_last_error());
    } else {
        s->pes_per_gpu = lc_gpu_pes_per_device(s->world);
        cudaGetDevice(&s->gpu);
    }
    if ((rc = agree(world, rc, err, len, "the GPU world"))) return close_(s), rc;
    lc_model_gpu_opts mo;
    memset(&mo, 0, sizeof mo);
    mo.world = s->world, mo.engine = kind;
    if ((rc = lc_model_gpu_device_create(&mo, &s->dev))) snprintf(err, len, "%s", lc_model_gpu_last_error());
#else
    (void)engine, (void)me, (void)cfg, (void)plan, (void)dtype;
    lc_model_gpu_opts mo;
    memset(&mo, 0, sizeof mo);
    mo.host_attention = 1;
    if (!rc && (rc = lc_model_gpu_device_create(&mo, &s->dev))) snprintf(err, len, "%s", lc_model_gpu_last_error());
#endif
    if ((rc = agree(world, rc, err, len, "the model's GPU device"))) return close_(s), rc;
    *state = s, *dev = s->dev;
    return LC_OK;
}

void describe(void *state, char *buf, size_t len)
{
    pstate *s = (pstate *)state;
#ifndef LCG_EMU
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, s->gpu) != cudaSuccess) {
        snprintf(buf, len, "GPU %d (its properties could not be read)", s->gpu);
        return;
    }
    snprintf(buf, len, "%s (sm_%d%d, %d SMs, %.1f GiB), %d PE%s per GPU, NVSHMEM ring", p.name, p.major, p.minor,
             p.multiProcessorCount, (double)p.totalGlobalMem / (1u << 30), s->pes_per_gpu, s->pes_per_gpu > 1 ? "s" : "");
#else
    snprintf(buf, len, "emulated CUDA on the CPU (kernels on threads, GEMMs as loops, host attention), %d PE%s",
             s->n_pes, s->n_pes > 1 ? "s" : "");
#endif
}

/* Dense bf16 tensor-core FLOP/s with fp32 accumulation of the GPUs the world runs on: SMs x
 * clock x the architecture's FLOP per SM per clock (A100 2048: 312 TFLOP/s; H100 4096: about
 * 990; Ada/Ampere GeForce 512 with fp32 accumulation; B200 8192); 0 where unknown. */
double peak_tflops(void *state)
{
    pstate *s = (pstate *)state;
#ifndef LCG_EMU
    int maj = 0, min = 0, sms = 0, khz = 0;
    cudaDeviceGetAttribute(&maj, cudaDevAttrComputeCapabilityMajor, s->gpu);
    cudaDeviceGetAttribute(&min, cudaDevAttrComputeCapabilityMinor, s->gpu);
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, s->gpu);
    cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, s->gpu);
    double per = maj == 8 && min == 0 ? 2048 : maj == 8 ? 512 : maj == 9 ? 4096 : maj == 10 ? 8192 : 0;
    int gpus = s->n_pes / (s->pes_per_gpu > 0 ? s->pes_per_gpu : 1);
    return per * sms * khz * 1e3 * (gpus > 0 ? gpus : 1) / 1e12;
#else
    (void)s;
    return 0;
#endif
}

double mem_used(void *state)
{
    (void)state;
#ifndef LCG_EMU
    size_t fr = 0, tot = 0;
    if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) return 0;
    return (double)(tot - fr);
#else
    return 0;
#endif
}

/* ---- the optimizer on the GPU ---- */
void *dalloc(size_t bytes)
{
#ifndef LCG_EMU
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 8) != cudaSuccess) return NULL;
    if (cudaMemset(p, 0, bytes) != cudaSuccess) return cudaFree(p), (void *)NULL;
    return p;
#else
    return calloc(1, bytes ? bytes : 8);
#endif
}

int opt_create(void *state, lc_model *m, const lc_adamw_config *cfg, char *err, size_t len)
{
    pstate *s = (pstate *)state;
    s->cfg = *cfg;
    s->np = lc_model_n_params(m);
    int rc = LC_OK;
    s->m = (float *)dalloc(sizeof(float) * s->np);
    s->v = (float *)dalloc(sizeof(float) * s->np);
    if (!s->m || !s->v)
        rc = LC_ERR_SYS, snprintf(err, len, "out of GPU memory for AdamW's moments (2 x %zu floats)", s->np);
#ifndef LCG_EMU
    /* collective, so every PE reaches it: the slots of the all-reduce */
    if (!rc && s->n_pes > 1 &&
        !(s->slots = (float *)lc_gpu_symm_alloc(s->world, sizeof(float) * s->np * (size_t)s->n_pes)))
        rc = LC_ERR_NOMEM, snprintf(err, len, "the gradient all-reduce needs %zu MiB of NVSHMEM's symmetric heap "
                                              "per PE (NVSHMEM_SYMMETRIC_SIZE): %s",
                                    (sizeof(float) * s->np * (size_t)s->n_pes) >> 20, lc_gpu_world_error(s->world));
#else
    if (!rc && s->n_pes > 1 && !(s->stage = (float *)malloc(sizeof(float) * s->np)))
        rc = LC_ERR_SYS, snprintf(err, len, "out of memory");
#endif
    if ((rc = agree(s->team, rc, err, len, "the GPU optimizer"))) opt_free(s);
    return rc;
}

#ifndef LCG_EMU
__global__ void sum_slots_kernel(const float *slots, size_t n, int P, float *g)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float a = slots[i];
        for (int r = 1; r < P; r++) a += slots[(size_t)r * n + i]; /* rank order, as the host's */
        g[i] = a;
    }
}
int sum_slots(void *, const float *slots, int P, size_t n, float *g, void *stream)
{
    sum_slots_kernel<<<1024, 256, 0, (cudaStream_t)stream>>>(slots, n, P, g);
    return cudaGetLastError() ? LC_ERR_SYS : LC_OK;
}
#endif

/* The gradients of every PE summed in rank order, in place (grad_allreduce.h). The emulated
 * build, whose memory is the host's, sums through the host world instead. */
int allreduce(pstate *s, float *g, void *stream, char *err, size_t len)
{
    if (s->n_pes < 2) return LC_OK;
#ifndef LCG_EMU
    int rc = lc_grad_allreduce(s->world, s->slots, g, s->np, stream, sum_slots, NULL);
    if (rc) snprintf(err, len, "the gradient all-reduce: %s", lc_gpu_world_error(s->world));
    return rc;
#else
    (void)stream;
    memcpy(s->stage, g, sizeof(float) * s->np);
    int rc = lc_allreduce_sum_f32(s->team, g, s->stage, s->np);
    if (rc) snprintf(err, len, "the gradient all-reduce over the host world failed");
    return rc;
#endif
}

int opt_step(void *state, lc_model *m, int64_t t, float lr, float clip, double *norm, char *err, size_t len)
{
    pstate *s = (pstate *)state;
    void *st = lc_model_gpu_stream(s->dev);
    float *p = lc_model_params(m), *g = lc_model_grads(m);
    int rc = allreduce(s, g, st, err, len);
    if (rc) return rc;
    if ((rc = lc_model_gpu_norm(s->dev, g, s->np, norm)))
        return snprintf(err, len, "the gradient norm on the GPU failed"), rc;
    float mul = lc_clip_factor(*norm, clip);
    float bc1 = 1.0f - powf(s->cfg.beta1, (float)t), bc2 = 1.0f - powf(s->cfg.beta2, (float)t);
    for (int i = 0; i < lc_model_n_tensors(m); i++) {
        const lc_model_tensor *te = lc_model_tensor_at(m, i);
        size_t o = te->offset;
        if (lc_model_gpu_adamw(s->dev, p + o, g + o, s->m + o, s->v + o, te->numel, lr, mul,
                               te->decay ? s->cfg.weight_decay : 0.0f, s->cfg.beta1, s->cfg.beta2, s->cfg.eps, bc1, bc2))
            return snprintf(err, len, "the AdamW kernel failed on %s", te->name), LC_ERR_SYS;
    }
    return LC_OK;
}

int opt_moments(void *state, float *m_h, float *v_h, int to_device, char *err, size_t len)
{
    pstate *s = (pstate *)state;
    size_t b = sizeof(float) * s->np;
#ifndef LCG_EMU
    cudaStream_t st = (cudaStream_t)lc_model_gpu_stream(s->dev);
    cudaMemcpyKind k = to_device ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost;
    cudaError_t e = cudaMemcpyAsync(to_device ? (void *)s->m : m_h, to_device ? (const void *)m_h : s->m, b, k, st);
    if (!e) e = cudaMemcpyAsync(to_device ? (void *)s->v : v_h, to_device ? (const void *)v_h : s->v, b, k, st);
    if (!e) e = cudaStreamSynchronize(st);
    if (e) return snprintf(err, len, "AdamW's moments %s the GPU: %s", to_device ? "to" : "from", cudaGetErrorString(e)), LC_ERR_SYS;
#else
    (void)err, (void)len;
    memcpy(to_device ? (void *)s->m : m_h, to_device ? (const void *)m_h : s->m, b);
    memcpy(to_device ? (void *)s->v : v_h, to_device ? (const void *)v_h : s->v, b);
#endif
    return LC_OK;
}

#ifndef LCG_EMU
const char KIND[] = "cuda";
#else
const char KIND[] = "cuda (emulated on the CPU)";
#endif
const lc_cuda_plugin g_plugin = {LC_CUDA_PLUGIN_ABI, KIND,       open_,    close_,     describe,   peak_tflops,
                                 mem_used,           opt_create, opt_step, opt_moments};

} // namespace

extern "C" __attribute__((visibility("default"))) const lc_cuda_plugin *lc_cuda_plugin_get(void) { return &g_plugin; }
