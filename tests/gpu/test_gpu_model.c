/* The decoder's memory-bound kernels (src/model/cuda/layers_gpu.cu) on a device, at model
 * sizes, against the CPU layers (src/model/layers.c) and the optimizer (src/optim) on the
 * same inputs: relative error < 1e-5 (1e-4 where the GPU's expf/powf may differ by an ulp and
 * the difference is carried through a sum), the embedding's gradient and a repeated
 * cross-entropy bit for bit, outputs poisoned with NaN first. Skips (77) without a device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_ref.h"
#include "gpu_test_util.h"
#include "longctx/optim.h"
#include "model/cuda/layers_gpu.h"
#include "model/internal.h"

static int g_fail;
static uint64_t g_rs = 12345;

static float *rnd(size_t n, float scale)
{
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = scale * gt_uniform(&g_rs);
    return v;
}
static void *dev_of(const void *h, size_t bytes)
{
    void *d = gt_dev_alloc(bytes);
    gt_h2d(d, h, bytes);
    return d;
}
static void *dev_nan(size_t bytes)
{
    void *h = malloc(bytes);
    memset(h, 0xff, bytes); /* NaN in every float */
    void *d = dev_of(h, bytes);
    free(h);
    return d;
}
static double rel(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d == d)) return INFINITY;
        if (d > num) num = d;
        if (fabs((double)b[i]) > den) den = fabs((double)b[i]);
    }
    return den > 0 ? num / den : num;
}
static void expect(const char *what, double err, double tol)
{
    printf("%s %-40s rel err %.2e (tolerance %g)\n", err < tol ? "ok  " : "FAIL", what, err, tol);
    if (!(err < tol)) g_fail++;
}
static float *back(const void *d, size_t n)
{
    float *h = malloc(n * sizeof *h);
    gt_d2h(h, d, n * sizeof *h);
    return h;
}

/* cuBLASLt through the seam: every transpose pair, strided leading dimensions, accumulate, fp32
 * and bf16 operands, against a double reference of the same (rounded) operands */
static void gemm_seam(void)
{
    const int M = 520, N = 392, K = 1032, pad = 8;
    lcm_blas *g = lcm_blas_create((size_t)32 << 20);
    if (!g) {
        printf("FAIL lcm_blas_create\n");
        g_fail++;
        return;
    }
    for (int bf = 0; bf < 2; bf++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int acc = 0; acc < 2; acc++) {
                    const int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
                    const int lda = ac + pad, ldb = bc + pad, ldc = N + pad;
                    size_t na = (size_t)ar * lda, nb = (size_t)br * ldb, nc = (size_t)M * ldc;
                    float *a = rnd(na, 1.0f), *b = rnd(nb, 1.0f), *c = rnd(nc, 1.0f);
                    uint16_t *a16 = malloc(na * 2), *b16 = malloc(nb * 2);
                    if (bf) {
                        for (size_t i = 0; i < na; i++) a[i] = gt_round(LC_DT_BF16, a[i], &a16[i]);
                        for (size_t i = 0; i < nb; i++) b[i] = gt_round(LC_DT_BF16, b[i], &b16[i]);
                    }
                    float *want = malloc(sizeof(float) * M * N), *got = malloc(sizeof(float) * M * N);
                    gemm_ref(ta, tb, M, N, K, a, lda, b, ldb, c, ldc, acc, want);
                    void *d_a = bf ? dev_of(a16, na * 2) : dev_of(a, na * 4), *d_b = bf ? dev_of(b16, nb * 2) : dev_of(b, nb * 4);
                    float *d_c = acc ? dev_of(c, nc * 4) : dev_nan(nc * 4);
                    int rc = lcm_gemm(g, ta, tb, M, N, K, d_a, lda, d_b, ldb, d_c, ldc, acc, bf, NULL);
                    char what[64];
                    snprintf(what, sizeof what, "gemm seam %s ta %d tb %d%s", bf ? "bf16" : "f32", ta, tb, acc ? " acc" : "");
                    if (rc) {
                        printf("FAIL %s: %s\n", what, lcm_blas_error(g));
                        g_fail++;
                    } else {
                        float *cc = back(d_c, nc);
                        for (int i = 0; i < M; i++) memcpy(got + (size_t)i * N, cc + (size_t)i * ldc, sizeof(float) * N);
                        free(cc);
                        expect(what, rel(got, want, (size_t)M * N), 1e-5);
                    }
                    gt_dev_free(d_a), gt_dev_free(d_b), gt_dev_free(d_c);
                    free(a), free(b), free(c), free(a16), free(b16), free(want), free(got);
                }
    lcm_blas_destroy(g);
}

