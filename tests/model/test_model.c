/* The whole model: against the float64 reference (loss, and gradients by central
 * differences), under CP against one PE, bf16 against fp32, argument errors, peak memory.
 *
 *   test_model ref [wide]   1 PE: loss vs float64; sampled gradients vs central differences;
 *                           grads are ADDED and scale with grad_scale; recompute identical
 *   test_model cp [S [wide]] under `longctx launch -n P`: every layout x {ring one_sided,
 *                           two_sided, zero_copy, allgather} x doc masking, loss and
 *                           all-reduced grads vs the same model on one PE; lowerings bit-equal;
 *                           bf16 + recompute under CP vs bf16 on one PE
 *   test_model bf16         1 PE: bf16 compute vs fp32
 *   test_model errors       config/run/input errors are LC_ERR_ARG naming the field
 *   test_model tp C T [S [sp|- [wide]]]  under `longctx launch -n C*T`: CP x TP (TP innermost)
 *                           vs one PE: loss, full gathered grads, replicas, init, global norm
 *   test_model tp_errors    under launch: TP shapes that do not split are refused
 *   test_model mem S        prints this world's max VmHWM after one step at S tokens
 *
 * Inputs are fresh random each run (seed printed; LONGCTX_SEED overrides). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/fail.h"
#include "common/rng.h"
#include "longctx/model.h"
#include "model/internal.h"
#include "model/ref_model.h"

static uint64_t g_seed;
static int g_fail, g_me, g_P;
static lc_world *g_w;
static lc_team *g_t;

static double urand(uint64_t *s) { return (double)(lc_test_rng(s) >> 11) * (1.0 / 9007199254740992.0); }

#define FAIL(...) LC_TEST_FAIL_PE(g_fail, g_me, __VA_ARGS__)

#define MUST(m, expr)                                                                      \
    do {                                                                                   \
        int rc_ = (expr);                                                                  \
        if (rc_) {                                                                         \
            printf("FAIL PE %d %s:%d: %s = %d: %s\n", g_me, __FILE__, __LINE__, #expr, rc_, \
                   lc_model_last_error(m));                                                \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

typedef struct {
    int S;
    int32_t *tok, *tgt, *doc;
} inputs;

/* Random tokens; targets are the next token, -1 at the end, at every document's last token
 * (packed documents) and on a few random positions (padding). */
static inputs make_inputs(int S, int vocab, uint64_t seed)
{
    inputs in = {S, malloc(4 * S), malloc(4 * S), malloc(4 * S)};
    uint64_t s = seed;
    int d = 0;
    for (int i = 0; i < S; i++) {
        in.tok[i] = (int32_t)(lc_test_rng(&s) % (uint64_t)vocab);
        if (i > 0 && urand(&s) < 0.12) d++;
        in.doc[i] = d;
    }
    for (int i = 0; i < S; i++) {
        int last = i + 1 == S || in.doc[i + 1] != in.doc[i];
        in.tgt[i] = last || urand(&s) < 0.1 ? -1 : in.tok[i + 1];
    }
    return in;
}

static void free_inputs(inputs *in) { free(in->tok), free(in->tgt), free(in->doc); }

/* Larger-than-init weights and non-unit norms so every path carries signal. */
static void set_params(lc_model *m, uint64_t seed)
{
    lc_model_init_params(m, seed);
    float *p = lc_model_params(m);
    uint64_t s = seed ^ 0x5555;
    for (int i = 0; i < lc_model_n_tensors(m); i++) {
        const lc_model_tensor *t = lc_model_tensor_at(m, i);
        for (size_t j = 0; j < t->numel; j++) {
            float *x = p + t->offset + j;
            if (t->ndim == 1) *x = (float)(1.0 + (urand(&s) - 0.5) * 0.6);
            else *x *= 4.0f;
        }
    }
}

static lc_model_config tiny(void)
{
    lc_model_config c;
    lc_model_preset("tiny", &c);
    return c;
}

/* NULL: tiny; "wide": head_dim 128, MQA, odd vocab and ffn, 1 layer */
static lc_model_config shape_config(const char *shape)
{
    if (shape && !strcmp(shape, "wide"))
        return (lc_model_config){.n_layers = 1, .dim = 256, .n_heads = 2, .n_kv_heads = 1,
                                 .ffn_dim = 320, .vocab = 1000, .rope_theta = 500000.0f,
                                 .norm_eps = 1e-6f, .max_seq = 4096};
    return tiny();
}

/* A model holds its plan by reference: the plans of make()'s models live here. */
static lc_plan *keep_plan(lc_plan p)
{
    static lc_plan plans[64];
    static int n;
    lc_plan *slot = &plans[n++ % 64];
    *slot = p;
    return slot;
}

static lc_model *make(lc_team *t, lc_model_config c, int S, lc_cp_layout lay, lc_cp_algo algo,
                      lc_lowering low, lc_dtype dt, int doc, int recompute)
{
    lc_plan *pl = keep_plan((lc_plan){.seq_len = S, .layout = lay, .algo = algo, .lowering = low});
    lc_model_run r = {.cp_team = t, .plan = pl, .compute = dt, .doc_mask = doc, .threads = 1,
                      .recompute = recompute};
    lc_model *m;
    MUST(NULL, lc_model_create(&c, &r, &m));
    set_params(m, g_seed);
    return m;
}

/* ||a - b|| / ||b|| per tensor; returns the worst and names it. */
static double grad_err(const lc_model *m, const float *a, const float *b, const char **worst)
{
    double mx = 0;
    *worst = "";
    for (int i = 0; i < lc_model_n_tensors(m); i++) {
        const lc_model_tensor *t = lc_model_tensor_at(m, i);
        double num = 0, den = 0;
        for (size_t j = t->offset; j < t->offset + t->numel; j++) {
            if (!isfinite(a[j])) return INFINITY;
            num += ((double)a[j] - b[j]) * ((double)a[j] - b[j]);
            den += (double)b[j] * b[j];
        }
        double e = den > 0 ? sqrt(num / den) : sqrt(num);
        if (e > mx) mx = e, *worst = t->name;
    }
    return mx;
}

