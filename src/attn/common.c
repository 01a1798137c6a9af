/* Shared attention plumbing: bf16 storage, names, validation, errors, masks, dispatch. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/internal.h"
#include "common/err.h"
#include "common/settings.h"

/* The kernels have no handle: their messages go to the thread's buffer (src/common/err.h). */
int lc_attn_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lc__vfail_in(NULL, 0, LC_ERR_ARG, fmt, ap);
    va_end(ap);
    return LC_ERR_ARG;
}

const char *lc_attn_last_error(void) { return lc__thread_error(); }

float lc_bf16_to_f32(lc_bf16 x)
{
    uint32_t u = (uint32_t)x << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

lc_bf16 lc_f32_to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it NaN (quiet), whatever the payload */
        return (lc_bf16)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (lc_bf16)(u >> 16);
}

size_t lc_dtype_size(lc_dtype t) { return t == LC_DT_F32 ? 4 : 2; }

const char *lc_dtype_name(lc_dtype t)
{
    switch (t) {
    case LC_DT_F32: return "f32";
    case LC_DT_BF16: return "bf16";
    case LC_DT_F16: return "f16";
    }
    return "?";
}

const char *lc_attn_impl_name(lc_attn_impl i)
{
    switch (i) {
    case LC_ATTN_AUTO: return "auto";
    case LC_ATTN_SCALAR: return "scalar";
    case LC_ATTN_AVX2: return "avx2";
    case LC_ATTN_AVX512: return "avx512";
    }
    return "?";
}

int lc_attn_impl_parse(const char *s, lc_attn_impl *out)
{
    static const lc_attn_impl all[] = {LC_ATTN_AUTO, LC_ATTN_SCALAR, LC_ATTN_AVX2,
                                       LC_ATTN_AVX512};
    if (!s || !out)
        return lc_attn_fail("impl name is NULL");
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, lc_attn_impl_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    return lc_attn_fail("unknown attention impl '%s' (auto, scalar, avx2, avx512)", s);
}

int lc_attn_impl_supported(lc_attn_impl i)
{
    switch (i) {
    case LC_ATTN_AUTO:
    case LC_ATTN_SCALAR: return 1;
#ifdef LC_ATTN_HAVE_X86
    case LC_ATTN_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case LC_ATTN_AVX512:
        /* avx512.c is built with bw/vl too, so the compiler may use them anywhere there. */
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
#else
    default: return 0;
#endif
    }
    return 0;
}

int lc_attn_cpu_has_bf16(void)
{
#ifdef LC_ATTN_HAVE_X86
    return lc_attn_impl_supported(LC_ATTN_AVX512) && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

static lc_bf16_dot g_bf16_dot = LC_BF16_DOT_AUTO; /* set once per job, before any bf16 call */

const char *lc_bf16_dot_name(lc_bf16_dot d)
{
    return d == LC_BF16_DOT_FMA ? "fma" : d == LC_BF16_DOT_DPBF16 ? "dpbf16" : "auto";
}

int lc_bf16_dot_parse(const char *s, lc_bf16_dot *out)
{
    static const lc_bf16_dot all[3] = {LC_BF16_DOT_AUTO, LC_BF16_DOT_FMA, LC_BF16_DOT_DPBF16};
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, lc_bf16_dot_name(all[i]))) return *out = all[i], 0;
    return LC_ERR_ARG;
}

void lc_attn_set_bf16_dot(lc_bf16_dot d) { g_bf16_dot = d; }
lc_bf16_dot lc_attn__bf16_dot_set(void) { return g_bf16_dot; }

/* $LONGCTX_ATTN_BF16_DOT: 0 or 1 forces; AUTO when unset. */
static lc_bf16_dot forced(void)
{
    const char *e = lc__env_str("LONGCTX_ATTN_BF16_DOT");
    return !e ? LC_BF16_DOT_AUTO : !strcmp(e, "1") ? LC_BF16_DOT_DPBF16 : LC_BF16_DOT_FMA;
}

lc_bf16_dot lc_attn_bf16_dot(void)
{
    if (!lc_attn_cpu_has_bf16()) return LC_BF16_DOT_FMA;
    lc_bf16_dot f = forced();
    if (f != LC_BF16_DOT_AUTO) return f;
    return g_bf16_dot == LC_BF16_DOT_DPBF16 ? LC_BF16_DOT_DPBF16 : LC_BF16_DOT_FMA;
}

