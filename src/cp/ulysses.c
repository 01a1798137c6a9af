/* Ulysses and hybrid Ulysses x ring (USP, LoongTrain).
 *
 * The CP team is cut into groups of U neighbouring PEs (lc_team_split_2d: a group is a row,
 * the ring a column). Inside a group an all-to-all turns sequence-sharded Q, K, V into
 * head-sharded ones: group rank s gets the hq/U query heads from s*hq/U and their KV heads
 * (hkv/U of them, or one KV head replicated on U/hkv ranks when hkv < U) for every row of the
 * group, which it lays out in global position order. The group's rows then run the ring
 * over the R = cp/U groups as one plan of their own (the inner plan, made by
 * lc_cp__create_mapped with the groups' sorted positions), so the ring, its lowerings and
 * its summation order are the ring's. Ulysses is U = cp (R = 1: the inner plan is one PE's
 * attention over the whole sequence), and the ring is U = 1. An all-to-all back returns the
 * output (fp32, with lse) or dQ/dK/dV to the rows' owners; a replicated KV head's dK/dV are
 * summed by the owner over its replicas in rank order, so every member gets the same bits.
 *
 * The all-to-all is U - 1 collective permutes (shift k: my piece for rank me + k into slot k
 * of that rank), so it takes the runtime's one_sided and two_sided lowerings and their credit
 * hand-shake; zero_copy packs into a symmetric send buffer and the receivers copy their
 * piece straight out of it (one copy fewer), with ready / done signals. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "cp/internal.h"

enum { SIG_READY = 0, SIG_DONE = 1, N_SIG = 8 };

/* The parts of one piece (bytes from its start), laid out for n rows. */
typedef struct {
    size_t q, k, v, dout, lse, delta, doc, bytes; /* IN: Q, K, V (+ dO, lse, delta), doc ids */
} in_fmt;
typedef struct {
    size_t o, lse, dq, dk, dv, bytes; /* OUT: O + lse (forward), dQ + dK + dV (backward) */
} out_fmt;

struct lc_cp_uly {
    int U, R, u, g;        /* group size, groups, my rank in my group, my group */
    lc_team *ut, *rt;      /* my group (consecutive PEs), my ring (rank u of every group) */
    int hq_l, hkv_l, rep;  /* heads per rank; rep: ranks sharing one KV head (1: none) */
    int gn_pad, gn_real;   /* rows of my group: padded (U x n_pad), real */
    int32_t *gidx;         /* [U][n_pad]: group row of member u's local row i */
    lc_cp *inner;          /* the ring over the R groups, on my heads */
    in_fmt fin, bin;       /* forward / backward IN pieces */
    out_fmt fout, bout;
    size_t piece;          /* the largest piece: one slot */
    uint8_t *send;         /* [U] pieces; symmetric on ut (zero-copy reads it in place) */
    uint8_t *recv;         /* symmetric on ut: [U-1] slots (slot k - 1: from rank u - k) */
    uint64_t *sig;         /* symmetric on ut: zero-copy ready / done counters */
    uint64_t zc_epoch;     /* zero-copy exchanges so far */
    lc_permute_req req[4];
    uint8_t *qg, *dog;     /* [gn_pad, hq_l, d] in the plan's dtype, group order */
    float *og, *lseg;      /* forward: the inner plan's fp32 out and lse */
    float *dqg, *dkg, *dvg;
    int32_t *docg;
    lc_cp_stats st;        /* the all-to-all's own time and bytes */
};

static size_t up64(size_t x) { return (x + 63) & ~(size_t)63; }

static void layout_in(in_fmt *f, size_t n, size_t qrow, size_t kvrow, size_t lrow, int bwd)
{
    size_t at = 0;
    f->q = at, at += up64(n * qrow);
    f->k = at, at += up64(n * kvrow);
    f->v = at, at += up64(n * kvrow);
    f->dout = at, at += bwd ? up64(n * qrow) : 0;
    f->lse = at, at += bwd ? up64(n * lrow) : 0;
    f->delta = at, at += bwd ? up64(n * lrow) : 0;
    f->doc = at, at += up64(n * sizeof(int32_t));
    f->bytes = at;
}

