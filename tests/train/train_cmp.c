/* Compares trainer outputs for the tests:
 *   train_cmp params A B TOL     raw fp32 parameter dumps: the relative error ||a-b|| / ||b||
 *                                (2-norm over the whole buffer) against TOL, beside max |a-b| /
 *                                max|b| and the max element-wise difference for the log; fails
 *                                above TOL or on any NaN; TOL 0 demands bit-identity. The 2-norm
 *                                and not the max: AdamW divides each gradient element by its own
 *                                magnitude, so an element whose gradient is a near-cancelling
 *                                sum (1e-8 of the largest, differing in its second digit between
 *                                summation orders) moves by a different fraction of lr on every
 *                                layout, and one such element would decide a max-norm test.
 *   train_cmp loss A.jsonl B.jsonl TOL [GTOL]   the per-step "loss" (TOL) and "grad_norm" (GTOL,
 *                                default TOL) values, relative. The gradient norm is the more
 *                                sensitive of the two: after 10 steps at lr 1e-2 two layouts'
 *                                norms part by ~1e-5 while their losses agree to ~1e-7.
 *   train_cmp falls A.jsonl DROP  mean loss of the last 3 steps < mean of the first 3 - DROP */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *read_f32(const char *p, long *n)
{
    FILE *f = fopen(p, "rb");
    if (!f) return fprintf(stderr, "cannot open %s\n", p), NULL;
    fseek(f, 0, SEEK_END);
    *n = ftell(f) / 4;
    fseek(f, 0, SEEK_SET);
    float *v = malloc((size_t)*n * 4 + 4);
    if (fread(v, 4, (size_t)*n, f) != (size_t)*n) *n = -1;
    fclose(f);
    return v;
}

static int read_key(const char *p, const char *key, double *v, int cap)
{
    FILE *f = fopen(p, "r");
    if (!f) return fprintf(stderr, "cannot open %s\n", p), -1;
    char line[2048];
    int n = 0;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f) && n < cap) {
        char *k = strstr(line, key);
        if (!k) continue;
        v[n++] = strtod(k + kl, NULL);
    }
    fclose(f);
    return n;
}

static int read_losses(const char *p, double *v, int cap)
{
    FILE *f = fopen(p, "r");
    if (!f) return fprintf(stderr, "cannot open %s\n", p), -1;
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < cap) {
        char *k = strstr(line, "\"loss\":");
        if (!k) continue;
        v[n++] = strtod(k + 7, NULL);
    }
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 4) return fprintf(stderr, "usage: train_cmp params|loss|falls ...\n"), 2;
    if (!strcmp(argv[1], "params") && argc == 5) {
        long na, nb;
        float *a = read_f32(argv[2], &na), *b = read_f32(argv[3], &nb);
        double tol = atof(argv[4]);
        if (!a || !b || na != nb || na <= 0) return fprintf(stderr, "parameter files differ in size\n"), free(a), free(b), 1;
        double maxd = 0, maxb = 0, maxrel = 0, d2 = 0, b2 = 0;
        long bad = -1, diff = 0;
        for (long i = 0; i < na; i++) {
            if (isnan(a[i]) || isnan(b[i])) return fprintf(stderr, "NaN at %ld\n", i), free(a), free(b), 1;
            double d = fabs((double)a[i] - b[i]);
            diff += a[i] != b[i];
            d2 += d * d;
            b2 += (double)b[i] * b[i];
            if (d > maxd) maxd = d, bad = i;
            if (fabs(b[i]) > maxb) maxb = fabs(b[i]);
            double rel = d / fmax(fabs(b[i]), 1e-6);
            if (rel > maxrel) maxrel = rel;
        }
        double normrel = maxb > 0 ? maxd / maxb : maxd, l2rel = b2 > 0 ? sqrt(d2 / b2) : sqrt(d2);
        float worst_a = bad >= 0 ? a[bad] : 0, worst_b = bad >= 0 ? b[bad] : 0;
        free(a);
        free(b);
        printf("%ld values, %ld differ; ||a-b||/||b|| = %.3g, max |a-b|/max|b| = %.3g, max element rel = %.3g%s\n",
               na, diff, l2rel, normrel, maxrel, bad >= 0 ? "" : " (bit-identical)");
        if (tol == 0 ? diff != 0 : !(l2rel <= tol)) {
            fprintf(stderr, "FAIL: params differ beyond %g (worst at %ld: %.9g vs %.9g)\n", tol, bad, worst_a, worst_b);
            return 1;
        }
        return 0;
    }
    if (!strcmp(argv[1], "loss") && (argc == 5 || argc == 6)) {
        double a[4096], b[4096], tol = atof(argv[4]), gtol = argc == 6 ? atof(argv[5]) : tol, worst = 0;
        int na = read_losses(argv[2], a, 4096), nb = read_losses(argv[3], b, 4096);
        if (na <= 0 || na != nb) return fprintf(stderr, "loss files have %d and %d steps\n", na, nb), 1;
        for (int i = 0; i < na; i++) {
            if (!isfinite(a[i]) || !isfinite(b[i])) return fprintf(stderr, "non-finite loss at step %d\n", i + 1), 1;
            double r = fabs(a[i] - b[i]) / fabs(b[i]);
            if (r > worst) worst = r;
        }
        printf("loss: %d steps, max rel diff %.3g\n", na, worst);
        if (worst > tol) return fprintf(stderr, "FAIL: losses differ beyond %g\n", tol), 1;
        /* the clipping norm of the full model, whatever the mesh */
        na = read_key(argv[2], "\"grad_norm\":", a, 4096), nb = read_key(argv[3], "\"grad_norm\":", b, 4096);
        if (na != nb) return fprintf(stderr, "grad_norm: %d and %d steps\n", na, nb), 1;
        worst = 0;
        for (int i = 0; i < na; i++) {
            if (!isfinite(a[i]) || !isfinite(b[i])) return fprintf(stderr, "non-finite grad_norm at step %d\n", i + 1), 1;
            double r = fabs(a[i] - b[i]) / fabs(b[i]);
            if (r > worst) worst = r;
        }
        printf("grad_norm: %d steps, max rel diff %.3g\n", na, worst);
        if (worst > gtol) return fprintf(stderr, "FAIL: grad_norm differs beyond %g\n", gtol), 1;
        return 0;
    }
    if (!strcmp(argv[1], "falls") && argc == 4) {
        double v[4096], drop = atof(argv[3]);
        int n = read_losses(argv[2], v, 4096);
        if (n < 6) return fprintf(stderr, "only %d steps\n", n), 1;
        double first = (v[0] + v[1] + v[2]) / 3, last = (v[n - 1] + v[n - 2] + v[n - 3]) / 3;
        printf("loss falls: first 3 steps %.4f, last 3 steps %.4f (%d steps)\n", first, last, n);
        if (!(last < first - drop)) return fprintf(stderr, "FAIL: the loss did not fall by %g\n", drop), 1;
        return 0;
    }
    return fprintf(stderr, "bad arguments\n"), 2;
}
