/* GPU bench driver for scripts/gpu-check.
 *   longctx-gpu-bench probe   (device, or exit 77 when none)
 *   longctx-gpu-bench attn    [--seqs 4096,8192,16384,32768] [--iters N]
 *   longctx-gpu-bench permute [--iters N]   (LONGCTX_GPU_FUSED_BLOCKS / _CHUNK shape the fused kernel)
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

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* LONGCTX_GPU_ATTN_ENGINE (own | cudnn | auto; default own) picks the engine of the block
 * calls; rows carry "engine" and, for an engine handle, how many block calls ran where. */
static int bench_attn(const int *seqs, int nseq, int iters) {
    const int hq = 32, hkv = 8, d = 128;
    lc_gpu_engine_kind ek = LC_GPU_ENGINE_OWN;
    lc_gpu_attn_engine *eng = NULL;
    const char *es = getenv("LONGCTX_GPU_ATTN_ENGINE");
    if (lc_gpu_engine_parse(es, &ek)) {
        fprintf(stderr, "%s\n", lc_gpu_last_error());
        return 2;
    }
    if (ek != LC_GPU_ENGINE_OWN && lc_gpu_attn_engine_create(ek, &eng)) {
        printf("{\"kind\":\"attn\",\"impl\":\"longctx\",\"engine\":\"%s\",\"status\":\"unsupported\","
               "\"why\":\"%s\"}\n", lc_gpu_engine_name(ek), lc_gpu_last_error());
        fprintf(stderr, "attn engine %s: %s\n", lc_gpu_engine_name(ek), lc_gpu_last_error());
        return 0;
    }
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    const char *dev = "?";
    char variant[128];
    if (ek == LC_GPU_ENGINE_CUDNN) {
        snprintf(variant, sizeof variant, "cudnn");
    } else {
        /* the forward kernel family actually chosen ($LONGCTX_GPU_KERNEL, else auto) */
        const char *fk = lc_gpu_attn_fwd_kernel(LC_DT_BF16, 128);
        if (!fk) {
            fprintf(stderr, "attn: %s\n", lc_gpu_last_error());
            return 1;
        }
        snprintf(variant, sizeof variant, "fwd=%s,fwd_mt=%s,bwd_warps=%s,sm90_bn=%s", fk,
                 getenv("LONGCTX_GPU_FWD_MT") ? getenv("LONGCTX_GPU_FWD_MT") : "default",
                 getenv("LONGCTX_GPU_BWD_WARPS") ? getenv("LONGCTX_GPU_BWD_WARPS") : "default",
                 getenv("LONGCTX_GPU_SM90_BN") ? getenv("LONGCTX_GPU_SM90_BN") : "default");
    }
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) dev = prop.name;
    for (int si = 0; si < nseq; si++) {
        const int S = seqs[si];
        const size_t nq = (size_t)S * hq * d, nk = (size_t)S * hkv * d;
        uint16_t *h = malloc(2 * (nq > nk ? nq : nk));
        uint64_t s = 7;
        void *q = gt_dev_alloc(2 * nq), *k = gt_dev_alloc(2 * nk), *v = gt_dev_alloc(2 * nk), *dout = gt_dev_alloc(2 * nq);
        for (size_t i = 0; i < nq; i++) gt_round(LC_DT_BF16, gt_uniform(&s), &h[i]);
        gt_h2d(q, h, 2 * nq);
        gt_h2d(dout, h, 2 * nq);
        for (size_t i = 0; i < nk; i++) gt_round(LC_DT_BF16, gt_uniform(&s), &h[i]);
        gt_h2d(k, h, 2 * nk);
        gt_h2d(v, h, 2 * nk);
        free(h);
        float *o = gt_dev_alloc(4 * nq), *lse = gt_dev_alloc(4 * (size_t)S * hq), *delta = gt_dev_alloc(4 * (size_t)S * hq);
        float *dq = gt_dev_alloc(4 * nq), *dk = gt_dev_alloc(4 * nk), *dv = gt_dev_alloc(4 * nk);
        for (int causal = 0; causal < 2; causal++) {
            lc_gpu_attn_desc a;
            memset(&a, 0, sizeof a);
            a.sq = a.sk = S; a.hq = hq; a.hkv = hkv; a.d = d; a.dtype = LC_DT_BF16;
            a.mask.kind = causal ? LC_MASK_CAUSAL : 0;
            a.engine = eng; /* positions are NULL (0..S-1): no host copies needed */
            lc_gpu_engine_stats st0, st1;
            memset(&st0, 0, sizeof st0);
            memset(&st1, 0, sizeof st1);
            if (eng) lc_gpu_attn_engine_stats(eng, &st0);
            const double fwd_flop = 4.0 * S * (double)S * hq * d * (causal ? 0.5 : 1.0);
            /* warm-up, then the median of iters calls, each between its own events */
            double t[16];
            const int it = iters < 16 ? iters : 16;
            GT_CHECK(lc_gpu_attn_fwd_init(&a, o, lse, NULL));
            GT_CHECK(lc_gpu_attn_fwd_block(&a, q, k, v, o, lse, NULL));
            gt_sync();
            for (int i = 0; i < it; i++) {
                cudaEventRecord(e0, NULL);
                GT_CHECK(lc_gpu_attn_fwd_init(&a, o, lse, NULL));
                GT_CHECK(lc_gpu_attn_fwd_block(&a, q, k, v, o, lse, NULL));
                cudaEventRecord(e1, NULL);
                cudaEventSynchronize(e1);
                t[i] = elapsed_ms(e0, e1);
            }
            qsort(t, (size_t)it, sizeof t[0], cmp_double);
            const double fwd_ms = t[it / 2];
            GT_CHECK(lc_gpu_attn_bwd_prep(&a, o, dout, delta, NULL));
            GT_CHECK(lc_gpu_attn_bwd_block(&a, q, k, v, dout, lse, delta, dq, dk, dv, NULL));
            gt_sync();
            for (int i = 0; i < it; i++) {
                cudaEventRecord(e0, NULL);
                GT_CHECK(lc_gpu_attn_fwd_init(&a, o, lse, NULL));
                GT_CHECK(lc_gpu_attn_fwd_block(&a, q, k, v, o, lse, NULL));
                cudaMemsetAsync(dq, 0, 4 * nq, NULL);
                cudaMemsetAsync(dk, 0, 4 * nk, NULL);
                cudaMemsetAsync(dv, 0, 4 * nk, NULL);
                GT_CHECK(lc_gpu_attn_bwd_prep(&a, o, dout, delta, NULL));
                GT_CHECK(lc_gpu_attn_bwd_block(&a, q, k, v, dout, lse, delta, dq, dk, dv, NULL));
                cudaEventRecord(e1, NULL);
                cudaEventSynchronize(e1);
                t[i] = elapsed_ms(e0, e1);
            }
            qsort(t, (size_t)it, sizeof t[0], cmp_double);
            const double fb_ms = t[it / 2];
            if (eng) lc_gpu_attn_engine_stats(eng, &st1);
            const double ftf = fwd_flop / (fwd_ms * 1e-3) / 1e12, fbtf = 3.5 * fwd_flop / (fb_ms * 1e-3) / 1e12;
            printf("{\"kind\":\"attn\",\"impl\":\"longctx\",\"engine\":\"%s\",\"variant\":\"%s\",\"device\":\"%s\","
                   "\"dtype\":\"bf16\",\"S\":%d,\"hq\":%d,"
                   "\"hkv\":%d,\"d\":%d,\"mask\":\"%s\",\"fwd_ms\":%.4f,\"fwd_tflops\":%.2f,"
                   "\"fwdbwd_ms\":%.4f,\"fwdbwd_tflops\":%.2f,\"blocks_engine\":%lld,\"blocks_own\":%lld}\n",
                   lc_gpu_engine_name(ek), variant, dev, S, hq, hkv, d, causal ? "causal" : "none", fwd_ms, ftf, fb_ms,
                   fbtf, (st1.fwd_cudnn + st1.bwd_cudnn) - (st0.fwd_cudnn + st0.bwd_cudnn),
                   (st1.fwd_own + st1.bwd_own) - (st0.fwd_own + st0.bwd_own));
            if (eng && st1.fwd_own + st1.bwd_own > st0.fwd_own + st0.bwd_own)
                fprintf(stderr, "attn engine %s: blocks ran on our kernels: %s\n", lc_gpu_engine_name(ek),
                        st1.last_own_why);
            fflush(stdout);
            fprintf(stderr, "attn %s S=%-6d %-6s fwd %8.3f ms %7.1f TFLOP/s   fwd+bwd %8.3f ms %7.1f TFLOP/s\n", variant, S,
                    causal ? "causal" : "none", fwd_ms, ftf, fb_ms, fbtf);
        }
        void *dev_[] = {q, k, v, dout, o, lse, delta, dq, dk, dv};
        for (size_t i = 0; i < sizeof dev_ / sizeof dev_[0]; i++) gt_dev_free(dev_[i]);
    }
    lc_gpu_attn_engine_destroy(eng);
    return 0;
}