/* ---------------- ref ---------------- */

static void cmd_ref(const char *shape)
{
    lc_model_config c = shape_config(shape);
    int S = 41;
    for (int doc = 0; doc <= 1; doc++) {
        inputs in = make_inputs(S, c.vocab, g_seed + 17 + doc);
        lc_model *m = make(g_t, c, S, LC_CP_CONTIGUOUS, LC_CP_RING, LC_LOWER_AUTO, LC_DT_F32, doc, 0);
        /* the LM head in chunks of 7 rows with doc masking (41 = 5 x 7 + 6), whole otherwise */
        if (doc) lc_model__set_loss_chunk(m, 7);
        size_t n = lc_model_n_params(m);
        float *g = lc_model_grads(m), loss = NAN, loss_f = NAN;
        for (size_t i = 0; i < n; i++) g[i] = NAN; /* poison: zero_grads must clear it */
        lc_model_zero_grads(m);
        MUST(m, lc_model_forward_backward(m, in.tok, in.tgt, in.doc, 1.0f, &loss));
        MUST(m, lc_model_forward(m, in.tok, in.tgt, in.doc, &loss_f));
        double *pd = malloc(sizeof(double) * n);
        for (size_t i = 0; i < n; i++) pd[i] = lc_model_params(m)[i];
        const int32_t *dp = doc ? in.doc : NULL;
        double want = ref_loss(m, pd, S, in.tok, in.tgt, dp);
        double le = fabs(loss - want) / fabs(want);
        printf("%s ref doc=%d: loss %.7f vs float64 %.7f rel err %.2g (tol 1e-5)\n",
               le < 1e-5 ? "ok  " : "FAIL", doc, loss, want, le);
        if (!(le < 1e-5)) g_fail++;
        if (loss_f != loss) FAIL("forward-only loss %.9g differs from forward_backward %.9g", loss_f, loss);

        /* central differences (float64 reference) on 3 random entries of every tensor */
        uint64_t s = g_seed + 99;
        double num = 0, den = 0, worst = 0;
        const char *wname = "";
        for (int ti = 0; ti < lc_model_n_tensors(m); ti++) {
            const lc_model_tensor *t = lc_model_tensor_at(m, ti);
            double gmax = 0;
            for (size_t j = 0; j < t->numel; j++) gmax = fmax(gmax, fabs(g[t->offset + j]));
            for (int r = 0; r < 3; r++) {
                size_t j = t->offset + (size_t)(lc_test_rng(&s) % t->numel);
                if (!strcmp(t->name, "model.embed_tokens.weight") && r < 2)
                    j = t->offset + (size_t)in.tok[r * 7] * c.dim + (size_t)(lc_test_rng(&s) % c.dim);
                double h = 1e-5, p0 = pd[j];
                pd[j] = p0 + h;
                double fp = ref_loss(m, pd, S, in.tok, in.tgt, dp);
                pd[j] = p0 - h;
                double fm = ref_loss(m, pd, S, in.tok, in.tgt, dp);
                pd[j] = p0;
                double fd = (fp - fm) / (2 * h), e = fabs(g[j] - fd) / fmax(gmax, 1e-30);
                if (!isfinite(g[j])) e = INFINITY;
                num += (g[j] - fd) * (g[j] - fd);
                den += fd * fd;
                if (e > worst) worst = e, wname = t->name;
            }
        }
        double ne = sqrt(num / den);
        int ok = ne < 1e-4 && worst < 1e-4;
        printf("%s ref doc=%d: %d sampled grads vs central differences: norm rel err %.2g, worst "
               "|g-fd|/max|g| %.2g (%s) (tol 1e-4)\n",
               ok ? "ok  " : "FAIL", doc, 3 * lc_model_n_tensors(m), ne, worst, wname);
        if (!ok) g_fail++;

        /* gradients are ADDED and scale with grad_scale: two half steps = one full, bitwise */
        float *g1 = malloc(4 * n), l2;
        memcpy(g1, g, 4 * n);
        lc_model_zero_grads(m);
        MUST(m, lc_model_forward_backward(m, in.tok, in.tgt, in.doc, 0.5f, &l2));
        MUST(m, lc_model_forward_backward(m, in.tok, in.tgt, in.doc, 0.5f, &l2));
        /* (not bitwise: a norm weight's row sum continues from the first step's total) */
        const char *wn;
        double ae = grad_err(m, g, g1, &wn);
        if (!(ae < 1e-6)) FAIL("two steps at grad_scale 0.5 differ from one at 1.0: %.2g (%s)", ae, wn);
        else printf("ok   ref doc=%d: grads accumulate: 2 x scale 0.5 vs 1 x 1.0 rel err %.2g (tol 1e-6)\n", doc, ae);

        /* recompute gives the same bits */
        lc_model *mr = make(g_t, c, S, LC_CP_CONTIGUOUS, LC_CP_RING, LC_LOWER_AUTO, LC_DT_F32, doc, 1);
        float lr;
        if (doc) lc_model__set_loss_chunk(mr, 7);
        lc_model_zero_grads(mr);
        MUST(mr, lc_model_forward_backward(mr, in.tok, in.tgt, in.doc, 1.0f, &lr));
        if (lr != loss || memcmp(g1, lc_model_grads(mr), 4 * n))
            FAIL("recompute changes the loss or gradients");
        else printf("ok   ref doc=%d: recompute is bit-identical\n", doc);
        lc_model_destroy(mr);

        /* 2 BLAS + attention threads: same result within fp32 rounding */
        lc_model_run r2 = *lc_model_get_run(m);
        r2.threads = 2;
        lc_model *m2;
        MUST(NULL, lc_model_create(&c, &r2, &m2));
        memcpy(lc_model_params(m2), lc_model_params(m), 4 * n);
        float l2t;
        lc_model_zero_grads(m2);
        MUST(m2, lc_model_forward_backward(m2, in.tok, in.tgt, in.doc, 1.0f, &l2t));
        double te = grad_err(m, lc_model_grads(m2), g1, &wn), tl = fabs(l2t - loss) / loss;
        if (!(te < 1e-5 && tl < 1e-6)) FAIL("2 threads: loss rel err %.2g, grads %.2g (%s)", tl, te, wn);
        else printf("ok   ref doc=%d: 2 threads vs 1: loss rel err %.2g, grads %.2g (tol 1e-5)\n", doc, tl, te);
        lc_model_destroy(m2);
        free(g1);
        free(pd);
        lc_model_destroy(m);
        free_inputs(&in);
    }
}

