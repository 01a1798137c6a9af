/* longctx symmetric-memory runtime (OpenSHMEM 1.5 / NVSHMEM semantics, explicit handles).
 *
 * A world is a set of PEs (processes). Every PE owns a symmetric heap of the same size;
 * lc_symm_alloc_team is collective over a team and hands out the same offset on every
 * member, so a pointer into my heap names the same object on every peer of that team. One-sided puts copy straight into
 * the peer's heap; a put-with-signal then updates a 64-bit signal word at the peer and
 * the peer never observes the signal before the data.
 *
 * Every call that can wait watches a shared abort word and its peers' heartbeats: a PE
 * that dies, is stopped, or stops beating for LONGCTX_HEARTBEAT_S seconds (default 30)
 * makes every other PE's wait return LC_ERR_ABORT with a message naming that PE and what
 * the waiting PE was doing (lc_last_error). A peer that is alive but busy (a long compute,
 * a checkpoint write) keeps beating, so waits on it are unbounded unless LONGCTX_TIMEOUT
 * (or lc_world_opts.timeout_s) sets an explicit bound.
 */
#ifndef LONGCTX_SYMM_H
#define LONGCTX_SYMM_H

#include <stddef.h>
#include <stdint.h>

#include "longctx/settings.h"
#include "longctx/status.h"

