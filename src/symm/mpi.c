/* The MPI backend: the runtime across hosts, on MPI-3 RMA.
 *
 * Every PE's segment (a header, the control region, the symmetric heap: the layout of one
 * PE in shm's segment) is allocated with MPI_Win_allocate_shared on the PEs of its host, so
 * that peers on the same host reach it by load/store (lc_symm_ptr, the zero-copy ring) and
 * signal it with atomics and a futex doorbell, exactly as in shm. When some PEs sit on other
 * hosts the same memory is also exposed as one window over the world (MPI_Win_create,
 * passive target, lock_all): puts to those PEs are MPI_Put, a put-with-signal is MPI_Put,
 * MPI_Win_flush, then MPI_Accumulate of the signal word, and a wait polls my own memory
 * while driving MPI's progress engine (MPI_Win_sync, MPI_Iprobe), since a remote update
 * rings no doorbell. Then every signal, even to a peer on my host, is an MPI_Accumulate:
 * one word may be bumped by peers on both sides (collective arrival counters), and only
 * MPI's accumulates are atomic with each other.
 *
 * Teams are communicators; the two-sided permute lowering is MPI_Isend/MPI_Irecv and the
 * collectives are MPI's own (mpi_coll.c), all non-blocking and completed inside the
 * runtime's bounded waits, so the abort word and LONGCTX_TIMEOUT still hold. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "symm/internal.h"
#include "symm/mpi_internal.h"

#define PAGE 4096u
#define MPI_CHUNK (1u << 30) /* MPI counts are int */

static size_t round_page(size_t x) { return (x + PAGE - 1) & ~(size_t)(PAGE - 1); }

static int g_own_init;       /* this library called MPI_Init */
static int g_aborted_world;  /* a world ended aborted: MPI_Finalize could wait on dead peers */

