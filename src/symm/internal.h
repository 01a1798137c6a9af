/* Private layout and helpers of the symmetric-memory runtime. */
#ifndef LONGCTX_SYMM_INTERNAL_H
#define LONGCTX_SYMM_INTERNAL_H

#include <stdatomic.h>
#include <stdarg.h>
#include "common/settings.h"
#include "longctx/symm.h"

#define LC_MAX_PES 1024
#define LC_TEAM_SLOTS 16     /* teams a PE can be a member of at once */
#define LC_PERM_CH 4         /* permutes outstanding per team */
#define LC_BAR_ROUNDS 11     /* dissemination rounds: enough for LC_MAX_PES */
#define LC_FIFO_SLOTS 8      /* two-sided staging FIFO, shaped like NCCL's p2p FIFO */
#define LC_FIFO_CHUNK (128u * 1024u)
#define LC_SCRATCH_BYTES (8u << 20) /* per-PE landing zone for collectives */
#define LC_CACHELINE 64
#define LC_SHM_MAGIC 0x6c6f6e67637478ULL /* "longctx" */

typedef struct { _Alignas(LC_CACHELINE) _Atomic uint64_t v; } lc_padded_u64;

/* Synchronisation words of one team slot on one PE. Peers update them with atomics; each
 * counter only ever grows, so a PE can compare against its own running expectation. */
typedef struct {
    lc_padded_u64 bar[LC_BAR_ROUNDS]; /* dissemination barrier, one counter per round */
    lc_padded_u64 rs;                 /* collective phase 1 arrivals (reduce/gather in) */
    lc_padded_u64 ag;                 /* collective phase 2 arrivals (results out) */
    lc_padded_u64 bc_ack[2];          /* broadcast root: receivers done with landing area a */
    struct {
        lc_padded_u64 data;  /* one-sided: the put has landed */
        lc_padded_u64 tail;  /* two-sided: chunks written into my FIFO by the sender */
    } ch[LC_PERM_CH];
    /* credit[c][r]: receiver r (team rank) has entered permute on channel c and its dst is
     * free. Indexed by receiver so that credits of different ops cannot be confused. */
    _Atomic uint64_t credit[LC_PERM_CH][LC_MAX_PES];
    /* fifo_ack[c][r]: chunks I sent that receiver r copied out of its FIFO on channel c. */
    _Atomic uint64_t fifo_ack[LC_PERM_CH][LC_MAX_PES];
} lc_slot_sync;

typedef struct {
    _Alignas(LC_CACHELINE) _Atomic uint32_t doorbell; /* futex word: bumped on every update */
    _Alignas(LC_CACHELINE) _Atomic uint32_t sleepers;
    lc_slot_sync slot[LC_TEAM_SLOTS];
} lc_pe_ctrl;

enum { LC_PE_NONE = 0, LC_PE_RUNNING = 1, LC_PE_FINALIZED = 2, LC_PE_DEAD = 3 };

typedef struct {
    _Atomic int32_t pid;
    _Atomic uint32_t state;
    _Atomic uint64_t heap_req;
    /* CLOCK_MONOTONIC (ns, one clock for the whole host) of this PE's last heartbeat: a
     * thread of the PE bumps it while the process runs, so a waiting peer can tell a
     * stopped or wedged process (no beat) from a busy one (beats while computing). */
    _Atomic uint64_t beat_ns;
} lc_pe_info;

typedef struct {
    uint64_t magic;
    uint32_t n_pes;
    uint32_t pad;
    uint64_t heap_stride, ctrl_stride, ctrl_off, heap_off, total;
    _Atomic uint32_t abort_state; /* 0 fine, 1 being written, 2 aborted */
    int32_t abort_pe;
    char abort_reason[512];
    lc_pe_info pe[]; /* n_pes */
} lc_shm_header;

struct lc__perm;
struct lc_coll_ops;
/* Waits take a predicate over my own memory (see wait.c) and a describer for the timeout. */
typedef int (*lc_pred_fn)(void *ctx);
typedef void (*lc_describe_fn)(void *ctx, char *buf, size_t len);

