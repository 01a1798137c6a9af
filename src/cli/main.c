/* longctx: launch PEs, prepare data, train, inspect checkpoints, run benchmarks. */
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"
#include "cli/cli.h"
#include "planner/planner.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: longctx <command> [options]\n"
            "  launch -n P [--heap SIZE] [--] CMD ARGS...   run CMD as P PEs on the shm backend\n"
            "  prepare-data OUTDIR [--source DIR]           train/val token files from python3-doc\n"
            "  train --model small --seq 16K --cp 2 ...     train a Llama-3-style model (--help)\n"
            "  bench train [--seq ...] [--cp ...] [--json]  trainer step time, MFU, time split\n"
            "  ckpt info|verify|loss DIR                    inspect and check a checkpoint\n"
            "  plan --model M --seq S --pes N [--profile P] which DPxCPxTP layout, algorithm and lowering:\n"
            "                                               predicted, ranked (--calibrate, --check)\n"
            "  bench permute [--pes 2] [--bytes ...] [--lowering ...] [--json]\n"
            "  bench attn [--pass ...] [--s ...] [--json]   attention kernels vs FMA peak\n"
            "  bench tiles [--d ...] [--json]               their tile matmuls and softmax alone\n"
            "  bench ring [--pes ...] [--s ...] [--algo ...] [--json]  context-parallel attention: ring,\n"
            "                                               all-gather, Ulysses, hybrid\n"
            "  bench balance --data DIR [--seq 64K] [--cp ...]  attention work per PE on packed documents\n"
            "  --version                                    the version of this build\n"
            "Every command takes --help (-h). Environment: LONGCTX_TIMEOUT (s; default unbounded),\n"
            "LONGCTX_HEARTBEAT_S (default 30), LONGCTX_HEAP_SIZE, LONGCTX_BIND=core|none,\n"
            "LONGCTX_PERMUTE=one_sided|two_sided|auto, LONGCTX_DEBUG=1 (see README.md).\n");
}

static int is_help(const char *a) { return !strcmp(a, "-h") || !strcmp(a, "--help"); }

int main(int argc, char **argv)
{
    if (argc < 2 || is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("longctx %s\n", LONGCTX_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "launch")) return lc_cmd_launch(argc - 1, argv + 1);
    if (!strcmp(argv[1], "prepare-data")) return lc_cmd_prepare_data(argc - 1, argv + 1);
    if (!strcmp(argv[1], "train")) return lc_cmd_train(argc - 1, argv + 1);
    if (!strcmp(argv[1], "ckpt")) return lc_cmd_ckpt(argc - 1, argv + 1);
    if (!strcmp(argv[1], "plan")) return lc_cmd_plan(argc - 1, argv + 1);
    if (!strcmp(argv[1], "bench")) {
        if (argc < 3 || is_help(argv[2])) {
            usage(argc < 3 ? stderr : stdout);
            return argc < 3 ? 2 : 0;
        }
        if (!strcmp(argv[2], "permute")) return lc_cmd_bench_permute(argc - 2, argv + 2);
        if (!strcmp(argv[2], "attn")) return lc_cmd_bench_attn(argc - 2, argv + 2);
        if (!strcmp(argv[2], "tiles")) return lc_cmd_bench_tiles(argc - 2, argv + 2);
        if (!strcmp(argv[2], "train")) return lc_cmd_bench_train(argc - 2, argv + 2);
        if (!strcmp(argv[2], "ring")) return lc_cmd_bench_ring(argc - 2, argv + 2);
        if (!strcmp(argv[2], "balance")) return lc_cmd_bench_balance(argc - 2, argv + 2);
        fprintf(stderr, "longctx bench: unknown benchmark '%s'\n", argv[2]);
        usage(stderr);
        return 2;
    }
    fprintf(stderr, "longctx: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
