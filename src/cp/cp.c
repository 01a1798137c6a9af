/* The plan object: validation, symmetric buffers, staging of my block, the per-block kernel
 * calls every algorithm shares, and the dispatch to ring / zero-copy / all-gather. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "cp/internal.h"

static size_t align64(size_t x) { return (x + 63) & ~(size_t)63; }

int lc_cp__fail(lc_cp *cp, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lc__vfail_in(cp->err, sizeof cp->err, rc, fmt, ap);
    va_end(ap);
    if (cp->comm_started && rc != LC_ERR_ABORT) lc_world_abort(cp->w, cp->err);
    return rc;
}

int lc_cp__rt_fail(lc_cp *cp, int rc, const char *what, int step)
{
    return lc_cp__fail(cp, rc, "%s (step %d of %d, PE %d): %s", what, step, cp->P,
                       lc_my_pe(cp->w), lc_last_error(cp->w));
}

/* Calls without a plan (create, a NULL plan) leave their message in the thread's buffer. */
const char *lc_cp_last_error(const lc_cp *cp) { return cp ? cp->err : lc__thread_error(); }
const lc_cp_config *lc_cp_get_config(const lc_cp *cp) { return cp ? &cp->cfg : NULL; }

/* A call that got no plan: the message goes where lc_cp_last_error(NULL) finds it. */
int lc_cp__no_plan(const char *fn)
{
    return lc__fail_in(NULL, 0, LC_ERR_ARG, "%s: the plan is NULL", fn);
}

/* The Ulysses group size of a config on a team of P (1: no all-to-all). */
static int uly_degree(const lc_cp_config *c, int P)
{
    return c->plan.algo == LC_CP_ULYSSES ? P : c->plan.algo == LC_CP_HYBRID ? c->plan.ulysses : 1;
}

static int is_uly(lc_cp_algo a) { return a == LC_CP_ULYSSES || a == LC_CP_HYBRID; }

static int check_config(const lc_cp_config *c, int P, char *err, size_t len)
{
    /* The plan's shape rule; a PE without tokens is fine here (it only serves keys). */
    if (lc_plan_fits(c->plan.layout, c->plan.seq_len, P, err, len) < 0) return -1;
    if (c->plan.cp && c->plan.cp != P)
        return snprintf(err, len, "plan.cp = %d but the team has %d PEs", c->plan.cp, P), -1;
    if (c->hq < 1 || c->hkv < 1 || c->hq % c->hkv)
        return snprintf(err, len, "hq = %d must be a positive multiple of hkv = %d", c->hq, c->hkv), -1;
    if (c->dtype != LC_DT_F32 && c->dtype != LC_DT_BF16)
        return snprintf(err, len, "dtype %d is not f32 or bf16", (int)c->dtype), -1;
    if (c->threads > 256) return snprintf(err, len, "threads = %d must be <= 256", c->threads), -1;
    if (c->mask & ~7u) return snprintf(err, len, "unknown mask bits 0x%x", c->mask), -1;
    if ((c->mask & LC_MASK_WINDOW) && c->window < 1)
        return snprintf(err, len, "window = %lld must be >= 1", (long long)c->window), -1;
    if ((unsigned)c->plan.algo > LC_CP_HYBRID) return snprintf(err, len, "unknown algorithm %d", (int)c->plan.algo), -1;
    if (lc_plan__check_ulysses(c->plan.algo, c->plan.ulysses, P, err, len)) return -1;
    if (lc_plan__check_balance(c->plan.balance, c->plan.algo, c->plan.seq_len, P, err, len)) return -1;
    if (uly_degree(c, P) > 1 && lc_plan_heads_split(c->hq, c->hkv, uly_degree(c, P), err, len)) return -1;
    if ((unsigned)c->plan.lowering > LC_LOWER_COMPUTE_ONLY)
        return snprintf(err, len, "unknown lowering %d", (int)c->plan.lowering), -1;
    lc_attn_desc a = {.sq = 1, .sk = 1, .hq = c->hq, .hkv = c->hkv, .d = c->d, .qkv_dtype = c->dtype,
                      .scale = c->scale, .mask = {c->mask, c->window, NULL, NULL},
                      .threads = c->threads, .impl = c->impl};
    static const int32_t zero = 0;
    a.mask.q_doc = a.mask.k_doc = &zero;
    char kerr[256];
    if (lc_attn_check(&a, kerr, sizeof kerr)) return snprintf(err, len, "kernel: %s", kerr), -1;
    return 0;
}

static void release(lc_cp *cp)
{
    free(cp->world_pe);
    free(cp->n_real_of);
    free(cp->pos_of);
    free(cp->tmp[0]);
    free(cp->tmp[1]);
    free(cp->o32);
    free(cp->delta);
    free(cp->gather);
    free(cp->a2a);
    free(cp->work);
    free(cp->bal_work);
    lc_attn_pool_destroy(cp->pool);
    free(cp);
}

/* Maps every peer buffer this PE will touch into its own page tables now, so the first
 * step is not charged with thousands of page faults (the analogue of registering buffers).
 * Writing zeros over zeros is harmless: nothing is in flight yet. */
