/* The GPU trainer's gradient all-reduce over the NVSHMEM world, in the calls NVSHMEM promises
 * when several PEs share a GPU (put, quiet, barrier_all): every PE puts its gradients into its
 * own slot of the symmetric array slots[P][n] on every PE, a barrier, each PE sums the slots in
 * rank order into its gradients (the host all-reduce's order, so every PE gets the same bits),
 * and a second barrier before the next call may write the slots again. Header-only C++ over
 * gpu_symm.h and the CUDA runtime, so the emulated ring test (tests/gpu/emu/test_ring_emu.cc)
 * runs this very code over its NVSHMEM stand-in; the sum is the caller's (a kernel in the
 * plugin, a task on the emulated stream in the test). */
#ifndef LONGCTX_TRAIN_CUDA_GRAD_ALLREDUCE_H
#define LONGCTX_TRAIN_CUDA_GRAD_ALLREDUCE_H

#include <cuda_runtime.h>
#include <stddef.h>

#include "longctx/gpu_symm.h"

/* g[i] = slots[0][i] + slots[1][i] + ... in that order, on stream; 0 or an lc_status */
typedef int (*lc_slots_sum_fn)(void *arg, const float *slots, int P, size_t n, float *g, void *stream);

static inline int lc_grad_allreduce(lc_gpu_world *w, float *slots, float *g, size_t n, void *stream,
                                    lc_slots_sum_fn sum, void *arg)
{
    const int me = lc_gpu_my_pe(w), P = lc_gpu_n_pes(w);
    if (P < 2) return 0;
    const size_t bytes = sizeof(float) * n;
    float *mine = slots + (size_t)me * n;
    int rc = 0;
    for (int k = 0; k < P && !rc; k++) { /* from my right neighbour on: not every PE into PE 0 first */
        const int pe = (me + k) % P;
        rc = pe == me ? (cudaMemcpyAsync(mine, g, bytes, cudaMemcpyDeviceToDevice, (cudaStream_t)stream) ? LC_ERR_SYS
                                                                                                          : 0)
                      : lc_gpu_put_on_stream(w, mine, g, bytes, pe, stream);
    }
    if (!rc) rc = lc_gpu_quiet_on_stream(w, stream);
    if (!rc) rc = lc_gpu_barrier_all_on_stream(w, stream); /* every slot of mine is written */
    if (!rc) rc = sum(arg, slots, P, n, g, stream);
    if (!rc) rc = lc_gpu_barrier_all_on_stream(w, stream); /* every PE has read its slots */
    return rc;
}

#endif