int lc__mpi_status(lc_world *w, int mrc, int status, const char *fmt, ...)
{
    char what[512], msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (MPI_Error_string(mrc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "MPI error %d", mrc);
    return lc__err(w, status, "%s: %s", what, msg);
}

static void at_exit_finalize(void)
{
    int fin = 0;
    MPI_Finalized(&fin);
    /* After an abort the peers may be gone or stuck: MPI_Finalize would wait for them. The
     * launcher cleans up a process that exits without it. */
    if (!fin && !g_aborted_world) MPI_Finalize();
}

/* Defaults for the traps of Debian's OpenMPI 4.1, set only where the user has not chosen:
 * osc/ucx needs pml/ucx (absent on plain TCP), and its memory hooks can crash in finalize;
 * sm serves the shared window, pt2pt the world window over any transport. */
static void mca_defaults(void)
{
    setenv("OMPI_MCA_osc", "sm,pt2pt", 0);
    setenv("OMPI_MCA_opal_common_ucx_opal_mem_hooks", "0", 0);
}

static lc_mpi_state *st_of(lc_world *w) { return w->be_state; }

/* My address of a symmetric object -> its offset in every PE's segment, or SIZE_MAX. */
static size_t seg_off(lc_world *w, const void *sym)
{
    lc_mpi_state *s = st_of(w);
    uintptr_t a = (uintptr_t)sym, b = (uintptr_t)s->seg;
    if (a < b + s->hdr_bytes || a >= b + s->hdr_bytes + w->ctrl_stride + w->heap_bytes) return SIZE_MAX;
    return (size_t)(a - b);
}

static void *mpi_ptr(lc_world *w, const void *sym, int pe)
{
    lc_mpi_state *s = st_of(w);
    if (pe < 0 || pe >= w->n || !s->peer_seg[pe]) return NULL;
    size_t off = seg_off(w, sym);
    return off == SIZE_MAX ? NULL : s->peer_seg[pe] + off;
}

static void ring(lc_world *w, int pe)
{
    lc_mpi_state *s = st_of(w);
    lc_pe_ctrl *c = (lc_pe_ctrl *)(s->peer_seg[pe] + s->hdr_bytes);
    lc__doorbell(c);
}

/* A word in the origin ring stays untouched until the accumulate that reads it completes:
 * when the ring wraps, everything is flushed first. */
static uint64_t *origin_word(lc_world *w, uint64_t value)
{
    lc_mpi_state *s = st_of(w);
    if (s->origin_i == LC_MPI_ORIGINS) {
        MPI_Win_flush_all(s->win);
        s->origin_i = 0;
    }
    uint64_t *o = &s->origin[s->origin_i++];
    *o = value;
    return o;
}

static int remote_put(lc_world *w, size_t off, const void *src, size_t bytes, int pe)
{
    lc_mpi_state *s = st_of(w);
    for (size_t done = 0; done < bytes;) {
        size_t b = bytes - done < MPI_CHUNK ? bytes - done : MPI_CHUNK;
        int mrc = MPI_Put((const uint8_t *)src + done, (int)b, MPI_BYTE, pe, (MPI_Aint)(off + done), (int)b,
                          MPI_BYTE, s->win);
        if (mrc != MPI_SUCCESS) return lc__mpi_status(w, mrc, LC_ERR_ABORT, "MPI_Put of %zu bytes to PE %d", b, pe);
        done += b;
    }
    s->dirty = 1;
    return LC_OK;
}

static int mpi_put(lc_world *w, void *dst, const void *src, size_t bytes, int pe)
{
    void *p = mpi_ptr(w, dst, pe);
    if (p) {
        if (bytes) memcpy(p, src, bytes);
        return LC_OK;
    }
    return bytes ? remote_put(w, seg_off(w, dst), src, bytes, pe) : LC_OK;
}

static int mpi_get(lc_world *w, void *dst, const void *src, size_t bytes, int pe)
{
    lc_mpi_state *s = st_of(w);
    void *p = mpi_ptr(w, src, pe);
    if (p) {
        if (bytes) memcpy(dst, p, bytes);
        return LC_OK;
    }
    size_t off = seg_off(w, src);
    for (size_t done = 0; done < bytes;) {
        size_t b = bytes - done < MPI_CHUNK ? bytes - done : MPI_CHUNK;
        int mrc = MPI_Get((uint8_t *)dst + done, (int)b, MPI_BYTE, pe, (MPI_Aint)(off + done), (int)b, MPI_BYTE,
                          s->win);
        if (mrc == MPI_SUCCESS) mrc = MPI_Win_flush(pe, s->win);
        if (mrc != MPI_SUCCESS) return lc__mpi_status(w, mrc, LC_ERR_ABORT, "MPI_Get of %zu bytes from PE %d", b, pe);
        done += b;
    }
    return LC_OK;
}

static int mpi_signal_op(lc_world *w, _Atomic uint64_t *sig, uint64_t value, lc_sig_op op, int pe)
{
    lc_mpi_state *s = st_of(w);
    if (s->all_local) { /* the shm path: release ordering, then the doorbell */
        _Atomic uint64_t *remote = mpi_ptr(w, (const void *)sig, pe);
        if (op == LC_SIGNAL_SET) atomic_store_explicit(remote, value, memory_order_release);
        else atomic_fetch_add_explicit(remote, value, memory_order_release);
        ring(w, pe);
        return LC_OK;
    }
    /* My plain loads and stores (ptr stores, reads of a buffer I hand back) come first. */
    atomic_thread_fence(memory_order_seq_cst);
    int mrc = MPI_Accumulate(origin_word(w, value), 1, MPI_UINT64_T, pe, (MPI_Aint)seg_off(w, (const void *)sig), 1,
                             MPI_UINT64_T, op == LC_SIGNAL_SET ? MPI_REPLACE : MPI_SUM, s->win);
    /* Some osc components hold operations back until a synchronisation: send it now, without
     * waiting for the target, so that a signal arrives while I go on (or wait myself). */
    if (mrc == MPI_SUCCESS) mrc = MPI_Win_flush_local(pe, s->win);
    if (mrc != MPI_SUCCESS) return lc__mpi_status(w, mrc, LC_ERR_ABORT, "MPI_Accumulate of a signal at PE %d", pe);
    s->dirty = 1;
    if (s->peer_seg[pe] && s->peer_seg[pe] != s->seg) ring(w, pe); /* it may sleep on its doorbell */
    return LC_OK;
}

static int mpi_put_signal(lc_world *w, void *dst, const void *src, size_t bytes, _Atomic uint64_t *sig,
                          uint64_t value, lc_sig_op op, int pe)
{
    lc_mpi_state *s = st_of(w);
    void *p = mpi_ptr(w, dst, pe);
    if (p) {
        /* A full fence, not only release: large memcpy uses non-temporal stores (see shm). */
        if (bytes) memcpy(p, src, bytes);
        atomic_thread_fence(memory_order_seq_cst);
        return mpi_signal_op(w, sig, value, op, pe);
    }
    int rc = remote_put(w, seg_off(w, dst), src, bytes, pe);
    if (rc) return rc;
    /* The data must have landed before the signal can: MPI orders accumulates with each
     * other, not with puts. */
    int mrc = MPI_Win_flush(pe, s->win);
    if (mrc != MPI_SUCCESS) return lc__mpi_status(w, mrc, LC_ERR_ABORT, "MPI_Win_flush to PE %d", pe);
    return mpi_signal_op(w, sig, value, op, pe);
}

static int mpi_wait(lc_world *w, _Atomic uint64_t *sig, lc_cmp cmp, uint64_t value, const char *op,
                    const char *what, uint64_t *observed)
{
    return lc__wait_sig(w, sig, w->me, cmp, value, op, what, observed);
}

/* Puts and signals to other hosts are complete (and so ordered) after a flush; ptr stores
 * on my host are ordered by the memory fence. Fence is quiet here, as in shm. */
static void mpi_quiet(lc_world *w)
{
    lc_mpi_state *s = st_of(w);
    atomic_thread_fence(memory_order_seq_cst);
    if (s->dirty) {
        MPI_Win_flush_all(s->win);
        s->dirty = 0;
        s->origin_i = 0;
    }
}

/* Remote updates land through MPI's progress engine in this process; MPI_Win_sync makes
 * them visible to my loads. Without remote peers nothing needs driving and waits may sleep
 * on the doorbell as long as shm's do. */
static double mpi_progress(lc_world *w)
{
    lc_mpi_state *s = st_of(w);
    if (s->all_local) return s->req_waits ? 0.001 : 0.1;
    int flag;
    MPI_Win_sync(s->win);
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, s->world, &flag, MPI_STATUS_IGNORE);
    return 0.001;
}

