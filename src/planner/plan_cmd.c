/* longctx plan: every layout of a model on a machine that fits, ranked by predicted step time;
 * --calibrate measures this host, --check measures the predictions against the train
 * benchmark. */
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "planner/planner.h"

int lc_planner__worker(const char *what, const char *out);
int lc_planner_calibrate(const char *path, int quiet);

typedef struct {
    const char *model, *profile, *save_profile;
    lc_plan_req req;
    int json, all, top, calibrate, check, rounds;
    lc_ilist check_seq;
} opts_t;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: longctx plan --model small|llama3-8b|HF_DIR --seq 256K [--batch B] [--pes N] [--per-node G]\n"
            "                    [--profile this-host|h100-dgx|gb200-nvl72|FILE] [--dtype f32|bf16] [--window W]\n"
            "                    [--top K | --all] [--json] [--save-profile FILE]\n"
            "       longctx plan --calibrate [--profile FILE]   measure this host (about 30 s) and save its profile\n"
            "       longctx plan --check [--model small] [--seq 16K,64K] [--rounds 3] [--dtype f32|bf16]\n"
            "                    run the train benchmark on this host's layouts; predicted beside measured\n"
            "Rows: DPxCPxTP (s: sequence parallelism), CP algorithm, layout, lowering, recompute; memory per\n"
            "device (weights, gradients, AdamW, activations + attention buffers, total with the process\n"
            "baseline), compute, communication per axis (exposed after overlap), predicted step and tokens/s.\n"
            "--save-profile writes the profile used as JSON (to edit: what-if machines, loaded by --profile FILE).\n"
            "this-host reads the profile --calibrate saved (cache: %s), calibrating first when there is none.\n",
            "$XDG_CACHE_HOME/longctx or ~/.cache/longctx");
}

static int load_model(const char *name, lc_model_config *m)
{
    if (!lc_model_preset(name, m)) return 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", name);
    if (access(path, R_OK)) return -1;
    int tied = 0;
    return lc_ckpt_read_config(path, m, &tied) ? -1 : 0;
}

static int parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->model = "small";
    o->req.seq = 16384;
    o->req.batch = 1;
    o->req.dtype = LC_DT_F32;
    o->top = 20;
    o->rounds = 3;
    o->check_seq = (lc_ilist){2, {16384, 65536}}; /* --check's lengths; a listing's one is [0] */
    int seq_given = 0;
    cpu_set_t cs;
    o->req.pes = sched_getaffinity(0, sizeof cs, &cs) ? 1 : CPU_COUNT(&cs);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--json")) o->json = 1;
        else if (!strcmp(a, "--all")) o->all = 1;
        else if (!strcmp(a, "--calibrate")) o->calibrate = 1;
        else if (!strcmp(a, "--check")) o->check = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout), 1;
        else if (!v) bad = 1;
        else {
            i++;
            if (!strcmp(a, "--model")) o->model = v;
            else if (!strcmp(a, "--profile")) o->profile = v;
            else if (!strcmp(a, "--save-profile")) o->save_profile = v;
            else if (!strcmp(a, "--seq")) bad = lc_parse_size_list(a, v, &o->check_seq), seq_given = 1;
            else if (!strcmp(a, "--batch")) bad = lc_parse_int_opt(a, v, 1, 1 << 20, &o->req.batch);
            else if (!strcmp(a, "--pes")) bad = lc_parse_int_opt(a, v, 1, LC_CLI_MAX_PES, &o->req.pes);
            else if (!strcmp(a, "--per-node")) bad = lc_parse_int_opt(a, v, 1, LC_CLI_MAX_PES, &o->req.per_node);
            else if (!strcmp(a, "--window")) bad = lc_parse_int_opt(a, v, 1, 1 << 30, &o->req.window);
            else if (!strcmp(a, "--top")) bad = lc_parse_int_opt(a, v, 1, 1 << 20, &o->top);
            else if (!strcmp(a, "--rounds")) bad = lc_parse_int_opt(a, v, 1, 15, &o->rounds);
            else if (!strcmp(a, "--dtype")) {
                if (!strcmp(v, "bf16")) o->req.dtype = LC_DT_BF16;
                else bad = strcmp(v, "f32") != 0;
            } else bad = 1;
        }
        if (bad) {
            fprintf(stderr, "longctx plan: bad option %s %s\n", a, v ? v : "");
            usage(stderr);
            return -1;
        }
    }
    /* a list of lengths is --check's; a listing plans one (the flags come in any order) */
    if (!o->check && !seq_given) o->check_seq = (lc_ilist){1, {16384}};
    if (!o->check && o->check_seq.n != 1) {
        fprintf(stderr, "longctx plan: --seq takes one length (a list only with --check)\n");
        return -1;
    }
    o->req.seq = o->check_seq.v[0];
    if (load_model(o->model, &o->req.model)) {
        fprintf(stderr, "longctx plan: --model %s is neither a preset (tiny, small, llama3-8b) nor a folder with a "
                        "readable config.json\n", o->model);
        return -1;
    }
    if (o->req.seq > o->req.model.max_seq) o->req.model.max_seq = o->req.seq;
    return 0;
}

