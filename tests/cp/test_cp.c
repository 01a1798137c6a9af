/* Context-parallel attention against the single-PE kernel and the float64 oracle.
 *
 *   test_cp layout               layout maps (no world needed)
 *   test_cp sweep [FIRST COUNT]  a matrix of layouts x masks x dtypes x GQA x lengths for
 *                                this world's size, every algorithm and lowering
 *   test_cp stress N             N steps alternating inputs and lowerings, bit-compared
 *   test_cp die VICTIM HOW       PE VICTIM dies mid-ring (HOW = exit | kill); the others
 *                                must stop with an error naming it
 *   test_cp errors               argument errors
 *   test_cp teams                plans on teams of 2 inside the world, one team and all at once
 *
 * Run under `longctx launch -n P`. Inputs are fresh random each run; the seed is printed
 * and LONGCTX_SEED overrides it.
 */
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/fail.h"
#include "common/rng.h"
#include "longctx/cp.h"

static uint64_t g_rng, g_seed;
static int g_fail;
static lc_world *g_w;
static lc_team *g_t;
static int g_me, g_P;

static uint64_t rnd(void) { return lc_test_rng(&g_rng); }
static double urand(void) { return (double)(rnd() >> 11) * (1.0 / 9007199254740992.0); }

#define FAIL(...) LC_TEST_FAIL_PE(g_fail, g_me, __VA_ARGS__)

static const char *mask_name(unsigned m)
{
    static const char *n[] = {"none", "causal", "window", "causal+window",
                              "doc",  "causal+doc", "window+doc", "causal+window+doc"};
    return n[m & 7];
}

typedef struct {
    int64_t S, window;
    int hq, hkv, d;
    lc_dtype dt;
    lc_cp_layout layout;
    unsigned mask;
} tcase;

/* Whole-sequence inputs (storage dtype + float64 values) and the two references. */
typedef struct {
    tcase c;
    void *q, *k, *v, *dout;
    double *qd, *kd, *vd, *doutd;
    int32_t *doc;
    double *o_ref, *lse_ref, *dq_ref, *dk_ref, *dv_ref;    /* float64 oracle */
    float *o_one, *lse_one, *dq_one, *dk_one, *dv_one;     /* single-PE kernels */
} prob;

static void fill(void *x, double *xd, size_t n, lc_dtype dt)
{
    for (size_t i = 0; i < n; i++) {
        float f = (float)(urand() * 2.0 - 1.0);
        if (dt == LC_DT_BF16) {
            lc_bf16 b = lc_f32_to_bf16(f);
            ((lc_bf16 *)x)[i] = b;
            xd[i] = lc_bf16_to_f32(b);
        } else {
            ((float *)x)[i] = f;
            xd[i] = f;
        }
    }
}

static double val(const void *x, lc_dtype dt, size_t i)
{
    return dt == LC_DT_BF16 ? lc_bf16_to_f32(((const lc_bf16 *)x)[i]) : ((const float *)x)[i];
}

static lc_attn_desc full_desc(const prob *p)
{
    lc_attn_desc a = {.sq = (int)p->c.S, .sk = (int)p->c.S, .hq = p->c.hq, .hkv = p->c.hkv,
                      .d = p->c.d, .qkv_dtype = p->c.dt, .mask = {p->c.mask, p->c.window, p->doc, p->doc},
                      .threads = 1};
    return a;
}

static void make_prob(prob *p, const tcase *c, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    p->c = *c;
    g_rng = seed;
    size_t S = (size_t)c->S, nq = S * c->hq * c->d, nk = S * c->hkv * c->d, es = lc_dtype_size(c->dt);
    p->q = malloc(nq * es), p->dout = malloc(nq * es), p->k = malloc(nk * es), p->v = malloc(nk * es);
    p->qd = malloc(nq * 8), p->doutd = malloc(nq * 8), p->kd = malloc(nk * 8), p->vd = malloc(nk * 8);
    p->doc = malloc(S * 4);
    fill(p->q, p->qd, nq, c->dt);
    fill(p->k, p->kd, nk, c->dt);
    fill(p->v, p->vd, nk, c->dt);
    fill(p->dout, p->doutd, nq, c->dt);
    /* Documents of random length, so they straddle every kind of PE boundary. */
    int32_t d = 0;
    for (size_t i = 0; i < S; i++) {
        if (i && urand() < 1.0 / 23) d++;
        p->doc[i] = d;
    }
    p->o_ref = malloc(nq * 8), p->lse_ref = malloc(S * c->hq * 8);
    p->dq_ref = malloc(nq * 8), p->dk_ref = malloc(nk * 8), p->dv_ref = malloc(nk * 8);
    lc_attn_desc a = full_desc(p);
    if (lc_attn_ref_fwd(&a, p->qd, p->kd, p->vd, p->o_ref, p->lse_ref) ||
        lc_attn_ref_bwd(&a, p->qd, p->kd, p->vd, p->doutd, p->dq_ref, p->dk_ref, p->dv_ref))
        FAIL("oracle: %s", lc_attn_last_error());
    p->o_one = malloc(nq * 4), p->lse_one = malloc(S * c->hq * 4);
    p->dq_one = calloc(nq, 4), p->dk_one = calloc(nk, 4), p->dv_one = calloc(nk, 4);
    float *delta = malloc(S * c->hq * 4);
    void *outx = malloc(nq * es);
    lc_attn_fwd_init(&a, p->o_one, p->lse_one);
    if (lc_attn_fwd_block(&a, p->q, p->k, p->v, p->o_one, p->lse_one) ||
        lc_attn_fwd_finish(&a, p->o_one, outx, c->dt))
        FAIL("single-PE forward: %s", lc_attn_last_error());
    float *o32 = malloc(nq * 4);
    for (size_t i = 0; i < nq; i++) o32[i] = (float)val(outx, c->dt, i);
    if (lc_attn_bwd_prep(&a, o32, p->dout, delta) ||
        lc_attn_bwd_block(&a, p->q, p->k, p->v, p->dout, p->lse_one, delta, p->dq_one, p->dk_one,
                          p->dv_one))
        FAIL("single-PE backward: %s", lc_attn_last_error());
    memcpy(p->o_one, o32, nq * 4);
    free(o32);
    free(delta);
    free(outx);
}

static void free_prob(prob *p)
{
    void *x[] = {p->q, p->k, p->v, p->dout, p->qd, p->kd, p->vd, p->doutd, p->doc, p->o_ref,
                 p->lse_ref, p->dq_ref, p->dk_ref, p->dv_ref, p->o_one, p->lse_one, p->dq_one,
                 p->dk_one, p->dv_one};
    for (size_t i = 0; i < sizeof x / sizeof *x; i++) free(x[i]);
}

/* My shard of the inputs and my outputs. */
typedef struct {
    int rows;
    void *q, *k, *v, *dout, *out;
    int32_t *doc;
    float *lse, *dq, *dk, *dv;
} local;

static void make_local(local *l, const lc_cp *cp, const prob *p)
{
    const tcase *c = &p->c;
    size_t es = lc_dtype_size(c->dt), rq = (size_t)c->hq * c->d, rk = (size_t)c->hkv * c->d;
    int n = l->rows = lc_cp_local_rows(cp, g_me);
    size_t m = n ? (size_t)n : 1;
    l->q = malloc(m * rq * es), l->dout = malloc(m * rq * es), l->out = malloc(m * rq * es);
    l->k = malloc(m * rk * es), l->v = malloc(m * rk * es), l->doc = malloc(m * 4);
    l->lse = malloc(m * c->hq * 4), l->dq = malloc(m * rq * 4);
    l->dk = malloc(m * rk * 4), l->dv = malloc(m * rk * 4);
    lc_cp_shard(cp, g_me, p->q, rq * es, l->q);
    lc_cp_shard(cp, g_me, p->dout, rq * es, l->dout);
    lc_cp_shard(cp, g_me, p->k, rk * es, l->k);
    lc_cp_shard(cp, g_me, p->v, rk * es, l->v);
    lc_cp_shard(cp, g_me, p->doc, 4, l->doc);
}

static void free_local(local *l)
{
    void *x[] = {l->q, l->k, l->v, l->dout, l->out, l->doc, l->lse, l->dq, l->dk, l->dv};
    for (size_t i = 0; i < sizeof x / sizeof *x; i++) free(x[i]);
}

