/* longctx bench train: full training steps (forward + backward + gradient all-reduce + AdamW)
 * on synthetic tokens, per model / sequence / CP x TP layout / dtype: median step time,
 * tokens/s, MFU against the FMA peak measured in the same run, peak memory per PE, and where
 * the step goes (matmuls, attention, CP permute waits, TP collectives, the gradient
 * all-reduce, the rest), from the model's own counters. Each layout re-runs the binary as
 * its DP x CP x TP PEs (one world per layout; the trainer's default mesh order tp,cp,dp, TP
 * innermost). DP replicas train on different tokens and the gradient all-reduce spans them,
 * as in the trainer. */
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/bench_train_peers.h"
#include "bench/bench_util.h"
#include "bench/peak.h"
#include "common/settings.h"
#include "longctx/train_cuda.h"
#include "longctx/trainer.h"

static const char *const DTYPES[] = {"f32", "bf16", NULL};
static const char *const LAYOUTS[] = {"zigzag", "contiguous", "striped", NULL};

typedef struct {
    const char *model;
    lc_ilist seq, dp, cp, tp; /* layout k: dp.v[k] x cp.v[k] x tp.v[k] */
    lc_slist dtype;
    lc_cp_layout layout;
    lc_cp_algo algo;
    int ulysses;          /* hybrid: the Ulysses degree */
    lc_lowering lowering;
    int steps, warm, json, threads, recompute, sp;
    int rounds;           /* --peers: ours and the peers alternate this many times */
    unsigned peers;       /* --peers: bench_train_peers.c runs them beside ours */
    const char *peer_out; /* worker: write the peers' inputs and our row here */
    int cuda;             /* --device cuda: the model and AdamW on the GPU (the trainer's plugin) */
} opts_t;

static void usage(FILE *f)
{
    fprintf(f, "usage: longctx bench train [--model small] [--seq 4K,16K,64K] [--cp 1,2 | --layouts 1x4,2x2,2x2x1]\n"
               "                           [--tp 1] [--dp 1] [--sp] [--dtype f32,bf16] [--steps 3] [--warm 1] [--layout zigzag]\n"
               "                           [--cp-algo ring|allgather|ulysses|hybrid [--ulysses U]] [--permute auto] [--threads T] [--recompute] [--json]\n"
               "                           [--device cpu|cuda]\n"
               "--layouts: CP x TP or DP x CP x TP per world (PEs = DP x CP x TP; CxT is 1xCxT); --cp C with\n"
               "--tp T and --dp D is the layout D x C x T. DP replicas train on different tokens; tokens/s and\n"
               "MFU count all replicas.\n"
               "--sp: sequence parallelism in the layouts with TP >= 2 (an 's' after tp).\n"
               "Medians over --steps timed steps after --warm untimed ones. Defaults: small, 4K, CP 1, f32.\n"
               "--peers torch,jax [--rounds R]: the peers beside ours on the same weights, tokens and cores;\n"
               "ours and each peer alternate R times (default 3) and the median round of each is reported,\n"
               "so a machine whose speed drifts (a shared host) does not favour whichever ran first.\n");
}

/* "1x4,2x2,2x2x1": CP x TP pairs (DP 1) or DP x CP x TP triples. */
static int parse_layouts(const char *v, opts_t *o)
{
    o->dp.n = o->cp.n = o->tp.n = 0;
    const char *p = v;
    while (*p) {
        long x[3];
        int k = 0;
        char *e;
        for (;;) {
            x[k] = strtol(p, &e, 10);
            if (e == p || x[k] < 1 || x[k] > LC_CLI_MAX_PES) return 1;
            k++;
            p = e;
            if (*p != 'x' || k == 3) break;
            p++;
        }
        if (k < 2 || (*p && *p != ',') || o->cp.n == LC_LIST_MAX) return 1;
        long d = k == 3 ? x[0] : 1, c = x[k - 2], t = x[k - 1];
        if (d * c * t > LC_CLI_MAX_PES) return 1;
        o->dp.v[o->dp.n++] = d;
        o->cp.v[o->cp.n++] = c;
        o->tp.v[o->tp.n++] = t;
        if (*p) p++;
    }
    return o->cp.n == 0;
}

