/* NVSHMEM backend of the symmetric-memory runtime (GPU side of symm.h's model).
 *
 * Bootstrap is by unique id: one PE creates it, the caller ships the 128 bytes to the
 * others any way it likes (the CPU runtime's broadcast, a file, a pipe), so nothing here
 * depends on an MPI ABI. Our constants (LC_SIGNAL_*, LC_CMP_*) differ from NVSHMEM's
 * (NVSHMEM_SIGNAL_SET = 9, NVSHMEM_CMP_GE = 5, ...) and are translated only here.
 *
 * Signal waits on a stream default to our own one-thread wait kernel: it has a deadline
 * (design rule: no unbounded wait) and it works when several PEs share one GPU, where
 * NVSHMEM refuses *_wait_until_on_stream. A timed-out wait raises a flag in mapped host
 * memory that lc_gpu_world_check reports, and every later wait kernel returns at once, so a
 * dead peer turns into an error instead of a hung GPU.
 *
 * Built without NVSHMEM, every entry point returns LC_ERR_UNSUPPORTED. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda.h> /* types of the stream memory operations only; no libcuda link */
#include <cuda_runtime.h>

#include "common/err.h"
#include "common/settings.h"
#include "gpu_agree.h"
#include "gpu_err.h"
#include "longctx/gpu_symm.h"

#if defined(LONGCTX_HAVE_NVSHMEM)
#include <nvshmem.h>
#include <nvshmemx.h>

struct lc_gpu_team {
    lc_gpu_world *w;
    nvshmem_team_t team;
    int owned;
};

struct lc_gpu_world {
    int pe, n_pes, device, per_device;
    double timeout_s;
    int use_nvshmem_wait;
    /* mapped host memory: [0] failed flag, [1] observed, [2] expected, [3] cmp */
    unsigned long long *fail_host, *fail_dev;
    /* signal-only updates as an 8-byte put-with-signal into a symmetric scratch word, where
     * plain signal ops may be refused (several PEs per GPU) */
    int signal_via_put;
    void *scratch, *scratch_src;
    /* the fused put-signal-wait kernel: a ticket counting its blocks (device), and its
     * shape ($LONGCTX_GPU_FUSED_BLOCKS blocks at most, $LONGCTX_GPU_FUSED_CHUNK bytes each) */
    unsigned *ticket;
    /* lc_gpu_agree: symmetric [2] (my status, key) then [2 * n_pes] gathered */
    int64_t *agree;
    int fused_blocks;
    size_t fused_chunk;
    lc_gpu_team world;
    char err[256];
};

static int g_live = 0; /* NVSHMEM has one global state per process */