/* The profile named by --profile: a built-in GPU, a file, or this host's cache (measured now
 * when missing, and said so). */
static int get_profile(const char *name, lc_profile *p, int quiet)
{
    char err[512], path[4096];
    if (name && strcmp(name, "this-host")) {
        if (!lc_profile_builtin(name, p)) return 0;
        if (lc_profile_load(name, p, err, sizeof err)) return fprintf(stderr, "longctx plan: %s\n", err), -1;
        return 0;
    }
    if (lc_profile_host_path(path, sizeof path)) return fprintf(stderr, "longctx plan: no cache folder\n"), -1;
    if (access(path, R_OK)) {
        fprintf(quiet ? stderr : stdout, "plan: no profile of this host at %s: calibrating first (about 30 s)\n", path);
        if (lc_planner_calibrate(path, quiet)) return -1;
    }
    if (lc_profile_load(path, p, err, sizeof err))
        return fprintf(stderr, "longctx plan: %s (remove it or run longctx plan --calibrate)\n", err), -1;
    return 0;
}

static void print_row(const lc_pred *r, int rank, const lc_plan_req *q, int json)
{
    char name[96];
    lc_cand_name(&r->c, name, sizeof name);
    const lc_plan *p = &r->c.plan;
    if (json) {
        printf("{\"rank\":%d,\"layout\":\"%s\",\"dp\":%d,\"cp\":%d,\"tp\":%d,\"sp\":%d,\"cp_algo\":\"%s\",\"ulysses\":%d,"
               "\"cp_layout\":\"%s\",\"lowering\":\"%s\",\"recompute\":%d,\"seq\":%lld,\"batch\":%d,\"fits\":%d,"
               "\"mem_weights\":%.0f,\"mem_grads\":%.0f,\"mem_optim\":%.0f,\"mem_act\":%.0f,\"mem_total\":%.0f,"
               "\"matmul_s\":%.6g,\"attn_s\":%.6g,\"other_s\":%.6g,\"optim_s\":%.6g,\"cp_s\":%.6g,\"cp_exposed_s\":%.6g,"
               "\"tp_s\":%.6g,\"tp_exposed_s\":%.6g,\"dp_s\":%.6g,\"dp_exposed_s\":%.6g,\"step_s\":%.6g,\"tokens_per_s\":%.6g}\n",
               rank, name, p->dp, p->cp, p->tp, p->sp, lc_cp_algo_name(p->algo), p->cp > 1 ? lc_plan_ulysses_degree(p) : 0,
               lc_cp_layout_name(p->layout), lc_lowering_name(p->lowering), r->c.recompute, (long long)q->seq,
               q->batch, r->fits, r->mem_weights, r->mem_grads, r->mem_optim, r->mem_act, r->mem_total, r->t_matmul,
               r->t_attn, r->t_other, r->t_optim, r->t_cp, r->x_cp, r->t_tp, r->x_tp, r->t_dp, r->x_dp, r->t_step,
               r->tok_s);
        return;
    }
    const double G = 1073741824.0;
    printf("%4d %-42s %6.2f %6.2f %6.2f %7.2f %7.2f %s %9.4g %9.4g/%-9.4g %9.4g/%-9.4g %9.4g %10.4g %9.0f\n",
           rank, name, r->mem_weights / G, r->mem_grads / G, r->mem_optim / G, r->mem_act / G, r->mem_total / G,
           r->fits ? " " : "!", r->t_matmul + r->t_attn + r->t_other + r->t_optim, r->t_cp, r->x_cp, r->t_tp,
           r->x_tp, r->x_dp, r->t_step, r->tok_s);
}