static void prefault(lc_cp *cp, size_t acc)
{
    long pg = sysconf(_SC_PAGESIZE);
    volatile uint8_t sink = 0;
    for (int r = 0; r < cp->P; r++) {
        if (r == cp->me) continue;
        int pe = cp->world_pe[r];
        uint8_t *home = lc_symm_ptr(cp->w, cp->home, pe), *r0 = lc_symm_ptr(cp->w, cp->ring[0], pe);
        uint8_t *r1 = lc_symm_ptr(cp->w, cp->ring[1], pe), *ai = lc_symm_ptr(cp->w, cp->acc_in, pe);
        if (!home || !r0 || !r1 || !ai) return;
        for (size_t o = 0; o < cp->fmt.bytes; o += (size_t)pg) {
            sink ^= home[o];
            ((volatile uint8_t *)r0)[o] = 0;
            ((volatile uint8_t *)r1)[o] = 0;
        }
        for (size_t o = 0; o < acc; o += (size_t)pg) ((volatile uint8_t *)ai)[o] = 0;
    }
    (void)sink;
}

/* All-gather buffers: P blocks in, 2 x P dK/dV accumulators for the all-to-all. */
static int allgather_buffers(lc_cp *cp)
{
    size_t n2 = 2 * cp->kv_elems;
    if (!cp->gather && !(cp->gather = malloc(cp->fmt.bytes * cp->P)))
        return lc_cp__fail(cp, LC_ERR_NOMEM, "all-gather: no memory for %d KV blocks of %zu bytes",
                           cp->P, cp->fmt.bytes);
    if (!cp->a2a && !(cp->a2a = malloc(2 * cp->P * n2 * sizeof(float))))
        return lc_cp__fail(cp, LC_ERR_NOMEM, "all-gather: no memory for %d dK/dV blocks", 2 * cp->P);
    return LC_OK;
}

/* What the steady state needs, sized once: the kernel worker pool and a workspace for my
 * largest kernel call (all my real rows against a whole padded block; every call of the
 * plan is that or smaller), plus the all-gather buffers when the plan starts with it. */
static int steady_resources(lc_cp *cp)
{
    if (cp->cfg.threads > 1 && !(cp->pool = lc_attn_pool_create(cp->cfg.threads)))
        return lc_cp__fail(cp, LC_ERR_SYS, "kernel worker pool: %s", lc_attn_last_error());
    lc_attn_desc a = lc_cp__desc(cp, NULL, NULL, NULL);
    a.work = NULL;
    if (cp->attn->workspace_size(&a, LC_ATTN_PASS_FWD | LC_ATTN_PASS_BWD, &cp->work_bytes))
        return lc_cp__fail(cp, LC_ERR_ARG, "kernel workspace: %s", cp->attn->last_error());
    if (cp->work_bytes && !(cp->work = malloc(cp->work_bytes)))
        return lc_cp__fail(cp, LC_ERR_NOMEM, "no memory for the %zu-byte kernel workspace", cp->work_bytes);
    return cp->cfg.plan.algo == LC_CP_ALLGATHER ? allgather_buffers(cp) : LC_OK;
}

/* ---- agreement at create: every member compares the whole config with everyone's ---- */

/* The set-up record of cp/core.h, the same one the GPU ring agrees on (threads and impl are
 * each PE's own and stay out of it). */
typedef struct {
    int32_t ok; /* my config passed validation */
    int32_t pad;
    lc_cp_setup setup;
    char why[240]; /* why it did not */
} agree_rec;

static void canon(const lc_cp_config *c, agree_rec *r)
{
    lc_cp_setup_init(&r->setup, c->plan.seq_len, c->hq, c->hkv, c->d, c->dtype, c->plan.layout, c->mask,
                     c->window, c->scale, c->plan.algo, c->plan.lowering);
    r->setup.f[LC_CP_SETUP_ULYSSES] = c->plan.algo == LC_CP_HYBRID ? c->plan.ulysses : 0;
    r->setup.f[LC_CP_SETUP_BALANCE] = c->plan.balance;
}

/* One all-gather of every member's validation result and config. All members reach the
 * same verdict from the same data, so a bad or disagreeing config fails create on every
 * member with the same message and nobody is left waiting (the world stays usable). */
