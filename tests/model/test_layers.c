/* Each layer of the model on its own: the fp32 forward against a float64 reference, and the
 * fp32 backward against central differences (in float64) of that reference.
 *
 *   test_layers [embed|rmsnorm|rope|swiglu|linear|ce|attn|all]
 *
 * Gradients are checked as a whole tensor: ||g - g_fd|| / ||g_fd|| < 1e-5 (fp32 standard),
 * and no element may be NaN. Forward outputs likewise against the float64 reference.
 * Inputs are fresh random each run (seed printed; LONGCTX_SEED overrides). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/rng.h"
#include "longctx/cp.h"
#include "model/internal.h"

static uint64_t g_rng;
static int g_fail;
static double urand(void) { return (double)(lc_test_rng(&g_rng) >> 11) * (1.0 / 9007199254740992.0); }
static float frand(double a) { return (float)((urand() * 2 - 1) * a); }

#define TOL 1e-5
#define H 1e-6 /* central-difference step in float64 */

/* ||a - b|| / ||b|| over n values; NaN anywhere gives +inf */
static double relerr_fd(const float *a, const double *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) return INFINITY;
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static void report(const char *what, double err, double tol)
{
    int ok = err < tol;
    printf("%s %-34s rel err %.3g (tol %.0e)\n", ok ? "ok  " : "FAIL", what, err, tol);
    if (!ok) g_fail++;
}

/* The float64 scalar whose gradient is checked: f(theta) = sum(dout * layer(theta)). */
typedef double (*scalar_fn)(const double *theta, void *ctx);

/* Central differences of f at every entry of theta[0..n) (theta restored). */
static void fd_grad(scalar_fn f, double *theta, size_t n, void *ctx, double *g)
{
    for (size_t i = 0; i < n; i++) {
        double t = theta[i];
        theta[i] = t + H;
        double fp = f(theta, ctx);
        theta[i] = t - H;
        double fm = f(theta, ctx);
        theta[i] = t;
        g[i] = (fp - fm) / (2 * H);
    }
}

