/* Linear layers through OpenBLAS (Debian's libopenblas, cblas_sgemm).
 *
 * The library is loaded with dlopen on first use, not linked: Debian's OpenBLAS is a
 * DYNAMIC_ARCH build that picks its kernels from cpuid when it is loaded, and 0.3.21 does not
 * know recent Xeons (Sapphire/Emerald Rapids): it falls back to its "Prescott" SSE3 kernels,
 * about 4x below what the AVX-512 kernels reach here. Unless the user set OPENBLAS_CORETYPE,
 * we set it from cpuid (AVX512-BF16: Cooperlake, AVX-512: SkylakeX, AVX2: Haswell) before
 * the library loads. A library that knows the CPU picks the same family anyway.
 * (Both settings are only defaults: variables the user set win.)
 *
 * bf16 compute: Debian's OpenBLAS is built without BUILD_BFLOAT16 (no cblas_sbgemm symbol).
 * Where the CPU has bf16 instructions the GEMMs go to oneDNN (gemm_bf16.c, set per call by
 * lc_model__gemm_use); elsewhere the bf16 path rounds the operands to bf16 values and
 * multiplies them with sgemm: the same products with fp32 accumulation, at fp32 speed. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include LONGCTX_CBLAS_HEADER

#include "common/settings.h"
#include "longctx/attn.h"
#include "model/internal.h"

#ifndef LONGCTX_OPENBLAS_SO
#define LONGCTX_OPENBLAS_SO "libopenblas.so"
#endif

typedef void (*sgemm_fn)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, enum CBLAS_TRANSPOSE, blasint,
                         blasint, blasint, float, const float *, blasint, const float *, blasint,
                         float, float *, blasint);
static struct {
    sgemm_fn sgemm;
    void (*set_threads)(int);
    char *(*corename)(void);
    char *(*config)(void);
    char info[256];
    int ok;
} g_blas;
static pthread_once_t g_blas_once = PTHREAD_ONCE_INIT;

static const char *pick_coretype(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
        unsigned a = 7, b = 0, c = 1, d = 0; /* leaf 7 subleaf 1: EAX bit 5 = AVX512_BF16 */
        __asm__("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
        return (a >> 5) & 1 ? "Cooperlake" : "SkylakeX";
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
    return NULL;
}

static void blas_load(void)
{
    const char *forced = lc__env_str("OPENBLAS_CORETYPE");
    const char *pick = forced ? NULL : pick_coretype();
    if (pick) setenv("OPENBLAS_CORETYPE", pick, 0);
    /* idle BLAS workers spin ~2^28 cycles before sleeping, taking the core from the attention
     * threads that run between GEMMs; 2^4 makes them sleep at once (a GEMM wakes them) */
    setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0);
    /* the soname follows the system's choice (Debian alternatives); the path found at
     * configure time is the fallback */
    void *h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!h) h = dlopen(LONGCTX_OPENBLAS_SO, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(g_blas.info, sizeof g_blas.info, "cannot load OpenBLAS (%s): %s",
                 LONGCTX_OPENBLAS_SO, dlerror());
        return;
    }
    g_blas.sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
    g_blas.set_threads = (void (*)(int))dlsym(h, "openblas_set_num_threads");
    g_blas.corename = (char *(*)(void))dlsym(h, "openblas_get_corename");
    g_blas.config = (char *(*)(void))dlsym(h, "openblas_get_config");
    if (!g_blas.sgemm || !g_blas.set_threads) {
        snprintf(g_blas.info, sizeof g_blas.info, "OpenBLAS (%s) lacks cblas_sgemm", LONGCTX_OPENBLAS_SO);
        return;
    }
    g_blas.ok = 1;
    snprintf(g_blas.info, sizeof g_blas.info, "%s, kernels %s (%s)",
             g_blas.config ? g_blas.config() : "OpenBLAS", g_blas.corename ? g_blas.corename() : "?",
             forced ? "OPENBLAS_CORETYPE from the environment"
                    : pick ? "OPENBLAS_CORETYPE set from cpuid" : "OpenBLAS's own detection");
}

int lc_model__blas_init(void)
{
    pthread_once(&g_blas_once, blas_load);
    return g_blas.ok ? 0 : -1;
}

const char *lc_model_blas_info(void)
{
    lc_model__blas_init();
    return g_blas.info;
}

void lc_model__blas_threads(int n)
{
    if (lc_model__blas_init() == 0) g_blas.set_threads(n < 1 ? 1 : n);
}

const char *lc_model_bf16_gemm_name(void) { return lc_model__gemm16_info(); }

static _Thread_local lc_gemm16 *t_g16;
void lc_model__gemm_use(lc_gemm16 *g) { t_g16 = g; }

/* Callers ran lc_model__blas_init successfully (lc_model_create fails otherwise). */
#define cblas_sgemm g_blas.sgemm

void lc_model__linear_fwd(const float *x, const float *w, int rows, int in, int out, float *y,
                          int accumulate)
{
    if (rows <= 0) return;
    if (t_g16 && !lc_model__gemm16(t_g16, 0, 1, rows, out, in, x, in, w, in, y, out, accumulate)) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, in, 1.0f, x, in, w, in,
                accumulate ? 1.0f : 0.0f, y, out);
}

void lc_model__linear_bwd_dx(const float *dy, const float *w, int rows, int in, int out,
                             float *dx, int accumulate)
{
    if (rows <= 0) return;
    if (t_g16 && !lc_model__gemm16(t_g16, 0, 0, rows, in, out, dy, out, w, in, dx, in, accumulate)) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, in, out, 1.0f, dy, out, w, in,
                accumulate ? 1.0f : 0.0f, dx, in);
}

void lc_model__linear_bwd_dx_ld(const float *dy, const float *w, int rows, int in, int out,
                                float *dx, int ldx)
{
    if (rows <= 0) return;
    if (t_g16 && !lc_model__gemm16(t_g16, 0, 0, rows, in, out, dy, out, w, in, dx, ldx, 0)) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, in, out, 1.0f, dy, out, w, in,
                0.0f, dx, ldx);
}

void lc_model__linear_bwd_dw(const float *dy, const float *x, int rows, int in, int out,
                             float *dw)
{
    if (rows <= 0) return;
    if (t_g16 && !lc_model__gemm16(t_g16, 1, 0, out, in, rows, dy, out, x, in, dw, in, 1)) return;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, rows, 1.0f, dy, out, x, in,
                1.0f, dw, in);
}

LC_MODEL_VEC_LOOP void lc_model__round_bf16(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = lc_model__bf2f(lc_model__f2bf(x[i]));
}

LC_MODEL_VEC_LOOP void lc_model__to_bf16(const float *x, size_t n, uint16_t *out)
{
    for (size_t i = 0; i < n; i++) out[i] = lc_model__f2bf(x[i]);
}

LC_MODEL_VEC_LOOP void lc_model__from_bf16(const uint16_t *x, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++) out[i] = lc_model__bf2f(x[i]);
}
