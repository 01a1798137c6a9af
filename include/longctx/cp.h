/* longctx context-parallel attention over a team (ring, all-gather, Ulysses and hybrid).
 *
 * The global sequence of S tokens is sharded over the P members of a team by a layout.
 * Every layout pads S internally to a multiple of the chunking (P, or 2P for zigzag); the
 * padded tokens always sit at the END of a PE's local array, so callers pass only their
 * real rows: lc_cp_local_rows() of them (it may differ by one chunk between PEs). Padded
 * keys travel with position -1 and are never attended.
 *
 * Tensors per PE (row-major, like attn.h): q, out [rows, hq, d]; k, v [rows, hkv, d] in the
 * plan's dtype; doc [rows] int32 (only with LC_MASK_DOC); lse [rows, hq] fp32;
 * dq [rows, hq, d], dk and dv [rows, hkv, d] in fp32 (gradients are never rounded).
 *
 * Every call that communicates is collective over the plan's team and must be made by all
 * members in the same order with the same algorithm and lowering. Errors return lc_status
 * codes with a message in lc_cp_last_error(); a dead peer surfaces as LC_ERR_ABORT naming it.
 */
#ifndef LONGCTX_CP_H
#define LONGCTX_CP_H

#include <stddef.h>
#include <stdint.h>

#include "longctx/attn.h"
#include "longctx/symm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    LC_CP_CONTIGUOUS = 0, /* PE r holds global rows [r*n, (r+1)*n) */
    LC_CP_ZIGZAG = 1,     /* 2P chunks; PE r holds chunks r and 2P-1-r (causal balance) */
    LC_CP_STRIPED = 2     /* token t lives on PE t mod P */
} lc_cp_layout;

/* How tokens are dealt to PEs: by the layout, equal token counts (zigzag balances a plain
 * causal mask), or by the real mask's work per 64-token chunk, dealt again for every sequence
 * (lc_cp_balance_step; the same S/P tokens per PE). */
typedef enum { LC_CP_BALANCE_TOKENS = 0, LC_CP_BALANCE_MASK = 1 } lc_cp_balance;

typedef enum {
    LC_CP_RING = 0,      /* KV blocks travel one hop per step */
    LC_CP_ALLGATHER = 1, /* the Llama 3 choice: all-gather KV, reduce-scatter dK/dV */
    LC_CP_ULYSSES = 2,   /* DeepSpeed Ulysses: all-to-all from sequence- to head-sharded Q, K, V,
                            attention over the whole sequence, all-to-all back */
    LC_CP_HYBRID = 3     /* USP / LoongTrain: Ulysses over plan.ulysses neighbouring PEs, the ring
                            over the cp / ulysses groups */
} lc_cp_algo;

/* ---- the parallel plan: how a training step is split over the PEs ----
 * Built once (lc_plan_init, then the fields, then lc_plan_validate) and held by reference
 * (const lc_plan *) by the trainer and the model; the model's CP attention is made from it.
 * Its messages name the train command's flags (--seq, --cp, ...), which set the same fields. */
typedef struct {
    int dp, cp, tp;        /* the mesh: dp x cp x tp PEs */
    int order[3];          /* mesh axes innermost first: 0 tp, 1 cp, 2 dp (default tp,cp,dp) */
    int sp;                /* sequence parallelism inside the TP team (needs tp >= 2) */
    int64_t seq_len;       /* global tokens per sequence */
    lc_cp_layout layout;
    lc_cp_algo algo;
    int ulysses;           /* hybrid: the Ulysses degree U (divides cp; 0 or 1 with the other
                              algorithms, cp with ulysses: the whole team is one group) */
    lc_lowering lowering;  /* symm.h; AUTO: the runtime's policy (lc_lowering_resolve); for
                              ulysses and hybrid it lowers the all-to-all and the ring alike */
    lc_cp_balance balance; /* MASK: ring and all-gather, seq_len a multiple of 64 x cp */
} lc_plan;

/* Defaults: one PE (1 x 1 x 1, order tp,cp,dp), zigzag ring, AUTO lowering, seq_len 0 (unset). */
void lc_plan_init(lc_plan *p);
/* The one rule for a sequence shape: 0 when seq_len tokens under layout over cp PEs give every
 * PE at least one real token (and zigzag its 2 x cp chunks); 1 when the shape is valid but
 * some PE would hold no token (lc_cp accepts that, the model does not); LC_ERR_ARG when it is
 * not a shape at all (seq_len < 1, an unknown layout, positions past int32). why (may be
 * NULL) gets the reason whenever the result is not 0. */
int lc_plan_fits(lc_cp_layout layout, int64_t seq_len, int cp, char *why, size_t len);
/* Checks the whole plan: the mesh against n_pes (<= 0: not checked), its order, sp, that
 * the algorithm and lowering are known, the Ulysses degree divides cp, and lc_plan_fits == 0
 * over p->cp PEs. Returns 0, or LC_ERR_ARG with the reason in err. */
