/* Balance by the real mask (--balance mask).
 *
 * Zigzag balances a plain causal mask: with packed documents or a sliding window most of a
 * PE's score tiles may be skipped while another PE computes all of its own. The work model is
 * the kernels' own: the sequence cut into 64-token chunks (the tile edge), and a query chunk's
 * work is the number of key chunks its tiles cannot skip under the mask (causal, window, doc
 * ranges), the classification lc_attn_classify makes per 64 x 64 tile. `mask` keeps S/P
 * tokens per PE (so activation arenas and the linear layers stay balanced) and deals the
 * chunks out longest-first to the least loaded PE that still has room (LPT with a cardinality
 * bound), ties to the lower chunk and PE, so every PE derives the same assignment from the
 * same doc ids. Each PE's chunks stay in ascending order: local rows grow with the position,
 * as in every layout. All of it runs on buffers the plan sized at create. */
#include <stdio.h>
#include <string.h>

#include "attn/core.h"
#include "common/err.h"
#include "cp/internal.h"

#define CH 64

static int64_t n_chunks(int64_t s) { return (s + CH - 1) / CH; }

int lc_cp_chunk_work(int64_t seq_len, unsigned mask, int64_t window, const int32_t *doc, double *work)
{
    if (seq_len < 1 || !work || ((mask & LC_MASK_DOC) && !doc) || ((mask & LC_MASK_WINDOW) && window < 1))
        return LC_ERR_ARG;
    int64_t nc = n_chunks(seq_len);
    int causal = (mask & LC_MASK_CAUSAL) != 0, win = (mask & LC_MASK_WINDOW) != 0, dm = (mask & LC_MASK_DOC) != 0;
    for (int64_t i = 0; i < nc; i++) {
        int64_t qs = i * CH, qe = (qs + CH < seq_len ? qs + CH : seq_len) - 1;
        int32_t qlo = 0, qhi = 0;
        if (dm) {
            qlo = qhi = doc[qs];
            for (int64_t t = qs + 1; t <= qe; t++) qlo = doc[t] < qlo ? doc[t] : qlo, qhi = doc[t] > qhi ? doc[t] : qhi;
        }
        /* the key chunks a window or causality can reach at all */
        int64_t j0 = win ? (qs - window + 1 > 0 ? (qs - window + 1) / CH : 0) : 0, j1 = causal ? i : nc - 1;
        double n = 0;
        for (int64_t j = j0; j <= j1; j++) {
            int64_t ks = j * CH, ke = (ks + CH < seq_len ? ks + CH : seq_len) - 1;
            if (win && qs - ke >= window) continue; /* no pair within the window (q - k < window) */
            if (dm) {
                int32_t klo = doc[ks], khi = doc[ks];
                for (int64_t t = ks + 1; t <= ke; t++) klo = doc[t] < klo ? doc[t] : klo, khi = doc[t] > khi ? doc[t] : khi;
                if (khi < qlo || klo > qhi) continue; /* no document in common */
            }
            n++;
        }
        work[i] = n;
    }
    return LC_OK;
}

size_t lc_cp_work_scratch(int P, int n_pad)
{
    return (size_t)(P > 0 ? P : 0) * (size_t)((n_pad + CH - 1) / CH) * sizeof(lc_tile_sum);
}

/* Each PE's rows as the kernels see them: tiles of 64 local rows, every query tile against
 * every key tile of every PE (the ring and the all-gather visit them all), kept unless the
 * tile classification (attn/core.h, the kernels' own) skips the pair. */
double lc_cp_work_imbalance(unsigned mask, int64_t window, const int32_t *doc, int P, int n_pad, const int32_t *pos,
                            void *scratch, double *load, double *total)
{
    int nt = (n_pad + CH - 1) / CH, dm = (mask & LC_MASK_DOC) && doc;
    lc_tile_sum *ts = scratch;
    for (int r = 0; r < P; r++)
        for (int t = 0; t < nt; t++) {
            lc_tile_sum *s = &ts[(size_t)r * nt + t];
            int i1 = (t + 1) * CH < n_pad ? (t + 1) * CH : n_pad;
            lc_tile_sum_init(s, i1 - t * CH);
            for (int i = t * CH; i < i1; i++) {
                int32_t p = pos[(size_t)r * n_pad + i];
                lc_tile_sum_add(s, p, dm && p >= 0 ? doc[p] : 0);
            }
        }
    double mx = 0, tot = 0;
    size_t all = (size_t)P * nt;
    for (int r = 0; r < P; r++) {
        double l = 0;
        for (int t = 0; t < nt; t++) {
            const lc_tile_sum *q = &ts[(size_t)r * nt + t];
            if (!q->nvalid) continue;
            for (size_t k = 0; k < all; k++) l += lc_tile_classify(mask, window, q, &ts[k]) != LC_BLOCK_SKIP;
        }
        if (load) load[r] = l;
        mx = l > mx ? l : mx;
        tot += l;
    }
    if (total) *total = tot;
    return tot > 0 ? mx / (tot / P) : 1.0;
}

/* Chunk a comes before chunk b in the dealing order: more work first, then the lower index. */
static int before(const double *w, int a, int b) { return w[a] > w[b] || (w[a] == w[b] && a < b); }

