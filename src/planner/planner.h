/* longctx plan: which DP x CP x TP layout, CP algorithm, layout, lowering and recompute
 * setting to train with, predicted from a cost model of the machine (a profile) and checked
 * against measurement (longctx plan --check). docs/PLANNER.md gives every formula and the
 * source of every number of the built-in profiles. */
#ifndef LONGCTX_PLANNER_H
#define LONGCTX_PLANNER_H
#include <stddef.h>

#include "longctx/trainer.h"

/* What a machine does, per device: measured on this host by `longctx plan --calibrate`, or
 * from datasheets for the GPU profiles. A CPU profile's device is the host: its PEs share
 * the cores (a PE of P gets cores / P of them) and the memory. */
typedef struct {
    char name[64];          /* "this-host", "h100-dgx", "gb200-nvl72", or the file's */
    char device[128];       /* the CPU model and its cores, or the GPU */
    int gpu;                /* 1: one PE per GPU; 0: the PEs share this host's cores */
    int cores;              /* CPU: cores the PEs share (the job's affinity set) */
    int per_node;           /* devices in one fast domain (NVLink domain; CPU: the PEs of a host) */
    double mem_bytes;       /* memory per device (CPU: the host's, shared by its PEs) */
    double base_bytes;      /* a PE's memory before the model: binary, libraries, pools */
    double fma_gflops;      /* the fp32 FMA peak per core (CPU) or the dense bf16 peak per GPU:
                               shown beside the rates, which the model uses */
    /* compute rates, GFLOP/s, of one core (CPU, one thread) or one GPU; [dtype: 0 f32, 1 bf16] */
    double gemm[2];         /* the model's linear layers (6 N FLOPs per token) */
    double attn[2][2];      /* [dtype][head dim 64, 128]: attention fwd+bwd, causal, counted as
                               lc_model_flops_per_token counts it, at attn_len rows per call */
    double attn_len;        /* the calibration's rows per attention call */
    double attn_long;       /* the rate at 4 x attn_len rows over the rate at attn_len */
    double thread_eff;      /* CPU: the rate with every core's thread over cores x one thread's */
    double other_ns;        /* the memory-bound rest: ns per unit (planner.c: rest_units) */
    double adamw_ns;        /* the optimizer: ns per parameter (all threads of the host) */
    /* links, [0] inside a node (shared memory, NVLink) and [1] between nodes; per lowering
     * [one_sided, two_sided, zero_copy]: latency (us per transfer) and bandwidth (GB/s); a
     * bandwidth of 0 marks a lowering the profile does not have */
    double lat_us[2][3], gbs[2][3];
    double ar_lat_us[2], ar_gbs[2]; /* all-reduce of a P=2 team (bus bandwidth) */
    int overlap;            /* 1: ring transfers run beside compute (GPU copy engines, DMA);
                               0: the sending PE's CPU copies (shm), so transfers add to compute */
    double two_sided_tax;   /* share of the compute a two-sided transfer takes while it runs
                               (NCCL's kernels hold SMs; 0 on the CPU, where the copy is counted) */
    char source[256];       /* where the numbers come from */
} lc_profile;

/* Built-in GPU profiles ("h100-dgx", "gb200-nvl72"); 0 or -1 for an unknown name. */
int lc_profile_builtin(const char *name, lc_profile *p);
/* JSON file <-> profile (one object; docs/PLANNER.md lists the keys). 0 or -1 with err. */
int lc_profile_load(const char *path, lc_profile *p, char *err, size_t errlen);
int lc_profile_save(const char *path, const lc_profile *p, char *err, size_t errlen);
/* This host's cache file: $XDG_CACHE_HOME/longctx (else ~/.cache/longctx)/host-<cpu>-<n>c.json. */
int lc_profile_host_path(char *buf, size_t len);

/* One candidate: a mesh, a CP algorithm and layout, a lowering, recompute. */
typedef struct {
    lc_plan plan;       /* dp, cp, tp, sp, algo, ulysses, layout, lowering (seq_len set) */
    int recompute;
} lc_cand;

/* The prediction for one candidate (per device; seconds per optimizer step). */
typedef struct {
    lc_cand c;
    double mem_weights, mem_grads, mem_optim, mem_act, mem_total; /* bytes, base included in total */
    double t_matmul, t_attn, t_other, t_optim; /* compute */
    double t_cp, t_tp, t_dp;           /* communication per axis, whole step */
    double x_cp, x_tp, x_dp;           /* the part of each left exposed after overlap */
    double t_step, tok_s;
    int fits;
} lc_pred;

typedef struct {
    lc_model_config model;
    int64_t seq;
    int batch;          /* sequences per optimizer step, over all DP replicas */
    int pes;
    int per_node;       /* 0: the profile's */
    lc_dtype dtype;
    int window;         /* sliding window, 0: none */
} lc_plan_req;

/* Predicts one candidate; 0, or -1 with err when it is not a valid layout for the model. */
int lc_planner_predict(const lc_profile *p, const lc_plan_req *r, const lc_cand *c, lc_pred *out, char *err,
                       size_t errlen);
/* Every valid candidate, ranked (fits first, then predicted step time). *out is malloc'd. */
int lc_planner_enumerate(const lc_profile *p, const lc_plan_req *r, lc_pred **out, int *n);
/* One line on why rows[0] wins over the next different layout. */
void lc_planner_explain(const lc_pred *rows, int n, char *buf, size_t len);
/* "2x4x1s ring zigzag one_sided" */
void lc_cand_name(const lc_cand *c, char *buf, size_t len);

/* The memory-bound rest in the model's units (calibration and prediction share it). */
double lc_planner_rest_units(const lc_model_config *m, int64_t tokens, int tp, int sp);

/* `longctx plan ...` and its --calibrate / --check; `longctx train --plan auto`'s choice. */
int lc_cmd_plan(int argc, char **argv);
/* The best layout for this host (calibrating first when no profile is cached, and saying so):
 * fills plan and *recompute, and why with the one-line reason. 0, or -1 with a message on stderr. */
int lc_planner_auto(const lc_model_config *m, int64_t seq, int batch, int pes, lc_dtype dt, lc_plan *plan,
                    int *recompute, char *why, size_t whylen);
#endif
