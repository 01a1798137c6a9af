/* bf16 GEMMs through oneDNN's matmul (Debian's libdnnl 2.6), where the CPU has bf16
 * instructions.
 *
 * Debian's OpenBLAS has no sbgemm (and PyPI's scipy-openblas builds do not export it either),
 * so bf16 compute used to round the operands and call sgemm: bf16 numbers at fp32 speed.
 * oneDNN's brgemm kernels for avx512_core_bf16 (and AMX) multiply bf16 with fp32 accumulation
 * at 3-4.7x sgemm's rate on Zen 5 (bench/results/bf16-gemm-*). Where oneDNN has no bf16
 * kernel for the CPU (it would pick a reference or emulated one, slower than sgemm), the model
 * keeps sgemm on the rounded operands, as before: `lc_model_bf16_gemm_name` says which.
 *
 * The library is loaded with dlopen like OpenBLAS (no link-time dependency for users of
 * liblongctx.a); the header gives the signatures. Operands arrive as fp32 holding bf16 values
 * (the model rounds activations and keeps a rounded copy of the weights), so converting them
 * to bf16 is exact. Primitives are made on a shape's first use and kept with their memory
 * objects and a user scratchpad, so a steady-state step allocates nothing. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/settings.h"
#include "longctx/attn.h"
#include "model/internal.h"

#ifdef LONGCTX_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>

#define FN(name) __typeof__(&name) name
static struct {
    FN(dnnl_engine_create);
    FN(dnnl_stream_create);
    FN(dnnl_stream_wait);
    FN(dnnl_memory_desc_init_by_strides);
    FN(dnnl_memory_desc_get_size);
    FN(dnnl_matmul_desc_init);
    FN(dnnl_primitive_attr_create);
    FN(dnnl_primitive_attr_destroy);
    FN(dnnl_primitive_attr_set_scratchpad_mode);
    FN(dnnl_primitive_attr_set_post_ops);
    FN(dnnl_post_ops_create);
    FN(dnnl_post_ops_destroy);
    FN(dnnl_post_ops_append_sum);
    FN(dnnl_primitive_desc_create);
    FN(dnnl_primitive_desc_destroy);
    FN(dnnl_primitive_desc_query);
    FN(dnnl_primitive_desc_query_md);
    FN(dnnl_primitive_create);
    FN(dnnl_primitive_execute);
    FN(dnnl_memory_create);
    FN(dnnl_memory_set_data_handle);
    FN(dnnl_memory_destroy);
    FN(dnnl_primitive_destroy);
    void (*omp_set_num_threads)(int);
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    int ok;
    char info[192];
} D;
#undef FN
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* One GEMM shape's primitive: C[M,N] (+)= op(A) op(B), A and B packed bf16 copies. */
typedef struct {
    int ta, tb, M, N, K, ldc, acc;
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c, pad;
    size_t pad_bytes;
} entry;

#define N_ENTRY 48
struct lc_gemm16 {
    entry e[N_ENTRY];
    int n;
    uint16_t *a16, *b16; /* operand copies, sized by the model for its largest operands */
    size_t cap;          /* elements of each */
    void *pad;           /* the largest scratchpad any primitive asked for */
    size_t pad_bytes;
    int threads;
};

/* bf16 instructions in the CPU: AVX512-BF16 (cpuid 7.1 EAX bit 5) or AMX-BF16 (7.0 EDX bit 22).
 * Without them oneDNN emulates bf16 (slower than sgemm on the rounded operands). */