static int agree(lc_team *team, const lc_cp_config *cfg, const char *why, char *err, size_t len)
{
    lc_world *w = lc_team_get_world(team);
    int P = lc_team_n_pes(team);
    agree_rec mine;
    memset(&mine, 0, sizeof mine);
    mine.ok = why == NULL;
    if (why) snprintf(mine.why, sizeof mine.why, "%.239s", why);
    if (cfg) canon(cfg, &mine);
    agree_rec *all = malloc(sizeof *all * (size_t)P);
    if (!all) {
        snprintf(err, len, "no memory to compare the config of %d PEs", P);
        lc_world_abort(w, err); /* the others are in the all-gather */
        return LC_ERR_SYS;
    }
    int rc = lc_allgather(team, all, &mine, sizeof mine);
    if (rc) {
        snprintf(err, len, "comparing the config across the team: %s", lc_last_error(w));
        free(all);
        return rc;
    }
    for (int r = 0; r < P; r++) {
        if (all[r].ok) continue;
        int others = 0;
        for (int s = r + 1; s < P; s++) others += !all[s].ok;
        snprintf(err, len, "PE %d (team rank %d): %.240s%s", lc_team_translate_pe(team, r, lc_team_world(w)), r,
                 all[r].why, others ? " (and other PEs)" : "");
        free(all);
        return LC_ERR_ARG;
    }
    for (int f = 0; f < LC_CP_SETUP_N; f++) {
        int first = -1, n = 0;
        char ranks[128] = "";
        for (int r = 1; r < P; r++)
            if (all[r].setup.f[f] != all[0].setup.f[f]) {
                if (first < 0) first = r;
                size_t l = strlen(ranks);
                if (n++ < 8) snprintf(ranks + l, sizeof ranks - l, "%s%d", l ? ", " : "", lc_team_translate_pe(team, r, lc_team_world(w)));
            }
        if (first < 0) continue;
        char v0[48], v1[48];
        lc_cp_setup_value(&all[0].setup, f, v0, sizeof v0);
        lc_cp_setup_value(&all[first].setup, f, v1, sizeof v1);
        snprintf(err, len, "PEs disagree on %s: PE %d has %s, PE %d has %s (PEs that differ from PE %d: %s%s)",
                 lc_cp_setup_name(f), lc_team_translate_pe(team, 0, lc_team_world(w)), v0,
                 lc_team_translate_pe(team, first, lc_team_world(w)), v1,
                 lc_team_translate_pe(team, 0, lc_team_world(w)), ranks, n > 8 ? ", ..." : "");
        free(all);
        return LC_ERR_MISMATCH;
    }
    free(all);
    return LC_OK;
}

/* A failure after the agreement: only this PE knows, and the others are (or will be) in a
 * collective step of create, so abort the world with the reason. */
static int create_abort(lc_cp *cp, int rc, const char *what)
{
    lc__fail_in(NULL, 0, rc, "lc_cp_create: %s", what);
    if (rc != LC_ERR_ABORT) lc_world_abort(cp->w, lc__thread_error());
    release(cp);
    return rc;
}

int lc_cp_create(lc_team *team, const lc_cp_config *cfg, lc_cp **out)
{
    char why[400], err[480];
    int rc;
    if (out) *out = NULL;
    if (!team) { /* no way to reach the others */
        return lc__fail_in(NULL, 0, LC_ERR_ARG, "lc_cp_create: team is NULL");
    }
    int bad = !cfg || !out || check_config(cfg, lc_team_n_pes(team), why, sizeof why);
    if (!cfg) snprintf(why, sizeof why, "cfg is NULL");
    else if (!out) snprintf(why, sizeof why, "out is NULL");
    if ((rc = agree(team, cfg, bad ? why : NULL, err, sizeof err)))
        return lc__fail_in(NULL, 0, rc, "lc_cp_create: %s", err);
    int n_pad = 0;
    lc_cp_layout_positions(cfg->plan.layout, cfg->plan.seq_len, lc_team_n_pes(team), 0, NULL, &n_pad);
    return lc_cp__create_mapped(team, cfg, n_pad, NULL, out);
}