static double *to_d(const float *x, size_t n)
{
    double *d = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* ---- RMSNorm ---- */
typedef struct { int rows, dim; double eps; const double *dout; } rms_ctx;

static void rms_ref(const double *x, const double *w, int rows, int dim, double eps, double *y)
{
    for (int i = 0; i < rows; i++) {
        double ss = 0;
        for (int j = 0; j < dim; j++) ss += x[i * dim + j] * x[i * dim + j];
        double r = 1.0 / sqrt(ss / dim + eps);
        for (int j = 0; j < dim; j++) y[i * dim + j] = w[j] * x[i * dim + j] * r;
    }
}

static double rms_f(const double *th, void *p)
{
    rms_ctx *c = p;
    size_t n = (size_t)c->rows * c->dim;
    double *y = malloc(sizeof(double) * n), s = 0;
    rms_ref(th, th + n, c->rows, c->dim, c->eps, y);
    for (size_t i = 0; i < n; i++) s += y[i] * c->dout[i];
    free(y);
    return s;
}

static void t_rmsnorm(void)
{
    int rows = 7, dim = 64;
    size_t n = (size_t)rows * dim;
    float eps = 1e-5f;
    float *x = malloc(4 * n), *w = malloc(4 * dim), *y = malloc(4 * n), *rstd = malloc(4 * rows),
          *dout = malloc(4 * n), *dx = malloc(4 * n), *dw = calloc(dim, 4);
    for (size_t i = 0; i < n; i++) x[i] = frand(2), dout[i] = frand(1);
    for (int j = 0; j < dim; j++) w[j] = 1.0f + frand(0.5);
    for (size_t i = 0; i < n; i++) dx[i] = NAN; /* poisoned: the kernel must overwrite */
    lc_model__rmsnorm_fwd(x, w, rows, dim, eps, y, rstd);
    lc_model__rmsnorm_bwd(x, w, rstd, dout, rows, dim, 0, dx, dw);
    double *th = malloc(sizeof(double) * (n + dim)), *g = malloc(sizeof(double) * (n + dim));
    for (size_t i = 0; i < n; i++) th[i] = x[i];
    for (int j = 0; j < dim; j++) th[n + j] = w[j];
    double *yd = malloc(sizeof(double) * n), *doutd = to_d(dout, n);
    rms_ref(th, th + n, rows, dim, eps, yd);
    report("rmsnorm forward", relerr_fd(y, yd, n), TOL);
    rms_ctx c = {rows, dim, eps, doutd};
    fd_grad(rms_f, th, n + dim, &c, g);
    report("rmsnorm backward dx", relerr_fd(dx, g, n), TOL);
    report("rmsnorm backward dw", relerr_fd(dw, g + n, dim), TOL);
    /* accumulate mode adds */
    for (size_t i = 0; i < n; i++) dx[i] = 1.0f;
    lc_model__rmsnorm_bwd(x, w, rstd, dout, rows, dim, 1, dx, dw);
    for (size_t i = 0; i < n; i++) g[i] += 1.0;
    report("rmsnorm backward dx (accumulate)", relerr_fd(dx, g, n), TOL);
    free(x), free(w), free(y), free(rstd), free(dout), free(dx), free(dw), free(th), free(g);
    free(yd), free(doutd);
}

/* ---- RoPE ---- */
typedef struct { int rows, heads, hd; const int32_t *pos; float theta; const double *dout; } rope_ctx;

/* transformers: q*cos + rotate_half(q)*sin, rotate_half(x) = cat(-x2, x1), angle = pos*inv_freq
 * in fp32 (inv_freq = 1/theta^(2j/hd) in fp32). */
static void rope_ref(const double *x, const rope_ctx *c, double *y)
{
    int half = c->hd / 2;
    for (int i = 0; i < c->rows; i++)
        for (int h = 0; h < c->heads; h++)
            for (int j = 0; j < c->hd; j++) {
                int jj = j % half;
                float inv = 1.0f / powf(c->theta, (float)(2 * jj) / (float)c->hd);
                float ang = (float)c->pos[i] * inv;
                const double *xi = x + ((size_t)i * c->heads + h) * c->hd;
                double rot = j < half ? -xi[j + half] : xi[j - half];
                y[((size_t)i * c->heads + h) * c->hd + j] = xi[j] * cos((double)ang) + rot * sin((double)ang);
            }
}

static double rope_f(const double *th, void *p)
{
    rope_ctx *c = p;
    size_t n = (size_t)c->rows * c->heads * c->hd;
    double *y = malloc(sizeof(double) * n), s = 0;
    rope_ref(th, c, y);
    for (size_t i = 0; i < n; i++) s += y[i] * c->dout[i];
    free(y);
    return s;
}

static void t_rope(void)
{
    int rows = 6, heads = 3, hd = 32, half = hd / 2;
    int32_t pos[6] = {0, 1, 17, 1000, 16383, 70000};
    size_t n = (size_t)rows * heads * hd;
    float theta = 500000.0f;
    float *x = malloc(4 * n), *dout = malloc(4 * n), *ct = malloc(4 * rows * half),
          *st = malloc(4 * rows * half);
    for (size_t i = 0; i < n; i++) x[i] = frand(1), dout[i] = frand(1);
    double *th = to_d(x, n), *yd = malloc(sizeof(double) * n), *g = malloc(sizeof(double) * n),
           *doutd = to_d(dout, n);
    rope_ctx c = {rows, heads, hd, pos, theta, doutd};
    rope_ref(th, &c, yd);
    lc_model__rope_table(pos, rows, hd, theta, ct, st);
    lc_model__rope_apply(x, rows, heads, hd, ct, st, 0);
    report("rope forward (rotate_half, pos to 70000)", relerr_fd(x, yd, n), TOL);
    fd_grad(rope_f, th, n, &c, g);
    lc_model__rope_apply(dout, rows, heads, hd, ct, st, 1);
    report("rope backward", relerr_fd(dout, g, n), TOL);
    free(x), free(dout), free(ct), free(st), free(th), free(yd), free(g), free(doutd);
}

/* ---- SwiGLU ---- */
typedef struct { int rows, ffn; const double *dout; } sw_ctx;

static double sw_f(const double *h, void *p)
{
    sw_ctx *c = p;
    double s = 0;
    for (int i = 0; i < c->rows; i++)
        for (int j = 0; j < c->ffn; j++) {
            double g = h[(size_t)i * 2 * c->ffn + j], u = h[(size_t)i * 2 * c->ffn + c->ffn + j];
            s += g / (1 + exp(-g)) * u * c->dout[(size_t)i * c->ffn + j];
        }
    return s;
}

static void t_swiglu(void)
{
    int rows = 5, ffn = 48;
    size_t nh = (size_t)rows * 2 * ffn, na = (size_t)rows * ffn;
    float *h = malloc(4 * nh), *act = malloc(4 * na), *dact = malloc(4 * na), *dh = malloc(4 * nh);
    for (size_t i = 0; i < nh; i++) h[i] = frand(4), dh[i] = NAN; /* poisoned */
    for (size_t i = 0; i < na; i++) dact[i] = frand(1);
    lc_model__swiglu_fwd(h, rows, ffn, act);
    double *hd = to_d(h, nh), *dd = to_d(dact, na), *ad = malloc(sizeof(double) * na),
           *g = malloc(sizeof(double) * nh);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < ffn; j++) {
            double gg = hd[(size_t)i * 2 * ffn + j], u = hd[(size_t)i * 2 * ffn + ffn + j];
            ad[(size_t)i * ffn + j] = gg / (1 + exp(-gg)) * u;
        }
    report("swiglu forward", relerr_fd(act, ad, na), TOL);
    for (int i = 0; i < rows; i++) /* dact goes in the up half */
        memcpy(dh + (size_t)i * 2 * ffn + ffn, dact + (size_t)i * ffn, 4 * ffn);
    float *act2 = malloc(4 * na);
    for (size_t i = 0; i < na; i++) act2[i] = NAN;
    lc_model__swiglu_bwd(h, dh, act2, rows, ffn);
    sw_ctx c = {rows, ffn, dd};
    fd_grad(sw_f, hd, nh, &c, g);
    report("swiglu backward", relerr_fd(dh, g, nh), TOL);
    report("swiglu backward's act (bitwise = forward)", memcmp(act, act2, 4 * na) ? 1.0 : 0.0, TOL);
    free(act2);
    free(h), free(act), free(dact), free(dh), free(hd), free(dd), free(ad), free(g);
}

