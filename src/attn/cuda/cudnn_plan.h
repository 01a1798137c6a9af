/* Host logic of the cuDNN attention engine, as plain C shared by the engine
 * (cudnn_engine.cpp, cudnn_kernels.cu) and the CPU test tests/gpu/test_gpu_cudnn_plan.c:
 *
 * - the engine names (own | cudnn | auto) and their parsing;
 * - the per-block rule: a block (Q rows x K rows with global positions and document ids) is
 *   cut into PIECES, each a contiguous range of Q rows with consecutive positions against a
 *   contiguous range of K rows with consecutive positions (same document under LC_MASK_DOC),
 *   trimmed to the rows and keys that see each other, whose mask is then exactly a cuDNN
 *   diagonal band in the piece's own coordinates (top-left alignment):
 *       key j allowed for query i  iff  j - i <= right (when right >= 0)
 *                                  and  i - j <  left  (when left > 0);
 *   a banded piece with more rows than keys is cut into row chunks (cuDNN's window needs
 *   s_q <= s_kv); a block that needs more than LCG_CUDNN_MAX_PIECES pieces is not the
 *   engine's: it runs on our kernels, and the engine counts it (the ring's contiguous and
 *   zigzag layouts need at most 4 pieces per causal block; random padding or many short
 *   documents need many);
 * - the online-softmax merge of one piece's partial output (cuDNN writes it in bf16/f16 with
 *   its log-sum-exp) into the normalised fp32 (o, lse) state, the very function the merge
 *   kernel calls per row. */
#ifndef LONGCTX_CUDNN_PLAN_H
#define LONGCTX_CUDNN_PLAN_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "longctx/attn.h"

#if defined(__CUDACC__)
#define LCG_HD __host__ __device__ static inline
#else
#define LCG_HD static inline
#endif

enum { LCG_ENGINE_OWN = 0, LCG_ENGINE_CUDNN = 1, LCG_ENGINE_AUTO = 2 };

/* 0 and *out set for "own", "cudnn", "auto" (case-sensitive) and for NULL or "" (own);
 * -1 for anything else. */
static inline int lcg_engine_parse(const char *s, int *out) {
    if (!s || !*s || !strcmp(s, "own")) *out = LCG_ENGINE_OWN;
    else if (!strcmp(s, "cudnn")) *out = LCG_ENGINE_CUDNN;
    else if (!strcmp(s, "auto")) *out = LCG_ENGINE_AUTO;
    else return -1;
    return 0;
}

static inline const char *lcg_engine_name(int k) {
    return k == LCG_ENGINE_OWN ? "own" : k == LCG_ENGINE_CUDNN ? "cudnn" : k == LCG_ENGINE_AUTO ? "auto" : "?";
}

#define LCG_CUDNN_MAX_PIECES 16

typedef struct {
    int q0, nq;  /* Q rows [q0, q0 + nq) of the block */
    int k0, nk;  /* K rows [k0, k0 + nk) */
    int right;   /* causal bound in piece coordinates (j - i <= right), -1: none */
    int left;    /* window bound (i - j < left), 0: none */
} lcg_piece;

/* Maximal runs of rows with pos >= 0, pos[i+1] == pos[i] + 1 and (doc) equal document ids.
 * pos NULL: 0..n-1. Writes up to max runs, returns how many there are (may exceed max). */
static inline int lcg_runs(const int32_t *pos, const int32_t *doc, int n, int *start, int *len, int max) {
    int count = 0;
    for (int i = 0; i < n;) {
        const int32_t p = pos ? pos[i] : i;
        if (p < 0) {
            i++;
            continue;
        }
        int j = i + 1;
        while (j < n) {
            const int32_t pj = pos ? pos[j] : j;
            if (pj != p + (j - i) || (doc && doc[j] != doc[i])) break;
            j++;
        }
        if (count < max) {
            start[count] = i;
            len[count] = j - i;
        }
        count++;
        i = j;
    }
    return count;
}

/* One Q run (first position qa, rows q0..q0+nq) against one K run: the trimmed piece, or 0 when
 * no query of the run sees any key of the other. */
