/* longctx bench balance: how evenly each layout spreads the attention work of real packed
 * sequences over the CP PEs, beside --balance mask's deal of the same sequences. No
 * attention runs: the work is the kernels' tile count (lc_cp_chunk_work, the same rule the
 * kernels skip tiles by), so this is the imbalance a step would have, max PE work / mean,
 * over the training stream's first --samples sequences. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "bench/bench_util.h"
#include "longctx/cp.h"
#include "longctx/train.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: longctx bench balance --data DIR [--seq 64K] [--cp 2,4,8] [--samples 32] [--window W]\n"
               "                             [--no-doc] [--json]\n"
               "Packed documents of DIR/train.bin (ended by token %d), causal + document mask (+ a window).\n"
               "Per CP degree: max / mean PE work of zigzag, contiguous and striped, and of --balance mask,\n"
               "mean and worst over the sequences.\n", LC_BYTE_DOC_SEP);
}

int lc_cmd_bench_balance(int argc, char **argv)
{
    const char *data = NULL;
    lc_ilist seq = {1, {65536}}, cps = {3, {2, 4, 8}};
    int samples = 32, json = 0, nodoc = 0;
    long long window = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--no-doc")) nodoc = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout), 0;
        else if (!v) bad = 1;
        else {
            i++;
            if (!strcmp(a, "--data")) data = v;
            else if (!strcmp(a, "--seq")) bad = lc_parse_size_list(a, v, &seq);
            else if (!strcmp(a, "--cp")) bad = lc_parse_count_list(a, v, 1, 1024, &cps);
            else if (!strcmp(a, "--samples")) bad = lc_parse_int_opt(a, v, 1, 100000, &samples);
            else if (!strcmp(a, "--window")) bad = (window = atoll(v)) < 1;
            else bad = 1;
        }
        if (bad) {
            fprintf(stderr, "longctx bench balance: bad option %s %s\n", a, v ? v : "");
            usage(stderr);
            return 2;
        }
    }
    if (!data) {
        fprintf(stderr, "longctx bench balance: --data DIR is needed (a `longctx prepare-data` folder)\n");
        return 2;
    }
    if (!json)
        printf("# bench balance: %s/train.bin, %s%s, %d sequences. Per layout: max / mean PE work (64x64 tiles the\n"
               "# kernels compute), mean and worst over the sequences, then the total work against the mask deal's\n"
               "%-7s %4s %24s %24s %24s %24s\n",
               data, nodoc ? "causal" : "causal+doc", window ? " + window" : "", samples, "seq", "cp",
               "zigzag mean/max work", "contiguous", "striped", "mask");
    unsigned mask = LC_MASK_CAUSAL | (nodoc ? 0 : LC_MASK_DOC) | (window ? LC_MASK_WINDOW : 0);
    for (int si = 0; si < seq.n; si++) {
        int64_t S = seq.v[si];
        char path[1200];
        snprintf(path, sizeof path, "%s/train.bin", data);
        lc_tokfile *f;
        if (lc_tokfile_open(path, 256, S + 1, &f)) {
            fprintf(stderr, "longctx bench balance: %s\n", lc_train_last_error());
            return 1;
        }
        lc_loader_config lcfg = {S, 1337, 0, 1, 1, LC_BYTE_DOC_SEP};
        lc_loader *ld;
        if (lc_loader_create(f, &lcfg, &ld)) {
            fprintf(stderr, "longctx bench balance: %s\n", lc_train_last_error());
            lc_tokfile_close(f);
            return 1;
        }
        int64_t nc = (S + 63) / 64;
        int32_t *tok = malloc(S * 4), *tgt = malloc(S * 4), *doc = malloc(S * 4), *pos = malloc((S + 64 * 1024) * 4);
        double *work = malloc(nc * sizeof(double)), *load = malloc(1024 * sizeof(double));
        int *scratch = malloc((2 * nc + 1024) * sizeof(int));
        void *tiles = malloc(lc_cp_work_scratch(1024, (int)((S + 1023) / 1024 * 2 + 64)));
        /* [cp][layout 0..2, mask 3][mean, max, total work / the mask deal's] */
        double acc[LC_LIST_MAX][4][3];
        memset(acc, 0, sizeof acc);
        double t_deal = 0; /* what lc_cp_balance_step costs a step: the work, the deal, its measure */
        for (int n = 0; n < samples; n++) {
            lc_loader_next(ld, tok, tgt, doc);
            double t0 = lc_wall();
            lc_cp_chunk_work(S, mask, window, doc, work);
            int P0 = (int)cps.v[cps.n - 1];
            if (!lc_cp_balance_assign(work, S, P0, pos, scratch, load))
                lc_cp_work_imbalance(mask, window, doc, P0, (int)(S / P0), pos, tiles, load, NULL);
            t_deal += (lc_wall() - t0) / samples;
            for (int ci = 0; ci < cps.n; ci++) {
                int P = (int)cps.v[ci];
                double imb[4] = {NAN, NAN, NAN, NAN}, tot[4] = {NAN, NAN, NAN, NAN};
                for (int l = 3; l >= 0; l--) { /* the deal first: the others' work is relative to it */
                    int n_pad = (int)(S / P);
                    if (l < 3) {
                        if (lc_cp_layout_positions((lc_cp_layout)l, S, P, 0, NULL, &n_pad) < 0) continue;
                        for (int r = 0; r < P; r++) lc_cp_layout_positions((lc_cp_layout)l, S, P, r, pos + (size_t)r * n_pad, NULL);
                    } else if (lc_cp_balance_assign(work, S, P, pos, scratch, load)) {
                        continue;
                    }
                    imb[l] = lc_cp_work_imbalance(mask, window, doc, P, n_pad, pos, tiles, load, &tot[l]);
                    acc[ci][l][0] += imb[l] / samples;
                    acc[ci][l][1] = imb[l] > acc[ci][l][1] ? imb[l] : acc[ci][l][1];
                    acc[ci][l][2] += tot[l] / tot[3] / samples;
                }
            }
        }
        for (int ci = 0; ci < cps.n; ci++) {
            static const char *names[4] = {"contiguous", "zigzag", "striped", "mask"};
            if (json) {
                for (int l = 0; l < 4; l++)
                    printf("{\"bench\":\"balance\",\"seq\":%lld,\"cp\":%lld,\"mask\":\"%s\",\"window\":%lld,"
                           "\"balance\":\"%s\",\"imbalance_mean\":%.5f,\"imbalance_max\":%.5f,"
                           "\"work_vs_mask\":%.5f,\"samples\":%d}\n",
                           (long long)S, cps.v[ci], nodoc ? "causal" : "causal+doc", window, names[l],
                           acc[ci][l][0], acc[ci][l][1], acc[ci][l][2], samples);
            } else {
                char cell[4][40];
                for (int l = 0; l < 4; l++)
                    snprintf(cell[l], sizeof cell[l], isnan(acc[ci][l][0]) ? "(S/64 %% cp)" : "%.3f / %.3f  %.2f",
                             acc[ci][l][0], acc[ci][l][1], acc[ci][l][2]);
                printf("%-7lld %4lld %24s %24s %24s %24s\n", (long long)S, cps.v[ci], cell[1], cell[0], cell[2], cell[3]);
            }
        }
        if (!json)
            printf("# seq %lld: the work, the deal and its measure over CP %lld take %.1f ms per sequence (one core)\n",
                   (long long)S, cps.v[cps.n - 1], 1e3 * t_deal);
        free(tok), free(tgt), free(doc), free(pos), free(work), free(load), free(scratch), free(tiles);
        lc_loader_destroy(ld);
        lc_tokfile_close(f);
    }
    return 0;
}
