/* `longctx plan --calibrate`: this host's profile, measured. Two short worlds of this binary:
 * one PE for the compute rates (the model's own matmuls, attention kernels and memory-bound
 * rest, timed by its counters, at both head dims and dtypes, one thread and all), two PEs
 * for the links (permute per lowering, all-reduce). About 20-30 s on 2 cores. */
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "bench/peak.h"
#include "planner/planner.h"

static double status_bytes(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double v = 0;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n)) v = atof(line + n) * 1024.0;
    if (f) fclose(f);
    return v;
}

/* One model configuration's step, split by the model's counters. */
typedef struct { double mm_rate, at_rate, other_ns, step_s; } step_rates;

static int time_model(lc_world *w, int hd, int64_t S, lc_dtype dt, int threads, step_rates *out)
{
    lc_model_config cfg = {.n_layers = 1, .dim = 4 * hd, .n_heads = 4, .n_kv_heads = 2, .ffn_dim = 12 * hd,
                           .vocab = 256, .rope_theta = 10000.0f, .norm_eps = 1e-5f, .max_seq = S};
    lc_plan plan = {.dp = 1, .cp = 1, .tp = 1, .order = {0, 1, 2}, .seq_len = S};
    lc_model_run run = {.cp_team = lc_team_world(w), .plan = &plan, .compute = dt, .threads = threads};
    lc_model *m;
    if (lc_model_create(&cfg, &run, &m)) {
        fprintf(stderr, "longctx plan --calibrate: %s\n", lc_model_last_error(NULL));
        return -1;
    }
    lc_model_init_params(m, 1);
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)S * 2);
    if (!tok) return lc_model_destroy(m), -1;
    for (int64_t i = 0; i < S; i++) tok[i] = (int32_t)((i * 2654435761u) % 256), tok[S + i] = (int32_t)(((i + 1) * 2654435761u) % 256);
    float loss;
    int rc = lc_model_forward_backward(m, tok, tok + S, NULL, 1.0f, &loss); /* warm: pages, pools */
    lc_model_times best = {0};
    for (int r = 0; r < 2 && !rc; r++) {
        lc_model_reset_times(m);
        rc = lc_model_forward_backward(m, tok, tok + S, NULL, 1.0f, &loss);
        lc_model_times t;
        lc_model_get_times(m, &t);
        if (r == 0 || t.total_s < best.total_s) best = t;
    }
    free(tok);
    lc_model_destroy(m);
    if (rc) return -1;
    double mmp = (double)cfg.dim * (2 * cfg.dim + 2 * (cfg.dim / 2)) + 3.0 * cfg.dim * cfg.ffn_dim + 256.0 * cfg.dim;
    out->mm_rate = 6.0 * mmp * S / best.matmul_s / 1e9;
    out->at_rate = 6.0 * cfg.dim * (double)S * S / best.attn_s / 1e9;
    out->other_ns = best.other_s / lc_planner_rest_units(&cfg, S, 1, 0) * 1e9;
    out->step_s = best.total_s;
    return 0;
}

static int compute_worker(const char *out)
{
    lc_world *w;
    if (lc_world_init(NULL, &w)) return 1;
    cpu_set_t cs;
    int cores = sched_getaffinity(0, sizeof cs, &cs) ? 1 : CPU_COUNT(&cs);
    /* the baseline: a PE with its libraries, pools and BLAS buffers, before any model */
    step_rates warm;
    if (time_model(w, 64, 256, LC_DT_F32, cores, &warm)) return 1;
    double base = status_bytes("VmRSS:");
    double peak = lc_fma_peak_gflops(lc_attn_impl_best());
    /* bf16 takes the inner product a bf16 training run would choose (measured the same way) */
    char why[256];
    if (lc_train_choose_bf16_dot(lc_team_world(w), LC_BF16_DOT_AUTO, why, sizeof why)) return 1;
    const int64_t L0 = 2048;
    step_rates r[2][2], lng, all;
    for (int d = 0; d < 2; d++)
        for (int h = 0; h < 2; h++)
            if (time_model(w, h ? 128 : 64, L0, d ? LC_DT_BF16 : LC_DT_F32, 1, &r[d][h])) return 1;
    if (time_model(w, 64, 4 * L0, LC_DT_F32, 1, &lng)) return 1;
    if (time_model(w, 64, 2 * L0, LC_DT_F32, cores, &all)) return 1;
    step_rates one;
    if (time_model(w, 64, 2 * L0, LC_DT_F32, 1, &one)) return 1;
    /* the optimizer: AdamW over 4M parameters */
    size_t np = (size_t)4 << 20;
    float *pa = calloc(np, 4), *ga = calloc(np, 4);
    lc_adamw_config ac = {0.9f, 0.95f, 1e-8f, 0.1f};
    lc_adamw *opt;
    double adam = 0;
    if (pa && ga && !lc_adamw_create(np, &ac, &opt)) {
        lc_adamw_step(opt, pa, ga, 1e-4f, 1.0f);
        double t0 = lc_wall();
        for (int i = 0; i < 3; i++) lc_adamw_step(opt, pa, ga, 1e-4f, 1.0f);
        adam = (lc_wall() - t0) / 3 / (double)np * 1e9;
        lc_adamw_destroy(opt);
    }
    free(pa);
    free(ga);
    FILE *f = fopen(out, "w");
    if (!f) return 1;
    fprintf(f, "{\"cores\":%d,\"base_bytes\":%.0f,\"fma_gflops\":%.6g,\"gemm_f32\":%.6g,\"gemm_bf16\":%.6g,"
               "\"attn_f32_hd64\":%.6g,\"attn_f32_hd128\":%.6g,\"attn_bf16_hd64\":%.6g,\"attn_bf16_hd128\":%.6g,"
               "\"attn_len\":%lld,\"attn_long\":%.6g,\"thread_eff\":%.6g,\"other_ns\":%.6g,\"adamw_ns\":%.6g}\n",
            cores, base, peak, (r[0][0].mm_rate + r[0][1].mm_rate) / 2, (r[1][0].mm_rate + r[1][1].mm_rate) / 2,
            r[0][0].at_rate, r[0][1].at_rate, r[1][0].at_rate, r[1][1].at_rate, (long long)L0,
            lng.at_rate / r[0][0].at_rate, cores > 1 ? one.step_s / all.step_s / cores : 1.0,
            (r[0][0].other_ns + r[0][1].other_ns) / 2, adam);
    int bad = fclose(f) != 0;
    return lc_world_finalize(w) || bad ? 1 : 0;
}