/* ---------------- cp ---------------- */

static void cmd_cp(int S, const char *shape)
{
    lc_model_config c = shape_config(shape);
    lc_team *self = NULL;
    for (int r = 0; r < g_P; r++) {
        lc_team *t = NULL;
        if (lc_team_split_strided(g_t, r, 1, 1, &t)) {
            FAIL("team split: %s", lc_last_error(g_w));
            return;
        }
        if (t) self = t;
    }
    struct { lc_cp_algo a; lc_lowering l; const char *name; } low[] = {
        {LC_CP_RING, LC_LOWER_ONE_SIDED, "ring/one_sided"},
        {LC_CP_RING, LC_LOWER_TWO_SIDED, "ring/two_sided"},
        {LC_CP_RING, LC_LOWER_ZERO_COPY, "ring/zero_copy"},
        {LC_CP_ALLGATHER, LC_LOWER_AUTO, "allgather"}};
    double worst_loss = 0, worst_grad = 0;
    for (int doc = 0; doc <= 1; doc++) {
        inputs in = make_inputs(S, c.vocab, g_seed + 1000 + doc);
        lc_model *one = make(self, c, S, LC_CP_CONTIGUOUS, LC_CP_RING, LC_LOWER_AUTO, LC_DT_F32, doc, 0);
        size_t n = lc_model_n_params(one);
        float l1;
        lc_model_zero_grads(one);
        MUST(one, lc_model_forward_backward(one, in.tok, in.tgt, in.doc, 1.0f, &l1));
        float *g1 = lc_model_grads(one), *first = malloc(4 * n), *sum = malloc(4 * n);
        for (int lay = 0; lay < 3; lay++) {
            float lfirst = NAN;
            for (int k = 0; k < 4; k++) {
                lc_model *m = make(g_t, c, S, (lc_cp_layout)lay, low[k].a, low[k].l, LC_DT_F32, doc,
                                   k == 3 && lay == 1);
                float loss;
                lc_model_zero_grads(m);
                MUST(m, lc_model_forward_backward(m, in.tok, in.tgt, in.doc, 1.0f, &loss));
                if (lc_allreduce_sum_f32(g_t, sum, lc_model_grads(m), n)) {
                    FAIL("grad all-reduce: %s", lc_last_error(g_w));
                    exit(1);
                }
                const char *wn;
                double le = fabs(loss - l1) / fabs(l1), ge = grad_err(m, sum, g1, &wn);
                worst_loss = fmax(worst_loss, le);
                worst_grad = fmax(worst_grad, ge);
                if (!(le < 1e-5 && ge < 1e-5))
                    FAIL("P=%d %s %s doc=%d: loss %.8g vs 1 PE %.8g (rel %.2g), grads rel err %.2g "
                         "(%s); tol 1e-5",
                         g_P, lc_cp_layout_name((lc_cp_layout)lay), low[k].name, doc, loss, l1, le,
                         ge, wn);
                if (k == 0) {
                    memcpy(first, sum, 4 * n);
                    lfirst = loss;
                } else if (lfirst != loss || memcmp(first, sum, 4 * n)) {
                    FAIL("P=%d %s doc=%d: %s%s is not bit-identical to ring/one_sided", g_P,
                         lc_cp_layout_name((lc_cp_layout)lay), doc, low[k].name,
                         k == 3 && lay == 1 ? " (with recompute)" : "");
                }
                lc_model_destroy(m);
            }
        }
        free(first), free(sum);
        lc_model_destroy(one);
        free_inputs(&in);
    }
    /* bf16 compute under CP against bf16 on one PE (partials merge in fp32; only the final
     * bf16 rounding of out may flip an ulp) */
    {
        inputs in = make_inputs(S, c.vocab, g_seed + 2000);
        lc_model *one = make(self, c, S, LC_CP_CONTIGUOUS, LC_CP_RING, LC_LOWER_AUTO, LC_DT_BF16, 1, 0);
        lc_model *m = make(g_t, c, S, LC_CP_ZIGZAG, LC_CP_RING, LC_LOWER_AUTO, LC_DT_BF16, 1, 1);
        size_t n = lc_model_n_params(m);
        float l1, lp, *sum = malloc(4 * n);
        lc_model_zero_grads(one);
        lc_model_zero_grads(m);
        MUST(one, lc_model_forward_backward(one, in.tok, in.tgt, in.doc, 1.0f, &l1));
        MUST(m, lc_model_forward_backward(m, in.tok, in.tgt, in.doc, 1.0f, &lp));
        if (lc_allreduce_sum_f32(g_t, sum, lc_model_grads(m), n)) {
            FAIL("grad all-reduce: %s", lc_last_error(g_w));
            exit(1);
        }
        const char *wn;
        double le = fabs(lp - l1) / fabs(l1), ge = grad_err(m, sum, lc_model_grads(one), &wn);
        if (!(le < 1e-3 && ge < 1e-2))
            FAIL("P=%d bf16 zigzag+recompute: loss rel err %.2g (tol 1e-3), grads %.2g (%s) (tol 1e-2)",
                 g_P, le, ge, wn);
        else if (g_me == 0)
            printf("ok   cp P=%d bf16 zigzag + recompute vs bf16 on 1 PE: loss rel err %.2g, grads %.2g\n",
                   g_P, le, ge);
        free(sum);
        lc_model_destroy(m);
        lc_model_destroy(one);
        free_inputs(&in);
    }
    lc_team_destroy(self);
    if (g_me == 0)
        printf("%s cp P=%d S=%d: 3 layouts x 4 lowerings x doc mask; worst loss rel err %.2g, "
               "worst grad rel err %.2g (tol 1e-5); lowerings bit-identical%s\n",
               g_fail ? "FAIL" : "ok  ", g_P, S, worst_loss, worst_grad,
               shape ? " (wide: head_dim 128, MQA, vocab 1000)" : "");
}

