/* The choice of forward kernel family per device, dtype and head dim, and the start-up check
 * that keeps an sm_90 kernel that computes wrongly out of "auto" (attn_select.h).
 *
 * "auto" launches the Hopper kernel, even for its check, only when told that its forward-only
 * oracle test passed on such a device ($LONGCTX_GPU_SM90_PASSED=1, which scripts/gpu-check
 * sets after gpu_attn_sm90_fwd): a kernel that faults kills the process's CUDA context, so a
 * check in this process could not fall back to sm_80 after one. Running the check in a child
 * would need a fork before the caller's first CUDA call, which a library cannot order.
 *
 * The check runs once per (device, dtype, head dim), on a private stream, outside any graph
 * capture: a small GQA causal problem over two key blocks (so the merge and the position
 * masks take part) through both families; the Hopper kernel is taken only when its o and
 * lse agree with the sm_80 kernel's, the one the float64-oracle tests validate everywhere. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mutex>
#include <vector>

#include "common/err.h"
#include "attn_select.h"
#include "common/settings.h"
#include "gpu_internal.h"

namespace {

enum { kUnknown = 0, kGood = 1, kBad = 2 };
constexpr int kMaxDev = 64;
int g_verdict[kMaxDev][2][2]; /* [device][dtype - 1][d == 128] */
std::mutex g_mu;

/* 0 auto, 1 sm80, 2 sm90, -1 unknown text (read once: the choice is per process) */
int env_choice(const char **text) {
    static const char *e = lc__env_str("LONGCTX_GPU_KERNEL");
    *text = e;
    if (!e || !*e || !strcmp(e, "auto")) return 0;
    if (!strcmp(e, "sm80")) return 1;
    if (!strcmp(e, "sm90")) return 2;
    return -1;
}

uint16_t to16(float x, int dtype) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if (dtype == LC_DT_BF16) return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
    /* f16: inputs are in [-1, 1), normal or zero after scaling; round to nearest */
    const float a = fabsf(x);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    if (a < 6.2e-5f) return sign;
    int ex;
    const float m = frexpf(a, &ex); /* a = m 2^ex, m in [0.5, 1) */
    uint32_t mant = (uint32_t)lrintf((m * 2.f - 1.f) * 1024.f);
    int e16 = ex - 1 + 15;
    if (mant == 1024) { mant = 0; e16++; }
    return (uint16_t)(sign | (uint16_t)(e16 << 10) | (uint16_t)mant);
}

/* Runs the check problem through kernel kern; o, lse copied back to the host. */
int run_family(int kern, const lc_gpu_attn_desc *a, const void *q, const void *k, const void *v,
               const int32_t *kpos, float *o, float *lse, cudaStream_t s, std::vector<float> &ho,
               std::vector<float> &hl) {
    int rc = lc_gpu_attn_fwd_init(a, o, lse, s);
    const int cut = 150;
    lc_gpu_attn_desc b = *a;
    const size_t krow = (size_t)a->hkv * a->d * 2;
    for (int part = 0; part < 2 && !rc; part++) {
        b.sk = part ? a->sk - cut : cut;
        b.k_pos = kpos + (part ? cut : 0);
        const char *kp = (const char *)k + (part ? cut * krow : 0), *vp = (const char *)v + (part ? cut * krow : 0);
        rc = lcg_fwd_block_with(&b, q, kp, vp, o, lse, s, kern);
    }
    if (rc) return rc;
    rc = lcg_cuda(cudaMemcpyAsync(ho.data(), o, ho.size() * 4, cudaMemcpyDeviceToHost, s), "copy o");
    if (!rc) rc = lcg_cuda(cudaMemcpyAsync(hl.data(), lse, hl.size() * 4, cudaMemcpyDeviceToHost, s), "copy lse");
    /* polled with a deadline: a kernel stuck in its pipeline must not hang the caller's
     * first attention call (the kernel also traps on its own after ~10 s) */
    for (int ms = 0; !rc; ms++) {
        cudaError_t e = cudaStreamQuery(s);
        if (e == cudaSuccess) break;
        if (e != cudaErrorNotReady) rc = lcg_cuda(e, "forward kernel start-up check");
        else if (ms > 30000) {
            fprintf(stderr, "longctx: the %s forward kernel did not finish its start-up check in 30 s; the device "
                            "is stuck, aborting\n", kern == LCG_KERNEL_SM90 ? "sm90" : "sm80");
            abort();
        } else {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, nullptr);
        }
    }
    return rc;
}