int lc_cp__create_mapped(lc_team *team, const lc_cp_config *cfg, int n_pad, const int32_t *pos_all, lc_cp **out)
{
    char err[480];
    int rc;
    lc_cp *cp = calloc(1, sizeof *cp);
    if (!cp) {
        lc__fail_in(NULL, 0, LC_ERR_SYS, "lc_cp_create: no memory for the plan");
        lc_world_abort(lc_team_get_world(team), lc__thread_error());
        return LC_ERR_SYS;
    }
    cp->team = team;
    cp->attn = &lc_attn_cpu;
    cp->w = lc_team_get_world(team);
    cp->me = lc_team_my_pe(team);
    cp->P = lc_team_n_pes(team);
    cp->cfg = *cfg;
    int P = cp->P;
    cp->world_pe = malloc(sizeof(int) * P);
    cp->n_real_of = malloc(sizeof(int) * P);
    cp->n_pad = n_pad;
    cp->pos_of = malloc(sizeof(int32_t) * (size_t)P * cp->n_pad);
    if (!cp->world_pe || !cp->n_real_of || !cp->pos_of)
        return create_abort(cp, LC_ERR_SYS, "no memory for the layout maps");
    for (int r = 0; r < P; r++) {
        int32_t *pos = cp->pos_of + (size_t)r * cp->n_pad;
        cp->world_pe[r] = lc_team_translate_pe(team, r, lc_team_world(cp->w));
        if (pos_all) {
            memcpy(pos, pos_all + (size_t)r * n_pad, sizeof(int32_t) * n_pad);
            for (cp->n_real_of[r] = 0; cp->n_real_of[r] < n_pad && pos[cp->n_real_of[r]] >= 0;) cp->n_real_of[r]++;
        } else {
            cp->n_real_of[r] = lc_cp_layout_positions(cfg->plan.layout, cfg->plan.seq_len, P, r, pos, NULL);
        }
    }
    cp->es = lc_dtype_size(cfg->dtype);
    cp->kv_elems = (size_t)cp->n_pad * cfg->hkv * cfg->d;
    cp->fmt = lc_cp_slot_format(cp->kv_elems * cp->es, (size_t)cp->n_pad);
    lc_cp_slot_fmt *f = &cp->fmt;
    size_t nreal = (size_t)cp->n_real_of[cp->me], acc = 2 * cp->kv_elems * sizeof(float);
    cp->o32 = malloc(nreal * cfg->hq * cfg->d * sizeof(float) + 64);
    cp->delta = malloc(nreal * cfg->hq * sizeof(float) + 64);
    if (!cp->o32 || !cp->delta) return create_abort(cp, LC_ERR_SYS, "no memory for the output buffers");
    if (is_uly(cfg->plan.algo)) {
        /* No ring of my own: the groups' inner ring holds the blocks (ulysses.c). */
        if ((rc = lc_cp__uly_create(cp)) != LC_OK) {
            lc__fail_in(NULL, 0, rc, "lc_cp_create: %s", cp->err);
            release(cp);
            return rc;
        }
        *out = cp;
        return LC_OK;
    }
    /* One PE moves nothing: no receive slots, no incoming accumulator, one dK/dV buffer (the
     * inner plan of Ulysses is such a plan, sized by the whole sequence). */
    const int solo = P == 1;
    if (!solo && !(cp->bal_work = malloc(lc_cp__balance_scratch(cfg->plan.seq_len, P, n_pad))))
        return create_abort(cp, LC_ERR_SYS, "no memory for the balance buffers");
    cp->tmp[0] = malloc(acc);
    cp->tmp[1] = solo ? NULL : malloc(acc);
    if (!cp->tmp[0] || (!solo && !cp->tmp[1])) {
        snprintf(err, sizeof err, "no memory for the dK/dV buffers (2 x %zu bytes)", acc);
        return create_abort(cp, LC_ERR_SYS, err);
    }
    if ((rc = steady_resources(cp)) != LC_OK) return create_abort(cp, rc, cp->err);
    /* Symmetric allocation is collective over the plan's team only: other teams of the world
     * may create plans of their own at the same time. */
    int ok = (cp->home = lc_symm_alloc_team(team, f->bytes)) != NULL;
    if (ok && !solo) ok = (cp->ring[0] = lc_symm_alloc_team(team, f->bytes)) != NULL;
    if (ok && !solo) ok = (cp->ring[1] = lc_symm_alloc_team(team, f->bytes)) != NULL;
    if (ok && !solo) ok = (cp->acc_in = lc_symm_alloc_team(team, acc)) != NULL;
    if (ok) ok = (cp->sig = lc_symm_alloc_team(team, align64(sizeof(uint64_t) * (CP_SIG_READY + P)))) != NULL;
    if (!ok) {
        lc__fail_in(NULL, 0, LC_ERR_NOMEM, "lc_cp_create: symmetric buffers (3 x %zu + %zu bytes): %s",
                    f->bytes, acc, lc_last_error(cp->w));
        /* The heap fails the same allocation on every PE, so these frees stay collective. */
        void *got[] = {cp->acc_in, cp->ring[1], cp->ring[0], cp->home};
        for (int i = 0; i < 4; i++)
            if (got[i]) lc_symm_free_team(team, got[i]);
        release(cp);
        return LC_ERR_NOMEM;
    }
    memset(cp->sig, 0, sizeof(uint64_t) * (CP_SIG_READY + P));
    memset(cp->home, 0, f->bytes); /* padded rows must stay finite: P * V reads them */
    memcpy(cp->home + f->pos, cp->pos_of + (size_t)cp->me * cp->n_pad, sizeof(int32_t) * cp->n_pad);
    for (int i = 0; i < cp->n_pad; i++) ((int32_t *)(cp->home + f->doc))[i] = -1;
    if (!solo) {
        memset(cp->ring[0], 0, f->bytes);
        memset(cp->ring[1], 0, f->bytes);
        memset(cp->acc_in, 0, acc);
    }
    /* Nobody may signal my words before they are zeroed. */
    rc = lc_barrier(team);
    if (!rc) {
        prefault(cp, acc);
        rc = lc_barrier(team);
    }
    if (rc) {
        lc__fail_in(NULL, 0, rc, "lc_cp_create: %s", lc_last_error(cp->w));
        release(cp);
        return rc;
    }
    *out = cp;
    return LC_OK;
}

int lc_cp_destroy(lc_cp *cp)
{
    if (!cp) return LC_OK;
    if (cp->uly) {
        int rc = lc_barrier(cp->team);
        lc_cp__uly_destroy(cp);
        release(cp);
        return rc;
    }
    /* Zero-copy peers may still read my home block until everyone is here. */
    int rc = lc_barrier(cp->team);
    void *sym[] = {cp->sig, cp->acc_in, cp->ring[1], cp->ring[0], cp->home};
    for (int i = 0; i < 5; i++)
        if (sym[i]) lc_symm_free_team(cp->team, sym[i]);
    release(cp);
    return rc;
}

