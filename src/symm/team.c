/* Teams: strided subsets of the world. A team owns one synchronisation slot on each of its
 * members, agreed on at split time; its counters are read back as the starting expectations
 * so a slot can be reused by a later team without clearing remote memory. */
#include <stdlib.h>
#include <string.h>

#include "symm/internal.h"

lc_team *lc_team_world(lc_world *w) { return w ? w->world_team : NULL; }
lc_world *lc_team_get_world(const lc_team *t) { return t ? t->w : NULL; }
int lc_team_my_pe(const lc_team *t) { return t ? t->me : -1; }
int lc_team_n_pes(const lc_team *t) { return t ? t->size : -1; }

int lc_team_translate_pe(const lc_team *src, int src_pe, const lc_team *dst)
{
    if (!src || !dst || src_pe < 0 || src_pe >= src->size) return -1;
    int wpe = src->start + src_pe * src->stride;
    int d = wpe - dst->start;
    if (d < 0 || d % dst->stride) return -1;
    d /= dst->stride;
    return d < dst->size ? d : -1;
}

/* fresh: the world team, whose counters start at zero in a new segment. It must not read
 * them back, because a fast peer may already have signalled its first barrier. */
static lc_team *team_new(lc_world *w, int start, int stride, int size, int slot, int fresh)
{
    lc_team *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->credit_expect = calloc((size_t)LC_PERM_CH * (size_t)size, sizeof(uint64_t));
    t->fifo_sent = calloc((size_t)LC_PERM_CH * (size_t)size, sizeof(uint64_t));
    if (!t->credit_expect || !t->fifo_sent) {
        free(t->credit_expect);
        free(t->fifo_sent);
        free(t);
        return NULL;
    }
    t->w = w;
    t->start = start;
    t->stride = stride;
    t->size = size;
    t->me = (w->me - start) / stride;
    t->slot = slot;
    t->logged_lowering = -1;
    lc_slot_sync *s = &lc__ctrl(w, w->me)->slot[slot];
    w->slots_used |= 1u << slot;
    if (w->be->team_init && w->be->team_init(t) != LC_OK) {
        lc__team_free(t);
        return NULL;
    }
    if (fresh) return t;
    for (int k = 0; k < LC_BAR_ROUNDS; k++) t->bar_expect[k] = atomic_load(&s->bar[k].v);
    t->rs_expect = atomic_load(&s->rs.v);
    t->ag_expect = atomic_load(&s->ag.v);
    for (int a = 0; a < 2; a++) t->bc_ack_expect[a] = atomic_load(&s->bc_ack[a].v);
    for (int c = 0; c < LC_PERM_CH; c++) {
        t->data_expect[c] = atomic_load(&s->ch[c].data.v);
        /* The last user of the slot quiesced: every chunk written was copied out and acked. */
        t->fifo_taken[c] = atomic_load(&s->ch[c].tail.v);
        for (int r = 0; r < size; r++) {
            t->credit_expect[c * size + r] = atomic_load(&s->credit[c][r]);
            t->fifo_sent[c * size + r] = atomic_load(&s->fifo_ack[c][r]);
        }
    }
    return t;
}

int lc__team_world_create(lc_world *w)
{
    w->world_team = team_new(w, 0, 1, w->n, 0, 1);
    if (!w->world_team) return lc__err(w, LC_ERR_SYS, "out of host memory");
    w->world_team->is_world = 1;
    return LC_OK;
}

/* Members of parent agree on nslots slots free on all of them and on the split arguments.
 * args are compared across the parent so that a PE passing different values is named. */
static int agree(lc_team *parent, const int args[3], int nslots, int slots[2], const char *op)
{
    lc_world *w = parent->w;
    int n = parent->size;
    uint32_t mine[4] = {~w->slots_used, (uint32_t)args[0], (uint32_t)args[1], (uint32_t)args[2]};
    uint32_t *all = malloc(sizeof mine * (size_t)n);
    if (!all) return lc__err(w, LC_ERR_SYS, "out of host memory");
    int rc = lc_allgather(parent, all, mine, sizeof mine);
    if (rc) {
        free(all);
        return rc;
    }
    uint32_t freebits = 0xffffffffu >> (32 - LC_TEAM_SLOTS);
    for (int r = 0; r < n; r++) {
        freebits &= all[4 * r];
        if (memcmp(&all[4 * r + 1], &mine[1], 3 * sizeof(uint32_t))) {
            rc = lc__err(w, LC_ERR_MISMATCH,
                         "%s: parent rank %d passed (%d, %d, %d) but rank %d passed (%d, %d, %d)", op,
                         parent->me, args[0], args[1], args[2], r, (int)all[4 * r + 1],
                         (int)all[4 * r + 2], (int)all[4 * r + 3]);
            free(all);
            return rc;
        }
    }
    free(all);
    for (int k = 0; k < nslots; k++) {
        if (!freebits)
            return lc__err(w, LC_ERR_NOMEM, "%s: no free team slot (at most %d teams per PE)", op, LC_TEAM_SLOTS);
        slots[k] = __builtin_ctz(freebits);
        freebits &= freebits - 1;
    }
    return LC_OK;
}