/* One permute hop, one PE to itself (put, signal, wait for the signal), in each way we have,
 * beside NCCL send/recv to itself on one rank and a plain cudaMemcpyAsync D2D:
 *   put_signal   nvshmemx_putmem_signal_on_stream + our wait kernel (three launches)
 *   fused        lc_gpu_put_signal_wait_on_stream (one kernel: put, signal, wait)
 *   ce           lc_gpu_put_signal_ce_on_stream (copy engine + signal write, no kernel) + the
 *                bounded wait kernel
 *   ce_memop     the same with lc_gpu_signal_wait_memop_on_stream (no kernel at all; unbounded)
 *   *_graph      the same ops captured n at a time as one CUDA graph and replayed (what the
 *                ring's use_graph does with a whole ring call): the launch cost amortised
 * Per-op time = elapsed / ops; the median of 5 timed repetitions after a warm-up. */
typedef struct {
    lc_gpu_world *w;
    lc_gpu_nccl *nc;
    unsigned char *src, *dst, *plain;
    uint64_t *sig;
    uint64_t value;
    size_t bytes;
} perm_ctx;

typedef int (*perm_op)(perm_ctx *c, cudaStream_t st);

static int op_put_signal(perm_ctx *c, cudaStream_t st) {
    c->value++;
    int rc = lc_gpu_put_signal_on_stream(c->w, c->dst, c->src, c->bytes, c->sig, c->value, LC_SIGNAL_SET, 0, st);
    return rc ? rc : lc_gpu_signal_wait_on_stream(c->w, c->sig, LC_CMP_GE, c->value, st);
}
static int op_fused(perm_ctx *c, cudaStream_t st) {
    c->value++;
    return lc_gpu_put_signal_wait_on_stream(c->w, c->dst, c->src, c->bytes, c->sig, c->value, LC_SIGNAL_SET, 0,
                                            c->sig, LC_CMP_GE, c->value, st);
}
static int op_ce(perm_ctx *c, cudaStream_t st) { /* copy engine + signal write + bounded wait kernel */
    c->value++;
    int rc = lc_gpu_put_signal_ce_on_stream(c->w, c->dst, c->src, c->bytes, c->sig, c->value, 0, st);
    return rc ? rc : lc_gpu_signal_wait_on_stream(c->w, c->sig, LC_CMP_GE, c->value, st);
}
static int op_ce_memop(perm_ctx *c, cudaStream_t st) { /* no kernel at all; the wait is unbounded */
    c->value++;
    int rc = lc_gpu_put_signal_ce_on_stream(c->w, c->dst, c->src, c->bytes, c->sig, c->value, 0, st);
    return rc ? rc : lc_gpu_signal_wait_memop_on_stream(c->w, c->sig, LC_CMP_GE, c->value, st);
}
static int op_nccl(perm_ctx *c, cudaStream_t st) { return lc_gpu_nccl_permute(c->nc, 1, c->src, c->plain, c->bytes, st); }
static int op_memcpy(perm_ctx *c, cudaStream_t st) {
    return cudaMemcpyAsync(c->plain, c->src, c->bytes, cudaMemcpyDeviceToDevice, st) == cudaSuccess ? 0 : LC_ERR_SYS;
}

