/* The cost model: what one optimizer step of a layout costs on a profile's machine.
 * docs/PLANNER.md writes out every formula below; keep the two in step. */
#include "planner/planner.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double clampd(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

/* One PE's share of the heads and widths under TP (the model's own rule: KV heads split, or
 * one replicated KV head per PE when TP exceeds them). */
typedef struct {
    double hd, hl, hkvl, qdim, kvdim, ffn, vocab, layer_w, mm_params, params;
} shard;

static shard shard_of(const lc_model_config *m, int T)
{
    shard s;
    s.hd = (double)m->dim / m->n_heads;
    s.hl = (double)m->n_heads / T;
    s.hkvl = m->n_kv_heads % T == 0 ? (double)m->n_kv_heads / T : 1.0;
    s.qdim = s.hd * s.hl;
    s.kvdim = s.hd * s.hkvl;
    s.ffn = (double)m->ffn_dim / T;
    s.vocab = (double)m->vocab / T;
    s.layer_w = (double)m->dim * (2 * s.qdim + 2 * s.kvdim) + 3.0 * m->dim * s.ffn;
    s.mm_params = s.layer_w * m->n_layers + s.vocab * m->dim; /* + the LM head */
    s.params = s.mm_params + s.vocab * m->dim + (2.0 * m->n_layers + 1) * m->dim;
    return s;
}

double lc_planner_rest_units(const lc_model_config *m, int64_t tokens, int tp, int sp)
{
    /* floats read or written by the memory-bound kernels per token: per layer two RMSNorms
     * and two residual adds on the (sp: 1/T of the) residual stream, RoPE on q and k, the
     * SwiGLU on the ffn width, fwd and bwd; once, the embedding and the softmax over the
     * vocabulary. Weights chosen as the kernels' passes over their arrays. */
    shard s = shard_of(m, tp);
    double sh = sp && tp > 1 ? 1.0 / tp : 1.0;
    double layer = 12.0 * sh * m->dim + 4.0 * (s.qdim + s.kvdim) + 8.0 * s.ffn;
    return (double)tokens * (layer * m->n_layers + 4.0 * s.vocab + 4.0 * m->dim);
}

void lc_cand_name(const lc_cand *c, char *buf, size_t len)
{
    const lc_plan *p = &c->plan;
    char algo[24];
    if (p->cp == 1) snprintf(algo, sizeof algo, "-");
    else if (p->algo == LC_CP_HYBRID) snprintf(algo, sizeof algo, "hybrid%d", p->ulysses);
    else snprintf(algo, sizeof algo, "%s", lc_cp_algo_name(p->algo));
    snprintf(buf, len, "%dx%dx%d%s %s %s %s%s", p->dp, p->cp, p->tp, p->sp ? "s" : "", algo,
             p->cp == 1 ? "-" : lc_cp_layout_name(p->layout), p->cp == 1 ? "-" : lc_lowering_name(p->lowering),
             c->recompute ? " recompute" : "");
}

/* A link's index: 0 when `span` consecutive devices stay in one node. */
static int link_of(const lc_profile *p, const lc_plan_req *r, int span)
{
    int g = r->per_node > 0 ? r->per_node : p->per_node;
    return span > g ? 1 : 0;
}

static int low_idx(lc_lowering l) { return l == LC_LOWER_TWO_SIDED ? 1 : l == LC_LOWER_ZERO_COPY ? 2 : 0; }

/* One transfer of `bytes` over link k by lowering l. */
static double xfer_s(const lc_profile *p, int k, int l, double bytes)
{
    return p->lat_us[k][l] * 1e-6 + bytes / (p->gbs[k][l] * 1e9);
}

/* An all-reduce of `bytes` over n members on link k (ring bus bandwidth). */
static double allreduce_s(const lc_profile *p, int k, int n, double bytes)
{
    if (n <= 1) return 0;
    return p->ar_lat_us[k] * 1e-6 * ceil(log2(n)) + bytes * 2.0 * (n - 1) / n / (p->ar_gbs[k] * 1e9);
}

/* The attention rate at head dim hd and rows per call, GFLOP/s of one core or GPU. */
static double attn_rate(const lc_profile *p, int d, double hd, double rows)
{
    double t = clampd((hd - 64.0) / 64.0, 0, 1);
    double base = p->attn[d][0] * (1 - t) + p->attn[d][1] * t;
    double f = p->attn_len > 0 && rows > 0 ? log2(rows / p->attn_len) / 2.0 : 0;
    return base * clampd(1.0 + (p->attn_long - 1.0) * f, 0.5, p->attn_long > 1 ? p->attn_long : 1.0);
}