static lc_pe_info *mpi_pe_info(lc_world *w, int pe)
{
    lc_mpi_state *s = st_of(w);
    if (pe < 0 || pe >= w->n || !s->peer_seg[pe]) return NULL;
    return &((lc_shm_header *)s->peer_seg[pe])->pe[pe];
}

/* Copies the abort recorded in my header into every peer's: by load/store on my host (and
 * its doorbell), by MPI_Put and an accumulate of the state word elsewhere. */
static void mpi_abort_peers(lc_world *w)
{
    lc_mpi_state *s = st_of(w);
    lc_shm_header *mine = w->hdr;
    g_aborted_world = 1;
    for (int p = 0; p < w->n; p++) {
        if (p == w->me) continue;
        if (s->peer_seg[p]) {
            lc_shm_header *h = (lc_shm_header *)s->peer_seg[p];
            uint32_t expect = 0;
            if (atomic_compare_exchange_strong(&h->abort_state, &expect, 1)) {
                memcpy(h->abort_reason, mine->abort_reason, sizeof h->abort_reason);
                h->abort_pe = mine->abort_pe;
                atomic_store(&h->abort_state, 2);
            }
            ring(w, p);
        } else if (s->win != MPI_WIN_NULL) {
            size_t roff = offsetof(lc_shm_header, abort_reason), poff = offsetof(lc_shm_header, abort_pe);
            size_t soff = offsetof(lc_shm_header, abort_state);
            MPI_Put(mine->abort_reason, (int)sizeof mine->abort_reason, MPI_BYTE, p, (MPI_Aint)roff,
                    (int)sizeof mine->abort_reason, MPI_BYTE, s->win);
            MPI_Put(&mine->abort_pe, 1, MPI_INT32_T, p, (MPI_Aint)poff, 1, MPI_INT32_T, s->win);
            MPI_Win_flush(p, s->win);
            static const uint32_t two = 2;
            MPI_Accumulate(&two, 1, MPI_UINT32_T, p, (MPI_Aint)soff, 1, MPI_UINT32_T, MPI_REPLACE, s->win);
            MPI_Win_flush(p, s->win);
        }
    }
}

