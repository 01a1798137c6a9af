/* Ring attention over collective permutes. Step j computes on the block that left its owner
 * (me - j) j hops ago while the permute of that block to the right neighbour is in flight.
 * My own block stays in `home`; received blocks alternate between the two ring slots, so the
 * slot a neighbour writes into is never the one being read.
 *
 * Backward: the dK/dV of a block is computed per step into a fresh buffer, then added to the
 * accumulator that arrived from the left (acc = in + step) and sent right; after P sends the
 * accumulator of every block is back with its owner. The send of step j completes during the
 * compute of step j + 1, so only the last hop is exposed. Every path (zero-copy, all-gather)
 * sums in this same order, which is what makes them bit-identical. */
#include <string.h>

#include "cp/internal.h"

static int start(lc_cp *cp, const void *src, void *dst, size_t bytes, lc_lowering l,
                 lc_permute_req *req, const char *what, int step)
{
    lc_cp_clock c = lc_cp__tic();
    cp->st.bytes_sent += (double)bytes;
    int rc = lc_permute_start(cp->team, 1, src, dst, bytes, l, req);
    lc_cp__toc_comm(cp, c);
    return rc ? lc_cp__rt_fail(cp, rc, what, step) : LC_OK;
}

static int done(lc_cp *cp, lc_permute_req *req, const char *what, int step)
{
    lc_cp_clock c = lc_cp__tic();
    int rc = lc_permute_done(req);
    lc_cp__toc_comm(cp, c);
    return rc ? lc_cp__rt_fail(cp, rc, what, step) : LC_OK;
}

/* After an error the world is aborted (lc_cp__fail), so completing what is still in flight
 * returns at once; it leaves the team with no request pointing at a finished call. */
static int drain(lc_cp *cp, int rc)
{
    /* lc_permute_done refuses (LC_ERR_ARG) a request that is not in flight. */
    for (int i = 0; i < 2; i++) (void)lc_permute_done(&cp->req[i]);
    return rc;
}

/* Compute-only runs the same kernel calls on my own data with the owner's positions. */
static const int32_t *pos_for(const lc_cp *cp, int step, int compute_only)
{
    int owner = lc_ring_owner(cp->me, step, cp->P);
    return compute_only ? cp->pos_of + (size_t)owner * cp->n_pad : NULL;
}

int lc_cp__ring_fwd(lc_cp *cp, const lc_attn_desc *base, const void *q, float *o, float *lse,
                    lc_lowering l, int compute_only)
{
    const uint8_t *cur = cp->home;
    lc_permute_req *req = &cp->req[0];
    for (int j = 0; j < cp->P; j++) {
        int send = j < cp->P - 1 && !compute_only;
        uint8_t *next = cp->ring[j & 1];
        int rc = send ? start(cp, cur, next, cp->fmt.bytes, l, req, "ring forward: KV permute start", j) : 0;
        if (!rc) rc = lc_cp__fwd_block(cp, base, q, cur, pos_for(cp, j, compute_only), o, lse);
        if (!rc && send) rc = done(cp, req, "ring forward: KV permute", j);
        if (rc) return drain(cp, rc);
        if (send) cur = next;
    }
    return LC_OK;
}

int lc_cp__ring_bwd(lc_cp *cp, const lc_attn_desc *base, const void *q, const void *dout,
                    const float *lse, float *dq, float *dk, float *dv, lc_lowering l,
                    int compute_only)
{
    int P = cp->P, comm = P > 1 && !compute_only;
    size_t n2 = 2 * cp->kv_elems, accb = n2 * sizeof(float);
    const uint8_t *cur = cp->home;
    lc_permute_req *kv = &cp->req[0], *acc = &cp->req[1];
    int rc = LC_OK;
    for (int j = 0; j < P && !rc; j++) {
        int send = j < P - 1 && comm;
        uint8_t *next = cp->ring[j & 1];
        float *t = cp->tmp[j & 1];
        if (send) rc = start(cp, cur, next, cp->fmt.bytes, l, kv, "ring backward: KV permute start", j);
        if (!rc) rc = lc_cp__bwd_block(cp, base, q, cur, pos_for(cp, j, compute_only), dout, lse, dq, t);
        if (!rc && j > 0) {
            if (comm) rc = done(cp, acc, "ring backward: dK/dV permute", j - 1);
            lc_cp_clock c = lc_cp__tic();
            if (!rc) lc_cp__acc_add(t, comm ? cp->acc_in : cp->tmp[(j - 1) & 1], n2);
            lc_cp__toc_compute(cp, c);
        }
        /* Granting the credit for acc_in here is safe: its last reader was the add above. */
        if (!rc && comm) rc = start(cp, t, cp->acc_in, accb, l, acc, "ring backward: dK/dV permute start", j);
        if (!rc && send) rc = done(cp, kv, "ring backward: KV permute", j);
        if (send) cur = next;
    }
    if (rc) return drain(cp, rc);
    if (comm && (rc = done(cp, acc, "ring backward: dK/dV home permute", P - 1))) return rc;
    lc_cp__acc_out(cp, comm ? cp->acc_in : cp->tmp[(P - 1) & 1], dk, dv);
    return LC_OK;
}
