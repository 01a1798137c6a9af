/* Private to src/ckpt: checkpoint folder helpers (dir.c). */
#ifndef LONGCTX_CKPT_DIR_H
#define LONGCTX_CKPT_DIR_H

#include <stdint.h>

int lc_ckpt__parse_step_name(const char *name, int64_t *step);
int lc_ckpt__rm_dir(const char *path);
/* Renames the finished tmp folder to final (swapping with an existing one) and fsyncs dir. */
int lc_ckpt__publish(const char *tmp, const char *final, const char *dir);
/* Keeps the newest `keep` complete checkpoints. */
void lc_ckpt__prune(const char *dir, int keep);

#endif