static void header(const lc_profile *p, const lc_plan_req *q, const char *model)
{
    printf("# plan: %s, %lld tokens, batch %d, %d PEs%s on %s (%s)\n# profile: %s; peak %.4g GFLOP/s %s; GEMM %.4g / %.4g, "
           "attention %.4g / %.4g GFLOP/s (f32 / bf16, hd 128)\n", model, (long long)q->seq, q->batch, q->pes,
           q->dtype == LC_DT_BF16 ? ", bf16" : ", f32", p->name, p->device, p->source, p->fma_gflops,
           p->gpu ? "(dense bf16, per GPU)" : "(fp32 FMA, per core)", p->gemm[0], p->gemm[1], p->attn[0][1], p->attn[1][1]);
    printf("%4s %-42s %6s %6s %6s %7s %7s %s %9s %9s/%-9s %9s/%-9s %9s %10s %9s\n", "rank",
           "DPxCPxTP algo layout lowering", "wGiB", "gGiB", "optGiB", "actGiB", "totGiB", "!", "compute_s", "cp_s",
           "exposed", "tp_s", "exposed", "dp_s", "step_s", "tok/s");
}

static int cmd_list(const opts_t *o)
{
    lc_profile p;
    if (get_profile(o->profile, &p, o->json)) return 1;
    char err[512];
    if (o->save_profile && lc_profile_save(o->save_profile, &p, err, sizeof err))
        return fprintf(stderr, "longctx plan: %s\n", err), 1;
    lc_pred *rows;
    int n;
    if (lc_planner_enumerate(&p, &o->req, &rows, &n)) return fprintf(stderr, "longctx plan: out of memory\n"), 1;
    if (n == 0) {
        fprintf(stderr, "longctx plan: no valid layout of %s over %d PEs (heads, widths and vocabulary must split over TP; "
                        "batch %d over DP)\n", o->model, o->req.pes, o->req.batch);
        free(rows);
        return 1;
    }
    int fit = 0;
    for (int i = 0; i < n; i++) fit += rows[i].fits;
    if (!o->json) header(&p, &o->req, o->model);
    int shown = o->all || o->json ? n : (o->top < n ? o->top : n);
    for (int i = 0; i < shown; i++) print_row(&rows[i], i + 1, &o->req, o->json);
    char why[512];
    lc_planner_explain(rows, n, why, sizeof why);
    if (o->json) printf("{\"best\":\"%s\",\"valid\":%d,\"fit\":%d}\n", why, n, fit);
    else {
        if (shown < n) printf("... %d more (--all)\n", n - shown);
        printf("# %d valid layouts, %d fit in memory (%.1f GiB per device%s); '!' marks one that does not\n", n, fit,
               (p.gpu ? p.mem_bytes : p.mem_bytes / o->req.pes) / 1073741824.0, p.gpu ? "" : ": the host's / PEs");
        printf("best: %s\n", why);
    }
    free(rows);
    return fit ? 0 : 1;
}

