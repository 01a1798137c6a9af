/* Float64 oracle: materialises the whole score matrix per head. Slow on purpose: it is the
 * obviously-correct definition the tests compare every kernel against. */
#include <math.h>
#include <stdlib.h>

#include "attn/internal.h"

static int32_t posv(const int32_t *p, int i) { return p ? p[i] : i; }
static int32_t docv(const int32_t *p, int i) { return p ? p[i] : 0; }

/* P[i,j] for one head (0 where masked); lse[i] (-inf where no key). */
static void probs(const lc_attn_desc *a, const double *q, const double *k, int h, double *P,
                  double *lse)
{
    int sq = a->sq, sk = a->sk, d = a->d, g = a->hq / a->hkv;
    double scale = (double)lc_attn_scale(a);
    const lc_mask *m = &a->mask;
    int doc = (m->kind & LC_MASK_DOC) != 0;
    for (int i = 0; i < sq; i++) {
        double mx = -INFINITY;
        const double *qi = q + ((size_t)i * a->hq + h) * d;
        for (int j = 0; j < sk; j++) {
            double *pij = &P[(size_t)i * sk + j];
            if (!lc_attn_allowed(m, posv(a->q_pos, i), posv(a->k_pos, j),
                                 doc ? docv(m->q_doc, i) : 0, doc ? docv(m->k_doc, j) : 0)) {
                *pij = -INFINITY;
                continue;
            }
            const double *kj = k + ((size_t)j * a->hkv + h / g) * d;
            double s = 0.0;
            for (int x = 0; x < d; x++)
                s += qi[x] * kj[x];
            *pij = s * scale;
            if (*pij > mx)
                mx = *pij;
        }
        double sum = 0.0;
        for (int j = 0; j < sk; j++) {
            double *pij = &P[(size_t)i * sk + j];
            *pij = mx == -INFINITY ? 0.0 : exp(*pij - mx);
            sum += *pij;
        }
        for (int j = 0; j < sk && sum > 0.0; j++)
            P[(size_t)i * sk + j] /= sum;
        lse[i] = sum > 0.0 ? mx + log(sum) : -INFINITY;
    }
}

static int ref_check(const lc_attn_desc *a, const void *q, const void *k, const void *v)
{
    if (lc_attn_validate(a) != 0)
        return LC_ERR_ARG;
    if (a->sq > 0 && !q)
        return lc_attn_fail("q is NULL");
    if (a->sk > 0 && (!k || !v))
        return lc_attn_fail("%s is NULL", k ? "v" : "k");
    return 0;
}

int lc_attn_ref_fwd(const lc_attn_desc *a, const double *q, const double *k, const double *v,
                    double *out, double *lse)
{
    if (ref_check(a, q, k, v) != 0)
        return LC_ERR_ARG;
    int sq = a->sq, sk = a->sk, d = a->d, hq = a->hq, g = a->hq / a->hkv;
    if (sq == 0)
        return 0;
    if (!out)
        return lc_attn_fail("out is NULL");
    double *P = malloc(((size_t)sq * (sk ? sk : 1)) * sizeof(double));
    double *l = malloc((size_t)sq * sizeof(double));
    if (!P || !l) {
        free(P);
        free(l);
        return lc_attn_fail("out of memory in lc_attn_ref_fwd");
    }
    for (int h = 0; h < hq; h++) {
        probs(a, q, k, h, P, l);
        for (int i = 0; i < sq; i++) {
            double *o = out + ((size_t)i * hq + h) * d;
            for (int x = 0; x < d; x++)
                o[x] = 0.0;
            for (int j = 0; j < sk; j++) {
                double p = P[(size_t)i * sk + j];
                if (p == 0.0)
                    continue;
                const double *vj = v + ((size_t)j * a->hkv + h / g) * d;
                for (int x = 0; x < d; x++)
                    o[x] += p * vj[x];
            }
            if (lse)
                lse[(size_t)i * hq + h] = l[i];
        }
    }
    free(P);
    free(l);
    return 0;
}

/* Writes (does not accumulate) dq, dk, dv for the whole problem. */
int lc_attn_ref_bwd(const lc_attn_desc *a, const double *q, const double *k, const double *v,
                    const double *dout, double *dq, double *dk, double *dv)
{
    if (ref_check(a, q, k, v) != 0)
        return LC_ERR_ARG;
    int sq = a->sq, sk = a->sk, d = a->d, hq = a->hq, hkv = a->hkv, g = hq / hkv;
    if (sq > 0 && (!dout || !dq))
        return lc_attn_fail("%s is NULL", dout ? "dq" : "dout");
    if (sk > 0 && (!dk || !dv))
        return lc_attn_fail("%s is NULL", dk ? "dv" : "dk");
    for (size_t i = 0; i < (size_t)sq * hq * d; i++)
        dq[i] = 0.0;
    for (size_t i = 0; i < (size_t)sk * hkv * d; i++)
        dk[i] = dv[i] = 0.0;
    if (sq == 0 || sk == 0)
        return 0;
    double scale = (double)lc_attn_scale(a);
    double *P = malloc((size_t)sq * sk * sizeof(double));
    double *dP = malloc((size_t)sq * sk * sizeof(double));
    double *l = malloc((size_t)sq * sizeof(double));
    if (!P || !dP || !l) {
        free(P);
        free(dP);
        free(l);
        return lc_attn_fail("out of memory in lc_attn_ref_bwd");
    }
    for (int h = 0; h < hq; h++) {
        int kh = h / g;
        probs(a, q, k, h, P, l);
        for (int i = 0; i < sq; i++) {
            const double *go = dout + ((size_t)i * hq + h) * d;
            double delta = 0.0;
            for (int j = 0; j < sk; j++) {
                const double *vj = v + ((size_t)j * hkv + kh) * d;
                double s = 0.0;
                for (int x = 0; x < d; x++)
                    s += go[x] * vj[x];
                dP[(size_t)i * sk + j] = s;
                delta += P[(size_t)i * sk + j] * s;
            }
            for (int j = 0; j < sk; j++) {
                double p = P[(size_t)i * sk + j];
                if (p == 0.0)
                    continue;
                double ds = p * (dP[(size_t)i * sk + j] - delta) * scale;
                const double *qi = q + ((size_t)i * hq + h) * d;
                const double *kj = k + ((size_t)j * hkv + kh) * d;
                double *dqi = dq + ((size_t)i * hq + h) * d;
                double *dkj = dk + ((size_t)j * hkv + kh) * d;
                double *dvj = dv + ((size_t)j * hkv + kh) * d;
                for (int x = 0; x < d; x++) {
                    dqi[x] += ds * kj[x];
                    dkj[x] += ds * qi[x];
                    dvj[x] += p * go[x];
                }
            }
        }
    }
    free(P);
    free(dP);
    free(l);
    return 0;
}