int lc_cp_set_algo(lc_cp *cp, lc_cp_algo algo, lc_lowering lowering)
{
    if (!cp) return lc_cp__no_plan("lc_cp_set_algo");
    cp->comm_started = 0; /* local: nobody waits for this call */
    if ((unsigned)algo > LC_CP_HYBRID || (unsigned)lowering > LC_LOWER_COMPUTE_ONLY)
        return lc_cp__fail(cp, LC_ERR_ARG, "lc_cp_set_algo: unknown algorithm %d or lowering %d",
                           (int)algo, (int)lowering);
    /* Ulysses' groups, inner ring and all-to-all buffers are made collectively at create. */
    if ((is_uly(algo) || cp->uly) && algo != cp->cfg.plan.algo)
        return lc_cp__fail(cp, LC_ERR_ARG, "lc_cp_set_algo: a plan created for %s cannot switch to %s (create a "
                           "plan with that algorithm)", lc_cp_algo_name(cp->cfg.plan.algo), lc_cp_algo_name(algo));
    if (cp->uly) { /* the all-to-all and the groups' ring take the same lowering */
        cp->cfg.plan.lowering = lowering;
        return lc_cp__uly_set_lowering(cp, lowering);
    }
    if (algo == LC_CP_ALLGATHER) {
        int rc = allgather_buffers(cp);
        if (rc) return rc;
    }
    cp->cfg.plan.algo = algo;
    cp->cfg.plan.lowering = lowering;
    return LC_OK;
}

void lc_cp_get_stats(const lc_cp *cp, lc_cp_stats *st)
{
    if (!st) return;
    if (cp) *st = cp->st;
    else memset(st, 0, sizeof *st);
    if (cp && cp->uly) lc_cp__uly_stats(cp, st);
}

size_t lc_cp_mem_bytes(const lc_cp *cp)
{
    if (!cp) return 0;
    const lc_cp_config *c = &cp->cfg;
    size_t nreal = (size_t)cp->n_real_of[cp->me], acc = 2 * cp->kv_elems * sizeof(float);
    size_t mem = nreal * c->hq * ((cp->o32 ? c->d : 0) + 1) * sizeof(float); /* o32, delta */
    if (cp->uly) return mem + lc_cp__uly_mem(cp);
    int slots = cp->P == 1 ? 1 : 3; /* home (+ ring[2], acc_in and tmp[1] when blocks travel) */
    mem += acc + cp->work_bytes + slots * cp->fmt.bytes + (cp->P == 1 ? 0 : 2 * acc);
    if (cp->gather) mem += cp->fmt.bytes * cp->P;
    if (cp->a2a) mem += 2 * cp->P * acc;
    return mem;
}

void lc_cp_reset_stats(lc_cp *cp)
{
    if (cp) memset(&cp->st, 0, sizeof cp->st);
    if (cp && cp->uly) lc_cp__uly_reset_stats(cp);
}

int lc_cp__zc_wait_free(lc_cp *cp)
{
    if (cp->P == 1 || !cp->zc_epoch) return LC_OK;
    lc_cp_clock c = lc_cp__tic();
    int rc = lc_signal_wait_until(cp->w, &cp->sig[CP_SIG_RD_DONE], LC_CMP_GE,
                                  (uint64_t)(cp->P - 1) * cp->zc_epoch, NULL);
    lc_cp__toc_comm(cp, c);
    return rc ? lc_cp__rt_fail(cp, rc, "waiting for peers to finish reading my KV block", 0) : LC_OK;
}

int lc_cp_kv_buffers(lc_cp *cp, void **k, void **v)
{
    if (!cp) return lc_cp__no_plan("lc_cp_kv_buffers");
    if (cp->uly)
        return lc_cp__fail(cp, LC_ERR_ARG, "lc_cp_kv_buffers: a %s plan has no staging buffers (its all-to-all reads "
                           "k and v where they are)", lc_cp_algo_name(cp->cfg.plan.algo));
    int rc = lc_cp__zc_wait_free(cp);
    if (rc) return rc;
    if (k) *k = cp->home + cp->fmt.k;
    if (v) *v = cp->home + cp->fmt.v;
    return LC_OK;
}

lc_attn_desc lc_cp__desc(const lc_cp *cp, const int32_t *q_doc, const int32_t *k_pos,
                         const int32_t *k_doc)
{
    const lc_cp_config *c = &cp->cfg;
    /* Init and finish validate the descriptor too; doc ids of an empty side are never read. */
    static const int32_t no_doc = -1;
    if (c->mask & LC_MASK_DOC) {
        if (!q_doc) q_doc = &no_doc;
        if (!k_doc) k_doc = &no_doc;
    }
    lc_attn_desc a = {.sq = cp->n_real_of[cp->me], .sk = cp->n_pad, .hq = c->hq, .hkv = c->hkv,
                      .d = c->d, .qkv_dtype = c->dtype, .scale = c->scale,
                      .q_pos = cp->pos_of + (size_t)cp->me * cp->n_pad, .k_pos = k_pos,
                      .mask = {c->mask, c->window, q_doc, k_doc}, .threads = c->threads,
                      .impl = c->impl, .pool = cp->pool, .work = cp->work,
                      .work_bytes = cp->work_bytes};
    return a;
}