int lc_planner_predict(const lc_profile *p, const lc_plan_req *r, const lc_cand *c, lc_pred *o, char *err,
                       size_t errlen)
{
    char tmp[8];
    if (!err) err = tmp, errlen = sizeof tmp;
    memset(o, 0, sizeof *o);
    o->c = *c;
    const lc_plan *pl = &c->plan;
    const lc_model_config *m = &r->model;
    int D = pl->dp, C = pl->cp, T = pl->tp, P = D * C * T;
    if (P != r->pes) return snprintf(err, errlen, "%d x %d x %d is not %d PEs", D, C, T, r->pes), -1;
    if (r->batch % D) return snprintf(err, errlen, "batch %d does not split over DP %d", r->batch, D), -1;
    if (lc_model_tp_check(m, T, err, errlen)) return -1;
    lc_plan v = *pl;
    if (lc_plan_validate(&v, P, err, errlen)) return -1;
    shard s = shard_of(m, T);
    if (C > 1 && (pl->algo == LC_CP_ULYSSES || pl->algo == LC_CP_HYBRID) &&
        lc_plan_heads_split((int)s.hl, (int)s.hkvl, lc_plan_ulysses_degree(pl), err, errlen))
        return -1;
    int d = r->dtype == LC_DT_BF16;
    double es = d ? 2.0 : 4.0, S = (double)r->seq, rows = S / C;
    int n_pad = 0;
    lc_cp_layout_positions(pl->layout, r->seq, C, 0, NULL, &n_pad);
    if (n_pad < 1) return snprintf(err, errlen, "%lld tokens do not cover %d CP PEs", (long long)r->seq, C), -1;

    /* memory, per device */
    lc_model_run run = {.plan = pl, .compute = r->dtype, .recompute = c->recompute, .window = r->window,
                        .threads = 1};
    lc_model_mem mm;
    if (lc_model_memory_estimate(m, &run, &mm)) return snprintf(err, errlen, "no memory estimate"), -1;
    o->mem_weights = mm.weights;
    o->mem_grads = mm.grads;
    o->mem_optim = 8.0 * s.params; /* AdamW's two fp32 moments */
    o->mem_act = mm.activations + mm.attention;
    o->mem_total = o->mem_weights + o->mem_grads + o->mem_optim + o->mem_act + p->base_bytes;
    double budget = p->gpu ? p->mem_bytes : p->mem_bytes / P;
    o->fits = o->mem_total <= budget;

    /* compute of one micro-batch (one sequence per DP replica): a PE's rate. On a CPU host the
     * PEs share the cores: t threads each, or a share of one core when they outnumber them. */
    double speed = 1.0;
    if (!p->gpu) {
        double t = floor((double)p->cores / P);
        if (t < 1) speed = (double)p->cores / P;
        else {
            double eff = p->cores > 1 ? 1 + (p->thread_eff - 1) * (t - 1) / (p->cores - 1) : 1;
            speed = t * eff;
        }
    }
    double rec = c->recompute ? 8.0 / 6.0 : 1.0;
    double mm_flops = 6.0 * s.mm_params * rows + (c->recompute ? 2.0 * s.layer_w * m->n_layers * rows : 0);
    o->t_matmul = mm_flops / (p->gemm[d] * 1e9 * speed);
    /* attention: 6 * L * dim * S FLOPs per token (causal), this PE's heads and rows */
    double wfac = 1.0;
    if (r->window > 0 && r->window < S) wfac = (r->window - (double)r->window * r->window / (2 * S)) / (S / 2);
    int U = C > 1 ? lc_plan_ulysses_degree(pl) : 1;
    int ring = pl->algo == LC_CP_ULYSSES ? 1 : C / U; /* the PEs a ring (or all-gather) spans */
    double imb = pl->layout == LC_CP_CONTIGUOUS && ring > 1 ? (2.0 * ring - 1) / ring : 1.0;
    double at_flops = 6.0 * m->n_layers * s.qdim * S * rows * wfac * rec * imb;
    double call_rows = U > 1 ? rows * U : rows; /* Ulysses: a group's rows per call */
    o->t_attn = at_flops / (attn_rate(p, d, s.hd, call_rows) * 1e9 * speed);
    o->t_other = lc_planner_rest_units(m, (int64_t)rows, T, pl->sp) * p->other_ns * 1e-9 / speed;

    /* CP communication of one micro-batch */
    double t_cp = 0, x_cp = 0;
    if (C > 1) {
        int l = low_idx(pl->lowering);
        double hkv_r = U > 1 ? (s.hkvl >= U ? s.hkvl / U : 1.0) : s.hkvl, hq_r = s.hl / U;
        double rrows = rows * U; /* the ring's block rows: a group's under hybrid */
        double kv = 2.0 * rrows * hkv_r * s.hd * es + rrows * 8, acc = 2.0 * rrows * hkv_r * s.hd * 4;
        int kring = link_of(p, r, T * C);
        double steps = ring - 1, n_x = 0, bytes = 0;
        if (ring > 1) {
            /* forward: the KV blocks; backward: the KV blocks and the dK/dV accumulators */
            n_x = steps * (2 + 1) * m->n_layers * (c->recompute ? 4.0 / 3.0 : 1.0);
            bytes = steps * (2 * kv + acc + (c->recompute ? kv : 0)) * m->n_layers;
        }
        double ring_s = n_x * p->lat_us[kring][l] * 1e-6 + (bytes > 0 ? bytes / (p->gbs[kring][l] * 1e9) : 0);
        if (pl->lowering == LC_LOWER_ZERO_COPY) ring_s = n_x * p->lat_us[kring][l] * 1e-6; /* read in place */
        double exposed = ring_s;
        if (p->overlap && ring > 1 && pl->algo != LC_CP_ALLGATHER) {
            /* a transfer hides behind the block computed meanwhile; what sticks out is exposed */
            double per = ring_s / steps, blk = (o->t_attn / ring);
            exposed = steps * (fmax(0, per - blk) + p->lat_us[kring][l] * 1e-6);
            if (l == 1) o->t_attn += p->two_sided_tax * fmin(per, blk) * steps;
        }
        t_cp += ring_s;
        x_cp += exposed;
        if (U > 1) { /* the all-to-alls: U - 1 pieces out and back, fwd and bwd, not overlapped */
            int kg = link_of(p, r, T * U);
            double n = rows, qrow = hq_r * s.hd, kvrow = hkv_r * s.hd;
            double fin = n * (qrow + 2 * kvrow) * es, fout = n * (qrow + hq_r) * 4;
            double bin = n * (2 * qrow + 2 * kvrow) * es + 2 * n * hq_r * 4, bout = n * (qrow + 2 * kvrow) * 4;
            double per_layer = (U - 1) * (xfer_s(p, kg, l, fin) + xfer_s(p, kg, l, fout) + xfer_s(p, kg, l, bin) +
                                          xfer_s(p, kg, l, bout) + (c->recompute ? xfer_s(p, kg, l, fin) : 0));
            if (pl->lowering == LC_LOWER_ZERO_COPY) per_layer *= 0.5; /* one copy instead of two */
            t_cp += per_layer * m->n_layers;
            x_cp += per_layer * m->n_layers;
        }
    }
    /* TP: per layer two all-reduces forward and two backward (sp: reduce-scatters and
     * all-gathers of the same volume), two more when the forward is recomputed */
    double t_tp = 0;
    if (T > 1) {
        int kt = link_of(p, r, T);
        double per = allreduce_s(p, kt, T, (double)n_pad * m->dim * 4);
        t_tp = per * m->n_layers * (c->recompute ? 6 : 4) + 3 * allreduce_s(p, kt, T, (double)n_pad * 4);
    }
    int A = r->batch / D; /* micro-batches per replica */
    o->t_matmul *= A, o->t_attn *= A, o->t_other *= A;
    o->t_cp = t_cp * A, o->x_cp = x_cp * A;
    o->t_tp = o->x_tp = t_tp * A;
    /* the gradients, summed over the PEs that hold the same slice (DP x CP), after backward */
    o->t_dp = o->x_dp = allreduce_s(p, link_of(p, r, P), D * C, s.params * 4);
    o->t_optim = s.params * p->adamw_ns * 1e-9 / speed;
    o->t_step = o->t_matmul + o->t_attn + o->t_other + o->x_cp + o->x_tp + o->x_dp + o->t_optim;
    o->tok_s = r->batch * S / o->t_step;
    return 0;
}