/* The transport seam. Every byte and every signal the runtime (teams, collectives, permutes,
 * the one-sided API) moves between PEs goes through these, with NVSHMEM's ordering rules, so
 * that another transport (MPI RMA, NVSHMEM) plugs in here and nowhere else.
 * Remote addresses are given as MY address of a symmetric object, in my heap or in my control
 * region (same layout on every PE), plus the target PE; the backend finds PE pe's copy.
 * Signal words are only ever waited on by their owner, in its own memory.
 *   put        copy bytes to pe; complete at quiet; no order with anything else
 *   get        copy bytes from pe; complete on return
 *   put_signal put, then an atomic SET/ADD of sig at pe, seen only after the put's data (it
 *              orders that put only, nothing issued before it)
 *   signal_op  atomic SET/ADD of a word at pe; orders nothing before it: puts (and stores
 *              through ptr) that must be seen first need a fence (same PE) or quiet
 *   fence      my earlier puts, signals and ptr stores to each PE are seen before my later ones
 *   quiet      my earlier puts, signals and ptr stores are complete everywhere
 *   wait       until my word *sig cmp value holds (bounded; the backend makes progress)
 *   wait_pred  until pred(ctx) holds, where pred reads my own words (and may issue puts)
 *   ptr        a load/store pointer to pe's copy, or NULL when pe is not load/store reachable */
typedef struct {
    const char *name;
    int (*put)(lc_world *w, void *dst, const void *src, size_t bytes, int pe);
    int (*get)(lc_world *w, void *dst, const void *src, size_t bytes, int pe);
    int (*put_signal)(lc_world *w, void *dst, const void *src, size_t bytes, _Atomic uint64_t *sig,
                      uint64_t value, lc_sig_op op, int pe);
    int (*signal_op)(lc_world *w, _Atomic uint64_t *sig, uint64_t value, lc_sig_op op, int pe);
    int (*wait)(lc_world *w, _Atomic uint64_t *sig, lc_cmp cmp, uint64_t value, const char *op,
                const char *what, uint64_t *observed);
    int (*wait_pred)(lc_world *w, lc_pred_fn pred, void *ctx, const char *op, lc_describe_fn describe);
    void (*fence)(lc_world *w);
    void (*quiet)(lc_world *w);
    void *(*ptr)(lc_world *w, const void *sym, int pe);
    /* Optional; NULL in shm, where one header is shared by all PEs and waits sleep on futexes.
     *   detach      release the backend's memory (world init failure and finalize)
     *   pe_info     where PE pe's liveness record can be read, or NULL when it cannot (a peer
     *               on another host: the MPI launcher reports its death)
     *   abort_peers tell every other PE about the abort recorded in my header
     *   progress    drive the transport; returns the longest a wait may sleep on its doorbell
     *               (remote updates do not ring it)
     *   team_init/team_free  the backend's part of a team (an MPI communicator)
     *   perm_start/perm_done a two-sided permute lowered on the transport's own messages
     *   coll        collectives lowered on the transport's own */
    void (*detach)(lc_world *w);
    lc_pe_info *(*pe_info)(lc_world *w, int pe);
    void (*abort_peers)(lc_world *w);
    double (*progress)(lc_world *w);
    int (*team_init)(lc_team *t);
    void (*team_free)(lc_team *t);
    int (*perm_start)(struct lc__perm *r);
    int (*perm_done)(struct lc__perm *r, const char *op);
    const struct lc_coll_ops *coll;
} lc_backend;

/* Collectives a backend lowers itself (same contracts as the public calls; arguments are
 * checked before). Reductions must add in team-rank order so that every member and every
 * backend gets the same bits. */
typedef struct lc_coll_ops {
    int (*barrier)(lc_team *t, const char *op);
    int (*broadcast)(lc_team *t, void *dst, const void *src, size_t bytes, int root);
    int (*allgather)(lc_team *t, void *dst, const void *src, size_t bytes_per_pe);
    int (*alltoall)(lc_team *t, void *dst, const void *src, size_t bytes_per_pe);
    /* kind: 0 sum f32, 1 sum f64, 2 max f64; scatter: reduce-scatter (count per PE) */
    int (*reduce)(lc_team *t, int kind, int scatter, void *dst, const void *src, size_t count,
                  const char *op);
} lc_coll_ops;

/* The runtime's view of an lc_permute_req (the caller's opaque storage). may_alias: the
 * caller's object has the public type. */