/* In-place heap sort of idx by `before` (qsort may allocate). */
static void sift(const double *w, int *idx, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, m = i;
        if (l < n && before(w, idx[m], idx[l])) m = l; /* max-heap of "comes later" */
        if (l + 1 < n && before(w, idx[m], idx[l + 1])) m = l + 1;
        if (m == i) return;
        int t = idx[i];
        idx[i] = idx[m], idx[m] = t;
        i = m;
    }
}

static void order_by_work(const double *w, int *idx, int n)
{
    for (int i = 0; i < n; i++) idx[i] = i;
    for (int i = n / 2 - 1; i >= 0; i--) sift(w, idx, n, i);
    for (int e = n - 1; e > 0; e--) {
        int t = idx[0];
        idx[0] = idx[e], idx[e] = t;
        sift(w, idx, e, 0);
    }
}

int lc_cp_balance_assign(const double *work, int64_t seq_len, int P, int32_t *pos, int *scratch, double *load)
{
    if (P < 1 || seq_len < 1 || seq_len % ((int64_t)CH * P) || !work || !pos || !scratch || !load) return LC_ERR_ARG;
    int nc = (int)(seq_len / CH), k = nc / P;
    int *idx = scratch, *cnt = scratch + nc, *owner = scratch + nc + P;
    order_by_work(work, idx, nc);
    for (int r = 0; r < P; r++) load[r] = 0, cnt[r] = 0;
    for (int n = 0; n < nc; n++) {
        int c = idx[n], best = -1;
        for (int r = 0; r < P; r++)
            if (cnt[r] < k && (best < 0 || load[r] < load[best])) best = r;
        owner[c] = best;
        load[best] += work[c];
        cnt[best]++;
    }
    /* each PE's chunks in ascending order: walk the chunks once */
    for (int r = 0; r < P; r++) cnt[r] = 0;
    int n_pad = (int)(seq_len / P);
    for (int c = 0; c < nc; c++) {
        int r = owner[c];
        int32_t *dst = pos + (size_t)r * n_pad + (size_t)cnt[r]++ * CH;
        for (int t = 0; t < CH; t++) dst[t] = (int32_t)(c * CH + t);
    }
    return LC_OK;
}

size_t lc_cp__balance_scratch(int64_t seq_len, int P, int n_pad)
{
    int64_t nc = n_chunks(seq_len);
    return (size_t)nc * sizeof(double) + (size_t)P * sizeof(double) + lc_cp_work_scratch(P, n_pad) +
           (size_t)(2 * nc + P) * sizeof(int);
}

int lc_cp_balance_step(lc_cp *cp, const int32_t *doc)
{
    if (!cp) return lc_cp__no_plan("lc_cp_balance_step");
    const lc_cp_config *c = &cp->cfg;
    if (cp->uly) { /* a group's PEs share its rows by heads: the groups' ring is what can tilt */
        lc_cp *in = lc_cp__uly_inner(cp);
        int rc = lc_cp_balance_step(in, doc);
        if (rc) return lc_cp__fail(cp, rc, "lc_cp_balance_step: %s", lc_cp_last_error(in));
        cp->imbalance = in->imbalance;
        return LC_OK;
    }
    if (cp->P == 1) {
        cp->imbalance = 1.0;
        return LC_OK;
    }
    if ((c->mask & LC_MASK_DOC) && !doc)
        return lc_cp__fail(cp, LC_ERR_ARG, "lc_cp_balance_step: the mask has LC_MASK_DOC but doc is NULL");
    /* Without document ids the work never changes: measure (and deal) once. */
    if (!(c->mask & LC_MASK_DOC) && cp->balanced_once) return LC_OK;
    int64_t S = c->plan.seq_len, nc = n_chunks(S);
    double *work = cp->bal_work, *load = work + nc;
    void *tiles = load + cp->P;
    int *scratch = (int *)((char *)tiles + lc_cp_work_scratch(cp->P, cp->n_pad));
    if (lc_cp_chunk_work(S, c->mask, c->window, doc, work))
        return lc_cp__fail(cp, LC_ERR_ARG, "lc_cp_balance_step: bad mask arguments");
    if (c->plan.balance == LC_CP_BALANCE_MASK) {
        /* the doc ids agree on every member (the caller's contract), so the deal does too; the
         * positions reach my home block only when the next call stages it */
        if (lc_cp_balance_assign(work, S, cp->P, cp->pos_of, scratch, load))
            return lc_cp__fail(cp, LC_ERR_ARG, "lc_cp_balance_step: --seq %lld is not a multiple of 64 x %d PEs",
                               (long long)S, cp->P);
    }
    cp->imbalance = lc_cp_work_imbalance(c->mask, c->window, doc, cp->P, cp->n_pad, cp->pos_of, tiles, load, NULL);
    cp->balanced_once = 1;
    return LC_OK;
}

double lc_cp_imbalance(const lc_cp *cp) { return cp ? cp->imbalance : 0; }

static const char *const BAL[] = {"tokens", "mask"};

const char *lc_cp_balance_name(lc_cp_balance b) { return (unsigned)b <= LC_CP_BALANCE_MASK ? BAL[b] : "?"; }

int lc_cp_balance_parse(const char *s, lc_cp_balance *out)
{
    for (int i = 0; i < 2; i++)
        if (s && !strcmp(s, BAL[i])) {
            *out = (lc_cp_balance)i;
            return 0;
        }
    return LC_ERR_ARG;
}