/* kGood or kBad (why says how); a CUDA failure of the check itself also counts as kBad. */
int self_check(int dtype, int d, char *why, size_t whylen) {
    const int sq = 200, sk = 333, hq = 4, hkv = 2;
    const size_t nq = (size_t)sq * hq * d, nk = (size_t)sk * hkv * d;
    std::vector<uint16_t> hq16(nq), hk16(nk), hv16(nk);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    auto rnd = [&] {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        return (float)((x >> 40) * (1.0 / 8388608.0)) - 1.f;
    };
    for (auto &e : hq16) e = to16(rnd(), dtype);
    for (auto &e : hk16) e = to16(rnd(), dtype);
    for (auto &e : hv16) e = to16(rnd(), dtype);
    std::vector<int32_t> qpos(sq), kpos(sk);
    for (int i = 0; i < sq; i++) qpos[i] = sk - sq + i;
    for (int i = 0; i < sk; i++) kpos[i] = (i % 37 == 5) ? -1 : i; /* some padding keys */

    cudaStream_t s = nullptr;
    void *buf = nullptr;
    const size_t oq = nq * 4, ol = (size_t)sq * hq * 4;
    const size_t bytes = 2 * nq + 4 * nk + 2 * (oq + ol) + 4 * (size_t)(sq + sk) + 256;
    int rc = lcg_cuda(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "stream");
    if (!rc) rc = lcg_cuda(cudaMalloc(&buf, bytes), "cudaMalloc");
    std::vector<float> o0(nq), o1(nq), l0((size_t)sq * hq), l1((size_t)sq * hq);
    if (!rc) {
        char *p = (char *)buf;
        void *dq = p; p += 2 * nq;
        void *dk = p; p += 2 * nk;
        void *dv = p; p += 2 * nk;
        float *o = (float *)p; p += oq;
        float *lse = (float *)p; p += ol;
        int32_t *dqp = (int32_t *)p; p += 4 * (size_t)sq;
        int32_t *dkp = (int32_t *)p;
        rc = lcg_cuda(cudaMemcpy(dq, hq16.data(), 2 * nq, cudaMemcpyHostToDevice), "copy q");
        if (!rc) rc = lcg_cuda(cudaMemcpy(dk, hk16.data(), 2 * nk, cudaMemcpyHostToDevice), "copy k");
        if (!rc) rc = lcg_cuda(cudaMemcpy(dv, hv16.data(), 2 * nk, cudaMemcpyHostToDevice), "copy v");
        if (!rc) rc = lcg_cuda(cudaMemcpy(dqp, qpos.data(), 4 * (size_t)sq, cudaMemcpyHostToDevice), "copy pos");
        if (!rc) rc = lcg_cuda(cudaMemcpy(dkp, kpos.data(), 4 * (size_t)sk, cudaMemcpyHostToDevice), "copy pos");
        lc_gpu_attn_desc a;
        memset(&a, 0, sizeof a);
        a.sq = sq; a.sk = sk; a.hq = hq; a.hkv = hkv; a.d = d;
        a.dtype = (lc_dtype)dtype;
        a.q_pos = dqp; a.k_pos = dkp;
        a.mask.kind = LC_MASK_CAUSAL;
        if (!rc) rc = run_family(LCG_KERNEL_SM80, &a, dq, dk, dv, dkp, o, lse, s, o0, l0);
        if (!rc) rc = run_family(LCG_KERNEL_SM90, &a, dq, dk, dv, dkp, o, lse, s, o1, l1);
    }
    if (buf) cudaFree(buf);
    if (s) cudaStreamDestroy(s);
    if (rc) {
        snprintf(why, whylen, "the check could not run: %s", lc_gpu_last_error());
        (void)cudaGetLastError();
        return kBad;
    }
    double omax = 1e-3, oerr = 0, lerr = 0;
    for (size_t i = 0; i < nq; i++) omax = fmax(omax, fabs(o0[i]));
    for (size_t i = 0; i < nq; i++) {
        const double e = fabs((double)o1[i] - o0[i]);
        oerr = (e == e) ? fmax(oerr, e) : INFINITY; /* NaN never passes */
    }
    for (size_t i = 0; i < l0.size(); i++) {
        if (isinf(l0[i]) || isinf(l1[i])) {
            if (!(isinf(l0[i]) && isinf(l1[i]))) lerr = INFINITY;
            continue;
        }
        const double e = fabs((double)l1[i] - l0[i]);
        lerr = (e == e) ? fmax(lerr, e) : INFINITY;
    }
    const double otol = dtype == LC_DT_BF16 ? 2e-2 : 5e-3;
    snprintf(why, whylen, "o max error %.3g of max |o| %.3g (tolerance %.0e relative), lse max error %.3g (1e-3)",
             oerr, omax, otol, lerr);
    return (oerr <= otol * omax && lerr <= 1e-3) ? kGood : kBad;
}