typedef struct __attribute__((may_alias)) lc__perm {
    uint32_t magic;  /* LC__PERM_ACTIVE between start and done */
    int channel;
    lc_team *team;
    int send_to;     /* team rank or -1 */
    int recv_from;   /* team rank or -1 */
    const void *src;
    void *dst;
    size_t bytes;
    lc_lowering lowering; /* resolved: ONE_SIDED or TWO_SIDED */
    int sent;        /* one-sided: the put has been issued; two-sided: every chunk is */
    int have_credit;
    int error;       /* a transport error seen while driving the team's requests */
    int native;      /* two-sided on the backend's own messages (perm_start/perm_done) */
    uint64_t epoch;
    size_t tx_chunks, rx_chunks, n_chunks; /* two-sided progress */
    uint64_t tx_base, rx_base;             /* two-sided FIFO positions at the start */
} lc__perm;
#define LC__PERM_ACTIVE 0x7065726du /* "perm" */
_Static_assert(sizeof(lc__perm) <= sizeof(lc_permute_req), "lc_permute_req storage too small");
_Static_assert(_Alignof(lc__perm) <= _Alignof(lc_permute_req), "lc_permute_req storage misaligned");

/* A heap range. Used blocks remember the team they were allocated on (its world PEs), so
 * that a free on another team is refused instead of desynchronising the allocators. */
typedef struct lc_heap_block {
    size_t off, size;
    int t_start, t_stride, t_size;
    struct lc_heap_block *next;
} lc_heap_block;

struct lc_team {
    lc_world *w;
    int start, stride, size; /* members: world PEs start + i*stride */
    int me;                  /* my team rank */
    int slot;
    uint64_t bar_expect[LC_BAR_ROUNDS]; /* per round: arrivals I have consumed */
    uint64_t rs_expect, ag_expect;
    uint64_t bc_ack_expect[2]; /* per area: broadcast acks consumed while I was the root */
    size_t logged_bytes;     /* last permute decision written to the debug log */
    int logged_lowering;
    void *be_team;           /* the backend's part (an MPI communicator), or NULL */
    uint64_t perm_seq;       /* permutes started (all members agree) */
    uint64_t alloc_seq;      /* symmetric allocations on this team (all members agree) */
    uint64_t data_expect[LC_PERM_CH];
    uint64_t *credit_expect; /* [LC_PERM_CH][size] */
    uint64_t *fifo_sent;     /* [LC_PERM_CH][size]: chunks I put into rank r's FIFO */
    uint64_t fifo_taken[LC_PERM_CH]; /* chunks I copied out of my FIFO */
    int ch_busy[LC_PERM_CH];
    lc__perm *in_flight[LC_PERM_CH]; /* outstanding requests, for two-sided progress */
    int is_world;
    void *scratch;           /* collectives' host scratch, grown once to the largest need */
    size_t scratch_bytes;
};

/* Host scratch of at least `bytes` owned by the team: allocated on first use and grown only
 * when a larger call comes, so a steady state of same-sized collectives allocates nothing. */
void *lc__team_scratch(lc_team *t, size_t bytes);

struct lc_world {
    int me, n;
    double timeout_s;   /* explicit bound on any wait; INFINITY: none */
    double heartbeat_s; /* a RUNNING peer silent this long is declared gone; INFINITY: never */
    double next_watch;  /* when a wait next looks at the peers' heartbeats */
    double spin_us;     /* microseconds a wait spins before it sleeps */
    int cores;          /* CPUs this PE may use for its own threads (lc_cores_per_pe) */
    struct lc_heartbeat *hb;
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
    const lc_backend *be;
    void *be_state;     /* the backend's own (MPI windows, communicators) */
    /* ctrl0/heap0 + pe * stride is PE pe's region in shm's single mapping; other backends
     * only ever form my own (pe = me) address from them, and set them so that it holds. */
    uint8_t *map;
    size_t map_bytes;
    lc_shm_header *hdr;
    uint8_t *ctrl0, *heap0;
    size_t ctrl_stride, heap_stride, heap_bytes;
    lc_heap_block *free_list;
    lc_heap_block *used_list;
    uint32_t slots_used;
    lc_team *world_team;
    int debug;
    lc_lowering permute_override; /* from $LONGCTX_PERMUTE, AUTO when unset */
    char err[1024];
};

