/* A float64 reference of the whole model (the test oracle), written straight from the
 * transformers LlamaForCausalLM definition: no chunking, no CP, no fused buffers. It reads
 * the parameters through the model's tensor table (by Hugging Face name). */
#ifndef LONGCTX_TEST_REF_MODEL_H
#define LONGCTX_TEST_REF_MODEL_H
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "longctx/model.h"

static const double *ref_tensor(const lc_model *m, const double *p, const char *name)
{
    int i = lc_model_find_tensor(m, name);
    if (i < 0) {
        fprintf(stderr, "ref model: no tensor %s\n", name);
        exit(1);
    }
    return p + lc_model_tensor_at(m, i)->offset;
}

/* y[rows, out] = x[rows, in] W^T, W [out, in] */
static void ref_linear(const double *x, const double *w, int rows, int in, int out, double *y)
{
    for (int i = 0; i < rows; i++)
        for (int o = 0; o < out; o++) {
            double s = 0;
            for (int k = 0; k < in; k++) s += x[(size_t)i * in + k] * w[(size_t)o * in + k];
            y[(size_t)i * out + o] = s;
        }
}

static void ref_rms(const double *x, const double *w, int rows, int dim, double eps, double *y)
{
    for (int i = 0; i < rows; i++) {
        double ss = 0;
        for (int j = 0; j < dim; j++) ss += x[(size_t)i * dim + j] * x[(size_t)i * dim + j];
        double r = 1.0 / sqrt(ss / dim + eps);
        for (int j = 0; j < dim; j++) y[(size_t)i * dim + j] = w[j] * (x[(size_t)i * dim + j] * r);
    }
}

/* transformers apply_rotary_pos_emb at positions 0..S-1 (angles in fp32 like its rotary
 * embedding computes them) */
static void ref_rope(double *x, int S, int heads, int hd, float theta)
{
    int half = hd / 2;
    double *tmp = malloc(sizeof(double) * hd);
    for (int i = 0; i < S; i++)
        for (int h = 0; h < heads; h++) {
            double *v = x + ((size_t)i * heads + h) * hd;
            for (int j = 0; j < hd; j++) {
                int jj = j % half;
                float inv = 1.0f / powf(theta, (float)(2 * jj) / (float)hd);
                double ang = (double)((float)i * inv);
                double rot = j < half ? -v[j + half] : v[j - half];
                tmp[j] = v[j] * cos(ang) + rot * sin(ang);
            }
            memcpy(v, tmp, sizeof(double) * hd);
        }
    free(tmp);
}

/* Mean CE over targets >= 0 of the whole sequence (doc: ids or NULL). */
static double ref_loss(const lc_model *m, const double *p, int S, const int32_t *tok,
                       const int32_t *tgt, const int32_t *doc)
{
    const lc_model_config *c = lc_model_get_config(m);
    int D = c->dim, hd = D / c->n_heads, kvd = hd * c->n_kv_heads, F = c->ffn_dim, V = c->vocab;
    size_t SD = (size_t)S * D;
    double *x = malloc(sizeof(double) * SD), *ln = malloc(sizeof(double) * SD),
           *q = malloc(sizeof(double) * SD), *k = malloc(sizeof(double) * S * kvd),
           *v = malloc(sizeof(double) * S * kvd), *o = malloc(sizeof(double) * SD),
           *lse = malloc(sizeof(double) * S * c->n_heads), *y = malloc(sizeof(double) * SD),
           *g = malloc(sizeof(double) * S * F), *u = malloc(sizeof(double) * S * F),
           *lg = malloc(sizeof(double) * V);
    const double *emb = ref_tensor(m, p, "model.embed_tokens.weight");
    for (int i = 0; i < S; i++) memcpy(x + (size_t)i * D, emb + (size_t)tok[i] * D, sizeof(double) * D);
    char nm[128];
#define T(fmt) (snprintf(nm, sizeof nm, "model.layers.%d." fmt, l), ref_tensor(m, p, nm))
    for (int l = 0; l < c->n_layers; l++) {
        ref_rms(x, T("input_layernorm.weight"), S, D, c->norm_eps, ln);
        ref_linear(ln, T("self_attn.q_proj.weight"), S, D, D, q);
        ref_linear(ln, T("self_attn.k_proj.weight"), S, D, kvd, k);
        ref_linear(ln, T("self_attn.v_proj.weight"), S, D, kvd, v);
        ref_rope(q, S, c->n_heads, hd, c->rope_theta);
        ref_rope(k, S, c->n_kv_heads, hd, c->rope_theta);
        lc_attn_desc a = {.sq = S, .sk = S, .hq = c->n_heads, .hkv = c->n_kv_heads, .d = hd,
                          .qkv_dtype = LC_DT_F32,
                          .mask = {.kind = LC_MASK_CAUSAL | (doc ? LC_MASK_DOC : 0), .q_doc = doc,
                                   .k_doc = doc}};
        lc_attn_ref_fwd(&a, q, k, v, o, lse);
        ref_linear(o, T("self_attn.o_proj.weight"), S, D, D, y);
        for (size_t i = 0; i < SD; i++) x[i] += y[i];
        ref_rms(x, T("post_attention_layernorm.weight"), S, D, c->norm_eps, ln);
        ref_linear(ln, T("mlp.gate_proj.weight"), S, D, F, g);
        ref_linear(ln, T("mlp.up_proj.weight"), S, D, F, u);
        for (size_t i = 0; i < (size_t)S * F; i++) g[i] = g[i] / (1 + exp(-g[i])) * u[i];
        ref_linear(g, T("mlp.down_proj.weight"), S, F, D, y);
        for (size_t i = 0; i < SD; i++) x[i] += y[i];
    }
#undef T
    ref_rms(x, ref_tensor(m, p, "model.norm.weight"), S, D, c->norm_eps, ln);
    const double *lm = ref_tensor(m, p, "lm_head.weight");
    double sum = 0;
    int n = 0;
    for (int i = 0; i < S; i++) {
        if (tgt[i] < 0) continue;
        ref_linear(ln + (size_t)i * D, lm, 1, D, V, lg);
        double mx = lg[0], s = 0;
        for (int j = 1; j < V; j++) mx = fmax(mx, lg[j]);
        for (int j = 0; j < V; j++) s += exp(lg[j] - mx);
        sum += mx + log(s) - lg[tgt[i]];
        n++;
    }
    free(x), free(ln), free(q), free(k), free(v), free(o), free(lse), free(y), free(g), free(u);
    free(lg);
    return n ? sum / n : 0.0;
}
#endif
