/* All-gather CP (the Llama 3 choice): gather every block, attend locally, and send each
 * block's dK/dV contributions to its owner. The reduce-scatter is done as an all-to-all plus
 * a local sum in the ring's order (owner, owner+1, ...), so results are bit-identical to the
 * ring's instead of depending on the collective's summation order. */
#include <string.h>

#include "cp/internal.h"

static int gather(lc_cp *cp)
{
    /* The buffers come with the plan (create or lc_cp_set_algo). */
    if (!cp->gather || !cp->a2a)
        return lc_cp__fail(cp, LC_ERR_ARG, "all-gather: the plan has no all-gather buffers (internal error)");
    lc_cp_clock c = lc_cp__tic();
    int rc = lc_allgather(cp->team, cp->gather, cp->home, cp->fmt.bytes);
    cp->st.bytes_sent += (double)cp->fmt.bytes * (cp->P - 1);
    lc_cp__toc_comm(cp, c);
    return rc ? lc_cp__rt_fail(cp, rc, "all-gather of KV", 0) : LC_OK;
}

static const uint8_t *block(const lc_cp *cp, int j)
{
    return cp->gather + cp->fmt.bytes * (size_t)lc_ring_owner(cp->me, j, cp->P);
}

int lc_cp__ag_fwd(lc_cp *cp, const lc_attn_desc *base, const void *q, float *o, float *lse)
{
    int rc = gather(cp);
    for (int j = 0; j < cp->P && !rc; j++) rc = lc_cp__fwd_block(cp, base, q, block(cp, j), NULL, o, lse);
    return rc;
}

int lc_cp__ag_bwd(lc_cp *cp, const lc_attn_desc *base, const void *q, const void *dout,
                  const float *lse, float *dq, float *dk, float *dv)
{
    int P = cp->P, rc = gather(cp);
    size_t n2 = 2 * cp->kv_elems;
    float *send = cp->a2a, *recv = cp->a2a + P * n2;
    for (int j = 0; j < P && !rc; j++) {
        int owner = lc_ring_owner(cp->me, j, P);
        rc = lc_cp__bwd_block(cp, base, q, block(cp, j), NULL, dout, lse, dq, send + owner * n2);
    }
    if (rc) return rc;
    lc_cp_clock c = lc_cp__tic();
    rc = lc_alltoall(cp->team, recv, send, n2 * sizeof(float));
    cp->st.bytes_sent += (double)n2 * sizeof(float) * (P - 1);
    lc_cp__toc_comm(cp, c);
    if (rc) return lc_cp__rt_fail(cp, rc, "all-to-all of dK/dV", P - 1);
    c = lc_cp__tic();
    float *acc = recv + cp->me * n2;
    for (int j = 1; j < P; j++) lc_cp__acc_add(acc, recv + lc_ring_visitor(cp->me, j, P) * n2, n2);
    lc_cp__toc_compute(cp, c);
    lc_cp__acc_out(cp, acc, dk, dv);
    return LC_OK;
}