namespace {

__device__ __forceinline__ unsigned long long now_ns() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

__device__ __forceinline__ unsigned long long ld_acquire(const uint64_t *p) {
    unsigned long long v;
    asm volatile("ld.acquire.sys.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
    return v;
}

__host__ __device__ __forceinline__ bool cmp_ok(unsigned long long v, int cmp,
                                                unsigned long long x) {
    switch (cmp) {
    case LC_CMP_EQ: return v == x;
    case LC_CMP_NE: return v != x;
    case LC_CMP_GT: return v > x;
    case LC_CMP_GE: return v >= x;
    case LC_CMP_LT: return v < x;
    case LC_CMP_LE: return v <= x;
    }
    return false;
}

/* Plain stores, not an atomic: atomics on mapped host memory need PCIe atomics, which not
 * every host has. Two waits failing at once may mix their values; either says enough. */
__device__ void record_fail(unsigned long long *fail, unsigned long long seen,
                            unsigned long long want, int cmp) {
    volatile unsigned long long *f = fail;
    if (f[0]) return;
    f[1] = seen;
    f[2] = want;
    f[3] = (unsigned long long)cmp;
    __threadfence_system();
    f[0] = 1;
    __threadfence_system();
}

__global__ void wait_kernel(const uint64_t *sig, int cmp, unsigned long long value,
                            unsigned long long timeout_ns, unsigned long long *fail) {
    const unsigned long long t0 = now_ns();
    unsigned spins = 0;
    for (;;) {
        unsigned long long v = ld_acquire(sig);
        if (cmp_ok(v, cmp, value)) break;
        if (((++spins) & 255u) == 0) {
            if (*(volatile unsigned long long *)fail) return;
            if (now_ns() - t0 > timeout_ns) {
                record_fail(fail, v, value, cmp);
                return;
            }
        }
        __nanosleep(64);
    }
    /* later kernels on this stream read what the signal guarded */
    __threadfence_system();
}

/* Counting form for the ring: waits until *sig >= *count (+1 and stores it back when
 * consume): the expected value lives in device memory, so a captured CUDA graph can replay
 * the wait call after call. */
__global__ void wait_count_kernel(const uint64_t *sig, unsigned long long *count, int consume,
                                  unsigned long long timeout_ns, unsigned long long *fail) {
    const unsigned long long target = *count + (consume ? 1ull : 0ull);
    const unsigned long long t0 = now_ns();
    unsigned spins = 0;
    for (;;) {
        unsigned long long v = ld_acquire(sig);
        if (v >= target) break;
        if (((++spins) & 255u) == 0) {
            if (*(volatile unsigned long long *)fail) return;
            if (now_ns() - t0 > timeout_ns) {
                record_fail(fail, v, target, LC_CMP_GE);
                return;
            }
        }
        __nanosleep(64);
    }
    if (consume) *count = target;
    __threadfence_system();
}

/* One launch for a whole permute hop: every block puts its chunks of src to dst on PE pe;
 * the last block to finish (ticket) makes the data visible, raises the peer's signal and
 * waits for my own signal from my predecessor, with the deadline of wait_kernel. One launch
 * instead of the put, the signal and the wait kernel: the per-op cost is one launch. */
__global__ void put_signal_wait_kernel(char *dst, const char *src, size_t bytes, size_t chunk,
                                       uint64_t *sig, unsigned long long value, int nv_op, int pe,
                                       const uint64_t *wsig, int cmp, unsigned long long wvalue,
                                       unsigned *ticket, unsigned long long timeout_ns,
                                       unsigned long long *fail) {
    for (size_t off = (size_t)blockIdx.x * chunk; off < bytes; off += (size_t)gridDim.x * chunk) {
        const size_t n = bytes - off < chunk ? bytes - off : chunk;
        nvshmemx_putmem_block(dst + off, src + off, n, pe);
    }
    __syncthreads();
    __shared__ bool last;
    if (threadIdx.x == 0) {
        nvshmem_quiet(); /* this block's puts are delivered (a system fence) before its ticket */
        last = atomicAdd(ticket, 1u) == gridDim.x - 1;
    }
    __syncthreads();
    if (!last || threadIdx.x != 0) return;
    *ticket = 0; /* every block has counted: ready for the next launch in stream order */
    __threadfence(); /* the other blocks' quiet fenced their puts before their tickets */
    nvshmemx_signal_op(sig, value, nv_op, pe);
    const unsigned long long t0 = now_ns();
    unsigned spins = 0;
    for (;;) {
        const unsigned long long v = ld_acquire(wsig);
        if (cmp_ok(v, cmp, wvalue)) break;
        if (((++spins) & 255u) == 0) {
            if (*(volatile unsigned long long *)fail) return;
            if (now_ns() - t0 > timeout_ns) {
                record_fail(fail, v, wvalue, cmp);
                return;
            }
        }
        __nanosleep(32);
    }
    /* the acquire load above orders what the signal guarded before later kernels */
}

int to_nv_sig(int op) { return op == LC_SIGNAL_ADD ? NVSHMEM_SIGNAL_ADD : NVSHMEM_SIGNAL_SET; }

int to_nv_cmp(int c) {
    switch (c) {
    case LC_CMP_EQ: return NVSHMEM_CMP_EQ;
    case LC_CMP_NE: return NVSHMEM_CMP_NE;
    case LC_CMP_GT: return NVSHMEM_CMP_GT;
    case LC_CMP_GE: return NVSHMEM_CMP_GE;
    case LC_CMP_LT: return NVSHMEM_CMP_LT;
    case LC_CMP_LE: return NVSHMEM_CMP_LE;
    }
    return -1;
}

} // namespace

extern "C" int lc_gpu_have_nvshmem(void) { return 1; }

extern "C" int lc_gpu_uid_create(lc_gpu_uid *uid) {
    static_assert(sizeof(nvshmemx_uniqueid_t) <= LC_GPU_UID_BYTES, "uid size");
    if (!uid) return lcg_fail(LC_ERR_ARG, "lc_gpu_uid_create: uid is NULL");
    nvshmemx_uniqueid_t id = NVSHMEMX_UNIQUEID_INITIALIZER;
    if (nvshmemx_get_uniqueid(&id) != 0)
        return lcg_fail(LC_ERR_SYS, "nvshmemx_get_uniqueid failed");
    memset(uid->bytes, 0, sizeof uid->bytes);
    memcpy(uid->bytes, &id, sizeof id);
    return LC_OK;
}

extern "C" int lc_gpu_world_init(const lc_gpu_world_opts *o, lc_gpu_world **out) {
    if (!o || !out || !o->uid || o->n_pes < 1 || o->pe < 0 || o->pe >= o->n_pes)
        return lcg_fail(LC_ERR_ARG, "lc_gpu_world_init: need uid, 0 <= pe < n_pes");
    if (g_live) return lcg_fail(LC_ERR_ARG, "lc_gpu_world_init: NVSHMEM allows one world per process");
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess) {
        (void)cudaGetLastError(); /* the runtime keeps the error sticky otherwise */
        ndev = 0;
    }
    if (ndev < 1) return lcg_fail(LC_ERR_UNSUPPORTED, "lc_gpu_world_init: no CUDA device");
    lc_gpu_world *w = (lc_gpu_world *)calloc(1, sizeof *w);
    if (!w) return lcg_fail(LC_ERR_NOMEM, "lc_gpu_world_init: out of memory");
    w->pe = o->pe;
    w->n_pes = o->n_pes;
    w->device = o->device >= 0 ? o->device : o->pe % ndev;
    w->timeout_s = o->timeout_s > 0 ? o->timeout_s : 0;
    if (w->timeout_s == 0) {
        const char *t = lc__env_str("LONGCTX_TIMEOUT");
        w->timeout_s = t && atof(t) > 0 ? atof(t) : 120.0;
    }
    /* LONGCTX_TIMEOUT=inf (unbounded on the CPU side): device waits count nanoseconds in
     * 64 bits, so cap the bound where that cannot overflow. */
    if (!(w->timeout_s < 1e9)) w->timeout_s = 1e9;
    const char *wm = lc__env_str("LONGCTX_GPU_WAIT");
    w->use_nvshmem_wait = wm && !strcmp(wm, "nvshmem");
    int rc = lcg_cuda(cudaSetDevice(w->device), "cudaSetDevice");
    if (rc) { free(w); return rc; }
    if (o->heap_bytes) {
        char buf[32];
        snprintf(buf, sizeof buf, "%zu", o->heap_bytes);
        setenv("NVSHMEM_SYMMETRIC_SIZE", buf, 1);
    }
    rc = lcg_cuda(cudaHostAlloc((void **)&w->fail_host, 4 * sizeof(unsigned long long),
                                cudaHostAllocMapped), "cudaHostAlloc(wait flag)");
    if (rc) { free(w); return rc; }
    memset(w->fail_host, 0, 4 * sizeof(unsigned long long));
    cudaHostGetDevicePointer((void **)&w->fail_dev, w->fail_host, 0);