static inline int lcg_piece_of(unsigned kind, int64_t window, int q0, int32_t qa, int nq, int k0, int32_t ka,
                               int nk, lcg_piece *out) {
    const int causal = (kind & LC_MASK_CAUSAL) != 0, win = (kind & LC_MASK_WINDOW) != 0;
    const int64_t qb = (int64_t)qa + nq - 1, kb = (int64_t)ka + nk - 1;
    /* queries p that see some key in [ka, kb]: p >= ka (causal), p - window + 1 <= kb (window) */
    int64_t pa = qa, pb = qb;
    if (causal && pa < ka) pa = ka;
    if (win && pb > kb + window - 1) pb = kb + window - 1;
    if (pa > pb) return 0;
    /* keys those queries see: k <= pb (causal), k >= pa - window + 1 (window) */
    int64_t ca = ka, cb = kb;
    if (win && ca < pa - window + 1) ca = pa - window + 1;
    if (causal && cb > pb) cb = pb;
    if (ca > cb) return 0;
    out->q0 = q0 + (int)(pa - qa);
    out->nq = (int)(pb - pa + 1);
    out->k0 = k0 + (int)(ca - ka);
    out->nk = (int)(cb - ca + 1);
    const int64_t off = pa - ca; /* q position minus k position at (0, 0); >= 0 under causal */
    /* the causal bound j - i <= off matters only if some j - i exceeds it; likewise the window */
    out->right = causal && off < out->nk - 1 ? (int)off : -1;
    const int64_t left = window - off; /* >= 1: ca >= pa - window + 1 */
    out->left = win && out->nq - 1 >= left ? (int)left : 0;
    return 1;
}

/* The pieces of one Q run against one K run, appended at out[*n] (up to max; -1 beyond).
 * cuDNN takes a window (left) bound only with no more rows than keys, so a banded piece with
 * more rows is cut into row chunks of at most as many rows as it has keys. */
static inline int lcg_emit_pieces(unsigned kind, int64_t window, int q0, int32_t qa, int nq, int k0, int32_t ka,
                                  int nk, lcg_piece *out, int *n, int max) {
    int r = 0;
    while (r < nq) {
        int m = nq - r;
        lcg_piece p;
        for (;;) {
            if (!lcg_piece_of(kind, window, q0 + r, qa + r, m, k0, ka, nk, &p)) return 0; /* later rows see less */
            if (!(p.left > 0 && p.nq > p.nk)) break;
            r = p.q0 - q0; /* the chunk starts at its first row that sees a key */
            m = p.nk;
        }
        if (*n == max) return -1;
        out[(*n)++] = p;
        r = p.q0 - q0 + p.nq;
    }
    return 0;
}

/* Cuts a block into pieces (see the top of this file). Returns the number of pieces
 * (0: nothing in the block is visible), or -1 when more than max would be needed; the runs
 * use qs/ql (nq entries) and ks/kl (nk entries) as scratch. Host positions/doc ids: NULL
 * positions are 0..n-1; doc ids are read only under LC_MASK_DOC. */
static inline int lcg_plan_pieces(unsigned kind, int64_t window, const int32_t *q_pos, const int32_t *q_doc, int sq,
                                  const int32_t *k_pos, const int32_t *k_doc, int sk, int *qs, int *ql, int *ks,
                                  int *kl, lcg_piece *out, int max) {
    const int doc = (kind & LC_MASK_DOC) != 0;
    const int nqr = lcg_runs(q_pos, doc ? q_doc : NULL, sq, qs, ql, sq);
    const int nkr = lcg_runs(k_pos, doc ? k_doc : NULL, sk, ks, kl, sk);
    int n = 0;
    for (int a = 0; a < nqr; a++)
        for (int b = 0; b < nkr; b++) {
            if (doc && q_doc[qs[a]] != k_doc[ks[b]]) continue;
            const int32_t qa = q_pos ? q_pos[qs[a]] : qs[a], ka = k_pos ? k_pos[ks[b]] : ks[b];
            if (lcg_emit_pieces(kind, window, qs[a], qa, ql[a], ks[b], ka, kl[b], out, &n, max)) return -1;
        }
    return n;
}

/* 1 when key j of piece p is allowed for its query i (the band cuDNN applies). */
static inline int lcg_piece_allows(const lcg_piece *p, int i, int j) {
    if (p->right >= 0 && j - i > p->right) return 0;
    if (p->left > 0 && i - j >= p->left) return 0;
    return 1;
}

/* The online-softmax merge of a piece's row (log-sum-exp s) into a state row (log-sum-exp l0):
 * new o = a * o + b * o_piece, new lse = *nl. Returns 0 when the piece row saw nothing
 * (s = -inf, or NaN from a fully masked row): the state stays and the partial is not read,
 * so a garbage partial of such a row cannot leak in. */
LCG_HD int lcg_merge_coef(float l0, float s, float *a, float *b, float *nl) {
    if (!(s > -INFINITY)) return 0;
    const float m = l0 > s ? l0 : s;
    *nl = m + logf(expf(l0 - m) + expf(s - m));
    *a = l0 > -INFINITY ? expf(l0 - *nl) : 0.f;
    *b = expf(s - *nl);
    return 1;
}

/* The merge of one row, as the kernel does it (o[d], *lse) <- piece (op[d], s). */
LCG_HD void lcg_merge_row(float *o, float *lse, const float *op, float s, int d) {
    float a, b, nl;
    if (!lcg_merge_coef(*lse, s, &a, &b, &nl)) return;
    for (int t = 0; t < d; t++) o[t] = a * o[t] + b * op[t];
    *lse = nl;
}

#endif
