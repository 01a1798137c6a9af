/* The built-in shm backend: every PE maps one memfd segment holding a header, a control
 * region per PE (signals, collective scratch, staging FIFOs) and a heap per PE. A memfd has
 * no name in /dev/shm, so nothing can be left behind, whatever way the PEs die. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "symm/internal.h"

#define PAGE 4096u
static size_t round_page(size_t x) { return (x + PAGE - 1) & ~(size_t)(PAGE - 1); }

static size_t fifo_bytes(void)
{
    return (size_t)LC_TEAM_SLOTS * LC_PERM_CH * LC_FIFO_SLOTS * LC_FIFO_CHUNK;
}

size_t lc__ctrl_stride(void)
{
    return round_page(sizeof(lc_pe_ctrl)) + LC_SCRATCH_BYTES + fifo_bytes();
}

static size_t header_bytes(int n)
{
    return round_page(sizeof(lc_shm_header) + (size_t)n * sizeof(lc_pe_info));
}

size_t lc__segment_bytes(int n, size_t heap_bytes, size_t *ctrl_off, size_t *heap_off)
{
    size_t h = header_bytes(n), c = lc__ctrl_stride(), hs = round_page(heap_bytes);
    if (ctrl_off) *ctrl_off = h;
    if (heap_off) *heap_off = h + (size_t)n * c;
    return h + (size_t)n * c + (size_t)n * hs;
}

size_t lc__max_heap(int n)
{
    /* 64 TiB of segment in all: half the usual 47-bit user address space, so the mapping
     * (and ASan's shadow beside it) still fits, and no size arithmetic can wrap. */
    size_t all = (size_t)1 << 46, per = all / (size_t)(n < 1 ? 1 : n);
    return per > lc__ctrl_stride() + header_bytes(n) ? per - lc__ctrl_stride() - header_bytes(n) : 0;
}

void lc__shm_init_header(void *map, int n, size_t heap_bytes)
{
    lc_shm_header *h = map;
    size_t co, ho;
    h->total = lc__segment_bytes(n, heap_bytes, &co, &ho);
    h->n_pes = (uint32_t)n;
    h->heap_stride = round_page(heap_bytes);
    h->ctrl_stride = lc__ctrl_stride();
    h->ctrl_off = co;
    h->heap_off = ho;
    h->abort_pe = -1;
    atomic_store(&h->abort_state, 0);
    h->magic = LC_SHM_MAGIC; /* last: a reader that sees it sees the rest */
}

uint8_t *lc__fifo(lc_world *w, int pe, int slot, int ch)
{
    uint8_t *base = lc__scratch(w, pe) + LC_SCRATCH_BYTES;
    return base + ((size_t)slot * LC_PERM_CH + (size_t)ch) * LC_FIFO_SLOTS * LC_FIFO_CHUNK;
}

static long futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, (uint32_t *)addr, op, val, ts, NULL, 0);
}

void lc__ring(lc_world *w, int pe) { lc__doorbell(lc__ctrl(w, pe)); }

void lc__doorbell(lc_pe_ctrl *c)
{
    atomic_fetch_add(&c->doorbell, 1);
    if (atomic_load(&c->sleepers) > 0) futex(&c->doorbell, FUTEX_WAKE, INT_MAX, NULL);
}

static int env_int(const char *name, int *out)
{
    const char *s = lc__env_str(name);
    if (!s) return 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < 0 || v > INT_MAX) return -1;
    *out = (int)v;
    return 1;
}

int lc__shm_attach(lc_world *w, size_t heap_req)
{
    int fd = -1, pe = 0, n = 1;
    int have_fd = env_int("LONGCTX_SHM_FD", &fd);
    if (have_fd < 0) return lc__err(w, LC_ERR_ARG, "LONGCTX_SHM_FD=%s is not a descriptor", lc__env_str("LONGCTX_SHM_FD"));
    if (have_fd) {
        if (env_int("LONGCTX_PE", &pe) != 1 || env_int("LONGCTX_NPES", &n) != 1 || n < 1 ||
            n > LC_MAX_PES || pe >= n)
            return lc__err(w, LC_ERR_ARG,
                           "launcher environment is inconsistent (LONGCTX_PE=%s LONGCTX_NPES=%s; "
                           "at most %d PEs)",
                           lc__env_str("LONGCTX_PE") ? lc__env_str("LONGCTX_PE") : "unset",
                           lc__env_str("LONGCTX_NPES") ? lc__env_str("LONGCTX_NPES") : "unset", LC_MAX_PES);
    } else {
        /* No launcher: a world of one PE with a private segment. */
        if (heap_req > lc__max_heap(1))
            return lc__err(w, LC_ERR_ARG,
                           "a symmetric heap of %zu bytes is more than this machine can map (at most %zu): "
                           "lower LONGCTX_HEAP_SIZE or lc_world_opts.heap_bytes", heap_req, lc__max_heap(1));
        fd = memfd_create("longctx", MFD_CLOEXEC);
        if (fd < 0) return lc__err(w, LC_ERR_SYS, "memfd_create: %s", strerror(errno));
        size_t total = lc__segment_bytes(1, heap_req, NULL, NULL);
        if (ftruncate(fd, (off_t)total) != 0) {
            int e = errno;
            close(fd);
            return lc__err(w, LC_ERR_SYS, "sizing the segment to %zu bytes (heap %zu): %s; lower LONGCTX_HEAP_SIZE",
                           total, heap_req, strerror(e));
        }
        void *m = mmap(NULL, header_bytes(1), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            close(fd);
            return lc__err(w, LC_ERR_SYS, "mmap: %s", strerror(errno));
        }
        lc__shm_init_header(m, 1, heap_req);
        munmap(m, header_bytes(1));
    }
    w->me = pe;
    w->n = n;
    struct stat st;
    if (fstat(fd, &st) != 0 || (size_t)st.st_size < header_bytes(n))
        return lc__err(w, LC_ERR_ARG, "LONGCTX_SHM_FD=%d is not a longctx segment", fd);
    lc_shm_header *h = mmap(NULL, header_bytes(n), PROT_READ, MAP_SHARED, fd, 0);
    if (h == MAP_FAILED) return lc__err(w, LC_ERR_SYS, "mmap of the segment header: %s", strerror(errno));
    int ok = h->magic == LC_SHM_MAGIC && h->n_pes == (uint32_t)n && h->total == (uint64_t)st.st_size;
    size_t total = h->total;
    munmap(h, header_bytes(n));
    if (!ok) return lc__err(w, LC_ERR_ARG, "the segment does not match %d PEs (stale or foreign descriptor)", n);
    w->map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (w->map == MAP_FAILED) {
        w->map = NULL;
        return lc__err(w, LC_ERR_SYS, "mapping the %zu-byte segment (%d PEs, heap %zu each): %s; lower LONGCTX_HEAP_SIZE",
                       total, n, heap_req, strerror(errno));
    }
    close(fd); /* the mapping keeps the memory alive */
    w->map_bytes = total;
    w->hdr = (lc_shm_header *)w->map;
    w->ctrl0 = w->map + w->hdr->ctrl_off;
    w->heap0 = w->map + w->hdr->heap_off;
    w->ctrl_stride = w->hdr->ctrl_stride;
    w->heap_stride = w->hdr->heap_stride;
    if (heap_req > w->heap_stride)
        return lc__err(w, LC_ERR_ARG,
                       "this PE asks for a %zu-byte symmetric heap but the launcher made %zu bytes "
                       "per PE: launch with --heap or LONGCTX_HEAP_SIZE set to at least that",
                       heap_req, (size_t)w->heap_stride);
    w->heap_bytes = heap_req;
    atomic_store(&w->hdr->pe[pe].heap_req, heap_req);
    atomic_store(&w->hdr->pe[pe].pid, (int32_t)getpid());
    atomic_store(&w->hdr->pe[pe].state, LC_PE_RUNNING);
    w->be = &lc__shm_backend;
    return LC_OK;
}