/* ---------------- tp ---------------- */

/* The world as CP x TP (TP innermost, like the trainer's default mesh): my CP team (same TP
 * rank) and my TP team (consecutive PEs). */
static void split_cp_tp(int cp, int tp, lc_team **cpt, lc_team **tpt)
{
    *cpt = *tpt = NULL;
    for (int r = 0; r < tp; r++) {
        lc_team *t = NULL;
        if (lc_team_split_strided(g_t, r, tp, cp, &t)) { FAIL("cp split: %s", lc_last_error(g_w)); exit(1); }
        if (t) *cpt = t;
    }
    for (int c = 0; c < cp; c++) {
        lc_team *t = NULL;
        if (lc_team_split_strided(g_t, c * tp, 1, tp, &t)) { FAIL("tp split: %s", lc_last_error(g_w)); exit(1); }
        if (t) *tpt = t;
    }
}

/* Full tensors of a (possibly sharded) flat buffer, in table order: the one-PE layout. */
static float *gather_all(lc_model *m, const float *flat, size_t n_full)
{
    float *full = malloc(4 * n_full);
    size_t off = 0;
    for (int i = 0; i < lc_model_n_tensors(m); i++) {
        int64_t sh[2];
        size_t n = lc_model_tensor_full_shape(m, i, sh);
        MUST(m, lc_model_gather_tensor(m, i, flat, full + off));
        off += n;
    }
    if (off != n_full) { FAIL("gathered %zu values, the one-PE model has %zu", off, n_full); exit(1); }
    return full;
}

/* Every tensor's ||a - b|| / ||b|| over full buffers in table order (one-PE model m1). */
static double full_err(const lc_model *m1, const float *a, const float *b, const char **worst)
{
    return grad_err(m1, a, b, worst);
}

/* test_model tp CP TP [S] [sp] [bf16]: the model over CP x TP against one PE: loss, full
 * gathered gradients (all-reduced over CP), replicas equal, gather/scatter round trip,
 * layout-independent init; doc masking on and off; with sp the sequence-parallel path. */
static void cmd_tp(int cp, int tp, int S, int sp, const char *shape)
{
    if (cp * tp != g_P) {
        FAIL("tp: CP %d x TP %d needs %d PEs, have %d", cp, tp, cp * tp, g_P);
        return;
    }
    lc_model_config c = shape_config(shape);
    lc_team *cpt, *tpt, *self = NULL;
    split_cp_tp(cp, tp, &cpt, &tpt);
    for (int r = 0; r < g_P; r++) {
        lc_team *t = NULL;
        if (lc_team_split_strided(g_t, r, 1, 1, &t)) { FAIL("self split"); exit(1); }
        if (t) self = t;
    }
    int tr = lc_team_my_pe(tpt);
    double worst_l = 0, worst_g = 0;
    for (int doc = 0; doc <= 1; doc++) {
        inputs in = make_inputs(S, c.vocab, g_seed + 3000 + doc);
        lc_model *one = make(self, c, S, LC_CP_CONTIGUOUS, LC_CP_RING, LC_LOWER_AUTO, LC_DT_F32, doc, 0);
        size_t n1 = lc_model_n_params(one);
        lc_plan pl = {.seq_len = S, .layout = doc ? LC_CP_ZIGZAG : LC_CP_STRIPED, .algo = LC_CP_RING,
                      .lowering = LC_LOWER_AUTO, .sp = sp};
        lc_model_run r = {.cp_team = cpt, .plan = &pl, .compute = LC_DT_F32, .doc_mask = doc, .threads = 1,
                          .recompute = doc, .tp_team = tpt};
        lc_model *m;
        MUST(NULL, lc_model_create(&c, &r, &m));
        size_t n = lc_model_n_params(m);
        if (tp > 1 && n >= n1) FAIL("TP %d: %zu local params, not fewer than one PE's %zu", tp, n, n1);
        /* init is layout-independent: the gathered init equals one PE's */
        lc_model *o2 = make(self, c, S, LC_CP_CONTIGUOUS, LC_CP_RING, LC_LOWER_AUTO, LC_DT_F32, 0, 0);
        lc_model_init_params(o2, g_seed);
        lc_model_init_params(m, g_seed);
        float *gi = gather_all(m, lc_model_params(m), n1);
        if (memcmp(gi, lc_model_params(o2), 4 * n1)) FAIL("TP %d: init differs from one PE's", tp);
        free(gi);
        lc_model_destroy(o2);
        /* the one-PE model's (perturbed) weights, scattered into the TP slices */
        float *p = lc_model_params(m);
        for (size_t j = 0; j < n; j++) p[j] = NAN;
        for (int i = 0, off = 0; i < lc_model_n_tensors(one); i++) {
            MUST(m, lc_model_scatter_tensor(m, i, lc_model_params(one) + off, p));
            off += (int)lc_model_tensor_at(one, i)->numel;
        }
        float *rt = gather_all(m, p, n1);
        if (memcmp(rt, lc_model_params(one), 4 * n1)) FAIL("scatter then gather is not the identity");
        free(rt);
        float l1, lt;
        lc_model_zero_grads(one);
        MUST(one, lc_model_forward_backward(one, in.tok, in.tgt, in.doc, 1.0f, &l1));
        float *g = lc_model_grads(m);
        for (size_t j = 0; j < n; j++) g[j] = NAN; /* poison: zero_grads must clear it */
        lc_model_zero_grads(m);
        MUST(m, lc_model_forward_backward(m, in.tok, in.tgt, in.doc, 1.0f, &lt));
        float *sum = malloc(4 * n);
        if (lc_allreduce_sum_f32(cpt, sum, g, n)) { FAIL("cp all-reduce"); exit(1); }
        float *full = gather_all(m, sum, n1);
        const char *wn;
        double le = fabs(lt - l1) / fabs(l1), ge = full_err(one, full, lc_model_grads(one), &wn);
        worst_l = fmax(worst_l, le);
        worst_g = fmax(worst_g, ge);
        if (!(le < 1e-5 && ge < 1e-5))
            FAIL("CP %d x TP %d%s doc=%d: loss %.8g vs 1 PE %.8g (rel %.2g), grads rel err %.2g (%s); tol 1e-5",
                 cp, tp, sp ? " sp" : "", doc, lt, l1, le, ge, wn);
        /* replicas (norm weights, replicated KV heads) are bit-identical over TP: every member
         * compares its copy with TP rank 0's, via the gathered full tensor */
        for (int i = 0, off = 0; i < lc_model_n_tensors(m); i++) {
            const lc_model_tensor *t = lc_model_tensor_at(m, i);
            int64_t sh[2];
            size_t nf = lc_model_tensor_full_shape(m, i, sh);
            if (t->numel != nf || lc_model_tensor_counts(m, i) == 0) {
                /* mine must equal the gathered copy at my slice */
                float *mine = malloc(4 * t->numel), *want = calloc(n, 4);
                memcpy(mine, sum + t->offset, 4 * t->numel);
                lc_model_scatter_tensor(m, i, full + off, want);
                if (memcmp(mine, want + t->offset, 4 * t->numel))
                    FAIL("TP rank %d: my copy of %s's gradient differs from the counted one", tr, t->name);
                free(mine), free(want);
            }
            off += (int)nf;
        }
        /* the global norm over the full model, counted once */
        double nt, n1v = 0;
        MUST(m, lc_model_global_norm(m, sum, &nt));
        for (size_t j = 0; j < n1; j++) n1v += (double)lc_model_grads(one)[j] * lc_model_grads(one)[j];
        n1v = sqrt(n1v);
        if (!(fabs(nt - n1v) / n1v < 1e-5)) FAIL("global grad norm %.9g vs one PE %.9g", nt, n1v);
        free(full), free(sum);
        lc_model_times tm;
        lc_model_get_times(m, &tm);
        if (tp > 1 && !(tm.tp_comm_s > 0)) FAIL("TP %d: no TP communication time recorded", tp);
        lc_model_destroy(m);
        lc_model_destroy(one);
        free_inputs(&in);
    }
    if (g_me == 0)
        printf("%s tp CP %d x TP %d%s S=%d%s: loss rel err %.2g, full gathered grads rel err %.2g (tol 1e-5); "
               "init, scatter/gather, replicas, global norm checked\n",
               g_fail ? "FAIL" : "ok  ", cp, tp, sp ? " +sp" : "", S, shape ? " (wide)" : "", worst_l, worst_g);
    lc_team_destroy(self);
    lc_team_destroy(tpt);
    lc_team_destroy(cpt);
}