int main(void)
{
    gt_require_gpu("test_gpu_model");
    const int rows = 1531, dim = 2048, heads = 16, hd = 128, ffn = 5632, vocab = 32003, half = hd / 2;
    int32_t *tok = malloc(sizeof(int32_t) * rows), *pos = malloc(sizeof(int32_t) * rows),
            *tgt = malloc(sizeof(int32_t) * rows);
    for (int i = 0; i < rows; i++) {
        tok[i] = (int32_t)(gt_rng(&g_rs) % 500); /* repeated ids */
        pos[i] = i % 97 == 0 ? -1 : 3 * i + 11;
        tgt[i] = i % 7 == 3 ? -1 : (int32_t)(gt_rng(&g_rs) % vocab);
    }
    int32_t *d_tok = dev_of(tok, sizeof(int32_t) * rows), *d_pos = dev_of(pos, sizeof(int32_t) * rows),
            *d_tgt = dev_of(tgt, sizeof(int32_t) * rows);
    /* embedding */
    size_t ne = (size_t)vocab * dim, nx = (size_t)rows * dim;
    float *emb = rnd(ne, 1.0f), *ref = malloc(nx * 4), *d_emb = dev_of(emb, ne * 4), *d_out = dev_nan(nx * 4);
    lc_model__embed_fwd(emb, tok, rows, dim, ref);
    GT_CHECK(lcm_embed_fwd(d_emb, d_tok, rows, dim, d_out, NULL));
    float *got = back(d_out, nx);
    expect("embedding forward (bits)", memcmp(got, ref, nx * 4) ? 1.0 : 0.0, 0.5);
    free(got);
    float *dout = rnd(nx, 1.0f), *d_dout = dev_of(dout, nx * 4);
    int32_t *count = malloc(sizeof(int32_t) * vocab), *by = malloc(sizeof(int32_t) * rows),
            *ids = malloc(sizeof(int32_t) * rows), *starts = malloc(sizeof(int32_t) * (rows + 1));
    int nid = lcm_embed_index(tok, rows, vocab, count, by, ids, starts);
    int32_t *d_by = dev_of(by, sizeof(int32_t) * rows), *d_ids = dev_of(ids, sizeof(int32_t) * rows),
            *d_st = dev_of(starts, sizeof(int32_t) * (rows + 1));
    float *d_demb = dev_of(emb, ne * 4);
    lc_model__embed_bwd(emb, tok, rows, dim, dout); /* emb becomes the reference gradient */
    GT_CHECK(lcm_embed_bwd(d_demb, d_by, d_ids, d_st, nid, dim, d_dout, NULL));
    got = back(d_demb, ne);
    expect("embedding backward (bits)", memcmp(got, emb, ne * 4) ? 1.0 : 0.0, 0.5);
    free(got);
    /* RMSNorm */
    float *x = rnd(nx, 2.0f), *w = rnd(dim, 1.0f), *rs = malloc(sizeof(float) * rows);
    float *d_x = dev_of(x, nx * 4), *d_w = dev_of(w, dim * 4), *d_r = dev_nan(sizeof(float) * rows);
    float *d_o = dev_nan(nx * 4);
    lc_model__rmsnorm_fwd(x, w, rows, dim, 1e-5f, ref, rs);
    GT_CHECK(lcm_rmsnorm_fwd(d_x, d_w, rows, dim, 1e-5f, d_o, d_r, NULL));
    got = back(d_o, nx);
    expect("rmsnorm forward", rel(got, ref, nx), 1e-5);
    free(got);
    float *dw = rnd(dim, 1.0f), *d_dw = dev_of(dw, dim * 4), *d_dx = dev_nan(nx * 4);
    lc_model__rmsnorm_bwd(x, w, rs, dout, rows, dim, 0, ref, dw);
    float *d_rs = dev_of(rs, sizeof(float) * rows);
    GT_CHECK(lcm_rmsnorm_bwd(d_x, d_w, d_rs, d_dout, rows, dim, 0, d_dx, d_dw, NULL));
    got = back(d_dx, nx);
    expect("rmsnorm backward dx", rel(got, ref, nx), 1e-5);
    free(got);
    got = back(d_dw, dim);
    expect("rmsnorm backward dw", rel(got, dw, dim), 1e-5);
    free(got);
    /* RoPE */
    size_t nt = (size_t)rows * half, nq = (size_t)rows * heads * hd;
    float *ct = malloc(nt * 4), *st = malloc(nt * 4), *d_c = dev_nan(nt * 4), *d_s = dev_nan(nt * 4);
    lc_model__rope_table(pos, rows, hd, 500000.0f, ct, st);
    float inv[64];
    lcm_rope_inv_freq(hd, 500000.0f, inv);
    float *d_inv = dev_of(inv, sizeof inv);
    GT_CHECK(lcm_rope_table(d_pos, rows, hd, d_inv, d_c, d_s, NULL));
    got = back(d_c, nt);
    expect("rope table cos", rel(got, ct, nt), 1e-5);
    free(got);
    float *q = rnd(nq, 1.0f), *d_q = dev_of(q, nq * 4), *d_ct = dev_of(ct, nt * 4), *d_st2 = dev_of(st, nt * 4);
    lc_model__rope_apply(q, rows, heads, hd, ct, st, 0);
    GT_CHECK(lcm_rope_apply(d_q, rows, heads, hd, d_ct, d_st2, 0, NULL));
    got = back(d_q, nq);
    expect("rope apply", rel(got, q, nq), 1e-6);
    free(got);
    /* SwiGLU */
    size_t nh = (size_t)rows * 2 * ffn, na = (size_t)rows * ffn;
    float *h = rnd(nh, 4.0f), *act = malloc(na * 4), *d_h = dev_of(h, nh * 4), *d_a = dev_nan(na * 4);
    lc_model__swiglu_fwd(h, rows, ffn, act);
    GT_CHECK(lcm_swiglu_fwd(d_h, rows, ffn, d_a, NULL));
    got = back(d_a, na);
    expect("swiglu forward", rel(got, act, na), 1e-5);
    free(got);
    float *dh = rnd(nh, 1.0f), *d_dh = dev_of(dh, nh * 4);
    lc_model__swiglu_bwd(h, dh, act, rows, ffn);
    GT_CHECK(lcm_swiglu_bwd(d_h, d_dh, d_a, rows, ffn, NULL));
    got = back(d_dh, nh);
    expect("swiglu backward", rel(got, dh, nh), 1e-5);
    free(got);
    /* cross-entropy, twice */
    size_t nl = (size_t)rows * vocab;
    float *lg = rnd(nl, 8.0f), *d_l1 = dev_of(lg, nl * 4), *d_l2 = dev_of(lg, nl * 4);
    double *d_lr = gt_dev_alloc(sizeof(double) * rows), *d_loss = gt_dev_alloc(2 * sizeof(double)), loss[2];
    double lref = lc_model__ce_fwd_bwd(lg, tgt, rows, vocab, 1, 0.5f);
    GT_CHECK(lcm_ce_fwd_bwd(d_l1, d_tgt, rows, vocab, 1, 0.5f, d_lr, d_loss, NULL));
    GT_CHECK(lcm_ce_fwd_bwd(d_l2, d_tgt, rows, vocab, 1, 0.5f, d_lr, d_loss + 1, NULL));
    gt_d2h(loss, d_loss, sizeof loss);
    expect("cross-entropy loss", fabs(loss[0] - lref) / fabs(lref), 1e-6);
    float *g1 = back(d_l1, nl), *g2 = back(d_l2, nl);
    expect("cross-entropy gradient", rel(g1, lg, nl), 1e-5);
    expect("cross-entropy twice (bits)", (memcmp(g1, g2, nl * 4) || loss[0] != loss[1]) ? 1.0 : 0.0, 0.5);
    free(g1), free(g2);
    /* AdamW, 3 steps, and the global norm */
    size_t np = (size_t)7 << 20;
    float *p = rnd(np, 1.0f), *d_p = dev_of(p, np * 4), *d_m = gt_dev_alloc(np * 4), *d_v = gt_dev_alloc(np * 4);
    float *zero = calloc(np, 4);
    gt_h2d(d_m, zero, np * 4), gt_h2d(d_v, zero, np * 4);
    lc_adamw_config cfg = {0.9f, 0.95f, 1e-8f, 0.1f};
    lc_adamw *opt;
    GT_CHECK(lc_adamw_create(np, &cfg, &opt));
    float *g = rnd(np, 1.0f), *d_g = dev_of(g, np * 4);
    for (int t = 1; t <= 3; t++) {
        lc_adamw_step(opt, p, g, 1e-3f, 0.5f);
        GT_CHECK(lcm_adamw(d_p, d_g, d_m, d_v, np, 1e-3f, 0.5f, 0.1f, 0.9f, 0.95f, 1e-8f, 1.0f - powf(0.9f, (float)t),
                           1.0f - powf(0.95f, (float)t), NULL));
    }
    got = back(d_p, np);
    expect("adamw, 3 steps", rel(got, p, np), 1e-6);
    free(got);
    double *d_part = gt_dev_alloc(sizeof(double) * lcm_norm_partials(np)), *d_n = gt_dev_alloc(sizeof(double)), nrm;
    GT_CHECK(lcm_global_norm(d_g, np, d_part, d_n, NULL));
    gt_d2h(&nrm, d_n, sizeof nrm);
    expect("global gradient norm", fabs(nrm - lc_global_norm(g, np)) / nrm, 1e-12);
    lc_adamw_destroy(opt);
    gemm_seam();
    gt_sync();
    printf(g_fail ? "%d failures\n" : "all passed\n", g_fail);
    return g_fail ? 1 : 0;
}