void lc__shm_detach(lc_world *w)
{
    if (w->map) munmap(w->map, w->map_bytes);
    w->map = NULL;
}

/* My address of a symmetric object (heap or control region) -> PE pe's copy. The control
 * region is symmetric too: landing zones, FIFOs and signal words sit at the same offsets. */
static void *shm_ptr(lc_world *w, const void *sym, int pe)
{
    uintptr_t a = (uintptr_t)sym;
    uintptr_t heap_me = (uintptr_t)(w->heap0 + (size_t)w->me * w->heap_stride);
    uintptr_t ctrl_me = (uintptr_t)(w->ctrl0 + (size_t)w->me * w->ctrl_stride);
    if (pe < 0 || pe >= w->n) return NULL;
    if (a - heap_me < w->heap_bytes) return w->heap0 + (size_t)pe * w->heap_stride + (a - heap_me);
    if (a - ctrl_me < w->ctrl_stride) return w->ctrl0 + (size_t)pe * w->ctrl_stride + (a - ctrl_me);
    return NULL;
}

static int shm_put(lc_world *w, void *dst, const void *src, size_t bytes, int pe)
{
    if (bytes) memcpy(shm_ptr(w, dst, pe), src, bytes);
    return LC_OK;
}

static int shm_get(lc_world *w, void *dst, const void *src, size_t bytes, int pe)
{
    if (bytes) memcpy(dst, shm_ptr(w, src, pe), bytes);
    return LC_OK;
}

/* Release ordering keeps my plain loads and stores before the update; the doorbell wakes
 * the owner only if it sleeps. */
static int shm_signal_op(lc_world *w, _Atomic uint64_t *sig, uint64_t value, lc_sig_op op, int pe)
{
    _Atomic uint64_t *remote = shm_ptr(w, (const void *)sig, pe);
    if (op == LC_SIGNAL_SET) atomic_store_explicit(remote, value, memory_order_release);
    else atomic_fetch_add_explicit(remote, value, memory_order_release);
    lc__ring(w, pe);
    return LC_OK;
}

/* A full fence between data and signal, not only release: large memcpy uses non-temporal
 * stores, which x86 orders only with sfence/mfence. This is what keeps "data before signal". */
static int shm_put_signal(lc_world *w, void *dst, const void *src, size_t bytes, _Atomic uint64_t *sig,
                          uint64_t value, lc_sig_op op, int pe)
{
    if (bytes) memcpy(shm_ptr(w, dst, pe), src, bytes);
    atomic_thread_fence(memory_order_seq_cst);
    return shm_signal_op(w, sig, value, op, pe);
}

static int shm_wait(lc_world *w, _Atomic uint64_t *sig, lc_cmp cmp, uint64_t value, const char *op,
                    const char *what, uint64_t *observed)
{
    return lc__wait_sig(w, sig, w->me, cmp, value, op, what, observed);
}

/* Stores reach the peer's memory in order once fenced: fence and quiet are the same here. */
static void shm_fence(lc_world *w)
{
    (void)w;
    atomic_thread_fence(memory_order_seq_cst);
}

const lc_backend lc__shm_backend = {
    .name = "shm",
    .put = shm_put,
    .get = shm_get,
    .put_signal = shm_put_signal,
    .signal_op = shm_signal_op,
    .wait = shm_wait,
    .wait_pred = lc__wait,
    .fence = shm_fence,
    .quiet = shm_fence,
    .ptr = shm_ptr,
    .detach = lc__shm_detach,
};
