/* Linear layers through OpenBLAS (Debian's libopenblas, cblas_sgemm).
 *
 * bf16 compute: Debian's OpenBLAS 0.3.21 is built without BUILD_BFLOAT16 (no cblas_sbgemm
 * symbol), so the bf16 path rounds the operands to bf16 values and multiplies them with
 * sgemm: the same products as a bf16 GEMM with fp32 accumulation, at fp32 speed. */
#include <string.h>

#include LONGCTX_CBLAS_HEADER

#include "longctx/attn.h"
#include "model/internal.h"

void lc_model__blas_threads(int n) { openblas_set_num_threads(n < 1 ? 1 : n); }

const char *lc_model_bf16_gemm_name(void) { return "sgemm-rounded"; }

void lc_model__linear_fwd(const float *x, const float *w, int rows, int in, int out, float *y,
                          int accumulate)
{
    if (rows <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, in, 1.0f, x, in, w, in,
                accumulate ? 1.0f : 0.0f, y, out);
}

void lc_model__linear_bwd_dx(const float *dy, const float *w, int rows, int in, int out,
                             float *dx, int accumulate)
{
    if (rows <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, in, out, 1.0f, dy, out, w, in,
                accumulate ? 1.0f : 0.0f, dx, in);
}

void lc_model__linear_bwd_dw(const float *dy, const float *x, int rows, int in, int out,
                             float *dw)
{
    if (rows <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, rows, 1.0f, dy, out, x, in,
                1.0f, dw, in);
}

void lc_model__round_bf16(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = lc_bf16_to_f32(lc_f32_to_bf16(x[i]));
}

void lc_model__to_bf16(const float *x, size_t n, uint16_t *out)
{
    for (size_t i = 0; i < n; i++) out[i] = lc_f32_to_bf16(x[i]);
}

void lc_model__from_bf16(const uint16_t *x, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++) out[i] = lc_bf16_to_f32(x[i]);
}
