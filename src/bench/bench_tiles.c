/* longctx bench tiles: the attention kernels' tile operations alone (lc_attn_tile_rates), in
 * cache on one thread, as a fraction of this core's FMA peak measured before and after. What
 * the kernels could reach if nothing but these ran: bench attn divided by these rates says
 * how much the masks, copies, softmax and scheduling cost. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "bench/bench_util.h"
#include "bench/peak.h"
#include "longctx/attn.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: longctx bench tiles [--d 64,128] [--impl auto|scalar|avx2|avx512] [--reps 2000]\n"
               "                           [--rounds 20] [--json]\n"
               "Times the score and P.V matmuls, the backward's dQ and dV/dK matmuls and the forward\n"
               "softmax on 64-row tiles, each the best of --rounds interleaved rounds of --reps calls,\n"
               "against the FMA peak (max of the measurements before and after), and a forward tile\n"
               "step (score, softmax, P.V) as a whole: the forward kernel's ceiling on this core.\n");
}

int lc_cmd_bench_tiles(int argc, char **argv)
{
    static const char *const IMPLS[] = {"auto", "scalar", "avx2", "avx512", NULL};
    lc_ilist dl = {2, {64, 128}};
    lc_slist il;
    memset(&il, 0, sizeof il);
    int reps = 2000, rounds = 20, json = 0, bad = 0;
    const char *impl_s = "auto";
    for (int i = 1; i < argc && !bad; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) { json = 1; continue; }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        if (strcmp(a, "--d") && strcmp(a, "--impl") && strcmp(a, "--reps") && strcmp(a, "--rounds")) {
            fprintf(stderr, "longctx bench tiles: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (!v) {
            fprintf(stderr, "longctx bench tiles: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--d")) bad = lc_parse_int_list(a, v, &dl);
        else if (!strcmp(a, "--impl")) {
            bad = lc_parse_word_list(a, v, IMPLS, &il);
            if (!bad && il.n != 1) {
                fprintf(stderr, "longctx bench tiles: --impl takes one implementation\n");
                bad = 1;
            }
            if (!bad) impl_s = il.v[0];
        } else if (!strcmp(a, "--reps")) bad = lc_parse_int_opt(a, v, 1, 1000000, &reps);
        else bad = lc_parse_int_opt(a, v, 1, 1000, &rounds);
    }
    if (bad) return 2;
    lc_attn_impl want, impl;
    lc_attn_impl_parse(impl_s, &want);
    impl = want == LC_ATTN_AUTO ? lc_attn_impl_best() : want;
    if (!lc_attn_impl_supported(impl)) {
        fprintf(stderr, "longctx bench tiles: this CPU cannot run %s\n", lc_attn_impl_name(impl));
        return 2;
    }
    if (!json)
        printf("%-6s %4s %-12s %9s %9s %7s\n", "impl", "d", "op", "us/call", "GFLOP/s", "%peak");
    for (int di = 0; di < dl.n; di++) {
        int d = (int)dl.v[di];
        lc_attn_tile_rate r[8];
        double p0 = lc_fma_peak_gflops(impl);
        int n = lc_attn_tile_rates(impl, d, reps, rounds, r, 8);
        double p1 = lc_fma_peak_gflops(impl), peak = p0 > p1 ? p0 : p1;
        if (n < 0) {
            fprintf(stderr, "longctx bench tiles: %s\n", lc_attn_last_error());
            return 1;
        }
        if (!json)
            printf("# d %d: fp32 FMA peak %.1f GFLOP/s (before %.1f, after %.1f)\n", d, peak, p0, p1);
        /* one forward tile step: score matmul, softmax, P.V (entries 0, 4, 1) */
        double step_s = 0, step_f = 0;
        for (int k = 0; k < n; k++) {
            double g = r[k].flops / r[k].seconds * 1e-9;
            if (k == 0 || k == 1 || k == 4) {
                step_s += r[k].seconds;
                step_f += r[k].flops;
            }
            if (json)
                printf("{\"bench\":\"tiles\",\"impl\":\"%s\",\"d\":%d,\"op\":\"%s\",\"seconds\":%.6g,"
                       "\"gflops\":%.6g,\"peak_gflops\":%.6g,\"frac_peak\":%.4f}\n",
                       lc_attn_impl_name(impl), d, r[k].name, r[k].seconds, g, peak, peak > 0 ? g / peak : 0.0);
            else if (r[k].flops > 0)
                printf("%-6s %4d %-12s %9.3f %9.1f %6.1f%%\n", lc_attn_impl_name(impl), d, r[k].name,
                       r[k].seconds * 1e6, g, peak > 0 ? 100 * g / peak : 0.0);
            else
                printf("%-6s %4d %-12s %9.3f %9s %7s\n", lc_attn_impl_name(impl), d, r[k].name, r[k].seconds * 1e6,
                       "-", "-");
        }
        if (n >= 5 && !json)
            printf("# d %d: a forward tile step (score, softmax, P.V) runs at %.1f%% of peak; the softmax is %.1f%% "
                   "of it\n", d, 100 * step_f / step_s * 1e-9 / peak, 100 * r[4].seconds / step_s);
        else if (n >= 5)
            printf("{\"bench\":\"tiles\",\"impl\":\"%s\",\"d\":%d,\"op\":\"fwd tile step\",\"seconds\":%.6g,"
                   "\"gflops\":%.6g,\"peak_gflops\":%.6g,\"frac_peak\":%.4f,\"softmax_share\":%.4f}\n",
                   lc_attn_impl_name(impl), d, step_s, step_f / step_s * 1e-9, peak, step_f / step_s * 1e-9 / peak,
                   r[4].seconds / step_s);
        fflush(stdout);
    }
    return 0;
}
