// The GPU's fp32 reference attention kernels (src/attn/cuda/attn_ref32.cu), their own source
// on CPU threads (cuda_emu.h), against the float64 oracle (lc_attn_ref_fwd / _bwd): the
// forward as two key blocks merged into the normalised state, the backward accumulated over
// both blocks onto non-zero starting values; causal, window and document masks, GQA, padding
// rows (position -1), head dims 16 and 64, sq != sk. Outputs poisoned with NaN first; relative
// error < 1e-5; NaN fails.
#define LCG_EMU 1
#include "cuda_emu.h"

#include "attn/cuda/attn_ref32.cu"

#include <math.h>
#include <stdio.h>
#include <time.h>

#include <vector>

namespace {
int g_fail = 0;
uint64_t g_rs = 88172645463325252ull;
double urand()
{
    g_rs ^= g_rs << 13, g_rs ^= g_rs >> 7, g_rs ^= g_rs << 17;
    return (double)(g_rs >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}
double rel(const float *a, const double *b, size_t n, const float *base = nullptr)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double got = (double)a[i] - (base ? base[i] : 0.0), d = fabs(got - b[i]);
        if (!(d == d)) return INFINITY;
        num = d > num ? d : num;
        den = fabs(b[i]) > den ? fabs(b[i]) : den;
    }
    return den > 0 ? num / den : num;
}
void expect(const char *what, double e)
{
    if (!(e < 1e-5)) {
        printf("FAIL %s: relative error %.3g\n", what, e);
        g_fail++;
    } else {
        printf("ok   %-48s rel err %.2e\n", what, e);
    }
}

void run(int sq, int sk, int hq, int hkv, int d, unsigned kind, int64_t window)
{
    char name[160];
    snprintf(name, sizeof name, "sq %d sk %d heads %d/%d d %d mask %u window %lld", sq, sk, hq, hkv, d, kind,
             (long long)window);
    printf("# %s\n", name);
    size_t nq = (size_t)sq * hq * d, nk = (size_t)sk * hkv * d;
    std::vector<float> q(nq), k(nk), v(nk), dout(nq);
    std::vector<double> qd(nq), kd(nk), vd(nk), dod(nq);
    for (size_t i = 0; i < nq; i++) qd[i] = q[i] = (float)urand(), dod[i] = dout[i] = (float)urand();
    for (size_t i = 0; i < nk; i++) kd[i] = k[i] = (float)urand(), vd[i] = v[i] = (float)urand();
    std::vector<int32_t> qp(sq), kp(sk), qdoc(sq), kdoc(sk);
    for (int i = 0; i < sq; i++) qp[i] = i % 11 == 7 ? -1 : 3 * i + sk, qdoc[i] = (3 * i + sk) / 40;
    for (int j = 0; j < sk; j++) kp[j] = j % 13 == 5 ? -1 : 2 * j, kdoc[j] = 2 * j / 40;
    /* the oracle */
    lc_attn_desc a = {};
    a.sq = sq, a.sk = sk, a.hq = hq, a.hkv = hkv, a.d = d, a.qkv_dtype = LC_DT_F32, a.q_pos = qp.data();
    a.k_pos = kp.data(), a.mask.kind = kind, a.mask.window = window, a.mask.q_doc = qdoc.data();
    a.mask.k_doc = kdoc.data();
    std::vector<double> ro(nq), rl((size_t)sq * hq), rdq(nq), rdk(nk), rdv(nk);
    if (lc_attn_ref_fwd(&a, qd.data(), kd.data(), vd.data(), ro.data(), rl.data()) ||
        lc_attn_ref_bwd(&a, qd.data(), kd.data(), vd.data(), dod.data(), rdq.data(), rdk.data(), rdv.data())) {
        printf("FAIL the oracle refused %s\n", name);
        g_fail++;
        return;
    }
    /* the kernels: two key blocks */
    lc_gpu_attn_desc g = {};
    g.sq = sq, g.hq = hq, g.hkv = hkv, g.d = d, g.dtype = LC_DT_F32, g.q_pos = qp.data(), g.mask.kind = kind;
    g.mask.window = window, g.mask.q_doc = qdoc.data();
    std::vector<float> o(nq, 0.f), lse((size_t)sq * hq, -INFINITY);
    int split = sk / 3;
    for (int b = 0; b < 2; b++) {
        int k0 = b ? split : 0, n = b ? sk - split : split;
        lc_gpu_attn_desc gb = g;
        gb.sk = n, gb.k_pos = kp.data() + k0, gb.mask.k_doc = kdoc.data() + k0;
        size_t off = (size_t)k0 * hkv * d;
        lcg_ref32_fwd(&gb, q.data(), k.data() + off, v.data() + off, o.data(), lse.data(), nullptr);
    }
    double le = 0;
    for (size_t i = 0; i < lse.size(); i++) {
        double e = isinf(rl[i]) ? (lse[i] == -INFINITY ? 0 : INFINITY) : fabs(lse[i] - rl[i]) / (1 + fabs(rl[i]));
        le = e > le || !(e == e) ? e : le;
    }
    expect("forward o (two blocks merged)", rel(o.data(), ro.data(), nq));
    expect("forward lse", le);
    std::vector<float> delta((size_t)sq * hq, NAN), dq(nq), dk(nk), dv(nk), base_q(nq), base_k(nk), base_v(nk);
    for (size_t i = 0; i < nq; i++) dq[i] = base_q[i] = (float)urand(); /* accumulated onto */
    for (size_t i = 0; i < nk; i++) dk[i] = base_k[i] = (float)urand(), dv[i] = base_v[i] = (float)urand();
    lc_gpu_attn_desc gs = g;
    gs.sk = 0;
    lcg_ref32_delta(&gs, o.data(), dout.data(), delta.data(), nullptr);
    for (int b = 0; b < 2; b++) {
        int k0 = b ? split : 0, n = b ? sk - split : split;
        lc_gpu_attn_desc gb = g;
        gb.sk = n, gb.k_pos = kp.data() + k0, gb.mask.k_doc = kdoc.data() + k0;
        size_t off = (size_t)k0 * hkv * d;
        lcg_ref32_bwd(&gb, q.data(), k.data() + off, v.data() + off, dout.data(), lse.data(), delta.data(), dq.data(),
                      dk.data() + off, dv.data() + off, nullptr);
    }
    expect("backward dq (accumulated)", rel(dq.data(), rdq.data(), nq, base_q.data()));
    expect("backward dk (accumulated)", rel(dk.data(), rdk.data(), nk, base_k.data()));
    expect("backward dv (accumulated)", rel(dv.data(), rdv.data(), nk, base_v.data()));
}
} // namespace

int main()
{
    g_rs ^= (uint64_t)time(NULL) * 2654435761u;
    printf("test_ref32_emu: seed %llu\n", (unsigned long long)g_rs);
    run(37, 53, 4, 2, 16, LC_MASK_CAUSAL, 0);
    run(29, 29, 2, 2, 64, LC_MASK_CAUSAL | LC_MASK_DOC, 0);
    run(41, 23, 6, 2, 16, LC_MASK_CAUSAL | LC_MASK_WINDOW, 9);
    run(19, 31, 4, 1, 32, 0, 0);
    printf("%s\n", g_fail ? "FAILED" : "all passed");
    return g_fail != 0;
}