static int cmp_pred(const void *a, const void *b)
{
    const lc_pred *x = a, *y = b;
    if (x->fits != y->fits) return y->fits - x->fits;
    return (x->t_step > y->t_step) - (x->t_step < y->t_step);
}

int lc_planner_enumerate(const lc_profile *p, const lc_plan_req *r, lc_pred **out, int *n)
{
    int cap = 1024, k = 0;
    lc_pred *rows = malloc(sizeof *rows * (size_t)cap);
    if (!rows) return -1;
    static const lc_cp_layout layouts[] = {LC_CP_ZIGZAG, LC_CP_STRIPED, LC_CP_CONTIGUOUS};
    static const lc_lowering lows[] = {LC_LOWER_ONE_SIDED, LC_LOWER_TWO_SIDED, LC_LOWER_ZERO_COPY};
    for (int D = 1; D <= r->pes; D++) {
        if (r->pes % D) continue;
        for (int C = 1; C <= r->pes / D; C++) {
            if ((r->pes / D) % C) continue;
            int T = r->pes / D / C;
            for (int sp = 0; sp <= (T > 1); sp++)
                for (int a = 0; a < (C > 1 ? 4 : 1); a++)
                    for (int U = 2; U <= (a == 3 ? C - 1 : 2); U++) {
                        if (a == 3 && C % U) continue;
                        for (int li = 0; li < (C > 1 && a != 2 ? 3 : 1); li++)
                            for (int lo = 0; lo < (C > 1 ? 3 : 1); lo++) {
                                if (C > 1 && !(p->gbs[0][lo] > 0)) continue;
                                for (int rc = 0; rc < 2; rc++) {
                                    lc_cand c = {.recompute = rc};
                                    c.plan = (lc_plan){.dp = D, .cp = C, .tp = T, .sp = sp, .order = {0, 1, 2},
                                                       .seq_len = r->seq, .layout = layouts[li],
                                                       .algo = a == 0 ? LC_CP_RING : a == 1 ? LC_CP_ALLGATHER
                                                               : a == 2 ? LC_CP_ULYSSES : LC_CP_HYBRID,
                                                       .ulysses = a == 3 ? U : 0,
                                                       .lowering = C > 1 ? lows[lo] : LC_LOWER_ONE_SIDED};
                                    if (k == cap) {
                                        lc_pred *g = realloc(rows, sizeof *rows * (size_t)(cap *= 2));
                                        if (!g) return free(rows), -1;
                                        rows = g;
                                    }
                                    if (!lc_planner_predict(p, r, &c, &rows[k], NULL, 0)) k++;
                                }
                            }
                    }
        }
    }
    qsort(rows, (size_t)k, sizeof *rows, cmp_pred);
    *out = rows;
    *n = k;
    return 0;
}