static void mpi_detach(lc_world *w)
{
    lc_mpi_state *s = st_of(w);
    if (!s) return;
    int clean = !lc__aborted(w) && !g_aborted_world;
    if (clean) {
        if (s->win != MPI_WIN_NULL) {
            MPI_Win_unlock_all(s->win);
            MPI_Win_free(&s->win);
        }
        if (s->swin != MPI_WIN_NULL) MPI_Win_free(&s->swin);
        if (s->node != MPI_COMM_NULL) MPI_Comm_free(&s->node);
        if (s->world != MPI_COMM_NULL) MPI_Comm_free(&s->world);
    } else {
        g_aborted_world = 1; /* peers may be dead: no collective frees, no MPI_Finalize */
        /* mpirun ends the whole job as soon as one rank exits with an error: give the peers a
         * moment to report the abort's reason first. Peers on my host say when they are
         * through (their state leaves RUNNING); for the others, a short fixed wait. */
        atomic_store(&mpi_pe_info(w, w->me)->state, LC_PE_FINALIZED);
        double until = lc__now() + 2.0;
        for (int p = 0; p < w->n; p++) {
            lc_pe_info *info = mpi_pe_info(w, p);
            while (info && atomic_load(&info->state) == LC_PE_RUNNING && lc__now() < until) usleep(1000);
        }
        if (!s->all_local) usleep(300000);
    }
    free(s->peer_seg);
    free(s);
    w->be_state = NULL;
    w->hdr = NULL;
}

const lc_backend lc__mpi_backend;

