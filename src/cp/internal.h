/* Shared state of a context-parallel plan; private to src/cp. */
#ifndef LONGCTX_CP_INTERNAL_H
#define LONGCTX_CP_INTERNAL_H

#include <stdint.h>
#include <time.h>

#include "cp/core.h"
#include "longctx/cp.h"

/* A travelling KV block is one contiguous symmetric buffer in the core's slot format
 * (lc_cp_slot_fmt, cp/core.h), so one permute moves all the kernel needs. */

/* Signal words of the zero-copy lowering (one symmetric array per PE). */
enum {
    CP_SIG_RD_DONE = 0, /* peers that finished reading my home block (ADD) */
    CP_SIG_TOK = 1,     /* dK/dV hand-offs from my left neighbour (ADD) */
    CP_SIG_READY = 2    /* + owner: the epoch owner's home block was last published at (SET) */
};

typedef struct lc_cp_uly lc_cp_uly;

struct lc_cp {
    lc_team *team;
    lc_world *w;
    int me, P;
    int *world_pe; /* team rank -> world PE */
    lc_cp_config cfg;
    int n_pad;
    int *n_real_of; /* [P] */
    int32_t *pos_of; /* [P][n_pad] global positions of every PE's rows (-1 padding) */
    size_t es, kv_elems; /* element size; n_pad*hkv*d */
    lc_cp_slot_fmt fmt;
    uint8_t *home;     /* symmetric: my own block, never overwritten by peers */
    uint8_t *ring[2];  /* symmetric: the double-buffered receive slots */
    float *acc_in;     /* symmetric: incoming dK|dV accumulator [2*kv_elems] */
    float *tmp[2];     /* local dK|dV of one step, double-buffered for the async send */
    lc_permute_req req[2]; /* ring permutes in flight: KV, dK/dV (the team points at them) */
    uint64_t *sig;     /* symmetric: CP_SIG_* words */
    uint64_t zc_epoch; /* zero-copy publications of my home block so far */
    uint64_t zc_tok;   /* zero-copy hand-offs expected so far */
    float *o32;        /* [n_real, hq, d] fp32 forward state / out in fp32 */
    float *delta;      /* [n_real, hq] */
    uint8_t *gather;   /* all-gather: P blocks (allocated when the plan takes that algorithm) */
    float *a2a;        /* all-gather backward: 2 x P accumulators */
    lc_attn_pool *pool; /* kernel workers (threads > 1), started once */
    void *work;         /* kernel workspace, sized at create for my largest block call */
    size_t work_bytes;
    int logged_used; /* LONGCTX_DEBUG log: the lowering last reported (with logged_req 0: none yet) */
    int logged_req;
    int comm_started;  /* errors after this point abort the world (peers are mid-call) */
    char err[1024];    /* this plan's last message (src/common/err.h) */
    lc_cp_stats st;
    const lc_attn_iface *attn; /* the block kernels (lc_attn_cpu) */
    lc_cp_uly *uly;    /* ulysses / hybrid: the groups, the inner ring and the all-to-all (ulysses.c) */
    int delta_given;   /* the next backward finds delta filled in (the inner plan of ulysses.c) */
    double imbalance;  /* max / mean PE work of the last sequence (lc_cp_balance_step); 0: not measured */
    int balanced_once; /* without doc ids the work is measured (and dealt) once */
    double *bal_work;  /* balance.c's buffers, lc_cp__balance_scratch bytes (P > 1) */
};

typedef struct {
    double wall, cpu;
} lc_cp_clock;

static inline double lc_cp__cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static inline double lc_cp__wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static inline lc_cp_clock lc_cp__tic(void)
{
    lc_cp_clock c = {lc_cp__wall(), lc_cp__cpu()};
    return c;
}
static inline void lc_cp__toc_comm(lc_cp *cp, lc_cp_clock c)
{
    cp->st.comm_wall_s += lc_cp__wall() - c.wall;
    cp->st.comm_cpu_s += lc_cp__cpu() - c.cpu;
}
static inline void lc_cp__toc_compute(lc_cp *cp, lc_cp_clock c)
{
    cp->st.compute_wall_s += lc_cp__wall() - c.wall;
    cp->st.compute_cpu_s += lc_cp__cpu() - c.cpu;
}

/* Records a message (printf-style); returns rc. After communication began it also aborts
 * the world, so peers stop with an error instead of waiting for this PE. */
