/* Helpers shared by the GPU tests and the GPU bench driver (plain C over the CUDA runtime
 * API, which is a C header). */
#ifndef LONGCTX_GPU_TEST_UTIL_H
#define LONGCTX_GPU_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "longctx/gpu.h"

#define LC_SKIP 77

/* Exits 77 with "SKIP: no CUDA device (...)" when no device answers: ctest then reports
 * the test as skipped, never as passed. */
void gt_require_gpu(const char *test);

uint16_t gt_f32_to_bf16(float x);
float gt_bf16_to_f32(uint16_t x);
uint16_t gt_f32_to_f16(float x);
float gt_f16_to_f32(uint16_t x);
/* Rounds x to dtype storage; writes the 16-bit pattern to *bits. */
float gt_round(lc_dtype t, float x, uint16_t *bits);

uint64_t gt_rng(uint64_t *s);
float gt_uniform(uint64_t *s); /* [-1, 1) */

void *gt_dev_alloc(size_t bytes);
void gt_dev_free(void *p);
void gt_h2d(void *dst, const void *src, size_t bytes);
void gt_d2h(void *dst, const void *src, size_t bytes);
void gt_sync(void);
double gt_now(void);

#define GT_CHECK(x)                                                                        \
    do {                                                                                   \
        int rc_ = (x);                                                                     \
        if (rc_) {                                                                         \
            fprintf(stderr, "%s:%d: %s failed: %d (%s)\n", __FILE__, __LINE__, #x, rc_,    \
                    lc_gpu_last_error());                                                  \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

/* max |g - ref| / max(1e-3, max |ref|): the error every GPU test bounds; NaN counts as
 * infinite, so it never passes */
double gt_relerr(const float *g, const double *ref, size_t n);

#endif

/* Sets NVSHMEM's environment for one machine without network (loopback bootstrap, no
 * remote transport, no NCCL inside NVSHMEM) unless the caller already chose. */
void gt_nvshmem_env(void);

/* Forks n processes (CUDA is not touched before the fork); PE 0 creates the NVSHMEM unique
 * id and hands it to the others through shared memory. fn's exit status per PE: returns 1
 * if any PE failed, 77 if every PE skipped, else 0. */
typedef int (*gt_pe_fn)(int pe, int n, const lc_gpu_uid *uid, void *arg);
int gt_spawn(int n, gt_pe_fn fn, void *arg, double timeout_s);

/* gt_require_gpu for programs that fork PEs afterwards: the probe runs in a child so the
 * parent never initialises CUDA (a forked child cannot use a parent's CUDA state). */
void gt_require_gpu_nofork_parent(const char *test);