static int attach(lc_world *w, lc_mpi_state *s, size_t heap_req)
{
    int mrc, n, me;
    MPI_Comm_dup(MPI_COMM_WORLD, &s->world);
    MPI_Comm_set_errhandler(s->world, MPI_ERRORS_RETURN);
    MPI_Comm_rank(s->world, &me);
    MPI_Comm_size(s->world, &n);
    w->me = me;
    w->n = n;
    if (n > LC_MAX_PES) return lc__err(w, LC_ERR_ARG, "mpi backend: %d ranks, at most %d PEs", n, LC_MAX_PES);
    /* The heap is symmetric: every PE must ask for the same size, and all learn who did not. */
    uint64_t mine = heap_req, *all = malloc(sizeof(uint64_t) * (size_t)n);
    if (!all) return lc__err(w, LC_ERR_SYS, "out of host memory");
    mrc = MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, s->world);
    if (mrc != MPI_SUCCESS) {
        free(all);
        return lc__mpi_status(w, mrc, LC_ERR_SYS, "mpi backend: agreeing on the heap size");
    }
    for (int p = 0; p < n; p++) {
        if (all[p] != mine) {
            int rc = lc__err(w, LC_ERR_MISMATCH,
                             "symmetric heap sizes differ: PE %d asked for %zu bytes, PE %d for %llu "
                             "(set LONGCTX_HEAP_SIZE the same for all)", me, heap_req, p, (unsigned long long)all[p]);
            free(all);
            return rc;
        }
    }
    free(all);
    if (heap_req > lc__max_heap(1))
        return lc__err(w, LC_ERR_ARG, "a symmetric heap of %zu bytes is more than this machine can map (at most %zu): "
                       "lower LONGCTX_HEAP_SIZE or lc_world_opts.heap_bytes", heap_req, lc__max_heap(1));
    s->hdr_bytes = round_page(sizeof(lc_shm_header) + (size_t)n * sizeof(lc_pe_info));
    w->ctrl_stride = lc__ctrl_stride();
    w->heap_stride = round_page(heap_req);
    w->heap_bytes = heap_req;
    s->seg_bytes = s->hdr_bytes + w->ctrl_stride + w->heap_stride;

    /* LONGCTX_MPI_SHARE=0 treats every other PE as remote (one host standing in for many:
     * tests and benchmarks of the cross-host path). */
    int share = 1;
    char msg[256];
    if (lc__env_flag("LONGCTX_MPI_SHARE", &share, msg, sizeof msg) != LC_OK) return lc__err(w, LC_ERR_ARG, "%s", msg);
    if (!lc__env_str("LONGCTX_MPI_SHARE")) share = 1;
    if (share) MPI_Comm_split_type(s->world, MPI_COMM_TYPE_SHARED, me, MPI_INFO_NULL, &s->node);
    else MPI_Comm_split(s->world, me, 0, &s->node);
    int node_n;
    MPI_Comm_size(s->node, &node_n);
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "alloc_shared_noncontig", "true");
    /* A page more: OpenMPI's shared segments are not page aligned, large heap blocks must be. */
    void *raw;
    mrc = MPI_Win_allocate_shared((MPI_Aint)(s->seg_bytes + PAGE), 1, info, s->node, &raw, &s->swin);
    MPI_Info_free(&info);
    if (mrc != MPI_SUCCESS)
        return lc__mpi_status(w, mrc, LC_ERR_NOMEM, "mpi backend: MPI_Win_allocate_shared of %zu bytes (heap %zu); "
                              "lower LONGCTX_HEAP_SIZE", s->seg_bytes, heap_req);
    MPI_Win_set_errhandler(s->swin, MPI_ERRORS_RETURN);
    /* Which world PEs share my host, and where their segments are mapped here. */
    s->peer_seg = calloc((size_t)n, sizeof *s->peer_seg);
    int *wr = malloc(sizeof(int) * (size_t)node_n * 2);
    if (!s->peer_seg || !wr) {
        free(wr);
        return lc__err(w, LC_ERR_SYS, "out of host memory");
    }
    MPI_Group gw, gn;
    MPI_Comm_group(s->world, &gw);
    MPI_Comm_group(s->node, &gn);
    for (int i = 0; i < node_n; i++) wr[i] = i;
    MPI_Group_translate_ranks(gn, node_n, wr, gw, wr + node_n);
    MPI_Group_free(&gw);
    MPI_Group_free(&gn);
    for (int i = 0; i < node_n; i++) {
        MPI_Aint sz;
        int du;
        void *base;
        if ((mrc = MPI_Win_shared_query(s->swin, i, &sz, &du, &base)) != MPI_SUCCESS) {
            free(wr);
            return lc__mpi_status(w, mrc, LC_ERR_SYS, "mpi backend: MPI_Win_shared_query");
        }
        s->peer_seg[wr[node_n + i]] = (uint8_t *)(((uintptr_t)base + PAGE - 1) & ~(uintptr_t)(PAGE - 1));
    }
    free(wr);
    s->all_local = node_n == n;
    s->seg = s->peer_seg[me];
    /* Fresh pages are zero; my header is written before anyone can reach it (the barrier). */
    lc_shm_header *h = (lc_shm_header *)s->seg;
    memset(h, 0, s->hdr_bytes);
    h->n_pes = (uint32_t)n;
    h->heap_stride = w->heap_stride;
    h->ctrl_stride = w->ctrl_stride;
    h->ctrl_off = s->hdr_bytes;
    h->heap_off = s->hdr_bytes + w->ctrl_stride;
    h->total = s->seg_bytes;
    h->abort_pe = -1;
    atomic_store(&h->pe[me].heap_req, heap_req);
    atomic_store(&h->pe[me].pid, (int32_t)getpid());
    atomic_store(&h->pe[me].state, LC_PE_RUNNING);
    h->magic = LC_SHM_MAGIC;
    w->hdr = h;
    w->be = &lc__mpi_backend;
    /* Only my own region is ever addressed through ctrl0/heap0 (see internal.h). */
    w->ctrl0 = (uint8_t *)((uintptr_t)s->seg + s->hdr_bytes - (uintptr_t)me * w->ctrl_stride);
    w->heap0 = (uint8_t *)((uintptr_t)s->seg + s->hdr_bytes + w->ctrl_stride - (uintptr_t)me * w->heap_stride);
    if (!s->all_local) {
        mrc = MPI_Win_create(s->seg, (MPI_Aint)s->seg_bytes, 1, MPI_INFO_NULL, s->world, &s->win);
        if (mrc != MPI_SUCCESS)
            return lc__mpi_status(w, mrc, LC_ERR_SYS, "mpi backend: MPI_Win_create over the %zu-byte segment",
                                  s->seg_bytes);
        MPI_Win_set_errhandler(s->win, MPI_ERRORS_RETURN);
        MPI_Win_lock_all(MPI_MODE_NOCHECK, s->win);
    }
    if ((mrc = MPI_Barrier(s->world)) != MPI_SUCCESS)
        return lc__mpi_status(w, mrc, LC_ERR_ABORT, "mpi backend: barrier after the window");
    return LC_OK;
}

