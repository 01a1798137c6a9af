/* One training step: forward through every layer, chunked LM head + cross-entropy, and the
 * backward layer by layer (explicit, no autograd). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model/device.h"
#include "model/internal.h"

/* Every data op goes through the model's device (device.h): the host's CPU layers, or a
 * GPU's kernels on its stream. DV runs one and returns the step's error naming the op. */
#define DV(m, fn, ...)                                                     \
    do {                                                                   \
        int rc_ = (m)->dev->ops->fn((m)->dev->ctx, __VA_ARGS__);           \
        if (rc_) return dev_fail(m, rc_, #fn);                             \
    } while (0)

/* GEMMs are timed one by one: they are the matmul share of the step (on a GPU the launch
 * only: its timings come from the step's end). */
#define MM(m, fn, ...)                                                     \
    do {                                                                   \
        double t0_ = lc_model__now();                                      \
        lc_model__gemm_use((m)->g16);                                      \
        int rc_ = (m)->dev->ops->fn((m)->dev->ctx, __VA_ARGS__, is_bf16(m)); \
        lc_model__gemm_use(NULL);                                          \
        (m)->t.matmul_s += lc_model__now() - t0_;                          \
        if (rc_) return dev_fail(m, rc_, #fn);                             \
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

static int dev_fail(lc_model *m, int rc, const char *op)
{
    return step_err(m, rc, 1, "model step: %s on the %s device: %s", op, m->dev->ops->name,
                    m->dev->ops->err(m->dev->ctx));
}

static const float *W(const lc_model *m, size_t off)
{
    return (m->wbase ? m->wbase : m->params) + off;
}

static int is_bf16(const lc_model *m) { return m->run.compute == LC_DT_BF16; }

static int maybe_round(lc_model *m, float *x, size_t n)
{
    if (is_bf16(m)) DV(m, round_bf16, x, n);
    return LC_OK;
}

/* ---- TP collectives (timed as tp_comm_s; an error aborts the world: peers are inside) ---- */

static int tp_fail(lc_model *m, int rc, const char *what)
{
    return step_err(m, rc, 1, "%s over the TP team: %s", what, lc_last_error(m->w));
}

static int tp_allreduce(lc_model *m, float *buf, size_t n, const char *what)
{
    double t0 = lc_model__now();
    int rc = lc_allreduce_sum_f32(m->tp, buf, buf, n);
    m->t.tp_comm_s += lc_model__now() - t0;
    return rc ? tp_fail(m, rc, what) : LC_OK;
}

/* sp: full [rp, dim] <- every member's shard [rs, dim] */
static int sp_gather(lc_model *m, float *full, const float *shard, const char *what)
{
    double t0 = lc_model__now();
    int rc = lc_allgather(m->tp, full, shard, sizeof(float) * (size_t)m->rs * m->cfg.dim);
    m->t.tp_comm_s += lc_model__now() - t0;
    return rc ? tp_fail(m, rc, what) : LC_OK;
}

/* sp: shard [rs, dim] <- my rows of the sum of every member's full [rp, dim] */
static int sp_reduce_scatter(lc_model *m, float *shard, const float *full, const char *what)
{
    double t0 = lc_model__now();
    int rc = lc_reduce_scatter_sum_f32(m->tp, shard, full, (size_t)m->rs * m->cfg.dim);
    m->t.tp_comm_s += lc_model__now() - t0;
    return rc ? tp_fail(m, rc, what) : LC_OK;
}

/* Row-parallel output: out = base + (sum over TP of the partial [rows, dim] in dtmp), on the
 * residual rows (all rows, or my shard with sp). */
static int row_parallel_out(lc_model *m, const float *base, float *out, const char *what)
{
    size_t n = (size_t)m->rr * m->cfg.dim;
    const float *sum = m->dtmp;
    int rc;
    if (m->run.plan->sp) {
        if ((rc = sp_reduce_scatter(m, m->dsh, m->dtmp, what))) return rc;
        sum = m->dsh;
    } else if ((rc = tp_allreduce(m, m->dtmp, n, what))) {
        return rc;
    }
    for (size_t i = 0; i < n; i++) out[i] = base[i] + sum[i];
    return LC_OK;
}

/* RMSNorm of the residual rows x into out (saved for backward; with sp my shard only) and
 * *full, the input of the next column-parallel GEMM: out itself, or with sp every member's
 * shard all-gathered into lnfull. Rounded for bf16. */
static int norm_fwd(lc_model *m, const float *x, size_t w_off, float *out, float *rstd,
                    const float **full, const char *what)
{
    const lc_model_config *c = &m->cfg;
    DV(m, rmsnorm_fwd, x, m->params + w_off, m->rr, c->dim, c->norm_eps, out, rstd);
    int rc = maybe_round(m, out, (size_t)m->rr * c->dim);
    if (rc) return rc;
    *full = out;
    if (!m->run.plan->sp) return LC_OK;
    *full = m->lnfull;
    return sp_gather(m, m->lnfull, out, what);
}

/* The saved norm output of every row for a weight gradient: with sp re-gathered from the
 * saved shards (Megatron's sequence parallelism: the gathered copy is not kept). */
static int norm_full(lc_model *m, const float *saved, const float **full, const char *what)
{
    *full = saved;
    if (!m->run.plan->sp) return LC_OK;
    *full = m->lnfull;
    return sp_gather(m, m->lnfull, saved, what);
}

/* d(residual) for every row, the input gradient of a column-parallel matmul: dres itself,
 * or with sp its all-gather. */
static int dres_full(lc_model *m, const float **out, const char *what)
{
    *out = m->dres;
    if (!m->run.plan->sp) return LC_OK;
    *out = m->dfull;
    return sp_gather(m, m->dfull, m->dres, what);
}

/* RMSNorm backward from the partial d(norm output) [rows, dim] in dtmp (summed over TP
 * first): dres (+)= dx; dw += into the weight's grad (with sp into this step's norm scratch,
 * summed over TP at the end: each member saw only its shard's rows). */
static int norm_bwd(lc_model *m, const float *x, size_t w_off, const float *rstd, int accumulate,
                    const char *what)
{
    const lc_model_config *c = &m->cfg;
    const float *d = m->dtmp;
    float *dw = m->grads + w_off;
    int rc;
    if (m->T > 1) {
        if (m->run.plan->sp) {
            if ((rc = sp_reduce_scatter(m, m->dsh, m->dtmp, what))) return rc;
            d = m->dsh;
            size_t k = 2 * (size_t)c->n_layers;
            for (int l = 0; l < c->n_layers; l++)
                if (m->lo[l].ln1 == w_off || m->lo[l].ln2 == w_off) k = 2 * (size_t)l + (m->lo[l].ln2 == w_off);
            dw = m->gnorm + k * c->dim;
        } else if ((rc = tp_allreduce(m, m->dtmp, (size_t)m->rows * c->dim, what))) {
            return rc;
        }
    }
    DV(m, rmsnorm_bwd, x, m->params + w_off, rstd, d, m->rr, c->dim, accumulate, m->dres, dw);
    return LC_OK;
}

/* Layer l forward from acts[l].x; writes out (the next layer's input) when out != NULL. */
static int layer_fwd(lc_model *m, int l, float *out)
{
    const lc_model_config *c = &m->cfg;
    const lc_model__layer_off *o = &m->lo[l];
    lc_model__acts *a = &m->acts[l];
    int R = m->rows, D = c->dim, qkvd = m->qdim + 2 * m->kvdim, F = m->ffl, tp = m->T > 1, rc;
    size_t nq = (size_t)R * m->qdim, nkv = (size_t)R * m->kvdim;

    const float *ln;
    if ((rc = norm_fwd(m, a->x, o->ln1, a->ln1, a->rstd1, &ln, "input norm all-gather"))) return rc;
    MM(m, linear_fwd, ln, W(m, o->wqkv), R, D, qkvd, m->qkv, 0);
    /* split [q|k|v] rows into the attention layout; RoPE on q and k */
    float *q = is_bf16(m) ? m->f_att : a->q, *k = is_bf16(m) ? m->dk : a->k,
          *v = is_bf16(m) ? m->dv : a->v;
    size_t fs = sizeof(float), qp = fs * (size_t)qkvd;
    DV(m, copy_rows, q, fs * m->qdim, m->qkv, qp, fs * m->qdim, (size_t)R);
    DV(m, copy_rows, k, fs * m->kvdim, m->qkv + m->qdim, qp, fs * m->kvdim, (size_t)R);
    DV(m, copy_rows, v, fs * m->kvdim, m->qkv + m->qdim + m->kvdim, qp, fs * m->kvdim, (size_t)R);
    DV(m, rope_apply, q, R, m->hl, m->hd, m->cos_t, m->sin_t, 0);
    DV(m, rope_apply, k, R, m->hkvl, m->hd, m->cos_t, m->sin_t, 0);
    if (is_bf16(m)) {
        DV(m, to_bf16, q, nq, a->q);
        DV(m, to_bf16, k, nkv, a->k);
        DV(m, to_bf16, v, nkv, a->v);
    }
    rc = m->dev->ops->attn_fwd(m->dev->ctx, m->cp, a->q, a->k, a->v, m->run.doc_mask ? m->doc : NULL, a->att,
                               a->lse);
    if (rc) return step_err(m, rc, 1, "layer %d attention forward: %s", l, m->dev->ops->err(m->dev->ctx));
    const float *att = a->att;
    if (is_bf16(m)) {
        DV(m, from_bf16, a->att, nq, m->f_att);
        att = m->f_att;
    }
    if (tp) {
        MM(m, linear_fwd, att, W(m, o->wo), R, m->qdim, D, m->dtmp, 0);
        if ((rc = row_parallel_out(m, a->x, a->xmid, "o_proj all-reduce"))) return rc;
    } else {
        DV(m, copy, a->xmid, a->x, sizeof(float) * R * D);
        MM(m, linear_fwd, att, W(m, o->wo), R, m->qdim, D, a->xmid, 1);
    }
    if ((rc = norm_fwd(m, a->xmid, o->ln2, a->ln2, a->rstd2, &ln, "post-attention norm all-gather"))) return rc;
    MM(m, linear_fwd, ln, W(m, o->wgu), R, D, 2 * F, a->h, 0);
    if (out) {
        DV(m, swiglu_fwd, a->h, R, F, m->act);
        if ((rc = maybe_round(m, m->act, (size_t)R * F))) return rc;
        if (tp) {
            MM(m, linear_fwd, m->act, W(m, o->wdown), R, F, D, m->dtmp, 0);
            if ((rc = row_parallel_out(m, a->xmid, out, "down_proj all-reduce"))) return rc;
        } else {
            DV(m, copy, out, a->xmid, sizeof(float) * R * D);
            MM(m, linear_fwd, m->act, W(m, o->wdown), R, F, D, out, 1);
        }
    }
    return LC_OK;
}

/* Layer l backward: m->dres holds d(output) on entry and d(input) on return. */
static int layer_bwd(lc_model *m, int l)
{
    const lc_model_config *c = &m->cfg;
    const lc_model__layer_off *o = &m->lo[l];
    lc_model__acts *a = &m->acts[l];
    int R = m->rows, D = c->dim, qkvd = m->qdim + 2 * m->kvdim, F = m->ffl, rc;
    size_t nq = (size_t)R * m->qdim;
    float *g = m->grads;
    const float *dout;

    /* MLP: out = xmid + act Wdown^T; dact lands in dh's up half, the SwiGLU backward
     * also rebuilds act for dWdown */
    if ((rc = dres_full(m, &dout, "MLP gradient all-gather"))) return rc;
    MM(m, linear_bwd_dx, dout, W(m, o->wdown), R, F, D, m->dh + F, 2 * F, 0);
    DV(m, swiglu_bwd, a->h, m->dh, m->act, R, F);
    if ((rc = maybe_round(m, m->act, (size_t)R * F))) return rc;
    MM(m, linear_bwd_dw, dout, m->act, R, F, D, g + o->wdown);
    const float *ln;
    if ((rc = norm_full(m, a->ln2, &ln, "post-attention norm re-gather"))) return rc;
    MM(m, linear_bwd_dw, m->dh, ln, R, D, 2 * F, g + o->wgu);
    MM(m, linear_bwd_dx, m->dh, W(m, o->wgu), R, D, 2 * F, m->dtmp, D, 0);
    if ((rc = norm_bwd(m, a->xmid, o->ln2, a->rstd2, 1, "gate/up input-gradient all-reduce"))) return rc;

    /* attention: xmid = x + att Wo^T */
    const float *att = a->att;
    if (is_bf16(m)) {
        DV(m, from_bf16, a->att, nq, m->f_att);
        att = m->f_att;
    }
    if ((rc = dres_full(m, &dout, "attention gradient all-gather"))) return rc;
    MM(m, linear_bwd_dw, dout, att, R, m->qdim, D, g + o->wo);
    MM(m, linear_bwd_dx, dout, W(m, o->wo), R, m->qdim, D, m->f_att, m->qdim, 0);
    void *datt = m->f_att;
    if (is_bf16(m)) {
        DV(m, to_bf16, m->f_att, nq, m->datt);
        datt = m->datt;
    }
    rc = m->dev->ops->attn_bwd(m->dev->ctx, m->cp, a->q, a->k, a->v, m->run.doc_mask ? m->doc : NULL, a->att,
                               a->lse, datt, m->dq, m->dk, m->dv);
    if (rc) return step_err(m, rc, 1, "layer %d attention backward: %s", l, m->dev->ops->err(m->dev->ctx));
    if (m->kvteam) {
        /* a replicated KV head's gradient is the sum of what every replica's query heads
         * send it: summed here, every replica gets the whole dWk/dWv (replicas stay equal),
         * and only the first counts it in the input gradient below */
        size_t nkv = (size_t)R * m->kvdim;
        double t0 = lc_model__now();
        rc = lc_allreduce_sum_f32(m->kvteam, m->dk, m->dk, nkv);
        if (!rc) rc = lc_allreduce_sum_f32(m->kvteam, m->dv, m->dv, nkv);
        m->t.tp_comm_s += lc_model__now() - t0;
        if (rc) return tp_fail(m, rc, "KV-replica gradient all-reduce");
    }
    DV(m, rope_apply, m->dq, R, m->hl, m->hd, m->cos_t, m->sin_t, 1);
    DV(m, rope_apply, m->dk, R, m->hkvl, m->hd, m->cos_t, m->sin_t, 1);
    size_t fs = sizeof(float), qp = fs * (size_t)qkvd;
    DV(m, copy_rows, m->qkv, qp, m->dq, fs * m->qdim, fs * m->qdim, (size_t)R);
    DV(m, copy_rows, m->qkv + m->qdim, qp, m->dk, fs * m->kvdim, fs * m->kvdim, (size_t)R);
    DV(m, copy_rows, m->qkv + m->qdim + m->kvdim, qp, m->dv, fs * m->kvdim, fs * m->kvdim, (size_t)R);
    if ((rc = norm_full(m, a->ln1, &ln, "input norm re-gather"))) return rc;
    MM(m, linear_bwd_dw, m->qkv, ln, R, D, qkvd, g + o->wqkv);
    if (m->kvteam && lc_team_my_pe(m->kvteam) != 0)
        for (int i = 0; i < R; i++)
            memset(m->qkv + (size_t)i * qkvd + m->qdim, 0, sizeof(float) * 2 * m->kvdim);
    MM(m, linear_bwd_dx, m->qkv, W(m, o->wqkv), R, D, qkvd, m->dtmp, D, 0);
    return norm_bwd(m, a->x, o->ln1, a->rstd1, 1, "qkv input-gradient all-reduce");
}

/* The vocab-parallel cross-entropy of n rows of my logits [n, vl] (vocab v0..v0+vl), in
 * place like lc_model__ce_fwd_bwd: the row max, the sum of exp and the target's logit are
 * all-reduced over TP; no PE holds a full row. *sum_out: the CE sum (the same on every
 * member). */
static int ce_tp(lc_model *m, float *logits, const int32_t *tgt, int n, int grad, float dscale,
                 double *sum_out)
{
    int V = m->vl, rc;
    double *mx = m->ce, *st = m->ce + n; /* st: [n][2] sum-exp, target logit */
    for (int i = 0; i < n; i++) {
        const float *l = logits + (size_t)i * V;
        float x = l[0];
        for (int j = 1; j < V; j++) x = l[j] > x ? l[j] : x;
        mx[i] = x;
    }
    double t0 = lc_model__now();
    rc = lc_allreduce_max_f64(m->tp, mx, mx, (size_t)n);
    m->t.tp_comm_s += lc_model__now() - t0;
    if (rc) return tp_fail(m, rc, "loss max all-reduce");
    for (int i = 0; i < n; i++) {
        const float *l = logits + (size_t)i * V;
        float M = (float)mx[i];
        double s = 0.0;
        for (int j = 0; j < V; j++) s += exp((double)(l[j] - M));
        int t = tgt[i] - m->v0;
        st[2 * i] = s;
        st[2 * i + 1] = tgt[i] >= 0 && t >= 0 && t < V ? (double)l[t] : 0.0;
    }
    t0 = lc_model__now();
    rc = lc_allreduce_sum_f64(m->tp, st, st, 2 * (size_t)n);
    m->t.tp_comm_s += lc_model__now() - t0;
    if (rc) return tp_fail(m, rc, "loss sum-exp all-reduce");
    double loss = 0.0;
    for (int i = 0; i < n; i++) {
        float *l = logits + (size_t)i * V;
        if (tgt[i] < 0) {
            if (grad) memset(l, 0, sizeof(float) * V);
            continue;
        }
        double lse = (double)(float)mx[i] + log(st[2 * i]);
        loss += lse - st[2 * i + 1];
        if (grad) {
            for (int j = 0; j < V; j++) l[j] = dscale * (float)exp((double)l[j] - lse);
            int t = tgt[i] - m->v0;
            if (t >= 0 && t < V) l[t] -= dscale;
        }
    }
    *sum_out = loss;
    return LC_OK;
}

/* Final norm, LM head and CE in row chunks (the [rows, vocab] logits never exist whole).
 * With backward, dres gets d(last layer output). *sum: this PE's CE sum. */
static int head(lc_model *m, float dscale, int backward, double *sum)
{
    const lc_model_config *c = &m->cfg;
    int R = m->rows, D = c->dim, V = m->vl, rc;
    const float *xf;
    if ((rc = norm_fwd(m, m->xlast, m->norm_off, m->xf, m->rstdf, &xf, "final norm all-gather"))) return rc;
    *sum = 0.0;
    for (int r0 = 0; r0 < R; r0 += m->chunk) {
        int n = R - r0 < m->chunk ? R - r0 : m->chunk;
        const float *x = xf + (size_t)r0 * D;
        MM(m, linear_fwd, x, W(m, m->lm_off), n, D, V, m->logits, 0);
        if (m->logits_out) DV(m, download, m->logits_out + (size_t)r0 * V, m->logits, sizeof(float) * (size_t)n * V);
        if (m->T > 1) {
            double s = 0.0;
            if ((rc = ce_tp(m, m->logits, m->tgt + r0, n, backward, dscale, &s))) return rc;
            *sum += s;
        } else {
            double s = 0.0;
            DV(m, ce, m->logits, m->tgt + r0, n, V, backward, dscale, &s);
            *sum += s;
        }
        if (backward) {
            MM(m, linear_bwd_dw, m->logits, x, n, D, V, m->grads + m->lm_off);
            MM(m, linear_bwd_dx, m->logits, W(m, m->lm_off), n, D, V, m->dtmp + (size_t)r0 * D, D, 0);
        }
    }
    if (backward) return norm_bwd(m, m->xlast, m->norm_off, m->rstdf, 0, "LM-head input-gradient all-reduce");
    return LC_OK;
}

/* Vocab-parallel embedding: my rows of the table, zeros for tokens outside my vocabulary
 * slice, summed over TP (reduce-scattered onto my shard with sp). */
static int embed_fwd(lc_model *m)
{
    const lc_model_config *c = &m->cfg;
    if (m->T == 1) {
        DV(m, embed_fwd, m->params + m->emb_off, m->tok, m->rows, c->dim, m->acts[0].x);
        return LC_OK;
    }
    float *dst = m->run.plan->sp ? m->dtmp : m->acts[0].x;
    for (int i = 0; i < m->rows; i++) {
        int t = m->tok[i] - m->v0;
        float *d = dst + (size_t)i * c->dim;
        if (t >= 0 && t < m->vl) memcpy(d, m->params + m->emb_off + (size_t)t * c->dim, sizeof(float) * c->dim);
        else memset(d, 0, sizeof(float) * c->dim);
    }
    if (m->run.plan->sp) return sp_reduce_scatter(m, m->acts[0].x, m->dtmp, "embedding reduce-scatter");
    return tp_allreduce(m, m->acts[0].x, (size_t)m->rows * c->dim, "embedding all-reduce");
}

static int embed_bwd(lc_model *m)
{
    const lc_model_config *c = &m->cfg;
    const float *d;
    int rc;
    if (m->T == 1) {
        DV(m, embed_bwd, m->grads + m->emb_off, m->tok, m->tok_h, m->rows, c->dim, c->vocab, m->dres);
        return LC_OK;
    }
    if ((rc = dres_full(m, &d, "embedding gradient all-gather"))) return rc;
    for (int i = 0; i < m->rows; i++) {
        int t = m->tok[i] - m->v0;
        if (t < 0 || t >= m->vl) continue;
        float *g = m->grads + m->emb_off + (size_t)t * c->dim;
        const float *di = d + (size_t)i * c->dim;
        for (int j = 0; j < c->dim; j++) g[j] += di[j];
    }
    return LC_OK;
}

/* sp: the norm weights' gradients of this step, summed over the TP team's shards. */
static int sp_norm_grads(lc_model *m)
{
    const lc_model_config *c = &m->cfg;
    size_t D = (size_t)c->dim, n = (2 * (size_t)c->n_layers + 1) * D;
    int rc = tp_allreduce(m, m->gnorm, n, "norm-weight gradient all-reduce");
    if (rc) return rc;
    for (int l = 0; l <= c->n_layers; l++)
        for (int k = 0; k < (l < c->n_layers ? 2 : 1); k++) {
            size_t off = l < c->n_layers ? (k ? m->lo[l].ln2 : m->lo[l].ln1) : m->norm_off;
            const float *s = m->gnorm + (2 * (size_t)l + k) * D;
            for (size_t j = 0; j < D; j++) m->grads[off + j] += s[j];
        }
    return LC_OK;
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
    int64_t S = m->run.plan->seq_len, n_real = 0;
    int rc;
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
    lc_model__gemm16_threads(m->g16, m->run.threads);
    /* The work of this sequence per PE under the mask; a mask-balanced plan deals its chunks
     * again, and the rows' positions (RoPE) follow. */
    if (m->P > 1) {
        if ((rc = lc_cp_balance_step(m->cp, m->run.doc_mask ? doc : NULL)))
            return step_err(m, rc, 1, "model step: %s", lc_cp_last_error(m->cp));
        if (m->run.plan->balance == LC_CP_BALANCE_MASK) {
            int moved = 0;
            for (int i = 0; i < m->rows; i++) {
                int32_t g = lc_cp_global_pos(m->cp, m->me, i);
                moved |= g != m->pos[i];
                m->pos[i] = g;
            }
            if (moved) DV(m, rope_table, m->pos, m->rows, m->hd, c->rope_theta, m->cos_t, m->sin_t);
        }
    }
    /* my shard, on the host (the embedding's backward groups it there), then on the device */
    size_t rb = sizeof(int32_t) * (size_t)m->rows;
    lc_cp_shard(m->cp, m->me, tokens, sizeof(int32_t), m->tok_h);
    lc_cp_shard(m->cp, m->me, targets, sizeof(int32_t), m->tgt_h);
    DV(m, upload, m->tok, m->tok_h, rb);
    DV(m, upload, m->tgt, m->tgt_h, rb);
    if (m->run.doc_mask) {
        lc_cp_shard(m->cp, m->me, doc, sizeof(int32_t), m->doc_h);
        DV(m, upload, m->doc, m->doc_h, rb);
    }
    if (m->wcopy) DV(m, weights_bf16, m->params, m->wcopy, m->n_params, &m->wbase);

    int L = c->n_layers;
    if ((rc = embed_fwd(m))) return rc;
    for (int l = 0; l < L; l++)
        if ((rc = layer_fwd(m, l, l + 1 < L ? m->acts[l + 1].x : m->xlast))) return rc;
    float dscale = n_real ? grad_scale / (float)n_real : 0.0f;
    double part = 0.0, tot = 0.0;
    if (backward && m->run.plan->sp) DV(m, zero, m->gnorm, sizeof(float) * (2 * (size_t)L + 1) * c->dim);
    if ((rc = head(m, dscale, backward, &part))) return rc;
    rc = lc_allreduce_sum_f64(m->run.cp_team, &tot, &part, 1);
    if (rc) return step_err(m, rc, 1, "model step: loss all-reduce: %s", lc_last_error(m->w));
    *loss = n_real ? (float)(tot / (double)n_real) : 0.0f;
    if (backward) {
        for (int l = L - 1; l >= 0; l--) {
            if (m->run.recompute && (rc = layer_fwd(m, l, NULL))) return rc;
            if ((rc = layer_bwd(m, l))) return rc;
        }
        if ((rc = embed_bwd(m))) return rc;
        if (m->run.plan->sp && (rc = sp_norm_grads(m))) return rc;
    }
    if ((rc = m->dev->ops->sync(m->dev->ctx))) return dev_fail(m, rc, "sync");
    lc_cp_stats st1;
    lc_cp_get_stats(m->cp, &st1);
    m->t.attn_s += st1.compute_wall_s - st0.compute_wall_s;
    m->t.comm_s += st1.comm_wall_s - st0.comm_wall_s;
    m->t.cp_bytes += st1.bytes_sent - st0.bytes_sent;
    m->t.cp_imbalance = lc_cp_imbalance(m->cp);
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
    if (m->T > 1) /* each TP member holds a vocabulary slice; the cross-checks run without TP */
        return step_err(m, LC_ERR_ARG, 1, "model forward_logits: not under tensor parallelism (TP = %d)", m->T);
    m->logits_out = logits;
    int rc = run_step(m, tokens, targets, doc, 0.0f, loss, 0);
    m->logits_out = NULL;
    return rc;
}

void lc_model_get_times(const lc_model *m, lc_model_times *t)
{
    *t = m->t;
    t->other_s = t->total_s - t->matmul_s - t->attn_s - t->comm_s - t->tp_comm_s;
    if (t->other_s < 0) t->other_s = 0;
}

void lc_model_reset_times(lc_model *m) { memset(&m->t, 0, sizeof m->t); }

void lc_model__set_loss_chunk(lc_model *m, int rows)
{
    int max = m->chunk_alloc;
    m->chunk = rows < 1 ? 1 : rows > max ? max : rows;
}