    nvshmemx_uniqueid_t id;
    memcpy(&id, o->uid->bytes, sizeof id);
    nvshmemx_init_attr_t attr = NVSHMEMX_INIT_ATTR_INITIALIZER;
    if (nvshmemx_set_attr_uniqueid_args(o->pe, o->n_pes, &id, &attr) != 0) {
        cudaFreeHost(w->fail_host);
        free(w);
        return lcg_fail(LC_ERR_SYS, "nvshmemx_set_attr_uniqueid_args failed");
    }
    if (nvshmemx_init_attr(NVSHMEMX_INIT_WITH_UNIQUEID, &attr) != 0) {
        cudaFreeHost(w->fail_host);
        free(w);
        return lcg_fail(LC_ERR_SYS, "nvshmemx_init_attr(unique id) failed");
    }
    g_live = 1;
    if (nvshmem_my_pe() != o->pe || nvshmem_n_pes() != o->n_pes) {
        lcg_fail(LC_ERR_MISMATCH, "NVSHMEM says pe %d of %d, expected %d of %d", nvshmem_my_pe(),
                 nvshmem_n_pes(), o->pe, o->n_pes);
        nvshmem_finalize();
        g_live = 0;
        cudaFreeHost(w->fail_host);
        free(w);
        return LC_ERR_MISMATCH;
    }
    const int node = nvshmem_team_n_pes(NVSHMEMX_TEAM_NODE);
    w->per_device = node > ndev ? (node + ndev - 1) / ndev : 1;
    const char *sv = lc__env_str("LONGCTX_GPU_SIGNAL_VIA_PUT");
    w->signal_via_put = sv ? atoi(sv) != 0 : w->per_device > 1;
    w->scratch = nvshmem_malloc(64); /* collective: every PE allocates it, used or not */
    if (!w->scratch || cudaMalloc(&w->scratch_src, 64) != cudaSuccess) {
        nvshmem_finalize();
        g_live = 0;
        cudaFreeHost(w->fail_host);
        free(w);
        return lcg_fail(LC_ERR_NOMEM, "lc_gpu_world_init: scratch allocation failed");
    }
    cudaMemset(w->scratch_src, 0, 64);
    w->agree = (int64_t *)nvshmem_malloc(sizeof(int64_t) * (2 + 2 * (size_t)w->n_pes)); /* collective */
    if (!w->agree || cudaMalloc((void **)&w->ticket, sizeof(unsigned)) != cudaSuccess) {
        if (w->agree) nvshmem_free(w->agree);
        nvshmem_free(w->scratch);
        cudaFree(w->scratch_src);
        nvshmem_finalize();
        g_live = 0;
        cudaFreeHost(w->fail_host);
        free(w);
        return lcg_fail(LC_ERR_NOMEM, "lc_gpu_world_init: ticket allocation failed");
    }
    cudaMemset(w->ticket, 0, sizeof(unsigned));
    {
        int sms = 0;
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, w->device);
        const char *fb = lc__env_str("LONGCTX_GPU_FUSED_BLOCKS"), *fc = lc__env_str("LONGCTX_GPU_FUSED_CHUNK");
        w->fused_blocks = fb && atoi(fb) > 0 ? atoi(fb) : (sms > 0 ? sms : 32);
        w->fused_chunk = fc && atol(fc) >= 256 ? (size_t)atol(fc) : (size_t)64 << 10;
    }
    w->world.w = w;
    w->world.team = NVSHMEM_TEAM_WORLD;
    w->world.owned = 0;
    *out = w;
    return LC_OK;
}

