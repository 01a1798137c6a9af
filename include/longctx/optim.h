/* longctx optimizer layer: AdamW with clipping and a warmup + cosine schedule, over a flat
 * fp32 parameter buffer. Below the checkpoints (which save and restore its moments) and the
 * trainer (which drives it); it knows nothing of the model: the caller marks the segments
 * that do not decay.
 *
 * Errors: calls return lc_status codes (symm.h); the message, naming the value that was
 * wrong, is in lc_optim_last_error() (thread-local, like every layer without a handle).
 */
#ifndef LONGCTX_OPTIM_H
#define LONGCTX_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

const char *lc_optim_last_error(void);

/* ---- AdamW ----
 * Decoupled weight decay (Loshchilov & Hutter), bias-corrected moments. The flat parameter
 * buffer is split into segments; a segment either decays or not (norm weights do not).
 * m and v are allocated once at create. */
typedef struct {
    float beta1, beta2, eps, weight_decay;
} lc_adamw_config;

typedef struct lc_adamw lc_adamw;
int lc_adamw_create(size_t n_params, const lc_adamw_config *cfg, lc_adamw **out);
void lc_adamw_destroy(lc_adamw *o);
/* Marks params [offset, offset+count) as decaying (decay=1, the default) or not. */
int lc_adamw_set_decay(lc_adamw *o, size_t offset, size_t count, int decay);
/* One update: g = grads * grad_mul (grad_mul carries the clipping factor). */
void lc_adamw_step(lc_adamw *o, float *params, const float *grads, float lr, float grad_mul);
int64_t lc_adamw_steps(const lc_adamw *o);
/* Restores the step count t (bias correction) of a resumed run. */
void lc_adamw_set_steps(lc_adamw *o, int64_t t);
size_t lc_adamw_n_params(const lc_adamw *o);
float *lc_adamw_m(lc_adamw *o);
float *lc_adamw_v(lc_adamw *o);

/* L2 norm of g, accumulated in double in a fixed order (deterministic). */
double lc_global_norm(const float *g, size_t n);
/* Clipping factor for a gradient of norm `norm`: min(1, max_norm / norm); 1 if max_norm <= 0. */
float lc_clip_factor(double norm, float max_norm);
/* Linear warmup over `warmup` steps to lr_max, then cosine decay to lr_min at total_steps.
 * step counts from 0. */
float lc_lr_at(int64_t step, int64_t warmup, int64_t total_steps, float lr_max, float lr_min);

#ifdef __cplusplus
}
#endif
#endif
