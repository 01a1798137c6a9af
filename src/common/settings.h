/* The environment, read in one place. Every setting longctx takes from the environment
 * (LONGCTX_* and the few foreign variables it honours, such as TMPDIR) is read through these
 * calls and nowhere else, so each one is parsed by the checked parsers of
 * include/longctx/settings.h and garbage is refused with the variable's name. Plain C with no
 * runtime dependency: the attention kernels and the .cu files use it too. */
#ifndef LONGCTX_COMMON_SETTINGS_H
#define LONGCTX_COMMON_SETTINGS_H

#include <stddef.h>

#include "longctx/settings.h"
#include "longctx/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The raw value of a variable whose value is a word or a path (a backend name, a file), or
 * NULL when unset. Numbers and flags go through the typed readers below instead. */
const char *lc__env_str(const char *name);
/* Unset or empty gives dflt; garbage gives LC_ERR_ARG with a message naming the variable. */
int lc__env_bytes(const char *name, size_t dflt, size_t *out, char *err, size_t len);
int lc__env_seconds(const char *name, double dflt, int allow_inf, double *out, char *err, size_t len);
int lc__env_count(const char *name, long long dflt, long long min, long long max, long long *out,
                  char *err, size_t len);
/* Unset gives 0; "" is 0 too (lc_parse_flag). */
int lc__env_flag(const char *name, int *out, char *err, size_t len);

#ifdef __cplusplus
}
#endif
#endif
