/* Forward+backward step time of a model preset: tokens/s, model FLOP/s, MFU against the
 * fp32 FMA peak of the cores used (measured here, in this thread's CPU time), and the split
 * into matmul / attention / communication / other. A benchmark, not a test.
 *
 *   bench_model [--model small] [--seq 16384] [--threads 1] [--steps 3] [--bf16]
 *               [--recompute] [--layout zigzag]
 * Under `longctx launch -n P` the sequence is split over P PEs (CP = P). */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "longctx/model.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double proc_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One core's fp32 FMA peak (GFLOP/s), in this thread's CPU time: 12 independent 512-bit FMA
 * chains kept in registers (4-cycle latency x 2 pipes, with room). */
#define F(c) c = _mm512_fmadd_ps(c, a, b)
__attribute__((target("avx512f,fma"))) static double peak_avx512(void)
{
    __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    __m512 c0 = _mm512_set1_ps(0), c1 = _mm512_set1_ps(1), c2 = _mm512_set1_ps(2),
           c3 = _mm512_set1_ps(3), c4 = _mm512_set1_ps(4), c5 = _mm512_set1_ps(5),
           c6 = _mm512_set1_ps(6), c7 = _mm512_set1_ps(7), c8 = _mm512_set1_ps(8),
           c9 = _mm512_set1_ps(9), c10 = _mm512_set1_ps(10), c11 = _mm512_set1_ps(11);
    long n = 20000000;
    double t0 = cpu_now();
    for (long it = 0; it < n; it++) {
        F(c0); F(c1); F(c2); F(c3); F(c4); F(c5); F(c6); F(c7); F(c8); F(c9); F(c10); F(c11);
        __asm__ volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5));
    }
    double t = cpu_now() - t0;
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
    return n * 12.0 * 32.0 / t * 1e-9;
}
#undef F

static long hwm_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) v = atol(line + 6);
    if (f) fclose(f);
    return v;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *model = "small", *layout = "zigzag";
    long seq = 16384;
    int threads = 1, steps = 3, bf16 = 0, recompute = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--seq") && i + 1 < argc) seq = atol(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layout") && i + 1 < argc) layout = argv[++i];
        else if (!strcmp(argv[i], "--bf16")) bf16 = 1;
        else if (!strcmp(argv[i], "--recompute")) recompute = 1;
        else {
            fprintf(stderr, "bench_model: unknown or incomplete flag %s\n", argv[i]);
            return 2;
        }
    }
    lc_model_config c;
    lc_cp_layout lay;
    if (lc_model_preset(model, &c) || lc_cp_layout_parse(layout, &lay)) {
        fprintf(stderr, "bench_model: unknown model %s or layout %s\n", model, layout);
        return 2;
    }
    lc_world *w;
    if (lc_world_init(NULL, &w)) return 1;
    lc_team *t = lc_team_world(w);
    int me = lc_my_pe(w), P = lc_n_pes(w);
    double peak = 0;
    for (int r = 0; r < 3; r++) {
        double p = peak_avx512();
        if (p > peak) peak = p;
    }
    lc_plan plan = {.seq_len = seq, .layout = lay, .algo = LC_CP_RING};
    lc_model_run run = {.cp_team = t, .plan = &plan, .compute = bf16 ? LC_DT_BF16 : LC_DT_F32,
                        .threads = threads, .recompute = recompute};
    lc_model *m;
    if (lc_model_create(&c, &run, &m)) {
        fprintf(stderr, "bench_model: %s\n", lc_model_last_error(NULL));
        return 1;
    }
    lc_model_init_params(m, 1);
    int32_t *tok = malloc(4 * seq), *tgt = malloc(4 * seq);
    uint64_t s = 42;
    for (long i = 0; i < seq; i++) tok[i] = (int32_t)((s = s * 6364136223846793005ull + 1) >> 56);
    for (long i = 0; i < seq; i++) tgt[i] = i + 1 < seq ? tok[i + 1] : -1;
    float loss;
    double *dt = malloc(sizeof(double) * (steps + 1)), cpu0 = 0;
    for (int i = 0; i <= steps; i++) {
        if (i == 1) lc_model_reset_times(m), cpu0 = proc_cpu_now();
        double t0 = wall_now();
        lc_model_zero_grads(m);
        if (lc_model_forward_backward(m, tok, tgt, NULL, 1.0f, &loss)) {
            fprintf(stderr, "bench_model: %s\n", lc_model_last_error(m));
            return 1;
        }
        dt[i] = wall_now() - t0;
    }
    double cpu = (proc_cpu_now() - cpu0) / steps; /* all threads of this PE */
    lc_model_times tm;
    lc_model_get_times(m, &tm);
    qsort(dt + 1, steps, sizeof(double), cmp);
    double med = dt[1 + steps / 2];
    double fl = lc_model_flops_per_token(&c, seq) * seq / P; /* this PE's share */
    if (me == 0) {
        printf("BLAS: %s\n", lc_model_blas_info());
        double tot = tm.total_s > 0 ? tm.total_s : 1;
        printf("model %s seq %ld P %d threads %d %s%s: step %.3f s (median of %d), %.0f tokens/s, "
               "%.1f GFLOP/s per PE, peak %.1f GFLOP/s/core -> MFU %.1f%%; split matmul %.0f%% "
               "attn %.0f%% comm %.0f%% other %.0f%%; loss %.4f\n"
               "  CPU time %.3f s per step -> MFU by CPU time %.1f%% (robust to other load); "
               "peak memory (VmHWM) %.1f MiB on PE 0\n",
               model, seq, P, threads, bf16 ? "bf16" : "fp32", recompute ? " recompute" : "", med,
               steps, seq / med, fl / med * 1e-9, peak, 100.0 * fl / med / (peak * 1e9 * threads),
               100 * tm.matmul_s / tot, 100 * tm.attn_s / tot, 100 * tm.comm_s / tot,
               100 * tm.other_s / tot, loss, cpu, 100.0 * fl / cpu / (peak * 1e9),
               hwm_kib() / 1024.0);
    }
    lc_model_destroy(m);
    lc_world_finalize(w);
    free(tok), free(tgt), free(dt);
    return 0;
}
