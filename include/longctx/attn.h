/* longctx attention block kernels: the FlashAttention-2 contract on the CPU.
 *
 * Layouts (row-major): Q [sq, hq, d], K and V [sk, hkv, d], out/o [sq, hq, d],
 * lse/delta [sq, hq]. hq is a multiple of hkv (query head h reads KV head h / (hq/hkv)).
 *
 * Forward state is (o, lse) in fp32 with o kept NORMALISED after every call: after any
 * number of lc_attn_fwd_block calls, o is the exact attention output over all keys seen so
 * far and lse their log-sum-exp (natural log, of scale * q.k). This is what the ring merges;
 * partials are never rounded to bf16. lc_attn_fwd_finish writes the output dtype.
 *
 * Masks use GLOBAL token positions of the Q rows and K rows (the CP layout decides them).
 * A row whose position is negative is padding: padded keys are never attended, padded
 * queries produce o = 0, lse = -inf. A query that sees no key also gets o = 0, lse = -inf.
 */
#ifndef LONGCTX_ATTN_H
#define LONGCTX_ATTN_H

#include <stddef.h>
#include <stdint.h>

#include "longctx/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Storage dtypes of both devices; accumulation is always fp32. The CPU kernels take F32 and
 * BF16, the CUDA kernels (longctx/gpu.h) BF16 and F16. */
typedef enum { LC_DT_F32 = 0, LC_DT_BF16 = 1, LC_DT_F16 = 2 } lc_dtype;
typedef uint16_t lc_bf16;

float lc_bf16_to_f32(lc_bf16 x);
lc_bf16 lc_f32_to_bf16(float x); /* round to nearest even, NaN stays NaN */
size_t lc_dtype_size(lc_dtype t);
const char *lc_dtype_name(lc_dtype t);

/* Mask kinds combine as bit flags: LC_MASK_CAUSAL | LC_MASK_DOC etc. 0 = no mask. */
enum {
    LC_MASK_NONE = 0,
    LC_MASK_CAUSAL = 1, /* key allowed iff k_pos <= q_pos */
    LC_MASK_WINDOW = 2, /* key allowed iff q_pos - k_pos < window (left window) */
    LC_MASK_DOC = 4     /* key allowed iff q_doc == k_doc (packed documents) */
};

typedef struct {
    unsigned kind;
    int64_t window;       /* for LC_MASK_WINDOW, >= 1 */
    const int32_t *q_doc; /* [sq] for LC_MASK_DOC */
    const int32_t *k_doc; /* [sk] for LC_MASK_DOC */
} lc_mask;

typedef enum {
    LC_ATTN_AUTO = 0, /* best the CPU supports (cpuid), or $LONGCTX_ATTN_IMPL */
    LC_ATTN_SCALAR = 1,
    LC_ATTN_AVX2 = 2,
    LC_ATTN_AVX512 = 3
} lc_attn_impl;

const char *lc_attn_impl_name(lc_attn_impl i);
int lc_attn_impl_parse(const char *s, lc_attn_impl *out);
/* The implementation AUTO resolves to on this CPU. */
lc_attn_impl lc_attn_impl_best(void);
int lc_attn_impl_supported(lc_attn_impl i);
/* The bf16 inner product of the CPU kernels: widen bf16 to fp32 and FMA (FMA), or the CPU's
 * bf16 dot product, vdpbf16ps (DPBF16). Which is faster depends on the CPU (half the FMA rate
 * on the Xeon the kernels were tuned on, 1.3-1.4x it on Zen 5), and the two are not bit-equal,
 * so a job picks one before its first bf16 call and keeps it: lc_attn_bf16_dot_measure times
 * both, lc_attn_set_bf16_dot fixes the process's choice (every PE the same).
 * $LONGCTX_ATTN_BF16_DOT=0|1 forces FMA or DPBF16 over both. Until a choice is set, FMA. A
 * CPU without avx512bf16 always takes FMA. */
typedef enum { LC_BF16_DOT_AUTO = -1, LC_BF16_DOT_FMA = 0, LC_BF16_DOT_DPBF16 = 1 } lc_bf16_dot;
int lc_attn_cpu_has_bf16(void); /* avx512bf16 (with the AVX-512 kernels) */
const char *lc_bf16_dot_name(lc_bf16_dot d);          /* "auto", "fma", "dpbf16" */
int lc_bf16_dot_parse(const char *s, lc_bf16_dot *out); /* 0, or LC_ERR_ARG */
void lc_attn_set_bf16_dot(lc_bf16_dot d);              /* AUTO: back to the default */
/* What the kernels run now: the forced value, else the set one, else FMA (and FMA on a CPU
 * without the instruction). */
