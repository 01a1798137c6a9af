/* The element-wise layers of the decoder, forward and backward (no autograd). */
#include <math.h>
#include <string.h>

#include "model/internal.h"

void lc_model__embed_fwd(const float *emb, const int32_t *tok, int rows, int dim, float *out)
{
    for (int i = 0; i < rows; i++)
        memcpy(out + (size_t)i * dim, emb + (size_t)tok[i] * dim, sizeof(float) * dim);
}

void lc_model__embed_bwd(float *demb, const int32_t *tok, int rows, int dim, const float *dout)
{
    for (int i = 0; i < rows; i++) {
        float *g = demb + (size_t)tok[i] * dim;
        const float *d = dout + (size_t)i * dim;
        for (int j = 0; j < dim; j++) g[j] += d[j];
    }
}

void lc_model__rmsnorm_fwd(const float *x, const float *w, int rows, int dim, float eps,
                           float *out, float *rstd)
{
    for (int i = 0; i < rows; i++) {
        const float *xi = x + (size_t)i * dim;
        float *oi = out + (size_t)i * dim;
        float ss = 0.0f;
        for (int j = 0; j < dim; j++) ss += xi[j] * xi[j];
        float r = 1.0f / sqrtf(ss / dim + eps);
        rstd[i] = r;
        for (int j = 0; j < dim; j++) oi[j] = w[j] * (xi[j] * r);
    }
}

/* y = w * x * r, r = (mean(x^2)+eps)^-1/2:
 * dx = r * (w*dy) - x * r^3 / dim * sum(w*dy*x);  dw += dy * x * r */
void lc_model__rmsnorm_bwd(const float *x, const float *w, const float *rstd, const float *dout,
                           int rows, int dim, int accumulate, float *dx, float *dw)
{
    for (int i = 0; i < rows; i++) {
        const float *xi = x + (size_t)i * dim, *di = dout + (size_t)i * dim;
        float *gi = dx + (size_t)i * dim;
        float r = rstd[i], dot = 0.0f;
        for (int j = 0; j < dim; j++) {
            dot += w[j] * di[j] * xi[j];
            dw[j] += di[j] * xi[j] * r;
        }
        float c = dot * r * r * r / dim;
        if (accumulate)
            for (int j = 0; j < dim; j++) gi[j] += r * w[j] * di[j] - c * xi[j];
        else
            for (int j = 0; j < dim; j++) gi[j] = r * w[j] * di[j] - c * xi[j];
    }
}

void lc_model__rope_table(const int32_t *pos, int rows, int hd, float theta, float *cos_t,
                          float *sin_t)
{
    int half = hd / 2;
    for (int j = 0; j < half; j++) {
        /* transformers: inv_freq = 1 / theta ** (arange(0, hd, 2).float() / hd), in fp32 */
        float inv = 1.0f / powf(theta, (float)(2 * j) / (float)hd);
        for (int i = 0; i < rows; i++) {
            float ang = (float)(pos[i] < 0 ? 0 : pos[i]) * inv;
            cos_t[(size_t)i * half + j] = (float)cos((double)ang);
            sin_t[(size_t)i * half + j] = (float)sin((double)ang);
        }
    }
}

/* rotate_half: (a, b) -> (a cos - b sin, b cos + a sin) for a = x[:half], b = x[half:]. */
void lc_model__rope_apply(float *x, int rows, int heads, int hd, const float *cos_t,
                          const float *sin_t, int inverse)
{
    int half = hd / 2;
    for (int i = 0; i < rows; i++) {
        const float *c = cos_t + (size_t)i * half, *s = sin_t + (size_t)i * half;
        for (int h = 0; h < heads; h++) {
            float *a = x + ((size_t)i * heads + h) * hd, *b = a + half;
            if (!inverse) {
                for (int j = 0; j < half; j++) {
                    float aj = a[j], bj = b[j];
                    a[j] = aj * c[j] - bj * s[j];
                    b[j] = bj * c[j] + aj * s[j];
                }
            } else {
                for (int j = 0; j < half; j++) {
                    float aj = a[j], bj = b[j];
                    a[j] = aj * c[j] + bj * s[j];
                    b[j] = bj * c[j] - aj * s[j];
                }
            }
        }
    }
}

void lc_model__swiglu_fwd(const float *h, int rows, int ffn, float *act)
{
    for (int i = 0; i < rows; i++) {
        const float *g = h + (size_t)i * 2 * ffn, *u = g + ffn;
        float *a = act + (size_t)i * ffn;
        for (int j = 0; j < ffn; j++) { /* the backward's expression, so both give the same act */
            float sg = 1.0f / (1.0f + expf(-g[j]));
            float silu = g[j] * sg;
            a[j] = silu * u[j];
        }
    }
}

/* silu(g) = g s, s = sigmoid(g); d silu/dg = s (1 + g (1 - s)). One pass gives the backward
 * and the forward's act (the down projection's dW needs it), so backward takes one exp per
 * element instead of two. dact arrives in dh's up half and is read before it is replaced. */
void lc_model__swiglu_bwd(const float *h, float *dh, float *act, int rows, int ffn)
{
    for (int i = 0; i < rows; i++) {
        const float *g = h + (size_t)i * 2 * ffn, *u = g + ffn;
        float *dg = dh + (size_t)i * 2 * ffn, *du = dg + ffn, *a = act + (size_t)i * ffn;
        for (int j = 0; j < ffn; j++) {
            float s = 1.0f / (1.0f + expf(-g[j]));
            float silu = g[j] * s, da = du[j];
            a[j] = silu * u[j];
            du[j] = da * silu;
            dg[j] = da * u[j] * s * (1.0f + g[j] * (1.0f - s));
        }
    }
}

double lc_model__ce_fwd_bwd(float *logits, const int32_t *targets, int rows, int vocab,
                            int grad, float dscale)
{
    double loss = 0.0;
    for (int i = 0; i < rows; i++) {
        float *l = logits + (size_t)i * vocab;
        int t = targets[i];
        if (t < 0) {
            if (grad) memset(l, 0, sizeof(float) * vocab);
            continue;
        }
        float mx = l[0];
        for (int j = 1; j < vocab; j++) mx = l[j] > mx ? l[j] : mx;
        double sum = 0.0;
        for (int j = 0; j < vocab; j++) sum += exp((double)(l[j] - mx));
        double lse = mx + log(sum);
        loss += lse - l[t];
        if (grad) {
            for (int j = 0; j < vocab; j++) l[j] = dscale * (float)exp((double)l[j] - lse);
            l[t] -= dscale;
        }
    }
    return loss;
}