int lc_team_split_strided(lc_team *parent, int start, int stride, int size, lc_team **out)
{
    if (!out) return LC_ERR_ARG;
    *out = NULL;
    if (!parent) return LC_ERR_ARG;
    lc_world *w = parent->w;
    if (start < 0 || stride < 1 || size < 1 || start + (long)(size - 1) * stride >= parent->size)
        return lc__err(w, LC_ERR_ARG,
                       "lc_team_split_strided: start %d, stride %d, size %d do not fit a parent of %d PEs",
                       start, stride, size, parent->size);
    int args[3] = {start, stride, size}, slot[2];
    int rc = agree(parent, args, 1, slot, "lc_team_split_strided");
    if (rc) return rc;
    int d = parent->me - start;
    lc_team *t = NULL;
    if (d >= 0 && d % stride == 0 && d / stride < size) {
        t = team_new(w, parent->start + start * parent->stride, parent->stride * stride, size, slot[0], 0);
        if (!t) return lc__err(w, LC_ERR_SYS, "out of host memory");
    }
    /* No member may use the new slot before every member has read its starting counters. */
    rc = lc__barrier(parent, "lc_team_split_strided");
    if (rc) {
        lc_team_destroy(t);
        return rc;
    }
    *out = t;
    return LC_OK;
}

int lc_team_split_2d(lc_team *parent, int xrange, lc_team **xteam, lc_team **yteam)
{
    if (!xteam || !yteam) return LC_ERR_ARG;
    *xteam = *yteam = NULL;
    if (!parent) return LC_ERR_ARG;
    lc_world *w = parent->w;
    int n = parent->size;
    if (xrange < 1 || xrange > n)
        return lc__err(w, LC_ERR_ARG, "lc_team_split_2d: xrange %d must be in [1, %d]", xrange, n);
    int args[3] = {xrange, 0, 0}, slot[2];
    int rc = agree(parent, args, 2, slot, "lc_team_split_2d");
    if (rc) return rc;
    int row = parent->me / xrange, col = parent->me % xrange;
    int xsize = n - row * xrange < xrange ? n - row * xrange : xrange;
    int ysize = (n - col + xrange - 1) / xrange;
    lc_team *x = team_new(w, parent->start + row * xrange * parent->stride, parent->stride, xsize, slot[0], 0);
    lc_team *y = team_new(w, parent->start + col * parent->stride, parent->stride * xrange, ysize, slot[1], 0);
    if (!x || !y) {
        lc_team_destroy(x);
        lc_team_destroy(y);
        return lc__err(w, LC_ERR_SYS, "out of host memory");
    }
    rc = lc__barrier(parent, "lc_team_split_2d");
    if (rc) {
        lc_team_destroy(x);
        lc_team_destroy(y);
        return rc;
    }
    *xteam = x;
    *yteam = y;
    return LC_OK;
}

void lc__team_free(lc_team *t)
{
    if (!t) return;
    if (!t->is_world) t->w->slots_used &= ~(1u << t->slot);
    if (t->be_team && t->w->be->team_free) t->w->be->team_free(t);
    free(t->credit_expect);
    free(t->fifo_sent);
    free(t->scratch);
    free(t);
}

void *lc__team_scratch(lc_team *t, size_t bytes)
{
    if (bytes > t->scratch_bytes) {
        void *p = realloc(t->scratch, bytes);
        if (!p) return NULL;
        t->scratch = p;
        t->scratch_bytes = bytes;
    }
    return t->scratch;
}

void lc_team_destroy(lc_team *t)
{
    /* The world team belongs to the world (lc_world_finalize releases it): destroying it
     * here would leave finalize with a freed team. */
    if (!t || t->is_world) return;
    /* Quiesce: after this barrier nothing is in flight to our slot, so it can be reused. */
    if (!lc__aborted(t->w)) lc__barrier(t, "lc_team_destroy");
    lc__team_free(t);
}
