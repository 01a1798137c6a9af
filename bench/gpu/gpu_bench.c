/* GPU bench driver for scripts/gpu-check.
 *   longctx-gpu-bench probe   (device, or exit 77 when none)
 *   longctx-gpu-bench attn    [--seqs 4096,8192,16384,32768] [--iters N]
 *   longctx-gpu-bench permute [--iters N]
 * Prints one JSON object per measurement on stdout (JSON lines), and a human line on
 * stderr. FLOPs follow the FlashAttention convention: forward 4*S*S*Hq*D (halved for
 * causal), backward 2.5x forward, so TFLOP/s are comparable with PyTorch SDPA numbers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "gpu_test_util.h"

static double elapsed_ms(cudaEvent_t a, cudaEvent_t b) {
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    return ms;
}

static int bench_attn(const int *seqs, int nseq, int iters) {
    const int hq = 32, hkv = 8, d = 128;
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    const char *dev = "?";
    char variant[64];
    snprintf(variant, sizeof variant, "fwd_mt=%s,bwd_warps=%s",
             getenv("LONGCTX_GPU_FWD_MT") ? getenv("LONGCTX_GPU_FWD_MT") : "default",
             getenv("LONGCTX_GPU_BWD_WARPS") ? getenv("LONGCTX_GPU_BWD_WARPS") : "default");
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) dev = prop.name;
    for (int si = 0; si < nseq; si++) {
        const int S = seqs[si];
        const size_t nq = (size_t)S * hq * d, nk = (size_t)S * hkv * d;
        uint16_t *h = malloc(2 * (nq > nk ? nq : nk));
        uint64_t s = 7;
        void *q = gt_dev_alloc(2 * nq), *k = gt_dev_alloc(2 * nk), *v = gt_dev_alloc(2 * nk), *dout = gt_dev_alloc(2 * nq);
        for (size_t i = 0; i < nq; i++) gt_round(LC_GPU_BF16, gt_uniform(&s), &h[i]);
        gt_h2d(q, h, 2 * nq);
        gt_h2d(dout, h, 2 * nq);
        for (size_t i = 0; i < nk; i++) gt_round(LC_GPU_BF16, gt_uniform(&s), &h[i]);
        gt_h2d(k, h, 2 * nk);
        gt_h2d(v, h, 2 * nk);
        free(h);
        float *o = gt_dev_alloc(4 * nq), *lse = gt_dev_alloc(4 * (size_t)S * hq), *delta = gt_dev_alloc(4 * (size_t)S * hq);
        float *dq = gt_dev_alloc(4 * nq), *dk = gt_dev_alloc(4 * nk), *dv = gt_dev_alloc(4 * nk);
        for (int causal = 0; causal < 2; causal++) {
            lc_gpu_attn_desc a;
            memset(&a, 0, sizeof a);
            a.sq = a.sk = S; a.hq = hq; a.hkv = hkv; a.d = d; a.dtype = LC_GPU_BF16;
            a.mask.kind = causal ? LC_MASK_CAUSAL : 0;
            const double fwd_flop = 4.0 * S * (double)S * hq * d * (causal ? 0.5 : 1.0);
            /* warm-up, then timed */
            GT_CHECK(lc_gpu_attn_fwd_init(&a, o, lse, NULL));
            GT_CHECK(lc_gpu_attn_fwd_block(&a, q, k, v, o, lse, NULL));
            gt_sync();
            cudaEventRecord(e0, NULL);
            for (int i = 0; i < iters; i++) {
                GT_CHECK(lc_gpu_attn_fwd_init(&a, o, lse, NULL));
                GT_CHECK(lc_gpu_attn_fwd_block(&a, q, k, v, o, lse, NULL));
            }
            cudaEventRecord(e1, NULL);
            cudaEventSynchronize(e1);
            const double fwd_ms = elapsed_ms(e0, e1) / iters;
            GT_CHECK(lc_gpu_attn_bwd_prep(&a, o, dout, delta, NULL));
            GT_CHECK(lc_gpu_attn_bwd_block(&a, q, k, v, dout, lse, delta, dq, dk, dv, NULL));
            gt_sync();
            cudaEventRecord(e0, NULL);
            for (int i = 0; i < iters; i++) {
                GT_CHECK(lc_gpu_attn_fwd_init(&a, o, lse, NULL));
                GT_CHECK(lc_gpu_attn_fwd_block(&a, q, k, v, o, lse, NULL));
                cudaMemsetAsync(dq, 0, 4 * nq, NULL);
                cudaMemsetAsync(dk, 0, 4 * nk, NULL);
                cudaMemsetAsync(dv, 0, 4 * nk, NULL);
                GT_CHECK(lc_gpu_attn_bwd_prep(&a, o, dout, delta, NULL));
                GT_CHECK(lc_gpu_attn_bwd_block(&a, q, k, v, dout, lse, delta, dq, dk, dv, NULL));
            }
            cudaEventRecord(e1, NULL);
            cudaEventSynchronize(e1);
            const double fb_ms = elapsed_ms(e0, e1) / iters;
            const double ftf = fwd_flop / (fwd_ms * 1e-3) / 1e12, fbtf = 3.5 * fwd_flop / (fb_ms * 1e-3) / 1e12;
            printf("{\"kind\":\"attn\",\"impl\":\"longctx\",\"variant\":\"%s\",\"device\":\"%s\",\"dtype\":\"bf16\",\"S\":%d,\"hq\":%d,"
                   "\"hkv\":%d,\"d\":%d,\"mask\":\"%s\",\"fwd_ms\":%.4f,\"fwd_tflops\":%.2f,"
                   "\"fwdbwd_ms\":%.4f,\"fwdbwd_tflops\":%.2f}\n",
                   variant, dev, S, hq, hkv, d, causal ? "causal" : "none", fwd_ms, ftf, fb_ms, fbtf);
            fflush(stdout);
            fprintf(stderr, "attn %s S=%-6d %-6s fwd %8.3f ms %7.1f TFLOP/s   fwd+bwd %8.3f ms %7.1f TFLOP/s\n", variant, S,
                    causal ? "causal" : "none", fwd_ms, ftf, fb_ms, fbtf);
        }
        void *dev_[] = {q, k, v, dout, o, lse, delta, dq, dk, dv};
        for (size_t i = 0; i < sizeof dev_ / sizeof dev_[0]; i++) gt_dev_free(dev_[i]);
    }
    return 0;
}

