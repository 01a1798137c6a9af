/* One training step: forward through every layer, chunked LM head + cross-entropy, and the
 * backward layer by layer (explicit, no autograd). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model/internal.h"

/* BLAS calls are timed one by one: they are the matmul share of the step. */
#define MM(m, call)                                  \
    do {                                             \
        double t0_ = lc_model__now();                \
        call;                                        \
        (m)->t.matmul_s += lc_model__now() - t0_;    \
    } while (0)

static int step_err(lc_model *m, int rc, int abort_world, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->err, sizeof m->err, fmt, ap);
    va_end(ap);
    /* peers are (or will be) inside collectives of this step: take them down with the reason */
    if (abort_world && m->P > 1) lc_world_abort(m->w, m->err);
    return rc;
}

static const float *W(const lc_model *m, size_t off)
{
    return (m->wround ? m->wround : m->params) + off;
}

static int is_bf16(const lc_model *m) { return m->run.compute == LC_DT_BF16; }

static void maybe_round(const lc_model *m, float *x, size_t n)
{
    if (is_bf16(m)) lc_model__round_bf16(x, n);
}

/* Layer l forward from acts[l].x; writes out (the next layer's input) when out != NULL. */
static int layer_fwd(lc_model *m, int l, float *out)
{
    const lc_model_config *c = &m->cfg;
    const lc_model__layer_off *o = &m->lo[l];
    lc_model__acts *a = &m->acts[l];
    int R = m->rows, D = c->dim, qkvd = m->qdim + 2 * m->kvdim, F = c->ffn_dim;
    size_t nq = (size_t)R * m->qdim, nkv = (size_t)R * m->kvdim;

    lc_model__rmsnorm_fwd(a->x, m->params + o->ln1, R, D, c->norm_eps, a->ln1, a->rstd1);
    maybe_round(m, a->ln1, (size_t)R * D);
    MM(m, lc_model__linear_fwd(a->ln1, W(m, o->wqkv), R, D, qkvd, m->qkv, 0));
    /* split [q|k|v] rows into the attention layout; RoPE on q and k */
    float *q = is_bf16(m) ? m->f_att : a->q, *k = is_bf16(m) ? m->dk : a->k,
          *v = is_bf16(m) ? m->dv : a->v;
    for (int i = 0; i < R; i++) {
        const float *src = m->qkv + (size_t)i * qkvd;
        memcpy(q + (size_t)i * m->qdim, src, sizeof(float) * m->qdim);
        memcpy(k + (size_t)i * m->kvdim, src + m->qdim, sizeof(float) * m->kvdim);
        memcpy(v + (size_t)i * m->kvdim, src + m->qdim + m->kvdim, sizeof(float) * m->kvdim);
    }
    lc_model__rope_apply(q, R, c->n_heads, m->hd, m->cos_t, m->sin_t, 0);
    lc_model__rope_apply(k, R, c->n_kv_heads, m->hd, m->cos_t, m->sin_t, 0);
    if (is_bf16(m)) {
        lc_model__to_bf16(q, nq, a->q);
        lc_model__to_bf16(k, nkv, a->k);
        lc_model__to_bf16(v, nkv, a->v);
    }
    int rc = lc_cp_forward(m->cp, a->q, a->k, a->v, m->run.doc_mask ? m->doc : NULL, a->att,
                           a->lse);
    if (rc) return step_err(m, rc, 1, "layer %d attention forward: %s", l, lc_cp_last_error(m->cp));
    const float *att = a->att;
    if (is_bf16(m)) {
        lc_model__from_bf16(a->att, nq, m->f_att);
        att = m->f_att;
    }
    memcpy(a->xmid, a->x, sizeof(float) * R * D);
    MM(m, lc_model__linear_fwd(att, W(m, o->wo), R, m->qdim, D, a->xmid, 1));
    lc_model__rmsnorm_fwd(a->xmid, m->params + o->ln2, R, D, c->norm_eps, a->ln2, a->rstd2);
    maybe_round(m, a->ln2, (size_t)R * D);
    MM(m, lc_model__linear_fwd(a->ln2, W(m, o->wgu), R, D, 2 * F, a->h, 0));
    if (out) {
        lc_model__swiglu_fwd(a->h, R, F, m->act);
        maybe_round(m, m->act, (size_t)R * F);
        memcpy(out, a->xmid, sizeof(float) * R * D);
        MM(m, lc_model__linear_fwd(m->act, W(m, o->wdown), R, F, D, out, 1));
    }
    return LC_OK;
}

