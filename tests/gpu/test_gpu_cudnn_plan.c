/* The cuDNN engine's host logic on the CPU (src/attn/cuda/cudnn_plan.h, the code the engine
 * runs): engine-name parsing; the per-block rule (pieces cover every allowed (query, key)
 * pair of a block exactly once and no other, against lc_attn_allowed by brute force, for
 * contiguous, shifted, zigzag, padded and document blocks under every mask; each piece is
 * trimmed tight; too many pieces is refused); and the online-softmax merge of 16-bit partials
 * against a float64 softmax: exact to fp32 without rounding, within the bf16 bound with it,
 * and a partial that saw nothing changes nothing even when it holds NaN. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/rng.h"
#include "cudnn_plan.h"

static int fails;
#define EXPECT(c, ...)                 \
    do {                               \
        if (!(c)) {                    \
            fails++;                   \
            printf("FAIL: " __VA_ARGS__); \
            printf("\n");              \
        }                              \
    } while (0)

static uint64_t rng(uint64_t *s) { return lc_test_rng(s); }

static void test_parse(void) {
    int k = -1;
    EXPECT(!lcg_engine_parse("own", &k) && k == LCG_ENGINE_OWN, "parse own");
    EXPECT(!lcg_engine_parse("cudnn", &k) && k == LCG_ENGINE_CUDNN, "parse cudnn");
    EXPECT(!lcg_engine_parse("auto", &k) && k == LCG_ENGINE_AUTO, "parse auto");
    EXPECT(!lcg_engine_parse("", &k) && k == LCG_ENGINE_OWN, "parse empty = own");
    EXPECT(!lcg_engine_parse(NULL, &k) && k == LCG_ENGINE_OWN, "parse NULL = own");
    EXPECT(lcg_engine_parse("CUDNN", &k) == -1, "parse is case-sensitive");
    EXPECT(lcg_engine_parse("flash", &k) == -1, "parse rejects unknown names");
    EXPECT(!strcmp(lcg_engine_name(LCG_ENGINE_CUDNN), "cudnn") && !strcmp(lcg_engine_name(7), "?"), "names");
}

/* One block: returns 1 when it planned (and was checked), 0 when refused (too many pieces). */
static int check_block(unsigned kind, int window, const int32_t *qp, const int32_t *qd, int sq, const int32_t *kp,
                       const int32_t *kd, int sk, const char *what) {
    int *qs = malloc(sizeof(int) * sq), *ql = malloc(sizeof(int) * sq), *ks = malloc(sizeof(int) * sk),
        *kl = malloc(sizeof(int) * sk);
    lcg_piece p[LCG_CUDNN_MAX_PIECES];
    const int n = lcg_plan_pieces(kind, window, qp, qd, sq, kp, kd, sk, qs, ql, ks, kl, p, LCG_CUDNN_MAX_PIECES);
    int planned = n >= 0;
    if (planned) {
        unsigned char *cover = calloc((size_t)sq * sk, 1);
        for (int t = 0; t < n; t++) {
            const lcg_piece *x = &p[t];
            EXPECT(x->nq > 0 && x->nk > 0 && x->q0 >= 0 && x->k0 >= 0 && x->q0 + x->nq <= sq && x->k0 + x->nk <= sk,
                   "%s: piece %d out of the block", what, t);
            EXPECT(x->right >= -1 && x->left >= 0, "%s: piece %d bounds %d %d", what, t, x->right, x->left);
            EXPECT(!(x->right >= 0) || (kind & LC_MASK_CAUSAL), "%s: causal bound without causal mask", what);
            EXPECT(!(x->left > 0) || (kind & LC_MASK_WINDOW), "%s: window bound without window mask", what);
            EXPECT(!(x->left > 0) || x->nq <= x->nk, "%s: banded piece %d has %d rows > %d keys", what, t, x->nq, x->nk);
            int *rowhit = calloc(x->nq, sizeof(int)), *colhit = calloc(x->nk, sizeof(int));
            for (int i = 0; i < x->nq; i++)
                for (int j = 0; j < x->nk; j++)
                    if (lcg_piece_allows(x, i, j)) {
                        cover[(size_t)(x->q0 + i) * sk + x->k0 + j]++;
                        rowhit[i] = colhit[j] = 1;
                    }
            /* trimmed tight: no row or key of a piece is wholly masked (cuDNN would produce an
             * empty softmax row, and the work would be wasted) */
            for (int i = 0; i < x->nq; i++) EXPECT(rowhit[i], "%s: piece %d row %d sees nothing", what, t, i);
            for (int j = 0; j < x->nk; j++) EXPECT(colhit[j], "%s: piece %d key %d seen by nobody", what, t, j);
            free(rowhit);
            free(colhit);
        }
        lc_mask m;
        memset(&m, 0, sizeof m);
        m.kind = kind;
        m.window = window;
        int bad = 0;
        for (int i = 0; i < sq; i++)
            for (int j = 0; j < sk; j++) {
                const int32_t a = qp ? qp[i] : i, b = kp ? kp[j] : j;
                const int want = a >= 0 && b >= 0 && lc_attn_allowed(&m, a, b, qd ? qd[i] : 0, kd ? kd[j] : 0);
                if (cover[(size_t)i * sk + j] != want && bad++ < 3)
                    printf("FAIL: %s: (%d, %d) positions (%d, %d) covered %d times, allowed %d\n", what, i, j, a, b,
                           cover[(size_t)i * sk + j], want);
            }
        if (bad) fails++;
        free(cover);
    }
    free(qs); free(ql); free(ks); free(kl);
    return planned;
}

