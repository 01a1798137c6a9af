// The model's step on the GPU's device table (src/model/cuda/device_gpu.cu), its own source run
// under the CPU emulation of CUDA (cuda_emu.h: the kernels on CPU threads, the GEMM seam as CPU
// loops, device memory on the heap), against the same model on the host: the same layer list
// (step.c) over the two tables. Attention is the host's lc_cp in both (the GPU ring has its own
// emulated test, gpu_ring_emu), so what this checks is everything else the GPU step does: the
// allocation, the uploads of shards and positions, the qkv split and merge, RoPE, the bf16
// packing of weights and operands, the GEMM forms, the loss chunks, the embedding's index and
// the read-back of parameters and gradients.
//
// Under `longctx launch -n P`: for f32 and bf16, with and without recompute, with packed
// documents: the loss and every tensor's gradient of the device model against the host model
// (f32: relative error < 1e-5; bf16: < 1e-2, and printed), logits of a forward against the
// host's; a second step (the device's packed weights are re-made from changed parameters);
// and the refusals (TP, mask balance) with their messages. Inputs are fresh random each run.
#define LCG_EMU 1
#include "cuda_emu.h"

#include "model/cuda/device_gpu.cu"
#include "model/cuda/gemm_gpu.cu"
#include "model/cuda/layers_gpu.cu"

#include <math.h>
#include <stdio.h>
#include <time.h>

extern "C" {
#include "longctx/model.h"
#include "longctx/symm.h"
}
#include "step_check.h"

namespace {
int g_fail = 0, g_me = 0, g_P = 1;
lc_team *g_t;

/* The emulated GPU's table with the host's attention in place of the ring. */
lc_model_device *emu_device()
{
    lc_model_device *d = NULL;
    lc_model_gpu_opts o = {};
    o.host_attention = 1;
    if (lc_model_gpu_device_create(&o, &d)) {
        printf("FAIL: lc_model_gpu_device_create: %s\n", lc_model_gpu_last_error());
        exit(1);
    }
    return d;
}

void set_chunk(lc_model *m, int rows) { lc_model__set_loss_chunk(m, rows); }

void run_case(int S, lc_dtype dt, int recompute, int doc_mask, uint64_t seed)
{
    lc_step_case c = {};
    c.team = g_t, c.device = emu_device(), c.seq = S, c.loss_chunk = 7; /* several LM-head chunks, the last short */
    lc_model_preset("tiny", &c.cfg);
    c.dtype = dt, c.recompute = recompute, c.doc_mask = doc_mask, c.seed = seed, c.me = g_me, c.P = g_P;
    c.tol = dt == LC_DT_BF16 ? 1e-2 : 1e-5;
    g_fail += lc_step_check(&c, set_chunk);
    lc_model_gpu_device_destroy(c.device);
}

void refusals()
{
    lc_model_config cfg;
    lc_model_preset("tiny", &cfg);
    lc_plan pl = {};
    pl.seq_len = 64, pl.layout = LC_CP_ZIGZAG, pl.balance = LC_CP_BALANCE_MASK;
    lc_model_run run = {};
    run.cp_team = g_t, run.plan = &pl, run.compute = LC_DT_F32, run.threads = 1, run.doc_mask = 1;
    lc_model_device *d = emu_device();
    run.device = d;
    lc_model *m = NULL;
    int rc = lc_model_create(&cfg, &run, &m);
    if (rc != LC_ERR_UNSUPPORTED || m || !strstr(lc_model_last_error(NULL), "balance mask")) {
        printf("FAIL PE %d: mask balance on a device: rc %d, \"%s\"\n", g_me, rc, lc_model_last_error(NULL));
        g_fail++;
    } else if (g_me == 0) {
        printf("ok   refused: %s\n", lc_model_last_error(NULL));
    }
    if (g_P == 2) { /* the tiny model splits over 2 (not 3) */
        pl.balance = LC_CP_BALANCE_TOKENS;
        run.tp_team = g_t;
        rc = lc_model_create(&cfg, &run, &m);
        if (rc != LC_ERR_UNSUPPORTED || m || !strstr(lc_model_last_error(NULL), "tensor parallelism")) {
            printf("FAIL PE %d: TP on a device: rc %d, \"%s\"\n", g_me, rc, lc_model_last_error(NULL));
            g_fail++;
        } else if (g_me == 0) {
            printf("ok   refused: %s\n", lc_model_last_error(NULL));
        }
    }
    lc_model_gpu_device_destroy(d);
}
} // namespace

int main()
{
    lc_world *w = NULL;
    if (lc_world_init(NULL, &w)) {
        fprintf(stderr, "test_device_emu: cannot join the world\n");
        return 1;
    }
    g_t = lc_team_world(w);
    g_me = lc_my_pe(w), g_P = lc_n_pes(w);
    uint64_t seed = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)clock();
    if (getenv("LONGCTX_SEED")) seed = strtoull(getenv("LONGCTX_SEED"), NULL, 10);
    lc_broadcast(g_t, &seed, &seed, sizeof seed, 0);
    if (g_me == 0) printf("test_device_emu: P=%d seed %llu (LONGCTX_SEED overrides)\n", g_P, (unsigned long long)seed);
    int S = 24 * g_P + 4 * g_P; /* a multiple of 2P: the zigzag halves are equal */
    run_case(S, LC_DT_F32, 0, 0, seed);
    run_case(S, LC_DT_F32, 1, 1, seed + 1);
    run_case(S, LC_DT_BF16, 0, 1, seed + 2);
    run_case(S, LC_DT_BF16, 1, 0, seed + 3);
    refusals();
    double f = g_fail, tot = 0;
    if (lc_allreduce_sum_f64(g_t, &tot, &f, 1)) tot = 1;
    lc_world_finalize(w);
    if (g_me == 0) printf("%s\n", tot ? "FAILED" : "all passed");
    return tot != 0;
}
