/* `longctx bench train --peers torch,jax`: the same training step run by the Python peers
 * (bench/peers) side by side with ours, on the same weights (our checkpoint of the initial
 * parameters), the same tokens, sequence and cores, each peer's first-step loss checked
 * against ours before its speed counts. */
#ifndef LONGCTX_BENCH_TRAIN_PEERS_H
#define LONGCTX_BENCH_TRAIN_PEERS_H
#include <stdint.h>

#include "bench/bench_util.h"
#include "longctx/trainer.h"

#define LC_PEER_TORCH 1u
#define LC_PEER_JAX 2u

/* "torch,jax" -> bit mask; -1 with a message on stderr for an unknown name. */
int lc_bench_peers_parse(const char *s, unsigned *mask);

/* Worker side, collective over the world (every PE calls it): our checkpoint of the current
 * parameters (lc_ckpt_save, PE 0 writes) under dir/ckpt, and dir/tokens.i32 (the S tokens of
 * the sequence, int32). Returns 0 or -1 with a message on stderr. */
int lc_bench_peer_inputs(const char *dir, lc_world *w, lc_model *m, lc_adamw *opt, const int32_t *tok,
                         int64_t S);
/* Worker side, PE 0: our result row for the parent (dir/ours.json), with what every row's MFU
 * is judged by: the model's FLOPs per token, one core's FMA peak and the cores used. */
int lc_bench_peer_ours(const char *dir, const char *model, int64_t S, int cp, int threads,
                       const char *lowering, double step_s, double tokens_per_s,
                       double peak_mem_bytes, double loss0, double cpu_s, double flops_per_token,
                       double peak_gflops_core, double cores);
/* CPU seconds of this process so far, all threads (getrusage). */
double lc_bench_proc_cpu_s(void);

typedef struct {
    const char *model;
    lc_ilist seq, cp;
    int steps, warm, json;
    unsigned peers;
    int rounds; /* ours and the peers alternate this many times; the median round is reported */
    int bf16;   /* bf16 compute: ours --dtype bf16, torch under autocast to bf16 */
} lc_bench_peer_opts;

/* Parent side: for each sequence, for each CP: our workers (argv re-run with --seq/--cp
 * replaced and --peer-out added), then the peers at that CP; prints one row per impl and the
 * ratios. Returns the first failing status (a peer that is absent or invalid is a row, not a
 * failure). */
int lc_bench_train_with_peers(const lc_bench_peer_opts *o, int argc, char **argv);

#endif
