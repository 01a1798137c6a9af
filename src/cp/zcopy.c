/* Zero-copy ring: every PE reads the owner's home block in place through lc_symm_ptr, so no
 * KV byte is copied; only signal words move. The owner publishes its block with a READY
 * epoch to each peer and may overwrite it only after all P-1 readers added to RD_DONE.
 *
 * Backward: at step j exactly one PE works on each block (step j pairs PE r with owner r-j),
 * so the owner's accumulator can be updated in place by that PE; a TOK hand-off to the right
 * neighbour says "this block's accumulator has my contribution", in the ring's order. */
#include <string.h>

#include "cp/internal.h"

static int wait_sig(lc_cp *cp, int idx, uint64_t value, const char *what, int step)
{
    lc_cp_clock c = lc_cp__tic();
    int rc = lc_signal_wait_until(cp->w, &cp->sig[idx], LC_CMP_GE, value, NULL);
    lc_cp__toc_comm(cp, c);
    return rc ? lc_cp__rt_fail(cp, rc, what, step) : LC_OK;
}

/* A signal orders nothing before it (NVSHMEM rules): every zero-copy signal follows stores
 * (my staged block, a peer's accumulator through lc_symm_ptr) or loads of a peer's block
 * that the receiver must see finished, so each one is fenced first. */
static int zc_signal(lc_cp *cp, int idx, uint64_t value, lc_sig_op op, int rank, const char *what, int step)
{
    lc_cp_clock c = lc_cp__tic();
    int rc = lc_fence(cp->w);
    if (!rc) rc = lc_signal_op(cp->w, &cp->sig[idx], value, op, cp->world_pe[rank]);
    lc_cp__toc_comm(cp, c);
    return rc ? lc_cp__rt_fail(cp, rc, what, step) : LC_OK;
}

int lc_cp__zc_publish(lc_cp *cp)
{
    cp->zc_epoch++;
    for (int r = 0; r < cp->P; r++) {
        if (r == cp->me) continue;
        int rc = zc_signal(cp, CP_SIG_READY + cp->me, cp->zc_epoch, LC_SIGNAL_SET, r,
                        "zero-copy: publishing my KV block", 0);
        if (rc) return rc;
    }
    return LC_OK;
}

/* The owner's home block once it is published for this call. */
static int block_of(lc_cp *cp, int j, const uint8_t **blk)
{
    int owner = lc_ring_owner(cp->me, j, cp->P);
    if (j == 0) {
        *blk = cp->home;
        return LC_OK;
    }
    int rc = wait_sig(cp, CP_SIG_READY + owner, cp->zc_epoch, "zero-copy: waiting for a KV block", j);
    *blk = rc ? NULL : lc_symm_ptr(cp->w, cp->home, cp->world_pe[owner]);
    cp->st.bytes_sent += (double)cp->fmt.bytes; /* read in place: the bytes a copy would have moved */
    return rc;
}

static int release_block(lc_cp *cp, int j)
{
    if (j == 0) return LC_OK;
    int owner = lc_ring_owner(cp->me, j, cp->P);
    return zc_signal(cp, CP_SIG_RD_DONE, 1, LC_SIGNAL_ADD, owner, "zero-copy: releasing a KV block", j);
}

int lc_cp__zc_fwd(lc_cp *cp, const lc_attn_desc *base, const void *q, float *o, float *lse)
{
    for (int j = 0; j < cp->P; j++) {
        const uint8_t *blk;
        int rc = block_of(cp, j, &blk);
        if (!rc) rc = lc_cp__fwd_block(cp, base, q, blk, NULL, o, lse);
        if (!rc) rc = release_block(cp, j);
        if (rc) return rc;
    }
    return LC_OK;
}

int lc_cp__zc_bwd(lc_cp *cp, const lc_attn_desc *base, const void *q, const void *dout,
                  const float *lse, float *dq, float *dk, float *dv)
{
    int P = cp->P, right = lc_ring_next(cp->me, P);
    size_t n2 = 2 * cp->kv_elems;
    uint64_t tok0 = cp->zc_tok;
    float *t = cp->tmp[0];
    for (int j = 0; j < P; j++) {
        const uint8_t *blk;
        int owner = lc_ring_owner(cp->me, j, P);
        int rc = block_of(cp, j, &blk);
        if (!rc) rc = lc_cp__bwd_block(cp, base, q, blk, NULL, dout, lse, dq, t);
        if (!rc) rc = release_block(cp, j);
        if (!rc && j > 0) rc = wait_sig(cp, CP_SIG_TOK, tok0 + j, "zero-copy: waiting for the dK/dV hand-off", j);
        if (rc) return rc;
        lc_cp_clock c = lc_cp__tic();
        if (j == 0) memcpy(cp->acc_in, t, n2 * sizeof(float));
        else lc_cp__acc_add(lc_symm_ptr(cp->w, cp->acc_in, cp->world_pe[owner]), t, n2);
        if (j > 0) cp->st.bytes_sent += (double)n2 * sizeof(float);
        lc_cp__toc_compute(cp, c);
        rc = zc_signal(cp, CP_SIG_TOK, 1, LC_SIGNAL_ADD, right, "zero-copy: dK/dV hand-off", j);
        if (rc) return rc;
    }
    cp->zc_tok = tok0 + P;
    int rc = wait_sig(cp, CP_SIG_TOK, cp->zc_tok, "zero-copy: waiting for my dK/dV", P - 1);
    if (rc) return rc;
    lc_cp__acc_out(cp, cp->acc_in, dk, dv);
    return LC_OK;
}