typedef struct { lc_team *t; void *src, *dst; size_t bytes; lc_lowering l; float *fs, *fd; } op_ctx;

static int op_permute(op_ctx *c)
{
    lc_permute_req req;
    int rc = lc_permute_start(c->t, 1, c->src, c->dst, c->bytes, c->l, &req);
    return rc ? rc : lc_permute_done(&req);
}

static int op_allreduce(op_ctx *c) { return lc_allreduce_sum_f32(c->t, c->fd, c->fs, c->bytes / 4); }

static double time_op(op_ctx *c, int (*fn)(op_ctx *), int iters)
{
    double v[7];
    for (int i = 0; i < 3; i++)
        if (fn(c)) return NAN;
    for (int r = 0; r < 7; r++) {
        lc_barrier(c->t);
        double t0 = lc_wall();
        for (int i = 0; i < iters; i++)
            if (fn(c)) return NAN;
        double dt = (lc_wall() - t0) / iters, mx;
        lc_allreduce_max_f64(c->t, &mx, &dt, 1);
        v[r] = mx;
    }
    return lc_median(v, 7);
}

static int comm_worker(const char *out)
{
    lc_world *w;
    if (lc_world_init(NULL, &w)) return 1;
    size_t big = (size_t)4 << 20;
    op_ctx c = {.t = lc_team_world(w), .src = malloc(big), .dst = lc_symm_alloc(w, big), .fs = malloc(big),
                .fd = malloc(big)};
    int rc = 0;
    if (!c.src || !c.dst || !c.fs || !c.fd) /* the other PE is in the measurement's collectives */
        lc_world_abort(w, "longctx plan --calibrate: no memory for the link measurement's 4 MiB buffers");
    memset(c.src, 1, big);
    memset(c.fs, 0, big);
    double lat[2], gbs[2];
    for (int l = 0; l < 2; l++) {
        c.l = l ? LC_LOWER_TWO_SIDED : LC_LOWER_ONE_SIDED;
        c.bytes = 64;
        double t0 = time_op(&c, op_permute, 200);
        c.bytes = big;
        double t1 = time_op(&c, op_permute, 10);
        lat[l] = t0 * 1e6;
        gbs[l] = big / fmax(t1 - t0, 1e-9) / 1e9;
    }
    c.bytes = 64;
    double a0 = time_op(&c, op_allreduce, 200);
    c.bytes = big;
    double a1 = time_op(&c, op_allreduce, 5);
    if (lc_my_pe(w) == 0) {
        FILE *f = fopen(out, "w");
        if (!f) {
            rc = 1;
            goto out;
        }
        /* zero_copy: the reader loads the sender's block in place, so a ring step costs the
         * signal's latency and the all-to-all one copy instead of two (one_sided's numbers) */
        fprintf(f, "{\"lat_us_one_sided\":%.6g,\"gbs_one_sided\":%.6g,\"lat_us_two_sided\":%.6g,\"gbs_two_sided\":%.6g,"
                   "\"lat_us_zero_copy\":%.6g,\"gbs_zero_copy\":%.6g,\"allreduce_lat_us\":%.6g,\"allreduce_gbs\":%.6g}\n",
                lat[0], gbs[0], lat[1], gbs[1], lat[0], gbs[0], a0 * 1e6, big / fmax(a1 - a0, 1e-9) / 1e9);
        rc = fclose(f) != 0;
    }
out:
    free(c.src), free(c.fs), free(c.fd);
    if (c.dst) lc_symm_free(w, c.dst);
    return lc_world_finalize(w) || rc ? 1 : 0;
}