int lc_plan_validate(const lc_plan *p, int n_pes, char *err, size_t len);
/* The mesh part of it: dp, cp, tp >= 1 and dp x cp x tp = n_pes (<= 0: not checked). */
int lc_plan_check_mesh(int n_pes, int dp, int cp, int tp, char *err, size_t len);
/* "tp,cp,dp" (NULL: that default) -> order[3] (0 tp, 1 cp, 2 dp), innermost first. */
int lc_plan_parse_order(const char *s, int order[3], char *err, size_t len);
/* The Ulysses degree the plan uses: cp for ulysses, plan.ulysses for hybrid, 1 otherwise. */
int lc_plan_ulysses_degree(const lc_plan *p);
/* Whether hq query heads and hkv KV heads (per TP rank) split over a Ulysses group of u PEs:
 * u must divide hq, and hkv must divide by u (each PE takes hkv / u KV heads) or divide u
 * (each KV head is replicated on u / hkv PEs, their dK/dV summed). Unequal head counts per
 * PE would leave PEs with different work and GQA groups cut in two, so anything else is
 * refused (0 when they split, else LC_ERR_ARG naming the numbers in err). */
int lc_plan_heads_split(int hq, int hkv, int u, char *err, size_t len);

typedef struct {
    lc_plan plan;       /* read here: seq_len (>= 1, any value: a PE may hold no token),
                           layout, algo, lowering; cp is 0 or the team's size; dp, tp, sp and
                           order are the mesh's, not read. A model's config embeds its plan */
    int hq, hkv, d;     /* hq a multiple of hkv */
    lc_dtype dtype;     /* q, k, v, out, dout */
    unsigned mask;      /* LC_MASK_* flags */
    int64_t window;     /* for LC_MASK_WINDOW, >= 1 */
    float scale;        /* 0: 1/sqrt(d) */
    int threads;        /* kernel threads per PE (<= 0: 1) */
    lc_attn_impl impl;  /* kernel implementation (0: best) */
} lc_cp_config;

typedef struct lc_cp lc_cp;

/* Collective over team: validates cfg (same on every member) and allocates the symmetric
 * ring buffers once. */
int lc_cp_create(lc_team *team, const lc_cp_config *cfg, lc_cp **out);
int lc_cp_destroy(lc_cp *cp); /* collective */
const char *lc_cp_last_error(const lc_cp *cp); /* NULL: the last lc_cp_create failure */
const lc_cp_config *lc_cp_get_config(const lc_cp *cp);
/* Switches algorithm and lowering for later calls (call on every member with the same values).
 * Ring and all-gather switch freely; a plan created for ulysses or hybrid (whose teams and
 * buffers are made at create) changes only its lowering. */
int lc_cp_set_algo(lc_cp *cp, lc_cp_algo algo, lc_lowering lowering);

/* ---- layouts (pure functions of the plan; usable on any PE's behalf) ---- */
int lc_cp_local_rows(const lc_cp *cp, int pe);   /* real rows PE pe holds */
int lc_cp_padded_rows(const lc_cp *cp);          /* rows per PE including padding */
/* Global position of local row i of PE pe, or -1 when it is padding. */
int32_t lc_cp_global_pos(const lc_cp *cp, int pe, int i);
/* Local row of global token g and its PE (*pe). */
int lc_cp_local_index(const lc_cp *cp, int64_t g, int *pe);
/* Copies PE pe's rows (row_bytes each) out of / into a whole-sequence tensor [S, ...]. */
void lc_cp_shard(const lc_cp *cp, int pe, const void *global, size_t row_bytes, void *local);
void lc_cp_unshard(const lc_cp *cp, int pe, const void *local, size_t row_bytes, void *global);
/* The same maps without a plan. pos gets n_pad entries (-1 for padding); returns the real
 * row count, or -1 on bad arguments. */
int lc_cp_layout_positions(lc_cp_layout layout, int64_t seq_len, int n_pes, int pe, int32_t *pos,
                           int *n_pad);
const char *lc_cp_layout_name(lc_cp_layout l);
int lc_cp_layout_parse(const char *s, lc_cp_layout *out);
/* "ring", "allgather", "ulysses", "hybrid": the --cp-algo words */
const char *lc_cp_algo_name(lc_cp_algo a);
int lc_cp_algo_parse(const char *s, lc_cp_algo *out);

/* ---- attention ---- */
/* out (dtype) and lse (fp32) for my rows over all keys of the sequence. doc may be NULL
 * unless the mask has LC_MASK_DOC. */
int lc_cp_forward(lc_cp *cp, const void *q, const void *k, const void *v, const int32_t *doc,
                  void *out, float *lse);