/* ---- --check: predicted beside measured ---- */
/* long: also run past 32K tokens (a 64K step of the small model takes ~40 s on 2 cores: the
 * long list keeps the check near 15 minutes) */
typedef struct { int dp, cp, tp, sp; lc_cp_algo algo; int ulysses, long_too; lc_cp_layout layout; int recompute; } chk_cfg;
static const chk_cfg k_checks[] = {
    {1, 1, 1, 0, LC_CP_RING, 0, 1, LC_CP_ZIGZAG, 0},    {1, 2, 1, 0, LC_CP_RING, 0, 1, LC_CP_ZIGZAG, 0},
    {1, 2, 1, 0, LC_CP_ALLGATHER, 0, 0, LC_CP_ZIGZAG, 0}, {1, 2, 1, 0, LC_CP_ULYSSES, 0, 1, LC_CP_ZIGZAG, 0},
    {1, 1, 2, 0, LC_CP_RING, 0, 1, LC_CP_ZIGZAG, 0},    {1, 1, 2, 1, LC_CP_RING, 0, 0, LC_CP_ZIGZAG, 0},
    {2, 1, 1, 0, LC_CP_RING, 0, 1, LC_CP_ZIGZAG, 0},
    /* layouts the model must rank apart: causal imbalance, the recomputed forward */
    {1, 2, 1, 0, LC_CP_RING, 0, 1, LC_CP_CONTIGUOUS, 0}, {1, 1, 1, 0, LC_CP_RING, 0, 0, LC_CP_ZIGZAG, 1},
    {1, 2, 1, 0, LC_CP_ULYSSES, 0, 0, LC_CP_ZIGZAG, 1},
    /* more PEs than cores: reported */
    {1, 4, 1, 0, LC_CP_HYBRID, 2, 0, LC_CP_ZIGZAG, 0}, {1, 2, 2, 0, LC_CP_RING, 0, 0, LC_CP_ZIGZAG, 0},
};
#define N_CHECK (int)(sizeof k_checks / sizeof k_checks[0])

static double run_bench(const char *model, int64_t S, lc_dtype dt, const chk_cfg *c, int steps, int warm)
{
    char self[4096], cmd[8192];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) return NAN;
    self[len] = 0;
    snprintf(cmd, sizeof cmd, "'%s' bench train --model '%s' --seq %lld --layouts %dx%dx%d%s --cp-algo %s%s%s "
             "--permute one_sided --layout %s%s --dtype %s --steps %d --warm %d --json", self, model, (long long)S, c->dp, c->cp, c->tp,
             c->sp ? " --sp" : "", lc_cp_algo_name(c->algo), c->algo == LC_CP_HYBRID ? " --ulysses " : "",
             c->algo == LC_CP_HYBRID ? (c->ulysses == 2 ? "2" : "4") : "", lc_cp_layout_name(c->layout),
             c->recompute ? " --recompute" : "", lc_dtype_name(dt), steps, warm);
    fflush(stdout);
    FILE *f = popen(cmd, "r");
    if (!f) return NAN;
    char line[4096];
    double step = NAN;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "\"bench\":\"train\"")) step = lc_json_num(line, "step_s");
    if (pclose(f)) return NAN;
    return step;
}