/* TP shapes that do not split are refused on every PE, naming the field. */
static void cmd_tp_errors(void)
{
    lc_team *cpt, *tpt;
    split_cp_tp(1, g_P, &cpt, &tpt);
    struct { int heads, kv, ffn, vocab; const char *want; } bad[] = {
        {3, 1, 128, 256, "n_heads = 3 is not divisible by tp"},
        {4, 4, 129, 256, "ffn_dim = 129 is not divisible by tp"},
        {4, 4, 128, 255, "vocab = 255 is not divisible by tp"},
    };
    for (int k = 0; k < 3; k++) {
        lc_model_config c = tiny();
        c.n_heads = bad[k].heads, c.n_kv_heads = bad[k].kv, c.ffn_dim = bad[k].ffn, c.vocab = bad[k].vocab;
        c.dim = 16 * c.n_heads;
        lc_model_run r = {.cp_team = cpt, .plan = &(lc_plan){.seq_len = 64}, .threads = 1, .tp_team = tpt};
        lc_model *m = (lc_model *)1;
        int rc = lc_model_create(&c, &r, &m);
        if (rc != LC_ERR_ARG || m || !strstr(lc_model_last_error(NULL), bad[k].want))
        {
            FAIL("TP %d: expected \"%s\", got rc %d \"%s\"", g_P, bad[k].want, rc, lc_model_last_error(NULL));
            if (rc == 0) lc_model_destroy(m);
        }
        else if (g_me == 0) printf("ok   tp errors: %s\n", lc_model_last_error(NULL));
    }
    char err[256];
    lc_model_config c = tiny();
    c.n_heads = 6, c.n_kv_heads = 3, c.dim = 96;
    if (lc_model_tp_check(&c, 2, err, sizeof err) == 0 || !strstr(err, "n_kv_heads = 3"))
        FAIL("kv 3 over tp 2: \"%s\"", err);
    lc_model_run r = {.cp_team = g_t, .plan = &(lc_plan){.seq_len = 64, .sp = 1}, .threads = 1};
    lc_model *m;
    if (lc_model_create(&c, &r, &m) != LC_ERR_ARG || !strstr(lc_model_last_error(NULL), "sp"))
        FAIL("sp without TP: \"%s\"", lc_model_last_error(NULL));
    lc_team_destroy(tpt);
    lc_team_destroy(cpt);
}

/* ---------------- bf16 ---------------- */

/* The model's inline, vectorized bf16 conversions equal attn.h's bit for bit: every exponent
 * and mantissa edge (ties, carries into the exponent, infinities, NaN payloads) and 4 M random
 * patterns, through the array routines the model calls. */