lc_attn_impl lc_attn_impl_best(void)
{
    if (lc_attn_impl_supported(LC_ATTN_AVX512))
        return LC_ATTN_AVX512;
    if (lc_attn_impl_supported(LC_ATTN_AVX2))
        return LC_ATTN_AVX2;
    return LC_ATTN_SCALAR;
}

int lc_attn_resolve_impl(lc_attn_impl want, lc_attn_impl *out)
{
    if (want == LC_ATTN_AUTO) {
        const char *env = lc__env_str("LONGCTX_ATTN_IMPL");
        if (env && *env) {
            if (lc_attn_impl_parse(env, &want) != 0)
                return lc_attn_fail("LONGCTX_ATTN_IMPL='%s' is not one of auto, scalar, "
                                    "avx2, avx512", env);
        }
        if (want == LC_ATTN_AUTO)
            want = lc_attn_impl_best();
    }
    if ((int)want < 0 || (int)want > LC_ATTN_AVX512)
        return lc_attn_fail("impl %d is not a valid lc_attn_impl", (int)want);
    if (!lc_attn_impl_supported(want))
        return lc_attn_fail("impl %s is not supported by this CPU", lc_attn_impl_name(want));
    *out = want;
    return 0;
}

const lc_attn_ops *lc_attn_ops_for(lc_attn_impl impl, lc_dtype dt)
{
#ifdef LC_ATTN_HAVE_X86
    /* bf16 inputs are widened to fp32 once per call (K and V as packed tiles, Q as a copy)
     * and take the fp32 FMA kernels, unless the job chose the bf16 dot product
     * (lc_attn_bf16_dot): on the Xeon this was tuned on vdpbf16ps ran the 64x64x128 score
     * tile at half the FMA rate, on Zen 5 at 1.3-1.4x it, so it is measured, not assumed. */
    if (impl == LC_ATTN_AVX512)
        return dt == LC_DT_BF16 && lc_attn_bf16_dot() == LC_BF16_DOT_DPBF16
                   ? &lc_attn_ops_avx512bf16
                   : &lc_attn_ops_avx512;
    if (impl == LC_ATTN_AVX2)
        return &lc_attn_ops_avx2;
#endif
    (void)dt;
    return &lc_attn_ops_scalar;
}

float lc_attn_scale(const lc_attn_desc *a)
{
    return a->scale != 0.0f ? a->scale : 1.0f / sqrtf((float)a->d);
}

static int d_supported(int d) { return d >= 16 && d <= LC_ATTN_DMAX && d % 16 == 0; }

int lc_attn_check(const lc_attn_desc *a, char *err, size_t errlen)
{
    char buf[256];
    int bad = 1;
    if (!a)
        snprintf(buf, sizeof buf, "attention descriptor is NULL");
    else if (a->sq < 0)
        snprintf(buf, sizeof buf, "sq = %d must be >= 0", a->sq);
    else if (a->sk < 0)
        snprintf(buf, sizeof buf, "sk = %d must be >= 0", a->sk);
    else if (a->hq <= 0)
        snprintf(buf, sizeof buf, "hq = %d must be > 0", a->hq);
    else if (a->hkv <= 0)
        snprintf(buf, sizeof buf, "hkv = %d must be > 0", a->hkv);
    else if (a->hq % a->hkv != 0)
        snprintf(buf, sizeof buf, "hq = %d must be a multiple of hkv = %d", a->hq, a->hkv);
    else if (!d_supported(a->d))
        snprintf(buf, sizeof buf,
                 "head dim d = %d unsupported (a multiple of 16 in 16..%d, e.g. 64, 80, 96, "
                 "128, 256)", a->d, LC_ATTN_DMAX);
    else if (a->qkv_dtype != LC_DT_F32 && a->qkv_dtype != LC_DT_BF16)
        snprintf(buf, sizeof buf, "qkv_dtype = %d is not f32 or bf16", (int)a->qkv_dtype);
    else if (!isfinite(a->scale) || a->scale < 0.0f)
        snprintf(buf, sizeof buf, "scale = %g must be finite and > 0 (0: 1/sqrt(d))",
                 (double)a->scale);
    else if (a->mask.kind & ~(unsigned)(LC_MASK_CAUSAL | LC_MASK_WINDOW | LC_MASK_DOC))
        snprintf(buf, sizeof buf, "mask.kind = 0x%x has unknown bits", a->mask.kind);
    else if ((a->mask.kind & LC_MASK_WINDOW) && a->mask.window < 1)
        snprintf(buf, sizeof buf, "mask.window = %lld must be >= 1 with LC_MASK_WINDOW",
                 (long long)a->mask.window);
    else if ((a->mask.kind & LC_MASK_DOC) && a->sq > 0 && !a->mask.q_doc)
        snprintf(buf, sizeof buf, "mask.q_doc is NULL with LC_MASK_DOC");
    else if ((a->mask.kind & LC_MASK_DOC) && a->sk > 0 && !a->mask.k_doc)
        snprintf(buf, sizeof buf, "mask.k_doc is NULL with LC_MASK_DOC");
    else if ((int)a->impl < 0 || (int)a->impl > LC_ATTN_AVX512)
        snprintf(buf, sizeof buf, "impl = %d is not a valid lc_attn_impl", (int)a->impl);
    else if (a->impl != LC_ATTN_AUTO && !lc_attn_impl_supported(a->impl))
        snprintf(buf, sizeof buf, "impl = %s is not supported by this CPU",
                 lc_attn_impl_name(a->impl));
    else
        bad = 0;
    if (!bad)
        return 0;
    if (err && errlen)
        snprintf(err, errlen, "%s", buf);
    return lc_attn_fail("%s", buf);
}

