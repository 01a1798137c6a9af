/* The one-sided permute primitives on the GPU: put-with-signal (SET and ADD) between two
 * PEs sharing the GPU, the device-side signal wait, its deadline (a wait nobody answers
 * must end as LC_ERR_TIMEOUT, not hang), the fused put-signal-wait kernel, the copy-engine
 * put with a signal write, and the NCCL
 * two-sided twin on one rank.
 * Exits 77 without a device; the NVSHMEM part skips without NVSHMEM, the NCCL part
 * without NCCL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test_util.h"

static int pe_main(int pe, int n, const lc_gpu_uid *uid, void *arg) {
    (void)arg;
    lc_gpu_world_opts wo = {pe, n, uid, -1, (size_t)64 << 20, 5.0};
    lc_gpu_world *w = NULL;
    if (lc_gpu_world_init(&wo, &w)) {
        fprintf(stderr, "PE %d: %s\n", pe, lc_gpu_last_error());
        return 1;
    }
    const size_t N = (size_t)1 << 20;
    unsigned char *buf = lc_gpu_symm_alloc(w, N);
    uint64_t *sig = lc_gpu_symm_alloc(w, 4 * sizeof(uint64_t));
    unsigned char *src = gt_dev_alloc(N), *h = malloc(N);
    for (size_t i = 0; i < N; i++) h[i] = (unsigned char)(i * 7 + pe);
    gt_h2d(src, h, N);
    uint64_t z[4] = {0, 0, 0, 0};
    gt_h2d(sig, z, sizeof z);
    gt_sync();
    GT_CHECK(lc_gpu_barrier_all(w));
    int ok = 1;
    const int peer = (pe + 1) % n;
    for (int it = 1; it <= 3; it++) {
        GT_CHECK(lc_gpu_put_signal_on_stream(w, buf, src, N, &sig[0], (uint64_t)it, LC_SIGNAL_SET, peer, NULL));
        GT_CHECK(lc_gpu_signal_op_on_stream(w, &sig[1], 5, LC_SIGNAL_ADD, peer, NULL));
        GT_CHECK(lc_gpu_signal_wait_on_stream(w, &sig[0], LC_CMP_GE, (uint64_t)it, NULL));
        GT_CHECK(lc_gpu_signal_wait_on_stream(w, &sig[1], LC_CMP_EQ, (uint64_t)(5 * it), NULL));
        GT_CHECK(lc_gpu_world_check(w, NULL));
        GT_CHECK(lc_gpu_barrier_all(w)); /* the peer's next put must not race my check */
        gt_d2h(h, buf, N);
        const int from = (pe + n - 1) % n;
        for (size_t i = 0; i < N; i++)
            if (h[i] != (unsigned char)(i * 7 + from)) {
                fprintf(stderr, "PE %d: byte %zu is %u, expected %u\n", pe, i, h[i], (unsigned char)(i * 7 + from));
                ok = 0;
                break;
            }
        GT_CHECK(lc_gpu_barrier_all(w));
    }
    /* the fused hop (one kernel: put, signal, wait for my predecessor's), at an odd size that
     * spans several blocks and ends inside a chunk, on several calls in a row */
    {
        const size_t M = N - 13;
        for (int it = 1; it <= 3 && ok; it++) {
            for (size_t i = 0; i < N; i++) h[i] = (unsigned char)(i * 11 + pe + 3 * it);
            gt_h2d(src, h, N);
            gt_sync();
            GT_CHECK(lc_gpu_put_signal_wait_on_stream(w, buf, src, M, &sig[3], 1, LC_SIGNAL_ADD, peer, &sig[3],
                                                      LC_CMP_GE, (uint64_t)it, NULL));
            GT_CHECK(lc_gpu_world_check(w, NULL));
            GT_CHECK(lc_gpu_barrier_all(w));
            gt_d2h(h, buf, M);
            const int from = (pe + n - 1) % n;
            for (size_t i = 0; i < M; i++)
                if (h[i] != (unsigned char)(i * 11 + from + 3 * it)) {
                    fprintf(stderr, "PE %d fused call %d: byte %zu is %u, expected %u\n", pe, it, i, h[i],
                            (unsigned char)(i * 11 + from + 3 * it));
                    ok = 0;
                    break;
                }
            GT_CHECK(lc_gpu_barrier_all(w));
        }
        printf("%s PE %d: fused put-signal-wait kernel, %zu bytes, 3 calls\n", ok ? "ok  " : "FAIL", pe, M);
        /* the copy-engine put with a front-end signal write, then the bounded wait */
        for (int it = 1; it <= 2 && ok; it++) {
            for (size_t i = 0; i < N; i++) h[i] = (unsigned char)(i * 5 + pe + 7 * it);
            gt_h2d(src, h, N);
            gt_sync();
            int rc = lc_gpu_put_signal_ce_on_stream(w, buf, src, M, &sig[3], (uint64_t)(100 + it), peer, NULL);
            if (rc == LC_ERR_UNSUPPORTED) {
                printf("skip PE %d: copy-engine put: %s\n", pe, lc_gpu_last_error());
                break;
            }
            GT_CHECK(rc);
            GT_CHECK(lc_gpu_signal_wait_on_stream(w, &sig[3], LC_CMP_EQ, (uint64_t)(100 + it), NULL));
            GT_CHECK(lc_gpu_world_check(w, NULL));
            GT_CHECK(lc_gpu_barrier_all(w));
            gt_d2h(h, buf, M);
            const int from = (pe + n - 1) % n;
            for (size_t i = 0; i < M; i++)
                if (h[i] != (unsigned char)(i * 5 + from + 7 * it)) {
                    fprintf(stderr, "PE %d copy-engine call %d: byte %zu is %u, expected %u\n", pe, it, i, h[i],
                            (unsigned char)(i * 5 + from + 7 * it));
                    ok = 0;
                    break;
                }
            GT_CHECK(lc_gpu_barrier_all(w));
            if (it == 2) printf("%s PE %d: copy-engine put with signal write, %zu bytes\n", ok ? "ok  " : "FAIL", pe, M);
        }
    }
    /* a wait that nobody answers ends at its deadline with a named error */
    GT_CHECK(lc_gpu_signal_wait_on_stream(w, &sig[2], LC_CMP_GE, 1, NULL));
    int rc = lc_gpu_world_check(w, NULL);
    if (rc != LC_ERR_TIMEOUT) {
        fprintf(stderr, "PE %d: unanswered wait returned %d, expected LC_ERR_TIMEOUT\n", pe, rc);
        ok = 0;
    } else if (pe == 0)
        printf("timeout reported as: %s\n", lc_gpu_world_error(w));
    printf("%s PE %d: put-with-signal SET/ADD, device wait, deadline\n", ok ? "ok  " : "FAIL", pe);
    gt_dev_free(src);
    free(h);
    lc_gpu_world_finalize(w);
    return ok ? 0 : 1;
}