static int parse(int argc, char **argv, opts_t *o, int *worker)
{
    memset(o, 0, sizeof *o);
    o->model = "small";
    o->seq = (lc_ilist){1, {4096}};
    o->cp = (lc_ilist){1, {1}};
    int tp = 1, dp = 1, have_layouts = 0;
    o->dtype.n = 1;
    strcpy(o->dtype.v[0], "f32");
    o->layout = LC_CP_ZIGZAG;
    o->steps = 3;
    o->warm = 1;
    o->rounds = 3;
    *worker = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--json")) o->json = 1;
        else if (!strcmp(a, "--worker")) *worker = 1;
        else if (!strcmp(a, "--recompute")) o->recompute = 1;
        else if (!strcmp(a, "--sp")) o->sp = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!v) bad = 1;
        else {
            i++;
            lc_ilist one;
            lc_slist w;
            if (!strcmp(a, "--peers")) bad = lc_bench_peers_parse(v, &o->peers);
            else if (!strcmp(a, "--peer-out")) o->peer_out = v;
            else if (!strcmp(a, "--model")) o->model = v;
            else if (!strcmp(a, "--device")) bad = strcmp(v, "cpu") && strcmp(v, "cuda"), o->cuda = !strcmp(v, "cuda");
            else if (!strcmp(a, "--seq")) bad = lc_parse_size_list(a, v, &o->seq);
            else if (!strcmp(a, "--cp")) bad = lc_parse_int_list(a, v, &o->cp);
            else if (!strcmp(a, "--tp")) bad = lc_parse_int_opt(a, v, 1, LC_CLI_MAX_PES, &tp);
            else if (!strcmp(a, "--dp")) bad = lc_parse_int_opt(a, v, 1, LC_CLI_MAX_PES, &dp);
            else if (!strcmp(a, "--layouts")) bad = parse_layouts(v, o), have_layouts = 1;
            else if (!strcmp(a, "--dtype")) bad = lc_parse_word_list(a, v, DTYPES, &o->dtype);
            else if (!strcmp(a, "--steps")) bad = lc_parse_int_list(a, v, &one) || one.n != 1, o->steps = (int)one.v[0];
            else if (!strcmp(a, "--warm")) o->warm = atoi(v), bad = o->warm < 0;
            else if (!strcmp(a, "--rounds")) bad = lc_parse_int_opt(a, v, 1, 15, &o->rounds);
            else if (!strcmp(a, "--threads")) bad = lc_parse_int_list(a, v, &one) || one.n != 1, o->threads = (int)one.v[0];
            else if (!strcmp(a, "--layout")) bad = lc_parse_word_list(a, v, LAYOUTS, &w) || w.n != 1 || lc_cp_layout_parse(w.v[0], &o->layout);
            else if (!strcmp(a, "--cp-algo")) bad = lc_cp_algo_parse(v, &o->algo) != 0;
            else if (!strcmp(a, "--ulysses")) bad = lc_parse_int_opt(a, v, 1, LC_CLI_MAX_PES, &o->ulysses);
            else if (!strcmp(a, "--permute")) bad = lc_lowering_parse(v, &o->lowering);
            else bad = 1;
        }
        if (bad) {
            fprintf(stderr, "longctx bench train: bad option %s %s\n", a, v ? v : "");
            usage(stderr);
            return -1;
        }
    }
    lc_model_config c;
    if (lc_model_preset(o->model, &c)) {
        fprintf(stderr, "longctx bench train: unknown --model %s\n", o->model);
        return -1;
    }
    if (!have_layouts) {
        o->tp.n = o->dp.n = o->cp.n;
        for (int k = 0; k < o->cp.n; k++) o->tp.v[k] = tp, o->dp.v[k] = dp;
    }
    for (int k = 0; k < o->cp.n; k++) {
        char err[256];
        if (o->dp.v[k] * o->cp.v[k] * o->tp.v[k] > LC_CLI_MAX_PES) {
            fprintf(stderr, "longctx bench train: layout %lldx%lldx%lld: more than %d PEs\n", o->dp.v[k], o->cp.v[k],
                    o->tp.v[k], LC_CLI_MAX_PES);
            return -1;
        }
        if (lc_model_tp_check(&c, (int)o->tp.v[k], err, sizeof err)) {
            char dps[24] = "";
            if (o->dp.v[k] > 1) snprintf(dps, sizeof dps, "%lldx", o->dp.v[k]);
            fprintf(stderr, "longctx bench train: layout %s%lldx%lld: %s\n", dps, o->cp.v[k], o->tp.v[k], err);
            return -1;
        }
    }
    return 0;
}