int lc_attn_validate(const lc_attn_desc *a) { return lc_attn_check(a, NULL, 0); }

int lc_attn_allowed(const lc_mask *m, int32_t qp, int32_t kp, int32_t qd, int32_t kd)
{
    return m ? lc_mask_allowed(m->kind, m->window, qp, kp, qd, kd) : qp >= 0 && kp >= 0;
}

/* Without doc ids the document range is a dummy 0; it is read only under LC_MASK_DOC, which
 * always comes with them. */
void lc_attn_summarise(const int32_t *pos, const int32_t *doc, int r0, int r1, lc_tile_sum *s)
{
    lc_tile_sum_init(s, r1 - r0);
    for (int r = r0; r < r1; r++) lc_tile_sum_add(s, pos ? pos[r] : r, doc ? doc[r] : 0);
}

lc_block_class lc_attn_classify_sum(const lc_mask *m, const lc_tile_sum *q, const lc_tile_sum *k)
{
    return (lc_block_class)(m ? lc_tile_classify(m->kind, m->window, q, k) : lc_tile_classify(0, 0, q, k));
}

lc_block_class lc_attn_classify(const lc_mask *m, const int32_t *q_pos, int q0, int q1,
                                const int32_t *k_pos, int k0, int k1)
{
    lc_tile_sum qs, ks;
    int doc = m && (m->kind & LC_MASK_DOC);
    lc_attn_summarise(q_pos, doc ? m->q_doc : NULL, q0, q1, &qs);
    lc_attn_summarise(k_pos, doc ? m->k_doc : NULL, k0, k1, &ks);
    return lc_attn_classify_sum(m, &qs, &ks);
}

void lc_attn_fwd_init(const lc_attn_desc *a, float *o, float *lse)
{
    if (!a || a->sq <= 0 || a->hq <= 0 || a->d <= 0)
        return;
    size_t rows = (size_t)a->sq * (size_t)a->hq;
    if (o)
        memset(o, 0, rows * (size_t)a->d * sizeof(float));
    if (lse)
        for (size_t i = 0; i < rows; i++)
            lse[i] = -INFINITY;
}

int lc_attn_fwd_finish(const lc_attn_desc *a, const float *o, void *out, lc_dtype out_dtype)
{
    if (lc_attn_validate(a) != 0)
        return LC_ERR_ARG;
    if (out_dtype != LC_DT_F32 && out_dtype != LC_DT_BF16)
        return lc_attn_fail("out_dtype = %d is not f32 or bf16", (int)out_dtype);
    size_t n = (size_t)a->sq * (size_t)a->hq * (size_t)a->d;
    if (n == 0)
        return 0;
    if (!o)
        return lc_attn_fail("o (forward state) is NULL");
    if (!out)
        return lc_attn_fail("out is NULL");
    if (out_dtype == LC_DT_F32) {
        if (out != (const void *)o)
            memmove(out, o, n * sizeof(float));
    } else {
        lc_bf16 *ob = out;
        for (size_t i = 0; i < n; i++)
            ob[i] = lc_f32_to_bf16(o[i]);
    }
    return 0;
}

