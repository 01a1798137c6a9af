/* AdamW (decoupled weight decay) over the model's flat fp32 parameters, the global-norm
 * clipping factor, and the warmup + cosine learning-rate schedule. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "longctx/optim.h"
#include "longctx/status.h"

/* The optimizer has no handle to hold a message: the thread's buffer holds it. */
#define optim_fail(...) lc__fail_in(NULL, 0, __VA_ARGS__)

const char *lc_optim_last_error(void) { return lc__thread_error(); }

typedef struct { size_t off, n; } range_t;

struct lc_adamw {
    lc_adamw_config cfg;
    size_t n;
    float *m, *v;
    range_t *nodecay; /* sorted, disjoint */
    int n_nodecay, cap_nodecay;
    int64_t t;
};

int lc_adamw_create(size_t n_params, const lc_adamw_config *cfg, lc_adamw **out)
{
    *out = NULL;
    if (!(cfg->beta1 >= 0 && cfg->beta1 < 1) || !(cfg->beta2 >= 0 && cfg->beta2 < 1) ||
        !(cfg->eps > 0) || !(cfg->weight_decay >= 0))
        return optim_fail(LC_ERR_ARG, "adamw: bad betas (%g, %g), eps %g or weight decay %g",
                              cfg->beta1, cfg->beta2, cfg->eps, cfg->weight_decay);
    lc_adamw *o = calloc(1, sizeof *o);
    if (!o) return optim_fail(LC_ERR_SYS, "adamw: out of memory");
    o->cfg = *cfg;
    o->n = n_params;
    o->m = calloc(n_params ? n_params : 1, sizeof *o->m);
    o->v = calloc(n_params ? n_params : 1, sizeof *o->v);
    if (!o->m || !o->v) {
        lc_adamw_destroy(o);
        return optim_fail(LC_ERR_SYS, "adamw: out of memory for %zu parameters", n_params);
    }
    *out = o;
    return LC_OK;
}

void lc_adamw_destroy(lc_adamw *o)
{
    if (!o) return;
    free(o->m);
    free(o->v);
    free(o->nodecay);
    free(o);
}

int lc_adamw_set_decay(lc_adamw *o, size_t offset, size_t count, int decay)
{
    if (offset > o->n || count > o->n - offset)
        return optim_fail(LC_ERR_ARG, "adamw: range [%zu, %zu) outside %zu parameters", offset,
                              offset + count, o->n);
    if (decay || !count) return LC_OK; /* decaying is the default */
    int at = 0;
    while (at < o->n_nodecay && o->nodecay[at].off < offset) at++;
    if ((at > 0 && o->nodecay[at - 1].off + o->nodecay[at - 1].n > offset) ||
        (at < o->n_nodecay && offset + count > o->nodecay[at].off))
        return optim_fail(LC_ERR_ARG, "adamw: no-decay range [%zu, %zu) overlaps another", offset,
                              offset + count);
    if (o->n_nodecay == o->cap_nodecay) {
        int cap = o->cap_nodecay ? 2 * o->cap_nodecay : 16;
        range_t *r = realloc(o->nodecay, (size_t)cap * sizeof *r);
        if (!r) return optim_fail(LC_ERR_SYS, "adamw: out of memory");
        o->nodecay = r;
        o->cap_nodecay = cap;
    }
    memmove(o->nodecay + at + 1, o->nodecay + at, (size_t)(o->n_nodecay - at) * sizeof *o->nodecay);
    o->nodecay[at] = (range_t){offset, count};
    o->n_nodecay++;
    return LC_OK;
}

static void update(lc_adamw *o, size_t lo, size_t hi, float *p, const float *g, float lr,
                   float grad_mul, float wd, float bc1, float bc2)
{
    const float b1 = o->cfg.beta1, b2 = o->cfg.beta2, eps = o->cfg.eps;
    float *m = o->m, *v = o->v;
    for (size_t i = lo; i < hi; i++) {
        float gi = g[i] * grad_mul;
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        float mh = m[i] / bc1, vh = v[i] / bc2;
        p[i] -= lr * (mh / (sqrtf(vh) + eps) + wd * p[i]);
    }
}

void lc_adamw_step(lc_adamw *o, float *params, const float *grads, float lr, float grad_mul)
{
    o->t++;
    float bc1 = 1.0f - powf(o->cfg.beta1, (float)o->t);
    float bc2 = 1.0f - powf(o->cfg.beta2, (float)o->t);
    size_t cur = 0;
    for (int r = 0; r < o->n_nodecay; r++) {
        update(o, cur, o->nodecay[r].off, params, grads, lr, grad_mul, o->cfg.weight_decay, bc1, bc2);
        cur = o->nodecay[r].off + o->nodecay[r].n;
        update(o, o->nodecay[r].off, cur, params, grads, lr, grad_mul, 0.0f, bc1, bc2);
    }
    update(o, cur, o->n, params, grads, lr, grad_mul, o->cfg.weight_decay, bc1, bc2);
}

int64_t lc_adamw_steps(const lc_adamw *o) { return o->t; }
void lc_adamw_set_steps(lc_adamw *o, int64_t t) { o->t = t < 0 ? 0 : t; }
size_t lc_adamw_n_params(const lc_adamw *o) { return o->n; }
float *lc_adamw_m(lc_adamw *o) { return o->m; }
float *lc_adamw_v(lc_adamw *o) { return o->v; }

double lc_global_norm(const float *g, size_t n)
{
    /* Four partial sums keep the loop vectorisable while the order stays fixed. */
    double s[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++) s[k] += (double)g[i + k] * g[i + k];
    for (; i < n; i++) s[0] += (double)g[i] * g[i];
    return sqrt((s[0] + s[1]) + (s[2] + s[3]));
}

float lc_clip_factor(double norm, float max_norm)
{
    if (!(max_norm > 0) || !(norm > max_norm)) return 1.0f;
    return (float)(max_norm / norm);
}

float lc_lr_at(int64_t step, int64_t warmup, int64_t total_steps, float lr_max, float lr_min)
{
    if (warmup > 0 && step < warmup) return lr_max * (float)(step + 1) / (float)warmup;
    if (total_steps <= warmup) return lr_max;
    double frac = (double)(step - warmup) / (double)(total_steps - warmup);
    if (frac > 1) frac = 1;
    return lr_min + (float)(0.5 * (1.0 + cos(M_PI * frac))) * (lr_max - lr_min);
}