extern "C" int lc_gpu_world_finalize(lc_gpu_world *w) {
    if (!w) return LC_OK;
    cudaDeviceSynchronize();
    nvshmem_barrier_all();
    nvshmem_free(w->agree);
    nvshmem_free(w->scratch);
    cudaFree(w->scratch_src);
    cudaFree(w->ticket);
    nvshmem_finalize();
    g_live = 0;
    cudaFreeHost(w->fail_host);
    free(w);
    return LC_OK;
}

extern "C" int lc_gpu_my_pe(const lc_gpu_world *w) { return w->pe; }
extern "C" int lc_gpu_n_pes(const lc_gpu_world *w) { return w->n_pes; }
extern "C" int lc_gpu_pes_per_device(const lc_gpu_world *w) { return w->per_device; }
extern "C" const char *lc_gpu_world_error(const lc_gpu_world *w) { return w->err; }

extern "C" void *lc_gpu_symm_alloc(lc_gpu_world *w, size_t bytes) {
    void *p = nvshmem_malloc(bytes);
    if (!p) {
        snprintf(w->err, sizeof w->err, "PE %d: nvshmem_malloc(%zu) failed (heap exhausted? set NVSHMEM_SYMMETRIC_SIZE)", w->pe, bytes);
        lcg_fail(LC_ERR_NOMEM, "%s", w->err);
    }
    return p;
}

extern "C" int lc_gpu_symm_free(lc_gpu_world *w, void *p) {
    (void)w;
    nvshmem_free(p);
    return LC_OK;
}

extern "C" void *lc_gpu_symm_ptr(lc_gpu_world *w, const void *p, int pe) {
    (void)w;
    return nvshmem_ptr(p, pe);
}

static int check_pe(lc_gpu_world *w, int pe, const char *op) {
    if (pe < 0 || pe >= w->n_pes) return lcg_fail(LC_ERR_ARG, "%s: PE %d out of range [0,%d)", op, pe, w->n_pes);
    return LC_OK;
}

extern "C" int lc_gpu_put_on_stream(lc_gpu_world *w, void *dst, const void *src, size_t bytes,
                                    int pe, lc_gpu_stream s) {
    int rc = check_pe(w, pe, "lc_gpu_put_on_stream");
    if (rc) return rc;
    nvshmemx_putmem_on_stream(dst, src, bytes, pe, (cudaStream_t)s);
    return lcg_cuda(cudaGetLastError(), "nvshmemx_putmem_on_stream");
}

extern "C" int lc_gpu_put_signal_on_stream(lc_gpu_world *w, void *dst, const void *src,
                                           size_t bytes, uint64_t *sig, uint64_t value, int op,
                                           int pe, lc_gpu_stream s) {
    int rc = check_pe(w, pe, "lc_gpu_put_signal_on_stream");
    if (rc) return rc;
    if (op != LC_SIGNAL_SET && op != LC_SIGNAL_ADD)
        return lcg_fail(LC_ERR_ARG, "lc_gpu_put_signal_on_stream: op must be LC_SIGNAL_SET or ADD");
    nvshmemx_putmem_signal_on_stream(dst, src, bytes, sig, value, to_nv_sig(op), pe,
                                     (cudaStream_t)s);
    return lcg_cuda(cudaGetLastError(), "nvshmemx_putmem_signal_on_stream");
}