/* Gradients from the forward's out and lse; dq, dk, dv (fp32) are overwritten. */
int lc_cp_backward(lc_cp *cp, const void *q, const void *k, const void *v, const int32_t *doc,
                   const void *out, const float *lse, const void *dout, float *dq, float *dk,
                   float *dv);

/* The same with the output also in fp32, for bf16 training: out_f32 ([rows, hq, d] fp32,
 * optional) gets the forward's output before it is rounded to the plan's dtype, and the
 * backward computes its row sums D = rowsum(dO * O) from it instead of the rounded out
 * (in bf16 that moves dQ/dK from ~5e-4 to ~1e-6 relative error). With out_f32 given, out
 * may be NULL in either call. Collective like lc_cp_forward / lc_cp_backward. */
int lc_cp_forward_ex(lc_cp *cp, const void *q, const void *k, const void *v, const int32_t *doc,
                     void *out, float *out_f32, float *lse);
int lc_cp_backward_ex(lc_cp *cp, const void *q, const void *k, const void *v, const int32_t *doc,
                      const void *out, const float *out_f32, const float *lse, const void *dout,
                      float *dq, float *dk, float *dv);

/* Where k and v would be staged for the ring (symmetric memory, [n_pad, hkv, d] each):
 * a caller that writes its K and V there and passes these pointers saves the staging copy. */
int lc_cp_kv_buffers(lc_cp *cp, void **k, void **v);

/* ---- balance by the real mask ----
 * The work model: seq_len in 64-token chunks (the kernels' tile edge); work[c] (ceil(S/64)
 * entries) gets the number of key chunks whose tiles query chunk c cannot skip under mask
 * (LC_MASK_*), window and doc ids (doc [seq_len], only with LC_MASK_DOC). LC_ERR_ARG on bad
 * arguments. */
int lc_cp_chunk_work(int64_t seq_len, unsigned mask, int64_t window, const int32_t *doc, double *work);
/* max / mean of the PEs' work when PE r holds the positions pos [r][n_pad] (-1 padding; any
 * layout): its 64-row tiles against every key tile of every PE, a pair counted unless the
 * kernels' tile classification skips it. load [P] and total (optional) get each PE's work and
 * the sum; scratch holds lc_cp_work_scratch(P, n_pad) bytes. */
double lc_cp_work_imbalance(unsigned mask, int64_t window, const int32_t *doc, int P, int n_pad, const int32_t *pos,
                            void *scratch, double *load, double *total);
size_t lc_cp_work_scratch(int P, int n_pad);
/* The mask balance's deal: seq_len a multiple of 64 x P; pos gets [P][seq_len / P] ascending
 * positions; scratch holds 2 x ceil(S/64) + P ints, load P doubles (each PE's work). */
int lc_cp_balance_assign(const double *work, int64_t seq_len, int P, int32_t *pos, int *scratch, double *load);
/* Measures the work per PE of this sequence and, with plan.balance = MASK, deals the chunks
 * again; call before sharding the sequence (the layout maps follow it). Not collective: every
 * member passes the same doc ids (NULL without LC_MASK_DOC) and derives the same deal. Allocates
 * nothing. A Ulysses plan reports its groups' ring. */
int lc_cp_balance_step(lc_cp *cp, const int32_t *doc);
/* The last lc_cp_balance_step's max / mean PE work (0 before the first). */
double lc_cp_imbalance(const lc_cp *cp);
const char *lc_cp_balance_name(lc_cp_balance b); /* "tokens", "mask" */
int lc_cp_balance_parse(const char *s, lc_cp_balance *out);

/* Per-PE counters since the last reset, for benchmarks. CPU times are this thread's. */
typedef struct {
    double compute_cpu_s, compute_wall_s; /* inside the block kernels */
    double comm_cpu_s, comm_wall_s;       /* inside permute start/done, signal waits, collectives */
    double stage_cpu_s;                   /* copying my K/V into symmetric memory */
    long blocks_run, blocks_skipped;      /* KV blocks the mask classification kept / dropped */
    long calls;
    double bytes_sent;                    /* bytes this PE sent to other PEs (or they read in place) */
} lc_cp_stats;
void lc_cp_get_stats(const lc_cp *cp, lc_cp_stats *st);
/* Bytes of memory the plan holds for its steady state: symmetric slots, all-to-all and
 * all-gather buffers, output and dK/dV accumulators, the kernel workspace (an inner ring's
 * included). The caller's tensors are not counted. */
size_t lc_cp_mem_bytes(const lc_cp *cp);
/* What lc_cp_mem_bytes will report (the largest over the P PEs) for a plan of cfg over P PEs,
 * before any PE exists: for planning (longctx plan). 0 on bad arguments. */
size_t lc_cp_mem_estimate(const lc_cp_config *cfg, int P);
void lc_cp_reset_stats(lc_cp *cp);

#ifdef __cplusplus
}
#endif
#endif