int lc__mpi_attach(lc_world *w, size_t heap_req)
{
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (fin) return lc__err(w, LC_ERR_ARG, "mpi backend: MPI was finalized already");
    if (!init) {
        int provided;
        mca_defaults();
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return lc__err(w, LC_ERR_SYS, "mpi backend: MPI_Init_thread failed");
        g_own_init = 1;
        atexit(at_exit_finalize);
    }
    lc_mpi_state *s = calloc(1, sizeof *s);
    if (!s) return lc__err(w, LC_ERR_SYS, "out of host memory");
    s->world = s->node = MPI_COMM_NULL;
    s->win = s->swin = MPI_WIN_NULL;
    w->be_state = s;
    int rc = attach(w, s, heap_req);
    if (rc && !w->be) { /* not reachable by peers yet: release here, fail_init detaches nothing */
        if (s->swin != MPI_WIN_NULL) MPI_Win_free(&s->swin);
        free(s->peer_seg);
        free(s);
        w->be_state = NULL;
    }
    return rc;
}

const lc_backend lc__mpi_backend = {
    .name = "mpi",
    .put = mpi_put,
    .get = mpi_get,
    .put_signal = mpi_put_signal,
    .signal_op = mpi_signal_op,
    .wait = mpi_wait,
    .wait_pred = lc__wait,
    .fence = mpi_quiet,
    .quiet = mpi_quiet,
    .ptr = mpi_ptr,
    .detach = mpi_detach,
    .pe_info = mpi_pe_info,
    .abort_peers = mpi_abort_peers,
    .progress = mpi_progress,
    .team_init = lc__mpi_team_init,
    .team_free = lc__mpi_team_free,
    .perm_start = lc__mpi_perm_start,
    .perm_done = lc__mpi_perm_done,
    .coll = &lc__mpi_coll,
};
