/* One check of the model's step on a device against the same model on the host, shared by
 * the emulated test (tests/gpu/emu/test_device_emu.cc: the GPU table's source on the CPU) and
 * the device test (tests/gpu/test_gpu_step.c: the real GPU): per PE, two steps (the second from
 * changed weights, written to the device), the loss, every tensor's gradient (this PE's
 * partial sums) and the forward logits, relative error against the host below tol; device
 * buffers read back are poisoned with NaN first. C, and C++ for the emulated build. */
#ifndef LONGCTX_TESTS_STEP_CHECK_H
#define LONGCTX_TESTS_STEP_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "longctx/model.h"

typedef struct {
    lc_team *team;
    lc_model_device *device;
    lc_model_config cfg;
    int seq;        /* tokens of the global sequence */
    int loss_chunk; /* > 0: LM-head rows per chunk on both (model/internal.h), to reach the chunked loss */
    lc_dtype dtype;
    int recompute, doc_mask;
    double tol;
    unsigned long long seed;
    int me, P;
} lc_step_case;

static inline double lc_step_rel(const float *a, const float *b, size_t n)
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

/* Prints one line per check (PE 0, or any PE that fails); returns the failures. */
static inline int lc_step_check(const lc_step_case *c, void (*set_chunk)(lc_model *, int))
{
    int fails = 0;
#define LC_SC_MUST(m, x)                                                                                         \
    do {                                                                                                         \
        int rc_ = (x);                                                                                           \
        if (rc_) {                                                                                               \
            printf("FAIL PE %d %s:%d: %s = %d: %s\n", c->me, __FILE__, __LINE__, #x, rc_, lc_model_last_error(m)); \
            exit(1);                                                                                             \
        }                                                                                                        \
    } while (0)
#define LC_SC_CHECK(err, ...)                                                                                    \
    do {                                                                                                         \
        char w_[200];                                                                                            \
        double e_ = (err);                                                                                       \
        snprintf(w_, sizeof w_, __VA_ARGS__);                                                                    \
        if (!(e_ < c->tol)) printf("FAIL PE %d %s: relative error %.3g (tolerance %g)\n", c->me, w_, e_, c->tol), fails++; \
        else if (c->me == 0) printf("ok   %-64s rel err %.2e\n", w_, e_);                                        \
    } while (0)
    lc_plan pl;
    memset(&pl, 0, sizeof pl);
    pl.seq_len = c->seq, pl.layout = LC_CP_ZIGZAG, pl.algo = LC_CP_RING, pl.lowering = LC_LOWER_ONE_SIDED;
    lc_model_run run;
    memset(&run, 0, sizeof run);
    run.cp_team = c->team, run.plan = &pl, run.compute = c->dtype, run.threads = 1, run.recompute = c->recompute;
    run.doc_mask = c->doc_mask;
    lc_model *host = NULL, *dev = NULL;
    LC_SC_MUST((lc_model *)NULL, lc_model_create(&c->cfg, &run, &host));
    run.device = c->device;
    LC_SC_MUST((lc_model *)NULL, lc_model_create(&c->cfg, &run, &dev));
    LC_SC_MUST(host, lc_model_init_params(host, c->seed));
    LC_SC_MUST(dev, lc_model_init_params(dev, c->seed));
    if (c->loss_chunk > 0) set_chunk(host, c->loss_chunk), set_chunk(dev, c->loss_chunk);
    int S = c->seq, V = c->cfg.vocab;
    int32_t *tok = (int32_t *)malloc(4 * (size_t)S), *tgt = (int32_t *)malloc(4 * (size_t)S);
    int32_t *doc = (int32_t *)malloc(4 * (size_t)S);
    unsigned long long r = c->seed ^ 0x5851f42d4c957f2dull;
    for (int i = 0; i < S; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int32_t)((r >> 33) % (unsigned long long)(V / 3)); /* repeats: the embedding's index groups */
        doc[i] = i / (S / 3 + 1);
    }
    for (int i = 0; i < S; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        tgt[i] = i + 1 < S && doc[i + 1] == doc[i] && (r >> 33) % 9 ? tok[i + 1] : -1;
    }
    size_t n = lc_model_n_params(host);
    float *gd = (float *)malloc(4 * n), *p = (float *)malloc(4 * n);
    const char *name = c->dtype == LC_DT_BF16 ? "bf16" : "f32";
    for (int step = 0; step < 2; step++) {
        float lh = NAN, ld = NAN;
        lc_model_zero_grads(host);
        lc_model_zero_grads(dev);
        LC_SC_MUST(host, lc_model_forward_backward(host, tok, tgt, doc, 1.0f, &lh));
        LC_SC_MUST(dev, lc_model_forward_backward(dev, tok, tgt, doc, 1.0f, &ld));
        LC_SC_CHECK(fabs((double)ld - lh) / fabs((double)lh), "%s S=%d P=%d rc=%d doc=%d step %d: loss %.6f", name, S,
                    c->P, c->recompute, c->doc_mask, step, (double)lh);
        for (size_t i = 0; i < n; i++) gd[i] = NAN;
        LC_SC_MUST(dev, lc_model_read(dev, lc_model_grads(dev), gd));
        const float *gh = lc_model_grads(host);
        double worst = 0;
        const char *wname = "";
        for (int i = 0; i < lc_model_n_tensors(host); i++) {
            const lc_model_tensor *t = lc_model_tensor_at(host, i);
            double e = lc_step_rel(gd + t->offset, gh + t->offset, t->numel);
            if (!(e <= worst)) worst = e, wname = t->name;
        }
        LC_SC_CHECK(worst, "%s S=%d P=%d rc=%d doc=%d step %d: every gradient (worst %.28s)", name, S, c->P,
                    c->recompute, c->doc_mask, step, wname);
        /* the next step from changed weights (a device re-packs its bf16 copy) */
        for (size_t i = 0; i < n; i++) p[i] = lc_model_params(host)[i] - 0.05f * gh[i];
        memcpy(lc_model_params(host), p, 4 * n);
        LC_SC_MUST(dev, lc_model_write(dev, lc_model_params(dev), p));
        for (size_t i = 0; i < n; i++) gd[i] = NAN;
        LC_SC_MUST(dev, lc_model_read(dev, lc_model_params(dev), gd));
        if (memcmp(gd, p, 4 * n)) printf("FAIL PE %d: the parameters read back differ from those written\n", c->me), fails++;
    }
    int rows = lc_model_local_rows(host);
    size_t nl = (size_t)rows * V;
    float *lgh = (float *)malloc(4 * nl), *lgd = (float *)malloc(4 * nl), a = 0, b = 0;
    for (size_t i = 0; i < nl; i++) lgh[i] = lgd[i] = NAN;
    LC_SC_MUST(host, lc_model_forward_logits(host, tok, tgt, doc, &a, lgh));
    LC_SC_MUST(dev, lc_model_forward_logits(dev, tok, tgt, doc, &b, lgd));
    LC_SC_CHECK(lc_step_rel(lgd, lgh, nl), "%s S=%d P=%d rc=%d doc=%d: forward logits", name, S, c->P, c->recompute,
                c->doc_mask);
    lc_model_destroy(dev);
    lc_model_destroy(host);
    free(tok), free(tgt), free(doc), free(gd), free(p), free(lgh), free(lgd);
#undef LC_SC_MUST
#undef LC_SC_CHECK
    return fails;
}

#endif
