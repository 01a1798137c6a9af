/* Small helpers shared by the benchmarks: comma lists, medians, timing. */
#ifndef LONGCTX_BENCH_UTIL_H
#define LONGCTX_BENCH_UTIL_H
#include <stddef.h>

#define LC_LIST_MAX 64
#define LC_CLI_MAX_PES 1024 /* the runtime's limit (LC_MAX_PES) */
typedef struct { int n; long long v[LC_LIST_MAX]; } lc_ilist;
typedef struct { int n; char v[LC_LIST_MAX][32]; } lc_slist;

/* "8,1K,16M" -> sizes (suffixes K/M/G allowed). Returns 0 or -1 with a message on stderr. */
int lc_parse_size_list(const char *flag, const char *s, lc_ilist *out);
/* Positive integers that fit an int, K/M/G suffixes allowed (64K = 65536). */
int lc_parse_int_list(const char *flag, const char *s, lc_ilist *out);
/* Counts in [min, max], same syntax. */
int lc_parse_count_list(const char *flag, const char *s, long long min, long long max, lc_ilist *out);
/* One integer option in [min, max]; the message names flag and value. */
int lc_parse_int_opt(const char *flag, const char *s, int min, int max, int *out);
/* The heap per PE for a bench that needs `need` bytes: LONGCTX_HEAP_SIZE when set (an
 * error naming it when it is garbage or too small), else need. */
int lc_bench_heap(const char *bench, size_t need, size_t *heap);
/* 0 when per_pe bytes on each of pes PEs fit the machine's memory, else -1 with a message
 * that says what (the options) needs it. */
int lc_bench_fits_memory(const char *bench, double per_pe, int pes, const char *what);
/* Each item must be one of allowed (NULL-terminated). */
int lc_parse_word_list(const char *flag, const char *s, const char *const *allowed, lc_slist *out);
double lc_median(double *v, int n); /* sorts v */
double lc_wall(void);
double lc_cpu_time(void); /* this thread's CPU time */
const char *lc_fmt_bytes(double b, char *buf, size_t len);
/* Re-runs this binary as `longctx bench <bench> --worker <argv minus --pes P>` on pes PEs
 * with a heap of heap_bytes each; returns the launcher's status (1 when it cannot start). */
int lc_bench_launch_workers(const char *bench, int argc, char **argv, int pes, size_t heap_bytes);

/* The repository's bench/peers holding `script` (LONGCTX_PEER_DIR, else looked for from the
 * working directory and from the binary, usually build/longctx, up to two levels up). */
int lc_bench_peer_dir(const char *script, char *buf, size_t len);
/* A peer's one-line JSON result: the number or string value of "key" (NAN / "" if absent;
 * a quoted string is read to its closing quote, escapes not decoded). */
double lc_json_num(const char *line, const char *key);
void lc_json_str(const char *line, const char *key, char *out, size_t len);

#endif
