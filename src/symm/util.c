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
    default: return "unknown error";
    }
}

/* The runtime's side of the one error convention (src/common/err.h): the world's message,
 * prefixed with my PE, also lands in the thread's buffer. */
int lc__err(lc_world *w, int status, const char *fmt, ...)
{
    char msg[LC_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!w) return lc__fail_in(NULL, 0, status, "%s", msg);
    lc__fail_in(w->err, sizeof w->err, status, "PE %d: %s", w->me, msg);
    if (w->debug) fprintf(stderr, "longctx: %s\n", w->err);
    return status;
}

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
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "longctx[PE %d]: ", w->me);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int lc_parse_size(const char *s, size_t *out)
{
    if (!s || !*s) return -1;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || s[0] == '-') return -1;
    while (*end == ' ') end++;
    unsigned long long mul = 1;
    if (*end) {
        char u = (char)toupper((unsigned char)*end);
        switch (u) {
        case 'B': mul = 1; break;
        case 'K': mul = 1ULL << 10; break;
        case 'M': mul = 1ULL << 20; break;
        case 'G': mul = 1ULL << 30; break;
        case 'T': mul = 1ULL << 40; break;
        default: return -1;
        }
        end++;
        if (u != 'B') {
            if (strcasecmp(end, "") && strcasecmp(end, "B") && strcasecmp(end, "iB")) return -1;
        } else if (*end) {
            return -1;
        }
    }
    if (v > (unsigned long long)SIZE_MAX / mul) return -1;
    *out = (size_t)(v * mul);
    return 0;
}

size_t lc__env_size(const char *name, size_t dflt)
{
    const char *s = getenv(name);
    size_t v;
    if (!s || !*s) return dflt;
    if (lc_parse_size(s, &v) != 0) {
        fprintf(stderr, "longctx: ignoring %s=%s (not a size like 64M or 1G)\n", name, s);
        return dflt;
    }
    return v;
}

double lc__env_double(const char *name, double dflt)
{
    const char *s = getenv(name);
    if (!s || !*s) return dflt;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v > 0)) {
        fprintf(stderr, "longctx: ignoring %s=%s (not a positive number)\n", name, s);
        return dflt;
    }
    return v;
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

const char *lc_lowering_name(lc_lowering l)
{
    switch (l) {
    case LC_LOWER_AUTO: return "auto";
    case LC_LOWER_ONE_SIDED: return "one_sided";
    case LC_LOWER_TWO_SIDED: return "two_sided";
    }
    return "?";
}

int lc_lowering_parse(const char *s, lc_lowering *out)
{
    if (!s) return -1;
    if (!strcmp(s, "auto")) *out = LC_LOWER_AUTO;
    else if (!strcmp(s, "one_sided")) *out = LC_LOWER_ONE_SIDED;
    else if (!strcmp(s, "two_sided")) *out = LC_LOWER_TWO_SIDED;
    else return -1;
    return 0;
}
