/* longctx GPU runtime (symm layer): the NVSHMEM backend of the symmetric runtime and its NCCL
 * two-sided twin. Streams are cudaStream_t passed as void *. All functions return LC_OK or a
 * negative lc_status. Users include gpu.h. */
#ifndef LONGCTX_GPU_SYMM_H
#define LONGCTX_GPU_SYMM_H

#include <stddef.h>
#include <stdint.h>

#include "longctx/symm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* the same type as in gpu_attn.h (a repeated identical typedef is valid C11 and C++) */
typedef void *lc_gpu_stream; /* cudaStream_t; NULL = the legacy default stream */

/* ---- NVSHMEM backend ---- */
#define LC_GPU_UID_BYTES 128
typedef struct { unsigned char bytes[LC_GPU_UID_BYTES]; } lc_gpu_uid;

typedef struct lc_gpu_world lc_gpu_world;
typedef struct lc_gpu_team lc_gpu_team;

typedef struct {
    int pe, n_pes;        /* this process's PE and the world size */
    const lc_gpu_uid *uid; /* from lc_gpu_uid_create on one PE, shipped to all */
    int device;           /* -1: pe % device count (several PEs may share a GPU) */
    size_t heap_bytes;    /* 0: NVSHMEM's default / $NVSHMEM_SYMMETRIC_SIZE */
    double timeout_s;     /* 0: $LONGCTX_TIMEOUT, else 120; bounds every signal wait */
} lc_gpu_world_opts;

/* 1 when this build has the NVSHMEM backend. */
int lc_gpu_have_nvshmem(void);
/* Call before lc_gpu_world_init on exactly one PE; bootstrap needs no MPI. */
int lc_gpu_uid_create(lc_gpu_uid *uid);
int lc_gpu_world_init(const lc_gpu_world_opts *opts, lc_gpu_world **out);
int lc_gpu_world_finalize(lc_gpu_world *w);
int lc_gpu_my_pe(const lc_gpu_world *w);
int lc_gpu_n_pes(const lc_gpu_world *w);
/* PEs that share my GPU (NVSHMEM's multiple-PEs-per-GPU mode when > 1): team splits,
 * team barriers, collectives and *_wait_until_on_stream are refused there. */
int lc_gpu_pes_per_device(const lc_gpu_world *w);
const char *lc_gpu_world_error(const lc_gpu_world *w);

void *lc_gpu_symm_alloc(lc_gpu_world *w, size_t bytes); /* collective */
int lc_gpu_symm_free(lc_gpu_world *w, void *p);         /* collective */
void *lc_gpu_symm_ptr(lc_gpu_world *w, const void *p, int pe);

/* Stream-ordered one-sided operations; dst and sig are symmetric. op is LC_SIGNAL_SET or
 * LC_SIGNAL_ADD and cmp an LC_CMP_* of symm.h (translated to NVSHMEM's values inside). */
int lc_gpu_put_on_stream(lc_gpu_world *w, void *dst, const void *src, size_t bytes, int pe,
                         lc_gpu_stream s);
int lc_gpu_put_signal_on_stream(lc_gpu_world *w, void *dst, const void *src, size_t bytes,
                                uint64_t *sig, uint64_t value, int op, int pe,
                                lc_gpu_stream s);
int lc_gpu_signal_op_on_stream(lc_gpu_world *w, uint64_t *sig, uint64_t value,
                               int op, int pe, lc_gpu_stream s);
/* One permute hop as one kernel: put bytes of src to dst on PE pe, then (sig op value) on pe,
 * then wait until my own wsig cmp wvalue (the predecessor's put has landed), with the same
 * deadline as lc_gpu_signal_wait_on_stream. The copy runs on up to $LONGCTX_GPU_FUSED_BLOCKS
 * blocks (default: one per SM) of $LONGCTX_GPU_FUSED_CHUNK bytes (default 64 KiB) each.
 * Costs one launch where put + signal + wait cost three; the copy engine is not used. */
int lc_gpu_put_signal_wait_on_stream(lc_gpu_world *w, void *dst, const void *src, size_t bytes,
                                     uint64_t *sig, uint64_t value, int op, int pe,
                                     uint64_t *wsig, int cmp, uint64_t wvalue, lc_gpu_stream s);