static void check_bf16_conversions(void)
{
    enum { N = 1 << 22 };
    float *x = malloc(N * sizeof(float)), *r = malloc(N * sizeof(float));
    uint16_t *b = malloc(N * sizeof(uint16_t));
    uint64_t rs = g_seed ^ 0x9e3779b97f4a7c15ull;
    static const uint32_t edge[] = {0, 0x80000000u, 0x00007fffu, 0x00008000u, 0x00018000u, 0x3f808000u, 0x3f818000u,
                                    0x7f7fffffu, 0x7f7f8000u, 0x7f800000u, 0xff800000u, 0x7f800001u, 0x7fc00000u,
                                    0xffffffffu, 0x7fbfffffu, 0x0000ffffu};
    for (int i = 0; i < N; i++) {
        uint32_t u = i < 16 ? edge[i] : (uint32_t)(lc_test_rng(&rs) >> 32);
        memcpy(&x[i], &u, 4);
    }
    lc_model__to_bf16(x, N, b);
    memcpy(r, x, N * sizeof(float));
    lc_model__round_bf16(r, N);
    long bad = 0;
    for (int i = 0; i < N; i++) {
        uint16_t want = lc_f32_to_bf16(x[i]);
        float wf = lc_bf16_to_f32(want);
        bad += b[i] != want || memcmp(&r[i], &wf, 4) != 0;
    }
    lc_model__from_bf16(b, N, r);
    for (int i = 0; i < N; i++) {
        float wf = lc_bf16_to_f32(b[i]);
        bad += memcmp(&r[i], &wf, 4) != 0;
    }
    if (bad) FAIL("bf16 conversions: %ld of %d values differ from lc_f32_to_bf16 / lc_bf16_to_f32", bad, N);
    else printf("ok   bf16 conversions (vectorized) equal lc_f32_to_bf16 / lc_bf16_to_f32 on %d patterns\n", N);
    free(x), free(r), free(b);
}

static void cmd_bf16(void)
{
    check_bf16_conversions();
    lc_model_config c = tiny();
    int S = 64;
    inputs in = make_inputs(S, c.vocab, g_seed + 7);
    lc_model *a = make(g_t, c, S, LC_CP_ZIGZAG, LC_CP_RING, LC_LOWER_AUTO, LC_DT_F32, 1, 0);
    lc_model *b = make(g_t, c, S, LC_CP_ZIGZAG, LC_CP_RING, LC_LOWER_AUTO, LC_DT_BF16, 1, 0);
    float la, lb;
    lc_model_zero_grads(a);
    lc_model_zero_grads(b);
    MUST(a, lc_model_forward_backward(a, in.tok, in.tgt, in.doc, 1.0f, &la));
    MUST(b, lc_model_forward_backward(b, in.tok, in.tgt, in.doc, 1.0f, &lb));
    const char *wn;
    double le = fabs(lb - la) / fabs(la), ge = grad_err(a, lc_model_grads(b), lc_model_grads(a), &wn);
    /* End to end, not a kernel check: every GEMM/attention input is rounded (2^-9 relative
     * each) through 2 layers forward and back; over 20 seeds the whole-gradient error was
     * 0.006-0.008 and the worst tensor's 0.010-0.012, so the bounds are 2e-2 and 5e-2. */
    double num = 0, den = 0;
    const float *ga = lc_model_grads(a), *gb = lc_model_grads(b);
    for (size_t i = 0; i < lc_model_n_params(a); i++)
        num += ((double)gb[i] - ga[i]) * ((double)gb[i] - ga[i]), den += (double)ga[i] * ga[i];
    double all = isfinite(num) ? sqrt(num / den) : INFINITY;
    int ok = le < 1e-2 && all < 2e-2 && ge < 5e-2;
    printf("%s bf16 (%s) vs fp32: loss %.6f vs %.6f rel err %.2g (tol 1e-2); all grads rel err "
           "%.2g (tol 2e-2); worst tensor %.2g (%s) (tol 5e-2)\n",
           ok ? "ok  " : "FAIL", lc_model_bf16_gemm_name(), lb, la, le, all, ge, wn);
    if (!ok) g_fail++;
    /* and it really rounds: not bit-identical to fp32 */
    if (lb == la) FAIL("bf16 loss is identical to fp32: the bf16 path does not round");
    lc_model_destroy(a);
    lc_model_destroy(b);
    free_inputs(&in);
}

/* ---------------- errors ---------------- */

static void expect_cfg_err(lc_model_config c, const char *field)
{
    lc_model_run r = {.cp_team = g_t, .plan = &(lc_plan){.seq_len = 64}, .threads = 1};
    lc_model *m = (lc_model *)1;
    int rc = lc_model_create(&c, &r, &m);
    const char *e = lc_model_last_error(NULL);
    if (rc != LC_ERR_ARG || m != NULL || !strstr(e, field))
        FAIL("config error for %s: rc %d, message \"%s\"", field, rc, e);
}

