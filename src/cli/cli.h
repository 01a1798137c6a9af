/* Subcommands of the longctx binary. Each returns the process exit status. The benchmarks
 * (longctx bench ...) are the bench layer's: bench/bench.h. */
#ifndef LONGCTX_CLI_H
#define LONGCTX_CLI_H

int lc_cmd_launch(int argc, char **argv);
int lc_cmd_prepare_data(int argc, char **argv);
int lc_cmd_train(int argc, char **argv);
int lc_cmd_ckpt(int argc, char **argv);

#endif
