/* Errors, time, environment parsing shared by the runtime. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/err.h"
#include "symm/internal.h"

/* The runtime's side of the one error convention (src/common/err.h): the world's message,
 * prefixed with my PE, also lands in the thread's buffer. */
static void vset_err(lc_world *w, int status, const char *fmt, va_list ap)
{
    char msg[LC_ERR_LEN];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* Before the world has its PEs (a bad setting at lc_world_init) there is no PE to name. */
    if (w->me < 0) lc__fail_in(w->err, sizeof w->err, status, "%s", msg);
    else lc__fail_in(w->err, sizeof w->err, status, "PE %d: %s", w->me, msg);
}

int lc__err(lc_world *w, int status, const char *fmt, ...)
{
    char msg[LC_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    if (!w) {
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        return lc__fail_in(NULL, 0, status, "%s", msg);
    }
    vset_err(w, status, fmt, ap);
    va_end(ap);
    if (w->debug) lc__log(w, "%s", w->err);
    return status;
}

int lc__coll_err(lc_world *w, int status, const char *fmt, ...)
{
    if (!w) return status;
    va_list ap;
    va_start(ap, fmt);
    vset_err(w, status, fmt, ap);
    va_end(ap);
    if (w->debug) lc__log(w, "%s", w->err);
    if (w->hdr) lc__abort(w, w->me, "%s", w->err);
    return status;
}
int lc_world_fail(lc_world *w, int status)
{
    if (!w || status == LC_OK) return status;
    if (w->hdr) lc__abort(w, w->me, "%s", w->err[0] ? w->err : lc_status_str(status));
    return status;
}

void lc__vlog(lc_world *w, const char *prefix, const char *fmt, va_list ap)
{
    char line[1536];
    int n = snprintf(line, sizeof line, "%s", prefix ? prefix : "");
    if (n < 0) n = 0;
    if ((size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    if (w && w->log) w->log(w->log_ctx, line);
    else fprintf(stderr, "%s\n", line);
}

void lc__log(lc_world *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lc__vlog(w, "longctx: ", fmt, ap);
    va_end(ap);
}

void lc_world_log(lc_world *w, const char *fmt, ...)
{
    char prefix[48];
    snprintf(prefix, sizeof prefix, "longctx[PE %d]: ", w ? w->me : -1);
    va_list ap;
    va_start(ap, fmt);
    lc__vlog(w, prefix, fmt, ap);
    va_end(ap);
}

int lc_world_debug(const lc_world *w) { return w ? w->debug : 0; }

/* NULL: the thread's last message (e.g. why lc_world_init failed). */
const char *lc_last_error(const lc_world *w) { return w ? w->err : lc__thread_error(); }

double lc__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void lc__debug(lc_world *w, const char *fmt, ...)
{
    if (!w || !w->debug) return;
    char prefix[48];
    snprintf(prefix, sizeof prefix, "longctx[PE %d]: ", w->me);
    va_list ap;
    va_start(ap, fmt);
    lc__vlog(w, prefix, fmt, ap);
    va_end(ap);
}

uint64_t lc__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *lc__cmp_str(lc_cmp c)
{
    static const char *names[] = {"==", "!=", ">", ">=", "<", "<="};
    return (unsigned)c < 6 ? names[c] : "?";
}

int lc__cmp_holds(uint64_t v, lc_cmp c, uint64_t value)
{
    switch (c) {
    case LC_CMP_EQ: return v == value;
    case LC_CMP_NE: return v != value;
    case LC_CMP_GT: return v > value;
    case LC_CMP_GE: return v >= value;
    case LC_CMP_LT: return v < value;
    case LC_CMP_LE: return v <= value;
    }
    return 0;
}