static void poison(local *l, const tcase *c)
{
    size_t n = (size_t)l->rows, rq = (size_t)c->hq * c->d, rk = (size_t)c->hkv * c->d;
    memset(l->out, 0xff, n * rq * lc_dtype_size(c->dt)); /* all-ones bits: NaN in f32 and bf16 */
    for (size_t i = 0; i < n * c->hq; i++) l->lse[i] = NAN;
    for (size_t i = 0; i < n * rq; i++) l->dq[i] = NAN;
    for (size_t i = 0; i < n * rk; i++) l->dk[i] = l->dv[i] = NAN;
}

/* ||x - ref|| / ||ref|| over the whole sequence (my rows, summed over the team). */
typedef struct {
    double e[5][2];
} errs;

static void acc_err(const lc_cp *cp, double *e, const void *x, lc_dtype dt, size_t row,
                    const double *refd, const float *reff, int rows)
{
    for (int i = 0; i < rows; i++) {
        size_t g = (size_t)lc_cp_global_pos(cp, g_me, i);
        for (size_t j = 0; j < row; j++) {
            double a = val(x, dt, (size_t)i * row + j);
            double r = refd ? refd[g * row + j] : reff[g * row + j];
            e[0] += (a - r) * (a - r);
            e[1] += r * r;
        }
    }
}

static void rel_errors(const lc_cp *cp, const prob *p, const local *l, int oracle, double out[5])
{
    const tcase *c = &p->c;
    size_t rq = (size_t)c->hq * c->d, rk = (size_t)c->hkv * c->d;
    double e[10] = {0}, s[10];
    acc_err(cp, e + 0, l->out, c->dt, rq, oracle ? p->o_ref : NULL, p->o_one, l->rows);
    acc_err(cp, e + 2, l->lse, LC_DT_F32, c->hq, oracle ? p->lse_ref : NULL, p->lse_one, l->rows);
    acc_err(cp, e + 4, l->dq, LC_DT_F32, rq, oracle ? p->dq_ref : NULL, p->dq_one, l->rows);
    acc_err(cp, e + 6, l->dk, LC_DT_F32, rk, oracle ? p->dk_ref : NULL, p->dk_one, l->rows);
    acc_err(cp, e + 8, l->dv, LC_DT_F32, rk, oracle ? p->dv_ref : NULL, p->dv_one, l->rows);
    if (lc_allreduce_sum_f64(g_t, s, e, 10)) FAIL("allreduce: %s", lc_last_error(g_w));
    /* A reference that is exactly zero (one key per query: dq = dk = 0, the difference of the
     * two equal terms dP = dO.V and D = rowsum(dO * O)) is judged against the scale of those
     * terms, which their fp32 roundoff is relative to: scale * |dO.V| * |k| per element, i.e.
     * (1/sqrt d) * sqrt(d) * (1/sqrt 3)^3 for inputs uniform in [-1, 1). Any other reference
     * keeps a floor of 1e-2 per element, far below any real tensor's norm here. */
    double n[5] = {(double)c->S * rq, (double)c->S * c->hq, (double)c->S * rq, (double)c->S * rk,
                   (double)c->S * rk};
    const double natural = 1.0 / (3.0 * sqrt(3.0));
    for (int i = 0; i < 5; i++)
        out[i] = sqrt(s[2 * i]) / (s[2 * i + 1] == 0 && (i == 2 || i == 3) ? natural * sqrt(n[i])
                                                                           : fmax(sqrt(s[2 * i + 1]), 1e-2 * sqrt(n[i])));
}

static int run_pass(lc_cp *cp, local *l, int inplace)
{
    const void *k = l->k, *v = l->v;
    if (inplace) { /* the caller writes K and V straight into the symmetric staging buffers */
        void *hk, *hv;
        if (lc_cp_kv_buffers(cp, &hk, &hv)) return -1;
        const lc_cp_config *c = lc_cp_get_config(cp);
        size_t b = (size_t)l->rows * c->hkv * c->d * lc_dtype_size(c->dtype);
        memcpy(hk, l->k, b);
        memcpy(hv, l->v, b);
        k = hk, v = hv;
    }
    int32_t *doc = (lc_cp_get_config(cp)->mask & LC_MASK_DOC) ? l->doc : NULL;
    int rc = lc_cp_forward(cp, l->q, k, v, doc, l->out, l->lse);
    if (!rc) rc = lc_cp_backward(cp, l->q, k, v, doc, l->out, l->lse, l->dout, l->dq, l->dk, l->dv);
    if (rc) FAIL("%s", lc_cp_last_error(cp));
    return rc;
}

typedef struct {
    const char *name;
    lc_cp_algo algo;
    lc_lowering low;
    int inplace;
} variant;

static const variant k_variants[] = {
    {"one_sided", LC_CP_RING, LC_LOWER_ONE_SIDED, 0},  {"two_sided", LC_CP_RING, LC_LOWER_TWO_SIDED, 0},
    {"zero_copy", LC_CP_RING, LC_LOWER_ZERO_COPY, 0},  {"auto", LC_CP_RING, LC_LOWER_AUTO, 0},
    {"allgather", LC_CP_ALLGATHER, LC_LOWER_AUTO, 0}, {"one_sided_inplace", LC_CP_RING, LC_LOWER_ONE_SIDED, 1},
    {"zero_copy_inplace", LC_CP_RING, LC_LOWER_ZERO_COPY, 1}};
#define NVAR ((int)(sizeof k_variants / sizeof *k_variants))

static int same(const local *a, const local *b, const tcase *c)
{
    size_t n = (size_t)a->rows, rq = (size_t)c->hq * c->d, rk = (size_t)c->hkv * c->d;
    return !memcmp(a->out, b->out, n * rq * lc_dtype_size(c->dt)) && !memcmp(a->lse, b->lse, n * c->hq * 4) &&
           !memcmp(a->dq, b->dq, n * rq * 4) && !memcmp(a->dk, b->dk, n * rk * 4) &&
           !memcmp(a->dv, b->dv, n * rk * 4);
}

static void copy_local(local *dst, const local *src, const tcase *c)
{
    size_t n = (size_t)src->rows, rq = (size_t)c->hq * c->d, rk = (size_t)c->hkv * c->d;
    memcpy(dst->out, src->out, n * rq * lc_dtype_size(c->dt));
    memcpy(dst->lse, src->lse, n * c->hq * 4);
    memcpy(dst->dq, src->dq, n * rq * 4);
    memcpy(dst->dk, src->dk, n * rk * 4);
    memcpy(dst->dv, src->dv, n * rk * 4);
}

/* Exactly the single-PE kernels' bits on my rows (summed over the team: 1 when all PEs agree). */
static int same_as_one(const lc_cp *cp, const prob *p, const local *l)
{
    const tcase *c = &p->c;
    size_t rq = (size_t)c->hq * c->d, rk = (size_t)c->hkv * c->d;
    double diff = 0, tot;
    for (int i = 0; i < l->rows && !diff; i++) {
        size_t g = (size_t)lc_cp_global_pos(cp, g_me, i);
        for (size_t j = 0; j < rq; j++)
            diff += (float)val(l->out, c->dt, i * rq + j) != p->o_one[g * rq + j] || l->dq[i * rq + j] != p->dq_one[g * rq + j];
        for (size_t j = 0; j < (size_t)c->hq; j++) diff += l->lse[i * c->hq + j] != p->lse_one[g * c->hq + j];
        for (size_t j = 0; j < rk; j++)
            diff += l->dk[i * rk + j] != p->dk_one[g * rk + j] || l->dv[i * rk + j] != p->dv_one[g * rk + j];
    }
    diff = diff != 0;
    lc_allreduce_sum_f64(g_t, &tot, &diff, 1);
    return tot == 0;
}

/* Ulysses (U = P) and hybrid (every U dividing P; U = 1 only up to P = 2, where it is the
 * ring run through a groups' inner plan) on the case's inputs, each U whose heads split,
 * with every all-to-all lowering: within tolerance of the oracle and the single PE, the
 * lowerings bit-identical to each other. Returns the plans run; *n_one counts those equal
 * to the single PE bit for bit. */
/* lc_cp_mem_estimate, made without a world (the planner's), must say what the plan holds. */
static void check_mem_estimate(const lc_cp *cp, const lc_cp_config *cfg, const char *what)
{
    double mine = (double)lc_cp_mem_bytes(cp), most;
    lc_allreduce_max_f64(g_t, &most, &mine, 1);
    double est = (double)lc_cp_mem_estimate(cfg, g_P);
    if (est != most) FAIL("%s: lc_cp_mem_estimate %.0f bytes, the plan holds %.0f (max over PEs)", what, est, most);
}