/* Layer l backward: m->dres holds d(output) on entry and d(input) on return. */
static int layer_bwd(lc_model *m, int l)
{
    const lc_model_config *c = &m->cfg;
    const lc_model__layer_off *o = &m->lo[l];
    lc_model__acts *a = &m->acts[l];
    int R = m->rows, D = c->dim, qkvd = m->qdim + 2 * m->kvdim, F = c->ffn_dim;
    size_t nq = (size_t)R * m->qdim;
    float *g = m->grads;

    /* MLP: out = xmid + act Wdown^T; dact lands in dh's up half, the SwiGLU backward
     * also rebuilds act for dWdown */
    MM(m, lc_model__linear_bwd_dx_ld(m->dres, W(m, o->wdown), R, F, D, m->dh + F, 2 * F));
    lc_model__swiglu_bwd(a->h, m->dh, m->act, R, F);
    maybe_round(m, m->act, (size_t)R * F);
    MM(m, lc_model__linear_bwd_dw(m->dres, m->act, R, F, D, g + o->wdown));
    MM(m, lc_model__linear_bwd_dw(m->dh, a->ln2, R, D, 2 * F, g + o->wgu));
    MM(m, lc_model__linear_bwd_dx(m->dh, W(m, o->wgu), R, D, 2 * F, m->dtmp, 0));
    lc_model__rmsnorm_bwd(a->xmid, m->params + o->ln2, a->rstd2, m->dtmp, R, D, 1, m->dres,
                          g + o->ln2);

    /* attention: xmid = x + att Wo^T */
    const float *att = a->att;
    if (is_bf16(m)) {
        lc_model__from_bf16(a->att, nq, m->f_att);
        att = m->f_att;
    }
    MM(m, lc_model__linear_bwd_dw(m->dres, att, R, m->qdim, D, g + o->wo));
    MM(m, lc_model__linear_bwd_dx(m->dres, W(m, o->wo), R, m->qdim, D, m->f_att, 0));
    void *datt = m->f_att;
    if (is_bf16(m)) {
        lc_model__to_bf16(m->f_att, nq, m->datt);
        datt = m->datt;
    }
    int rc = lc_cp_backward(m->cp, a->q, a->k, a->v, m->run.doc_mask ? m->doc : NULL, a->att,
                            a->lse, datt, m->dq, m->dk, m->dv);
    if (rc)
        return step_err(m, rc, 1, "layer %d attention backward: %s", l, lc_cp_last_error(m->cp));
    lc_model__rope_apply(m->dq, R, c->n_heads, m->hd, m->cos_t, m->sin_t, 1);
    lc_model__rope_apply(m->dk, R, c->n_kv_heads, m->hd, m->cos_t, m->sin_t, 1);
    for (int i = 0; i < R; i++) {
        float *dst = m->qkv + (size_t)i * qkvd;
        memcpy(dst, m->dq + (size_t)i * m->qdim, sizeof(float) * m->qdim);
        memcpy(dst + m->qdim, m->dk + (size_t)i * m->kvdim, sizeof(float) * m->kvdim);
        memcpy(dst + m->qdim + m->kvdim, m->dv + (size_t)i * m->kvdim, sizeof(float) * m->kvdim);
    }
    MM(m, lc_model__linear_bwd_dw(m->qkv, a->ln1, R, D, qkvd, g + o->wqkv));
    MM(m, lc_model__linear_bwd_dx(m->qkv, W(m, o->wqkv), R, D, qkvd, m->dtmp, 0));
    lc_model__rmsnorm_bwd(a->x, m->params + o->ln1, a->rstd1, m->dtmp, R, D, 1, m->dres,
                          g + o->ln1);
    return LC_OK;
}

/* Final norm, LM head and CE in row chunks (the [rows, vocab] logits never exist whole).
 * With backward, dres gets d(last layer output). Returns this PE's CE sum. */
static double head(lc_model *m, float dscale, int backward)
{
    const lc_model_config *c = &m->cfg;
    int R = m->rows, D = c->dim, V = c->vocab;
    lc_model__rmsnorm_fwd(m->xlast, m->params + m->norm_off, R, D, c->norm_eps, m->xf, m->rstdf);
    maybe_round(m, m->xf, (size_t)R * D);
    double sum = 0.0;
    for (int r0 = 0; r0 < R; r0 += m->chunk) {
        int n = R - r0 < m->chunk ? R - r0 : m->chunk;
        const float *x = m->xf + (size_t)r0 * D;
        MM(m, lc_model__linear_fwd(x, W(m, m->lm_off), n, D, V, m->logits, 0));
        if (m->logits_out) memcpy(m->logits_out + (size_t)r0 * V, m->logits, sizeof(float) * (size_t)n * V);
        sum += lc_model__ce_fwd_bwd(m->logits, m->tgt + r0, n, V, backward, dscale);
        if (backward) {
            MM(m, lc_model__linear_bwd_dw(m->logits, x, n, D, V, m->grads + m->lm_off));
            MM(m, lc_model__linear_bwd_dx(m->logits, W(m, m->lm_off), n, D, V,
                                          m->dtmp + (size_t)r0 * D, 0));
        }
    }
    if (backward)
        lc_model__rmsnorm_bwd(m->xlast, m->params + m->norm_off, m->rstdf, m->dtmp, R, D, 0,
                              m->dres, m->grads + m->norm_off);
    return sum;
}

