/* Checked parsing (common layer), shared by the CLI options and the LONGCTX_* environment,
 * so that both reject the same garbage with the same words. The environment itself is read
 * only through src/common/settings.h, which uses these parsers. */
#ifndef LONGCTX_SETTINGS_H
#define LONGCTX_SETTINGS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Parses sizes like 4096, 64K, 16MiB, 1G. Returns 0 on success. */
int lc_parse_size(const char *s, size_t *out);

/* ---- checked parsing, shared by the CLI options and the LONGCTX_* environment ----
 * Each returns LC_OK, or LC_ERR_ARG with a message in err (errlen bytes; err may be NULL)
 * that names `what` (an option like "--s" or a variable like "LONGCTX_HEAP_SIZE") and the
 * value. Empty strings, signs, garbage, trailing junk and overflow are all rejected. */
/* Bytes: 4096, 64K, 16MiB, 2G, 1T (binary multiples). */
int lc_parse_bytes(const char *what, const char *s, size_t *out, char *err, size_t errlen);
/* A count with an optional binary K/M/G/T suffix (64K = 65536), checked against [min, max]. */
int lc_parse_count(const char *what, const char *s, long long min, long long max, long long *out,
                   char *err, size_t errlen);
/* A duration > 0 in seconds: 30, 2.5, 30s, 500ms, 100us, 2m; "inf" (or "none") gives
 * INFINITY when allow_inf. */
int lc_parse_seconds(const char *what, const char *s, int allow_inf, double *out, char *err,
                     size_t errlen);
/* 0/1, off/on, no/yes, false/true; the empty string is 0. */
int lc_parse_flag(const char *what, const char *s, int *out, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