static double vmed(double *v, int n) { return lc_median(v, n); }

static int run_one(lc_world *w, const opts_t *o, int64_t S, lc_dtype dt, double peak)
{
    /* the worker's one layout: dp x cp x tp = P (the launcher started that many PEs) */
    int me = lc_my_pe(w), P = lc_n_pes(w), tp = (int)o->tp.v[0], dp = (int)o->dp.v[0], cp = P / (tp * dp);
    int sp = o->sp && tp > 1; /* --sp applies to the layouts with TP */
    lc_model_config cfg;
    lc_model_preset(o->model, &cfg);
    if (S > cfg.max_seq) cfg.max_seq = S;
    lc_mesh mesh;
    if (lc_mesh_create(lc_team_world(w), dp, cp, tp, &mesh)) {
        fprintf(stderr, "bench train: %s\n", lc_train_last_error());
        return 1;
    }
    int threads = o->threads > 0 ? o->threads : 1;
    if (o->threads <= 0) {
        cpu_set_t s;
        if (!sched_getaffinity(0, sizeof s, &s)) threads = CPU_COUNT(&s);
        /* unbound PEs (more PEs than CPUs, or LONGCTX_BIND=none) split the CPUs they share */
        const char *b = lc__env_str("LONGCTX_BIND");
        if (P > 1 && (threads < P || (b && !strcmp(b, "none")))) threads /= P;
        if (threads < 1) threads = 1;
    }
    /* .order {tp, cp, dp} innermost first: lc_mesh_create's default, the trainer's */
    lc_plan plan = {.dp = dp, .cp = cp, .tp = tp, .sp = sp, .order = {0, 1, 2}, .seq_len = S,
                    .layout = o->layout, .algo = o->algo, .ulysses = o->ulysses, .lowering = o->lowering};
    char perr[256];
    if (lc_plan_validate(&plan, P, perr, sizeof perr)) {
        if (me == 0) fprintf(stderr, "bench train: %s\n", perr);
        return 1;
    }
    char dot_why[256] = "";
    if (dt == LC_DT_BF16 && lc_train_choose_bf16_dot(lc_team_world(w), LC_BF16_DOT_AUTO, dot_why, sizeof dot_why)) {
        fprintf(stderr, "bench train: %s\n", lc_train_last_error());
        return 1;
    }
    if (dt == LC_DT_BF16 && me == 0 && !o->json)
        printf("# bf16 inner product: %s\n# bf16 GEMMs: %s\n", dot_why, lc_model_bf16_gemm_name());
    /* --device cuda: the trainer's GPU plugin (train_cuda.h), its world, device and optimizer */
    const lc_cuda_plugin *gpu = NULL;
    void *gst = NULL;
    lc_model_device *dev = NULL;
    char gerr[768];
    if (o->cuda) {
        if (!(gpu = lc_train_cuda_plugin(gerr, sizeof gerr)) ||
            gpu->open(lc_team_world(w), mesh.cp_team, "own", &cfg, &plan, dt, &gst, &dev, gerr, sizeof gerr)) {
            fprintf(stderr, "bench train: PE %d: --device cuda: %s\n", me, gerr);
            return 1;
        }
        peak = gpu->peak_tflops_bf16(gst) * 1e3; /* all the GPUs as one "core" below */
    }
    lc_model_run run = {.cp_team = mesh.cp_team, .plan = &plan, .compute = dt, .threads = threads,
                        .recompute = o->recompute, .tp_team = tp > 1 ? mesh.tp_team : NULL, .device = dev};
    lc_model *m;
    if (lc_model_create(&cfg, &run, &m)) {
        fprintf(stderr, "bench train: PE %d: %s\n", me, lc_model_last_error(NULL));
        return 1;
    }
    lc_model_init_params(m, 1);
    size_t np = lc_model_n_params(m);
    lc_adamw_config ac = {0.9f, 0.95f, 1e-8f, 0.1f};
    lc_adamw *opt;
    int32_t *tok = malloc((size_t)S * 4), *tgt = malloc((size_t)S * 4);
    int n = o->steps;
    enum { C_STEP, C_MM, C_ATT, C_EXP, C_REST, C_GAR, C_CP, C_TP, C_BYTES, NC };
    double *st = calloc((size_t)n * NC, sizeof *st);
    if (!tok || !tgt || !st || lc_adamw_create(np, &ac, &opt)) {
        fprintf(stderr, "bench train: out of memory\n");
        return 1;
    }
    if (gpu && gpu->opt_create(gst, m, &ac, gerr, sizeof gerr)) {
        fprintf(stderr, "bench train: PE %d: --device cuda: %s\n", me, gerr);
        return 1;
    }
    /* each DP replica its own tokens (DP rank 0: the tokens of the DP-1 layouts) */
    uint64_t seed = 7 + 0x9e3779b97f4a7c15ull * (uint64_t)mesh.dp_rank;
    for (int64_t i = 0; i < S; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int32_t)((seed >> 33) % (uint64_t)cfg.vocab);
    }
    for (int64_t i = 0; i < S; i++) tgt[i] = i + 1 < S ? tok[i + 1] : -1;
    float *params = lc_model_params(m), *grads = lc_model_grads(m);
    int rc = 0;
    float loss0 = NAN;
    double cpu[64]; /* process CPU seconds per timed step (--peers: robust to a shared machine) */
    /* the other PEs are about to enter the step's collectives: take them down with the reason */
    if (o->peer_out && lc_bench_peer_inputs(o->peer_out, w, m, opt, tok, S))
        lc_world_abort(w, "bench train: cannot write the peers' checkpoint and tokens");
    for (int it = 0; it < o->warm + n && !rc; it++) {
        lc_barrier(lc_team_world(w));
        lc_model_reset_times(m);
        double t0 = lc_wall(), c0 = lc_bench_proc_cpu_s(), norm = 0;
        float loss;
        lc_model_zero_grads(m);
        /* the trainer's step: gradients scaled by 1 / dp, summed over the PEs holding the same
         * slices (CP and DP) by lc_mesh_allreduce_grads: the mean over the replicas */
        rc = lc_model_forward_backward(m, tok, tgt, NULL, 1.0f / (float)dp, &loss);
        double t1 = lc_wall(), t2 = t1;
        if (gpu) { /* on the GPU the all-reduce, the norm and AdamW are one call (grad_allreduce below) */
            if (!rc && (rc = gpu->opt_step(gst, m, it + 1, 1e-4f, 1.0f, &norm, gerr, sizeof gerr)))
                fprintf(stderr, "bench train: PE %d: --device cuda: %s\n", me, gerr);
            t2 = lc_wall();
        } else {
            if (!rc) rc = lc_mesh_allreduce_grads(&mesh, grads, np);
            t2 = lc_wall();
            if (!rc) rc = tp > 1 ? lc_model_global_norm(m, grads, &norm) : (norm = lc_global_norm(grads, np), 0);
            if (!rc) lc_adamw_step(opt, params, grads, 1e-4f, lc_clip_factor(norm, 1.0f));
        }
        double t3 = lc_wall();
        if (it >= o->warm && it - o->warm < 64) cpu[it - o->warm] = lc_bench_proc_cpu_s() - c0;
        if (rc) {
            fprintf(stderr, "bench train: PE %d: %s\n", me, lc_model_last_error(m));
            break;
        }
        if (it == 0) loss0 = loss;
        if (it < o->warm) continue;
        lc_model_times tm;
        lc_model_get_times(m, &tm);
        double step = t3 - t0, *r = st + (size_t)(it - o->warm) * NC;
        r[C_STEP] = step;
        r[C_MM] = tm.matmul_s;
        r[C_ATT] = tm.attn_s;
        r[C_CP] = tm.comm_s;
        r[C_TP] = tm.tp_comm_s;
        r[C_BYTES] = tm.cp_bytes;
        r[C_GAR] = t2 - t1;
        r[C_EXP] = tm.comm_s + tm.tp_comm_s + (t2 - t1); /* CP waits + TP collectives + grad all-reduce */
        r[C_REST] = step - tm.matmul_s - tm.attn_s - r[C_EXP];
    }
    double col[64], med[NC];
    for (int k = 0; k < NC; k++) {
        for (int i = 0; i < n && i < 64; i++) col[i] = st[i * NC + k];
        med[k] = vmed(col, n < 64 ? n : 64);
    }
    /* PE 0 reports; the step time is the max over PEs (the slowest sets the pace). */
    double mx = med[C_STEP], step;
    lc_allreduce_max_f64(lc_team_world(w), &step, &mx, 1);
    double mem = (double)lc_peak_rss_bytes(), memx;
    lc_allreduce_max_f64(lc_team_world(w), &memx, &mem, 1);
    double cpu_me = n > 0 ? vmed(cpu, n < 64 ? n : 64) : 0, cpu_all;
    lc_allreduce_sum_f64(lc_team_world(w), &cpu_all, &cpu_me, 1);
    double flops = lc_model_flops_per_token(&cfg, S);
    long onln = sysconf(_SC_NPROCESSORS_ONLN);
    double cores = (double)threads * P;
    if (onln > 0 && cores > onln) cores = (double)onln;
    double gmem = gpu ? gpu->mem_used(gst) : 0; /* GPU memory in use, every process's */
    if (gpu) cores = 1;
    if (me == 0 && !rc && o->peer_out)
        rc = lc_bench_peer_ours(o->peer_out, o->model, S, P, threads, lc_lowering_name(o->lowering), step,
                                (double)S / step, memx, loss0, cpu_all, flops, peak, cores);
    else if (me == 0 && !rc) {
        double tps = (double)dp * (double)S / step; /* all replicas' tokens */
        char algo_txt[24];
        snprintf(algo_txt, sizeof algo_txt, o->algo == LC_CP_HYBRID ? "%s%d" : "%s", lc_cp_algo_name(o->algo),
                 lc_plan_ulysses_degree(&plan));
        double mfu = peak > 0 ? flops * tps / (peak * 1e9 * cores) : NAN; /* all replicas' FLOPs, all cores */
        char mesh_txt[48]; /* "CxT" as before for DP 1, "DxCxT" with DP */
        if (dp > 1) snprintf(mesh_txt, sizeof mesh_txt, "%dx%dx%d", dp, cp, tp);
        else snprintf(mesh_txt, sizeof mesh_txt, "%dx%d", cp, tp);
        char mfu_txt[32] = "null"; /* JSON has no NaN: no peak known (an emulated GPU) */
        if (isfinite(mfu)) snprintf(mfu_txt, sizeof mfu_txt, "%.4f", mfu);
        if (o->json)
            printf("{\"bench\":\"train\",\"model\":\"%s\",\"seq\":%lld,\"cp\":%d,\"dtype\":\"%s\",\"layout\":\"%s\","
                   "\"cp_algo\":\"%s\",\"lowering\":\"%s\",\"tp\":%d,\"sp\":%d,\"mesh\":\"%s\",\"dp\":%d,\"threads\":%d,\"steps\":%d,"
                   "\"step_s\":%.6g,\"tokens_per_s\":%.6g,\"mfu\":%s,\"matmul_s\":%.6g,\"attn_s\":%.6g,"
                   "\"comm_exposed_s\":%.6g,\"cp_comm_s\":%.6g,\"tp_comm_s\":%.6g,\"grad_allreduce_s\":%.6g,"
                   "\"other_s\":%.6g,\"peak_gflops_core\":%.4g,\"cores\":%.0f,\"peak_mem_bytes\":%.0f,"
                   "\"bf16_dot\":\"%s\",\"bf16_gemm\":\"%s\",\"ulysses\":%d,\"cp_bytes_per_pe\":%.0f,"
                   "\"device\":\"%s\",\"gpu_mem_bytes\":%.0f}\n",
                   o->model, (long long)S, cp, lc_dtype_name(dt), lc_cp_layout_name(o->layout),
                   lc_cp_algo_name(o->algo), lc_lowering_name(o->lowering), tp, sp, mesh_txt, dp,
                   threads, n, step,
                   tps, mfu_txt, med[C_MM], med[C_ATT], med[C_EXP], med[C_CP], med[C_TP], med[C_GAR], med[C_REST], peak,
                   cores, memx, dt == LC_DT_BF16 ? lc_bf16_dot_name(lc_attn_bf16_dot()) : "",
                   dt == LC_DT_BF16 ? lc_model_bf16_gemm_name() : "",
                   lc_plan_ulysses_degree(&plan), med[C_BYTES], gpu ? "cuda" : "cpu", gmem);
        else
            printf("%-6s %7lld %3d %3d %3d%s %-5s %-9s %9.3f %10.0f %6.1f%% %7.1f%% %7.1f%% %7.1f%% %7.1f%% %7.1f%% %7.1f%% %9.1f %8.1f\n",
                   o->model, (long long)S, dp, cp, tp, sp ? "s" : " ", lc_dtype_name(dt), algo_txt, step, tps, 100 * mfu,
                   100 * med[C_MM] / med[C_STEP], 100 * med[C_ATT] / med[C_STEP], 100 * med[C_CP] / med[C_STEP],
                   100 * med[C_TP] / med[C_STEP], 100 * med[C_GAR] / med[C_STEP], 100 * med[C_REST] / med[C_STEP],
                   memx / 1048576.0, med[C_BYTES] / 1048576.0);
        fflush(stdout);
    }
    free(tok);
    free(tgt);
    free(st);
    lc_adamw_destroy(opt);
    lc_model_destroy(m);
    if (gpu) gpu->close(gst);
    lc_mesh_destroy(&mesh);
    return rc ? 1 : 0;
}