extern "C" int lc_gpu_signal_op_on_stream(lc_gpu_world *w, uint64_t *sig, uint64_t value, int op,
                                          int pe, lc_gpu_stream s) {
    int rc = check_pe(w, pe, "lc_gpu_signal_op_on_stream");
    if (rc) return rc;
    if (w->signal_via_put) {
        nvshmemx_putmem_signal_on_stream(w->scratch, w->scratch_src, 8, sig, value, to_nv_sig(op), pe,
                                         (cudaStream_t)s);
        return lcg_cuda(cudaGetLastError(), "nvshmemx_putmem_signal_on_stream (signal op)");
    }
    nvshmemx_signal_op_on_stream(sig, value, to_nv_sig(op), pe, (cudaStream_t)s);
    return lcg_cuda(cudaGetLastError(), "nvshmemx_signal_op_on_stream");
}

extern "C" int lc_gpu_signal_wait_on_stream(lc_gpu_world *w, uint64_t *sig, int cmp,
                                            uint64_t value, lc_gpu_stream s) {
    if (to_nv_cmp(cmp) < 0) return lcg_fail(LC_ERR_ARG, "lc_gpu_signal_wait_on_stream: bad cmp %d", cmp);
    if (w->use_nvshmem_wait && w->per_device == 1) {
        nvshmemx_signal_wait_until_on_stream(sig, to_nv_cmp(cmp), value, (cudaStream_t)s);
        return lcg_cuda(cudaGetLastError(), "nvshmemx_signal_wait_until_on_stream");
    }
    wait_kernel<<<1, 1, 0, (cudaStream_t)s>>>(sig, cmp, value,
                                              (unsigned long long)(w->timeout_s * 1e9), w->fail_dev);
    return lcg_cuda(cudaGetLastError(), "signal wait kernel");
}

extern "C" int lc_gpu_put_signal_wait_on_stream(lc_gpu_world *w, void *dst, const void *src,
                                                size_t bytes, uint64_t *sig, uint64_t value, int op,
                                                int pe, uint64_t *wsig, int cmp, uint64_t wvalue,
                                                lc_gpu_stream s) {
    int rc = check_pe(w, pe, "lc_gpu_put_signal_wait_on_stream");
    if (rc) return rc;
    if (op != LC_SIGNAL_SET && op != LC_SIGNAL_ADD)
        return lcg_fail(LC_ERR_ARG, "lc_gpu_put_signal_wait_on_stream: op must be LC_SIGNAL_SET or ADD");
    if (to_nv_cmp(cmp) < 0) return lcg_fail(LC_ERR_ARG, "lc_gpu_put_signal_wait_on_stream: bad cmp %d", cmp);
    if (bytes && (!dst || !src)) return lcg_fail(LC_ERR_ARG, "lc_gpu_put_signal_wait_on_stream: dst or src is NULL");
    size_t nb = (bytes + w->fused_chunk - 1) / w->fused_chunk;
    if (nb < 1) nb = 1;
    if (nb > (size_t)w->fused_blocks) nb = (size_t)w->fused_blocks;
    put_signal_wait_kernel<<<(unsigned)nb, 256, 0, (cudaStream_t)s>>>(
        (char *)dst, (const char *)src, bytes, w->fused_chunk, sig, value, to_nv_sig(op), pe, wsig, cmp, wvalue,
        w->ticket, (unsigned long long)(w->timeout_s * 1e9), w->fail_dev);
    return lcg_cuda(cudaGetLastError(), "put-signal-wait kernel");
}

/* The driver's stream memory operations, looked up once through the runtime (so nothing
 * links libcuda): a signal written or waited for by the stream's front end, no kernel. */
typedef CUresult (*memop_fn)(CUstream, CUdeviceptr, cuuint64_t, unsigned int);
static memop_fn g_write64, g_wait64;
static int memops(void) {
    static int state = 0; /* 0 unknown, 1 ready, -1 absent */
    if (state == 0) {
        cudaDriverEntryPointQueryResult q1 = cudaDriverEntryPointSymbolNotFound, q2 = q1;
        void *a = NULL, *b = NULL;
        int dev = 0, ok64 = 0;
        cudaGetDevice(&dev);
        cudaDeviceGetAttribute(&ok64, (cudaDeviceAttr)CU_DEVICE_ATTRIBUTE_CAN_USE_64_BIT_STREAM_MEM_OPS, dev);
        if (cudaGetDriverEntryPointByVersion("cuStreamWriteValue64", &a, 12000, cudaEnableDefault, &q1) == cudaSuccess &&
            cudaGetDriverEntryPointByVersion("cuStreamWaitValue64", &b, 12000, cudaEnableDefault, &q2) == cudaSuccess &&
            q1 == cudaDriverEntryPointSuccess && q2 == cudaDriverEntryPointSuccess && a && b && ok64) {
            g_write64 = (memop_fn)a;
            g_wait64 = (memop_fn)b;
            state = 1;
        } else {
            (void)cudaGetLastError();
            state = -1;
        }
    }
    return state == 1;
}