static int run_step(lc_model *m, const int32_t *tokens, const int32_t *targets,
                    const int32_t *doc, float grad_scale, float *loss, int backward)
{
    double t_start = lc_model__now();
    lc_cp_stats st0;
    lc_cp_get_stats(m->cp, &st0);
    if (!tokens || !targets || !loss)
        return step_err(m, LC_ERR_ARG, 1, "model step: tokens, targets and loss must be non-NULL");
    if (m->run.doc_mask && !doc)
        return step_err(m, LC_ERR_ARG, 1, "model step: run.doc_mask is set but doc is NULL");
    if (!isfinite(grad_scale))
        return step_err(m, LC_ERR_ARG, 1, "model step: grad_scale = %g is not finite",
                        (double)grad_scale);
    const lc_model_config *c = &m->cfg;
    int64_t S = m->run.seq_len, n_real = 0;
    for (int64_t i = 0; i < S; i++) {
        if (tokens[i] < 0 || tokens[i] >= c->vocab)
            return step_err(m, LC_ERR_ARG, 1, "model step: tokens[%lld] = %d is outside [0, vocab = %d)",
                            (long long)i, tokens[i], c->vocab);
        if (targets[i] < -1 || targets[i] >= c->vocab)
            return step_err(m, LC_ERR_ARG, 1,
                            "model step: targets[%lld] = %d is outside [-1, vocab = %d)",
                            (long long)i, targets[i], c->vocab);
        n_real += targets[i] >= 0;
    }
    /* the BLAS thread count is per process: models with different counts may share one */
    lc_model__blas_threads(m->run.threads);
    lc_cp_shard(m->cp, m->me, tokens, sizeof(int32_t), m->tok);
    lc_cp_shard(m->cp, m->me, targets, sizeof(int32_t), m->tgt);
    if (m->run.doc_mask) lc_cp_shard(m->cp, m->me, doc, sizeof(int32_t), m->doc);
    if (m->wround) {
        memcpy(m->wround, m->params, sizeof(float) * m->n_params);
        lc_model__round_bf16(m->wround, m->n_params);
    }

    int L = c->n_layers, rc;
    lc_model__embed_fwd(m->params + m->emb_off, m->tok, m->rows, c->dim, m->acts[0].x);
    for (int l = 0; l < L; l++)
        if ((rc = layer_fwd(m, l, l + 1 < L ? m->acts[l + 1].x : m->xlast))) return rc;
    float dscale = n_real ? grad_scale / (float)n_real : 0.0f;
    double part = head(m, dscale, backward), tot = 0.0;
    rc = lc_allreduce_sum_f64(m->run.cp_team, &tot, &part, 1);
    if (rc) return step_err(m, rc, 1, "model step: loss all-reduce: %s", lc_last_error(m->w));
    *loss = n_real ? (float)(tot / (double)n_real) : 0.0f;
    if (backward) {
        for (int l = L - 1; l >= 0; l--) {
            if (m->run.recompute && (rc = layer_fwd(m, l, NULL))) return rc;
            if ((rc = layer_bwd(m, l))) return rc;
        }
        lc_model__embed_bwd(m->grads + m->emb_off, m->tok, m->rows, c->dim, m->dres);
    }
    lc_cp_stats st1;
    lc_cp_get_stats(m->cp, &st1);
    m->t.attn_s += st1.compute_wall_s - st0.compute_wall_s;
    m->t.comm_s += st1.comm_wall_s - st0.comm_wall_s;
    m->t.total_s += lc_model__now() - t_start;
    m->t.steps++;
    return LC_OK;
}

int lc_model_forward_backward(lc_model *m, const int32_t *tokens, const int32_t *targets,
                              const int32_t *doc, float grad_scale, float *loss)
{
    return run_step(m, tokens, targets, doc, grad_scale, loss, 1);
}

int lc_model_forward(lc_model *m, const int32_t *tokens, const int32_t *targets,
                     const int32_t *doc, float *loss)
{
    return run_step(m, tokens, targets, doc, 0.0f, loss, 0);
}

int lc_model_forward_logits(lc_model *m, const int32_t *tokens, const int32_t *targets,
                            const int32_t *doc, float *loss, float *logits)
{
    if (!logits) return step_err(m, LC_ERR_ARG, 1, "model forward_logits: logits must be non-NULL");
    m->logits_out = logits;
    int rc = run_step(m, tokens, targets, doc, 0.0f, loss, 0);
    m->logits_out = NULL;
    return rc;
}

void lc_model_get_times(const lc_model *m, lc_model_times *t)
{
    *t = m->t;
    t->other_s = t->total_s - t->matmul_s - t->attn_s - t->comm_s;
    if (t->other_s < 0) t->other_s = 0;
}

void lc_model_reset_times(lc_model *m) { memset(&m->t, 0, sizeof m->t); }

void lc_model__set_loss_chunk(lc_model *m, int rows)
{
    int max = m->chunk_alloc;
    m->chunk = rows < 1 ? 1 : rows > max ? max : rows;
}