static int cmd_check(const opts_t *o)
{
    lc_profile p;
    if (get_profile(o->profile, &p, 0)) return 1;
    int nc = o->check_seq.n * N_CHECK, k = 0;
    double *pred = calloc((size_t)nc, sizeof *pred), *meas = calloc((size_t)nc * o->rounds, sizeof *meas);
    int *judge = calloc((size_t)nc, sizeof *judge);
    if (!pred || !meas || !judge) return 1;
    for (int si = 0; si < o->check_seq.n; si++)
        for (int ci = 0; ci < N_CHECK; ci++, k++) {
            const chk_cfg *c = &k_checks[ci];
            if (o->check_seq.v[si] > 32768 && !c->long_too) {
                pred[k] = NAN, judge[k] = 0;
                continue;
            }
            lc_plan_req q = o->req;
            q.seq = o->check_seq.v[si];
            q.batch = c->dp;
            q.pes = c->dp * c->cp * c->tp;
            if (q.seq > q.model.max_seq) q.model.max_seq = q.seq;
            lc_cand cd = {.plan = {.dp = c->dp, .cp = c->cp, .tp = c->tp, .sp = c->sp, .order = {0, 1, 2},
                                   .seq_len = q.seq, .layout = c->layout, .algo = c->algo, .ulysses = c->ulysses,
                                   .lowering = LC_LOWER_ONE_SIDED}, .recompute = c->recompute};
            lc_pred r;
            char err[256];
            pred[k] = lc_planner_predict(&p, &q, &cd, &r, err, sizeof err) ? NAN : r.t_step;
            judge[k] = q.pes <= p.cores;
        }
    double t0 = lc_wall();
    int runs = 0;
    for (int si = 0; si < o->check_seq.n; si++)
        for (int ci = 0; ci < N_CHECK; ci++) runs += o->check_seq.v[si] <= 32768 || k_checks[ci].long_too;
    int total = runs * o->rounds, done = 0;
    for (int rd = 0; rd < o->rounds; rd++) { /* interleaved: every layout once per round */
        k = 0;
        for (int si = 0; si < o->check_seq.n; si++)
            for (int ci = 0; ci < N_CHECK; ci++, k++) {
                int64_t S = o->check_seq.v[si];
                if (S > 32768 && !k_checks[ci].long_too) {
                    meas[(size_t)k * o->rounds + rd] = NAN;
                    continue;
                }
                int steps = S > 32768 ? 1 : 2, warm = S > 32768 ? 0 : 1;
                double t = run_bench(o->model, S, o->req.dtype, &k_checks[ci], steps, warm);
                if (!(t > 0)) { /* a benchmark that fails stops the check: no median of failures */
                    fprintf(stderr, "\nlongctx plan --check: `longctx bench train` failed at %lld tokens, layout %dx%dx%d "
                                    "(rerun it alone to see why)\n", (long long)S, k_checks[ci].dp, k_checks[ci].cp,
                            k_checks[ci].tp);
                    free(pred), free(meas), free(judge);
                    return 1;
                }
                meas[(size_t)k * o->rounds + rd] = t;
                done++;
                double el = lc_wall() - t0;
                fprintf(stderr, "\rcheck: %d/%d runs, %.0f s, ETA %.0f s   ", done, total, el, el / done * (total - done));
            }
    }
    fprintf(stderr, "\n");
    printf("# plan --check: %s, profile %s (%s)\n", o->model, p.name, p.device);
    printf("# medians of %d interleaved rounds of `longctx bench train` (%s, one_sided); judged where PEs <= %d cores\n",
           o->rounds, lc_dtype_name(o->req.dtype), p.cores);
    printf("%-7s %-32s %4s %10s %10s %9s %10s %s\n", "seq", "DPxCPxTP algo", "PEs", "pred_s", "meas_s", "pred/meas",
           "meas_s/seq", "judged");
    int ok = 1, nj = 0, within = 0;
    double med[256];
    k = 0;
    for (int si = 0; si < o->check_seq.n; si++)
        for (int ci = 0; ci < N_CHECK; ci++, k++) {
            const chk_cfg *c = &k_checks[ci];
            if (o->check_seq.v[si] > 32768 && !c->long_too) {
                med[k] = NAN;
                continue;
            }
            med[k] = lc_median(meas + (size_t)k * o->rounds, o->rounds);
            double ratio = pred[k] / med[k];
            char nm[64];
            snprintf(nm, sizeof nm, "%dx%dx%d%s %s%s%s%s", c->dp, c->cp, c->tp, c->sp ? "s" : "",
                     c->cp > 1 ? lc_cp_algo_name(c->algo) : "-", c->algo == LC_CP_HYBRID ? "2" : "",
                     c->layout == LC_CP_CONTIGUOUS ? " contiguous" : "", c->recompute ? " recompute" : "");
            int in = fabs(ratio - 1) <= 0.25;
            if (judge[k]) nj++, within += in;
            printf("%-7lld %-32s %4d %10.3f %10.3f %9.3f %10.3f %s\n", (long long)o->check_seq.v[si], nm,
                   c->dp * c->cp * c->tp, pred[k], med[k], ratio, med[k] / c->dp, judge[k] ? (in ? "yes: within 25%" : "yes: OFF by > 25%")
                                                                            : "no (more PEs than cores)");
            if (o->json)
                printf("{\"check\":1,\"seq\":%lld,\"layout\":\"%s\",\"pes\":%d,\"pred_s\":%.6g,\"meas_s\":%.6g,\"judged\":%d}\n",
                       (long long)o->check_seq.v[si], nm, c->dp * c->cp * c->tp, pred[k], med[k], judge[k]);
        }
    /* ranking: the pairs of judged layouts (same seq) whose measured times per sequence (a DP
     * step trains D of them) are > 15% apart */
    int conc = 0, disc = 0;
    for (int a = 0; a < nc; a++)
        for (int b = a + 1; b < nc; b++) {
            if (!judge[a] || !judge[b] || a / N_CHECK != b / N_CHECK) continue;
            double ma = med[a] / k_checks[a % N_CHECK].dp, mb = med[b] / k_checks[b % N_CHECK].dp;
            double pa = pred[a] / k_checks[a % N_CHECK].dp, pb = pred[b] / k_checks[b % N_CHECK].dp;
            if (!(fmax(ma, mb) > 1.15 * fmin(ma, mb))) continue;
            if ((ma < mb) == (pa < pb)) conc++;
            else disc++;
        }
    double tau = conc + disc ? (double)(conc - disc) / (conc + disc) : NAN;
    ok = within == nj && (conc + disc == 0 || tau >= 0.8);
    printf("target: every judged prediction within 25%%: %d of %d %s\n", within, nj, within == nj ? "met" : "NOT met");
    printf("target: ranking of judged pairs > 15%% apart, rank correlation >= 0.8: %d concordant, %d discordant, "
           "tau %.2f %s\n", conc, disc, tau, conc + disc == 0 ? "(no such pairs: not judged)" : tau >= 0.8 ? "met" : "NOT met");
    free(pred), free(meas), free(judge);
    return ok ? 0 : 1;
}