static void layout_out(out_fmt *f, size_t n, size_t qrow32, size_t kvrow32, size_t lrow)
{
    f->o = 0;
    f->lse = up64(n * qrow32);
    size_t fwd = f->lse + up64(n * lrow);
    f->dq = 0;
    f->dk = up64(n * qrow32);
    f->dv = f->dk + up64(n * kvrow32);
    size_t bwd = f->dv + up64(n * kvrow32);
    f->bytes = fwd > bwd ? fwd : bwd;
}

static int cmp_pos(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* The first KV head of group rank s. */
static int kv0(const lc_cp_uly *y, int s) { return y->rep > 1 ? s / y->rep : s * y->hkv_l; }

static void uly_free(lc_cp *cp)
{
    lc_cp_uly *y = cp->uly;
    if (!y) return;
    free(y->gidx);
    free(y->qg);
    free(y->dog);
    free(y->lseg);
    free(y->dqg);
    free(y->dkg);
    free(y->dvg);
    free(y->docg);
    free(y);
    cp->uly = NULL;
}

void lc_cp__uly_destroy(lc_cp *cp)
{
    lc_cp_uly *y = cp->uly;
    if (!y) return;
    if (y->inner) lc_cp_destroy(y->inner);
    if (y->sig) lc_symm_free_team(y->ut, y->sig);
    if (y->recv) lc_symm_free_team(y->ut, y->recv);
    if (y->send) lc_symm_free_team(y->ut, y->send);
    if (y->rt) lc_team_destroy(y->rt);
    if (y->ut) lc_team_destroy(y->ut);
    uly_free(cp);
}

/* The group's rows in global order: every member's layout map is known to all, so each
 * member derives the same order. */
static int group_map(lc_cp *cp, int g, int32_t *pos, int32_t *gidx)
{
    lc_cp_uly *y = cp->uly;
    int n = 0;
    for (int u = 0; u < y->U; u++) {
        int pe = g * y->U + u;
        for (int i = 0; i < cp->n_real_of[pe]; i++) pos[n++] = cp->pos_of[(size_t)pe * cp->n_pad + i];
    }
    qsort(pos, (size_t)n, sizeof *pos, cmp_pos);
    for (int j = n; j < y->gn_pad; j++) pos[j] = -1;
    if (gidx) /* rows of a member are in ascending position: one merge walk per member */
        for (int u = 0; u < y->U; u++) {
            int pe = g * y->U + u, j = 0;
            for (int i = 0; i < cp->n_real_of[pe]; i++) {
                int32_t p = cp->pos_of[(size_t)pe * cp->n_pad + i];
                while (pos[j] != p) j++;
                gidx[(size_t)u * cp->n_pad + i] = j;
            }
        }
    return n;
}

int lc_cp__uly_create(lc_cp *cp)
{
    const lc_cp_config *c = &cp->cfg;
    int P = cp->P, U = c->plan.algo == LC_CP_ULYSSES ? P : c->plan.ulysses;
    lc_cp_uly *y = calloc(1, sizeof *y);
    if (!y) {
        lc_world_abort(cp->w, "lc_cp_create: no memory for the Ulysses plan");
        return lc_cp__fail(cp, LC_ERR_SYS, "no memory for the Ulysses plan");
    }
    cp->uly = y;
    y->U = U;
    y->R = P / U;
    y->u = cp->me % U;
    y->g = cp->me / U;
    y->hq_l = c->hq / U;
    y->rep = c->hkv % U == 0 ? 1 : U / c->hkv;
    y->hkv_l = y->rep > 1 ? 1 : c->hkv / U;
    y->gn_pad = U * cp->n_pad;
    /* Teams: collective over the CP team, so every member gets here (create agreed). */
    if (lc_team_split_2d(cp->team, U, &y->ut, &y->rt) || !y->ut || !y->rt) {
        int rc = lc_cp__fail(cp, LC_ERR_SYS, "Ulysses groups of %d over %d PEs: %s", U, P, lc_last_error(cp->w));
        lc_cp__uly_destroy(cp);
        return rc;
    }
    size_t es = cp->es, d = (size_t)c->d, n = (size_t)cp->n_pad, gp = (size_t)y->gn_pad;
    size_t qrow = (size_t)y->hq_l * d * es, kvrow = (size_t)y->hkv_l * d * es, lrow = (size_t)y->hq_l * 4;
    layout_in(&y->fin, n, qrow, kvrow, lrow, 0);
    layout_in(&y->bin, n, qrow, kvrow, lrow, 1);
    layout_out(&y->fout, n, (size_t)y->hq_l * d * 4, (size_t)y->hkv_l * d * 4, lrow);
    y->bout = y->fout;
    y->piece = up64(y->bin.bytes > y->fout.bytes ? y->bin.bytes : y->fout.bytes);
    /* The inner ring: every group's sorted positions, one plan over my column. */
    int32_t *pos_all = malloc(sizeof(int32_t) * (size_t)y->R * gp);
    y->gidx = malloc(sizeof(int32_t) * (size_t)U * n + 4);
    int bad = !pos_all || !y->gidx;
    for (int g = 0; g < y->R && !bad; g++) {
        int nr = group_map(cp, g, pos_all + (size_t)g * gp, g == y->g ? y->gidx : NULL);
        if (g == y->g) y->gn_real = nr;
    }
    size_t gr = (size_t)y->gn_real;
    if (!bad) {
        y->qg = malloc(gr * qrow + 64);
        y->dog = malloc(gr * qrow + 64);
        /* the forward's output and the backward's dQ never live at once: one buffer */
        y->dqg = malloc(gr * y->hq_l * d * 4 + 64);
        y->og = y->dqg;
        y->lseg = malloc(gr * lrow + 64);
        y->dkg = malloc(gr * y->hkv_l * d * 4 + 64);
        y->dvg = malloc(gr * y->hkv_l * d * 4 + 64);
        y->docg = malloc(gr * 4 + 64);
        bad = !y->qg || !y->dog || !y->og || !y->lseg || !y->dqg || !y->dkg || !y->dvg || !y->docg;
    }
    if (bad) { /* a local failure while the others go on into collectives: abort them */
        free(pos_all);
        char why[160];
        snprintf(why, sizeof why, "no memory for the Ulysses buffers of %d group rows", y->gn_real);
        lc_world_abort(cp->w, why);
        int rc = lc_cp__fail(cp, LC_ERR_NOMEM, "%s", why);
        uly_free(cp); /* teams and heaps are gone with the world */
        return rc;
    }
    lc_cp_config ic = *c;
    ic.hq = y->hq_l;
    ic.hkv = y->hkv_l;
    ic.plan.algo = LC_CP_RING;
    ic.plan.ulysses = 0;
    ic.plan.cp = 0;
    int rc = lc_cp__create_mapped(y->rt, &ic, y->gn_pad, pos_all, &y->inner);
    free(pos_all);
    if (rc) {
        rc = lc_cp__fail(cp, rc, "the ring over %d Ulysses groups: %s", y->R, lc_cp_last_error(NULL));
        lc_cp__uly_destroy(cp);
        return rc;
    }
    /* The inner plan always gets its fp32 output from here (og), so its own copy is never used. */
    free(y->inner->o32);
    y->inner->o32 = NULL;
    y->send = lc_symm_alloc_team(y->ut, (size_t)U * y->piece);
    y->recv = y->send && U > 1 ? lc_symm_alloc_team(y->ut, (size_t)(U - 1) * y->piece) : NULL;
    y->sig = y->send && (U == 1 || y->recv) ? lc_symm_alloc_team(y->ut, sizeof(uint64_t) * N_SIG) : NULL;
    if (!y->sig) {
        rc = lc_cp__fail(cp, LC_ERR_NOMEM, "Ulysses all-to-all buffers (%d + %d pieces of %zu bytes): %s", U, U - 1,
                         y->piece, lc_last_error(cp->w));
        lc_cp__uly_destroy(cp);
        return rc;
    }
    memset(y->sig, 0, sizeof(uint64_t) * N_SIG);
    memset(y->send, 0, (size_t)U * y->piece);
    if (y->recv) memset(y->recv, 0, (size_t)(U - 1) * y->piece);
    if ((rc = lc_barrier(cp->team))) {
        rc = lc_cp__fail(cp, rc, "%s", lc_last_error(cp->w));
        lc_cp__uly_destroy(cp);
    }
    return rc;
}

/* ---- the all-to-all ---- */

static uint8_t *my_piece(lc_cp_uly *y, int s) { return y->send + (size_t)s * y->piece; }

/* The lowering of this exchange, from the runtime's one policy (in place where all members
 * share memory). */
static lc_lowering a2a_lowering(lc_cp *cp)
{
    const char *why;
    if (cp->uly->U == 1) return LC_LOWER_AUTO;
    return lc_lowering_resolve(cp->uly->ut, cp->cfg.plan.lowering, 1, NULL, 0, &why);
}

/* Rank s's piece for me after the exchange. */
static const uint8_t *piece_from(lc_cp *cp, lc_lowering l, int s)
{
    lc_cp_uly *y = cp->uly;
    if (s == y->u || l == LC_LOWER_COMPUTE_ONLY) return my_piece(y, y->u); /* compute-only: my own stands in */
    if (l == LC_LOWER_ZERO_COPY)
        return lc_symm_ptr(cp->w, my_piece(y, y->u), lc_team_translate_pe(y->ut, s, lc_team_world(cp->w)));
    int k = (y->u - s + y->U) % y->U; /* rank s sent with shift k */
    return y->recv + (size_t)(k - 1) * y->piece;
}

static int a2a_fail(lc_cp *cp, int rc, const char *what)
{
    for (int i = 0; i < 4; i++) (void)lc_permute_done(&cp->uly->req[i]);
    return lc_cp__fail(cp, rc, "Ulysses all-to-all (%s, group of %d): %s", what, cp->uly->U, lc_last_error(cp->w));
}

/* Before packing: the send buffer is free (zero-copy readers of the last exchange are done). */
static int a2a_begin(lc_cp *cp, lc_lowering l)
{
    lc_cp_uly *y = cp->uly;
    (void)l; /* any lowering packs into the send buffer that zero-copy peers may still read */
    if (!y->zc_epoch) return LC_OK;
    lc_cp_clock c = lc_cp__tic();
    int rc = lc_signal_wait_until(cp->w, &y->sig[SIG_DONE], LC_CMP_GE, (uint64_t)(y->U - 1) * y->zc_epoch, NULL);
    lc_cp__toc_comm(cp, c);
    return rc ? a2a_fail(cp, rc, "waiting for readers of my last pieces") : LC_OK;
}

/* Moves piece s of my send buffer (bytes long) to rank s, for every s. */
static int a2a(lc_cp *cp, lc_lowering l, size_t bytes, const char *what)
{
    lc_cp_uly *y = cp->uly;
    int U = y->U, rc = LC_OK;
    if (U == 1 || l == LC_LOWER_COMPUTE_ONLY) return LC_OK;
    lc_cp_clock c = lc_cp__tic();
    y->st.bytes_sent += (double)bytes * (U - 1);
    if (l == LC_LOWER_ZERO_COPY) {
        /* My stores into the send buffer before the signal that lets peers read them. */
        rc = lc_fence(cp->w);
        for (int s = 0; s < U && !rc; s++)
            if (s != y->u)
                rc = lc_signal_op(cp->w, &y->sig[SIG_READY], 1, LC_SIGNAL_ADD,
                                  lc_team_translate_pe(y->ut, s, lc_team_world(cp->w)));
        y->zc_epoch++;
        if (!rc) rc = lc_signal_wait_until(cp->w, &y->sig[SIG_READY], LC_CMP_GE, (uint64_t)(U - 1) * y->zc_epoch, NULL);
    } else {
        for (int k0 = 1; k0 < U && !rc; k0 += 4) {
            int k1 = k0 + 4 < U ? k0 + 4 : U;
            for (int k = k0; k < k1 && !rc; k++)
                rc = lc_permute_start(y->ut, k, my_piece(y, (y->u + k) % U), y->recv + (size_t)(k - 1) * y->piece,
                                      bytes, l, &y->req[k - k0]);
            for (int k = k0; k < k1 && !rc; k++) rc = lc_permute_done(&y->req[k - k0]);
        }
    }
    lc_cp__toc_comm(cp, c);
    return rc ? a2a_fail(cp, rc, what) : LC_OK;
}

/* After unpacking: zero-copy tells each peer its piece has been read. */
static int a2a_end(lc_cp *cp, lc_lowering l)
{
    lc_cp_uly *y = cp->uly;
    int rc = LC_OK;
    if (l != LC_LOWER_ZERO_COPY || y->U == 1) return LC_OK;
    for (int s = 0; s < y->U && !rc; s++)
        if (s != y->u)
            rc = lc_signal_op(cp->w, &y->sig[SIG_DONE], 1, LC_SIGNAL_ADD,
                              lc_team_translate_pe(y->ut, s, lc_team_world(cp->w)));
    return rc ? a2a_fail(cp, rc, "read acknowledgements") : LC_OK;
}

/* ---- packing ---- */

/* My rows, rank s's heads, into piece s: Q, K, V (+ dO, lse, delta) and doc ids. */
static void pack_in(lc_cp *cp, const in_fmt *f, int s, const void *q, const void *k, const void *v,
                    const void *dout, const float *lse, const float *delta, const int32_t *doc)
{
    lc_cp_uly *y = cp->uly;
    const lc_cp_config *c = &cp->cfg;
    size_t es = cp->es, d = (size_t)c->d, n = (size_t)cp->n_real_of[cp->me];
    size_t qrow = (size_t)y->hq_l * d * es, kvrow = (size_t)y->hkv_l * d * es;
    size_t qoff = (size_t)s * y->hq_l * d * es, kvoff = (size_t)kv0(y, s) * d * es;
    size_t qstr = (size_t)c->hq * d * es, kvstr = (size_t)c->hkv * d * es;
    uint8_t *p = my_piece(y, s);
    for (size_t i = 0; i < n; i++) {
        memcpy(p + f->q + i * qrow, (const uint8_t *)q + i * qstr + qoff, qrow);
        memcpy(p + f->k + i * kvrow, (const uint8_t *)k + i * kvstr + kvoff, kvrow);
        memcpy(p + f->v + i * kvrow, (const uint8_t *)v + i * kvstr + kvoff, kvrow);
        if (dout) {
            memcpy(p + f->dout + i * qrow, (const uint8_t *)dout + i * qstr + qoff, qrow);
            memcpy(p + f->lse + i * y->hq_l * 4, lse + i * c->hq + (size_t)s * y->hq_l, (size_t)y->hq_l * 4);
            memcpy(p + f->delta + i * y->hq_l * 4, delta + i * c->hq + (size_t)s * y->hq_l, (size_t)y->hq_l * 4);
        }
    }
    if (c->mask & LC_MASK_DOC) memcpy(p + f->doc, doc, n * sizeof(int32_t));
}

/* Member u's piece into the group-ordered buffers. */
static void unpack_in(lc_cp *cp, const in_fmt *f, int u, const uint8_t *p, uint8_t *kg, uint8_t *vg, int bwd)
{
    lc_cp_uly *y = cp->uly;
    const lc_cp_config *c = &cp->cfg;
    size_t es = cp->es, d = (size_t)c->d, n = (size_t)cp->n_real_of[y->g * y->U + u];
    size_t qrow = (size_t)y->hq_l * d * es, kvrow = (size_t)y->hkv_l * d * es, lrow = (size_t)y->hq_l * 4;
    const int32_t *gi = y->gidx + (size_t)u * cp->n_pad;
    for (size_t i = 0; i < n; i++) {
        size_t j = (size_t)gi[i];
        memcpy(y->qg + j * qrow, p + f->q + i * qrow, qrow);
        memcpy(kg + j * kvrow, p + f->k + i * kvrow, kvrow);
        memcpy(vg + j * kvrow, p + f->v + i * kvrow, kvrow);
        if (bwd) {
            memcpy(y->dog + j * qrow, p + f->dout + i * qrow, qrow);
            memcpy((uint8_t *)y->lseg + j * lrow, p + f->lse + i * lrow, lrow);
            memcpy((uint8_t *)y->inner->delta + j * lrow, p + f->delta + i * lrow, lrow);
        }
        if (c->mask & LC_MASK_DOC) y->docg[j] = ((const int32_t *)(p + f->doc))[i];
    }
}

/* The results for member u's rows into piece u: O and lse, or dQ, dK and dV. */
static void pack_out(lc_cp *cp, int u, int bwd)
{
    lc_cp_uly *y = cp->uly;
    size_t d = (size_t)cp->cfg.d, n = (size_t)cp->n_real_of[y->g * y->U + u];
    size_t qrow = (size_t)y->hq_l * d * 4, kvrow = (size_t)y->hkv_l * d * 4, lrow = (size_t)y->hq_l * 4;
    const int32_t *gi = y->gidx + (size_t)u * cp->n_pad;
    uint8_t *p = my_piece(y, u);
    for (size_t i = 0; i < n; i++) {
        size_t j = (size_t)gi[i];
        if (!bwd) {
            memcpy(p + y->fout.o + i * qrow, (uint8_t *)y->og + j * qrow, qrow);
            memcpy(p + y->fout.lse + i * lrow, (uint8_t *)y->lseg + j * lrow, lrow);
        } else {
            memcpy(p + y->bout.dq + i * qrow, (uint8_t *)y->dqg + j * qrow, qrow);
            memcpy(p + y->bout.dk + i * kvrow, (uint8_t *)y->dkg + j * kvrow, kvrow);
            memcpy(p + y->bout.dv + i * kvrow, (uint8_t *)y->dvg + j * kvrow, kvrow);
        }
    }
}

/* ---- the passes ---- */

static int run_inner(lc_cp *cp, int rc, const char *what)
{
    if (!rc) return LC_OK;
    /* The inner plan aborted the world already when its peers were involved. */
    return lc_cp__fail(cp, rc, "%s: %s", what, lc_cp_last_error(cp->uly->inner));
}

/* The first all-to-all of both passes: my rows of Q, K, V (the backward: + dO, lse, D) out to
 * the ranks' head shards, the group's rows in, in global order, K and V straight into the inner
 * plan's slots (*kg, *vg). */
static int to_heads(lc_cp *cp, lc_lowering l, int bwd, const void *q, const void *k, const void *v,
                    const void *dout, const float *lse, const int32_t *doc, void **kg, void **vg)
{
    lc_cp_uly *y = cp->uly;
    const in_fmt *f = bwd ? &y->bin : &y->fin;
    int rc = a2a_begin(cp, l);
    if (rc) return rc;
    lc_cp_clock c = lc_cp__tic();
    for (int s = 0; s < y->U; s++) pack_in(cp, f, s, q, k, v, dout, lse, bwd ? cp->delta : NULL, doc);
    cp->st.stage_cpu_s += lc_cp__cpu() - c.cpu;
    if ((rc = a2a(cp, l, f->bytes, bwd ? "Q, K, V, dO to head shards" : "Q, K, V to head shards"))) return rc;
    if ((rc = run_inner(cp, lc_cp_kv_buffers(y->inner, kg, vg), "the groups' ring"))) return rc;
    c = lc_cp__tic();
    for (int u = 0; u < y->U; u++) unpack_in(cp, f, u, piece_from(cp, l, u), *kg, *vg, bwd);
    cp->st.stage_cpu_s += lc_cp__cpu() - c.cpu;
    return a2a_end(cp, l);
}

int lc_cp__uly_fwd(lc_cp *cp, const void *q, const void *k, const void *v, const int32_t *doc, float *o,
                   float *lse)
{
    lc_cp_uly *y = cp->uly;
    lc_lowering l = a2a_lowering(cp);
    int U = y->U, rc;
    void *kg, *vg;
    if ((rc = to_heads(cp, l, 0, q, k, v, NULL, NULL, doc, &kg, &vg))) return rc;
    rc = lc_cp_forward_ex(y->inner, y->qg, kg, vg, y->docg, NULL, y->og, y->lseg);
    if ((rc = run_inner(cp, rc, "the groups' ring forward"))) return rc;
    if ((rc = a2a_begin(cp, l))) return rc;
    for (int u = 0; u < U; u++) pack_out(cp, u, 0);
    if ((rc = a2a(cp, l, y->fout.bytes, "outputs back to sequence shards"))) return rc;
    const lc_cp_config *cf = &cp->cfg;
    size_t d = (size_t)cf->d, n = (size_t)cp->n_real_of[cp->me], qrow = (size_t)y->hq_l * d * 4;
    lc_cp_clock c = lc_cp__tic();
    for (int s = 0; s < U; s++) {
        const uint8_t *p = piece_from(cp, l, s);
        for (size_t i = 0; i < n; i++) {
            memcpy(o + (i * cf->hq + (size_t)s * y->hq_l) * d, p + y->fout.o + i * qrow, qrow);
            memcpy(lse + i * cf->hq + (size_t)s * y->hq_l, p + y->fout.lse + i * y->hq_l * 4, (size_t)y->hq_l * 4);
        }
    }
    cp->st.stage_cpu_s += lc_cp__cpu() - c.cpu;
    return a2a_end(cp, l);
}

int lc_cp__uly_bwd(lc_cp *cp, const void *q, const void *k, const void *v, const int32_t *doc,
                   const float *lse, const void *dout, float *dq, float *dk, float *dv)
{
    lc_cp_uly *y = cp->uly;
    const lc_cp_config *cf = &cp->cfg;
    lc_lowering l = a2a_lowering(cp);
    int U = y->U, rc;
    void *kg, *vg;
    if ((rc = to_heads(cp, l, 1, q, k, v, dout, lse, doc, &kg, &vg))) return rc;
    y->inner->delta_given = 1;
    /* out_f32 is not read with D given; og is dqg's storage, which the inner plan overwrites */
    rc = lc_cp_backward_ex(y->inner, y->qg, kg, vg, y->docg, NULL, y->og, y->lseg, y->dog, y->dqg, y->dkg, y->dvg);
    if ((rc = run_inner(cp, rc, "the groups' ring backward"))) return rc;
    if ((rc = a2a_begin(cp, l))) return rc;
    for (int u = 0; u < U; u++) pack_out(cp, u, 1);
    if ((rc = a2a(cp, l, y->bout.bytes, "dQ, dK, dV back to sequence shards"))) return rc;
    size_t d = (size_t)cf->d, n = (size_t)cp->n_real_of[cp->me];
    size_t qrow = (size_t)y->hq_l * d, kvrow = (size_t)y->hkv_l * d;
    lc_cp_clock c = lc_cp__tic();
    /* Ranks in order: a replicated KV head's first replica sets, the next ones add. */
    for (int s = 0; s < U; s++) {
        const uint8_t *p = piece_from(cp, l, s);
        const float *pq = (const float *)(p + y->bout.dq), *pk = (const float *)(p + y->bout.dk),
                    *pv = (const float *)(p + y->bout.dv);
        size_t ko = (size_t)kv0(y, s) * d;
        int first = y->rep == 1 || s % y->rep == 0;
        for (size_t i = 0; i < n; i++) {
            memcpy(dq + i * cf->hq * d + (size_t)s * qrow, pq + i * qrow, qrow * 4);
            float *tk = dk + i * cf->hkv * d + ko, *tv = dv + i * cf->hkv * d + ko;
            if (first) {
                memcpy(tk, pk + i * kvrow, kvrow * 4);
                memcpy(tv, pv + i * kvrow, kvrow * 4);
            } else {
                lc_cp__acc_add(tk, pk + i * kvrow, kvrow);
                lc_cp__acc_add(tv, pv + i * kvrow, kvrow);
            }
        }
    }
    cp->st.stage_cpu_s += lc_cp__cpu() - c.cpu;
    return a2a_end(cp, l);
}

void lc_cp__uly_stats(const lc_cp *cp, lc_cp_stats *st)
{
    lc_cp_stats in;
    lc_cp_get_stats(cp->uly->inner, &in);
    st->compute_cpu_s += in.compute_cpu_s;
    st->compute_wall_s += in.compute_wall_s;
    st->comm_cpu_s += in.comm_cpu_s;
    st->comm_wall_s += in.comm_wall_s;
    st->stage_cpu_s += in.stage_cpu_s;
    st->blocks_run += in.blocks_run;
    st->blocks_skipped += in.blocks_skipped;
    st->bytes_sent += in.bytes_sent + cp->uly->st.bytes_sent;
}

lc_cp *lc_cp__uly_inner(lc_cp *cp) { return cp->uly->inner; }

int lc_cp__uly_set_lowering(lc_cp *cp, lc_lowering l)
{
    if (lc_cp_set_algo(cp->uly->inner, LC_CP_RING, l))
        return lc_cp__fail(cp, LC_ERR_ARG, "the groups' ring: %s", lc_cp_last_error(cp->uly->inner));
    return LC_OK;
}

size_t lc_cp__uly_mem(const lc_cp *cp)
{
    const lc_cp_uly *y = cp->uly;
    size_t d = (size_t)cp->cfg.d, gr = (size_t)y->gn_real, es = cp->es;
    size_t mem = 2 * gr * y->hq_l * d * es                  /* qg, dog */
                 + gr * y->hq_l * d * 4                     /* og = dqg */
                 + 2 * gr * y->hkv_l * d * 4                /* dkg, dvg */
                 + gr * (y->hq_l * 4 + 4)                   /* lseg, docg */
                 + (size_t)(2 * y->U - 1) * y->piece;       /* send, recv */
    return mem + lc_cp_mem_bytes(y->inner);
}

void lc_cp__uly_reset_stats(lc_cp *cp)
{
    lc_cp_reset_stats(cp->uly->inner);
    memset(&cp->uly->st, 0, sizeof cp->uly->st);
}

/* lc_cp__uly_mem before the plan exists (mem.c): the same buffers for group g's rows, the
 * largest over the groups and their members. */
size_t lc_cp__uly_mem_estimate(const lc_cp_config *c, int P, int n_pad, const int *nreal)
{
    int U = c->plan.algo == LC_CP_ULYSSES ? P : c->plan.ulysses;
    if (U < 1 || P % U || c->hq % U) return 0;
    int R = P / U, hq_l = c->hq / U, rep = c->hkv % U == 0 ? 1 : U / c->hkv;
    int hkv_l = rep > 1 ? 1 : c->hkv / U;
    size_t es = lc_dtype_size(c->dtype), d = (size_t)c->d, n = (size_t)n_pad;
    size_t qrow = (size_t)hq_l * d * es, kvrow = (size_t)hkv_l * d * es, lrow = (size_t)hq_l * 4;
    in_fmt bin;
    out_fmt fout;
    layout_in(&bin, n, qrow, kvrow, lrow, 1);
    layout_out(&fout, n, (size_t)hq_l * d * 4, (size_t)hkv_l * d * 4, lrow);
    size_t piece = up64(bin.bytes > fout.bytes ? bin.bytes : fout.bytes), most = 0;
    lc_cp_config ic = *c;
    ic.hq = hq_l;
    ic.hkv = hkv_l;
    ic.plan.algo = LC_CP_RING;
    ic.plan.ulysses = 0;
    for (int g = 0; g < R; g++) {
        size_t gr = 0;
        int mine = 0;
        for (int u = 0; u < U; u++) {
            gr += (size_t)nreal[g * U + u];
            if (nreal[g * U + u] > mine) mine = nreal[g * U + u];
        }
        size_t mem = (size_t)mine * c->hq * (d + 1) * sizeof(float) /* the outer plan's o32, delta */
                     + 2 * gr * hq_l * d * es + gr * hq_l * d * 4 + 2 * gr * hkv_l * d * 4 + gr * (lrow + 4)
                     + (size_t)(2 * U - 1) * piece
                     + lc_cp__ring_mem_estimate(&ic, R, U * n_pad, (int)gr, 0);
        if (mem > most) most = mem;
    }
    return most;
}