extern "C" int lc_gpu_put_signal_ce_on_stream(lc_gpu_world *w, void *dst, const void *src, size_t bytes,
                                              uint64_t *sig, uint64_t value, int pe, lc_gpu_stream s) {
    int rc = check_pe(w, pe, "lc_gpu_put_signal_ce_on_stream");
    if (rc) return rc;
    if (!memops())
        return lcg_fail(LC_ERR_UNSUPPORTED, "lc_gpu_put_signal_ce_on_stream: the driver has no 64-bit stream memory operations");
    void *pd = nvshmem_ptr(dst, pe), *ps = nvshmem_ptr(sig, pe);
    if ((bytes && !pd) || !ps)
        return lcg_fail(LC_ERR_UNSUPPORTED,
                        "lc_gpu_put_signal_ce_on_stream: PE %d is not load/store reachable from PE %d (use lc_gpu_put_signal_on_stream)",
                        pe, w->pe);
    if (bytes) {
        rc = lcg_cuda(cudaMemcpyAsync(pd, src, bytes, cudaMemcpyDeviceToDevice, (cudaStream_t)s), "copy-engine put");
        if (rc) return rc;
    }
    /* default flags: a system-wide fence before the write, so the data lands first */
    CUresult e = g_write64((CUstream)s, (CUdeviceptr)ps, value, CU_STREAM_WRITE_VALUE_DEFAULT);
    return e == CUDA_SUCCESS ? LC_OK : lcg_fail(LC_ERR_SYS, "cuStreamWriteValue64 failed (%d)", (int)e);
}

extern "C" int lc_gpu_signal_wait_memop_on_stream(lc_gpu_world *w, uint64_t *sig, int cmp, uint64_t value,
                                                  lc_gpu_stream s) {
    (void)w;
    if (cmp != LC_CMP_GE && cmp != LC_CMP_EQ)
        return lcg_fail(LC_ERR_ARG, "lc_gpu_signal_wait_memop_on_stream: cmp must be LC_CMP_GE or LC_CMP_EQ");
    if (!memops())
        return lcg_fail(LC_ERR_UNSUPPORTED, "lc_gpu_signal_wait_memop_on_stream: the driver has no 64-bit stream memory operations");
    CUresult e = g_wait64((CUstream)s, (CUdeviceptr)sig, value, cmp == LC_CMP_GE ? CU_STREAM_WAIT_VALUE_GEQ : CU_STREAM_WAIT_VALUE_EQ);
    return e == CUDA_SUCCESS ? LC_OK : lcg_fail(LC_ERR_SYS, "cuStreamWaitValue64 failed (%d)", (int)e);
}

int lcg_wait_count_on_stream(lc_gpu_world *w, uint64_t *sig, unsigned long long *count,
                             int consume, cudaStream_t s) {
    wait_count_kernel<<<1, 1, 0, s>>>(sig, count, consume, (unsigned long long)(w->timeout_s * 1e9),
                                      w->fail_dev);
    return lcg_cuda(cudaGetLastError(), "signal count wait kernel");
}

extern "C" int lc_gpu_quiet_on_stream(lc_gpu_world *w, lc_gpu_stream s) {
    (void)w;
    nvshmemx_quiet_on_stream((cudaStream_t)s);
    return lcg_cuda(cudaGetLastError(), "nvshmemx_quiet_on_stream");
}

extern "C" int lc_gpu_quiet(lc_gpu_world *w) {
    (void)w;
    nvshmem_quiet();
    return LC_OK;
}

extern "C" int lc_gpu_barrier_all(lc_gpu_world *w) {
    (void)w;
    nvshmem_barrier_all();
    return LC_OK;
}

/* The all-gather is built from puts and barriers only: those are what NVSHMEM promises when
 * several PEs share one GPU (collectives such as fcollect are not). Each PE puts its two words
 * into its own slot of every PE's gather array; the first barrier keeps a PE from writing into
 * an array whose owner may still be reading the previous agreement, the second completes every
 * put (barrier_all implies quiet). Stream 0, as the synchronous copy in before it. */
