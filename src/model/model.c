/* The model object: create/destroy, the tensor table, the activation arena. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/device.h"
#include "model/internal.h"

static _Thread_local char g_create_err[512];

double lc_model__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

const char *lc_model_last_error(const lc_model *m) { return m ? m->err : g_create_err; }
const lc_model_config *lc_model_get_config(const lc_model *m) { return &m->cfg; }
const lc_model_run *lc_model_get_run(const lc_model *m) { return &m->run; }
size_t lc_model_n_params(const lc_model *m) { return m->n_params; }
float *lc_model_params(lc_model *m) { return m->params; }
float *lc_model_grads(lc_model *m) { return m->grads; }
int lc_model_n_tensors(const lc_model *m) { return m->n_tensors; }
int lc_model_local_rows(const lc_model *m) { return m->rows; }
const int32_t *lc_model_local_pos(const lc_model *m) { return m->pos; }

const lc_model_tensor *lc_model_tensor_at(const lc_model *m, int i)
{
    return (i >= 0 && i < m->n_tensors) ? &m->tensors[i] : NULL;
}

int lc_model_find_tensor(const lc_model *m, const char *name)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return i;
    return -1;
}

void lc_model_zero_grads(lc_model *m) { m->dev->ops->zero(m->dev->ctx, m->grads, sizeof(float) * m->n_params); }

const char *lc_model_device_name(const lc_model *m) { return m->dev->ops->name; }

static int transfer(lc_model *m, int up, void *dst, const void *src, size_t n)
{
    const lc_model__dev_ops *o = m->dev->ops;
    int rc = up ? o->upload(m->dev->ctx, dst, src, sizeof(float) * n) : o->download(m->dev->ctx, dst, src, sizeof(float) * n);
    if (rc)
        snprintf(m->err, sizeof m->err, "lc_model_%s: the %s device: %s", up ? "write" : "read", o->name,
                 o->err(m->dev->ctx));
    return rc;
}
int lc_model_read(lc_model *m, const float *src, float *host)
{
    if (src != m->params && src != m->grads) {
        snprintf(m->err, sizeof m->err, "lc_model_read: src is neither the parameters nor the gradients");
        return LC_ERR_ARG;
    }
    return transfer(m, 0, host, src, m->n_params);
}
int lc_model_write(lc_model *m, float *dst, const float *host)
{
    if (dst != m->params && dst != m->grads) {
        snprintf(m->err, sizeof m->err, "lc_model_write: dst is neither the parameters nor the gradients");
        return LC_ERR_ARG;
    }
    return transfer(m, 1, dst, host, m->n_params);
}

/* ---- tensor table ---- */

#define NAME_LEN 64

static size_t add_tensor(lc_model *m, size_t *off, const char *name, int64_t d0, int64_t d1,
                         int decay, int kind, int kv)
{
    lc_model_tensor *t = &m->tensors[m->n_tensors];
    lc_model__part *pt = &m->parts[m->n_tensors];
    char *nm = m->names + (size_t)m->n_tensors * NAME_LEN;
    snprintf(nm, NAME_LEN, "%s", name);
    t->name = nm;
    t->ndim = d1 ? 2 : 1;
    pt->kind = m->T > 1 ? kind : LC_MODEL__REPL;
    pt->kv = kv;
    pt->full[0] = d0;
    pt->full[1] = d1;
    t->shape[0] = d0;
    t->shape[1] = d1;
    /* my slice: kv rows are one KV head's under replication, else 1/T of the full */
    if (pt->kind == LC_MODEL__ROWS) t->shape[0] = pt->unit = kv ? m->kvdim : d0 / m->T;
    if (pt->kind == LC_MODEL__COLS) t->shape[1] = pt->unit = d1 / m->T;
    t->numel = (size_t)t->shape[0] * (size_t)(d1 ? t->shape[1] : 1);
    t->offset = *off;
    t->decay = decay;
    *off += t->numel;
    m->n_tensors++;
    return t->offset;
}

