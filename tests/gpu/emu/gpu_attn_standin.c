/* CPU stand-in of the GPU attention entry points and device-memory helpers, linked with the
 * GPU tests' own source (test_gpu_attn.c) so that their call sequence runs on every machine:
 * the argument rules are the device build's (attn_check.h, the same code), "device" memory is
 * host memory poisoned with NaN bytes, and the block math is the CPU library's (fp32 inputs
 * widened from bf16/f16, float64-checked by the test itself). What this cannot check, the
 * kernels on the GPU, gpu_emu (the kernels' source on CPU threads) and gpu_attn check. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn_check.h"
#include "gpu_test_util.h"

static _Thread_local char g_err[512];

const char *lc_gpu_last_error(void) { return g_err; }

static int fail(int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return status;
}

const char *lc_gpu_attn_fwd_kernel(lc_dtype dtype, int d) {
    (void)dtype;
    (void)d;
    return "cpu-standin";
}

void gt_require_gpu(const char *test) {
    printf("%s: CPU stand-in of the device (argument rules and call sequence; no kernels)\n", test);
}
void *gt_dev_alloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 16);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    memset(p, 0xff, bytes); /* NaN in every float and 16-bit format: unwritten output fails */
    return p;
}
void gt_dev_free(void *p) { free(p); }
void gt_h2d(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
void gt_d2h(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
void gt_sync(void) {}

static int check_for(const lc_gpu_attn_desc *a, int uses, const char *fn) {
    const char *why = lcg_attn_invalid(a, uses);
    return why ? fail(LC_ERR_ARG, "%s: %s", fn, why) : LC_OK;
}

int lc_gpu_attn_check(const lc_gpu_attn_desc *a, char *err, size_t errlen) {
    const char *why = lcg_attn_invalid(a, LCG_USES_BLOCK);
    if (why && err && errlen) snprintf(err, errlen, "%s", why);
    return why ? fail(LC_ERR_ARG, "lc_gpu_attn: %s", why) : LC_OK;
}

static int aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

static float *widen(lc_dtype t, const void *x, size_t n) {
    const uint16_t *h = x;
    float *f = malloc(4 * (n ? n : 1));
    if (!f) exit(1);
    for (size_t i = 0; i < n; i++) f[i] = t == LC_DT_F16 ? gt_f16_to_f32(h[i]) : gt_bf16_to_f32(h[i]);
    return f;
}

static lc_attn_desc cpu_desc(const lc_gpu_attn_desc *a) {
    lc_attn_desc d;
    memset(&d, 0, sizeof d);
    d.sq = a->sq; d.sk = a->sk; d.hq = a->hq; d.hkv = a->hkv; d.d = a->d;
    d.qkv_dtype = LC_DT_F32; d.scale = a->scale; d.q_pos = a->q_pos; d.k_pos = a->k_pos;
    d.mask = a->mask; d.threads = 1;
    return d;
}

static int cpu_rc(int rc, const char *fn) {
    return rc ? fail(rc, "%s: CPU block kernel: %s", fn, lc_attn_last_error()) : LC_OK;
}

int lc_gpu_attn_fwd_init(const lc_gpu_attn_desc *a, float *o, float *lse, lc_gpu_stream s) {
    (void)s;
    int rc = check_for(a, LCG_USES_STATE, "lc_gpu_attn_fwd_init");
    if (rc) return rc;
    lc_attn_desc d = cpu_desc(a);
    d.sk = 0; d.k_pos = NULL; d.mask.k_doc = NULL; /* init must not depend on the K side */
    lc_attn_fwd_init(&d, o, lse);
    return LC_OK;
}

int lc_gpu_attn_fwd_block(const lc_gpu_attn_desc *a, const void *q, const void *k, const void *v,
                          float *o, float *lse, lc_gpu_stream s) {
    (void)s;
    int rc = check_for(a, LCG_USES_BLOCK, "lc_gpu_attn_fwd_block");
    if (rc) return rc;
    if (a->sq == 0 || a->sk == 0) return LC_OK;
    if (!aligned16(q) || !aligned16(k) || !aligned16(v) || !aligned16(o))
        return fail(LC_ERR_ARG, "lc_gpu_attn_fwd_block: q, k, v and o must be 16-byte aligned");
    const size_t nq = (size_t)a->sq * a->hq * a->d, nk = (size_t)a->sk * a->hkv * a->d;
    float *fq = widen(a->dtype, q, nq), *fk = widen(a->dtype, k, nk), *fv = widen(a->dtype, v, nk);
    lc_attn_desc d = cpu_desc(a);
    rc = cpu_rc(lc_attn_fwd_block(&d, fq, fk, fv, o, lse), "lc_gpu_attn_fwd_block");
    free(fq); free(fk); free(fv);
    return rc;
}

int lc_gpu_attn_fwd_finish(const lc_gpu_attn_desc *a, const float *o, void *out, lc_dtype out_dtype,
                           lc_gpu_stream s) {
    (void)s;
    int rc = check_for(a, LCG_USES_STATE, "lc_gpu_attn_fwd_finish");
    if (rc) return rc;
    const size_t n = (size_t)a->sq * a->hq * a->d;
    uint16_t bits;
    for (size_t i = 0; i < n; i++) {
        if (out_dtype == LC_DT_F32) ((float *)out)[i] = o[i];
        else if (out_dtype == LC_DT_BF16 || out_dtype == LC_DT_F16) {
            gt_round(out_dtype, o[i], &bits);
            ((uint16_t *)out)[i] = bits;
        } else
            return fail(LC_ERR_ARG, "lc_gpu_attn_fwd_finish: bad out dtype");
    }
    return LC_OK;
}

int lc_gpu_attn_bwd_prep(const lc_gpu_attn_desc *a, const float *o, const void *dout, float *delta,
                         lc_gpu_stream s) {
    (void)s;
    int rc = check_for(a, LCG_USES_STATE, "lc_gpu_attn_bwd_prep");
    if (rc) return rc;
    const size_t nq = (size_t)a->sq * a->hq * a->d;
    float *fdo = widen(a->dtype, dout, nq);
    lc_attn_desc d = cpu_desc(a);
    d.sk = 0; d.k_pos = NULL; d.mask.kind = 0; d.mask.q_doc = d.mask.k_doc = NULL; /* prep reads no mask */
    rc = cpu_rc(lc_attn_bwd_prep(&d, o, fdo, delta), "lc_gpu_attn_bwd_prep");
    free(fdo);
    return rc;
}

int lc_gpu_attn_bwd_block(const lc_gpu_attn_desc *a, const void *q, const void *k, const void *v,
                          const void *dout, const float *lse, const float *delta, float *dq, float *dk,
                          float *dv, lc_gpu_stream s) {
    (void)s;
    int rc = check_for(a, LCG_USES_BLOCK, "lc_gpu_attn_bwd_block");
    if (rc) return rc;
    if (a->sq == 0 || a->sk == 0) return LC_OK;
    if (!aligned16(q) || !aligned16(k) || !aligned16(v) || !aligned16(dout) || !aligned16(dk) || !aligned16(dv))
        return fail(LC_ERR_ARG, "lc_gpu_attn_bwd_block: tensors must be 16-byte aligned");
    const size_t nq = (size_t)a->sq * a->hq * a->d, nk = (size_t)a->sk * a->hkv * a->d;
    float *fq = widen(a->dtype, q, nq), *fk = widen(a->dtype, k, nk), *fv = widen(a->dtype, v, nk),
          *fdo = widen(a->dtype, dout, nq);
    lc_attn_desc d = cpu_desc(a);
    rc = cpu_rc(lc_attn_bwd_block(&d, fq, fk, fv, fdo, lse, delta, dq, dk, dv), "lc_gpu_attn_bwd_block");
    free(fq); free(fk); free(fv); free(fdo);
    return rc;
}
