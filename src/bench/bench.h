/* The benchmarks of the longctx binary (longctx bench <name>): the bench layer, above every
 * library layer; only the CLI's dispatch (src/cli/main.c) calls these. Each returns the
 * process exit status. */
#ifndef LONGCTX_BENCH_H
#define LONGCTX_BENCH_H

int lc_cmd_bench_permute(int argc, char **argv);
int lc_cmd_bench_attn(int argc, char **argv);
int lc_cmd_bench_tiles(int argc, char **argv);
int lc_cmd_bench_ring(int argc, char **argv);
int lc_cmd_bench_train(int argc, char **argv);
int lc_cmd_bench_balance(int argc, char **argv);

#endif