static int cpu_has_bf16(void)
{
#if defined(__x86_64__)
    unsigned a = 7, b = 0, c = 1, d = 0;
    __asm__("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    int avx512bf16 = (a >> 5) & 1;
    a = 7, c = 0;
    __asm__("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    return avx512bf16 || ((d >> 22) & 1);
#else
    return 0;
#endif
}

static void load(void)
{
#if defined(__SANITIZE_ADDRESS__)
    /* LeakSanitizer's exit-time scan crashes on libgomp's worker threads (oneDNN's runtime):
     * the sanitizer build tests the sgemm path, the Release build both */
    snprintf(D.info, sizeof D.info, "sgemm on bf16-rounded operands (AddressSanitizer build: oneDNN left out)");
    return;
#endif
    if (lc__env_str("LONGCTX_BF16_GEMM") && !strcmp(lc__env_str("LONGCTX_BF16_GEMM"), "sgemm")) {
        snprintf(D.info, sizeof D.info, "sgemm on bf16-rounded operands (LONGCTX_BF16_GEMM=sgemm)");
        return;
    }
    void *h = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(D.info, sizeof D.info, "sgemm on bf16-rounded operands (oneDNN not found: %s)", dlerror());
        return;
    }
#define L(name)                                                                                    \
    if (!(*(void **)&D.name = dlsym(h, #name))) {                                                  \
        snprintf(D.info, sizeof D.info, "sgemm on bf16-rounded operands (libdnnl.so.2 lacks %s)", #name); \
        return;                                                                                    \
    }
    L(dnnl_engine_create) L(dnnl_stream_create) L(dnnl_stream_wait) L(dnnl_memory_desc_init_by_strides)
    L(dnnl_memory_desc_get_size) L(dnnl_matmul_desc_init) L(dnnl_primitive_attr_create)
    L(dnnl_primitive_attr_destroy) L(dnnl_primitive_attr_set_scratchpad_mode) L(dnnl_primitive_attr_set_post_ops)
    L(dnnl_post_ops_create) L(dnnl_post_ops_destroy) L(dnnl_post_ops_append_sum) L(dnnl_primitive_desc_create)
    L(dnnl_primitive_desc_destroy) L(dnnl_primitive_desc_query) L(dnnl_primitive_desc_query_md)
    L(dnnl_primitive_create) L(dnnl_primitive_execute) L(dnnl_memory_create) L(dnnl_memory_set_data_handle)
    L(dnnl_memory_destroy) L(dnnl_primitive_destroy)
#undef L
    *(void **)&D.omp_set_num_threads = dlsym(h, "omp_set_num_threads");
    if (D.dnnl_engine_create(&D.eng, dnnl_cpu, 0) || D.dnnl_stream_create(&D.stream, D.eng, dnnl_stream_default_flags)) {
        snprintf(D.info, sizeof D.info, "sgemm on bf16-rounded operands (oneDNN has no CPU engine)");
        return;
    }
    /* Which kernel would a typical shape get? Only a native bf16 one beats sgemm. */
    dnnl_memory_desc_t a, b, c;
    dnnl_dims_t da = {256, 256}, db = {256, 256}, dc = {256, 256}, s = {256, 1};
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd = NULL;
    const char *impl = "none";
    if (!D.dnnl_memory_desc_init_by_strides(&a, 2, da, dnnl_bf16, s) &&
        !D.dnnl_memory_desc_init_by_strides(&b, 2, db, dnnl_bf16, s) &&
        !D.dnnl_memory_desc_init_by_strides(&c, 2, dc, dnnl_f32, s) && !D.dnnl_matmul_desc_init(&md, &a, &b, NULL, &c) &&
        !D.dnnl_primitive_desc_create(&pd, &md, NULL, D.eng, NULL))
        D.dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    int native = cpu_has_bf16() && !strstr(impl, "ref") && (strstr(impl, "bf16") || strstr(impl, "amx"));
    const char *force = lc__env_str("LONGCTX_BF16_GEMM");
    if (native || (force && !strcmp(force, "onednn"))) {
        D.ok = 1;
        snprintf(D.info, sizeof D.info, "oneDNN bf16 matmul (%s%s)", impl, native ? "" : ", forced by LONGCTX_BF16_GEMM");
    } else {
        snprintf(D.info, sizeof D.info, "sgemm on bf16-rounded operands (oneDNN has no native bf16 kernel here: %s)", impl);
    }
    if (pd) D.dnnl_primitive_desc_destroy(pd);
}

int lc_model__gemm16_available(void)
{
    pthread_once(&g_once, load);
    return D.ok;
}

const char *lc_model__gemm16_info(void)
{
    pthread_once(&g_once, load);
    return D.info;
}

lc_gemm16 *lc_model__gemm16_create(size_t max_operand)
{
    if (!lc_model__gemm16_available()) return NULL;
    lc_gemm16 *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->cap = max_operand;
    g->a16 = malloc(max_operand * sizeof(uint16_t));
    g->b16 = malloc(max_operand * sizeof(uint16_t));
    if (!g->a16 || !g->b16) {
        lc_model__gemm16_destroy(g);
        return NULL;
    }
    return g;
}

void lc_model__gemm16_destroy(lc_gemm16 *g)
{
    if (!g) return;
    free(g->a16);
    free(g->b16);
    for (int i = 0; i < g->n; i++) {
        entry *e = &g->e[i];
        dnnl_memory_t mem[4] = {e->a, e->b, e->c, e->pad};
        for (int k = 0; k < 4; k++)
            if (mem[k]) D.dnnl_memory_destroy(mem[k]);
        if (e->prim) D.dnnl_primitive_destroy(e->prim);
    }
    free(g->pad);
    free(g);
}

void lc_model__gemm16_threads(lc_gemm16 *g, int n)
{
    if (g && D.omp_set_num_threads && g->threads != n) {
        D.omp_set_num_threads(n < 1 ? 1 : n);
        g->threads = n;
    }
}

static entry *find(lc_gemm16 *g, int ta, int tb, int M, int N, int K, int ldc, int acc)
{
    for (int i = 0; i < g->n; i++) {
        entry *e = &g->e[i];
        if (e->ta == ta && e->tb == tb && e->M == M && e->N == N && e->K == K && e->ldc == ldc && e->acc == acc)
            return e;
    }
    if (g->n == N_ENTRY) return NULL;
    entry *e = &g->e[g->n];
    memset(e, 0, sizeof *e);
    e->ta = ta, e->tb = tb, e->M = M, e->N = N, e->K = K, e->ldc = ldc, e->acc = acc;
    /* the packed copies keep the operands' orientation: op(A) [M,K] is A16 [M][K] or, for a
     * transposed A, [K][M]; likewise B */
    dnnl_memory_desc_t a, b, c;
    dnnl_dims_t da = {M, K}, db = {K, N}, dc = {M, N};
    dnnl_dims_t sa = {ta ? 1 : K, ta ? M : 1}, sb = {tb ? 1 : N, tb ? K : 1}, sc = {ldc, 1};
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int bad = D.dnnl_memory_desc_init_by_strides(&a, 2, da, dnnl_bf16, sa) ||
              D.dnnl_memory_desc_init_by_strides(&b, 2, db, dnnl_bf16, sb) ||
              D.dnnl_memory_desc_init_by_strides(&c, 2, dc, dnnl_f32, sc) || D.dnnl_matmul_desc_init(&md, &a, &b, NULL, &c) ||
              D.dnnl_primitive_attr_create(&attr) || D.dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (!bad && acc) bad = D.dnnl_post_ops_create(&po) || D.dnnl_post_ops_append_sum(po, 1.0f) ||
                           D.dnnl_primitive_attr_set_post_ops(attr, po);
    if (!bad) bad = D.dnnl_primitive_desc_create(&pd, &md, attr, D.eng, NULL) != dnnl_success;
    if (!bad) {
        const dnnl_memory_desc_t *pm = D.dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        e->pad_bytes = pm ? D.dnnl_memory_desc_get_size(pm) : 0;
        bad = D.dnnl_primitive_create(&e->prim, pd) || D.dnnl_memory_create(&e->a, &a, D.eng, DNNL_MEMORY_NONE) ||
              D.dnnl_memory_create(&e->b, &b, D.eng, DNNL_MEMORY_NONE) ||
              D.dnnl_memory_create(&e->c, &c, D.eng, DNNL_MEMORY_NONE) ||
              (pm && D.dnnl_memory_create(&e->pad, pm, D.eng, DNNL_MEMORY_NONE));
    }
    if (pd) D.dnnl_primitive_desc_destroy(pd);
    if (po) D.dnnl_post_ops_destroy(po);
    if (attr) D.dnnl_primitive_attr_destroy(attr);
    if (bad) {
        dnnl_memory_t mem[4] = {e->a, e->b, e->c, e->pad};
        for (int k = 0; k < 4; k++)
            if (mem[k]) D.dnnl_memory_destroy(mem[k]);
        if (e->prim) D.dnnl_primitive_destroy(e->prim);
        memset(e, 0, sizeof *e);
        return NULL;
    }
    /* a shape's first use (the first step) may grow the shared scratchpad; later ones never */
    if (e->pad_bytes > g->pad_bytes) {
        void *p = realloc(g->pad, e->pad_bytes);
        if (!p) return NULL;
        g->pad = p;
        g->pad_bytes = e->pad_bytes;
    }
    g->n++;
    return e;
}

/* op(X) stored with leading dimension ld (rows of the stored matrix: r, each c wide) into a
 * packed bf16 copy [r][c]. */
LC_MODEL_VEC_LOOP static void pack(const float *x, int r, int c, int ld, uint16_t *out)
{
    for (int i = 0; i < r; i++)
        for (int j = 0; j < c; j++) out[(size_t)i * c + j] = lc_model__f2bf(x[(size_t)i * ld + j]);
}

int lc_model__gemm16(lc_gemm16 *g, int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                     int ldb, float *C, int ldc, int acc)
{
    if (!g || (size_t)M * K > g->cap || (size_t)K * N > g->cap) return -1;
    entry *e = find(g, ta, tb, M, N, K, ldc, acc);
    if (!e) return -1;
    pack(A, ta ? K : M, ta ? M : K, lda, g->a16);
    pack(B, tb ? N : K, tb ? K : N, ldb, g->b16);
    D.dnnl_memory_set_data_handle(e->a, g->a16);
    D.dnnl_memory_set_data_handle(e->b, g->b16);
    D.dnnl_memory_set_data_handle(e->c, C);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b}, {DNNL_ARG_DST, e->c}, {DNNL_ARG_SCRATCHPAD, e->pad}};
    if (e->pad) D.dnnl_memory_set_data_handle(e->pad, g->pad);
    if (D.dnnl_primitive_execute(e->prim, D.stream, e->pad ? 4 : 3, args)) return -1;
    return D.dnnl_stream_wait(D.stream) ? -1 : 0;
}

#else /* built without oneDNN's header */

int lc_model__gemm16_available(void) { return 0; }
const char *lc_model__gemm16_info(void) { return "sgemm on bf16-rounded operands (built without oneDNN)"; }
lc_gemm16 *lc_model__gemm16_create(size_t max_operand) { return (void)max_operand, NULL; }
void lc_model__gemm16_destroy(lc_gemm16 *g) { (void)g; }
void lc_model__gemm16_threads(lc_gemm16 *g, int n) { (void)g, (void)n; }
int lc_model__gemm16(lc_gemm16 *g, int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                     int ldb, float *C, int ldc, int acc)
{
    (void)g, (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)A, (void)lda, (void)B, (void)ldb, (void)C, (void)ldc;
    (void)acc;
    return -1;
}
#endif