static int worker(const opts_t *o)
{
    lc_world *w;
    if (lc_world_init(NULL, &w)) return 1;
    double mine = lc_fma_peak_gflops(lc_attn_impl_best()), peak;
    lc_allreduce_max_f64(lc_team_world(w), &peak, &mine, 1);
    int rc = 0;
    for (int i = 0; i < o->seq.n && !rc; i++)
        for (int d = 0; d < o->dtype.n && !rc; d++)
            rc = run_one(w, o, o->seq.v[i], strcmp(o->dtype.v[d], "bf16") ? LC_DT_F32 : LC_DT_BF16, peak);
    if (rc) _exit(1);
    return lc_world_finalize(w) ? 1 : 0;
}

int lc_cmd_bench_train(int argc, char **argv)
{
    opts_t o;
    int is_worker;
    if (parse(argc, argv, &o, &is_worker)) return 2;
    if (is_worker) return worker(&o);
    if (o.peers && o.cuda) {
        fprintf(stderr, "longctx bench train: --peers runs on the CPU; on a GPU, scripts/gpu-check's training stage "
                        "measures transformers beside --device cuda\n");
        return 2;
    }
    if (o.cuda)
        for (int c = 0; c < o.tp.n; c++)
            if (o.tp.v[c] != 1) {
                fprintf(stderr, "longctx bench train: --device cuda runs DP x CP; TP runs on the CPU only\n");
                return 2;
            }
    if (o.peers) {
        if (o.dtype.n != 1) {
            fprintf(stderr, "longctx bench train: --peers compares one dtype per run (--dtype f32 or --dtype bf16)\n");
            return 2;
        }
        for (int c = 0; c < o.tp.n; c++)
            if (o.tp.v[c] != 1 || o.dp.v[c] != 1 || o.sp) {
                fprintf(stderr, "longctx bench train: --peers compares CP layouts without TP or DP (the peers have neither): "
                                "drop --tp/--dp/--sp\n");
                return 2;
            }
        lc_bench_peer_opts po = {o.model, o.seq, o.cp, o.steps, o.warm, o.json, o.peers, o.rounds,
                                 !strcmp(o.dtype.v[0], "bf16")};
        return lc_bench_train_with_peers(&po, argc, argv);
    }
    if (!o.json)
        printf("# longctx bench train: full steps (fwd+bwd+grad all-reduce+AdamW), medians of %d after %d warm-up;\n"
               "# MFU against one core's FMA peak measured now x cores used; shares of the step on PE 0: matmul,\n"
               "# attention kernels, CP permute waits, TP collectives, gradient all-reduce, the rest; peak memory\n"
               "# is the max over PEs (VmHWM); cpMiB: bytes PE 0's CP attention sent per step\n"
               "%-6s %7s %3s %3s %4s %-5s %-9s %9s %10s %7s %8s %8s %8s %8s %8s %8s %9s %8s\n",
               o.steps, o.warm, "model", "seq", "dp", "cp", "tp", "dtype", "algo", "step_s", "tok/s", "MFU", "matmul", "attn",
               "cp_comm", "tp_comm", "grad_ar", "rest", "peakMiB", "cpMiB");
    int rc = 0;
    for (int c = 0; c < o.cp.n; c++) {
        /* each layout is its own world: the binary re-runs itself as dp x cp x tp PEs */
        char dps[32], cps[32], tps[32];
        snprintf(dps, sizeof dps, "%lld", o.dp.v[c]);
        snprintf(cps, sizeof cps, "%lld", o.cp.v[c]);
        snprintf(tps, sizeof tps, "%lld", o.tp.v[c]);
        char **args = calloc((size_t)argc + 7, sizeof *args);
        int k = 0;
        for (int i = 0; i < argc; i++) {
            if ((!strcmp(argv[i], "--cp") || !strcmp(argv[i], "--tp") || !strcmp(argv[i], "--dp") ||
                 !strcmp(argv[i], "--layouts")) && i + 1 < argc)
                i++;
            else
                args[k++] = argv[i];
        }
        args[k++] = "--cp";
        args[k++] = cps;
        args[k++] = "--tp";
        args[k++] = tps;
        args[k++] = "--dp";
        args[k++] = dps;
        int r = lc_bench_launch_workers("train", k, args, (int)(o.dp.v[c] * o.cp.v[c] * o.tp.v[c]), 0);
        free(args);
        if (r) rc = r;
    }
    return rc;
}