int lc_attn_fwd(const lc_attn_desc *a, const void *q, const void *k, const void *v, void *out,
                lc_dtype out_dtype, float *lse)
{
    if (lc_attn_validate(a) != 0)
        return LC_ERR_ARG;
    if (out_dtype != LC_DT_F32 && out_dtype != LC_DT_BF16)
        return lc_attn_fail("out_dtype = %d is not f32 or bf16", (int)out_dtype);
    size_t rows = (size_t)a->sq * (size_t)a->hq;
    if (rows == 0)
        return 0;
    if (!out)
        return lc_attn_fail("out is NULL");
    float *o = out_dtype == LC_DT_F32 ? out : malloc(rows * (size_t)a->d * sizeof(float));
    float *l = lse ? lse : malloc(rows * sizeof(float));
    int rc = LC_ERR_ARG;
    if (!o || !l) {
        lc_attn_fail("out of memory for the forward state");
        goto done;
    }
    lc_attn_fwd_init(a, o, l);
    rc = lc_attn_fwd_block(a, q, k, v, o, l);
    if (rc == 0)
        rc = lc_attn_fwd_finish(a, o, out, out_dtype);
done:
    if (o != out)
        free(o);
    if (l != lse)
        free(l);
    return rc;
}

int lc_attn_bwd_prep(const lc_attn_desc *a, const float *out, const void *dout, float *delta)
{
    if (lc_attn_validate(a) != 0)
        return LC_ERR_ARG;
    size_t rows = (size_t)a->sq * (size_t)a->hq;
    if (rows == 0)
        return 0;
    if (!out)
        return lc_attn_fail("out is NULL");
    if (!dout)
        return lc_attn_fail("dout is NULL");
    if (!delta)
        return lc_attn_fail("delta is NULL");
    int d = a->d;
    for (size_t r = 0; r < rows; r++) {
        const float *o = out + r * (size_t)d;
        float s = 0.0f;
        if (a->qkv_dtype == LC_DT_F32) {
            const float *g = (const float *)dout + r * (size_t)d;
            for (int j = 0; j < d; j++)
                s += g[j] * o[j];
        } else {
            const lc_bf16 *g = (const lc_bf16 *)dout + r * (size_t)d;
            for (int j = 0; j < d; j++)
                s += lc_bf16_to_f32(g[j]) * o[j];
        }
        delta[r] = s;
    }
    return 0;
}

/* ---- the CPU driver behind lc_attn_iface: the calls above, the stream ignored ---- */
static int cpu_init(const lc_attn_desc *a, float *o, float *lse, void *stream)
{
    (void)stream;
    lc_attn_fwd_init(a, o, lse);
    return 0;
}

static int cpu_block(const lc_attn_desc *a, const void *q, const void *k, const void *v, float *o,
                     float *lse, void *stream)
{
    (void)stream;
    return lc_attn_fwd_block(a, q, k, v, o, lse);
}

static int cpu_finish(const lc_attn_desc *a, const float *o, void *out, lc_dtype out_dtype, void *stream)
{
    (void)stream;
    return lc_attn_fwd_finish(a, o, out, out_dtype);
}

static int cpu_bwd_prep(const lc_attn_desc *a, const float *out, const void *dout, float *delta,
                        void *stream)
{
    (void)stream;
    return lc_attn_bwd_prep(a, out, dout, delta);
}

static int cpu_bwd_block(const lc_attn_desc *a, const void *q, const void *k, const void *v,
                         const void *dout, const float *lse, const float *delta, float *dq, float *dk,
                         float *dv, void *stream)
{
    (void)stream;
    return lc_attn_bwd_block(a, q, k, v, dout, lse, delta, dq, dk, dv);
}

const lc_attn_iface lc_attn_cpu = {
    .name = "cpu",
    .workspace_size = lc_attn_workspace_size,
    .init = cpu_init,
    .block = cpu_block,
    .finish = cpu_finish,
    .bwd_prep = cpu_bwd_prep,
    .bwd_block = cpu_bwd_block,
    .last_error = lc_attn_last_error,
};
