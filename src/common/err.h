/* One error convention for every layer of longctx (symm, attn, cp, GPU).
 *
 * A failing call returns a negative lc_status and records one message saying what was wrong:
 * the function, the argument or operation, and the values seen ("lc_cp_forward: q is NULL",
 * "PE 2: lc_permute_done (one_sided receive) stopped: PE 1 aborted: ..."). The message goes
 * to the handle the call worked on (a world, a plan; read with lc_last_error(w),
 * lc_cp_last_error(cp)) and, always, to the calling thread's buffer. Calls without a handle
 * (the attention kernels, the GPU entry points, lc_cp_create, any call given a NULL handle)
 * have only the thread's buffer: lc_attn_last_error(), lc_gpu_last_error(),
 * lc_cp_last_error(NULL) and lc_last_error(NULL) all read it, so it holds the last failure
 * of any layer on this thread. Messages may be built from earlier messages: the text is
 * formatted before either buffer is written. */
#ifndef LONGCTX_COMMON_ERR_H
#define LONGCTX_COMMON_ERR_H

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LC_ERR_LEN 1024

/* Records the message in buf[len] (a handle's; NULL for none) and in the thread's buffer;
 * returns status. */
int lc__fail_in(char *buf, size_t len, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int lc__vfail_in(char *buf, size_t len, int status, const char *fmt, va_list ap);
/* The calling thread's last message ("" when none). */
const char *lc__thread_error(void);

#ifdef __cplusplus
}
#endif
#endif