void lc_planner_explain(const lc_pred *rows, int n, char *buf, size_t len)
{
    if (n < 1 || !rows[0].fits) {
        snprintf(buf, len, "no layout fits in memory");
        return;
    }
    const lc_pred *b = &rows[0], *o = NULL;
    for (int i = 1; i < n && !o; i++) /* the best row of another mesh or algorithm */
        if (rows[i].fits && (rows[i].c.plan.dp != b->c.plan.dp || rows[i].c.plan.cp != b->c.plan.cp ||
                             rows[i].c.plan.tp != b->c.plan.tp || rows[i].c.plan.algo != b->c.plan.algo))
            o = &rows[i];
    char me[96], other[96];
    lc_cand_name(&b->c, me, sizeof me);
    double comp = b->t_matmul + b->t_attn + b->t_other + b->t_optim;
    if (!o) {
        snprintf(buf, len, "%s: the only layout that fits (compute %.0f%% of the step)", me, 100 * comp / b->t_step);
        return;
    }
    lc_cand_name(&o->c, other, sizeof other);
    const char *names[] = {"compute", "exposed CP communication", "exposed TP communication",
                           "the gradient all-reduce"};
    double dv[4] = {(o->t_matmul + o->t_attn + o->t_other + o->t_optim) - comp, o->x_cp - b->x_cp,
                    o->x_tp - b->x_tp, o->x_dp - b->x_dp};
    int w = 0;
    for (int i = 1; i < 4; i++)
        if (dv[i] > dv[w]) w = i;
    if (o->t_step < 1.01 * b->t_step) {
        snprintf(buf, len, "%s: ties within 1%% with %s (the cost model cannot tell them apart); %.2f GiB per device",
                 me, other, b->mem_total / 1073741824.0);
        return;
    }
    snprintf(buf, len, "%s: %.1f%% faster than the best other mesh or algorithm (%s), which spends %.3g s more on %s; "
             "%.2f GiB per device", me, 100 * (o->t_step / b->t_step - 1), other, dv[w], names[w],
             b->mem_total / 1073741824.0);
}