extern "C" int lc_gpu_agree(lc_gpu_world *w, int status, uint32_t key, lc_gpu_agreement *out) {
    if (!w || !out) return lcg_fail(LC_ERR_ARG, "lc_gpu_agree: world or out is NULL");
    const int n = w->n_pes;
    int64_t mine[2] = {status, (int64_t)key}, *all = (int64_t *)malloc(sizeof(int64_t) * 2 * (size_t)n);
    int rc = all ? LC_OK : lcg_fail(LC_ERR_NOMEM, "lc_gpu_agree: out of memory");
    if (!rc) rc = lcg_cuda(cudaMemcpy(w->agree, mine, sizeof mine, cudaMemcpyHostToDevice), "lc_gpu_agree: status in");
    /* every PE reaches both barriers and makes its puts, also after a local failure here */
    nvshmemx_barrier_all_on_stream(0);
    for (int pe = 0; pe < n; pe++)
        nvshmemx_putmem_on_stream(w->agree + 2 + 2 * (size_t)w->pe, w->agree, sizeof mine, pe, 0);
    nvshmemx_barrier_all_on_stream(0);
    if (!rc) rc = lcg_cuda(cudaGetLastError(), "lc_gpu_agree: puts and barriers");
    if (!rc) rc = lcg_cuda(cudaStreamSynchronize(0), "lc_gpu_agree: all-gather");
    if (!rc) rc = lcg_cuda(cudaMemcpy(all, w->agree + 2, sizeof(int64_t) * 2 * (size_t)n, cudaMemcpyDeviceToHost),
                           "lc_gpu_agree: statuses out");
    if (!rc) lcg_agree_read(all, n, out);
    free(all);
    return rc;
}

extern "C" int lc_gpu_barrier_all_on_stream(lc_gpu_world *w, lc_gpu_stream s) {
    (void)w;
    nvshmemx_barrier_all_on_stream((cudaStream_t)s);
    return lcg_cuda(cudaGetLastError(), "nvshmemx_barrier_all_on_stream");
}

extern "C" int lc_gpu_world_check(lc_gpu_world *w, lc_gpu_stream s) {
    int rc = lcg_cuda(cudaStreamSynchronize((cudaStream_t)s), "cudaStreamSynchronize");
    if (rc) return rc;
    volatile unsigned long long *f = w->fail_host;
    if (f[0]) {
        static const char *names[] = {"==", "!=", ">", ">=", "<", "<="};
        snprintf(w->err, sizeof w->err,
                 "PE %d: signal wait timed out after %.0f s: saw %llu, waited for %s %llu "
                 "(a peer died or never sent)",
                 w->pe, w->timeout_s, f[1], f[3] < 6 ? names[f[3]] : "?", f[2]);
        return lcg_fail(LC_ERR_TIMEOUT, "%s", w->err);
    }
    return LC_OK;
}

extern "C" lc_gpu_team *lc_gpu_team_world(lc_gpu_world *w) { return &w->world; }

extern "C" int lc_gpu_team_split_strided(lc_gpu_team *parent, int start, int stride, int size,
                                         lc_gpu_team **out) {
    if (!parent || !out) return lcg_fail(LC_ERR_ARG, "lc_gpu_team_split_strided: NULL argument");
    *out = NULL;
    if (parent->w->per_device > 1)
        return lcg_fail(LC_ERR_UNSUPPORTED,
                        "team split refused: NVSHMEM with several PEs per GPU (without MPS)");
    nvshmem_team_t t = NVSHMEM_TEAM_INVALID;
    if (nvshmem_team_split_strided(parent->team, start, stride, size, NULL, 0, &t) != 0)
        return lcg_fail(LC_ERR_SYS, "nvshmem_team_split_strided failed");
    if (t == NVSHMEM_TEAM_INVALID) return LC_OK; /* not a member */
    lc_gpu_team *n = (lc_gpu_team *)calloc(1, sizeof *n);
    if (!n) return lcg_fail(LC_ERR_NOMEM, "out of memory");
    n->w = parent->w;
    n->team = t;
    n->owned = 1;
    *out = n;
    return LC_OK;
}

extern "C" int lc_gpu_team_my_pe(const lc_gpu_team *t) { return nvshmem_team_my_pe(t->team); }
extern "C" int lc_gpu_team_n_pes(const lc_gpu_team *t) { return nvshmem_team_n_pes(t->team); }
extern "C" int lc_gpu_team_world_pe(const lc_gpu_team *t, int r) {
    return nvshmem_team_translate_pe(t->team, r, NVSHMEM_TEAM_WORLD);
}
extern "C" void lc_gpu_team_destroy(lc_gpu_team *t) {
    if (!t || !t->owned) return;
    nvshmem_team_destroy(t->team);
    free(t);
}

#else /* no NVSHMEM in this build */