int lc_planner__worker(const char *what, const char *out)
{
    return !strcmp(what, "compute") ? compute_worker(out) : comm_worker(out);
}

static int launch(const char *what, int pes, const char *out)
{
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) return -1;
    self[len] = 0;
    char *args[] = {self, "plan", "--worker", (char *)what, (char *)out, NULL};
    fflush(stdout);
    lc_launch_opts lo = {.n_pes = pes, .heap_bytes = (size_t)64 << 20};
    return lc_launch(&lo, args);
}

static int read_line(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = 0;
    unlink(path);
    return n ? 0 : -1;
}

int lc_planner_calibrate(const char *path, int quiet)
{
    char cpu[8192], com[4096], t1[64] = "/tmp/longctx-cal-XXXXXX", t2[64] = "/tmp/longctx-cal-XXXXXX";
    int f1 = mkstemp(t1), f2 = mkstemp(t2);
    if (f1 < 0 || f2 < 0) return fprintf(stderr, "longctx plan --calibrate: no temporary file\n"), -1;
    close(f1), close(f2);
    double t0 = lc_wall();
    if (!quiet) printf("calibrate: compute rates (one PE: the model's matmuls, attention, rest; 1 thread and all) ...\n"), fflush(stdout);
    if (launch("compute", 1, t1) || read_line(t1, cpu, sizeof cpu))
        return fprintf(stderr, "longctx plan --calibrate: the compute measurement failed\n"), -1;
    if (!quiet) printf("calibrate: links (two PEs: permute per lowering, all-reduce) ... [%.1f s]\n", lc_wall() - t0), fflush(stdout);
    if (launch("comm", 2, t2) || read_line(t2, com, sizeof com))
        return fprintf(stderr, "longctx plan --calibrate: the link measurement failed\n"), -1;
    lc_profile p = {0};
    snprintf(p.name, sizeof p.name, "this-host");
    char model[96] = "unknown CPU", line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
            model[strcspn(model, "\n")] = 0;
            break;
        }
    if (f) fclose(f);
    p.cores = (int)lc_json_num(cpu, "cores");
    snprintf(p.device, sizeof p.device, "%s, %d core%s", model, p.cores, p.cores == 1 ? "" : "s");
    p.per_node = 1 << 20; /* one host: every PE shares its memory */
    p.mem_bytes = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    p.base_bytes = lc_json_num(cpu, "base_bytes");
    p.fma_gflops = lc_json_num(cpu, "fma_gflops");
    p.gemm[0] = lc_json_num(cpu, "gemm_f32"), p.gemm[1] = lc_json_num(cpu, "gemm_bf16");
    p.attn[0][0] = lc_json_num(cpu, "attn_f32_hd64"), p.attn[0][1] = lc_json_num(cpu, "attn_f32_hd128");
    p.attn[1][0] = lc_json_num(cpu, "attn_bf16_hd64"), p.attn[1][1] = lc_json_num(cpu, "attn_bf16_hd128");
    p.attn_len = lc_json_num(cpu, "attn_len"), p.attn_long = lc_json_num(cpu, "attn_long");
    p.thread_eff = lc_json_num(cpu, "thread_eff"), p.other_ns = lc_json_num(cpu, "other_ns");
    p.adamw_ns = lc_json_num(cpu, "adamw_ns");
    const char *lk[3] = {"one_sided", "two_sided", "zero_copy"};
    for (int l = 0; l < 3; l++) {
        char k[48];
        snprintf(k, sizeof k, "lat_us_%s", lk[l]);
        p.lat_us[0][l] = p.lat_us[1][l] = lc_json_num(com, k);
        snprintf(k, sizeof k, "gbs_%s", lk[l]);
        p.gbs[0][l] = p.gbs[1][l] = lc_json_num(com, k);
    }
    p.ar_lat_us[0] = p.ar_lat_us[1] = lc_json_num(com, "allreduce_lat_us");
    p.ar_gbs[0] = p.ar_gbs[1] = lc_json_num(com, "allreduce_gbs");
    p.overlap = 0; /* the sending PE's CPU copies: a transfer adds to the step */
    snprintf(p.source, sizeof p.source, "longctx plan --calibrate, %.1f s", lc_wall() - t0);
    char err[512];
    if (lc_profile_save(path, &p, err, sizeof err)) return fprintf(stderr, "longctx plan --calibrate: %s\n", err), -1;
    lc_profile chk;
    if (lc_profile_load(path, &chk, err, sizeof err))
        return fprintf(stderr, "longctx plan --calibrate: a measurement failed: %s\n", err), -1;
    if (!quiet) printf("calibrate: wrote %s in %.1f s\n", path, lc_wall() - t0);
    return 0;
}