/* Order in the flat buffer: q, k, v adjacent (one QKV matmul), gate and up adjacent (one
 * gate|up matmul); transformers' names and full shapes for each view. Under TP each view is
 * this PE's slice, so the local q|k|v and gate|up blocks stay adjacent. */
static void build_tensors(lc_model *m)
{
    const lc_model_config *c = &m->cfg;
    size_t off = 0;
    char nm[NAME_LEN];
    int64_t hd = m->hd, qf = (int64_t)c->n_heads * hd, kvf = (int64_t)c->n_kv_heads * hd;
    enum { R = LC_MODEL__REPL, ROW = LC_MODEL__ROWS, COL = LC_MODEL__COLS };
    m->emb_off = add_tensor(m, &off, "model.embed_tokens.weight", c->vocab, c->dim, 1, ROW, 0);
    for (int l = 0; l < c->n_layers; l++) {
        lc_model__layer_off *o = &m->lo[l];
#define NM(s) (snprintf(nm, sizeof nm, "model.layers.%d.%s", l, s), nm)
        o->ln1 = add_tensor(m, &off, NM("input_layernorm.weight"), c->dim, 0, 0, R, 0);
        o->wqkv = add_tensor(m, &off, NM("self_attn.q_proj.weight"), qf, c->dim, 1, ROW, 0);
        add_tensor(m, &off, NM("self_attn.k_proj.weight"), kvf, c->dim, 1, ROW, 1);
        add_tensor(m, &off, NM("self_attn.v_proj.weight"), kvf, c->dim, 1, ROW, 1);
        o->wo = add_tensor(m, &off, NM("self_attn.o_proj.weight"), c->dim, qf, 1, COL, 0);
        o->ln2 = add_tensor(m, &off, NM("post_attention_layernorm.weight"), c->dim, 0, 0, R, 0);
        o->wgu = add_tensor(m, &off, NM("mlp.gate_proj.weight"), c->ffn_dim, c->dim, 1, ROW, 0);
        add_tensor(m, &off, NM("mlp.up_proj.weight"), c->ffn_dim, c->dim, 1, ROW, 0);
        o->wdown = add_tensor(m, &off, NM("mlp.down_proj.weight"), c->dim, c->ffn_dim, 1, COL, 0);
#undef NM
    }
    m->norm_off = add_tensor(m, &off, "model.norm.weight", c->dim, 0, 0, R, 0);
    m->lm_off = add_tensor(m, &off, "lm_head.weight", c->vocab, c->dim, 1, ROW, 0);
    m->n_params = off;
}

/* ---- init ---- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double unif(uint64_t *s) { return ((splitmix(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

/* Tensor i's full values from the seed: 1-D tensors are ones, matrices N(0, std). */
static void init_full(const lc_model *m, int i, uint64_t seed, float *p)
{
    const lc_model__part *pt = &m->parts[i];
    size_t n = (size_t)pt->full[0] * (size_t)(pt->full[1] ? pt->full[1] : 1);
    if (!pt->full[1]) {
        for (size_t j = 0; j < n; j++) p[j] = 1.0f;
        return;
    }
    /* one stream per tensor: a tensor's values do not depend on the others' sizes */
    uint64_t s = seed ^ (0xA0761D6478BD642Full * (uint64_t)(i + 1));
    const char *name = m->tensors[i].name;
    double std = (strstr(name, "o_proj") || strstr(name, "down_proj"))
                     ? 0.02 / sqrt(2.0 * m->cfg.n_layers) : 0.02;
    for (size_t j = 0; j < n; j += 2) {
        double u1 = unif(&s), u2 = unif(&s), r = sqrt(-2.0 * log(u1));
        p[j] = (float)(std * r * cos(6.283185307179586 * u2));
        if (j + 1 < n) p[j + 1] = (float)(std * r * sin(6.283185307179586 * u2));
    }
}

/* Under TP every tensor is drawn whole and sliced, so any layout starts from the same
 * weights as one PE. */
