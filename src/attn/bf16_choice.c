/* Which bf16 inner product this CPU runs faster, measured rather than assumed: both variants
 * of the forward kernel on the same bf16 tiles, alternated, best of three each; the answer is
 * cached per CPU model with hysteresis so that a job's choice does not flip between runs on a
 * noisy machine. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attn/internal.h"
#include "common/settings.h"

#define HYSTERESIS 1.10 /* the other variant must be this much faster to replace the cached one */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* GFLOP/s of a forward over 256 x 256 bf16 tiles (4 query heads on 1 KV head, d 128, one
 * thread) with variant d, best of `rounds` timings of 3 calls. */
static double rate(lc_bf16_dot d, const lc_attn_desc *a, const void *q, const void *kv, float *o, float *lse)
{
    lc_attn_set_bf16_dot(d);
    double best = 0;
    const double flops = 4.0 * a->sq * a->sk * a->d * a->hq;
    for (int r = 0; r < 3; r++) {
        double t0 = now_s();
        for (int i = 0; i < 3; i++) {
            lc_attn_fwd_init(a, o, lse);
            if (lc_attn_fwd_block(a, q, kv, kv, o, lse)) return 0;
        }
        double g = 3 * flops / (now_s() - t0) * 1e-9;
        if (g > best) best = g;
    }
    return best;
}

/* bf16 values in [-0.5, 0.5) from a linear congruential generator: any data will do, the
 * timing is what counts. */
static void fill(lc_bf16 *x, size_t n, uint32_t *s)
{
    for (size_t i = 0; i < n; i++) {
        *s = *s * 1664525u + 1013904223u;
        x[i] = lc_f32_to_bf16((float)(*s >> 8) / 16777216.0f - 0.5f);
    }
}

static void cpu_model(char *buf, size_t len)
{
    snprintf(buf, len, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *v = strchr(line, ':');
            if (v) {
                v += 1 + strspn(v + 1, " \t");
                v[strcspn(v, "\n")] = 0;
                snprintf(buf, len, "%s", v);
            }
            break;
        }
    fclose(f);
}

static void cache_path(char *buf, size_t len)
{
    const char *x = lc__env_str("XDG_CACHE_HOME"), *h = lc__env_str("HOME");
    if (x && *x) snprintf(buf, len, "%s/longctx/bf16-dot", x);
    else if (h && *h) snprintf(buf, len, "%s/.cache/longctx/bf16-dot", h);
    else buf[0] = 0;
}

/* The cached choice for model, or AUTO. Lines: "fma|dpbf16<TAB>model". */
static lc_bf16_dot cached(const char *path, const char *model)
{
    FILE *f = path[0] ? fopen(path, "r") : NULL;
    lc_bf16_dot d = LC_BF16_DOT_AUTO;
    if (!f) return d;
    char line[640];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *tab = strchr(line, '\t');
        if (!tab || strcmp(tab + 1, model)) continue;
        *tab = 0;
        lc_bf16_dot c;
        if (!lc_bf16_dot_parse(line, &c) && c != LC_BF16_DOT_AUTO) d = c;
    }
    fclose(f);
    return d;
}

/* Replaces model's line (written to a temporary file and renamed: concurrent jobs on one
 * host never see half a file). A cache that cannot be written is only a lost hint. */
static void remember(const char *path, const char *model, lc_bf16_dot d)
{
    if (!path[0]) return;
    char dir[4096], tmp[4200], line[640];
    snprintf(dir, sizeof dir, "%s", path);
    for (char *p = dir + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(dir, 0755) && errno != EEXIST) return;
            *p = '/';
        }
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    FILE *in = fopen(path, "r"), *out = fopen(tmp, "w");
    if (!out) {
        if (in) fclose(in);
        return;
    }
    while (in && fgets(line, sizeof line, in)) {
        char *tab = strchr(line, '\t');
        if (tab && !strncmp(tab + 1, model, strlen(model)) && tab[1 + strlen(model)] == '\n') continue;
        fputs(line, out);
    }
    if (in) fclose(in);
    fprintf(out, "%s\t%s\n", lc_bf16_dot_name(d), model);
    if (fclose(out) || rename(tmp, path)) remove(tmp);
}

lc_bf16_dot lc_attn_bf16_dot_measure(char *why, size_t len)
{
    char dummy[8];
    if (!why) why = dummy, len = sizeof dummy;
    if (!lc_attn_cpu_has_bf16())
        return snprintf(why, len, "fma (this CPU has no avx512bf16)"), LC_BF16_DOT_FMA;
    const char *env = lc__env_str("LONGCTX_ATTN_BF16_DOT");
    if (env) {
        lc_bf16_dot f = !strcmp(env, "1") ? LC_BF16_DOT_DPBF16 : LC_BF16_DOT_FMA;
        return snprintf(why, len, "%s (LONGCTX_ATTN_BF16_DOT=%s)", lc_bf16_dot_name(f), env), f;
    }
    const int S = 256, H = 4, D = 128;
    lc_attn_desc a;
    memset(&a, 0, sizeof a);
    a.sq = a.sk = S;
    a.hq = H;
    a.hkv = 1;
    a.d = D;
    a.qkv_dtype = LC_DT_BF16;
    a.impl = LC_ATTN_AVX512;
    a.threads = 1;
    lc_bf16 *q = malloc(sizeof *q * (size_t)S * H * D), *kv = malloc(sizeof *kv * (size_t)S * D);
    float *o = malloc(sizeof *o * (size_t)S * H * D), *lse = malloc(sizeof *lse * (size_t)S * H);
    lc_bf16_dot before = lc_attn__bf16_dot_set();
    double g[2] = {0, 0};
    if (q && kv && o && lse) {
        uint32_t x = 12345;
        fill(q, (size_t)S * H * D, &x);
        fill(kv, (size_t)S * D, &x);
        /* alternated, so that a change in the machine's load falls on both */
        for (int r = 0; r < 2; r++)
            for (int v = 0; v < 2; v++) {
                double x1 = rate(v ? LC_BF16_DOT_DPBF16 : LC_BF16_DOT_FMA, &a, q, kv, o, lse);
                if (x1 > g[v]) g[v] = x1;
            }
    }
    free(q);
    free(kv);
    free(o);
    free(lse);
    lc_attn_set_bf16_dot(before);
    if (!(g[0] > 0) || !(g[1] > 0))
        return snprintf(why, len, "fma (the timing failed: %s)", lc_attn_last_error()), LC_BF16_DOT_FMA;
    char model[512], path[4096];
    cpu_model(model, sizeof model);
    cache_path(path, sizeof path);
    lc_bf16_dot prev = cached(path, model), pick = g[1] > g[0] ? LC_BF16_DOT_DPBF16 : LC_BF16_DOT_FMA;
    const char *reason = "the faster";
    if (prev != LC_BF16_DOT_AUTO && prev != pick) {
        /* keep the cached one unless the other is clearly faster */
        double mine = g[prev == LC_BF16_DOT_DPBF16], other = g[pick == LC_BF16_DOT_DPBF16];
        if (other < HYSTERESIS * mine) pick = prev, reason = "the cached choice (the other is within 10%)";
    } else if (prev == pick) {
        reason = "the faster, as cached";
    }
    remember(path, model, pick);
    snprintf(why, len, "%s: fma %.0f GFLOP/s, dpbf16 %.0f GFLOP/s on a bf16 forward tile; %s for %s", lc_bf16_dot_name(pick),
             g[0], g[1], reason, model);
    return pick;
}