/* Median per-op microseconds of n ops, eager or as one captured graph of n ops; -1 when the
 * op (or its capture) fails, with the reason in *why. Signals only grow: a graph replays the
 * values it captured, so the captured ops use ADD-free SET values above any earlier one and
 * the wait compares with >=, which a replay (same values) passes as soon as its put lands. */
static double time_op(perm_op op, perm_ctx *c, int n, int graph, cudaStream_t st, cudaEvent_t e0, cudaEvent_t e1,
                      const char **why) {
    double t[5];
    cudaGraphExec_t ge = NULL;
    *why = "";
    if (graph) {
        cudaGraph_t g = NULL;
        if (cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
            *why = "begin capture failed";
            cudaGetLastError();
            return -1;
        }
        int rc = 0;
        for (int i = 0; i < n && !rc; i++) rc = op(c, st);
        cudaError_t ce = cudaStreamEndCapture(st, &g);
        if (rc || ce != cudaSuccess || !g || cudaGraphInstantiate(&ge, g, 0) != cudaSuccess) {
            *why = rc ? "op refused under capture" : "capture or instantiate failed";
            if (g) cudaGraphDestroy(g);
            cudaGetLastError();
            cudaStreamSynchronize(st);
            return -1;
        }
        cudaGraphDestroy(g);
        cudaGraphLaunch(ge, st); /* warm-up */
    } else {
        for (int i = 0; i < 3; i++)
            if (op(c, st)) {
                *why = lc_gpu_last_error();
                return -1;
            }
    }
    if (cudaStreamSynchronize(st) != cudaSuccess) {
        *why = "stream failed";
        cudaGetLastError();
        if (ge) cudaGraphExecDestroy(ge);
        return -1;
    }
    for (int r = 0; r < 5; r++) {
        cudaEventRecord(e0, st);
        if (graph) cudaGraphLaunch(ge, st);
        else
            for (int i = 0; i < n; i++) op(c, st);
        cudaEventRecord(e1, st);
        cudaEventSynchronize(e1);
        t[r] = elapsed_ms(e0, e1) * 1e3 / n;
    }
    if (ge) cudaGraphExecDestroy(ge);
    qsort(t, 5, sizeof t[0], cmp_double);
    return t[2];
}