int lc_model_init_params(lc_model *m, uint64_t seed)
{
    size_t big = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const lc_model__part *pt = &m->parts[i];
        size_t n = (size_t)pt->full[0] * (size_t)(pt->full[1] ? pt->full[1] : 1);
        if (pt->kind != LC_MODEL__REPL && n > big) big = n;
    }
    float *full = big ? malloc(big * sizeof *full) : NULL;
    /* a device model draws its weights on the host and uploads them once */
    int host = m->dev == lc_model__host_device();
    float *p = host ? m->params : malloc(sizeof(float) * m->n_params);
    if ((big && !full) || !p) {
        free(full);
        if (p != m->params) free(p);
        snprintf(m->err, sizeof m->err, "lc_model_init_params: out of memory for a %zu-float tensor", big);
        return LC_ERR_SYS;
    }
    for (int i = 0; i < m->n_tensors; i++) {
        if (m->parts[i].kind == LC_MODEL__REPL) {
            init_full(m, i, seed, p + m->tensors[i].offset);
        } else {
            init_full(m, i, seed, full);
            lc_model_scatter_tensor(m, i, full, p);
        }
    }
    free(full);
    if (!host) {
        int rc = lc_model_write(m, m->params, p);
        free(p);
        if (rc) return rc;
    }
    return LC_OK;
}

/* ---- arena ---- */

typedef struct {
    char *base;
    size_t off;
} carver;

static void *carve(carver *c, size_t bytes)
{
    size_t at = (c->off + 63) & ~(size_t)63;
    c->off = at + bytes;
    return c->base ? c->base + at : NULL;
}

/* Lays out every activation and scratch buffer; with base NULL it only measures. Under TP
 * the widths are this PE's (heads, ffn, vocab); with sp the residual stream and the saved
 * norm outputs hold the rr = rs rows of my sequence shard, and one lnfull buffer the rp
 * gathered rows of whichever norm output a GEMM needs now. */