/* ---- embedding ---- */
static void t_embed(void)
{
    int rows = 9, dim = 32, vocab = 11;
    int32_t tok[9] = {3, 0, 10, 3, 5, 3, 10, 1, 0}; /* repeats accumulate */
    float *emb = malloc(4 * vocab * dim), *y = malloc(4 * rows * dim), *dout = malloc(4 * rows * dim),
          *demb = calloc((size_t)vocab * dim, 4);
    for (int i = 0; i < vocab * dim; i++) emb[i] = frand(1);
    for (int i = 0; i < rows * dim; i++) dout[i] = frand(1);
    lc_model__embed_fwd(emb, tok, rows, dim, y);
    double *yd = malloc(sizeof(double) * rows * dim), *g = calloc((size_t)vocab * dim, sizeof(double));
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < dim; j++) {
            yd[i * dim + j] = emb[tok[i] * dim + j];
            g[tok[i] * dim + j] += dout[i * dim + j]; /* d/d emb of sum(dout * emb[tok]) (linear: exact) */
        }
    report("embedding forward", relerr_fd(y, yd, (size_t)rows * dim), TOL);
    lc_model__embed_bwd(demb, tok, rows, dim, dout);
    report("embedding backward (repeated tokens)", relerr_fd(demb, g, (size_t)vocab * dim), TOL);
    free(emb), free(y), free(dout), free(demb), free(yd), free(g);
}

/* ---- linear (BLAS) ---- */
typedef struct { int rows, in, out; const double *dout; } lin_ctx;

static double lin_f(const double *th, void *p)
{
    lin_ctx *c = p;
    const double *x = th, *w = th + (size_t)c->rows * c->in;
    double s = 0;
    for (int i = 0; i < c->rows; i++)
        for (int o = 0; o < c->out; o++) {
            double y = 0;
            for (int k = 0; k < c->in; k++) y += x[i * c->in + k] * w[o * c->in + k];
            s += y * c->dout[i * c->out + o];
        }
    return s;
}

