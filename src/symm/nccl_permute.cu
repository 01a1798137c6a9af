/* The two-sided twin of the one-sided permute: ncclSend/ncclRecv in one group, the way the
 * peers (TransformerEngine, ring-flash-attention) move KV blocks. It exists to be measured
 * against the NVSHMEM put-with-signal on the same stream and sizes.
 *
 * NCCL refuses two ranks of one communicator on the same GPU, so with several PEs per GPU
 * only a one-rank communicator (send to self) can be built. */
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "gpu_agree.h"
#include "gpu_err.h"
#include "longctx/gpu_symm.h"

#if defined(LONGCTX_HAVE_NCCL)
#include <nccl.h>

struct lc_gpu_nccl {
    ncclComm_t comm;
    int pe, n;
    int64_t *agree; /* lc_gpu_nccl_agree: [2] mine, then [2 * n] gathered (device) */
};

static int nccl_rc(ncclResult_t r, const char *what) {
    if (r == ncclSuccess) return LC_OK;
    return lcg_fail(LC_ERR_SYS, "%s: %s", what, ncclGetErrorString(r));
}

extern "C" int lc_gpu_have_nccl(void) { return 1; }

extern "C" int lc_gpu_nccl_uid_create(lc_gpu_uid *uid) {
    static_assert(sizeof(ncclUniqueId) <= LC_GPU_UID_BYTES, "uid size");
    ncclUniqueId id;
    int rc = nccl_rc(ncclGetUniqueId(&id), "ncclGetUniqueId");
    if (rc) return rc;
    memset(uid->bytes, 0, sizeof uid->bytes);
    memcpy(uid->bytes, &id, sizeof id);
    return LC_OK;
}

extern "C" int lc_gpu_nccl_init(const lc_gpu_uid *uid, int pe, int n_pes, lc_gpu_nccl **out) {
    if (!uid || !out || n_pes < 1 || pe < 0 || pe >= n_pes)
        return lcg_fail(LC_ERR_ARG, "lc_gpu_nccl_init: need uid, 0 <= pe < n_pes");
    lc_gpu_nccl *c = (lc_gpu_nccl *)calloc(1, sizeof *c);
    if (!c) return lcg_fail(LC_ERR_NOMEM, "out of memory");
    ncclUniqueId id;
    memcpy(&id, uid->bytes, sizeof id);
    /* before the collective init: a rank that cannot get it fails before the others wait */
    int rc = lcg_cuda(cudaMalloc((void **)&c->agree, sizeof(int64_t) * 2 * (1 + (size_t)n_pes)),
                      "lc_gpu_nccl_init: agreement buffer");
    if (!rc) rc = nccl_rc(ncclCommInitRank(&c->comm, n_pes, id, pe), "ncclCommInitRank");
    if (rc) {
        cudaFree(c->agree);
        free(c);
        return rc;
    }
    c->pe = pe;
    c->n = n_pes;
    *out = c;
    return LC_OK;
}

extern "C" int lc_gpu_nccl_permute(lc_gpu_nccl *c, int shift, const void *src, void *dst,
                                   size_t bytes, lc_gpu_stream s) {
    const int n = c->n;
    const int to = ((c->pe + shift) % n + n) % n, from = ((c->pe - shift) % n + n) % n;
    cudaStream_t st = (cudaStream_t)s;
    int rc = nccl_rc(ncclGroupStart(), "ncclGroupStart");
    if (rc) return rc;
    ncclResult_t r1 = ncclSend(src, bytes, ncclUint8, to, c->comm, st);
    ncclResult_t r2 = ncclRecv(dst, bytes, ncclUint8, from, c->comm, st);
    ncclResult_t r3 = ncclGroupEnd();
    if ((rc = nccl_rc(r1, "ncclSend"))) return rc;
    if ((rc = nccl_rc(r2, "ncclRecv"))) return rc;
    return nccl_rc(r3, "ncclGroupEnd");
}

extern "C" int lc_gpu_nccl_rank(const lc_gpu_nccl *c) { return c->pe; }
extern "C" int lc_gpu_nccl_size(const lc_gpu_nccl *c) { return c->n; }

extern "C" int lc_gpu_nccl_agree(lc_gpu_nccl *c, int status, uint32_t key, lc_gpu_agreement *out) {
    if (!c || !out) return lcg_fail(LC_ERR_ARG, "lc_gpu_nccl_agree: communicator or out is NULL");
    const int n = c->n;
    int64_t mine[2] = {status, (int64_t)key}, *all = (int64_t *)malloc(sizeof(int64_t) * 2 * (size_t)n);
    int rc = all ? LC_OK : lcg_fail(LC_ERR_NOMEM, "lc_gpu_nccl_agree: out of memory");
    if (!rc) rc = lcg_cuda(cudaMemcpy(c->agree, mine, sizeof mine, cudaMemcpyHostToDevice), "lc_gpu_nccl_agree: status in");
    /* every rank reaches the all-gather, also after a local failure here */
    ncclResult_t g = ncclAllGather(c->agree, c->agree + 2, 2, ncclInt64, c->comm, 0);
    if (!rc) rc = nccl_rc(g, "lc_gpu_nccl_agree: ncclAllGather");
    if (!rc) rc = lcg_cuda(cudaStreamSynchronize(0), "lc_gpu_nccl_agree: all-gather");
    if (!rc) rc = lcg_cuda(cudaMemcpy(all, c->agree + 2, sizeof(int64_t) * 2 * (size_t)n, cudaMemcpyDeviceToHost),
                           "lc_gpu_nccl_agree: statuses out");
    if (!rc) lcg_agree_read(all, n, out);
    free(all);
    return rc;
}

extern "C" int lc_gpu_nccl_finalize(lc_gpu_nccl *c) {
    if (!c) return LC_OK;
    int rc = nccl_rc(ncclCommDestroy(c->comm), "ncclCommDestroy");
    cudaFree(c->agree);
    free(c);
    return rc;
}

#else

static int nosup(const char *f) {
    return lcg_fail(LC_ERR_UNSUPPORTED, "%s: longctx was built without NCCL", f);
}
extern "C" int lc_gpu_have_nccl(void) { return 0; }
extern "C" int lc_gpu_nccl_uid_create(lc_gpu_uid *) { return nosup("lc_gpu_nccl_uid_create"); }
extern "C" int lc_gpu_nccl_init(const lc_gpu_uid *, int, int, lc_gpu_nccl **out) {
    if (out) *out = NULL;
    return nosup("lc_gpu_nccl_init");
}
extern "C" int lc_gpu_nccl_permute(lc_gpu_nccl *, int, const void *, void *, size_t, lc_gpu_stream) {
    return nosup("lc_gpu_nccl_permute");
}
extern "C" int lc_gpu_nccl_finalize(lc_gpu_nccl *) { return LC_OK; }
extern "C" int lc_gpu_nccl_rank(const lc_gpu_nccl *) { return 0; }
extern "C" int lc_gpu_nccl_size(const lc_gpu_nccl *) { return 1; }
extern "C" int lc_gpu_nccl_agree(lc_gpu_nccl *, int, uint32_t, lc_gpu_agreement *) { return nosup("lc_gpu_nccl_agree"); }

#endif
