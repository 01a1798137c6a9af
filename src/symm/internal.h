/* Private layout and helpers of the symmetric-memory runtime. */
#ifndef LONGCTX_SYMM_INTERNAL_H
#define LONGCTX_SYMM_INTERNAL_H

#include <stdatomic.h>
#include <stdarg.h>
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
    struct {
        lc_padded_u64 data;  /* one-sided: the put has landed */
        lc_padded_u64 tail;  /* two-sided: chunks written into my FIFO by the sender */
        lc_padded_u64 head;  /* two-sided: chunks I copied out */
    } ch[LC_PERM_CH];
    /* credit[c][r]: receiver r (team rank) has entered permute on channel c and its dst is
     * free. Indexed by receiver so that credits of different ops cannot be confused. */
    _Atomic uint64_t credit[LC_PERM_CH][LC_MAX_PES];
} lc_slot_sync;

typedef struct {
    _Alignas(LC_CACHELINE) _Atomic uint32_t doorbell; /* futex word: bumped on every update */
    _Alignas(LC_CACHELINE) _Atomic uint32_t sleepers;
    _Alignas(LC_CACHELINE) uint64_t alloc_check[2][2]; /* [parity] = {seq, bytes} */
    uint64_t split_check[2][2];
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

/* The backend boundary. The runtime's teams, collectives and permutes use only these. */
typedef struct {
    const char *name;
    int (*put)(lc_world *w, void *dst, const void *src, size_t bytes, int pe);
    int (*get)(lc_world *w, void *dst, const void *src, size_t bytes, int pe);
    /* Atomic update of a 64-bit word at pe, ordered after this PE's earlier puts to pe. */
    void (*signal)(lc_world *w, _Atomic uint64_t *remote, uint64_t value, lc_sig_op op, int pe);
    void *(*ptr)(lc_world *w, const void *sym, int pe);
    void (*quiet)(lc_world *w);
} lc_backend;

typedef struct lc_heap_block { size_t off, size; struct lc_heap_block *next; } lc_heap_block;

struct lc_team {
    lc_world *w;
    int start, stride, size; /* members: world PEs start + i*stride */
    int me;                  /* my team rank */
    int slot;
    uint64_t bar_expect[LC_BAR_ROUNDS]; /* per round: arrivals I have consumed */
    uint64_t rs_expect, ag_expect;
    size_t logged_bytes;     /* last permute decision written to the debug log */
    int logged_lowering;
    uint64_t perm_seq;       /* permutes started (all members agree) */
    uint64_t data_expect[LC_PERM_CH];
    uint64_t *credit_expect; /* [LC_PERM_CH][size] */
    int ch_busy[LC_PERM_CH];
    lc_permute_req *in_flight[LC_PERM_CH]; /* outstanding requests, for two-sided progress */
    int is_world;
};

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
    uint8_t *map;
    size_t map_bytes;
    lc_shm_header *hdr;
    uint8_t *ctrl0, *heap0;
    size_t ctrl_stride, heap_stride, heap_bytes;
    lc_heap_block *free_list;
    lc_heap_block *used_list;
    uint64_t alloc_seq, split_seq;
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
/* ---- parse.c: LONGCTX_* variables; unset or empty gives dflt, garbage LC_ERR_ARG ---- */
int lc__env_bytes(const char *name, size_t dflt, size_t *out, char *err, size_t len);
int lc__env_seconds(const char *name, double dflt, int allow_inf, double *out, char *err, size_t len);
int lc__env_count(const char *name, long long dflt, long long min, long long max, long long *out,
                  char *err, size_t len);
int lc__env_flag(const char *name, int *out, char *err, size_t len);
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

/* ---- wait.c ---- */
/* Waits until pred(ctx) is true. Spins, then sleeps on my doorbell; ends with
 * LC_ERR_ABORT when the world is aborted and LC_ERR_TIMEOUT at the deadline (which also
 * aborts the world so that no peer hangs on me). describe() writes what was awaited. */
typedef int (*lc_pred_fn)(void *ctx);
typedef void (*lc_describe_fn)(void *ctx, char *buf, size_t len);
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