/* One PE, put-with-signal to itself on the stream, followed by the device-side wait for the
 * signal: the latency of one permute step without a peer, and the copy bandwidth it gets;
 * beside it NCCL's send/recv to itself on one rank, and a plain cudaMemcpyAsync D2D. */
static int bench_permute(int iters) {
    cudaEvent_t e0, e1;
    int rc = 0;
    lc_gpu_world *w = NULL;
    if (lc_gpu_have_nvshmem()) {
        gt_nvshmem_env();
        lc_gpu_uid uid;
        GT_CHECK(lc_gpu_uid_create(&uid));
        lc_gpu_world_opts wo = {0, 1, &uid, -1, (size_t)512 << 20, 30.0};
        GT_CHECK(lc_gpu_world_init(&wo, &w));
    }
    lc_gpu_nccl *nc = NULL;
    if (lc_gpu_have_nccl()) {
        lc_gpu_uid nid;
        if (lc_gpu_nccl_uid_create(&nid) == 0) lc_gpu_nccl_init(&nid, 0, 1, &nc);
    }
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    const size_t maxb = (size_t)64 << 20;
    unsigned char *src = gt_dev_alloc(maxb), *plain = gt_dev_alloc(maxb);
    unsigned char *dst = w ? lc_gpu_symm_alloc(w, maxb) : NULL;
    uint64_t *sig = w ? lc_gpu_symm_alloc(w, 64) : NULL;
    if (sig) {
        uint64_t z[8] = {0};
        gt_h2d(sig, z, sizeof z);
    }
    uint64_t value = 0;
    for (size_t bytes = 8; bytes <= maxb; bytes *= 8) {
        const int n = bytes >= ((size_t)8 << 20) ? (iters < 20 ? iters : 20) : iters;
        double put_us = -1, nccl_us = -1, copy_us = -1;
        if (w) {
            for (int i = 0; i < 3; i++) { /* warm-up */
                value++;
                GT_CHECK(lc_gpu_put_signal_on_stream(w, dst, src, bytes, sig, value, LC_SIGNAL_SET, 0, NULL));
                GT_CHECK(lc_gpu_signal_wait_on_stream(w, sig, LC_CMP_GE, value, NULL));
            }
            gt_sync();
            cudaEventRecord(e0, NULL);
            for (int i = 0; i < n; i++) {
                value++;
                GT_CHECK(lc_gpu_put_signal_on_stream(w, dst, src, bytes, sig, value, LC_SIGNAL_SET, 0, NULL));
                GT_CHECK(lc_gpu_signal_wait_on_stream(w, sig, LC_CMP_GE, value, NULL));
            }
            cudaEventRecord(e1, NULL);
            cudaEventSynchronize(e1);
            put_us = elapsed_ms(e0, e1) * 1e3 / n;
            if (lc_gpu_world_check(w, NULL)) rc = 1;
        }
        if (nc) {
            GT_CHECK(lc_gpu_nccl_permute(nc, 1, src, plain, bytes, NULL));
            gt_sync();
            cudaEventRecord(e0, NULL);
            for (int i = 0; i < n; i++) GT_CHECK(lc_gpu_nccl_permute(nc, 1, src, plain, bytes, NULL));
            cudaEventRecord(e1, NULL);
            cudaEventSynchronize(e1);
            nccl_us = elapsed_ms(e0, e1) * 1e3 / n;
        }
        cudaEventRecord(e0, NULL);
        for (int i = 0; i < n; i++) cudaMemcpyAsync(plain, src, bytes, cudaMemcpyDeviceToDevice, NULL);
        cudaEventRecord(e1, NULL);
        cudaEventSynchronize(e1);
        copy_us = elapsed_ms(e0, e1) * 1e3 / n;
        printf("{\"kind\":\"permute\",\"bytes\":%zu,\"put_signal_us\":%.3f,\"put_signal_GBps\":%.2f,"
               "\"nccl_us\":%.3f,\"nccl_GBps\":%.2f,\"memcpy_us\":%.3f,\"memcpy_GBps\":%.2f}\n",
               bytes, put_us, put_us > 0 ? bytes / put_us / 1e3 : 0, nccl_us,
               nccl_us > 0 ? bytes / nccl_us / 1e3 : 0, copy_us, copy_us > 0 ? bytes / copy_us / 1e3 : 0);
        fflush(stdout);
        fprintf(stderr, "permute %10zu B: put+signal+wait %9.2f us  nccl %9.2f us  memcpy %9.2f us\n", bytes,
                put_us, nccl_us, copy_us);
    }
    if (nc) lc_gpu_nccl_finalize(nc);
    if (w) lc_gpu_world_finalize(w);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s probe|attn|permute [--seqs a,b,c] [--iters N]\n", argv[0]);
        return 2;
    }
    gt_require_gpu("longctx-gpu-bench");
    int seqs[16] = {4096, 8192, 16384, 32768}, nseq = 4, iters = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seqs") && i + 1 < argc) {
            nseq = 0;
            for (char *t = strtok(argv[++i], ","); t && nseq < 16; t = strtok(NULL, ",")) seqs[nseq++] = atoi(t);
        }
    }
    if (!strcmp(argv[1], "probe")) {
        struct cudaDeviceProp prop;
        if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return 1;
        printf("{\"kind\":\"device\",\"name\":\"%s\",\"sm\":\"%d.%d\",\"multiprocessors\":%d,"
               "\"memory_GiB\":%.1f,\"nvshmem\":%d,\"nccl\":%d}\n",
               prop.name, prop.major, prop.minor, prop.multiProcessorCount,
               prop.totalGlobalMem / 1073741824.0, lc_gpu_have_nvshmem(), lc_gpu_have_nccl());
        return 0;
    }
    if (!strcmp(argv[1], "attn")) return bench_attn(seqs, nseq, iters > 0 ? iters : 5);
    if (!strcmp(argv[1], "permute")) return bench_permute(iters > 0 ? iters : 200);
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
}
