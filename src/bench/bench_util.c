#include "bench/bench_util.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/settings.h"
#include "longctx/symm.h"

static int split(const char *flag, const char *s, char items[LC_LIST_MAX][32], int *n)
{
    *n = 0;
    if (!s || !*s) {
        fprintf(stderr, "%s needs a comma-separated list\n", flag);
        return -1;
    }
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0 || len >= 32 || *n >= LC_LIST_MAX) {
            fprintf(stderr, "%s: bad list '%s'\n", flag, s);
            return -1;
        }
        memcpy(items[*n], p, len);
        items[*n][len] = 0;
        (*n)++;
        p += len + (e ? 1 : 0);
        if (e && !*p) {
            fprintf(stderr, "%s: bad list '%s'\n", flag, s);
            return -1;
        }
    }
    return 0;
}

int lc_parse_size_list(const char *flag, const char *s, lc_ilist *out)
{
    char items[LC_LIST_MAX][32], err[256];
    if (split(flag, s, items, &out->n)) return -1;
    for (int i = 0; i < out->n; i++) {
        size_t v;
        if (lc_parse_bytes(flag, items[i], &v, err, sizeof err)) { /* also caps at LLONG_MAX */
            fprintf(stderr, "%s\n", err);
            return -1;
        }
        out->v[i] = (long long)v;
    }
    return 0;
}

int lc_parse_count_list(const char *flag, const char *s, long long min, long long max, lc_ilist *out)
{
    char items[LC_LIST_MAX][32], err[256];
    if (split(flag, s, items, &out->n)) return -1;
    for (int i = 0; i < out->n; i++)
        if (lc_parse_count(flag, items[i], min, max, &out->v[i], err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return -1;
        }
    return 0;
}

int lc_parse_int_list(const char *flag, const char *s, lc_ilist *out)
{
    return lc_parse_count_list(flag, s, 1, INT_MAX, out);
}

int lc_parse_int_opt(const char *flag, const char *s, int min, int max, int *out)
{
    char err[256];
    long long v;
    if (lc_parse_count(flag, s, min, max, &v, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int lc_bench_heap(const char *bench, size_t need, size_t *heap)
{
    char err[256];
    size_t env = 0;
    if (lc_parse_bytes("LONGCTX_HEAP_SIZE", lc__env_str("LONGCTX_HEAP_SIZE"), &env, err, sizeof err) &&
        lc__env_str("LONGCTX_HEAP_SIZE") && *lc__env_str("LONGCTX_HEAP_SIZE")) {
        fprintf(stderr, "longctx bench %s: %s\n", bench, err);
        return -1;
    }
    if (!env) {
        *heap = need;
        return 0;
    }
    if (env < need) {
        char a[32], b[32];
        fprintf(stderr,
                "longctx bench %s: LONGCTX_HEAP_SIZE=%s (%s) is less than the %s per PE these options "
                "need: raise it or unset it (the bench sizes the heap itself)\n",
                bench, lc__env_str("LONGCTX_HEAP_SIZE"), lc_fmt_bytes((double)env, a, sizeof a),
                lc_fmt_bytes((double)need, b, sizeof b));
        return -1;
    }
    *heap = env;
    return 0;
}

int lc_bench_fits_memory(const char *bench, double per_pe, int pes, const char *what)
{
    double ram = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (ram > 0 && per_pe * pes <= ram) return 0;
    char a[32], b[32], c[32];
    fprintf(stderr, "longctx bench %s: %s needs about %s per PE, %s for %d PEs, more than this machine's %s of memory\n",
            bench, what, lc_fmt_bytes(per_pe, a, sizeof a), lc_fmt_bytes(per_pe * pes, b, sizeof b), pes,
            lc_fmt_bytes(ram, c, sizeof c));
    return -1;
}

int lc_parse_word_list(const char *flag, const char *s, const char *const *allowed, lc_slist *out)
{
    if (split(flag, s, out->v, &out->n)) return -1;
    for (int i = 0; i < out->n; i++) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++) ok |= !strcmp(*a, out->v[i]);
        if (!ok) {
            fprintf(stderr, "%s: '%s' is not one of:", flag, out->v[i]);
            for (const char *const *a = allowed; *a; a++) fprintf(stderr, " %s", *a);
            fputc('\n', stderr);
            return -1;
        }
    }
    return 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double lc_median(double *v, int n)
{
    if (n <= 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double lc_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double lc_cpu_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *lc_fmt_bytes(double b, char *buf, size_t len)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int i = 0;
    while (b >= 1024 && i < 6) {
        b /= 1024;
        i++;
    }
    snprintf(buf, len, i ? "%.4g %s" : "%.0f %s", b, u[i]);
    return buf;
}

int lc_bench_launch_workers(const char *bench, int argc, char **argv, int pes, size_t heap_bytes)
{
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        fprintf(stderr, "longctx bench %s: cannot find my own executable\n", bench);
        return 1;
    }
    self[len] = 0;
    char **args = calloc((size_t)argc + 5, sizeof *args);
    if (!args) return 1;
    int k = 0;
    args[k++] = self;
    args[k++] = "bench";
    args[k++] = (char *)bench;
    args[k++] = "--worker";
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--pes")) args[k++] = argv[i];
        else i++; /* each worker world is one PE count */
    args[k] = NULL;
    fflush(stdout);
    lc_launch_opts lo = {.n_pes = pes, .heap_bytes = heap_bytes};
    int rc = lc_launch(&lo, args);
    free(args);
    return rc < 0 ? 1 : rc;
}

int lc_bench_peer_dir(const char *script, char *buf, size_t len)
{
    const char *env = lc__env_str("LONGCTX_PEER_DIR");
    if (env && *env) {
        snprintf(buf, len, "%s", env);
        return 0;
    }
    char base[2048] = ".";
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            ssize_t n = readlink("/proc/self/exe", base, sizeof base - 1);
            if (n <= 0) break;
            base[n] = 0;
            char *slash = strrchr(base, '/');
            if (!slash) break;
            *slash = 0;
        }
        for (int up = 0; up < 3; up++) {
            char probe[4200];
            snprintf(buf, len, "%s%s%s/bench/peers", base, up >= 1 ? "/.." : "", up >= 2 ? "/.." : "");
            snprintf(probe, sizeof probe, "%s/%s", buf, script);
            if (access(probe, R_OK) == 0) return 0;
        }
    }
    return -1;
}

double lc_json_num(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

void lc_json_str(const char *line, const char *key, char *out, size_t len)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    out[0] = 0;
    if (!p) return;
    p += strlen(pat);
    while (*p == ' ') p++;
    int quoted = *p == '"'; /* a string runs to its closing quote, commas and all */
    p += quoted;
    size_t i = 0;
    while (*p && *p != '"' && (quoted || (*p != ',' && *p != '}')) && i + 1 < len) out[i++] = *p++;
    out[i] = 0;
}
