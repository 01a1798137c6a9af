/* Times lc_attn_bwd_block (fp32, causal, one fresh random problem) n times, each right after
 * a forward on the same inputs; prints the backward's mean and best GFLOP/s (FlashAttention
 * convention: 2.5x the forward's unmasked FLOPs) and its time over the forward's, a ratio the
 * host's slow spells move less than either rate when two builds share the forward's code. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "longctx/attn.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *randn(size_t n)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; x && i < n; i++)
        x[i] = 2.0f * (float)rand() / (float)RAND_MAX - 1.0f;
    return x;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: time_bwd S D HQ HKV N [THREADS]\n");
        return 2;
    }
    int s = atoi(argv[1]), d = atoi(argv[2]), hq = atoi(argv[3]), hkv = atoi(argv[4]);
    int n = atoi(argv[5]), th = argc > 6 ? atoi(argv[6]) : 1;
    if (s < 1 || d < 1 || hq < 1 || hkv < 1 || n < 1 || th < 1) {
        fprintf(stderr, "time_bwd: S, D, HQ, HKV, N and THREADS must be positive integers\n");
        return 2;
    }
    size_t nq = (size_t)s * hq * d, nk = (size_t)s * hkv * d;
    srand((unsigned)time(NULL));
    float *q = randn(nq), *k = randn(nk), *v = randn(nk), *dout = randn(nq);
    float *o = malloc(nq * 4), *lse = malloc((size_t)s * hq * 4), *delta = malloc((size_t)s * hq * 4);
    float *dq = calloc(nq, 4), *dk = calloc(nk, 4), *dv = calloc(nk, 4);
    lc_attn_desc a = {.sq = s, .sk = s, .hq = hq, .hkv = hkv, .d = d, .qkv_dtype = LC_DT_F32,
                      .threads = th};
    a.mask.kind = LC_MASK_CAUSAL;
    size_t wb = 0;
    if (!q || !k || !v || !dout || !o || !lse || !delta || !dq || !dk || !dv ||
        lc_attn_workspace_size(&a, LC_ATTN_PASS_FWD | LC_ATTN_PASS_BWD, &wb) != 0 ||
        !(a.work = malloc(wb))) {
        fprintf(stderr, "time_bwd: setup failed: %s\n", lc_attn_last_error());
        return 1;
    }
    a.work_bytes = wb;
    memset(a.work, 0, wb);
    if (lc_attn_fwd(&a, q, k, v, o, LC_DT_F32, lse) || lc_attn_bwd_prep(&a, o, dout, delta)) {
        fprintf(stderr, "time_bwd: %s\n", lc_attn_last_error());
        return 1;
    }
    double fl = 2.5 * 4.0 * s * (double)s * d * hq * 0.5, best = 0, sum = 0, tf = 0, tb = 0;
    for (int r = 0; r < n; r++) {
        double t0 = now();
        if (lc_attn_fwd(&a, q, k, v, o, LC_DT_F32, lse)) {
            fprintf(stderr, "time_bwd: %s\n", lc_attn_last_error());
            return 1;
        }
        tf += now() - t0;
        t0 = now();
        if (lc_attn_bwd_block(&a, q, k, v, dout, lse, delta, dq, dk, dv)) {
            fprintf(stderr, "time_bwd: %s\n", lc_attn_last_error());
            return 1;
        }
        double dt = now() - t0, g = fl / dt * 1e-9;
        tb += dt;
        sum += g;
        best = g > best ? g : best;
    }
    printf("bwd %.2f GFLOP/s mean, %.2f best, %.4f of the forward's time\n", sum / n, best, tb / tf);
    void *bufs[] = {q, k, v, dout, o, lse, delta, dq, dk, dv, a.work};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    return 0;
}
