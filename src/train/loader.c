/* The data loader: deterministic windows of seq_len + 1 tokens, addressed by a global sample
 * index so that DP ranks, restarts and checkpoints agree on what sample g is. */
#include <stdlib.h>
#include <string.h>

#include "train/internal.h"

struct lc_loader {
    const lc_tokfile *f;
    lc_loader_config cfg;
    int64_t n_windows;
    int64_t *perm;      /* window order of perm_epoch; sized once */
    int64_t perm_epoch; /* -1: not built */
    int32_t *buf;       /* seq_len + 1 tokens */
    int64_t pos;        /* global samples consumed */
};

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int lc_loader_create(const lc_tokfile *f, const lc_loader_config *cfg, lc_loader **out)
{
    *out = NULL;
    if (cfg->seq_len < 1 || cfg->dp_size < 1 || cfg->dp_rank < 0 || cfg->dp_rank >= cfg->dp_size)
        return lc_train__fail(LC_ERR_ARG, "loader: bad seq_len %lld or DP rank %d of %d",
                              (long long)cfg->seq_len, cfg->dp_rank, cfg->dp_size);
    int64_t n = lc_tokfile_n_tokens(f);
    if (n < cfg->seq_len + 1)
        return lc_train__fail(LC_ERR_ARG,
                              "token file %s is shorter than one sequence: %lld tokens, a sequence "
                              "needs %lld (seq_len + 1)",
                              lc_tokfile_path(f), (long long)n, (long long)(cfg->seq_len + 1));
    lc_loader *l = calloc(1, sizeof *l);
    if (!l) return lc_train__fail(LC_ERR_SYS, "loader: out of memory");
    l->f = f;
    l->cfg = *cfg;
    l->n_windows = (n - 1) / cfg->seq_len;
    l->perm = malloc((size_t)l->n_windows * sizeof *l->perm);
    l->buf = malloc((size_t)(cfg->seq_len + 1) * sizeof *l->buf);
    l->perm_epoch = -1;
    if (!l->perm || !l->buf) {
        lc_loader_destroy(l);
        return lc_train__fail(LC_ERR_SYS, "loader: out of memory");
    }
    *out = l;
    return LC_OK;
}

void lc_loader_destroy(lc_loader *l)
{
    if (!l) return;
    free(l->perm);
    free(l->buf);
    free(l);
}

int64_t lc_loader_n_windows(const lc_loader *l) { return l->n_windows; }
int64_t lc_loader_position(const lc_loader *l) { return l->pos; }
void lc_loader_set_position(lc_loader *l, int64_t pos) { l->pos = pos < 0 ? 0 : pos; }

/* Fisher-Yates with a generator seeded by (seed, epoch): every epoch is a fresh order. */
static void build_perm(lc_loader *l, int64_t epoch)
{
    int64_t nw = l->n_windows;
    for (int64_t i = 0; i < nw; i++) l->perm[i] = i;
    if (l->cfg.shuffle) {
        uint64_t s = l->cfg.seed * 0x9E3779B97F4A7C15ull ^ (uint64_t)epoch * 0xD1B54A32D192ED03ull;
        for (int64_t i = nw - 1; i > 0; i--) {
            int64_t j = (int64_t)(splitmix64(&s) % (uint64_t)(i + 1));
            int64_t t = l->perm[i];
            l->perm[i] = l->perm[j];
            l->perm[j] = t;
        }
    }
    l->perm_epoch = epoch;
}

int lc_loader_sample(lc_loader *l, int64_t g, int32_t *tokens, int32_t *targets, int32_t *doc)
{
    if (g < 0) return lc_train__fail(LC_ERR_ARG, "loader: negative sample index %lld", (long long)g);
    int64_t epoch = g / l->n_windows, w = g % l->n_windows, S = l->cfg.seq_len;
    if (epoch != l->perm_epoch) build_perm(l, epoch);
    lc_tokfile_read(l->f, l->perm[w] * S, S + 1, l->buf);
    const int32_t *b = l->buf;
    int sep = l->cfg.doc_sep;
    int32_t d = 0;
    for (int64_t i = 0; i < S; i++) {
        tokens[i] = b[i];
        /* A separator ends its document: what follows it belongs to the next one and is not
         * predicted from across the boundary. */
        targets[i] = (sep >= 0 && b[i] == sep) ? -1 : b[i + 1];
        if (doc) doc[i] = d;
        if (sep >= 0 && b[i] == sep) d++;
    }
    return LC_OK;
}

int lc_loader_next(lc_loader *l, int32_t *tokens, int32_t *targets, int32_t *doc)
{
    int rc = lc_loader_sample(l, l->pos + l->cfg.dp_rank, tokens, targets, doc);
    if (rc == LC_OK) l->pos += l->cfg.dp_size;
    return rc;
}