static int nccl_self(void) {
    if (!lc_gpu_have_nccl()) {
        printf("skip: NCCL twin (built without NCCL)\n");
        return 1;
    }
    lc_gpu_uid uid;
    lc_gpu_nccl *c = NULL;
    GT_CHECK(lc_gpu_nccl_uid_create(&uid));
    GT_CHECK(lc_gpu_nccl_init(&uid, 0, 1, &c));
    const size_t N = 1 << 20;
    unsigned char *a = gt_dev_alloc(N), *b = gt_dev_alloc(N), *h = malloc(N);
    for (size_t i = 0; i < N; i++) h[i] = (unsigned char)(i * 13);
    gt_h2d(a, h, N);
    GT_CHECK(lc_gpu_nccl_permute(c, 1, a, b, N, NULL));
    gt_sync();
    memset(h, 0, N);
    gt_d2h(h, b, N);
    int ok = 1;
    for (size_t i = 0; i < N && ok; i++) ok = h[i] == (unsigned char)(i * 13);
    printf("%s NCCL permute on one rank\n", ok ? "ok  " : "FAIL");
    lc_gpu_nccl_finalize(c);
    gt_dev_free(a);
    gt_dev_free(b);
    free(h);
    return ok;
}

int main(void) {
    gt_require_gpu_nofork_parent("test_gpu_permute");
    if (!lc_gpu_have_nvshmem() && !lc_gpu_have_nccl()) {
        printf("SKIP: test_gpu_permute: built without NVSHMEM and NCCL\n");
        return LC_SKIP;
    }
    int rc = 0;
    if (lc_gpu_have_nvshmem()) {
        rc = gt_spawn(2, pe_main, NULL, 120);
        if (rc == 1) printf("NVSHMEM part FAILED\n");
    } else {
        printf("skip: NVSHMEM part (built without NVSHMEM)\n");
    }
    /* after the PEs are gone, this process may initialise CUDA itself */
    if (!nccl_self()) rc = 1;
    return rc == 1 ? 1 : 0;
}