/* Kernel calls go per (Q chunk, K chunk) pair: zigzag's two chunks per PE would otherwise
 * give PEs differently shaped calls (two Q chunks x one K chunk vs one x two) whose
 * per-tile overheads differ by a few percent, and a skipped pair costs no K packing. */
typedef struct {
    int q0, nq, k0, nk;
} seg;

static int segments(const lc_cp *cp, seg out[4])
{
    /* A mask-balanced PE holds any chunks: one call, the kernels skip tile by tile. */
    int zz = cp->cfg.plan.layout == LC_CP_ZIGZAG && cp->cfg.plan.balance != LC_CP_BALANCE_MASK;
    int nseg = zz ? 2 : 1, c = cp->n_pad / nseg, n = 0;
    int real = cp->n_real_of[cp->me];
    for (int qs = 0; qs < nseg; qs++) {
        int q0 = qs * c, q1 = q0 + c < real ? q0 + c : real;
        if (q1 <= q0) continue;
        for (int ks = 0; ks < nseg; ks++) out[n++] = (seg){q0, q1 - q0, ks * c, c};
    }
    return n;
}

/* The sub-problem of one pair, or 0 when the mask leaves nothing to do in it. */
static int pair_desc(lc_cp *cp, const lc_attn_desc *base, const uint8_t *blk, const int32_t *k_pos,
                     const seg *g, lc_attn_desc *a)
{
    *a = *base;
    const int32_t *kp = k_pos ? k_pos : (const int32_t *)(blk + cp->fmt.pos);
    a->sq = g->nq;
    a->sk = g->nk;
    a->q_pos = base->q_pos + g->q0;
    a->k_pos = kp + g->k0;
    if (cp->cfg.mask & LC_MASK_DOC) {
        a->mask.q_doc = base->mask.q_doc + g->q0;
        a->mask.k_doc = (const int32_t *)(blk + cp->fmt.doc) + g->k0;
    }
    if (lc_attn_classify(&a->mask, a->q_pos, 0, a->sq, a->k_pos, 0, a->sk) != LC_BLOCK_SKIP) {
        cp->st.blocks_run++;
        return 1;
    }
    cp->st.blocks_skipped++;
    return 0;
}

int lc_cp__fwd_block(lc_cp *cp, const lc_attn_desc *base, const void *q, const uint8_t *blk,
                     const int32_t *k_pos, float *o, float *lse)
{
    const lc_cp_config *c = &cp->cfg;
    size_t rq = (size_t)c->hq * c->d, rk = (size_t)c->hkv * c->d;
    seg g[4];
    int n = segments(cp, g), rc = LC_OK;
    for (int i = 0; i < n && !rc; i++) {
        lc_attn_desc a;
        if (!pair_desc(cp, base, blk, k_pos, &g[i], &a)) continue;
        lc_cp_clock t = lc_cp__tic();
        rc = cp->attn->block(&a, (const uint8_t *)q + g[i].q0 * rq * cp->es,
                             blk + cp->fmt.k + g[i].k0 * rk * cp->es,
                             blk + cp->fmt.v + g[i].k0 * rk * cp->es, o + g[i].q0 * rq,
                             lse + (size_t)g[i].q0 * c->hq, NULL);
        lc_cp__toc_compute(cp, t);
    }
    return rc ? lc_cp__fail(cp, rc, "forward block kernel: %s", cp->attn->last_error()) : LC_OK;
}

int lc_cp__bwd_block(lc_cp *cp, const lc_attn_desc *base, const void *q, const uint8_t *blk,
                     const int32_t *k_pos, const void *dout, const float *lse, float *dq,
                     float *dkv)
{
    const lc_cp_config *c = &cp->cfg;
    size_t rq = (size_t)c->hq * c->d, rk = (size_t)c->hkv * c->d;
    lc_cp_clock t = lc_cp__tic();
    memset(dkv, 0, 2 * cp->kv_elems * sizeof(float));
    seg g[4];
    int n = segments(cp, g), rc = LC_OK;
    for (int i = 0; i < n && !rc; i++) {
        lc_attn_desc a;
        if (!pair_desc(cp, base, blk, k_pos, &g[i], &a)) continue;
        size_t qo = g[i].q0 * rq, ko = g[i].k0 * rk;
        rc = cp->attn->bwd_block(&a, (const uint8_t *)q + qo * cp->es, blk + cp->fmt.k + ko * cp->es,
                                 blk + cp->fmt.v + ko * cp->es, (const uint8_t *)dout + qo * cp->es,
                                 lse + (size_t)g[i].q0 * c->hq, cp->delta + (size_t)g[i].q0 * c->hq,
                                 dq + qo, dkv + ko, dkv + cp->kv_elems + ko, NULL);
    }
    lc_cp__toc_compute(cp, t);
    return rc ? lc_cp__fail(cp, rc, "backward block kernel: %s", cp->attn->last_error()) : LC_OK;
}