static void layout_arena(lc_model *m, carver *cv)
{
    const lc_model_config *c = &m->cfg;
    size_t R = (size_t)m->rows, Rr = (size_t)m->rr, Rp = (size_t)m->rp, F = sizeof(float);
    size_t es = m->run.compute == LC_DT_BF16 ? 2 : 4, D = (size_t)c->dim, FF = (size_t)m->ffl;
    int nsets = m->run.recompute ? 1 : c->n_layers;
    for (int l = 0; l < c->n_layers; l++) m->acts[l].x = carve(cv, Rr * D * F);
    m->xlast = carve(cv, Rr * D * F); /* output of the last layer */
    for (int l = 0; l < nsets; l++) {
        lc_model__acts *a = &m->acts[l];
        a->ln1 = carve(cv, Rr * D * F);
        a->rstd1 = carve(cv, Rr * F);
        a->q = carve(cv, R * m->qdim * es);
        a->k = carve(cv, R * m->kvdim * es);
        a->v = carve(cv, R * m->kvdim * es);
        a->att = carve(cv, R * m->qdim * es);
        a->lse = carve(cv, R * m->hl * F);
        a->xmid = carve(cv, Rr * D * F);
        a->ln2 = carve(cv, Rr * D * F);
        a->rstd2 = carve(cv, Rr * F);
        a->h = carve(cv, R * 2 * FF * F);
    }
    if (m->run.recompute)
        for (int l = 1; l < c->n_layers; l++) {
            float *x = m->acts[l].x;
            m->acts[l] = m->acts[0];
            m->acts[l].x = x;
        }
    m->xf = carve(cv, Rr * D * F);
    m->rstdf = carve(cv, Rr * F);
    m->cos_t = carve(cv, R * (m->hd / 2) * F);
    m->sin_t = carve(cv, R * (m->hd / 2) * F);
    m->tok = carve(cv, R * 4);
    m->tgt = carve(cv, R * 4);
    m->doc = carve(cv, R * 4);
    /* the host's shards: on the host device the same buffers */
    m->tok_h = m->tok, m->tgt_h = m->tgt, m->doc_h = m->doc;
    m->dres = carve(cv, Rr * D * F);
    m->dtmp = carve(cv, Rp * D * F);
    if (m->run.plan->sp) {
        m->dfull = carve(cv, Rp * D * F);
        m->dsh = carve(cv, Rr * D * F);
        m->lnfull = carve(cv, Rp * D * F);
        m->gnorm = carve(cv, (2 * (size_t)c->n_layers + 1) * D * F);
    }
    if (m->T > 1) m->ce = carve(cv, 3 * (size_t)m->chunk * sizeof(double));
    /* Two scratch sets that are never live at once share one region: the MLP's (dh, act:
     * act is written after the attention temporaries die in forward, and the MLP backward
     * ends before the attention backward starts) and the attention's (qkv split, fp32 att /
     * dout, dq, dk, dv, bf16 dout). */
    carver mlp = {NULL, 0}, att = {NULL, 0};
    carve(&mlp, R * 2 * FF * F);
    carve(&mlp, R * FF * F);
    carve(&att, R * (m->qdim + 2 * (size_t)m->kvdim) * F);
    carve(&att, R * m->qdim * F);
    carve(&att, R * m->qdim * F);
    carve(&att, R * m->kvdim * F);
    carve(&att, R * m->kvdim * F);
    carve(&att, R * m->qdim * es);
    char *u = carve(cv, mlp.off > att.off ? mlp.off : att.off);
    mlp.base = att.base = u;
    mlp.off = att.off = 0;
    if (u) {
        m->dh = carve(&mlp, R * 2 * FF * F);
        m->act = carve(&mlp, R * FF * F);
        m->qkv = carve(&att, R * (m->qdim + 2 * (size_t)m->kvdim) * F);
        m->f_att = carve(&att, R * m->qdim * F);
        m->dq = carve(&att, R * m->qdim * F);
        m->dk = carve(&att, R * m->kvdim * F);
        m->dv = carve(&att, R * m->kvdim * F);
        m->datt = carve(&att, R * m->qdim * es);
    }
    m->logits = carve(cv, (size_t)m->chunk * m->vl * F);
}

static void free_model(lc_model *m)
{
    if (m) {
        free(m->pos);
        free(m->tensors);
        free(m->parts);
        free(m->names);
        free(m->lo);
        free(m->acts);
        if (m->dev) {
            const lc_model__dev_ops *o = m->dev->ops;
            if (m->dev_ready) o->teardown(m->dev->ctx);
            o->release(m->dev->ctx, m->params);
            o->release(m->dev->ctx, m->grads);
            o->release(m->dev->ctx, m->wcopy);
            o->release(m->dev->ctx, m->arena);
        }
        if (m->host_shards) free(m->tok_h);
        lc_model__gemm16_destroy(m->g16);
        free(m);
    }
}

static int fail_create(lc_model *m, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_create_err, sizeof g_create_err, fmt, ap);
    va_end(ap);
    if (m && m->cp) {
        /* the plan exists on every member; a failure after it is this PE's alone (memory),
         * so peers must not wait in a collective destroy: take the world down instead */
        if (m->P > 1 || m->T > 1) lc_world_abort(m->w, g_create_err);
        else lc_cp_destroy(m->cp);
    }
    free_model(m);
    return rc;
}

static void *zalloc(lc_model *m, size_t bytes) { return m->dev->ops->alloc(m->dev->ctx, bytes); }