static void t_linear(void)
{
    int rows = 13, in = 24, out = 40;
    size_t nx = (size_t)rows * in, nw = (size_t)out * in, ny = (size_t)rows * out;
    float *x = malloc(4 * nx), *w = malloc(4 * nw), *y = malloc(4 * ny), *dy = malloc(4 * ny),
          *dx = malloc(4 * nx), *dw = calloc(nw, 4);
    for (size_t i = 0; i < nx; i++) x[i] = frand(1), dx[i] = NAN;
    for (size_t i = 0; i < nw; i++) w[i] = frand(1);
    for (size_t i = 0; i < ny; i++) dy[i] = frand(1), y[i] = NAN;
    if (lc_model__blas_init()) {
        printf("FAIL %s\n", lc_model_blas_info());
        g_fail++;
        return;
    }
    lc_model__blas_threads(1);
    lc_model__linear_fwd(x, w, rows, in, out, y, 0);
    double *yd = calloc(ny, sizeof(double));
    for (int i = 0; i < rows; i++)
        for (int o = 0; o < out; o++)
            for (int k = 0; k < in; k++) yd[i * out + o] += (double)x[i * in + k] * w[o * in + k];
    report("linear forward (y = x W^T)", relerr_fd(y, yd, ny), TOL);
    lc_model__linear_bwd_dx(dy, w, rows, in, out, dx, 0);
    lc_model__linear_bwd_dw(dy, x, rows, in, out, dw);
    double *th = malloc(sizeof(double) * (nx + nw)), *g = malloc(sizeof(double) * (nx + nw)),
           *dyd = to_d(dy, ny);
    for (size_t i = 0; i < nx; i++) th[i] = x[i];
    for (size_t i = 0; i < nw; i++) th[nx + i] = w[i];
    lin_ctx c = {rows, in, out, dyd};
    fd_grad(lin_f, th, nx + nw, &c, g);
    report("linear backward dx", relerr_fd(dx, g, nx), TOL);
    report("linear backward dW", relerr_fd(dw, g + nx, nw), TOL);
    free(x), free(w), free(y), free(dy), free(dx), free(dw), free(yd), free(th), free(g), free(dyd);
}

/* ---- cross-entropy ---- */
typedef struct { int rows, vocab; const int32_t *tgt; double scale; } ce_ctx;

static double ce_f(const double *l, void *p)
{
    ce_ctx *c = p;
    double s = 0;
    for (int i = 0; i < c->rows; i++) {
        if (c->tgt[i] < 0) continue;
        const double *li = l + (size_t)i * c->vocab;
        double mx = li[0], sum = 0;
        for (int j = 1; j < c->vocab; j++) mx = fmax(mx, li[j]);
        for (int j = 0; j < c->vocab; j++) sum += exp(li[j] - mx);
        s += mx + log(sum) - li[c->tgt[i]];
    }
    return s * c->scale;
}

static void t_ce(void)
{
    int rows = 6, vocab = 37;
    int32_t tgt[6] = {4, -1, 36, 0, -1, 17};
    size_t n = (size_t)rows * vocab;
    float *l = malloc(4 * n);
    for (size_t i = 0; i < n; i++) l[i] = frand(6);
    double *ld = to_d(l, n), *g = malloc(sizeof(double) * n);
    float scale = 0.25f;
    ce_ctx c = {rows, vocab, tgt, 1.0};
    double want = ce_f(ld, &c);
    double got = lc_model__ce_fwd_bwd(l, tgt, rows, vocab, 1, scale);
    report("cross-entropy forward (ignored rows)", fabs(got - want) / want, TOL);
    c.scale = scale;
    fd_grad(ce_f, ld, n, &c, g);
    report("cross-entropy backward", relerr_fd(l, g, n), TOL);
    free(l), free(ld), free(g);
}

/* ---- attention through lc_cp on one PE (GQA, RoPE'd inputs are just inputs here) ---- */
typedef struct { lc_attn_desc a; size_t nq, nkv; const double *dout; } at_ctx;

static double at_f(const double *th, void *p)
{
    at_ctx *c = p;
    double *o = malloc(sizeof(double) * c->nq), *lse = malloc(sizeof(double) * c->nq), s = 0;
    lc_attn_ref_fwd(&c->a, th, th + c->nq, th + c->nq + c->nkv, o, lse);
    for (size_t i = 0; i < c->nq; i++) s += o[i] * c->dout[i];
    free(o), free(lse);
    return s;
}