static void test_pieces(void) {
    uint64_t s = lc_test_seed();
    printf("seed %llu (LONGCTX_SEED reproduces a run)\n", (unsigned long long)s);
    const unsigned kinds[] = {0, LC_MASK_CAUSAL, LC_MASK_WINDOW, LC_MASK_CAUSAL | LC_MASK_WINDOW, LC_MASK_DOC,
                              LC_MASK_CAUSAL | LC_MASK_DOC, LC_MASK_CAUSAL | LC_MASK_WINDOW | LC_MASK_DOC};
    int planned = 0, refused = 0;
    for (int it = 0; it < 400; it++) {
        const int sq = 1 + (int)(rng(&s) % 130), sk = 1 + (int)(rng(&s) % 130);
        const unsigned kind = kinds[rng(&s) % 7];
        const int window = 1 + (int)(rng(&s) % 60), shape = (int)(rng(&s) % 5), doclen = 8 + (int)(rng(&s) % 40);
        int32_t *qp = malloc(4 * sq), *kp = malloc(4 * sk), *qd = malloc(4 * sq), *kd = malloc(4 * sk);
        const int q0 = (int)(rng(&s) % 200), k0 = (int)(rng(&s) % 200), gap = 1 + (int)(rng(&s) % 100);
        for (int i = 0; i < sq; i++) {
            qp[i] = q0 + i;
            if (shape == 1 && i >= sq / 2) qp[i] += gap;            /* zigzag-like: two runs */
            if (shape == 2 && i >= sq - sq / 5) qp[i] = -1;          /* padding at the end */
            if (shape == 3 && rng(&s) % 4 == 0) qp[i] = -1;          /* scattered padding */
        }
        for (int j = 0; j < sk; j++) {
            kp[j] = k0 + j;
            if (shape == 1 && j >= sk / 2) kp[j] += gap / 2;
            if (shape == 2 && j >= sk - sk / 7) kp[j] = -1;
        }
        for (int i = 0; i < sq; i++) qd[i] = qp[i] >= 0 ? qp[i] / doclen : -1;
        for (int j = 0; j < sk; j++) kd[j] = kp[j] >= 0 ? kp[j] / doclen : -1;
        char what[160];
        snprintf(what, sizeof what, "it %d sq %d sk %d kind %u window %d shape %d doclen %d q0 %d k0 %d gap %d", it, sq,
                 sk, kind, window, shape, doclen, q0, k0, gap);
        if (shape == 4) /* NULL positions: 0..n-1 */
            check_block(kind, window, NULL, qd, sq, NULL, kd, sk, what) ? planned++ : refused++;
        else
            check_block(kind, window, qp, qd, sq, kp, kd, sk, what) ? planned++ : refused++;
        free(qp); free(kp); free(qd); free(kd);
    }
    EXPECT(planned > 300 && refused > 0, "rule coverage: %d planned, %d refused", planned, refused);
    /* the ring's blocks: contiguous diagonal = one piece with right 0; K before Q = one
     * piece, no bound; K after Q under causal = nothing; a zigzag shard against a zigzag
     * block = at most 4 pieces */
    int32_t q[64], k[64];
    int qs[64], ql[64], ks[64], kl[64];
    lcg_piece p[LCG_CUDNN_MAX_PIECES];
    for (int i = 0; i < 64; i++) q[i] = k[i] = 128 + i;
    int n = lcg_plan_pieces(LC_MASK_CAUSAL, 0, q, NULL, 64, k, NULL, 64, qs, ql, ks, kl, p, LCG_CUDNN_MAX_PIECES);
    EXPECT(n == 1 && p[0].right == 0 && p[0].left == 0 && p[0].nq == 64 && p[0].nk == 64, "diagonal block: %d", n);
    for (int i = 0; i < 64; i++) k[i] = i;
    n = lcg_plan_pieces(LC_MASK_CAUSAL, 0, q, NULL, 64, k, NULL, 64, qs, ql, ks, kl, p, LCG_CUDNN_MAX_PIECES);
    EXPECT(n == 1 && p[0].right == -1 && p[0].left == 0, "full block: %d right %d", n, p[0].right);
    n = lcg_plan_pieces(LC_MASK_CAUSAL, 0, k, NULL, 64, q, NULL, 64, qs, ql, ks, kl, p, LCG_CUDNN_MAX_PIECES);
    EXPECT(n == 0, "masked block: %d pieces", n);
    for (int i = 0; i < 32; i++) {
        q[i] = 32 + i; q[32 + i] = 224 + i; /* chunks 1 and 7 of 8 */
        k[i] = 64 + i; k[32 + i] = 192 + i; /* chunks 2 and 6 */
    }
    n = lcg_plan_pieces(LC_MASK_CAUSAL, 0, q, NULL, 64, k, NULL, 64, qs, ql, ks, kl, p, LCG_CUDNN_MAX_PIECES);
    EXPECT(n == 2 && p[0].right == -1 && p[1].right == -1, "zigzag block: %d pieces", n);
    printf("pieces: %d blocks planned, %d refused (more than %d pieces)\n", planned, refused, LCG_CUDNN_MAX_PIECES);
}

