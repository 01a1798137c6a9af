// The decoder's memory-bound GPU kernels (src/model/cuda/layers_gpu.cu), their own source run
// on CPU threads by cuda_emu.h, against the CPU model's layers (src/model/layers.c) and the
// optimizer (src/optim/adamw.c) on the same random inputs: outputs poisoned with NaN first,
// relative error against the CPU's fp32 < 1e-5 (reductions run in another order), the
// embedding's gradient bit for bit (the same order), a repeated run bit-identical. Odd sizes
// so that no loop divides evenly; blocks of 64 and 128 threads.
#define LCG_EMU 1
#include "cuda_emu.h"

#include "model/cuda/gemm_gpu.cu"
#include "model/cuda/layers_gpu.cu"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gemm_ref.h"
#include "step_check.h" /* lc_step_rel: max |a - b| / max |b|, NaN anywhere fails */
extern "C" {
#include "longctx/attn.h"
#include "longctx/optim.h"
#include "model/internal.h"
}

namespace {
int g_fail = 0;
uint64_t rs = 0x9e3779b97f4a7c15ull;
float urand()
{
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return (float)((rs >> 40) * (1.0 / 8388608.0)) - 1.0f;
}
std::vector<float> rnd(size_t n, float scale = 1.0f)
{
    std::vector<float> v(n);
    for (auto &x : v) x = scale * urand();
    return v;
}
std::vector<float> nan_of(size_t n) { return std::vector<float>(n, NAN); }

void expect(const char *what, double err, double tol)
{
    if (!(err < tol)) {
        printf("FAIL %s: relative error %.3g (tolerance %g)\n", what, err, tol);
        g_fail++;
    } else {
        printf("ok   %-36s rel err %.2e\n", what, err);
    }
}
unsigned T = 64; /* threads per emulated block */
unsigned blocks(size_t n) { return (unsigned)((n + T - 1) / T); }

void run(int rows, int dim, int heads, int hd, int ffn, int vocab)
{
    printf("# rows %d, dim %d, heads %d x %d, ffn %d, vocab %d, %u threads per block\n", rows, dim, heads, hd, ffn,
           vocab, T);
    std::vector<int32_t> tok(rows), pos(rows), tgt(rows);
    for (int i = 0; i < rows; i++) {
        tok[i] = (int32_t)((rs = rs * 6364136223846793005ull + 1) >> 33) % (vocab / 4); /* repeats */
        pos[i] = 1000 + 7 * i - (i % 3 == 0 ? 2000 : 0);                                  /* some < 0: padding */
        tgt[i] = i % 5 == 4 ? -1 : (int32_t)((rs = rs * 6364136223846793005ull + 1) >> 33) % vocab;
    }
    /* embedding */
    auto emb = rnd((size_t)vocab * dim), ref = nan_of((size_t)rows * dim), got = nan_of((size_t)rows * dim);
    lc_model__embed_fwd(emb.data(), tok.data(), rows, dim, ref.data());
    emu_launch(rows, 1, T, 0, [&] { embed_fwd_kernel(emb.data(), tok.data(), dim, got.data()); });
    expect("embedding forward (bits)", memcmp(ref.data(), got.data(), ref.size() * 4) ? 1.0 : 0.0, 0.5);
    auto dout = rnd((size_t)rows * dim), demb_ref = rnd((size_t)vocab * dim), demb = demb_ref;
    std::vector<int32_t> count(vocab), by(rows), ids(rows), starts(rows + 1);
    int n_ids = lcm_embed_index(tok.data(), rows, vocab, count.data(), by.data(), ids.data(), starts.data());
    lc_model__embed_bwd(demb_ref.data(), tok.data(), rows, dim, dout.data());
    emu_launch(n_ids, 1, T, 0, [&] { embed_bwd_kernel(demb.data(), by.data(), ids.data(), starts.data(), dim, dout.data()); });
    expect("embedding backward (bits)", memcmp(demb_ref.data(), demb.data(), demb.size() * 4) ? 1.0 : 0.0, 0.5);
    std::vector<int32_t> bad = tok;
    bad[rows / 2] = vocab;
    if (lcm_embed_index(bad.data(), rows, vocab, count.data(), by.data(), ids.data(), starts.data()) != -1) {
        printf("FAIL a token outside the vocabulary was indexed\n");
        g_fail++;
    }
    /* RMSNorm */
    auto x = rnd((size_t)rows * dim), w = rnd(dim), o_ref = nan_of(x.size()), o = nan_of(x.size());
    std::vector<float> r_ref(rows, NAN), r(rows, NAN);
    lc_model__rmsnorm_fwd(x.data(), w.data(), rows, dim, 1e-5f, o_ref.data(), r_ref.data());
    emu_launch(rows, 1, T, 0, [&] { rmsnorm_fwd_kernel(x.data(), w.data(), dim, 1e-5f, o.data(), r.data()); });
    expect("rmsnorm forward", lc_step_rel(o.data(), o_ref.data(), o.size()), 1e-5);
    expect("rmsnorm rstd", lc_step_rel(r.data(), r_ref.data(), rows), 1e-5);
    for (int acc = 0; acc < 2; acc++) {
        auto dy = rnd(x.size()), dx_ref = acc ? rnd(x.size()) : nan_of(x.size()), dx = dx_ref;
        auto dw_ref = rnd(dim), dw = dw_ref;
        lc_model__rmsnorm_bwd(x.data(), w.data(), r_ref.data(), dy.data(), rows, dim, acc, dx_ref.data(), dw_ref.data());
        emu_launch(rows, 1, T, 0,
                   [&] { rmsnorm_bwd_dx_kernel(x.data(), w.data(), r_ref.data(), dy.data(), dim, acc, dx.data()); });
        emu_launch(blocks(dim), 1, T, 0,
                   [&] { rmsnorm_bwd_dw_kernel(x.data(), r_ref.data(), dy.data(), rows, dim, dw.data()); });
        expect(acc ? "rmsnorm backward dx (accumulate)" : "rmsnorm backward dx", lc_step_rel(dx.data(), dx_ref.data(), dx.size()), 1e-5);
        expect("rmsnorm backward dw", lc_step_rel(dw.data(), dw_ref.data(), dim), 1e-5);
    }
    /* RoPE at global positions */
    const int half = hd / 2;
    auto c_ref = nan_of((size_t)rows * half), s_ref = c_ref, c = c_ref, s = c_ref;
    lc_model__rope_table(pos.data(), rows, hd, 500000.0f, c_ref.data(), s_ref.data());
    std::vector<float> inv(half);
    lcm_rope_inv_freq(hd, 500000.0f, inv.data());
    emu_launch(blocks((size_t)rows * half), 1, T, 0,
               [&] { rope_table_kernel(pos.data(), rows, hd, inv.data(), c.data(), s.data()); });
    expect("rope table cos", lc_step_rel(c.data(), c_ref.data(), c.size()), 1e-6);
    expect("rope table sin", lc_step_rel(s.data(), s_ref.data(), s.size()), 1e-6);
    for (int inv = 0; inv < 2; inv++) {
        auto q_ref = rnd((size_t)rows * heads * hd), q = q_ref;
        lc_model__rope_apply(q_ref.data(), rows, heads, hd, c_ref.data(), s_ref.data(), inv);
        emu_launch(blocks((size_t)rows * heads * half), 1, T, 0,
                   [&] { rope_apply_kernel(q.data(), rows, heads, hd, c_ref.data(), s_ref.data(), inv); });
        expect(inv ? "rope apply (inverse: backward)" : "rope apply", lc_step_rel(q.data(), q_ref.data(), q.size()), 1e-6);
    }
    /* SwiGLU */
    auto h = rnd((size_t)rows * 2 * ffn, 4.0f), a_ref = nan_of((size_t)rows * ffn), a = a_ref;
    lc_model__swiglu_fwd(h.data(), rows, ffn, a_ref.data());
    emu_launch(blocks(a.size()), 1, T, 0, [&] { swiglu_fwd_kernel(h.data(), rows, ffn, a.data()); });
    expect("swiglu forward", lc_step_rel(a.data(), a_ref.data(), a.size()), 1e-6);
    auto dh_ref = rnd(h.size()), dh = dh_ref, a2_ref = nan_of(a.size()), a2 = a2_ref;
    lc_model__swiglu_bwd(h.data(), dh_ref.data(), a2_ref.data(), rows, ffn);
    emu_launch(blocks(a.size()), 1, T, 0, [&] { swiglu_bwd_kernel(h.data(), dh.data(), a2.data(), rows, ffn); });
    expect("swiglu backward", lc_step_rel(dh.data(), dh_ref.data(), dh.size()), 1e-6);
    expect("swiglu backward's act", lc_step_rel(a2.data(), a2_ref.data(), a2.size()), 1e-6);
    /* cross-entropy: the loss in double, the gradient in place; twice, the same bits */
    auto lg = rnd((size_t)rows * vocab, 8.0f), lg_ref = lg;
    std::vector<double> lrow(rows, NAN), lrow2(rows, NAN);
    double loss = NAN, loss2 = NAN;
    double loss_ref = lc_model__ce_fwd_bwd(lg_ref.data(), tgt.data(), rows, vocab, 1, 0.25f);
    auto lg2 = lg;
    emu_launch(rows, 1, T, 0, [&] { ce_kernel(lg.data(), tgt.data(), vocab, 1, 0.25f, lrow.data()); });
    emu_launch(1, 1, 32, 0, [&] { sum_ordered_kernel(lrow.data(), (size_t)rows, &loss, 0); });
    emu_launch(rows, 1, T, 0, [&] { ce_kernel(lg2.data(), tgt.data(), vocab, 1, 0.25f, lrow2.data()); });
    emu_launch(1, 1, 32, 0, [&] { sum_ordered_kernel(lrow2.data(), (size_t)rows, &loss2, 0); });
    expect("cross-entropy loss", fabs(loss - loss_ref) / fabs(loss_ref), 1e-6);
    expect("cross-entropy gradient", lc_step_rel(lg.data(), lg_ref.data(), lg.size()), 1e-5);
    expect("cross-entropy run twice (bits)",
           (memcmp(lg.data(), lg2.data(), lg.size() * 4) || loss != loss2) ? 1.0 : 0.0, 0.5);
    /* the same under TP: 3 slices of the vocabulary, the all-reduces done here in rank order
     * (max, then the sums), against the whole-vocabulary CPU loss and gradient */
    {
        const int TPn = 3, vl = (vocab + TPn - 1) / TPn;
        auto full = rnd((size_t)rows * vocab, 8.0f), full_ref = full;
        double lref = lc_model__ce_fwd_bwd(full_ref.data(), tgt.data(), rows, vocab, 1, 0.25f);
        std::vector<std::vector<float>> sl(TPn);
        std::vector<double> mx(rows, -INFINITY), st(2 * (size_t)rows, 0.0), m1(rows), s1(2 * (size_t)rows);
        for (int r = 0; r < TPn; r++) {
            const int v0 = r * vl, n = std::min(vl, vocab - v0);
            sl[r].resize((size_t)rows * n);
            for (int i = 0; i < rows; i++)
                memcpy(&sl[r][(size_t)i * n], &full[(size_t)i * vocab + v0], sizeof(float) * n);
            emu_launch(rows, 1, T, 0, [&] { ce_tp_max_kernel(sl[r].data(), n, m1.data()); });
            for (int i = 0; i < rows; i++) mx[i] = std::max(mx[i], m1[i]);
        }
        for (int r = 0; r < TPn; r++) {
            const int v0 = r * vl, n = std::min(vl, vocab - v0);
            emu_launch(rows, 1, T, 0, [&] { ce_tp_sum_kernel(sl[r].data(), tgt.data(), n, v0, mx.data(), s1.data()); });
            for (size_t i = 0; i < s1.size(); i++) st[i] += s1[i];
        }
        std::vector<float> back((size_t)rows * vocab, NAN);
        double ltp = 0;
        for (int r = 0; r < TPn; r++) {
            const int v0 = r * vl, n = std::min(vl, vocab - v0);
            std::vector<double> lr(rows, NAN);
            emu_launch(rows, 1, T, 0, [&] {
                ce_tp_finish_kernel(sl[r].data(), tgt.data(), n, v0, mx.data(), st.data(), 1, 0.25f, lr.data());
            });
            double one = NAN;
            emu_launch(1, 1, 32, 0, [&] { sum_ordered_kernel(lr.data(), (size_t)rows, &one, 0); });
            if (r == 0) ltp = one;
            else if (one != ltp) ltp = NAN; /* every member gets the same loss */
            for (int i = 0; i < rows; i++)
                memcpy(&back[(size_t)i * vocab + v0], &sl[r][(size_t)i * n], sizeof(float) * n);
        }
        expect("cross-entropy over TP 3: loss", fabs(ltp - lref) / fabs(lref), 1e-6);
        expect("cross-entropy over TP 3: gradient", lc_step_rel(back.data(), full_ref.data(), back.size()), 1e-5);
    }
    /* AdamW: three steps against lc_adamw_step with a no-decay range in the middle */
    const size_t np = (size_t)dim * 37 + 5, nd0 = np / 3, ndn = np / 5;
    auto p_ref = rnd(np), p = p_ref, m = std::vector<float>(np, 0.0f), v = m;
    lc_adamw_config cfg = {0.9f, 0.95f, 1e-8f, 0.1f};
    lc_adamw *opt;
    if (lc_adamw_create(np, &cfg, &opt) || lc_adamw_set_decay(opt, nd0, ndn, 0)) {
        printf("FAIL lc_adamw_create\n");
        g_fail++;
        return;
    }
    for (int t = 1; t <= 3; t++) {
        auto g = rnd(np);
        lc_adamw_step(opt, p_ref.data(), g.data(), 1e-3f, 0.5f);
        const float bc1 = 1.0f - powf(0.9f, (float)t), bc2 = 1.0f - powf(0.95f, (float)t);
        const size_t lo[3] = {0, nd0, nd0 + ndn}, hi[3] = {nd0, nd0 + ndn, np};
        for (int k = 0; k < 3; k++)
            emu_launch(blocks(hi[k] - lo[k]), 1, T, 0, [&] {
                adamw_kernel(p.data() + lo[k], g.data() + lo[k], m.data() + lo[k], v.data() + lo[k], hi[k] - lo[k],
                             1e-3f, 0.5f, k == 1 ? 0.0f : 0.1f, 0.9f, 0.95f, 1e-8f, bc1, bc2);
            });
    }
    expect("adamw parameters (3 steps)", lc_step_rel(p.data(), p_ref.data(), np), 1e-6);
    expect("adamw first moment", lc_step_rel(m.data(), lc_adamw_m(opt), np), 1e-6);
    expect("adamw second moment", lc_step_rel(v.data(), lc_adamw_v(opt), np), 1e-6);
    lc_adamw_destroy(opt);
    /* the global norm, in double */
    const size_t ng = (size_t)3 * 8192 + 77;
    auto gg = rnd(ng);
    std::vector<double> part(lcm_norm_partials(ng), NAN);
    double nrm = NAN;
    emu_launch((unsigned)part.size(), 1, T, 0, [&] { norm_partial_kernel(gg.data(), ng, part.data()); });
    emu_launch(1, 1, 32, 0, [&] { sum_ordered_kernel(part.data(), part.size(), &nrm, 1); });
    double nref = lc_global_norm(gg.data(), ng);
    expect("global gradient norm", fabs(nrm - nref) / nref, 1e-12);
}
} // namespace