int lc_model_create(const lc_model_config *cfg, const lc_model_run *run, lc_model **out)
{
    char err[384];
    if (!out) return fail_create(NULL, LC_ERR_ARG, "lc_model_create: out is NULL");
    *out = NULL;
    if (!cfg || !run) return fail_create(NULL, LC_ERR_ARG, "lc_model_create: cfg or run is NULL");
    if (lc_model_config_check(cfg, err, sizeof err))
        return fail_create(NULL, LC_ERR_ARG, "lc_model_create: config: %s", err);
    if (!run->cp_team) return fail_create(NULL, LC_ERR_ARG, "lc_model_create: run.cp_team is NULL");
    int T = run->tp_team ? lc_team_n_pes(run->tp_team) : 1;
    if (run->tp_team && (T < 1 || lc_team_get_world(run->tp_team) != lc_team_get_world(run->cp_team)))
        return fail_create(NULL, LC_ERR_ARG, "lc_model_create: run.tp_team is not a team of run.cp_team's world");
    if (lc_model_tp_check(cfg, T, err, sizeof err))
        return fail_create(NULL, LC_ERR_ARG, "lc_model_create: %s", err);
    if (!run->plan) return fail_create(NULL, LC_ERR_ARG, "lc_model_create: run.plan is NULL");
    const lc_plan *pl = run->plan;
    if (pl->sp && T < 2)
        return fail_create(NULL, LC_ERR_ARG, "lc_model_create: plan.sp needs a tensor-parallel team of 2+ PEs");
    if (pl->seq_len > cfg->max_seq)
        return fail_create(NULL, LC_ERR_ARG,
                           "lc_model_create: plan.seq_len = %lld exceeds config max_seq = %lld",
                           (long long)pl->seq_len, (long long)cfg->max_seq);
    if (pl->seq_len > INT32_MAX / 2)
        return fail_create(NULL, LC_ERR_ARG, "lc_model_create: plan.seq_len = %lld is too large",
                           (long long)pl->seq_len);
    if (run->compute != LC_DT_F32 && run->compute != LC_DT_BF16)
        return fail_create(NULL, LC_ERR_ARG, "lc_model_create: run.compute = %d is not f32 or bf16",
                           (int)run->compute);
    if ((unsigned)pl->algo > LC_CP_HYBRID)
        return fail_create(NULL, LC_ERR_ARG, "lc_model_create: plan.algo = %d is unknown", (int)pl->algo);
    if ((unsigned)pl->lowering > LC_LOWER_COMPUTE_ONLY)
        return fail_create(NULL, LC_ERR_ARG, "lc_model_create: plan.lowering = %d is unknown",
                           (int)pl->lowering);
    const lc_model_device *dev = run->device ? run->device : lc_model__host_device();
    const int on_host = dev == lc_model__host_device();
    if (!on_host && T > 1)
        return fail_create(NULL, LC_ERR_UNSUPPORTED,
                           "lc_model_create: tensor parallelism runs on the host only (the %s device has no TP "
                           "collectives yet); use CP and DP there",
                           dev->ops->name);
    if (!on_host && pl->balance == LC_CP_BALANCE_MASK)
        return fail_create(NULL, LC_ERR_UNSUPPORTED,
                           "lc_model_create: --balance mask moves rows between steps, which the %s device's ring "
                           "does not follow; use the layout's own balance there",
                           dev->ops->name);

    if (lc_model__blas_init())
        return fail_create(NULL, LC_ERR_UNSUPPORTED, "lc_model_create: %s", lc_model_blas_info());
    int P = lc_team_n_pes(run->cp_team), me = lc_team_my_pe(run->cp_team);
    /* every PE must own a real token: the plan's one shape rule, over this CP team */
    if (lc_plan_fits(pl->layout, pl->seq_len, P, err, sizeof err))
        return fail_create(NULL, LC_ERR_ARG, "lc_model_create: %s", err);

    lc_model *m = calloc(1, sizeof *m);
    if (!m) return fail_create(NULL, LC_ERR_SYS, "lc_model_create: out of memory");
    m->cfg = *cfg;
    m->run = *run;
    m->dev = dev;
    if (m->run.threads < 1) m->run.threads = 1;
    m->hd = cfg->dim / cfg->n_heads;
    m->T = T;
    m->tr = T > 1 ? lc_team_my_pe(run->tp_team) : 0;
    m->tp = T > 1 ? run->tp_team : NULL;
    if (T == 1) m->run.tp_team = NULL;
    /* heads split over TP; KV heads too, or replicated when TP exceeds them (Megatron) */
    m->hl = cfg->n_heads / T;
    m->kvrep = cfg->n_kv_heads % T == 0 ? 1 : T / cfg->n_kv_heads;
    m->hkvl = m->kvrep > 1 ? 1 : cfg->n_kv_heads / T;
    m->ffl = cfg->ffn_dim / T;
    m->vl = cfg->vocab / T;
    m->v0 = m->tr * m->vl;
    m->qdim = m->hd * m->hl;
    m->kvdim = m->hd * m->hkvl;
    m->P = P;
    m->me = me;
    m->w = lc_team_get_world(run->cp_team);

    /* The CP attention runs on the model's plan, with this PE's heads. */
    lc_cp_config cc = {.plan = *pl, .hq = m->hl, .hkv = m->hkvl, .d = m->hd, .dtype = run->compute,
                       .mask = LC_MASK_CAUSAL | (run->doc_mask ? LC_MASK_DOC : 0) | (run->window > 0 ? LC_MASK_WINDOW : 0),
                       .window = run->window,
                       .threads = m->run.threads};
    int rc = lc_cp_create(run->cp_team, &cc, &m->cp);
    if (rc) {
        m->cp = NULL;
        return fail_create(m, rc, "lc_model_create: lc_cp_create: %s", lc_cp_last_error(NULL));
    }
    m->rows = lc_cp_local_rows(m->cp, me);
    m->rs = m->run.plan->sp ? (m->rows + T - 1) / T : m->rows;
    m->rp = m->rs * (m->run.plan->sp ? T : 1);
    m->rr = m->rs;
    if (m->kvrep > 1) {
        /* the members sharing my KV head: consecutive TP ranks (member r holds head r / kvrep) */
        for (int h = 0; h < cfg->n_kv_heads; h++) {
            lc_team *t = NULL;
            if ((rc = lc_team_split_strided(m->tp, h * m->kvrep, 1, m->kvrep, &t)))
                return fail_create(m, rc, "lc_model_create: the KV-replica team split failed: %s",
                                   lc_last_error(m->w));
            if (t) m->kvteam = t;
        }
    }
    m->pos = malloc(sizeof(int32_t) * (size_t)m->rows);
    int ntens = 3 + 9 * cfg->n_layers;
    m->parts = calloc((size_t)ntens, sizeof *m->parts);
    m->tensors = calloc((size_t)ntens, sizeof *m->tensors);
    m->names = calloc((size_t)ntens, NAME_LEN);
    m->lo = calloc((size_t)cfg->n_layers, sizeof *m->lo);
    m->acts = calloc((size_t)cfg->n_layers, sizeof *m->acts);
    if (!m->pos || !m->parts || !m->tensors || !m->names || !m->lo || !m->acts)
        return fail_create(m, LC_ERR_SYS, "lc_model_create: out of memory");
    for (int i = 0; i < m->rows; i++) m->pos[i] = lc_cp_global_pos(m->cp, me, i);
    build_tensors(m);

    m->params = zalloc(m, sizeof(float) * m->n_params);
    m->grads = zalloc(m, sizeof(float) * m->n_params);
    if (run->compute == LC_DT_BF16) m->wcopy = zalloc(m, (size_t)dev->ops->wcopy_bytes * m->n_params);
    if (!m->params || !m->grads || (run->compute == LC_DT_BF16 && !m->wcopy))
        return fail_create(m, LC_ERR_SYS, "lc_model_create: out of memory for %zu parameters",
                           m->n_params);

    /* LM head rows per chunk: logits of one chunk stay <= 8 Mi floats (32 MiB), so at
     * Llama 3 vocab (128256) a chunk is 65 rows: big enough for an efficient GEMM */
    int chunk = (int)(dev->ops->logits_max / (size_t)m->vl);
    if (chunk < 16) chunk = 16;
    m->chunk = m->chunk_alloc = chunk < m->rows ? chunk : m->rows;

    carver cv = {NULL, 0};
    layout_arena(m, &cv);
    m->arena_floats = (cv.off + 3) / 4;
    m->arena = zalloc(m, cv.off);
    if (!m->arena)
        return fail_create(m, LC_ERR_SYS, "lc_model_create: out of memory for a %zu-byte activation arena on the %s",
                           cv.off, dev->ops->name);
    cv.base = (char *)m->arena;
    cv.off = 0;
    layout_arena(m, &cv);
    if (!on_host) {
        m->host_shards = 1;
        m->tok_h = malloc(sizeof(int32_t) * 3 * (size_t)m->rows);
        if (!m->tok_h) return fail_create(m, LC_ERR_SYS, "lc_model_create: out of memory");
        m->tgt_h = m->tok_h + m->rows;
        m->doc_h = m->tgt_h + m->rows;
    }
    /* the device's own part: its scratch, and its attention over the CP team (collective,
     * so every member gets here before any can fail alone) */
    lc_model__dev_setup ds = {.rows = m->rows, .dim = cfg->dim, .vocab = m->vl, .n_params = m->n_params,
                              .cp = m->cp, .attn = &cc, .cp_team = run->cp_team, .seq_len = pl->seq_len,
                              .pos_h = m->pos};
    /* the GEMMs' activation operands: rows x the widest layer activation, or one LM-head
     * chunk of logits (the weights have their own bf16 copy) */
    int widths[] = {cfg->dim, m->qdim + 2 * m->kvdim, 2 * m->ffl, m->qdim};
    for (int i = 0; i < 4; i++) ds.max_cols = widths[i] > ds.max_cols ? widths[i] : ds.max_cols;
    ds.max_operand = (size_t)m->rp * (size_t)ds.max_cols;
    if ((size_t)m->chunk_alloc * (size_t)m->vl > ds.max_operand) ds.max_operand = (size_t)m->chunk_alloc * (size_t)m->vl;
    if ((rc = dev->ops->setup(dev->ctx, &ds)))
        return fail_create(m, rc, "lc_model_create: the %s device: %s", dev->ops->name, dev->ops->err(dev->ctx));
    m->dev_ready = 1;
    if ((rc = dev->ops->rope_table(dev->ctx, m->pos, m->rows, m->hd, cfg->rope_theta, m->cos_t, m->sin_t)))
        return fail_create(m, rc, "lc_model_create: the %s device: %s", dev->ops->name, dev->ops->err(dev->ctx));
    if (on_host && run->compute == LC_DT_BF16 && lc_model__gemm16_available()) {
        /* the decoder's operands: rows x the widest activation, and its weights; the LM head's
         * weight may exceed it (Llama 3's vocabulary), and takes sgemm then */
        size_t rmax = (size_t)(m->rp > m->chunk ? m->rp : m->chunk), w = (size_t)cfg->dim;
        size_t widths[] = {(size_t)(m->qdim + 2 * m->kvdim), (size_t)(2 * m->ffl), (size_t)m->qdim, (size_t)m->vl};
        for (int i = 0; i < 4; i++) w = widths[i] > w ? widths[i] : w;
        size_t cap = rmax * w, wmax = (size_t)cfg->dim * (size_t)(2 * m->ffl > m->qdim + 2 * m->kvdim ? 2 * m->ffl : m->qdim + 2 * m->kvdim);
        if (wmax > cap) cap = wmax;
        if (!(m->g16 = lc_model__gemm16_create(cap)))
            return fail_create(m, LC_ERR_SYS, "lc_model_create: out of memory for the bf16 GEMM operands (2 x %zu)", cap);
    }
    lc_model__blas_threads(m->run.threads);
    lc_model__gemm16_threads(m->g16, m->run.threads);
    *out = m;
    return LC_OK;
}

int lc_model_destroy(lc_model *m)
{
    if (!m) return LC_OK;
    int rc = m->cp ? lc_cp_destroy(m->cp) : LC_OK;
    lc_team_destroy(m->kvteam);
    free_model(m);
    return rc;
}