static float bf16r(float x) { /* round to nearest even bf16 */
    uint32_t u;
    memcpy(&u, &x, 4);
    u += 0x7fff + ((u >> 16) & 1);
    u &= 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

/* one query row against nk keys cut into blocks: the merge of the blocks' partials equals the
 * softmax over all keys */
static void test_merge(void) {
    uint64_t s = 99;
    double worst_exact = 0, worst_bf16 = 0;
    for (int it = 0; it < 300; it++) {
        const int d = 64, nk = 8 + (int)(rng(&s) % 200), nb = 1 + (int)(rng(&s) % 16);
        double sc[256], v[256][64], full[64] = {0};
        double m = -INFINITY;
        for (int j = 0; j < nk; j++) {
            sc[j] = ((double)(rng(&s) % 20001) / 1000.0 - 10.0);
            m = fmax(m, sc[j]);
            for (int t = 0; t < d; t++) v[j][t] = (double)(rng(&s) % 2001) / 1000.0 - 1.0;
        }
        double den = 0;
        for (int j = 0; j < nk; j++) den += exp(sc[j] - m);
        for (int j = 0; j < nk; j++)
            for (int t = 0; t < d; t++) full[t] += exp(sc[j] - m) / den * v[j][t];
        const double lse_full = m + log(den);
        float o[2][64] = {{0}}, lse[2] = {-INFINITY, -INFINITY};
        for (int b = 0; b < nb; b++) {
            const int j0 = nk * b / nb, j1 = nk * (b + 1) / nb;
            float op[2][64], sp = -INFINITY;
            if (j1 > j0) {
                double bm = -INFINITY, bd = 0, acc[64] = {0};
                for (int j = j0; j < j1; j++) bm = fmax(bm, sc[j]);
                for (int j = j0; j < j1; j++) bd += exp(sc[j] - bm);
                for (int j = j0; j < j1; j++)
                    for (int t = 0; t < d; t++) acc[t] += exp(sc[j] - bm) / bd * v[j][t];
                for (int t = 0; t < d; t++) {
                    op[0][t] = (float)acc[t];
                    op[1][t] = bf16r((float)acc[t]);
                }
                sp = (float)(bm + log(bd));
            } else {
                for (int t = 0; t < d; t++) op[0][t] = op[1][t] = NAN; /* an empty piece's garbage */
            }
            for (int r = 0; r < 2; r++) lcg_merge_row(o[r], &lse[r], op[r], sp, d);
        }
        double me = 0, mb = 0, mx = 0;
        for (int t = 0; t < d; t++) {
            mx = fmax(mx, fabs(full[t]));
            me = fmax(me, fabs(o[0][t] - full[t]));
            mb = fmax(mb, fabs(o[1][t] - full[t]));
        }
        me /= fmax(mx, 1e-3);
        mb /= fmax(mx, 1e-3);
        worst_exact = fmax(worst_exact, me);
        worst_bf16 = fmax(worst_bf16, mb);
        EXPECT(me < 1e-5 && !isnan(me), "merge of %d fp32 partials: rel err %.2e", nb, me);
        EXPECT(mb < 1e-2 && !isnan(mb), "merge of %d bf16 partials: rel err %.2e", nb, mb);
        EXPECT(fabs(lse[0] - lse_full) < 1e-5 * fmax(1, fabs(lse_full)), "merged lse %.7f vs %.7f", lse[0], lse_full);
    }
    /* an empty state takes the first partial as it is; an empty partial (NaN inside) changes nothing */
    float o[4] = {0}, l = -INFINITY, op[4] = {1, 2, 3, 4}, nan4[4] = {NAN, NAN, NAN, NAN};
    lcg_merge_row(o, &l, op, 0.5f, 4);
    EXPECT(o[0] == 1 && o[3] == 4 && l == 0.5f, "first partial: o %g lse %g", o[0], l);
    lcg_merge_row(o, &l, nan4, -INFINITY, 4);
    lcg_merge_row(o, &l, nan4, NAN, 4);
    EXPECT(o[0] == 1 && o[3] == 4 && l == 0.5f, "empty partial changed the state: o %g lse %g", o[0], l);
    printf("merge: worst relative error %.2e with fp32 partials, %.2e with bf16 partials (1-16 blocks)\n",
           worst_exact, worst_bf16);
}

int main(void) {
    test_parse();
    test_pieces();
    test_merge();
    printf("test_gpu_cudnn_plan: %s (%d failures)\n", fails ? "FAIL" : "ok", fails);
    return fails ? 1 : 0;
}