/* The GEMM seam's semantics (the emulated build's CPU loop, which the GPU model's code calls
 * under the emulator; test_gpu_model holds cuBLASLt to the same): every transpose pair, strided
 * leading dimensions, accumulate, fp32 and bf16 operands, against a double reference. */
void gemm_seam()
{
    const int M = 37, N = 29, K = 45, pad = 3;
    lcm_blas *g = lcm_blas_create(0);
    for (int bf = 0; bf < 2; bf++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int acc = 0; acc < 2; acc++) {
                    const int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
                    const int lda = ac + pad, ldb = bc + pad, ldc = N + pad;
                    auto a = rnd((size_t)ar * lda), b = rnd((size_t)br * ldb), c = acc ? rnd((size_t)M * ldc) : nan_of((size_t)M * ldc);
                    std::vector<uint16_t> a16(a.size()), b16(b.size());
                    if (bf) {
                        for (size_t i = 0; i < a.size(); i++) a16[i] = lc_f32_to_bf16(a[i]), a[i] = lc_bf16_to_f32(a16[i]);
                        for (size_t i = 0; i < b.size(); i++) b16[i] = lc_f32_to_bf16(b[i]), b[i] = lc_bf16_to_f32(b16[i]);
                    }
                    std::vector<float> want((size_t)M * N), got((size_t)M * N);
                    gemm_ref(ta, tb, M, N, K, a.data(), lda, b.data(), ldb, c.data(), ldc, acc, want.data());
                    lcm_gemm(g, ta, tb, M, N, K, bf ? (const void *)a16.data() : a.data(), lda,
                             bf ? (const void *)b16.data() : b.data(), ldb, c.data(), ldc, acc, bf, nullptr);
                    for (int i = 0; i < M; i++)
                        for (int j = 0; j < N; j++) got[(size_t)i * N + j] = c[(size_t)i * ldc + j];
                    char what[64];
                    snprintf(what, sizeof what, "gemm seam %s ta %d tb %d%s", bf ? "bf16" : "f32", ta, tb,
                             acc ? " acc" : "");
                    expect(what, lc_step_rel(got.data(), want.data(), got.size()), 1e-5);
                }
    lcm_blas_destroy(g);
}

int main()
{
    gemm_seam();
    T = 64;
    run(37, 96, 3, 32, 80, 300);
    T = 128;
    run(21, 200, 2, 64, 130, 1000);
    if (g_fail) printf("%d failures\n", g_fail);
    return g_fail ? 1 : 0;
}