static int bench_permute(int iters) {
    cudaEvent_t e0, e1;
    int rc = 0;
    perm_ctx c;
    memset(&c, 0, sizeof c);
    if (lc_gpu_have_nvshmem()) {
        gt_nvshmem_env();
        lc_gpu_uid uid;
        GT_CHECK(lc_gpu_uid_create(&uid));
        lc_gpu_world_opts wo = {0, 1, &uid, -1, (size_t)512 << 20, 30.0};
        GT_CHECK(lc_gpu_world_init(&wo, &c.w));
    }
    if (lc_gpu_have_nccl()) {
        lc_gpu_uid nid;
        if (lc_gpu_nccl_uid_create(&nid) == 0) lc_gpu_nccl_init(&nid, 0, 1, &c.nc);
    }
    cudaStream_t st;
    if (cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking) != cudaSuccess) return 1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    const size_t maxb = (size_t)64 << 20;
    c.src = gt_dev_alloc(maxb);
    c.plain = gt_dev_alloc(maxb);
    c.dst = c.w ? lc_gpu_symm_alloc(c.w, maxb) : NULL;
    c.sig = c.w ? lc_gpu_symm_alloc(c.w, 64) : NULL;
    if (c.sig) {
        uint64_t z[8] = {0};
        gt_h2d(c.sig, z, sizeof z);
    }
    {
        unsigned char *h = malloc(maxb);
        for (size_t i = 0; i < maxb; i++) h[i] = (unsigned char)(i * 131 + 7);
        gt_h2d(c.src, h, maxb);
        free(h);
    }
    const char *fb = getenv("LONGCTX_GPU_FUSED_BLOCKS"), *fc = getenv("LONGCTX_GPU_FUSED_CHUNK");
    const size_t sizes[] = {8, 64, 512, 4096, 32768, 262144, 1 << 20, 4 << 20, 16 << 20, 64 << 20};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        c.bytes = sizes[si];
        const int n = c.bytes >= ((size_t)8 << 20) ? (iters < 20 ? iters : 20) : iters;
        const struct {
            const char *name;
            perm_op op;
            int graph, needs_w, needs_nc;
        } ways[] = {{"put_signal", op_put_signal, 0, 1, 0}, {"fused", op_fused, 0, 1, 0},
                    {"put_signal_graph", op_put_signal, 1, 1, 0}, {"fused_graph", op_fused, 1, 1, 0},
                    {"ce", op_ce, 0, 1, 0}, {"ce_graph", op_ce, 1, 1, 0},
                    {"ce_memop", op_ce_memop, 0, 1, 0}, {"ce_memop_graph", op_ce_memop, 1, 1, 0},
                    {"nccl", op_nccl, 0, 0, 1}, {"nccl_graph", op_nccl, 1, 0, 1},
                    {"memcpy", op_memcpy, 0, 0, 0}, {"memcpy_graph", op_memcpy, 1, 0, 0}};
        printf("{\"kind\":\"permute\",\"bytes\":%zu,\"ops\":%d,\"fused_blocks\":\"%s\",\"fused_chunk\":\"%s\"", c.bytes, n,
               fb ? fb : "default", fc ? fc : "default");
        fprintf(stderr, "permute %10zu B:", c.bytes);
        for (size_t k = 0; k < sizeof ways / sizeof ways[0]; k++) {
            double us = -1;
            const char *why = "not built";
            if ((!ways[k].needs_w || c.w) && (!ways[k].needs_nc || c.nc)) {
                us = time_op(ways[k].op, &c, n, ways[k].graph, st, e0, e1, &why);
                if (c.w && lc_gpu_world_check(c.w, st)) {
                    fprintf(stderr, "\n%s: %s\n", ways[k].name, lc_gpu_last_error());
                    rc = 1;
                }
            }
            printf(",\"%s_us\":%.3f,\"%s_GBps\":%.2f", ways[k].name, us, ways[k].name,
                   us > 0 ? c.bytes / us / 1e3 : 0);
            if (us < 0) printf(",\"%s_why\":\"%s\"", ways[k].name, why);
            fprintf(stderr, " %s %.2f", ways[k].name, us);
        }
        printf("}\n");
        fflush(stdout);
        fprintf(stderr, "\n");
        /* the data arrived: the last put's destination equals its source */
        if (c.w) {
            unsigned char *a = malloc(c.bytes), *b = malloc(c.bytes);
            gt_d2h(a, c.dst, c.bytes);
            gt_d2h(b, c.src, c.bytes);
            if (memcmp(a, b, c.bytes)) {
                fprintf(stderr, "permute %zu B: destination differs from source\n", c.bytes);
                rc = 1;
            }
            free(a);
            free(b);
        }
    }
    cudaStreamDestroy(st);
    if (c.nc) lc_gpu_nccl_finalize(c.nc);
    if (c.w) lc_gpu_world_finalize(c.w);
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
