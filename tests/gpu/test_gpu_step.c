/* The model's whole step on the GPU (model_gpu.h: the CUDA layers, cuBLASLt, the GPU ring over
 * NVSHMEM) against the same model on the host, PE by PE, under `longctx launch -n P` (P = 1
 * or 2, the PEs sharing the one GPU): the loss, every tensor's gradient (this PE's partial
 * sums, before any all-reduce) and the forward logits. fp32 on the GPU (GEMMs without TF32,
 * the fp32 reference attention) within 1e-5 of the CPU's fp32; bf16 within 1e-2 of the CPU's
 * bf16. Head dim 64, GQA 2:1, packed documents in one case, recompute in another, two steps
 * (the second from changed weights): tests/gpu/step_check.h, which the emulated test runs
 * too. Skips (77) without a GPU or NVSHMEM. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpu_test_util.h"
#include "longctx/model_gpu.h"
#include "step_check.h"

static int g_fail, g_me, g_P;

static void no_chunk(lc_model *m, int rows) { (void)m, (void)rows; }

static void run_case(lc_team *t, lc_gpu_world *gw, lc_dtype dt, int recompute, int doc_mask, uint64_t seed)
{
    lc_step_case c = {.team = t, .seq = 512 * g_P, .dtype = dt, .recompute = recompute, .doc_mask = doc_mask,
                      .tol = dt == LC_DT_BF16 ? 1e-2 : 1e-5, .seed = seed, .me = g_me, .P = g_P};
    lc_model_preset("small", &c.cfg); /* head dim 64, the bf16 kernels' */
    c.cfg.ffn_dim = 512;
    lc_model_gpu_opts go = {.world = gw};
    if (lc_model_gpu_device_create(&go, &c.device)) {
        printf("FAIL PE %d: %s\n", g_me, lc_model_gpu_last_error());
        exit(1);
    }
    g_fail += lc_step_check(&c, no_chunk);
    lc_model_gpu_device_destroy(c.device);
}

int main(int argc, char **argv)
{
    lc_world *w = NULL;
    if (lc_world_init(NULL, &w)) {
        fprintf(stderr, "test_gpu_step: cannot join the world\n");
        return 1;
    }
    lc_team *t = lc_team_world(w);
    g_me = lc_my_pe(w), g_P = lc_n_pes(w);
    /* every PE decides together whether to skip */
    char why[256] = "";
    double none = (lc_gpu_device_count(why, sizeof why) < 1 || !lc_gpu_have_nvshmem()) ? 1 : 0, any = 0;
    lc_allreduce_max_f64(t, &any, &none, 1);
    if (any > 0) {
        if (g_me == 0)
            printf("SKIP: test_gpu_step: %s\n", lc_gpu_have_nvshmem() ? "no CUDA device" : "no NVSHMEM in this build");
        lc_world_finalize(w);
        return LC_SKIP;
    }
    gt_nvshmem_env();
    lc_gpu_uid uid;
    memset(&uid, 0, sizeof uid);
    if (g_me == 0) GT_CHECK(lc_gpu_uid_create(&uid));
    lc_broadcast(t, &uid, &uid, sizeof uid, 0);
    lc_gpu_world_opts wo = {.pe = g_me, .n_pes = lc_n_pes(w), .uid = &uid, .device = -1};
    lc_gpu_world *gw = NULL;
    GT_CHECK(lc_gpu_world_init(&wo, &gw));
    uint64_t seed = (uint64_t)time(NULL) * 2654435761u;
    lc_broadcast(t, &seed, &seed, sizeof seed, 0);
    /* DP x CP: dp CP teams of consecutive PEs, each ring on its own team of the one GPU world */
    int dp = argc > 1 ? atoi(argv[1]) : 1, world_p = g_P;
    lc_team *cpt = t;
    if (dp > 1) {
        if (g_P % dp) {
            fprintf(stderr, "test_gpu_step: %d PEs do not split into %d replicas\n", g_P, dp);
            return 2;
        }
        g_P /= dp;
        for (int r = 0; r < dp; r++) {
            lc_team *x = NULL;
            GT_CHECK(lc_team_split_strided(t, r * g_P, 1, g_P, &x));
            if (x) cpt = x;
        }
    }
    if (g_me == 0) printf("test_gpu_step: %d PEs, DP %d x CP %d, seed %llu\n", world_p, dp, g_P, (unsigned long long)seed);
    run_case(cpt, gw, LC_DT_F32, 0, 0, seed);
    run_case(cpt, gw, LC_DT_F32, 1, 1, seed + 1);
    run_case(cpt, gw, LC_DT_BF16, 0, 1, seed + 2);
    double f = g_fail, tot = 0;
    lc_allreduce_sum_f64(t, &tot, &f, 1);
    lc_gpu_world_finalize(gw);
    lc_world_finalize(w);
    if (g_me == 0) printf("%s\n", tot ? "FAILED" : "all passed");
    return tot != 0;
}
