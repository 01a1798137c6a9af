/* Private interface between the portable attention driver and the per-ISA tile ops. */
#ifndef LONGCTX_ATTN_INTERNAL_H
#define LONGCTX_ATTN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "attn/core.h"
#include "longctx/attn.h"

#include "longctx/status.h"

/* Tile sizes. BK is also the padded width of every score tile, so SIMD ops never see a
 * ragged row: tail columns are filled with -inf (forward) or masked to zero. */
#define LC_ATTN_BQ 64
#define LC_ATTN_BK 64
#define LC_ATTN_DMAX 256
#define LC_ATTN_MAX_THREADS 256

/* The few operations that dominate the run time; everything else (tiling, masks, merges,
 * threading) is portable code in driver.c shared by all implementations. */
typedef struct {
    const char *name;
    /* Columns per block of the packed V tiles (the micro-kernel's width): the P.V matmul
     * runs per block, each [BK][vblock] contiguous. */
    int vblock;
    /* C[m x n] (+)= A * B with A(i,p) = A[i*ars + p*aks], B row p at B + p*ldb,
     * C row i at C + i*ldc. n is a multiple of 16. acc = 0 overwrites C. */
    void (*gemm)(int m, int n, int k, const float *A, ptrdiff_t ars, ptrdiff_t aks,
                 const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc, int acc);
    /* Online softmax on one score tile [m x BK] (row stride BK), in base 2: x = S*c.
     * Updates the running max mrow and sum lrow, rescales the O rows [m x d] (stride ldo)
     * when the max grows, and leaves P = exp2(x - max) in S. Masked entries are -inf. */
    void (*softmax_fwd)(int m, float *S, float c, float *mrow, float *lrow, float *O,
                        ptrdiff_t ldo, int d);
    /* P = exp2(S*c - lse2[i]) in place; rows with lse2 = -inf become 0. */
    void (*softmax_bwd)(int m, float *S, float c, const float *lse2);
    /* dP <- scale * P * (dP - delta[i]) over [m x BK]. */
    void (*dsoftmax)(int m, const float *P, float *dP, const float *delta, float scale);
    /* Optional (NULL when absent): S[m x BK] = Q(bf16 rows, stride ldq) . K tile packed by
     * lc_attn_pack_kt_bf16, using the CPU's bf16 dot-product instruction. */
    void (*qk_bf16)(int m, int d, const uint16_t *Q, ptrdiff_t ldq, const uint16_t *Kp,
                    float *S);
} lc_attn_ops;

extern const lc_attn_ops lc_attn_ops_scalar;
#if defined(__x86_64__) || defined(__i386__)
#define LC_ATTN_HAVE_X86 1
extern const lc_attn_ops lc_attn_ops_avx2;
extern const lc_attn_ops lc_attn_ops_avx512;
extern const lc_attn_ops lc_attn_ops_avx512bf16;
#endif

/* Sets the thread-local error message; returns LC_ERR_ARG. */
int lc_attn_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Validates the descriptor and records the error (the kernels' common prologue). */
int lc_attn_validate(const lc_attn_desc *a);
/* Resolves AUTO (cpuid or $LONGCTX_ATTN_IMPL) to a concrete, supported impl, or -1. */
int lc_attn_resolve_impl(lc_attn_impl want, lc_attn_impl *out);
const lc_attn_ops *lc_attn_ops_for(lc_attn_impl impl, lc_dtype dt);
/* The choice lc_attn_set_bf16_dot made (AUTO: none), before the environment's and the CPU's say. */
lc_bf16_dot lc_attn__bf16_dot_set(void);
float lc_attn_scale(const lc_attn_desc *a);

/* Runs fn(ctx, task, worker) for task in [0, ntasks) on nthreads threads (the caller's
 * thread is worker 0). Tasks are claimed dynamically; a task's result must not depend on
 * which worker ran it. Returns 0, or -1 if threads could not be created (then the
 * remaining tasks still run on the caller's thread). */
int lc_attn_parallel(int nthreads, int ntasks, void (*fn)(void *ctx, int task, int worker),
                     void *ctx);
/* The same on a persistent pool (at most its size of workers). */
int lc_attn_pool_run(lc_attn_pool *p, int nthreads, int ntasks,
                     void (*fn)(void *ctx, int task, int worker), void *ctx);

/* Tile summaries for classification: the core's lc_tile_sum (attn/core.h), which the CUDA
 * kernels share; cap is the rows summarised. */
void lc_attn_summarise(const int32_t *pos, const int32_t *doc, int r0, int r1,
                       lc_tile_sum *s);
lc_block_class lc_attn_classify_sum(const lc_mask *m, const lc_tile_sum *q,
                                    const lc_tile_sum *k);

#endif