lc_bf16_dot lc_attn_bf16_dot(void);
/* This core's choice: FMA without the instruction or when $LONGCTX_ATTN_BF16_DOT forces it;
 * else both timed on a forward over bf16 tiles (about 20 ms, alternated, best of 3 each) and
 * the faster taken, with 10% hysteresis against the choice cached for this CPU model
 * ($XDG_CACHE_HOME or ~/.cache: longctx/bf16-dot), so that runs do not flip; the cache is
 * updated. why (may be NULL) gets one line with the rates and the reason. */
lc_bf16_dot lc_attn_bf16_dot_measure(char *why, size_t len);

/* 1 when the CPU has AMX tiles and the OS lets this process use them (cpuid, XCR0 and
 * Linux's arch_prctl permission, which this requests); 0 otherwise. why gets a one-line
 * account either way. There is no AMX kernel yet (none was testable); this reports. */
int lc_attn_amx_status(char *why, size_t len);

/* The tile operations the kernels are made of, timed alone on the calling thread with their
 * data in cache (for `longctx bench tiles`): the forward's score matmul (64 x 64, k = d) and
 * P.V matmul (64 x d in column blocks, k = 64), the backward's dQ (64 x d, k = 64) and
 * dV/dK (64 x d, k = 256) matmuls, and the forward softmax of a 64 x 64 tile. Each entry
 * gets the best of `rounds` timings of `reps` calls: FLOPs per call (0 for the softmax,
 * which has no matmul FLOPs) and seconds per call. Returns the number of entries (<= max)
 * or -1. */
typedef struct {
    const char *name;
    double flops, seconds;
} lc_attn_tile_rate;
int lc_attn_tile_rates(lc_attn_impl impl, int d, int reps, int rounds, lc_attn_tile_rate *out, int max);

/* A persistent set of kernel worker threads (like ggml's compute plan threads): created
 * once, its threads sleep on a condition variable between calls, so a steady-state call
 * starts no thread. One call runs on a pool at a time (concurrent calls take turns); the
 * calling thread is worker 0, so a pool of n starts n - 1 threads. */
typedef struct lc_attn_pool lc_attn_pool;
lc_attn_pool *lc_attn_pool_create(int nthreads); /* NULL on error (lc_attn_last_error) */
void lc_attn_pool_destroy(lc_attn_pool *p);      /* NULL is fine */
int lc_attn_pool_threads(const lc_attn_pool *p);

typedef struct {
    int sq, sk;          /* rows of Q, rows of K/V in this call (>= 0) */
    int hq, hkv, d;      /* d in {64, 80, 96, 128, 256} at least */
    lc_dtype qkv_dtype;  /* storage of q, k, v, dout (accumulation is always fp32) */
    float scale;         /* 0: 1/sqrt(d) */
    const int32_t *q_pos; /* [sq] global positions; NULL: 0..sq-1 */
    const int32_t *k_pos; /* [sk] global positions; NULL: 0..sk-1 */
    lc_mask mask;
    int threads;          /* <= 0: 1, or the pool's size when pool is set */
    lc_attn_impl impl;
    /* Steady-state resources; left zero, a call allocates its buffers and starts its
     * threads itself (convenient, but it costs malloc/free and thread starts per call). */
    lc_attn_pool *pool;   /* workers to run on (at most its size are used) */
    void *work;           /* caller-owned workspace of work_bytes, any alignment */
    size_t work_bytes;    /* >= lc_attn_workspace_size() for this descriptor */
    /* What only a device backend reads (lc_attn_iface): NULL on the CPU; on the GPU an
     * optional lc_gpu_attn_ext (longctx/gpu.h). */
    const void *dev;
} lc_attn_desc;

/* Validates a descriptor; on error returns LC_ERR_ARG (-1) and writes a message naming
 * the problem into err (if non-NULL). All kernels validate and return this error. */
int lc_attn_check(const lc_attn_desc *a, char *err, size_t errlen);
const char *lc_attn_last_error(void); /* thread-local message of the last failing call */

/* Bytes of workspace lc_attn_fwd_block (passes & LC_ATTN_PASS_FWD) and/or
 * lc_attn_bwd_block (LC_ATTN_PASS_BWD) need for this descriptor: its shapes, dtype, impl
 * and worker count (threads, capped by the pool's size). The same workspace serves every
 * call whose sq and sk are no larger and whose other fields are equal. With work set and
 * large enough, the block kernels allocate nothing. */
enum { LC_ATTN_PASS_FWD = 1, LC_ATTN_PASS_BWD = 2 };
int lc_attn_workspace_size(const lc_attn_desc *a, unsigned passes, size_t *bytes);

