/* One checked parser for sizes, counts and durations, used by the CLI options and the
 * LONGCTX_* environment alike, so that both reject the same garbage with the same words:
 * no sign, no trailing junk, no silent wrap-around, and the message names the setting. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/settings.h"

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t len, const char *fmt, ...)
{
    if (err && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, len, fmt, ap);
        va_end(ap);
    }
    return LC_ERR_ARG;
}

/* Unsigned decimal digits only (strtoull would accept "-1", "+1", spaces and wrap). */
static int digits(const char *s, unsigned long long *v, const char **end)
{
    unsigned long long x = 0;
    const char *p = s;
    if (!isdigit((unsigned char)*p)) return -1;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (x > (ULLONG_MAX - d) / 10) return 1; /* overflow */
        x = x * 10 + d;
    }
    *v = x;
    *end = p;
    return 0;
}

/* K/M/G/T (binary), optionally followed by "B" or "iB" when bytes. */
static int suffix(const char *p, int bytes, unsigned long long *mul)
{
    *mul = 1;
    if (!*p) return 0;
    int shift;
    switch (toupper((unsigned char)*p)) {
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    case 'T': shift = 40; break;
    case 'B': return bytes && !p[1] ? 0 : -1;
    default: return -1;
    }
    *mul = 1ull << shift;
    p++;
    if (!*p) return 0;
    if (bytes && (!strcasecmp(p, "B") || !strcasecmp(p, "iB"))) return 0;
    return -1;
}

static int scaled(const char *what, const char *s, int bytes, unsigned long long *out, char *err, size_t len)
{
    const char *kind = bytes ? "a size like 4096, 64K, 16MiB or 2G" : "a count like 8, 64K or 1M";
    if (!s || !*s) return fail(err, len, "%s is empty: expected %s", what, kind);
    unsigned long long v, mul;
    const char *end;
    int d = digits(s, &v, &end);
    if (d < 0) return fail(err, len, "%s=%s: expected %s%s", what, s, kind, *s == '-' ? " (no negative values)" : "");
    if (d > 0) return fail(err, len, "%s=%s: the number is too large", what, s);
    if (suffix(end, bytes, &mul)) return fail(err, len, "%s=%s: unexpected '%s' after the number: expected %s", what, s, end, kind);
    if (v > ULLONG_MAX / mul) return fail(err, len, "%s=%s: the number is too large", what, s);
    *out = v * mul;
    return LC_OK;
}

int lc_parse_bytes(const char *what, const char *s, size_t *out, char *err, size_t errlen)
{
    unsigned long long v;
    int rc = scaled(what, s, 1, &v, err, errlen);
    if (rc) return rc;
    /* Headroom for page rounding and per-PE multiplication is checked by the users; here
     * the value must at least fit a size_t and an off_t. */
    if (v > (unsigned long long)SIZE_MAX || v > (unsigned long long)LLONG_MAX)
        return fail(err, errlen, "%s=%s: the size is too large", what, s);
    *out = (size_t)v;
    return LC_OK;
}

int lc_parse_count(const char *what, const char *s, long long min, long long max, long long *out, char *err,
                   size_t errlen)
{
    unsigned long long v;
    int rc = scaled(what, s, 0, &v, err, errlen);
    if (rc) return rc;
    if (v > (unsigned long long)LLONG_MAX || (long long)v < min || (long long)v > max)
        return fail(err, errlen, "%s=%s: must be in [%lld, %lld]", what, s, min, max);
    *out = (long long)v;
    return LC_OK;
}

int lc_parse_seconds(const char *what, const char *s, int allow_inf, double *out, char *err, size_t errlen)
{
    const char *kind = allow_inf ? "seconds like 30, 2.5, 500ms or inf" : "seconds like 30, 2.5 or 500ms";
    if (!s || !*s) return fail(err, errlen, "%s is empty: expected %s", what, kind);
    if (!strcasecmp(s, "inf") || !strcasecmp(s, "infinity") || !strcasecmp(s, "none")) {
        if (!allow_inf) return fail(err, errlen, "%s=%s: must be finite (%s)", what, s, kind);
        *out = INFINITY;
        return LC_OK;
    }
    if (!isdigit((unsigned char)*s) && *s != '.')
        return fail(err, errlen, "%s=%s: expected %s%s", what, s, kind, *s == '-' ? " (no negative values)" : "");
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s) return fail(err, errlen, "%s=%s: expected %s", what, s, kind);
    double mul = 1;
    if (!strcmp(end, "s")) mul = 1;
    else if (!strcmp(end, "ms")) mul = 1e-3;
    else if (!strcmp(end, "us")) mul = 1e-6;
    else if (!strcmp(end, "m") || !strcmp(end, "min")) mul = 60;
    else if (*end) return fail(err, errlen, "%s=%s: unexpected '%s' after the number: expected %s", what, s, end, kind);
    v *= mul;
    if (!isfinite(v) || v > 1e9) return fail(err, errlen, "%s=%s: too large (at most 1e9 s%s)", what, s, allow_inf ? ", or inf" : "");
    if (!(v > 0)) return fail(err, errlen, "%s=%s: must be greater than 0", what, s);
    *out = v;
    return LC_OK;
}

int lc_parse_flag(const char *what, const char *s, int *out, char *err, size_t errlen)
{
    if (!s) return fail(err, errlen, "%s is empty: expected 0 or 1", what);
    if (!*s || !strcmp(s, "0") || !strcasecmp(s, "off") || !strcasecmp(s, "no") || !strcasecmp(s, "false"))
        *out = 0;
    else if (!strcmp(s, "1") || !strcasecmp(s, "on") || !strcasecmp(s, "yes") || !strcasecmp(s, "true"))
        *out = 1;
    else
        return fail(err, errlen, "%s=%s: expected 0 or 1 (also off/on, no/yes, false/true)", what, s);
    return LC_OK;
}

int lc_parse_size(const char *s, size_t *out) { return lc_parse_bytes("size", s, out, NULL, 0) ? -1 : 0; }

/* ---- the environment: the only getenv calls of the library; unset or empty means the
 * default ---- */

const char *lc__env_str(const char *name) { return getenv(name); }

int lc__env_bytes(const char *name, size_t dflt, size_t *out, char *err, size_t len)
{
    const char *s = getenv(name);
    *out = dflt;
    return s && *s ? lc_parse_bytes(name, s, out, err, len) : LC_OK;
}

int lc__env_seconds(const char *name, double dflt, int allow_inf, double *out, char *err, size_t len)
{
    const char *s = getenv(name);
    *out = dflt;
    return s && *s ? lc_parse_seconds(name, s, allow_inf, out, err, len) : LC_OK;
}

int lc__env_count(const char *name, long long dflt, long long min, long long max, long long *out, char *err,
                  size_t len)
{
    const char *s = getenv(name);
    *out = dflt;
    return s && *s ? lc_parse_count(name, s, min, max, out, err, len) : LC_OK;
}

int lc__env_flag(const char *name, int *out, char *err, size_t len)
{
    const char *s = getenv(name);
    *out = 0;
    return s ? lc_parse_flag(name, s, out, err, len) : LC_OK;
}
