/* longctx trainer: the training loop over a DP x CP x TP mesh (src/train/trainer.c).
 *
 * Every PE runs lc_trainer_run with the same options. Data, mesh and model are validated
 * before the first step; each step runs accum micro-batches (one sequence each) per DP rank,
 * all-reduces the gradients (sum) over the PEs holding the same slices (CP x DP at one TP
 * rank) with grad_scale = 1 / (accum * dp), clips them by the global norm of the full model and applies AdamW with a warmup + cosine learning rate. PE 0 prints a
 * progress line per step and writes out_dir/metrics.jsonl and out_dir/loss.png. */
#ifndef LONGCTX_TRAINER_H
#define LONGCTX_TRAINER_H

#include "longctx/ckpt.h"
#include "longctx/model.h"
#include "longctx/train.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    lc_model_config model;
    const char *model_name;   /* for the log */
    lc_plan plan;             /* cp.h: the mesh DP x CP x TP (TP Megatron style inside each
                                 (DP, CP)) and its order, sp, seq_len, the CP algorithm, layout
                                 and lowering; the trainer and its model hold it by reference */
    lc_dtype compute;
    lc_bf16_dot bf16_dot;     /* bf16 compute: the kernels' inner product (attn.h); AUTO: PE 0
                                 measures (lc_attn_bf16_dot_measure) and every PE takes its answer */
    int recompute;
    int doc_mask;             /* packed documents: doc ids from doc_sep, no attention across */
    int64_t window;           /* > 0: sliding-window attention over the last window tokens */
    int doc_sep;
    int threads;              /* per PE; <= 0: the CPUs this PE may run on */
    const char *device;       /* "cpu" (NULL too) or "cuda": the model on the PE's GPU, over the
                                 GPU ring (the GPU plugin, include/longctx/train_cuda.h); the
                                 optimizer and the gradient all-reduce stay on the host */
    const char *gpu_engine;   /* cuda: the ring's attention blocks, "own", "cudnn" or "auto" */
    int64_t steps;
    int extend_schedule;      /* on resume: re-fit the lr schedule's cosine to this run's steps
                                 (0: it continues as saved and holds at lr_min past its end) */
    int accum;
    float lr, lr_min;         /* lr_min: the end of the cosine */
    int64_t warmup;
    float weight_decay, clip, beta1, beta2, eps;
    uint64_t seed;
    int eval_every;           /* 0: only at the end */
    int eval_seqs;            /* validation sequences per evaluation */
    const char *train_path, *val_path;
    const char *out_dir;      /* NULL: no metrics, no plot */
    const char *dump_params;  /* raw fp32 parameters after the last step (PE 0), or NULL */
    const char *dump_grads;   /* raw fp32 all-reduced gradients of the first step (PE 0) */
    double peak_gflops_core;  /* > 0: use this FMA peak per core; 0: measure (see peak_fn) */
    double (*peak_fn)(void);  /* measures one core's FMA peak in GFLOP/s */
    int quiet;                /* no progress lines */
    double time_budget_s;     /* > 0: after two steps, cut `steps` so the loop ends in about
                                 this many seconds (the schedule follows the new total); the
                                 step count then depends on the machine, so runs are not
                                 reproducible: for demos, not comparisons */
    /* checkpoints (src/ckpt, include/longctx/ckpt.h) */
    const char *save_dir;     /* NULL: no checkpoints */
    int64_t save_every;       /* > 0: save after every N steps (and after the last) */
    int keep;                 /* keep the newest K checkpoints; 0: all */
    const char *resume;       /* a checkpoint or a folder of them (the newest complete one);
                                 "" means save_dir; NULL: start fresh */
    const char *init_from;    /* Hugging Face folder: weights only, step 0 */
    int rope_theta_set;       /* --rope-theta was given: it overrides the stored value */
} lc_trainer_opts;

/* Fills defaults (AdamW 0.9/0.95/1e-8, wd 0.1, clip 1, lr 3e-3 -> 3e-4, warmup 10%,
 * eval every steps/5, 8 validation sequences, seed 1337, zigzag ring, auto lowering, f32). */
void lc_trainer_defaults(lc_trainer_opts *o);
/* Checks what can be checked without a world: the plan (lc_plan_validate: dp x cp x tp
 * against n_pes, the mesh order, sp, the layout against seq_len and cp), the model config,
 * heads (and KV heads, ffn, vocab) against tp, the data files. Returns 0 or writes err. */
int lc_trainer_check(const lc_trainer_opts *o, int n_pes, char *err, size_t errlen);
/* 1 when o asks for the model on the GPU (--device cuda). */
int lc_trainer_on_gpu(const lc_trainer_opts *o);
/* Whether options o may resume the run that wrote checkpoint ckpt with state st: every
 * recorded setting that changes the math or the data must agree: --seq, --seed, --wd,
 * --warmup (when o->warmup >= 0), --dtype, --doc-mask and --doc-sep, --clip, the global batch
 * (dp x --accum sequences per step) and, when train is given, the training tokens (by
 * lc_tokfile_fingerprint, not by path). What may change (steps, lr, the mesh and its CP
 * algorithm, layout and lowering, threads, eval, output, rope-theta) is not looked at.
 * Returns 0, or LC_ERR_ARG with "CKPT was written with --X A, this run has B" in err. The CLI
 * asks it before any PE starts; lc_trainer_run asks it again on every PE. */
int lc_trainer_resume_check(const lc_trainer_opts *o, const lc_ckpt_state *st, const char *ckpt,
                            const lc_tokfile *train, char *err, size_t errlen);
/* Asks the running trainer to stop after the current step (async-signal-safe: a SIGTERM
 * handler calls it). The PEs agree on the step at its end (the request of any PE counts),
 * save a checkpoint there when save_dir is set, and lc_trainer_run returns LC_STOPPED. */
void lc_trainer_request_stop(void);
/* A bf16 job's inner product (attn.h): want, or for AUTO what PE 0 of world measures
 * (lc_attn_bf16_dot_measure), broadcast; set on this PE before any bf16 workspace is sized.
 * why gets one line for the logs. Collective over world. */
int lc_train_choose_bf16_dot(lc_team *world, lc_bf16_dot want, char *why, size_t len);
/* Collective over the world. Returns 0 when training completed; else an lc_status with the
 * message in lc_train_last_error(). */
int lc_trainer_run(lc_world *w, const lc_trainer_opts *o);

#ifdef __cplusplus
}
#endif
#endif
