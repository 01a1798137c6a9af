#include "cli/bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
    char items[LC_LIST_MAX][32];
    if (split(flag, s, items, &out->n)) return -1;
    for (int i = 0; i < out->n; i++) {
        size_t v;
        if (lc_parse_size(items[i], &v)) {
            fprintf(stderr, "%s: '%s' is not a size\n", flag, items[i]);
            return -1;
        }
        out->v[i] = (long long)v;
    }
    return 0;
}

int lc_parse_int_list(const char *flag, const char *s, lc_ilist *out)
{
    char items[LC_LIST_MAX][32];
    if (split(flag, s, items, &out->n)) return -1;
    for (int i = 0; i < out->n; i++) {
        char *end;
        out->v[i] = strtoll(items[i], &end, 10);
        if (*end == 'K' || *end == 'k') {
            out->v[i] *= 1024;
            end++;
        }
        if (*end || out->v[i] <= 0) {
            fprintf(stderr, "%s: '%s' is not a positive integer\n", flag, items[i]);
            return -1;
        }
    }
    return 0;
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
    const char *u[] = {"B", "KiB", "MiB", "GiB"};
    int i = 0;
    while (b >= 1024 && i < 3) {
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
    lc_launch_opts lo = {pes, heap_bytes, 0};
    int rc = lc_launch(&lo, args);
    free(args);
    return rc < 0 ? 1 : rc;
}