#ifdef __cplusplus
extern "C" {
#endif


typedef struct lc_world lc_world;
typedef struct lc_team lc_team;

typedef struct {
    size_t heap_bytes;   /* 0: $LONGCTX_HEAP_SIZE, else 1 GiB (the segment is sparse) */
    double timeout_s;    /* 0: $LONGCTX_TIMEOUT, else unbounded (INFINITY); peers are
                          * watched by heartbeat either way */
    /* "shm" (built in), "mpi" (when built with MPI; PEs started by mpirun), or NULL/"auto":
     * $LONGCTX_BACKEND, else mpi when an MPI launcher started this process, else shm. */
    const char *backend;
    /* Where the runtime's messages go (errors, the LONGCTX_DEBUG log), one line per call
     * without the newline; NULL: stderr. */
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
} lc_world_opts;

/* Joins the world described by the launcher's environment (LONGCTX_PE, LONGCTX_NPES,
 * LONGCTX_SHM_FD); without a launcher the program is a world of one PE. */
int lc_world_init(const lc_world_opts *opts, lc_world **out);
/* Collective: waits for every PE, then releases the world. */
int lc_world_finalize(lc_world *w);
int lc_my_pe(const lc_world *w);
int lc_n_pes(const lc_world *w);
double lc_timeout_s(const lc_world *w); /* the explicit wait bound; INFINITY when none */
/* Whether a launcher started this process as one PE of many: `longctx launch` (shm) or an
 * MPI launcher (mpirun: OMPI_COMM_WORLD_*, PMI_*). Returns 1 and sets *pe and *n_pes (either
 * may be NULL) before any world exists, so a program can tell it runs as a PE; else 0. */
int lc_launched_as(int *pe, int *n_pes);
/* The backend this world runs on: "shm" or "mpi". */
const char *lc_world_backend(const lc_world *w);
/* The last error of this PE's world, with the PE, the operation and the values seen. */
const char *lc_last_error(const lc_world *w);
/* Marks the world failed so that every PE's waits end with LC_ERR_ABORT, the reason in
 * their lc_last_error. Call it (or lc_world_fail) when a collective call fails on this PE
 * alone, for instance on a bad argument: its peers would otherwise wait for it. */
void lc_world_abort(lc_world *w, const char *reason);
/* For a layer above the runtime: aborts the world with this PE's lc_last_error as the
 * reason when status is an error, and returns status, so that a collective call can end
 * with `return lc_world_fail(w, rc);` and every PE fails fast with the real reason. */
int lc_world_fail(lc_world *w, int status);
/* CPUs this PE may use for its own threads (attention workers, BLAS): the block of cores
 * the launcher bound it to (allowed CPUs / PEs), 1 when PEs outnumber CPUs, the allowed
 * CPUs without a launcher. Always >= 1. */
int lc_cores_per_pe(const lc_world *w);
/* Writes a line through the world's log sink (lc_world_opts.log or stderr), prefixed with
 * the PE, so every layer logs one way. lc_world_debug: LONGCTX_DEBUG is on. */
void lc_world_log(lc_world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int lc_world_debug(const lc_world *w);

/* ---- symmetric heap ---- */
/* Collective over team t (like MPI_Win_allocate on a communicator): every member passes the
 * same bytes and gets the same offset in its own heap; PEs outside t take no part, so
 * disjoint teams allocate independently and at once. NULL on error (lc_last_error): a
 * member asking for other bytes is named (LC_ERR_MISMATCH) on every member, and so is a
 * member without room (LC_ERR_NOMEM). Peers reached through the object must be members. */
void *lc_symm_alloc_team(lc_team *t, size_t bytes);
/* Collective over the team the object was allocated on (LC_ERR_ARG for another team). */
int lc_symm_free_team(lc_team *t, void *ptr);
void *lc_symm_alloc(lc_world *w, size_t bytes); /* lc_symm_alloc_team on the world team */
int lc_symm_free(lc_world *w, void *ptr);       /* lc_symm_free_team on the world team */
size_t lc_symm_heap_size(const lc_world *w);
/* A load/store pointer to PE pe's copy of the symmetric object at ptr, or NULL when that
 * peer is not reachable by load/store (like nvshmem_ptr). */
void *lc_symm_ptr(lc_world *w, const void *ptr, int pe);
int lc_symm_contains(const lc_world *w, const void *ptr, size_t bytes);

/* ---- one-sided ---- */
typedef enum { LC_SIGNAL_SET = 0, LC_SIGNAL_ADD = 1 } lc_sig_op;
typedef enum { LC_CMP_EQ = 0, LC_CMP_NE, LC_CMP_GT, LC_CMP_GE, LC_CMP_LT, LC_CMP_LE } lc_cmp;

/* dst and sig are symmetric addresses (my copy names the object); src is any local memory. */
int lc_put(lc_world *w, void *dst, const void *src, size_t bytes, int pe);
int lc_put_nbi(lc_world *w, void *dst, const void *src, size_t bytes, int pe);
int lc_get(lc_world *w, void *dst, const void *src, size_t bytes, int pe);
int lc_put_signal(lc_world *w, void *dst, const void *src, size_t bytes, uint64_t *sig,
                  uint64_t value, lc_sig_op op, int pe);
int lc_put_signal_nbi(lc_world *w, void *dst, const void *src, size_t bytes, uint64_t *sig,
                      uint64_t value, lc_sig_op op, int pe);
/* An atomic update of a signal word at pe. It orders nothing before it (as in NVSHMEM): puts
 * and stores through lc_symm_ptr that pe must see first need lc_fence (or lc_quiet) before. */
int lc_signal_op(lc_world *w, uint64_t *sig, uint64_t value, lc_sig_op op, int pe);
uint64_t lc_signal_fetch(lc_world *w, const uint64_t *sig);
/* Waits until (*sig cmp value) holds on my copy; *observed (optional) gets the value seen. */
int lc_signal_wait_until(lc_world *w, uint64_t *sig, lc_cmp cmp, uint64_t value,
                         uint64_t *observed);
/* Ordering (NVSHMEM's rules): a put-with-signal's signal is seen after that put's data only;
 * lc_fence orders my earlier puts, signals and lc_symm_ptr stores to each PE before my later
 * ones to that PE; lc_quiet completes all of them (lc_put, lc_put_signal and every barrier
 * and collective include a quiet). */
int lc_fence(lc_world *w);
int lc_quiet(lc_world *w);

/* ---- teams ---- */
lc_team *lc_team_world(lc_world *w);
lc_world *lc_team_get_world(const lc_team *t);
int lc_team_my_pe(const lc_team *t);
int lc_team_n_pes(const lc_team *t);
/* The PE number in dst_team of PE src_pe of src_team, or -1 when it is not a member. */
int lc_team_translate_pe(const lc_team *src_team, int src_pe, const lc_team *dst_team);
/* Collective over parent. *out is NULL on PEs that are not members. */
int lc_team_split_strided(lc_team *parent, int start, int stride, int size, lc_team **out);
/* Parent viewed as a 2-D grid with xrange columns: *xteam is my row (consecutive PEs),
 * *yteam my column. Collective over parent. */
int lc_team_split_2d(lc_team *parent, int xrange, lc_team **xteam, lc_team **yteam);
/* Collective over t. The world team is owned by the world: destroying it does nothing. */
void lc_team_destroy(lc_team *t);

/* ---- collectives on a team (any local buffers; members call in the same order) ---- */
int lc_barrier(lc_team *t);
int lc_broadcast(lc_team *t, void *dst, const void *src, size_t bytes, int root);
int lc_allreduce_sum_f32(lc_team *t, float *dst, const float *src, size_t count);
int lc_allreduce_sum_f64(lc_team *t, double *dst, const double *src, size_t count);
int lc_allreduce_max_f64(lc_team *t, double *dst, const double *src, size_t count);
/* dst holds n_pes blocks of bytes_per_pe, in team order. */
int lc_allgather(lc_team *t, void *dst, const void *src, size_t bytes_per_pe);
/* src holds n_pes blocks of count_per_pe; dst gets the sum of everyone's block for me. */
int lc_reduce_scatter_sum_f32(lc_team *t, float *dst, const float *src, size_t count_per_pe);
int lc_alltoall(lc_team *t, void *dst, const void *src, size_t bytes_per_pe);

/* ---- lowerings: how data crosses PEs (one vocabulary for the permute and for CP) ---- */
typedef enum {
    LC_LOWER_AUTO = 0,        /* the policy decides (lc_lowering_resolve) */
    LC_LOWER_ONE_SIDED = 1,   /* put-with-signal straight into the receiver's dst */
    LC_LOWER_TWO_SIDED = 2,   /* NCCL-style: chunks through a bounded staging FIFO */
    LC_LOWER_ZERO_COPY = 3,   /* the consumer reads the owner's block in place (lc_symm_ptr);
                                 only signals travel. For consumers that can (CP), not a permute */
    LC_LOWER_COMPUTE_ONLY = 4 /* benchmark aid: the consumer's compute without communication;
                                 outputs are meaningless. Not a permute */
} lc_lowering;

/* The words the CLI and $LONGCTX_PERMUTE use: auto, one_sided, two_sided, zero_copy,
 * compute_only. parse returns 0, or -1 for another word. */
const char *lc_lowering_name(lc_lowering l);
int lc_lowering_parse(const char *s, lc_lowering *out);

/* The one policy, the analogue of XLA's collective backend assigner: turns a requested
 * lowering into the one used for bytes sent to dst on team t, and says why (*why, static
 * text). in_place: the caller can read the owner's block in place, so ZERO_COPY is an
 * answer (the CP ring); 0 for a permute, which copies by definition.
 *   AUTO: $LONGCTX_PERMUTE when set (read once, at lc_world_init); else ZERO_COPY where
 *     in_place and every member is load/store reachable; else ONE_SIDED where every member
 *     is reachable and dst (bytes long; not looked at when bytes is 0) is symmetric; else
 *     TWO_SIDED.
 *   ZERO_COPY: itself where in_place and every member is reachable, else ONE_SIDED.
 *   ONE_SIDED, TWO_SIDED, COMPUTE_ONLY: themselves.
 * The same on every member of t when they pass the same arguments. */
lc_lowering lc_lowering_resolve(lc_team *t, lc_lowering req, int in_place, const void *dst,
                                size_t bytes, const char **why);

/* ---- collective permute: an async start/done pair, the shape XLA schedules ---- */
/* Caller-owned storage for one outstanding permute: declare it where it lives (the stack, a
 * plan), pass its address to start and done; nothing is allocated per permute. The contents
 * are private to the runtime. */
typedef struct {
    uint64_t opaque_[16];
} lc_permute_req;

/* Every member sends bytes of src to member (me + shift) mod n, which receives them into its
 * dst (a symmetric address). src may be reused and dst read only after lc_permute_done.
 * Up to 4 permutes may be outstanding on a team at once; they may be completed in any order
 * (a done drives every outstanding two-sided transfer of the team, as an NCCL group does).
 * The req must stay alive until its done. lowering is AUTO, ONE_SIDED or TWO_SIDED (ZERO_COPY
 * and COMPUTE_ONLY move no bytes: LC_ERR_ARG). */
int lc_permute_start(lc_team *t, int shift, const void *src, void *dst, size_t bytes,
                     lc_lowering lowering, lc_permute_req *req);
/* dest_of[r] is the team rank that member r sends to, or -1; each member receives from at
 * most one source. Every member passes the same map. */
int lc_permute_start_map(lc_team *t, const int *dest_of, const void *src, void *dst,
                         size_t bytes, lc_lowering lowering, lc_permute_req *req);
int lc_permute_done(lc_permute_req *req);

/* ---- launcher (shm backend) ---- */
/* What ended a launch that failed: the first PE that did, and how (filled by lc_launch). */
typedef struct {
    int pe;            /* -1: no PE failed (a signal to the launcher, or all exited 0) */
    char how[128];     /* "was killed by signal 9", "exited with status 1", ... */
    double t_fail;     /* CLOCK_MONOTONIC seconds (lc_now_s) when the launcher saw it */
    int lost;          /* the PE was lost (killed by a signal, gone without finalizing, or
                          stopped answering its heartbeat), not ended by an error of its own */
} lc_launch_report;

typedef struct {
    int n_pes;
    size_t heap_bytes; /* 0: $LONGCTX_HEAP_SIZE or the default */
    int quiet;         /* do not report the failing PE on stderr */
    double term_grace_s; /* > 0: after forwarding SIGTERM, wait this long for the PEs (a
                            trainer saves its step) before killing them; 0: the abort grace */
    lc_launch_report *report; /* optional */
} lc_launch_opts;
/* CLOCK_MONOTONIC in seconds: the clock of lc_launch_report.t_fail. */
double lc_now_s(void);
/* Forks n_pes copies of argv (execvp), waits for all, returns the first non-zero exit
 * status (128+signal for a signalled PE), 0 when all succeed, or -1 when it could not start. */
int lc_launch(const lc_launch_opts *opts, char *const argv[]);

#ifdef __cplusplus
}
#endif
#endif