static void cmd_errors(void)
{
    lc_model_config c = tiny(), b;
    b = c; b.n_layers = 0; expect_cfg_err(b, "n_layers");
    b = c; b.dim = 66; expect_cfg_err(b, "dim = 66 is not divisible by n_heads");
    b = c; b.n_kv_heads = 3; expect_cfg_err(b, "n_heads = 4 is not divisible by n_kv_heads = 3");
    b = c; b.dim = 40; b.n_heads = 4; b.n_kv_heads = 2; expect_cfg_err(b, "head_dim");
    b = c; b.ffn_dim = -1; expect_cfg_err(b, "ffn_dim");
    b = c; b.vocab = 1; expect_cfg_err(b, "vocab");
    b = c; b.rope_theta = NAN; expect_cfg_err(b, "rope_theta");
    b = c; b.norm_eps = 0; expect_cfg_err(b, "norm_eps");
    b = c; b.max_seq = 32; expect_cfg_err(b, "max_seq");
    lc_model_config x;
    if (lc_model_preset("nope", &x) != LC_ERR_ARG) FAIL("unknown preset accepted");
    if (lc_model_preset("llama3-8b", &x) || x.n_layers != 32 || x.dim != 4096 || x.n_heads != 32 ||
        x.n_kv_heads != 8 || x.ffn_dim != 14336 || x.vocab != 128256 || x.rope_theta != 500000.0f)
        FAIL("llama3-8b preset has the wrong shape");
    else {
        /* 8.03e9 parameters: the shape checks against the published model size */
        lc_model_run r = {.plan = &(lc_plan){.dp = 1, .cp = 1, .tp = 1, .seq_len = 8192}};
        lc_model_mem mm;
        double fl = lc_model_flops_per_token(&x, 8192);
        if (lc_model_memory_estimate(&x, &r, &mm)) FAIL("llama3-8b: lc_model_memory_estimate failed");
        /* 8.03e9 parameters, fp32: 32.1 GB each of weights and gradients */
        else if (fabs(mm.weights / 4 - 8.03e9) > 0.01e9 || mm.grads != mm.weights)
            FAIL("llama3-8b: the estimate counts %.4g parameters, not 8.03e9", mm.weights / 4);
        printf("ok   llama3-8b: %.4g FLOPs/token fwd+bwd at 8K, memory estimate %.1f GiB/PE "
               "(fp32, 1 PE)\n", fl, (mm.weights + mm.grads + mm.activations + mm.attention) / 1073741824.0);
    }

    /* run errors */
    lc_plan pl = {.seq_len = 0};
    lc_model_run r = {.cp_team = g_t, .plan = &pl, .threads = 1};
    lc_model *m = NULL;
    int rc = lc_model_create(&c, &r, &m);
    if (rc != LC_ERR_ARG || !strstr(lc_model_last_error(NULL), "seq_len"))
        FAIL("seq_len 0: rc %d \"%s\"", rc, lc_model_last_error(NULL));
    /* contiguous chunks of ceil(S/P): at S = P + 1 (P >= 3) or S = 1 the last PE holds nothing */
    pl.seq_len = g_P == 2 ? 1 : g_P + 1;
    pl.layout = LC_CP_CONTIGUOUS;
    int npad = 0;
    if (g_P > 1 && lc_cp_layout_positions(pl.layout, pl.seq_len, g_P, g_P - 1, NULL, &npad) != 0)
        FAIL("test premise: PE %d holds tokens at S=%lld", g_P - 1, (long long)pl.seq_len);
    if (g_P > 1) {
        rc = lc_model_create(&c, &r, &m);
        if (rc != LC_ERR_ARG || !strstr(lc_model_last_error(NULL), "too short"))
            FAIL("contiguous over %d PEs at S=%lld: rc %d \"%s\"", g_P, (long long)pl.seq_len, rc,
                 lc_model_last_error(NULL));
        else if (g_me == 0) printf("ok   errors: %s\n", lc_model_last_error(NULL));
    }
    pl.seq_len = 64;
    r.compute = (lc_dtype)7;
    rc = lc_model_create(&c, &r, &m);
    if (rc != LC_ERR_ARG || !strstr(lc_model_last_error(NULL), "compute"))
        FAIL("bad compute dtype: rc %d \"%s\"", rc, lc_model_last_error(NULL));
    if (g_P == 1) {
        /* bad input to a step: an error naming the position, before any work */
        r.compute = LC_DT_F32;
        MUST(NULL, lc_model_create(&c, &r, &m));
        inputs in = make_inputs(64, c.vocab, g_seed);
        float loss;
        in.tok[5] = c.vocab;
        rc = lc_model_forward_backward(m, in.tok, in.tgt, in.doc, 1.0f, &loss);
        if (rc != LC_ERR_ARG || !strstr(lc_model_last_error(m), "tokens[5]"))
            FAIL("bad token: rc %d \"%s\"", rc, lc_model_last_error(m));
        in.tok[5] = 0;
        in.tgt[9] = -2;
        rc = lc_model_forward(m, in.tok, in.tgt, in.doc, &loss);
        if (rc != LC_ERR_ARG || !strstr(lc_model_last_error(m), "targets[9]"))
            FAIL("bad target: rc %d \"%s\"", rc, lc_model_last_error(m));
        /* no real target: loss 0, no gradient */
        for (int i = 0; i < 64; i++) in.tgt[i] = -1;
        lc_model_zero_grads(m);
        MUST(m, lc_model_forward_backward(m, in.tok, in.tgt, in.doc, 1.0f, &loss));
        float *g = lc_model_grads(m);
        for (size_t i = 0; i < lc_model_n_params(m); i++)
            if (g[i] != 0.0f) {
                FAIL("no targets but grad[%zu] = %g", i, g[i]);
                break;
            }
        if (loss != 0.0f) FAIL("no targets but loss %g", loss);
        lc_model_destroy(m);
        free_inputs(&in);
    }
    if (g_me == 0) printf("%s errors P=%d\n", g_fail ? "FAIL" : "ok  ", g_P);
}

/* ---------------- mem ---------------- */

static long status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n)) v = atol(line + n);
    if (f) fclose(f);
    return v;
}

static void cmd_mem(int S)
{
    /* attention-light medium shape: activations dominate the process's memory */
    lc_model_config c = {.n_layers = 2, .dim = 128, .n_heads = 2, .n_kv_heads = 1, .ffn_dim = 512,
                         .vocab = 256, .rope_theta = 10000.0f, .norm_eps = 1e-5f, .max_seq = 1 << 20};
    inputs in = make_inputs(S, c.vocab, g_seed);
    lc_model_blas_info(); /* the BLAS library is part of the baseline, not of the model */
    double base = (double)status_kib("VmRSS:");
    lc_model *m = make(g_t, c, S, LC_CP_ZIGZAG, LC_CP_RING, LC_LOWER_AUTO, LC_DT_F32, 0, 0);
    float loss;
    MUST(m, lc_model_forward_backward(m, in.tok, in.tgt, in.doc, 1.0f, &loss));
    double mine[2] = {(double)status_kib("VmHWM:"), 0}, mx[2] = {0, 0};
    mine[1] = mine[0] - base;
    lc_allreduce_max_f64(g_t, mx, mine, 2);
    lc_model_run r = {.plan = &(lc_plan){.dp = 1, .cp = g_P, .tp = 1, .seq_len = S}};
    lc_model_mem mm = {0};
    lc_model_memory_estimate(&c, &r, &mm);
    if (g_me == 0)
        printf("mem P=%d S=%d: max VmHWM %.0f KiB per PE, model share %.0f KiB (VmHWM - VmRSS "
               "before create; estimate %.0f KiB), loss %.4f\n",
               g_P, S, mx[0], mx[1], (mm.weights + mm.grads + mm.activations + mm.attention) / 1024.0, loss);
    lc_model_destroy(m);
    free_inputs(&in);
}