static int run_uly(const tcase *c, const prob *p, double tol, double *worst_or, double *worst_one, int *n_one)
{
    static const lc_lowering lows[] = {LC_LOWER_ONE_SIDED, LC_LOWER_TWO_SIDED, LC_LOWER_ZERO_COPY};
    static const char *what[] = {"out", "lse", "dq", "dk", "dv"};
    int plans = 0;
    for (int u = 1; u <= g_P; u++) {
        char why[200];
        if (g_P % u || (u == 1 && g_P > 2) || lc_plan_heads_split(c->hq, c->hkv, u, why, sizeof why)) continue;
        lc_cp_config cfg = {.plan.seq_len = c->S, .hq = c->hq, .hkv = c->hkv, .d = c->d, .dtype = c->dt,
                            .plan.layout = c->layout, .mask = c->mask, .window = c->window, .threads = 1,
                            .plan.algo = u == g_P ? LC_CP_ULYSSES : LC_CP_HYBRID, .plan.ulysses = u};
        lc_cp *cp;
        if (lc_cp_create(g_t, &cfg, &cp)) {
            FAIL("%s U=%d: lc_cp_create: %s", lc_cp_algo_name(cfg.plan.algo), u, lc_cp_last_error(NULL));
            continue;
        }
        check_mem_estimate(cp, &cfg, lc_cp_algo_name(cfg.plan.algo));
        local l, first;
        make_local(&l, cp, p);
        make_local(&first, cp, p);
        for (int li = 0; li < 3; li++) {
            if (lc_cp_set_algo(cp, cfg.plan.algo, lows[li])) FAIL("set_algo: %s", lc_cp_last_error(cp));
            poison(&l, c);
            if (run_pass(cp, &l, 0)) break;
            double eo[5], e1[5];
            rel_errors(cp, p, &l, 1, eo);
            rel_errors(cp, p, &l, 0, e1);
            for (int i = 0; i < 5; i++) {
                if (!(eo[i] < tol))
                    FAIL("%s U=%d %s %s vs oracle: %.3g (tol %g)", lc_cp_algo_name(cfg.plan.algo), u,
                         lc_lowering_name(lows[li]), what[i], eo[i], tol);
                if (!(e1[i] < tol))
                    FAIL("%s U=%d %s %s vs single PE: %.3g (tol %g)", lc_cp_algo_name(cfg.plan.algo), u,
                         lc_lowering_name(lows[li]), what[i], e1[i], tol);
                if (eo[i] > *worst_or) *worst_or = eo[i];
                if (e1[i] > *worst_one) *worst_one = e1[i];
            }
            if (li == 0) {
                copy_local(&first, &l, c);
                *n_one += same_as_one(cp, p, &l);
            } else {
                double diff = !same(&l, &first, c), tot;
                lc_allreduce_sum_f64(g_t, &tot, &diff, 1);
                if (tot != 0)
                    FAIL("%s U=%d: %s is not bit-identical to one_sided", lc_cp_algo_name(cfg.plan.algo), u,
                         lc_lowering_name(lows[li]));
            }
        }
        free_local(&l);
        free_local(&first);
        if (lc_cp_destroy(cp)) FAIL("lc_cp_destroy: %s", lc_last_error(g_w));
        plans++;
    }
    return plans;
}

static int run_case(const tcase *c, uint64_t seed)
{
    prob p;
    make_prob(&p, c, seed);
    lc_cp_config cfg = {.plan.seq_len = c->S, .hq = c->hq, .hkv = c->hkv, .d = c->d, .dtype = c->dt,
                        .plan.layout = c->layout, .mask = c->mask, .window = c->window, .threads = 1};
    lc_cp *cp;
    if (lc_cp_create(g_t, &cfg, &cp)) {
        FAIL("lc_cp_create failed");
        free_prob(&p);
        return -1;
    }
    check_mem_estimate(cp, &cfg, "ring");
    for (int pe = 0; pe < g_P; pe++) /* the layout maps both ways */
        for (int i = 0; i < lc_cp_padded_rows(cp); i++) {
            int32_t g = lc_cp_global_pos(cp, pe, i);
            int back_pe = -1;
            if ((g >= 0) != (i < lc_cp_local_rows(cp, pe)))
                FAIL("PE %d row %d: padding is not exactly the rows past lc_cp_local_rows", pe, i);
            if (g >= 0 && (lc_cp_local_index(cp, g, &back_pe) != i || back_pe != pe))
                FAIL("token %d: lc_cp_local_index does not invert lc_cp_global_pos", g);
        }
    local l, first;
    make_local(&l, cp, &p);
    make_local(&first, cp, &p);
    double tol = c->dt == LC_DT_BF16 ? 1e-2 : 1e-5;
    static const char *what[] = {"out", "lse", "dq", "dk", "dv"};
    double worst_or = 0, worst_one = 0;
    int fails0 = g_fail;
    for (int vi = 0; vi < NVAR; vi++) {
        const variant *v = &k_variants[vi];
        lc_cp_set_algo(cp, v->algo, v->low);
        poison(&l, c);
        if (run_pass(cp, &l, v->inplace)) break;
        double eo[5], e1[5];
        rel_errors(cp, &p, &l, 1, eo);
        rel_errors(cp, &p, &l, 0, e1);
        for (int i = 0; i < 5; i++) {
            if (!(eo[i] < tol)) FAIL("%s %s vs oracle: %.3g (tol %g)", v->name, what[i], eo[i], tol);
            if (!(e1[i] < tol)) FAIL("%s %s vs single PE: %.3g (tol %g)", v->name, what[i], e1[i], tol);
            if (eo[i] > worst_or) worst_or = eo[i];
            if (e1[i] > worst_one) worst_one = e1[i];
        }
        if (vi == 0) copy_local(&first, &l, c);
        else {
            double diff = !same(&l, &first, c), tot;
            lc_allreduce_sum_f64(g_t, &tot, &diff, 1);
            if (tot != 0) FAIL("%s is not bit-identical to one_sided (%g PEs differ)", v->name, tot);
        }
    }
    lc_cp_config ag = cfg; /* the all-gather variant has added its buffers to the plan */
    ag.plan.algo = LC_CP_ALLGATHER;
    if (g_P > 1) check_mem_estimate(cp, &ag, "allgather");
    int n_one = 0, n_uly = run_uly(c, &p, tol, &worst_or, &worst_one, &n_one);
    if (g_me == 0)
        printf("%s P=%d S=%lld %-10s %-18s %-4s hq/hkv=%d/%d window=%lld: worst rel err %.2e (oracle) "
               "%.2e (1 PE); %d ring variants bit-identical; %d Ulysses/hybrid plans x 3 lowerings "
               "bit-identical, %d of them to the single PE\n",
               g_fail == fails0 ? "ok  " : "FAIL", g_P, (long long)c->S, lc_cp_layout_name(c->layout),
               mask_name(c->mask), lc_dtype_name(c->dt), c->hq, c->hkv, (long long)c->window,
               worst_or, worst_one, NVAR, n_uly, n_one);
    fflush(stdout);
    free_local(&l);
    free_local(&first);
    if (lc_cp_destroy(cp)) FAIL("lc_cp_destroy: %s", lc_last_error(g_w));
    free_prob(&p);
    return 0;
}

/* The sweep covers every axis (layout, mask, dtype, GQA ratio, divisible or not, window
 * shorter or longer than a chunk) without the full product: case i cycles each axis at a
 * different stride. */
static const unsigned k_masks[] = {LC_MASK_NONE, LC_MASK_CAUSAL, LC_MASK_CAUSAL | LC_MASK_WINDOW,
                                   LC_MASK_WINDOW, LC_MASK_DOC, LC_MASK_CAUSAL | LC_MASK_DOC,
                                   LC_MASK_CAUSAL | LC_MASK_WINDOW | LC_MASK_DOC};
static const int k_gqa[][2] = {{4, 4}, {4, 2}, {4, 1}, {6, 2}};