/* Put-with-signal without a kernel, where PE pe is load/store reachable (same node, P2P):
 * the copy engine moves the data, the stream's front end then SETs the signal
 * (cuStreamWriteValue64 after a system fence). LC_ERR_UNSUPPORTED where the peer is not
 * reachable or the driver lacks 64-bit stream memory operations. */
int lc_gpu_put_signal_ce_on_stream(lc_gpu_world *w, void *dst, const void *src, size_t bytes,
                                   uint64_t *sig, uint64_t value, int pe, lc_gpu_stream s);
/* The stream waits (cuStreamWaitValue64, no kernel) until my *sig >= value (LC_CMP_GE) or
 * == value (LC_CMP_EQ). NO DEADLINE: a dead peer hangs the stream, as with
 * LONGCTX_GPU_WAIT=nvshmem; lc_gpu_signal_wait_on_stream is the bounded wait. */
int lc_gpu_signal_wait_memop_on_stream(lc_gpu_world *w, uint64_t *sig, int cmp, uint64_t value,
                                       lc_gpu_stream s);
/* Makes s wait until (*sig cmp value) on my copy. A device-side wait kernel with a
 * deadline does it (works with several PEs per GPU); $LONGCTX_GPU_WAIT=nvshmem uses
 * nvshmemx_signal_wait_until_on_stream instead. A wait that passes its deadline marks the
 * world failed: lc_gpu_world_check then returns LC_ERR_TIMEOUT. */
int lc_gpu_signal_wait_on_stream(lc_gpu_world *w, uint64_t *sig, int cmp, uint64_t value,
                                 lc_gpu_stream s);
int lc_gpu_quiet_on_stream(lc_gpu_world *w, lc_gpu_stream s);
int lc_gpu_quiet(lc_gpu_world *w);
int lc_gpu_barrier_all(lc_gpu_world *w);                       /* host, collective */
int lc_gpu_barrier_all_on_stream(lc_gpu_world *w, lc_gpu_stream s);
/* Synchronises s and reports a device-side wait timeout. */
int lc_gpu_world_check(lc_gpu_world *w, lc_gpu_stream s);

/* What every PE said in an agreement: the lowest PE whose status was not LC_OK (-1: none)
 * and that status; the lowest PE whose key differs from PE 0's (-1: none) and both keys. */
typedef struct {
    int n_pes, bad_pe, bad_status, key_pe;
    uint32_t key0, key_bad;
} lc_gpu_agreement;
/* Host collective: each PE gives its own status and a fingerprint of what must be the same on
 * every PE (shapes, options), and all learn everyone's. Every PE calls it, also after a local
 * failure, so that none waits in a later collective for a PE that has already left. Returns
 * LC_OK when the exchange itself worked (then out says what the PEs said). */
int lc_gpu_agree(lc_gpu_world *w, int status, uint32_t key, lc_gpu_agreement *out);

lc_gpu_team *lc_gpu_team_world(lc_gpu_world *w);
int lc_gpu_team_split_strided(lc_gpu_team *parent, int start, int stride, int size,
                              lc_gpu_team **out);
int lc_gpu_team_my_pe(const lc_gpu_team *t);
int lc_gpu_team_n_pes(const lc_gpu_team *t);
/* World PE of team member r. */
int lc_gpu_team_world_pe(const lc_gpu_team *t, int r);
void lc_gpu_team_destroy(lc_gpu_team *t);

/* ---- NCCL two-sided twin ---- */
typedef struct lc_gpu_nccl lc_gpu_nccl;
int lc_gpu_have_nccl(void);
int lc_gpu_nccl_uid_create(lc_gpu_uid *uid);
int lc_gpu_nccl_init(const lc_gpu_uid *uid, int pe, int n_pes, lc_gpu_nccl **out);
/* Every rank sends bytes of src to (me + shift) mod n and receives into dst from
 * (me - shift) mod n: ncclSend/ncclRecv in one group. */
int lc_gpu_nccl_permute(lc_gpu_nccl *c, int shift, const void *src, void *dst, size_t bytes,
                        lc_gpu_stream s);
int lc_gpu_nccl_finalize(lc_gpu_nccl *c);
int lc_gpu_nccl_rank(const lc_gpu_nccl *c);
int lc_gpu_nccl_size(const lc_gpu_nccl *c);
/* lc_gpu_agree over the NCCL communicator (an all-gather). */
int lc_gpu_nccl_agree(lc_gpu_nccl *c, int status, uint32_t key, lc_gpu_agreement *out);

#ifdef __cplusplus
}
#endif
#endif