static int nosup(const char *f) {
    return lcg_fail(LC_ERR_UNSUPPORTED, "%s: longctx was built without NVSHMEM", f);
}
extern "C" int lc_gpu_have_nvshmem(void) { return 0; }
extern "C" int lc_gpu_uid_create(lc_gpu_uid *) { return nosup("lc_gpu_uid_create"); }
extern "C" int lc_gpu_world_init(const lc_gpu_world_opts *, lc_gpu_world **out) {
    if (out) *out = NULL;
    return nosup("lc_gpu_world_init");
}
extern "C" int lc_gpu_world_finalize(lc_gpu_world *) { return LC_OK; }
extern "C" int lc_gpu_my_pe(const lc_gpu_world *) { return 0; }
extern "C" int lc_gpu_n_pes(const lc_gpu_world *) { return 1; }
extern "C" int lc_gpu_pes_per_device(const lc_gpu_world *) { return 1; }
extern "C" const char *lc_gpu_world_error(const lc_gpu_world *) { return "built without NVSHMEM"; }
extern "C" void *lc_gpu_symm_alloc(lc_gpu_world *, size_t) { nosup("lc_gpu_symm_alloc"); return NULL; }
extern "C" int lc_gpu_symm_free(lc_gpu_world *, void *) { return nosup("lc_gpu_symm_free"); }
extern "C" void *lc_gpu_symm_ptr(lc_gpu_world *, const void *, int) { return NULL; }
extern "C" int lc_gpu_put_on_stream(lc_gpu_world *, void *, const void *, size_t, int, lc_gpu_stream) { return nosup("lc_gpu_put_on_stream"); }
extern "C" int lc_gpu_put_signal_on_stream(lc_gpu_world *, void *, const void *, size_t, uint64_t *, uint64_t, int, int, lc_gpu_stream) { return nosup("lc_gpu_put_signal_on_stream"); }
extern "C" int lc_gpu_signal_op_on_stream(lc_gpu_world *, uint64_t *, uint64_t, int, int, lc_gpu_stream) { return nosup("lc_gpu_signal_op_on_stream"); }
extern "C" int lc_gpu_put_signal_wait_on_stream(lc_gpu_world *, void *, const void *, size_t, uint64_t *, uint64_t, int, int,
                                                uint64_t *, int, uint64_t, lc_gpu_stream) {
    return nosup("lc_gpu_put_signal_wait_on_stream");
}
extern "C" int lc_gpu_put_signal_ce_on_stream(lc_gpu_world *, void *, const void *, size_t, uint64_t *, uint64_t, int,
                                              lc_gpu_stream) {
    return nosup("lc_gpu_put_signal_ce_on_stream");
}
extern "C" int lc_gpu_signal_wait_memop_on_stream(lc_gpu_world *, uint64_t *, int, uint64_t, lc_gpu_stream) {
    return nosup("lc_gpu_signal_wait_memop_on_stream");
}
extern "C" int lc_gpu_signal_wait_on_stream(lc_gpu_world *, uint64_t *, int, uint64_t, lc_gpu_stream) { return nosup("lc_gpu_signal_wait_on_stream"); }
extern "C" int lc_gpu_quiet_on_stream(lc_gpu_world *, lc_gpu_stream) { return nosup("lc_gpu_quiet_on_stream"); }
int lcg_wait_count_on_stream(lc_gpu_world *, uint64_t *, unsigned long long *, int, cudaStream_t) {
    return nosup("lcg_wait_count_on_stream");
}
extern "C" int lc_gpu_quiet(lc_gpu_world *) { return nosup("lc_gpu_quiet"); }
extern "C" int lc_gpu_barrier_all(lc_gpu_world *) { return nosup("lc_gpu_barrier_all"); }
extern "C" int lc_gpu_agree(lc_gpu_world *, int, uint32_t, lc_gpu_agreement *) { return nosup("lc_gpu_agree"); }
extern "C" int lc_gpu_barrier_all_on_stream(lc_gpu_world *, lc_gpu_stream) { return nosup("lc_gpu_barrier_all_on_stream"); }
extern "C" int lc_gpu_world_check(lc_gpu_world *, lc_gpu_stream) { return nosup("lc_gpu_world_check"); }
extern "C" lc_gpu_team *lc_gpu_team_world(lc_gpu_world *) { return NULL; }
extern "C" int lc_gpu_team_split_strided(lc_gpu_team *, int, int, int, lc_gpu_team **out) {
    if (out) *out = NULL;
    return nosup("lc_gpu_team_split_strided");
}
extern "C" int lc_gpu_team_my_pe(const lc_gpu_team *) { return -1; }
extern "C" int lc_gpu_team_n_pes(const lc_gpu_team *) { return 0; }
extern "C" int lc_gpu_team_world_pe(const lc_gpu_team *, int) { return -1; }
extern "C" void lc_gpu_team_destroy(lc_gpu_team *) {}

#endif
