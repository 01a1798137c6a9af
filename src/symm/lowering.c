/* The lowering vocabulary and the one policy that picks a lowering, for the permute and for
 * the CP algorithms above it. $LONGCTX_PERMUTE is read once, at lc_world_init (world.c), into
 * w->permute_override; nothing else reads it. */
#include <string.h>

#include "symm/internal.h"

static const char *const NAME[] = {"auto", "one_sided", "two_sided", "zero_copy", "compute_only"};

const char *lc_lowering_name(lc_lowering l)
{
    return (unsigned)l <= LC_LOWER_COMPUTE_ONLY ? NAME[l] : "?";
}

int lc_lowering_parse(const char *s, lc_lowering *out)
{
    for (int i = 0; s && i <= LC_LOWER_COMPUTE_ONLY; i++)
        if (!strcmp(s, NAME[i])) {
            *out = (lc_lowering)i;
            return 0;
        }
    return -1;
}

/* Load/store reach is a property of the heap mapping, the same for every symmetric object:
 * asking about the heap's base stands for all of them. */
static int all_reachable(lc_team *t)
{
    lc_world *w = t->w;
    for (int r = 0; r < t->size; r++)
        if (!w->be->ptr(w, w->heap0 + (size_t)w->me * w->heap_stride, lc__team_pe(t, r))) return 0;
    return 1;
}

lc_lowering lc_lowering_resolve(lc_team *t, lc_lowering req, int in_place, const void *dst,
                                size_t bytes, const char **why)
{
    const char *dummy;
    if (!why) why = &dummy;
    lc_world *w = t->w;
    if (req == LC_LOWER_ZERO_COPY) {
        if (in_place && all_reachable(t)) {
            *why = "requested by the caller";
            return LC_LOWER_ZERO_COPY;
        }
        /* Without load/store reach the nearest thing is a one-sided put into the peer. */
        *why = "zero_copy requested, but a peer is not load/store reachable";
        return LC_LOWER_ONE_SIDED;
    }
    if (req != LC_LOWER_AUTO) {
        *why = "requested by the caller";
        return req;
    }
    if (w->permute_override != LC_LOWER_AUTO) {
        *why = "LONGCTX_PERMUTE";
        return w->permute_override;
    }
    if (!all_reachable(t)) {
        *why = "auto: a peer is not load/store reachable";
        return LC_LOWER_TWO_SIDED;
    }
    /* Reading in place moves no bytes and never waits for a neighbour's compute. */
    if (in_place) {
        *why = "auto: peers reachable by load/store, read in place";
        return LC_LOWER_ZERO_COPY;
    }
    if (bytes && !lc_symm_contains(w, dst, bytes)) {
        *why = "auto: dst is not symmetric";
        return LC_LOWER_TWO_SIDED;
    }
    *why = "auto: peers reachable by load/store";
    return LC_LOWER_ONE_SIDED;
}
