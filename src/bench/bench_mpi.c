/* MPI measured directly, for `longctx bench permute --backend mpi`: the same ring traffic as
 * the permute (every rank sends `bytes` to rank + 1 and receives from rank - 1, all at once),
 * moved by plain MPI calls in the same processes, interleaved with our permutes:
 *   mpi_sendrecv  MPI_Sendrecv (two-sided)
 *   mpi_put       MPI_Put + MPI_Win_flush + an MPI_Accumulate signal (+ flush), then a wait
 *                 for my own signal polling with MPI_Win_sync and MPI_Iprobe (one-sided; no
 *                 credit hand-shake, so it bounds what a one-sided permute could reach)
 * The window is MPI_Win_allocate over the world with OpenMPI's own component choice (osc/sm
 * inside one host, pt2pt across hosts with the defaults mpi.c sets). */
#include <mpi.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_mpi.h"

struct lc_bench_mpi {
    MPI_Win win;
    uint8_t *base; /* [maxb bytes | signal word] */
    size_t maxb, bytes;
    const void *src;
    void *dst;
    uint64_t round, one;
    int me, n;
};

lc_bench_mpi *lc_bench_mpi_open(size_t maxb, const void *src, void *dst)
{
    int init = 0;
    MPI_Initialized(&init);
    if (!init) return NULL;
    lc_bench_mpi *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    MPI_Comm_rank(MPI_COMM_WORLD, &b->me);
    MPI_Comm_size(MPI_COMM_WORLD, &b->n);
    b->maxb = (maxb + 63) & ~(size_t)63;
    if (MPI_Win_allocate((MPI_Aint)(b->maxb + 64), 1, MPI_INFO_NULL, MPI_COMM_WORLD, &b->base, &b->win) !=
        MPI_SUCCESS) {
        free(b);
        return NULL;
    }
    memset(b->base + b->maxb, 0, 64);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, b->win);
    MPI_Barrier(MPI_COMM_WORLD);
    b->src = src;
    b->dst = dst;
    b->one = 1;
    return b;
}

void lc_bench_mpi_set_bytes(lc_bench_mpi *b, size_t bytes) { b->bytes = bytes; }

int lc_bench_mpi_sendrecv(void *p)
{
    lc_bench_mpi *b = p;
    int right = (b->me + 1) % b->n, left = (b->me + b->n - 1) % b->n;
    return MPI_Sendrecv(b->src, (int)b->bytes, MPI_BYTE, right, 7, b->dst, (int)b->bytes, MPI_BYTE, left, 7,
                        MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS;
}

int lc_bench_mpi_put(void *p)
{
    lc_bench_mpi *b = p;
    int right = (b->me + 1) % b->n, flag;
    uint64_t want = ++b->round;
    if (MPI_Put(b->src, (int)b->bytes, MPI_BYTE, right, 0, (int)b->bytes, MPI_BYTE, b->win) != MPI_SUCCESS ||
        MPI_Win_flush(right, b->win) != MPI_SUCCESS ||
        MPI_Accumulate(&b->one, 1, MPI_UINT64_T, right, (MPI_Aint)b->maxb, 1, MPI_UINT64_T, MPI_SUM, b->win) !=
            MPI_SUCCESS ||
        MPI_Win_flush(right, b->win) != MPI_SUCCESS)
        return 1;
    _Atomic uint64_t *sig = (_Atomic uint64_t *)(b->base + b->maxb);
    while (atomic_load_explicit(sig, memory_order_acquire) < want) {
        MPI_Win_sync(b->win);
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
    }
    return 0;
}

void lc_bench_mpi_close(lc_bench_mpi *b)
{
    if (!b) return;
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Win_unlock_all(b->win);
    MPI_Win_free(&b->win);
    free(b);
}
