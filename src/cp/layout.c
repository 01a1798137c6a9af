/* Sharding layouts: local row <-> global token. Every layout pads S up to its chunking and
 * keeps the padding at the end of each PE's rows (global position grows with the local
 * row in all three), so callers only ever pass their real rows. */
#include <string.h>

#include "cp/internal.h"

/* the map itself is cp/core.h, shared with the GPU ring */
int lc_cp_layout_positions(lc_cp_layout layout, int64_t seq_len, int n_pes, int pe, int32_t *pos,
                           int *n_pad)
{
    return lc_layout_positions(layout, seq_len, n_pes, pe, pos, n_pad);
}

int lc_cp_local_rows(const lc_cp *cp, int pe)
{
    if (!cp) return lc_cp__no_plan("lc_cp_local_rows"), -1;
    return pe >= 0 && pe < cp->P ? cp->n_real_of[pe] : -1;
}

int lc_cp_padded_rows(const lc_cp *cp) { return cp ? cp->n_pad : (lc_cp__no_plan("lc_cp_padded_rows"), -1); }

int32_t lc_cp_global_pos(const lc_cp *cp, int pe, int i)
{
    if (!cp) return lc_cp__no_plan("lc_cp_global_pos"), -1;
    if (pe < 0 || pe >= cp->P || i < 0 || i >= cp->n_pad) return -1;
    return cp->pos_of[(size_t)pe * cp->n_pad + i];
}

int lc_cp_local_index(const lc_cp *cp, int64_t g, int *pe)
{
    if (!cp) return lc_cp__no_plan("lc_cp_local_index"), -1;
    int64_t np = cp->n_pad, p = cp->P, r, i;
    if (g < 0 || g >= cp->cfg.plan.seq_len) return -1;
    if (cp->cfg.plan.balance == LC_CP_BALANCE_MASK) { /* dealt per sequence: look it up */
        for (r = 0; r < p; r++)
            for (i = 0; i < np; i++)
                if (cp->pos_of[r * np + i] == g) {
                    if (pe) *pe = (int)r;
                    return (int)i;
                }
        return -1;
    }
    switch (cp->cfg.plan.layout) {
    case LC_CP_STRIPED:
        r = g % p, i = g / p;
        break;
    case LC_CP_ZIGZAG: {
        int64_t c = np / 2, k = g / c;
        r = k < p ? k : 2 * p - 1 - k;
        i = (k < p ? 0 : c) + g % c;
        break;
    }
    default:
        r = g / np, i = g % np;
    }
    if (pe) *pe = (int)r;
    return (int)i;
}

void lc_cp_shard(const lc_cp *cp, int pe, const void *global, size_t row_bytes, void *local)
{
    if (!cp || pe < 0 || pe >= cp->P || !global || !local) {
        if (!cp) lc_cp__no_plan("lc_cp_shard");
        return;
    }
    const int32_t *pos = cp->pos_of + (size_t)pe * cp->n_pad;
    for (int i = 0; i < cp->n_real_of[pe]; i++)
        memcpy((char *)local + (size_t)i * row_bytes, (const char *)global + (size_t)pos[i] * row_bytes,
               row_bytes);
}

void lc_cp_unshard(const lc_cp *cp, int pe, const void *local, size_t row_bytes, void *global)
{
    if (!cp || pe < 0 || pe >= cp->P || !global || !local) {
        if (!cp) lc_cp__no_plan("lc_cp_unshard");
        return;
    }
    const int32_t *pos = cp->pos_of + (size_t)pe * cp->n_pad;
    for (int i = 0; i < cp->n_real_of[pe]; i++)
        memcpy((char *)global + (size_t)pos[i] * row_bytes, (const char *)local + (size_t)i * row_bytes,
               row_bytes);
}

static const char *const LAYOUTS[] = {"contiguous", "zigzag", "striped"};

const char *lc_cp_layout_name(lc_cp_layout l)
{
    return (unsigned)l <= LC_CP_STRIPED ? LAYOUTS[l] : "?";
}

int lc_cp_layout_parse(const char *s, lc_cp_layout *out)
{
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, LAYOUTS[i])) {
            *out = (lc_cp_layout)i;
            return 0;
        }
    return LC_ERR_ARG;
}

static const char *const ALGOS[4] = {"ring", "allgather", "ulysses", "hybrid"};

const char *lc_cp_algo_name(lc_cp_algo a)
{
    return (unsigned)a <= LC_CP_HYBRID ? ALGOS[a] : "?";
}

int lc_cp_algo_parse(const char *s, lc_cp_algo *out)
{
    for (int i = 0; i < 4; i++)
        if (s && !strcmp(s, ALGOS[i])) {
            *out = (lc_cp_algo)i;
            return 0;
        }
    return LC_ERR_ARG;
}