/* o = 0, lse = -inf for sq x hq rows. */
void lc_attn_fwd_init(const lc_attn_desc *a, float *o, float *lse);
/* Merges one KV block into the normalised (o, lse) state. */
int lc_attn_fwd_block(const lc_attn_desc *a, const void *q, const void *k, const void *v,
                      float *o, float *lse);
/* Writes out (out_dtype) from the state. out may alias o when out_dtype is F32. */
int lc_attn_fwd_finish(const lc_attn_desc *a, const float *o, void *out, lc_dtype out_dtype);
/* Convenience: init + one block + finish (lse may be NULL). Allocates the fp32 state when
 * out_dtype is bf16 or lse is NULL. */
int lc_attn_fwd(const lc_attn_desc *a, const void *q, const void *k, const void *v,
                void *out, lc_dtype out_dtype, float *lse);

/* delta[i,h] = sum_d dout[i,h,:] * out[i,h,:]  (out in fp32, dout in qkv_dtype). */
int lc_attn_bwd_prep(const lc_attn_desc *a, const float *out, const void *dout, float *delta);
/* Recomputes P from the FINAL lse and ACCUMULATES (+=) into dq [sq,hq,d],
 * dk and dv [sk,hkv,d], all fp32, caller-owned (the ring carries dk/dv). */
int lc_attn_bwd_block(const lc_attn_desc *a, const void *q, const void *k, const void *v,
                      const void *dout, const float *lse, const float *delta, float *dq,
                      float *dk, float *dv);

/* ---- one attention block interface for every device ----
 * The CP algorithms (src/cp) run their blocks through this table, the way ggml's CPU and CUDA
 * backends fill ggml_backend_i: lc_attn_cpu (below, the driver of this header) and
 * lc_attn_cuda (longctx/gpu.h, the CUDA kernels) implement it with the contract above. The
 * descriptor is lc_attn_desc on both; pointers are the device's memory, `stream` is the
 * device's queue (a cudaStream_t on the GPU, ignored on the CPU), and a->dev carries what
 * only one device needs (the CUDA engine and host copies of positions: lc_gpu_attn_ext).
 * Every entry returns 0 or a negative status; last_error says why. */
typedef struct {
    const char *name;
    /* workspace bytes a block call needs for passes (LC_ATTN_PASS_*); 0 when the device
     * keeps its own */
    int (*workspace_size)(const lc_attn_desc *a, unsigned passes, size_t *bytes);
    int (*init)(const lc_attn_desc *a, float *o, float *lse, void *stream);
    int (*block)(const lc_attn_desc *a, const void *q, const void *k, const void *v, float *o,
                 float *lse, void *stream);
    int (*finish)(const lc_attn_desc *a, const float *o, void *out, lc_dtype out_dtype, void *stream);
    int (*bwd_prep)(const lc_attn_desc *a, const float *out, const void *dout, float *delta,
                    void *stream);
    int (*bwd_block)(const lc_attn_desc *a, const void *q, const void *k, const void *v,
                     const void *dout, const float *lse, const float *delta, float *dq, float *dk,
                     float *dv, void *stream);
    const char *(*last_error)(void);
} lc_attn_iface;

/* The CPU driver behind the interface (the lc_attn_* calls above, stream ignored). */
extern const lc_attn_iface lc_attn_cpu;

/* Float64 oracle: materialises the score matrix. Inputs are the float64 values of the
 * (possibly bf16-rounded) inputs. out [sq,hq,d], lse [sq,hq] (-inf for empty rows). */
int lc_attn_ref_fwd(const lc_attn_desc *a, const double *q, const double *k, const double *v,
                    double *out, double *lse);
int lc_attn_ref_bwd(const lc_attn_desc *a, const double *q, const double *k, const double *v,
                    const double *dout, double *dq, double *dk, double *dv);
/* (lc_attn_ref_bwd overwrites dq, dk, dv with the full gradient; it does not accumulate.) */

/* Block classification used before any work: */
/* (Rows q0 <= i < q1 of q_pos and k0 <= j < k1 of k_pos; NULL positions mean 0, 1, ...;
 * SKIP and FULL are exact claims, PARTIAL may be conservative.) */
typedef enum { LC_BLOCK_SKIP = 0, LC_BLOCK_FULL = 1, LC_BLOCK_PARTIAL = 2 } lc_block_class;
lc_block_class lc_attn_classify(const lc_mask *m, const int32_t *q_pos, int q0, int q1,
                                const int32_t *k_pos, int k0, int k1);
/* 1 when query at qp (doc qd) may attend key at kp (doc kd). */
int lc_attn_allowed(const lc_mask *m, int32_t qp, int32_t kp, int32_t qd, int32_t kd);

#ifdef __cplusplus
}
#endif
#endif
