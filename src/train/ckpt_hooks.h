/* Private to src/train: the trainer's checkpoint hooks (ckpt_hooks.c). */
#ifndef LONGCTX_TRAIN_CKPT_HOOKS_H
#define LONGCTX_TRAIN_CKPT_HOOKS_H

#include "longctx/trainer.h"

/* The checkpoint flags alone (no files touched). */
int lc_train__ckpt_check(const lc_trainer_opts *o, char *err, size_t errlen);
/* --resume / --init-from into the created model, optimizer and loader; *start_step gets the
 * steps already done. Collective over the world: every PE loads, nobody continues unless
 * everybody could. */
int lc_train__ckpt_begin(const lc_trainer_opts *o, lc_model *m, lc_adamw *opt, lc_loader *l, const lc_tokfile *train,
                         const lc_mesh *mesh, int64_t *start_step, int64_t *sched_steps, int64_t *sched_warmup);
/* Saves the state after steps_done steps into o->save_dir. Collective over the world. */
int lc_train__ckpt_save(const lc_trainer_opts *o, lc_model *m, lc_adamw *opt, lc_loader *l, const lc_tokfile *train,
                        const lc_mesh *mesh, int64_t steps_done, int64_t total_steps, int64_t warmup, float lr_min);

#endif
