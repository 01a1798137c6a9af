/* Subcommands of the longctx binary. Each returns the process exit status. */
#ifndef LONGCTX_CLI_H
#define LONGCTX_CLI_H

int lc_cmd_launch(int argc, char **argv);
int lc_cmd_bench_permute(int argc, char **argv);
int lc_cmd_bench_attn(int argc, char **argv);
int lc_cmd_bench_tiles(int argc, char **argv);
int lc_cmd_bench_ring(int argc, char **argv);
int lc_cmd_prepare_data(int argc, char **argv);
int lc_cmd_train(int argc, char **argv);
int lc_cmd_bench_train(int argc, char **argv);
int lc_cmd_ckpt(int argc, char **argv);

#endif
