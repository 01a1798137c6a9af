/* Private to src/ckpt. */
#ifndef LONGCTX_CKPT_INTERNAL_H
#define LONGCTX_CKPT_INTERNAL_H

#include <stddef.h>

#include "longctx/ckpt.h"

/* Records a message for lc_ckpt_last_error() and returns status. */
int lc_ckpt__fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Test hook: LONGCTX_CKPT_TEST_SLOW_US=N sleeps N microseconds after every 4 KiB written
 * and between the steps of a save, so that a test can kill a writer in the middle of any
 * step. 0 when unset. */
unsigned lc_ckpt__slow_us(void);
void lc_ckpt__pause(void);
/* tests: LONGCTX_CKPT_TEST_FSIZE=BYTES limits the writer's file size from its first save on */
void lc_ckpt__test_fsize(void);

/* write(2) all of buf (in 4 KiB pieces with the test hook). */
int lc_ckpt__write_all(int fd, const void *buf, size_t n);
/* fsync a file or folder by path. */
int lc_ckpt__fsync_path(const char *path);
/* The whole file into a NUL-terminated malloc'd buffer (limit bytes at most). */
char *lc_ckpt__read_file(const char *path, size_t limit, size_t *len);

#endif