static tcase sweep_case(int i, int P)
{
    tcase c = {0};
    int nm = (int)(sizeof k_masks / sizeof *k_masks);
    c.layout = (lc_cp_layout)(i % 3);
    c.mask = k_masks[(i / 3) % nm];
    c.dt = (i / 2) % 2 ? LC_DT_BF16 : LC_DT_F32;
    c.hq = k_gqa[i % 4][0];
    c.hkv = k_gqa[i % 4][1];
    if (P % 3 == 0) { /* heads that split over a Ulysses group of 3: 6/6, 6/3, 6/1 (and 6/2 that does not) */
        static const int h3[][2] = {{6, 6}, {6, 3}, {6, 1}, {6, 2}};
        c.hq = h3[i % 4][0];
        c.hkv = h3[i % 4][1];
    }
    c.d = 64;
    /* Even cases divide by 2P; odd ones leave a remainder. */
    c.S = i % 2 ? 2 * P * (96 / P) + 1 + (i % 5) : 2 * P * (120 / P);
    int64_t chunk = c.S / (2 * P);
    if (c.mask & LC_MASK_WINDOW) c.window = (i / 7) % 2 ? chunk * 3 / 2 + 1 : chunk / 3 + 1;
    return c;
}
#define NSWEEP 21

static int cmd_sweep(int argc, char **argv)
{
    int first = argc > 2 ? atoi(argv[2]) : 0, count = argc > 3 ? atoi(argv[3]) : NSWEEP;
    for (int i = first; i < first + count && i < NSWEEP; i++) {
        tcase c = sweep_case(i, g_P);
        run_case(&c, g_seed + (uint64_t)i * 7919);
    }
    if (first == 0) { /* a sequence shorter than the team: some PEs hold nothing at all */
        tcase c = {.S = g_P + 1, .hq = 2, .hkv = 1, .d = 64, .dt = LC_DT_F32,
                   .layout = LC_CP_ZIGZAG, .mask = LC_MASK_CAUSAL};
        run_case(&c, g_seed + 1);
        c.layout = LC_CP_CONTIGUOUS;
        c.S = g_P > 1 ? g_P - 1 : 1;
        run_case(&c, g_seed + 2);
    }
    return 0;
}

/* CP teams inside a bigger world (a DP x CP mesh): P PEs as P/2 teams of 2. Plans allocate
 * symmetric memory over their own team only, so (1) team 0 creates a plan while the other
 * teams keep to themselves, (2) every team creates a plan of a different shape at once, with
 * heaps that differ between teams (team 0 holds an extra block), and (3) a world plan is
 * created afterwards on those diverged heaps. Every plan is checked like the sweep. */
static int cmd_teams(void)
{
    lc_team *world = g_t, *x, *y;
    int wme = g_me, wP = g_P;
    if (wP < 4 || wP % 2) {
        if (wme == 0) printf("test_cp teams: needs an even P >= 4, got %d\n", wP);
        return 77;
    }
    if (lc_team_split_2d(world, 2, &x, &y)) {
        FAIL("lc_team_split_2d: %s", lc_last_error(g_w));
        return 1;
    }
    int row = wme / 2;
    g_t = x;
    g_me = lc_team_my_pe(x);
    g_P = lc_team_n_pes(x);
    /* (1) only team 0 */
    if (row == 0) {
        tcase c = sweep_case(3, g_P);
        run_case(&c, g_seed + 11);
    } else { /* the other teams stay busy on their own team meanwhile */
        for (int i = 0; i < 50; i++) {
            double one = 1, two;
            if (lc_allreduce_sum_f64(x, &two, &one, 1) || two != 2) FAIL("team allreduce: %s", lc_last_error(g_w));
        }
    }
    /* (2) every team at once, different shapes; team 0's heap holds an extra block */
    void *extra = row == 0 ? lc_symm_alloc_team(x, 3 << 20) : NULL;
    if (row == 0 && !extra) FAIL("lc_symm_alloc_team: %s", lc_last_error(g_w));
    tcase c = sweep_case(row % 2 ? 5 : 8, g_P);
    c.S += row; /* every team a different length */
    run_case(&c, g_seed + 20 + (uint64_t)row);
    /* (3) a world plan on heaps that now differ between teams */
    g_t = world;
    g_me = wme;
    g_P = wP;
    tcase cw = sweep_case(1, g_P);
    run_case(&cw, g_seed + 30);
    if (row == 0 && lc_symm_free_team(x, extra)) FAIL("lc_symm_free_team: %s", lc_last_error(g_w));
    lc_team_destroy(x);
    lc_team_destroy(y);
    if (g_me == 0) printf("%s CP plans on teams of 2 inside a world of %d\n", g_fail ? "FAIL" : "ok  ", g_P);
    return 0;
}

static int cmd_layout(void)
{
    for (int P = 1; P <= 5; P++)
        for (int L = 0; L < 3; L++)
            for (int64_t S = 1; S <= 40; S++) {
                int seen[64] = {0}, n_pad = 0;
                for (int pe = 0; pe < P; pe++) {
                    int32_t pos[64];
                    int real = lc_cp_layout_positions((lc_cp_layout)L, S, P, pe, pos, &n_pad);
                    if (real < 0 || n_pad * P < S || n_pad > 64) {
                        FAIL("layout %d S %lld P %d: real %d n_pad %d", L, (long long)S, P, real, n_pad);
                        continue;
                    }
                    for (int i = 0; i < n_pad; i++) {
                        int32_t g = pos[i];
                        if ((i < real) != (g >= 0)) FAIL("layout %d S %lld P %d: padding not at the end", L, (long long)S, P);
                        if (g >= S) FAIL("layout %d: position %d >= S", L, g);
                        if (g >= 0 && seen[g]++) FAIL("layout %d S %lld P %d: token %d twice", L, (long long)S, P, g);
                        if (i && g >= 0 && g <= pos[i - 1]) FAIL("layout %d: positions not increasing", L);
                    }
                }
                for (int g = 0; g < S; g++)
                    if (seen[g] != 1) FAIL("layout %d S %lld P %d: token %d held %d times", L, (long long)S, P, g, seen[g]);
            }
    /* Zigzag's chunks: PE r holds chunks r and 2P-1-r. */
    int32_t pos[16];
    int n_pad;
    lc_cp_layout_positions(LC_CP_ZIGZAG, 16, 4, 1, pos, &n_pad);
    if (n_pad != 4 || pos[0] != 2 || pos[1] != 3 || pos[2] != 12 || pos[3] != 13) FAIL("zigzag map");
    lc_cp_layout_positions(LC_CP_STRIPED, 16, 4, 1, pos, &n_pad);
    if (pos[0] != 1 || pos[1] != 5) FAIL("striped map");
    printf("%s layout maps\n", g_fail ? "FAIL" : "ok  ");
    return 0;
}

static tcase stress_case(void)
{
    tcase c = {.S = 37 * g_P + 3, .hq = 4, .hkv = 2, .d = 64, .dt = LC_DT_F32, .layout = LC_CP_ZIGZAG,
               .mask = LC_MASK_CAUSAL | LC_MASK_DOC};
    return c;
}

static int cmd_stress(int n)
{
    tcase c = stress_case();
    prob pa, pb;
    make_prob(&pa, &c, g_seed);
    make_prob(&pb, &c, g_seed + 99);
    lc_cp_config cfg = {.plan.seq_len = c.S, .hq = c.hq, .hkv = c.hkv, .d = c.d, .dtype = c.dt,
                        .plan.layout = c.layout, .mask = c.mask, .threads = 1};
    lc_cp *cp;
    if (lc_cp_create(g_t, &cfg, &cp)) { FAIL("create"); return 1; }
    local la, lb, l, ra, rb;
    make_local(&la, cp, &pa);
    make_local(&lb, cp, &pb);
    make_local(&ra, cp, &pa);
    make_local(&rb, cp, &pa);
    for (int s = 0; s < 2; s++) {
        local *src = s ? &lb : &la, *dst = s ? &rb : &ra;
        lc_cp_set_algo(cp, LC_CP_RING, LC_LOWER_ONE_SIDED);
        if (run_pass(cp, src, 0)) return 1;
        copy_local(dst, src, &c);
    }
    int bad = 0;
    for (int it = 0; it < n && !bad; it++) {
        const variant *v = &k_variants[it % NVAR];
        l = it % 3 ? la : lb; /* an irregular pattern of input sets */
        lc_cp_set_algo(cp, v->algo, v->low);
        poison(&l, &c);
        if (run_pass(cp, &l, v->inplace)) return 1;
        if (!same(&l, it % 3 ? &ra : &rb, &c)) {
            FAIL("stress step %d (%s): result differs from the first run of the same input", it, v->name);
            bad = 1;
        }
    }
    double b = bad, tot;
    lc_allreduce_sum_f64(g_t, &tot, &b, 1);
    if (g_me == 0) printf("%s stress P=%d: %d steps over %d lowerings, bit-identical\n", tot ? "FAIL" : "ok  ", g_P, n, NVAR);
    free_local(&la);
    free_local(&lb);
    free_local(&ra);
    free_local(&rb);
    free_prob(&pa);
    free_prob(&pb);
    lc_cp_destroy(cp);
    return 0;
}