bool is_sm90(int dev) {
    int major = 0, minor = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) {
        (void)cudaGetLastError();
        return false;
    }
    return major == 9 && minor == 0; /* sm_90a code runs on exactly 9.0 */
}

} // namespace

int lcg_pick_fwd_kernel(int dtype, int d, cudaStream_t s, int *kern) {
    *kern = LCG_KERNEL_SM80;
    const char *text;
    const int want = env_choice(&text);
    if (want < 0)
        return lcg_fail(LC_ERR_ARG, "LONGCTX_GPU_KERNEL must be sm80, sm90 or auto (it is \"%s\")", text);
    if (want == 1) return LC_OK;
    int dev = 0;
    int rc = lcg_cuda(cudaGetDevice(&dev), "cudaGetDevice");
    if (rc) return rc;
    const bool h = is_sm90(dev);
    if (want == 2) {
        if (!h)
            return lcg_fail(LC_ERR_UNSUPPORTED,
                            "LONGCTX_GPU_KERNEL=sm90: device %d is not compute capability 9.0 (the Hopper kernel is "
                            "built for sm_90a only)",
                            dev);
        *kern = LCG_KERNEL_SM90;
        return LC_OK;
    }
    if (!h || dev >= kMaxDev || (dtype != LC_DT_BF16 && dtype != LC_DT_F16) || (d != 64 && d != 128))
        return LC_OK;
    static const bool tested = [] {
        const char *t = lc__env_str("LONGCTX_GPU_SM90_PASSED");
        const bool yes = t && !strcmp(t, "1");
        if (!yes && lc__env_str("LONGCTX_GPU_KERNEL_VERBOSE"))
            fprintf(stderr, "longctx: auto uses the sm_80 forward kernel: the sm_90 one is taken only with "
                            "LONGCTX_GPU_SM90_PASSED=1 (its forward test passed on this kind of device)\n");
        return yes;
    }();
    if (!tested) return LC_OK;
    std::lock_guard<std::mutex> lock(g_mu);
    int &v = g_verdict[dev][dtype - 1][d == 128];
    if (v == kUnknown) {
        cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
        if (cudaStreamIsCapturing(s, &cs) != cudaSuccess || cs != cudaStreamCaptureStatusNone) {
            (void)cudaGetLastError();
            return LC_OK; /* no synchronous check inside a capture: sm80 this time */
        }
        char why[256];
        v = self_check(dtype, d, why, sizeof why);
        if (v == kBad || lc__env_str("LONGCTX_GPU_KERNEL_VERBOSE"))
            fprintf(stderr, "longctx: sm_90 forward kernel start-up check (%s, d=%d) %s: %s%s\n",
                    dtype == LC_DT_BF16 ? "bf16" : "f16", d, v == kGood ? "passed" : "FAILED", why,
                    v == kGood ? "" : "; using the sm_80 kernel");
    }
    if (v == kGood) *kern = LCG_KERNEL_SM90;
    return LC_OK;
}

extern "C" const char *lc_gpu_attn_fwd_kernel(lc_dtype dtype, int d) {
    int kern = LCG_KERNEL_SM80;
    if (lcg_pick_fwd_kernel((int)dtype, d, nullptr, &kern)) return nullptr;
    return kern == LCG_KERNEL_SM90 ? "sm90" : "sm80";
}