static void t_attn(int doc_mask)
{
    lc_world *w;
    if (lc_world_init(NULL, &w)) {
        printf("FAIL cannot create a world of one PE\n");
        g_fail++;
        return;
    }
    int S = 23, hq = 4, hkv = 2, d = 16;
    int32_t doc[23];
    for (int i = 0; i < S; i++) doc[i] = i < 9 ? 0 : (i < 15 ? 1 : 2);
    lc_cp_config cc = {.plan.seq_len = S, .hq = hq, .hkv = hkv, .d = d, .dtype = LC_DT_F32,
                       .plan.layout = LC_CP_CONTIGUOUS,
                       .mask = LC_MASK_CAUSAL | (doc_mask ? LC_MASK_DOC : 0), .threads = 1};
    lc_cp *cp;
    if (lc_cp_create(lc_team_world(w), &cc, &cp)) {
        printf("FAIL lc_cp_create: %s\n", lc_cp_last_error(NULL));
        g_fail++;
        return;
    }
    size_t nq = (size_t)S * hq * d, nkv = (size_t)S * hkv * d;
    float *q = malloc(4 * nq), *k = malloc(4 * nkv), *v = malloc(4 * nkv), *o = malloc(4 * nq),
          *lse = malloc(4 * S * hq), *dout = malloc(4 * nq), *dq = malloc(4 * nq),
          *dk = malloc(4 * nkv), *dv = malloc(4 * nkv);
    for (size_t i = 0; i < nq; i++) q[i] = frand(1), dout[i] = frand(1), dq[i] = NAN;
    for (size_t i = 0; i < nkv; i++) k[i] = frand(1), v[i] = frand(1), dk[i] = dv[i] = NAN;
    const int32_t *dp = doc_mask ? doc : NULL;
    int rc = lc_cp_forward(cp, q, k, v, dp, o, lse);
    rc = rc ? rc : lc_cp_backward(cp, q, k, v, dp, o, lse, dout, dq, dk, dv);
    if (rc) {
        printf("FAIL lc_cp: %s\n", lc_cp_last_error(cp));
        g_fail++;
        return;
    }
    size_t nt = nq + 2 * nkv;
    double *th = malloc(sizeof(double) * nt), *g = malloc(sizeof(double) * nt), *doutd = to_d(dout, nq),
           *od = malloc(sizeof(double) * nq), *ld = malloc(sizeof(double) * nq);
    for (size_t i = 0; i < nq; i++) th[i] = q[i];
    for (size_t i = 0; i < nkv; i++) th[nq + i] = k[i], th[nq + nkv + i] = v[i];
    at_ctx c = {{.sq = S, .sk = S, .hq = hq, .hkv = hkv, .d = d, .qkv_dtype = LC_DT_F32,
                 .mask = {.kind = cc.mask, .q_doc = dp, .k_doc = dp}}, nq, nkv, doutd};
    lc_attn_ref_fwd(&c.a, th, th + nq, th + nq + nkv, od, ld);
    char what[80];
    snprintf(what, sizeof what, "attention forward (GQA, causal%s)", doc_mask ? "+doc" : "");
    report(what, relerr_fd(o, od, nq), TOL);
    fd_grad(at_f, th, nt, &c, g);
    snprintf(what, sizeof what, "attention backward dq (causal%s)", doc_mask ? "+doc" : "");
    report(what, relerr_fd(dq, g, nq), TOL);
    snprintf(what, sizeof what, "attention backward dk (causal%s)", doc_mask ? "+doc" : "");
    report(what, relerr_fd(dk, g + nq, nkv), TOL);
    snprintf(what, sizeof what, "attention backward dv (causal%s)", doc_mask ? "+doc" : "");
    report(what, relerr_fd(dv, g + nq + nkv, nkv), TOL);
    lc_cp_destroy(cp);
    lc_world_finalize(w);
    free(q), free(k), free(v), free(o), free(lse), free(dout), free(dq), free(dk), free(dv);
    free(th), free(g), free(doutd), free(od), free(ld);
}

int main(int argc, char **argv)
{
    const char *which = argc > 1 ? argv[1] : "all";
    uint64_t seed = lc_test_seed();
    g_rng = seed;
    printf("test_layers %s: seed %llu (LONGCTX_SEED overrides)\n", which, (unsigned long long)seed);
    int all = !strcmp(which, "all"), known = 0;
#define RUN(name, call) if (all || !strcmp(which, name)) { call; known = 1; }
    RUN("embed", t_embed());
    RUN("rmsnorm", t_rmsnorm());
    RUN("rope", t_rope());
    RUN("swiglu", t_swiglu());
    RUN("linear", t_linear());
    RUN("ce", t_ce());
    RUN("attn", (t_attn(0), t_attn(1)));
    if (!known) {
        fprintf(stderr, "test_layers: unknown section %s\n", which);
        return 2;
    }
    printf("%s\n", g_fail ? "FAILED" : "all passed");
    return g_fail != 0;
}