int lc_cmd_plan(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "--worker")) return lc_planner__worker(argv[2], argv[3]);
    opts_t o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc > 0 ? 0 : 2;
    if (o.calibrate) {
        char path[4096];
        if (o.profile) snprintf(path, sizeof path, "%s", o.profile);
        else if (lc_profile_host_path(path, sizeof path)) return 1;
        return lc_planner_calibrate(path, 0) ? 1 : 0;
    }
    return o.check ? cmd_check(&o) : cmd_list(&o);
}

int lc_planner_auto(const lc_model_config *m, int64_t seq, int batch, int pes, lc_dtype dt, lc_plan *plan,
                    int *recompute, char *why, size_t whylen)
{
    lc_profile p;
    if (get_profile(NULL, &p, 0)) return -1;
    lc_plan_req q = {.model = *m, .seq = seq, .batch = batch, .pes = pes, .dtype = dt};
    lc_pred *rows;
    int n;
    if (lc_planner_enumerate(&p, &q, &rows, &n)) return -1;
    if (n == 0 || !rows[0].fits) {
        fprintf(stderr, "longctx train --plan auto: no layout of %d PEs fits this host (longctx plan lists them)\n", pes);
        free(rows);
        return -1;
    }
    lc_planner_explain(rows, n, why, whylen);
    *plan = rows[0].c.plan;
    *recompute = rows[0].c.recompute;
    free(rows);
    return 0;
}