/* ---- util.c ---- */
int lc__err(lc_world *w, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
double lc__now(void);
void lc__debug(lc_world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line through the world's log sink (stderr unless lc_world_opts.log). */
void lc__log(lc_world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lc__vlog(lc_world *w, const char *prefix, const char *fmt, va_list ap);
/* An error on this PE inside a collective call: records it like lc__err and aborts the
 * world with it, so that the peers waiting for this PE fail at once with the reason. */
int lc__coll_err(lc_world *w, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *lc__cmp_str(lc_cmp c);
int lc__cmp_holds(uint64_t v, lc_cmp c, uint64_t value);

/* ---- shm.c ---- */
extern const lc_backend lc__shm_backend;
size_t lc__ctrl_stride(void);
size_t lc__segment_bytes(int n, size_t heap_bytes, size_t *ctrl_off, size_t *heap_off);
/* The largest heap per PE a segment of n PEs may have (no wrap, fits the address space). */
size_t lc__max_heap(int n);
int lc__shm_attach(lc_world *w, size_t heap_req);
void lc__shm_detach(lc_world *w);
void lc__shm_init_header(void *map, int n, size_t heap_bytes);
static inline lc_pe_ctrl *lc__ctrl(lc_world *w, int pe)
{
    return (lc_pe_ctrl *)(w->ctrl0 + (size_t)pe * w->ctrl_stride);
}
static inline uint8_t *lc__scratch(lc_world *w, int pe)
{
    return w->ctrl0 + (size_t)pe * w->ctrl_stride + ((sizeof(lc_pe_ctrl) + 4095) & ~(size_t)4095);
}
uint8_t *lc__fifo(lc_world *w, int pe, int slot, int ch);
/* Wakes PE pe if it sleeps on its doorbell. */
void lc__ring(lc_world *w, int pe);
/* The same for a control region I reach by load/store. */
void lc__doorbell(lc_pe_ctrl *c);

/* ---- mpi.c (built when LONGCTX_HAVE_MPI) ---- */
int lc__mpi_attach(lc_world *w, size_t heap_req);

/* ---- wait.c ---- */
/* PE pe's liveness record, or NULL when the backend cannot read it (another host). */
lc_pe_info *lc__pe_info(lc_world *w, int pe);
/* Waits until pred(ctx) is true. Spins, then sleeps on my doorbell; ends with
 * LC_ERR_ABORT when the world is aborted and LC_ERR_TIMEOUT at the deadline (which also
 * aborts the world so that no peer hangs on me). describe() writes what was awaited. */
int lc__wait(lc_world *w, lc_pred_fn pred, void *ctx, const char *op, lc_describe_fn describe);
/* Convenience for a single counter: wait until (*sig cmp value). */
int lc__wait_sig(lc_world *w, _Atomic uint64_t *sig, int sig_pe, lc_cmp cmp, uint64_t value,
                 const char *op, const char *what, uint64_t *observed);
int lc__aborted(lc_world *w);
void lc__abort(lc_world *w, int pe, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int lc__abort_error(lc_world *w, const char *op);
/* Heartbeat (wait.c): a thread started once at world init, stopped at finalize. */
int lc__heartbeat_start(lc_world *w);
void lc__heartbeat_stop(lc_world *w);
uint64_t lc__now_ns(void);
/* Checks the peers' heartbeats (rate-limited); aborts the world naming a silent or dead
 * peer and what this PE was doing. Returns nonzero when the world is aborted. */
int lc__watch_peers(lc_world *w, const char *op);

/* ---- team.c ---- */
int lc__team_world_create(lc_world *w);
/* Frees a team without the quiescing barrier (the world team at finalize, failed splits). */
void lc__team_free(lc_team *t);
static inline int lc__team_pe(const lc_team *t, int rank) { return t->start + rank * t->stride; }
static inline lc_slot_sync *lc__sync(lc_team *t, int rank)
{
    return &lc__ctrl(t->w, lc__team_pe(t, rank))->slot[t->slot];
}

/* ---- coll.c ---- */
int lc__barrier(lc_team *t, const char *op);

/* ---- heap.c ---- */
int lc__heap_init(lc_world *w);
void lc__heap_release(lc_world *w);

#endif
