/* MPI measured directly beside the permute (bench_mpi.c; built with the MPI backend). */
#ifndef LONGCTX_BENCH_MPI_H
#define LONGCTX_BENCH_MPI_H

#include <stddef.h>

typedef struct lc_bench_mpi lc_bench_mpi;
#ifdef LONGCTX_HAVE_MPI
/* NULL unless MPI is initialised (the mpi backend runs) and the window could be made.
 * src: maxb bytes to send; dst: maxb private bytes to receive into (Sendrecv). Collective. */
lc_bench_mpi *lc_bench_mpi_open(size_t maxb, const void *src, void *dst);
void lc_bench_mpi_set_bytes(lc_bench_mpi *b, size_t bytes);
int lc_bench_mpi_sendrecv(void *b); /* one ring step, 0 on success */
int lc_bench_mpi_put(void *b);
void lc_bench_mpi_close(lc_bench_mpi *b); /* collective */
#else
static inline lc_bench_mpi *lc_bench_mpi_open(size_t maxb, const void *src, void *dst)
{
    (void)maxb, (void)src, (void)dst;
    return NULL;
}
static inline void lc_bench_mpi_set_bytes(lc_bench_mpi *b, size_t bytes) { (void)b, (void)bytes; }
static inline int lc_bench_mpi_sendrecv(void *b) { return b == NULL; }
static inline int lc_bench_mpi_put(void *b) { return b == NULL; }
static inline void lc_bench_mpi_close(lc_bench_mpi *b) { (void)b; }
#endif
#endif
