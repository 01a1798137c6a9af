/* The error convention shared by every layer (err.h). */
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "longctx/status.h"

static _Thread_local char g_thread_err[LC_ERR_LEN];

int lc__vfail_in(char *buf, size_t len, int status, const char *fmt, va_list ap)
{
    char msg[LC_ERR_LEN]; /* the arguments may point into either buffer */
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (buf && len) snprintf(buf, len, "%s", msg);
    memcpy(g_thread_err, msg, sizeof msg);
    return status;
}

int lc__fail_in(char *buf, size_t len, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lc__vfail_in(buf, len, status, fmt, ap);
    va_end(ap);
    return status;
}

const char *lc__thread_error(void) { return g_thread_err; }

/* The GPU sources' lcg_fail (common/gpu_err.h): the thread's buffer, no handle. */
int lcg_fail(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lc__vfail_in(NULL, 0, status, fmt, ap);
    va_end(ap);
    return status;
}

const char *lc_status_str(int s)
{
    switch (s) {
    case LC_OK: return "ok";
    case LC_ERR_ARG: return "bad argument";
    case LC_ERR_NOMEM: return "symmetric heap exhausted";
    case LC_ERR_TIMEOUT: return "timeout";
    case LC_ERR_ABORT: return "aborted";
    case LC_ERR_MISMATCH: return "PEs disagree";
    case LC_ERR_SYS: return "system error";
    case LC_ERR_UNSUPPORTED: return "unsupported";
    case LC_STOPPED: return "stopped early on request";
    default: return "unknown error";
    }
}