/* ---------------- bf16 GEMMs (gemm_bf16.c) ---------------- */

/* Every linear-layer GEMM form through oneDNN against sgemm on the same bf16-valued operands:
 * the products are exact in fp32 either way, so only the summation order differs. Odd sizes,
 * accumulation, a strided output; poisoned outputs first. Exit 77 where oneDNN has no native
 * bf16 kernel (the model uses sgemm there, which model_bf16_sgemm covers). */
static int cmd_gemm16(void)
{
    if (!lc_model__gemm16_available()) {
        printf("skip gemm16: %s\n", lc_model__gemm16_info());
        return 77;
    }
    lc_model__blas_init();
    static const int shapes[][3] = {{200, 72, 130}, {64, 256, 768}, {1, 33, 17}, {513, 96, 40}};
    lc_gemm16 *g = lc_model__gemm16_create(600 * 800);
    double worst = 0;
    uint64_t rs = g_seed;
    for (int si = 0; si < 4; si++) {
        int rows = shapes[si][0], in = shapes[si][1], out = shapes[si][2];
        size_t n = (size_t)(rows > out ? rows : out) * (in > out ? in : out) * 2 + 64;
        float *x = malloc(n * 4), *w = malloc(n * 4), *dy = malloc(n * 4), *r = malloc(n * 4), *t = malloc(n * 4);
        for (size_t i = 0; i < n; i++) {
            x[i] = (float)(urand(&rs) * 2 - 1), w[i] = (float)(urand(&rs) * 2 - 1), dy[i] = (float)(urand(&rs) * 2 - 1);
            r[i] = t[i] = (float)(urand(&rs) * 2 - 1); /* the accumulated-into outputs start equal */
        }
        lc_model__round_bf16(x, n), lc_model__round_bf16(w, n), lc_model__round_bf16(dy, n);
        for (int form = 0; form < 5; form++) {
            size_t cnt = form < 2 ? (size_t)rows * out : form == 4 ? (size_t)out * in : (size_t)rows * in * (form == 3 ? 2 : 1);
            if (form != 1 && form != 4) /* outputs that are overwritten: poison them */
                for (size_t i = 0; i < cnt; i++) t[i] = NAN;
            for (int use = 0; use < 2; use++) {
                float *c = use ? t : r;
                lc_model__gemm_use(use ? g : NULL);
                switch (form) {
                case 0: lc_model__linear_fwd(x, w, rows, in, out, c, 0); break;
                case 1: lc_model__linear_fwd(x, w, rows, in, out, c, 1); break;
                case 2: lc_model__linear_bwd_dx(dy, w, rows, in, out, c, 0); break;
                case 3: lc_model__linear_bwd_dx_ld(dy, w, rows, in, out, c, 2 * in); break;
                default: lc_model__linear_bwd_dw(dy, x, rows, in, out, c); break;
                }
                lc_model__gemm_use(NULL);
            }
            double e = 0, s = 0;
            for (size_t i = 0; i < cnt; i++) {
                if (form == 3 && (i / in) % 2) continue; /* the stride's gap */
                e += ((double)t[i] - r[i]) * ((double)t[i] - r[i]);
                s += (double)r[i] * r[i];
            }
            double rel = sqrt(e / (s > 0 ? s : 1));
            if (!(rel < 1e-6)) FAIL("gemm16 form %d rows %d in %d out %d: rel err %.3g vs sgemm", form, rows, in, out, rel);
            worst = rel > worst ? rel : worst;
            memcpy(t, r, n * 4); /* the next form starts from equal outputs again */
        }
        free(x), free(w), free(dy), free(r), free(t);
    }
    lc_model__gemm16_destroy(g);
    printf("%s gemm16 (%s): 5 GEMM forms x 4 shapes against sgemm, worst rel err %.2g\n", g_fail ? "FAIL" : "ok  ",
           lc_model__gemm16_info(), worst);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_model ref|cp [S]|bf16|errors|mem S\n");
        return 2;
    }
    if (lc_world_init(NULL, &g_w)) {
        fprintf(stderr, "test_model: cannot join the world\n");
        return 1;
    }
    g_t = lc_team_world(g_w);
    g_me = lc_my_pe(g_w);
    g_P = lc_n_pes(g_w);
    g_seed = lc_test_seed();
    lc_broadcast(g_t, &g_seed, &g_seed, sizeof g_seed, 0);
    if (g_me == 0)
        printf("test_model %s: P=%d seed %llu (LONGCTX_SEED overrides)\n", argv[1], g_P,
               (unsigned long long)g_seed);
    int rc = 0;
    if (!strcmp(argv[1], "ref") && g_P == 1) cmd_ref(argc > 2 ? argv[2] : NULL);
    else if (!strcmp(argv[1], "cp")) cmd_cp(argc > 2 ? atoi(argv[2]) : 45, argc > 3 ? argv[3] : NULL);
    else if (!strcmp(argv[1], "bf16") && g_P == 1) cmd_bf16();
    else if (!strcmp(argv[1], "gemm16") && g_P == 1) {
        if (cmd_gemm16() == 77) {
            lc_world_finalize(g_w);
            return 77;
        }
    }
    else if (!strcmp(argv[1], "tp") && argc > 3)
        cmd_tp(atoi(argv[2]), atoi(argv[3]), argc > 4 ? atoi(argv[4]) : 45, argc > 5 && !strcmp(argv[5], "sp"),
               argc > 6 && strcmp(argv[6], "-") ? argv[6] : NULL);
    else if (!strcmp(argv[1], "tp_errors") && g_P > 1) cmd_tp_errors();
    else if (!strcmp(argv[1], "errors")) cmd_errors();
    else if (!strcmp(argv[1], "mem") && argc > 2) cmd_mem(atoi(argv[2]));
    else {
        fprintf(stderr, "test_model: unknown section %s (or wrong PE count)\n", argv[1]);
        rc = 2;
    }
    double f = g_fail, tot = 0;
    if (lc_allreduce_sum_f64(g_t, &tot, &f, 1)) tot = 1;
    lc_world_finalize(g_w);
    return rc ? rc : tot != 0;
}