void lc_cp__acc_add(float *acc, const float *in, size_t n)
{
    for (size_t i = 0; i < n; i++) acc[i] = lc_dkv_add(in[i], acc[i]);
}

void lc_cp__acc_out(const lc_cp *cp, const float *acc, float *dk, float *dv)
{
    size_t n = (size_t)cp->n_real_of[cp->me] * cp->cfg.hkv * cp->cfg.d * sizeof(float);
    if (n) {
        memcpy(dk, acc, n);
        memcpy(dv, acc + cp->kv_elems, n);
    }
}

/* Copies my real rows into my home block (unless the caller wrote them there already) and
 * keeps the padding finite and masked. */
static void stage(lc_cp *cp, const void *k, const void *v, const int32_t *doc)
{
    lc_cp_clock c = lc_cp__tic();
    size_t row = (size_t)cp->cfg.hkv * cp->cfg.d * cp->es, nr = (size_t)cp->n_real_of[cp->me];
    size_t pad = (size_t)cp->n_pad - nr;
    uint8_t *hk = cp->home + cp->fmt.k, *hv = cp->home + cp->fmt.v;
    if (nr && k != hk) memcpy(hk, k, nr * row);
    if (nr && v != hv) memcpy(hv, v, nr * row);
    if (pad) {
        memset(hk + nr * row, 0, pad * row);
        memset(hv + nr * row, 0, pad * row);
    }
    if ((cp->cfg.mask & LC_MASK_DOC) && nr) memcpy(cp->home + cp->fmt.doc, doc, nr * sizeof(int32_t));
    /* the positions travel with the block: a mask-balanced plan deals them per sequence */
    memcpy(cp->home + cp->fmt.pos, cp->pos_of + (size_t)cp->me * cp->n_pad, sizeof(int32_t) * cp->n_pad);
    cp->st.stage_cpu_s += lc_cp__cpu() - c.cpu;
}

/* The lowering this call uses, from the runtime's one policy: the ring may read its
 * neighbours' blocks in place. One PE moves nothing and the all-gather has its own
 * collectives: both keep AUTO. */
static lc_lowering lowering_of(const lc_cp *cp, const char **why)
{
    *why = cp->P == 1 ? "one PE: nothing travels" : "the all-gather's collectives";
    if (cp->P == 1 || cp->cfg.plan.algo == LC_CP_ALLGATHER) return LC_LOWER_AUTO;
    return lc_lowering_resolve(cp->team, cp->cfg.plan.lowering, 1, NULL, 0, why);
}

/* With LONGCTX_DEBUG set (and not 0), PE 0 logs each change of the lowering its plan
 * resolves to; what was logged last belongs to the plan, so plans do not mute each other. */
static void log_choice(lc_cp *cp, lc_lowering l, const char *why)
{
    int used = cp->cfg.plan.algo == LC_CP_ALLGATHER ? -1 : (int)l;
    if (cp->me == 0 && lc_world_debug(cp->w) &&
        (used != cp->logged_used || cp->logged_req != (int)cp->cfg.plan.lowering + 1))
        fprintf(stderr, "longctx cp: %s, lowering %s -> %s (%s)\n",
                lc_cp_algo_name(cp->cfg.plan.algo), lc_lowering_name(cp->cfg.plan.lowering),
                used < 0 ? "allgather" : lc_lowering_name(l), why);
    cp->logged_used = used;
    cp->logged_req = (int)cp->cfg.plan.lowering + 1;
}

static int check_args(lc_cp *cp, const char *fn, const void *const *p, const char *const *names, int n,
                      const int32_t *doc)
{
    /* The members are entering the same collective call: from here on any error of mine
     * aborts the world with its reason, or they would wait for me until the deadline. */
    cp->comm_started = 1;
    if (cp->n_real_of[cp->me] > 0) {
        for (int i = 0; i < n; i++)
            if (!p[i]) return lc_cp__fail(cp, LC_ERR_ARG, "%s: %s is NULL", fn, names[i]);
        if ((cp->cfg.mask & LC_MASK_DOC) && !doc)
            return lc_cp__fail(cp, LC_ERR_ARG, "%s: the mask has LC_MASK_DOC but doc is NULL", fn);
    }
    return LC_OK;
}

static int prologue(lc_cp *cp, lc_lowering l, const char *why, const void *k, const void *v,
                    const int32_t *doc)
{
    cp->st.calls++;
    log_choice(cp, l, why);
    int rc = lc_cp__zc_wait_free(cp);
    if (rc) return rc;
    stage(cp, k, v, doc);
    return l == LC_LOWER_ZERO_COPY ? lc_cp__zc_publish(cp) : LC_OK;
}