/* bf16 training keeps the forward's fp32 output for the backward (lc_cp_forward_ex /
 * lc_cp_backward_ex): the row sums D = rowsum(dO * O) then come from the unrounded output
 * and dQ, dK, dV match the float64 oracle to fp32 accuracy instead of bf16's. */
static int cmd_f32out(void)
{
    static const struct { lc_cp_layout l; unsigned m; } cases[] = {
        {LC_CP_ZIGZAG, LC_MASK_CAUSAL}, {LC_CP_CONTIGUOUS, LC_MASK_CAUSAL | LC_MASK_DOC}, {LC_CP_STRIPED, 0}};
    double worst_new = 0, worst_old = 0;
    for (int ci = 0; ci < 3; ci++) {
        tcase c = {.S = 2 * g_P * 60 + 5, .hq = 4, .hkv = 2, .d = 64, .dt = LC_DT_BF16, .layout = cases[ci].l,
                   .mask = cases[ci].m};
        prob p;
        make_prob(&p, &c, g_seed + 31 * (uint64_t)ci);
        lc_cp_config cfg = {.plan.seq_len = c.S, .hq = c.hq, .hkv = c.hkv, .d = c.d, .dtype = c.dt, .plan.layout = c.layout,
                            .mask = c.mask, .threads = 1};
        lc_cp *cp;
        if (lc_cp_create(g_t, &cfg, &cp)) { FAIL("create: %s", lc_cp_last_error(NULL)); return 1; }
        local l, old;
        make_local(&l, cp, &p);
        make_local(&old, cp, &p);
        size_t n = (size_t)l.rows, rq = (size_t)c.hq * c.d;
        float *o32 = malloc((n ? n : 1) * rq * 4);
        for (size_t i = 0; i < n * rq; i++) o32[i] = NAN;
        int32_t *doc = (c.mask & LC_MASK_DOC) ? l.doc : NULL;
        poison(&l, &c);
        poison(&old, &c);
        int rc = lc_cp_forward_ex(cp, l.q, l.k, l.v, doc, l.out, o32, l.lse);
        if (!rc) rc = lc_cp_backward_ex(cp, l.q, l.k, l.v, doc, NULL, o32, l.lse, l.dout, l.dq, l.dk, l.dv);
        if (!rc) rc = lc_cp_forward(cp, old.q, old.k, old.v, doc, old.out, old.lse);
        if (!rc) rc = lc_cp_backward(cp, old.q, old.k, old.v, doc, old.out, old.lse, old.dout, old.dq, old.dk, old.dv);
        if (rc) { FAIL("%s", lc_cp_last_error(cp)); return 1; }
        if (memcmp(l.out, old.out, n * rq * 2) || memcmp(l.lse, old.lse, n * c.hq * 4))
            FAIL("forward_ex's bf16 out / lse differ from lc_cp_forward's");
        for (size_t i = 0; i < n * rq; i++)
            if (((lc_bf16 *)l.out)[i] != lc_f32_to_bf16(o32[i])) { FAIL("out is not out_f32 rounded at %zu", i); break; }
        double en[5], eo[5];
        rel_errors(cp, &p, &l, 1, en);
        rel_errors(cp, &p, &old, 1, eo);
        /* out_f32 against the oracle too: put it where rel_errors looks. */
        double ef[5];
        local lf = l;
        lf.out = o32;
        p.c.dt = LC_DT_F32;
        rel_errors(cp, &p, &lf, 1, ef);
        p.c.dt = LC_DT_BF16;
        if (!(ef[0] < 1e-5)) FAIL("out_f32 vs oracle: %.3g", ef[0]);
        for (int i = 2; i < 5; i++) {
            if (!(en[i] < 1e-5)) FAIL("%s with out_f32 vs oracle: %.3g (bound 1e-5)", (const char *[]){"", "", "dq", "dk", "dv"}[i], en[i]);
            if (en[i] > worst_new) worst_new = en[i];
            if (eo[i] > worst_old) worst_old = eo[i];
        }
        if (g_me == 0)
            printf("     %-10s %-10s bf16 S=%lld: dq/dk/dv rel err with out_f32 %.2e %.2e %.2e, from bf16 out %.2e %.2e %.2e\n",
                   lc_cp_layout_name(c.layout), mask_name(c.mask), (long long)c.S, en[2], en[3], en[4], eo[2], eo[3], eo[4]);
        free(o32);
        free_local(&l);
        free_local(&old);
        lc_cp_destroy(cp);
        free_prob(&p);
    }
    if (g_me == 0)
        printf("%s bf16 backward from the fp32 out: worst rel err %.2e (bound 1e-5); from the bf16 out %.2e\n",
               g_fail ? "FAIL" : "ok  ", worst_new, worst_old);
    return 0;
}

/* One PE passes a bad argument to a collective call; every PE must fail within a second
 * with the reason in its error (the world is aborted: no finalize). */
