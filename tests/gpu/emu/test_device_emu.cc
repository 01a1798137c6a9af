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

#include <vector>

extern "C" {
#include "longctx/model.h"
#include "longctx/symm.h"
}

namespace {
int g_fail = 0, g_me = 0, g_P = 1;
lc_team *g_t;

void check(const char *what, double err, double tol)
{
    if (!(err < tol)) {
        printf("FAIL PE %d %s: relative error %.3g (tolerance %g)\n", g_me, what, err, tol);
        g_fail++;
    } else if (g_me == 0) {
        printf("ok   %-58s rel err %.2e\n", what, err);
    }
}
void must(int rc, const char *what, lc_model *m)
{
    if (rc) {
        printf("FAIL PE %d %s: %d: %s\n", g_me, what, rc, lc_model_last_error(m));
        exit(1);
    }
}
double rel(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d == d)) return INFINITY;
        num = d > num ? d : num;
        den = fabs((double)b[i]) > den ? fabs((double)b[i]) : den;
    }
    return den > 0 ? num / den : num;
}

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

void run_case(int S, lc_dtype dt, int recompute, int doc_mask, uint64_t seed)
{
    lc_model_config cfg;
    lc_model_preset("tiny", &cfg);
    lc_plan pl = {};
    pl.seq_len = S, pl.layout = LC_CP_ZIGZAG, pl.algo = LC_CP_RING, pl.lowering = LC_LOWER_ONE_SIDED;
    lc_model_run run = {};
    run.cp_team = g_t, run.plan = &pl, run.compute = dt, run.threads = 1, run.recompute = recompute;
    run.doc_mask = doc_mask;
    lc_model *host = NULL, *dev = NULL;
    must(lc_model_create(&cfg, &run, &host), "host model", NULL);
    lc_model_device *d = emu_device();
    run.device = d;
    must(lc_model_create(&cfg, &run, &dev), "device model", NULL);
    must(lc_model_init_params(host, seed), "init", host);
    must(lc_model_init_params(dev, seed), "init", dev);
    lc_model__set_loss_chunk(host, 7); /* several LM-head chunks, the last one short */
    lc_model__set_loss_chunk(dev, 7);

    std::vector<int32_t> tok(S), tgt(S), doc(S);
    uint64_t r = seed ^ 0x5851f42d4c957f2dull;
    auto next = [&] { return (r = r * 6364136223846793005ull + 1442695040888963407ull) >> 33; };
    for (int i = 0; i < S; i++) {
        tok[i] = (int32_t)(next() % (uint64_t)(cfg.vocab / 3)); /* repeats: the embedding's index groups */
        doc[i] = i / (S / 3 + 1);
    }
    for (int i = 0; i < S; i++) tgt[i] = i + 1 < S && doc[i + 1] == doc[i] && next() % 9 ? tok[i + 1] : -1;

    size_t n = lc_model_n_params(host);
    std::vector<float> gh(n), gd(n, NAN), ph(n), pd(n, NAN);
    char what[160];
    const char *name = dt == LC_DT_BF16 ? "bf16" : "f32";
    double tol = dt == LC_DT_BF16 ? 1e-2 : 1e-5;
    for (int step = 0; step < 2; step++) {
        float lh = NAN, ld = NAN;
        lc_model_zero_grads(host);
        lc_model_zero_grads(dev);
        must(lc_model_forward_backward(host, tok.data(), tgt.data(), doc.data(), 1.0f, &lh), "host step", host);
        must(lc_model_forward_backward(dev, tok.data(), tgt.data(), doc.data(), 1.0f, &ld), "device step", dev);
        snprintf(what, sizeof what, "%s S=%d P=%d rc=%d doc=%d step %d: loss %.6f", name, S, g_P, recompute, doc_mask,
                 step, (double)lh);
        check(what, fabs((double)ld - lh) / fabs((double)lh), tol);
        /* the gradients are this PE's partial sums on both: compared PE by PE */
        memcpy(gh.data(), lc_model_grads(host), sizeof(float) * n);
        must(lc_model_read(dev, lc_model_grads(dev), gd.data()), "read grads", dev);
        double worst = 0;
        const char *worst_name = "";
        for (int i = 0; i < lc_model_n_tensors(host); i++) {
            const lc_model_tensor *t = lc_model_tensor_at(host, i);
            double e = rel(gd.data() + t->offset, gh.data() + t->offset, t->numel);
            if (!(e <= worst)) worst = e, worst_name = t->name;
        }
        snprintf(what, sizeof what, "%s S=%d P=%d rc=%d doc=%d step %d: every gradient (worst %.30s)", name, S, g_P,
                 recompute, doc_mask, step, worst_name);
        check(what, worst, tol);
        /* the next step from changed weights (the device re-packs its bf16 copy) */
        for (size_t i = 0; i < n; i++) ph[i] = lc_model_params(host)[i] - 0.05f * gh[i];
        memcpy(lc_model_params(host), ph.data(), sizeof(float) * n);
        must(lc_model_write(dev, lc_model_params(dev), ph.data()), "write params", dev);
        must(lc_model_read(dev, lc_model_params(dev), pd.data()), "read params", dev);
        if (memcmp(pd.data(), ph.data(), sizeof(float) * n)) {
            printf("FAIL PE %d: parameters read back differ from those written\n", g_me);
            g_fail++;
        }
    }
    /* a forward's logits, row by row */
    int rows = lc_model_local_rows(host);
    std::vector<float> lgh((size_t)rows * cfg.vocab, NAN), lgd((size_t)rows * cfg.vocab, NAN);
    float a = 0, b = 0;
    must(lc_model_forward_logits(host, tok.data(), tgt.data(), doc.data(), &a, lgh.data()), "host logits", host);
    must(lc_model_forward_logits(dev, tok.data(), tgt.data(), doc.data(), &b, lgd.data()), "device logits", dev);
    snprintf(what, sizeof what, "%s S=%d P=%d rc=%d doc=%d: forward logits", name, S, g_P, recompute, doc_mask);
    check(what, rel(lgd.data(), lgh.data(), lgd.size()), tol);
    lc_model_destroy(dev);
    lc_model_gpu_device_destroy(d);
    lc_model_destroy(host);
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