int lc_cp_forward_ex(lc_cp *cp, const void *q, const void *k, const void *v, const int32_t *doc,
                     void *out, float *out_f32, float *lse)
{
    if (!cp) return lc_cp__no_plan("lc_cp_forward");
    const void *p[] = {q, k, v, out_f32 ? (const void *)out_f32 : out, lse};
    const char *names[] = {"q", "k", "v", "out", "lse"};
    int rc = check_args(cp, "lc_cp_forward", p, names, 5, doc);
    if (rc) return rc;
    if (cp->uly) {
        cp->st.calls++;
        float *o = out_f32 ? out_f32 : cp->o32;
        if ((rc = lc_cp__uly_fwd(cp, q, k, v, doc, o, lse))) return rc;
        lc_attn_desc base = lc_cp__desc(cp, doc, NULL, NULL);
        if (out && base.sq && cp->attn->finish(&base, o, out, cp->cfg.dtype, NULL))
            return lc_cp__fail(cp, LC_ERR_ARG, "lc_cp_forward: %s", cp->attn->last_error());
        return LC_OK;
    }
    const char *why;
    lc_lowering l = lowering_of(cp, &why);
    if ((rc = prologue(cp, l, why, k, v, doc))) return rc;
    lc_attn_desc base = lc_cp__desc(cp, doc, NULL, NULL);
    /* The caller's fp32 output doubles as the forward state: no copy. */
    float *o = out_f32 ? out_f32 : cp->o32;
    (void)cp->attn->init(&base, o, lse, NULL);
    if (cp->P > 1 && cp->cfg.plan.algo == LC_CP_ALLGATHER) rc = lc_cp__ag_fwd(cp, &base, q, o, lse);
    else if (l == LC_LOWER_ZERO_COPY) rc = lc_cp__zc_fwd(cp, &base, q, o, lse);
    else rc = lc_cp__ring_fwd(cp, &base, q, o, lse, l, l == LC_LOWER_COMPUTE_ONLY);
    if (rc) return rc;
    if (out && cp->attn->finish(&base, o, out, cp->cfg.dtype, NULL))
        return lc_cp__fail(cp, LC_ERR_ARG, "lc_cp_forward: %s", cp->attn->last_error());
    return LC_OK;
}

int lc_cp_forward(lc_cp *cp, const void *q, const void *k, const void *v, const int32_t *doc,
                  void *out, float *lse)
{
    return lc_cp_forward_ex(cp, q, k, v, doc, out, NULL, lse);
}

int lc_cp_backward_ex(lc_cp *cp, const void *q, const void *k, const void *v, const int32_t *doc,
                      const void *out, const float *out_f32, const float *lse, const void *dout,
                      float *dq, float *dk, float *dv)
{
    if (!cp) return lc_cp__no_plan("lc_cp_backward");
    const void *p[] = {q, k, v, out_f32 ? (const void *)out_f32 : out, lse, dout, dq, dk, dv};
    const char *names[] = {"q", "k", "v", "out", "lse", "dout", "dq", "dk", "dv"};
    int rc = check_args(cp, "lc_cp_backward", p, names, 9, doc);
    if (rc) return rc;
    const char *why = "";
    lc_lowering l = cp->uly ? LC_LOWER_AUTO : lowering_of(cp, &why);
    if (!cp->uly && (rc = prologue(cp, l, why, k, v, doc))) return rc;
    lc_attn_desc base = lc_cp__desc(cp, doc, NULL, NULL);
    size_t nq = (size_t)base.sq * base.hq * base.d;
    const float *o32 = out_f32 ? out_f32 : out;
    if (!out_f32 && cp->cfg.dtype == LC_DT_BF16) {
        for (size_t i = 0; i < nq; i++) cp->o32[i] = lc_bf16_to_f32(((const lc_bf16 *)out)[i]);
        o32 = cp->o32;
    }
    /* D = rowsum(dO * O) per row and head; an inner plan gets it from its outer plan. */
    if (cp->delta_given) cp->delta_given = 0;
    else if (nq && cp->attn->bwd_prep(&base, o32, dout, cp->delta, NULL))
        return lc_cp__fail(cp, LC_ERR_ARG, "lc_cp_backward: %s", cp->attn->last_error());
    if (cp->uly) {
        cp->st.calls++;
        return lc_cp__uly_bwd(cp, q, k, v, doc, lse, dout, dq, dk, dv);
    }
    if (nq) memset(dq, 0, nq * sizeof(float));
    if (cp->P > 1 && cp->cfg.plan.algo == LC_CP_ALLGATHER) return lc_cp__ag_bwd(cp, &base, q, dout, lse, dq, dk, dv);
    if (l == LC_LOWER_ZERO_COPY) return lc_cp__zc_bwd(cp, &base, q, dout, lse, dq, dk, dv);
    return lc_cp__ring_bwd(cp, &base, q, dout, lse, dq, dk, dv, l, l == LC_LOWER_COMPUTE_ONLY);
}

int lc_cp_backward(lc_cp *cp, const void *q, const void *k, const void *v, const int32_t *doc,
                   const void *out, const float *lse, const void *dout, float *dq, float *dk,
                   float *dv)
{
    return lc_cp_backward_ex(cp, q, k, v, doc, out, NULL, lse, dout, dq, dk, dv);
}