static int cmd_badarg(int victim, const char *what, const char *lowering)
{
    lc_cp_config cfg = {.plan.seq_len = 512 * g_P + 7, .hq = 4, .hkv = 2, .d = 64, .dtype = LC_DT_F32,
                        .plan.layout = LC_CP_ZIGZAG, .mask = LC_MASK_CAUSAL, .threads = 1};
    if (!strcmp(what, "doc")) cfg.mask |= LC_MASK_DOC;
    if (!strcmp(lowering, "allgather")) cfg.plan.algo = LC_CP_ALLGATHER;
    else lc_lowering_parse(lowering, &cfg.plan.lowering);
    lc_cp *cp;
    if (lc_cp_create(g_t, &cfg, &cp)) {
        fprintf(stderr, "test_cp: create: %s\n", lc_cp_last_error(NULL));
        return 1;
    }
    size_t n = (size_t)lc_cp_local_rows(cp, g_me) + 1, rq = n * cfg.hq * cfg.d, rk = n * cfg.hkv * cfg.d;
    float *q = calloc(rq, 4), *k = calloc(rk, 4), *v = calloc(rk, 4), *o = calloc(rq, 4), *lse = calloc(n * cfg.hq, 4);
    float *dq = calloc(rq, 4), *dk = calloc(rk, 4), *dv = calloc(rk, 4);
    int32_t *doc = calloc(n, 4);
    int bad = g_me == victim;
    /* Everyone completes one good step first, so the bad call meets peers mid-stream. */
    int rc = lc_cp_forward(cp, q, k, v, doc, o, lse);
    if (!rc) rc = lc_cp_backward(cp, q, k, v, doc, o, lse, o, dq, dk, dv);
    /* The bad backward comes after a good forward, outside the timed part. */
    if (!rc && !strcmp(what, "dout")) rc = lc_cp_forward(cp, q, k, v, doc, o, lse);
    if (rc) {
        fprintf(stderr, "test_cp: PE %d: the good step failed: %s\n", g_me, lc_cp_last_error(cp));
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* The victim may leave this barrier and abort before a slower peer has left it: that
     * peer then fails here, with the same reason. */
    if ((rc = lc_barrier(g_t))) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double el = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        fprintf(stderr, "test_cp: PE %d failed after %.3f s%s in the barrier before the call with %s: %s\n", g_me,
                el, el < 1.0 ? "" : " (SLOW)", lc_status_str(rc), lc_last_error(g_w));
        return 1;
    }
    if (!strcmp(what, "q")) rc = lc_cp_forward(cp, bad ? NULL : q, k, v, doc, o, lse);
    else if (!strcmp(what, "doc")) rc = lc_cp_forward(cp, q, k, v, bad ? NULL : doc, o, lse);
    else if (!strcmp(what, "dout")) rc = lc_cp_backward(cp, q, k, v, doc, o, lse, bad ? NULL : o, dq, dk, dv);
    else {
        fprintf(stderr, "test_cp: unknown bad argument '%s' (q, doc, dout)\n", what);
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double el = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (!rc) {
        fprintf(stderr, "test_cp: PE %d was not stopped\n", g_me);
        return 0;
    }
    fprintf(stderr, "test_cp: PE %d failed after %.3f s%s with %s: %s\n", g_me, el, el < 1.0 ? "" : " (SLOW)",
            lc_status_str(rc), lc_cp_last_error(cp));
    return 1;
}

static double g_die_after = 0.3;
static int g_die_kill;

static void *die_thread(void *arg)
{
    (void)arg;
    struct timespec ts = {0, (long)(g_die_after * 1e9)};
    nanosleep(&ts, NULL);
    fprintf(stderr, "test_cp: PE %d dies now (%s)\n", g_me, g_die_kill ? "SIGKILL" : "_exit");
    if (g_die_kill) raise(SIGKILL);
    _exit(3);
    return NULL;
}

static int cmd_die(int victim, const char *how, const char *lowering)
{
    tcase c = {.S = 2048 * g_P, .hq = 4, .hkv = 2, .d = 64, .dt = LC_DT_F32, .layout = LC_CP_ZIGZAG,
               .mask = LC_MASK_CAUSAL};
    lc_cp_config cfg = {.plan.seq_len = c.S, .hq = c.hq, .hkv = c.hkv, .d = c.d, .dtype = c.dt,
                        .plan.layout = c.layout, .mask = c.mask, .threads = 1};
    lc_lowering_parse(lowering, &cfg.plan.lowering);
    lc_cp *cp;
    if (lc_cp_create(g_t, &cfg, &cp)) return 1;
    int n = lc_cp_local_rows(cp, g_me);
    size_t rq = (size_t)n * c.hq * c.d, rk = (size_t)n * c.hkv * c.d;
    float *q = calloc(rq, 4), *k = calloc(rk, 4), *v = calloc(rk, 4), *o = calloc(rq, 4), *lse = calloc((size_t)n * c.hq, 4);
    float *dq = calloc(rq, 4), *dk = calloc(rk, 4), *dv = calloc(rk, 4);
    g_die_kill = !strcmp(how, "kill");
    pthread_t th;
    if (g_me == victim) pthread_create(&th, NULL, die_thread, NULL);
    for (int it = 0; it < 100000; it++) {
        int rc = lc_cp_forward(cp, q, k, v, NULL, o, lse);
        if (!rc) rc = lc_cp_backward(cp, q, k, v, NULL, o, lse, o, dq, dk, dv);
        if (rc) {
            fprintf(stderr, "test_cp: PE %d stopped at step %d with %s: %s\n", g_me, it, lc_status_str(rc),
                    lc_cp_last_error(cp));
            return 1;
        }
    }
    fprintf(stderr, "test_cp: PE %d was never stopped\n", g_me);
    return 0;
}

/* Every member must get the same status, and a message that contains each of the words. */
static void expect_create(const lc_cp_config *cfg, int want, const char *w1, const char *w2, const char *what)
{
    lc_cp *cp = (lc_cp *)&g_fail; /* must come back NULL */
    int rc = lc_cp_create(g_t, cfg, &cp);
    const char *m = lc_cp_last_error(NULL);
    if (rc != want || (want ? cp != NULL : cp == NULL) || (w1 && !strstr(m, w1)) || (w2 && !strstr(m, w2)))
        FAIL("%s: lc_cp_create returned %d (%s), want %d (%s) with '%s' and '%s'; message '%s'", what, rc,
             lc_status_str(rc), want, lc_status_str(want), w1 ? w1 : "", w2 ? w2 : "", m);
    if (!rc && cp) lc_cp_destroy(cp);
}

static int cmd_errors(void)
{
    char pe[16];
    int victim = g_P - 1;
    snprintf(pe, sizeof pe, "PE %d", victim);
    lc_cp_config good = {.plan.seq_len = 100, .hq = 4, .hkv = 2, .d = 64, .dtype = LC_DT_F32,
                         .plan.layout = LC_CP_ZIGZAG, .mask = LC_MASK_CAUSAL};
    lc_cp_config cfg = good;
    cfg.hq = 3;
    expect_create(&cfg, LC_ERR_ARG, "hkv", NULL, "hq % hkv != 0 everywhere");
    cfg = good;
    cfg.mask = LC_MASK_WINDOW;
    expect_create(&cfg, LC_ERR_ARG, "window", NULL, "window 0");
    /* One member's bad argument fails create on every member, naming it and the reason. */
    cfg = good;
    if (g_me == victim) cfg.hq = 3;
    expect_create(&cfg, LC_ERR_ARG, pe, "hkv", "hq % hkv != 0 on one PE");
    expect_create(g_me == victim ? NULL : &good, LC_ERR_ARG, pe, "cfg is NULL", "NULL cfg on one PE");
    /* Members that disagree: LC_ERR_MISMATCH on every member, naming the field and the PE. */
    static const char *fields[] = {"seq_len", "hq", "dtype", "layout", "mask", "window", "scale", "algo", "lowering"};
    for (int f = 0; f < 9; f++) {
        cfg = good;
        if (f == 5) cfg.mask = LC_MASK_WINDOW, cfg.window = 7;
        if (g_me == victim) switch (f) {
            case 0: cfg.plan.seq_len = 101; break;
            case 1: cfg.hq = 8; break;
            case 2: cfg.dtype = LC_DT_BF16; break;
            case 3: cfg.plan.layout = LC_CP_STRIPED; break;
            case 4: cfg.mask = LC_MASK_CAUSAL | LC_MASK_DOC; break;
            case 5: cfg.window = 8; break;
            case 6: cfg.scale = 0.5f; break;
            case 7: cfg.plan.algo = LC_CP_ALLGATHER; break;
            case 8: cfg.plan.lowering = LC_LOWER_TWO_SIDED; break;
            }
        char what[64];
        snprintf(what, sizeof what, "PEs disagree on %s", fields[f]);
        if (g_P > 1) expect_create(&cfg, LC_ERR_MISMATCH, fields[f], pe, what);
    }
    /* Ulysses refusals, before any communication, naming the numbers. */
    cfg = good;
    cfg.plan.algo = LC_CP_HYBRID;
    cfg.plan.ulysses = g_P + 1;
    expect_create(&cfg, LC_ERR_ARG, "--ulysses", "must divide", "hybrid U not dividing CP");
    cfg.plan.algo = LC_CP_RING;
    cfg.plan.ulysses = 2;
    expect_create(&cfg, LC_ERR_ARG, "--ulysses 2", "hybrid", "U with the ring");
    if (g_P > 1) {
        cfg = good;
        cfg.hq = cfg.hkv = 2 * g_P + 1; /* odd: no U > 1 that divides P splits them */
        cfg.plan.algo = LC_CP_ULYSSES;
        char heads[64];
        snprintf(heads, sizeof heads, "%d query heads", cfg.hq);
        expect_create(&cfg, LC_ERR_ARG, heads, "Ulysses group", "query heads not splitting");
        if (g_P % 2 == 0) {
            cfg = good;
            cfg.hq = 6, cfg.hkv = 3, cfg.plan.algo = LC_CP_HYBRID, cfg.plan.ulysses = 2;
            expect_create(&cfg, LC_ERR_ARG, "3 KV heads", "replicate", "KV heads neither splitting nor replicating");
        }
        cfg = good;
        cfg.plan.algo = LC_CP_ULYSSES;
        cfg.hq = 2 * g_P, cfg.hkv = 1;
        lc_cp *up;
        if (lc_cp_create(g_t, &cfg, &up)) FAIL("ulysses create: %s", lc_cp_last_error(NULL));
        else {
            if (lc_cp_set_algo(up, LC_CP_RING, LC_LOWER_AUTO) != LC_ERR_ARG || !strstr(lc_cp_last_error(up), "cannot switch"))
                FAIL("a Ulysses plan switched to the ring: '%s'", lc_cp_last_error(up));
            void *hk;
            if (lc_cp_kv_buffers(up, &hk, &hk) != LC_ERR_ARG) FAIL("a Ulysses plan gave staging buffers");
            lc_cp_destroy(up);
        }
    }
    /* Per-PE choices may differ. */
    cfg = good;
    cfg.threads = 1 + g_me % 2;
    expect_create(&cfg, LC_OK, NULL, NULL, "threads differing per PE");
    /* A length the layout cannot index is a bad argument with the current reason, not a
     * stale message or "out of memory". */
    cfg = good;
    cfg.plan.seq_len = (int64_t)1 << 40;
    expect_create(&cfg, LC_ERR_ARG, "seq_len = 1099511627776", "too long", "seq_len 2^40");
    cfg.plan.seq_len = INT32_MAX; /* fits int32 but zigzag pads past it */
    expect_create(&cfg, LC_ERR_ARG, "too long", NULL, "seq_len INT32_MAX, zigzag");
    if (lc_cp_create(NULL, &good, NULL) != LC_ERR_ARG || !strstr(lc_cp_last_error(NULL), "team"))
        FAIL("NULL team: '%s'", lc_cp_last_error(NULL));
    /* NULL plans: an error with the current reason, never a crash. */
    lc_cp_stats st;
    memset(&st, 0x5a, sizeof st);
    lc_cp_get_stats(NULL, &st);
    lc_cp_reset_stats(NULL);
    float x[8];
    void *pk;
    lc_cp_shard(NULL, 0, x, 4, x);
    if (!strstr(lc_cp_last_error(NULL), "lc_cp_shard")) FAIL("lc_cp_shard(NULL): '%s'", lc_cp_last_error(NULL));
    if (lc_cp_get_config(NULL) != NULL) FAIL("lc_cp_get_config(NULL) is not NULL");
    if (st.calls != 0 || st.blocks_run != 0) FAIL("lc_cp_get_stats(NULL) did not zero the stats");
    if (lc_cp_local_rows(NULL, 0) != -1 || !strstr(lc_cp_last_error(NULL), "lc_cp_local_rows: the plan is NULL"))
        FAIL("lc_cp_local_rows(NULL): '%s'", lc_cp_last_error(NULL));
    if (lc_cp_padded_rows(NULL) != -1 || lc_cp_global_pos(NULL, 0, 0) != -1 || lc_cp_local_index(NULL, 0, NULL) != -1)
        FAIL("layout maps of a NULL plan");
    if (lc_cp_set_algo(NULL, LC_CP_RING, LC_LOWER_ONE_SIDED) != LC_ERR_ARG ||
        !strstr(lc_cp_last_error(NULL), "lc_cp_set_algo"))
        FAIL("lc_cp_set_algo(NULL): '%s'", lc_cp_last_error(NULL));
    if (lc_cp_kv_buffers(NULL, &pk, &pk) != LC_ERR_ARG || !strstr(lc_cp_last_error(NULL), "lc_cp_kv_buffers"))
        FAIL("lc_cp_kv_buffers(NULL): '%s'", lc_cp_last_error(NULL));
    if (lc_cp_forward(NULL, x, x, x, NULL, x, x) != LC_ERR_ARG || !strstr(lc_cp_last_error(NULL), "lc_cp_forward"))
        FAIL("lc_cp_forward(NULL): '%s'", lc_cp_last_error(NULL));
    if (lc_cp_backward(NULL, x, x, x, NULL, x, x, x, x, x, x) != LC_ERR_ARG ||
        !strstr(lc_cp_last_error(NULL), "lc_cp_backward"))
        FAIL("lc_cp_backward(NULL): '%s'", lc_cp_last_error(NULL));
    if (lc_cp_destroy(NULL) != LC_OK) FAIL("lc_cp_destroy(NULL)");
    /* One convention: every layer's last message on this thread is in one place. */
    lc_attn_desc bad = {.sq = 1, .sk = 1, .hq = 3, .hkv = 2, .d = 64};
    if (lc_attn_fwd_block(&bad, x, x, x, x, x) != LC_ERR_ARG || !strstr(lc_attn_last_error(), "hkv = 2") ||
        strcmp(lc_attn_last_error(), lc_cp_last_error(NULL)) || strcmp(lc_attn_last_error(), lc_last_error(NULL)))
        FAIL("attention error not in the thread's buffer: '%s' / '%s' / '%s'", lc_attn_last_error(),
             lc_cp_last_error(NULL), lc_last_error(NULL));
    if (lc_put(g_w, x, x, 4, 1 << 20) != LC_ERR_ARG || !strstr(lc_last_error(g_w), "out of range") ||
        strcmp(lc_last_error(g_w), lc_attn_last_error()))
        FAIL("runtime error not in the thread's buffer: '%s' / '%s'", lc_last_error(g_w), lc_attn_last_error());
    /* After all that the world still works. */
    lc_cp *cp;
    cfg = good;
    if (lc_cp_create(g_t, &cfg, &cp)) { FAIL("create after the errors: %s", lc_cp_last_error(NULL)); return 1; }
    if (lc_cp_set_algo(cp, LC_CP_RING, (lc_lowering)9) != LC_ERR_ARG || !strstr(lc_cp_last_error(cp), "lowering"))
        FAIL("bad lowering accepted");
    if (lc_cp_destroy(cp)) FAIL("destroy: %s", lc_last_error(g_w));
    if (g_me == 0) printf("%s argument errors, disagreeing members, NULL plans (P=%d)\n", g_fail ? "FAIL" : "ok  ", g_P);
    return 0;
}

static void expect_create(const lc_cp_config *cfg, int want, const char *w1, const char *w2, const char *what);

/* Balance by the real mask: (1) the chunk work model equals the kernels' tile classification
 * (lc_attn_classify on every 64 x 64 chunk pair), (2) on packed documents at 64K tokens the
 * deal is within 5% of the mean where zigzag is not, (3) a mask-balanced plan, dealt again for
 * each of several sequences, gives the oracle's outputs and gradients with the ring (every
 * lowering, bit-identical to each other) and the all-gather, and the layout maps follow. */
static void random_docs(int32_t *doc, int64_t S, double p_new)
{
    int32_t d = 0;
    for (int64_t i = 0; i < S; i++) {
        if (i && urand() < p_new) d++;
        doc[i] = d;
    }
}

static int cmd_balance(void)
{
    int fails0 = g_fail;
    /* (1) the work model against the classifier, a partial last chunk included */
    {
        int64_t S = 64 * 37 + 13, nc = (S + 63) / 64;
        int32_t *doc = malloc(S * 4), *pos = malloc(S * 4);
        double *work = malloc(nc * sizeof(double));
        for (int64_t i = 0; i < S; i++) pos[i] = (int32_t)i;
        static const unsigned masks[] = {LC_MASK_CAUSAL, LC_MASK_CAUSAL | LC_MASK_DOC, LC_MASK_CAUSAL | LC_MASK_WINDOW,
                                         LC_MASK_CAUSAL | LC_MASK_WINDOW | LC_MASK_DOC, LC_MASK_DOC, LC_MASK_NONE};
        for (int mi = 0; mi < 6; mi++)
            for (int trial = 0; trial < 3; trial++) {
                random_docs(doc, S, 1.0 / (50 + 400 * trial));
                lc_mask m = {masks[mi], 1 + (int64_t)(urand() * 300), doc, doc};
                if (lc_cp_chunk_work(S, m.kind, m.window, doc, work)) FAIL("lc_cp_chunk_work refused");
                for (int64_t i = 0; i < nc; i++) {
                    int q1 = (int)(i * 64 + 64 < S ? i * 64 + 64 : S), n = 0;
                    for (int64_t j = 0; j < nc; j++)
                        n += lc_attn_classify(&m, pos, (int)i * 64, q1, pos, (int)j * 64,
                                              (int)(j * 64 + 64 < S ? j * 64 + 64 : S)) != LC_BLOCK_SKIP;
                    if (work[i] != n) {
                        FAIL("mask %s window %lld: chunk %lld has work %g, the classifier keeps %d tiles",
                             mask_name(m.kind), (long long)m.window, (long long)i, work[i], n);
                        break;
                    }
                }
            }
        free(doc), free(pos), free(work);
    }
    /* (2) packed documents at 64K over this world's P (at least 2): zigzag against the deal */
    if (g_me == 0) {
        int P = g_P < 2 ? 2 : g_P;
        int64_t S = 65536, nc = S / 64;
        int32_t *doc = malloc(S * 4), *pos = malloc(S * 4);
        double *work = malloc(nc * sizeof(double)), load[64];
        int *scratch = malloc((2 * nc + P) * sizeof(int));
        int n_pad;
        random_docs(doc, S, 1.0 / 3000); /* documents of ~3000 tokens, as in the python-doc corpus */
        lc_cp_chunk_work(S, LC_MASK_CAUSAL | LC_MASK_DOC, 0, doc, work);
        lc_cp_layout_positions(LC_CP_ZIGZAG, S, P, 0, NULL, &n_pad);
        for (int r = 0; r < P; r++) lc_cp_layout_positions(LC_CP_ZIGZAG, S, P, r, pos + (size_t)r * n_pad, NULL);
        void *tiles = malloc(lc_cp_work_scratch(P, n_pad + 64));
        double zz = lc_cp_work_imbalance(LC_MASK_CAUSAL | LC_MASK_DOC, 0, doc, P, n_pad, pos, tiles, NULL, NULL);
        if (lc_cp_balance_assign(work, S, P, pos, scratch, load)) FAIL("lc_cp_balance_assign refused");
        double mb = lc_cp_work_imbalance(LC_MASK_CAUSAL | LC_MASK_DOC, 0, doc, P, (int)(S / P), pos, tiles, NULL, NULL);
        free(tiles);
        int ok = mb <= 1.05;
        for (int r = 0; r < P && ok; r++)
            for (int i = 1; i < S / P; i++)
                if (pos[(size_t)r * (S / P) + i] <= pos[(size_t)r * (S / P) + i - 1]) ok = 0;
        if (!ok) FAIL("mask balance at 64K over %d PEs: imbalance %.3f (zigzag %.3f), or rows not ascending", P, mb, zz);
        printf("%s balance: packed documents at 64K over %d PEs, causal+doc: zigzag %.3f, mask %.3f (max / mean work)\n",
               ok ? "ok  " : "FAIL", P, zz, mb);
        free(doc), free(pos), free(work), free(scratch);
    }
    /* (3) a plan dealt again per sequence */
    int64_t S = 64 * g_P * 3;
    for (int dti = 0; dti < 2; dti++) {
        tcase c = {.S = S, .hq = 4, .hkv = 2, .d = 64, .dt = dti ? LC_DT_BF16 : LC_DT_F32, .layout = LC_CP_ZIGZAG,
                   .mask = LC_MASK_CAUSAL | LC_MASK_DOC | (dti ? LC_MASK_WINDOW : 0), .window = 100};
        lc_cp_config cfg = {.plan.seq_len = S, .hq = c.hq, .hkv = c.hkv, .d = c.d, .dtype = c.dt, .plan.layout = c.layout,
                            .mask = c.mask, .window = c.window, .threads = 1, .plan.balance = LC_CP_BALANCE_MASK};
        lc_cp *cp;
        if (lc_cp_create(g_t, &cfg, &cp)) {
            FAIL("mask-balanced plan: %s", lc_cp_last_error(NULL));
            continue;
        }
        double tol = c.dt == LC_DT_BF16 ? 1e-2 : 1e-5, worst = 0, imb = 0;
        for (int seqi = 0; seqi < 3; seqi++) {
            prob p;
            make_prob(&p, &c, g_seed + 31 * (uint64_t)seqi + 1000 * (uint64_t)dti);
            if (lc_cp_balance_step(cp, p.doc)) FAIL("lc_cp_balance_step: %s", lc_cp_last_error(cp));
            imb = lc_cp_imbalance(cp);
            local l, first;
            make_local(&l, cp, &p); /* shards by the new deal */
            make_local(&first, cp, &p);
            static const variant vs[] = {{"one_sided", LC_CP_RING, LC_LOWER_ONE_SIDED, 0},
                                         {"two_sided", LC_CP_RING, LC_LOWER_TWO_SIDED, 0},
                                         {"zero_copy", LC_CP_RING, LC_LOWER_ZERO_COPY, 0},
                                         {"allgather", LC_CP_ALLGATHER, LC_LOWER_AUTO, 0}};
            for (int vi = 0; vi < 4; vi++) {
                lc_cp_set_algo(cp, vs[vi].algo, vs[vi].low);
                poison(&l, &c);
                if (run_pass(cp, &l, 0)) break;
                double eo[5];
                rel_errors(cp, &p, &l, 1, eo);
                for (int i = 0; i < 5; i++) {
                    if (!(eo[i] < tol)) FAIL("mask-balanced %s: error %d vs oracle %.3g", vs[vi].name, i, eo[i]);
                    worst = eo[i] > worst ? eo[i] : worst;
                }
                if (vi == 0) copy_local(&first, &l, &c);
                else {
                    double diff = !same(&l, &first, &c), tot;
                    lc_allreduce_sum_f64(g_t, &tot, &diff, 1);
                    if (tot != 0) FAIL("mask-balanced %s is not bit-identical to one_sided", vs[vi].name);
                }
            }
            for (int pe = 0; pe < g_P; pe++)
                for (int i = 0; i < lc_cp_padded_rows(cp); i++) {
                    int back = -1, g = lc_cp_global_pos(cp, pe, i);
                    if (g < 0 || lc_cp_local_index(cp, g, &back) != i || back != pe)
                        FAIL("mask-balanced: token %d does not map back to PE %d row %d", g, pe, i);
                }
            free_local(&l);
            free_local(&first);
            free_prob(&p);
        }
        if (g_me == 0)
            printf("%s balance: P=%d S=%lld %s %s, dealt per sequence: worst rel err %.2e (oracle), imbalance %.3f\n",
                   g_fail == fails0 ? "ok  " : "FAIL", g_P, (long long)S, mask_name(c.mask), lc_dtype_name(c.dt), worst, imb);
        lc_cp_destroy(cp);
    }
    /* refusals */
    lc_cp_config bad = {.plan.seq_len = 64 * g_P + 1, .hq = 4, .hkv = 2, .d = 64, .dtype = LC_DT_F32,
                        .mask = LC_MASK_CAUSAL, .plan.balance = LC_CP_BALANCE_MASK};
    expect_create(&bad, LC_ERR_ARG, "multiple of 64", NULL, "balance with a ragged length");
    bad.plan.seq_len = 64 * g_P;
    bad.plan.algo = LC_CP_ULYSSES;
    expect_create(&bad, LC_ERR_ARG, "--balance mask", "ring or allgather", "balance with Ulysses");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_cp layout|sweep|stress N|die VICTIM exit|kill [lowering]|errors|teams\n");
        return 2;
    }
    if (!strcmp(argv[1], "layout")) {
        cmd_layout();
        return g_fail != 0;
    }
    const char *dot = getenv("LONGCTX_ATTN_BF16_DOT");
    if (dot && !strcmp(dot, "1") && !lc_attn_cpu_has_bf16()) {
        printf("SKIP: LONGCTX_ATTN_BF16_DOT=1 asks for the bf16 dot-product kernels, but this CPU has no avx512bf16\n");
        return 77;
    }
    if (lc_world_init(NULL, &g_w)) {
        fprintf(stderr, "test_cp: cannot join the world\n");
        return 1;
    }
    g_t = lc_team_world(g_w);
    g_me = lc_my_pe(g_w);
    g_P = lc_n_pes(g_w);
    g_seed = lc_test_seed();
    lc_broadcast(g_t, &g_seed, &g_seed, sizeof g_seed, 0);
    if (g_me == 0) printf("test_cp %s: P=%d seed %llu (LONGCTX_SEED overrides)\n", argv[1], g_P,
                          (unsigned long long)g_seed);
    int rc = 0;
    if (!strcmp(argv[1], "sweep")) rc = cmd_sweep(argc, argv);
    else if (!strcmp(argv[1], "f32out")) rc = cmd_f32out();
    else if (!strcmp(argv[1], "stress")) rc = cmd_stress(argc > 2 ? atoi(argv[2]) : 100);
    else if (!strcmp(argv[1], "die")) {
        if (argc < 4) return 2;
        rc = cmd_die(atoi(argv[2]), argv[3], argc > 4 ? argv[4] : "one_sided");
        return rc; /* the world is broken on purpose: no finalize */
    } else if (!strcmp(argv[1], "badarg")) {
        if (argc < 5) return 2;
        return cmd_badarg(atoi(argv[2]), argv[3], argv[4]); /* the world is aborted: no finalize */
    } else if (!strcmp(argv[1], "errors")) rc = cmd_errors();
    else if (!strcmp(argv[1], "balance")) rc = cmd_balance();
    else if (!strcmp(argv[1], "teams")) rc = cmd_teams();
    else {
        fprintf(stderr, "test_cp: unknown section %s\n", argv[1]);
        rc = 2;
    }
    double f = g_fail, tot = 0;
    if (lc_allreduce_sum_f64(g_t, &tot, &f, 1)) tot = 1;
    lc_world_finalize(g_w);
    return rc ? rc : tot != 0;
}