int lc_cp__fail(lc_cp *cp, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A public call got a NULL plan: records "fn: the plan is NULL" (lc_cp_last_error(NULL)). */
int lc_cp__no_plan(const char *fn);
/* A failed runtime call: the runtime's own message, prefixed by what we were doing. */
int lc_cp__rt_fail(lc_cp *cp, int rc, const char *what, int step);

/* Kernel descriptor for my real Q rows against one block with the given positions / docs. */
lc_attn_desc lc_cp__desc(const lc_cp *cp, const int32_t *q_doc, const int32_t *k_pos,
                         const int32_t *k_doc);
/* Runs the forward / backward kernel on one block unless the mask leaves nothing to do.
 * k_pos overrides the block's own positions (NULL: use them); dkv is the block's [dK | dV]
 * fp32 accumulator. */
int lc_cp__fwd_block(lc_cp *cp, const lc_attn_desc *base, const void *q, const uint8_t *blk,
                     const int32_t *k_pos, float *o, float *lse);
int lc_cp__bwd_block(lc_cp *cp, const lc_attn_desc *base, const void *q, const uint8_t *blk,
                     const int32_t *k_pos, const void *dout, const float *lse, float *dq,
                     float *dkv);
/* acc = in + acc elementwise (the one reduction order every path shares). */
void lc_cp__acc_add(float *acc, const float *in, size_t n);
/* Copies the real rows of an accumulator [dK | dV] into the caller's dk, dv. */
void lc_cp__acc_out(const lc_cp *cp, const float *acc, float *dk, float *dv);

/* The algorithm bodies: loop over the P blocks with o/lse (forward) or dq/tmp (backward)
 * already prepared by cp.c. */
int lc_cp__ring_fwd(lc_cp *cp, const lc_attn_desc *base, const void *q, float *o, float *lse,
                    lc_lowering l, int compute_only);
int lc_cp__ring_bwd(lc_cp *cp, const lc_attn_desc *base, const void *q, const void *dout,
                    const float *lse, float *dq, float *dk, float *dv, lc_lowering l,
                    int compute_only);
int lc_cp__zc_publish(lc_cp *cp);
int lc_cp__zc_wait_free(lc_cp *cp);
int lc_cp__zc_fwd(lc_cp *cp, const lc_attn_desc *base, const void *q, float *o, float *lse);
int lc_cp__zc_bwd(lc_cp *cp, const lc_attn_desc *base, const void *q, const void *dout,
                  const float *lse, float *dq, float *dk, float *dv);
int lc_cp__ag_fwd(lc_cp *cp, const lc_attn_desc *base, const void *q, float *o, float *lse);
int lc_cp__ag_bwd(lc_cp *cp, const lc_attn_desc *base, const void *q, const void *dout,
                  const float *lse, float *dq, float *dk, float *dv);

/* plan.c: the Ulysses degree against the algorithm and cp (messages name the flags). */
int lc_plan__check_ulysses(lc_cp_algo algo, int u, int cp, char *err, size_t len);
int lc_plan__check_balance(lc_cp_balance b, lc_cp_algo algo, int64_t seq_len, int cp, char *err, size_t len);

/* A plan over team whose members' rows have explicit global positions, pos_all [P][n_pad]
 * (-1 padding, at the end of each member's rows); cfg's layout only picks the kernel
 * segmentation. No agreement round: the caller's plan has agreed on everything this is made
 * from (ulysses.c's inner ring). Collective over team. */
int lc_cp__create_mapped(lc_team *team, const lc_cp_config *cfg, int n_pad, const int32_t *pos_all, lc_cp **out);

/* ulysses.c: set-up at create (collective over cp->team), release, and the passes. */
int lc_cp__uly_create(lc_cp *cp);
void lc_cp__uly_destroy(lc_cp *cp);
int lc_cp__uly_fwd(lc_cp *cp, const void *q, const void *k, const void *v, const int32_t *doc, float *o,
                   float *lse);
int lc_cp__uly_bwd(lc_cp *cp, const void *q, const void *k, const void *v, const int32_t *doc,
                   const float *lse, const void *dout, float *dq, float *dk, float *dv);
void lc_cp__uly_stats(const lc_cp *cp, lc_cp_stats *st);
void lc_cp__uly_reset_stats(lc_cp *cp);
size_t lc_cp__uly_mem(const lc_cp *cp);
/* mem.c: the memory of plans not made yet (lc_cp_mem_estimate's parts) */
size_t lc_cp__ring_mem_estimate(const lc_cp_config *c, int P, int n_pad, int nreal, int with_o32);
size_t lc_cp__uly_mem_estimate(const lc_cp_config *c, int P, int n_pad, const int *nreal);
lc_cp *lc_cp__uly_inner(lc_cp *cp);
/* balance.c: the bytes of bal_work for a sequence over P PEs. */
size_t lc_cp__balance_scratch(int64_t seq_len, int P, int n_pad);
int lc_cp__uly_set_lowering(lc_cp *cp, lc_lowering l);

#endif
