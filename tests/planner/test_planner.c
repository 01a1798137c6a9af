/* The planner's cost model and profiles, without measuring anything: a profile survives its
 * file, broken files are refused naming the key, predictions add up and respond to the
 * machine as the formulas of docs/PLANNER.md say, and the ranking is sorted and valid. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner/planner.h"

static int g_fail;
#define FAIL(...) (printf("FAIL "), printf(__VA_ARGS__), printf("\n"), g_fail++)

static lc_profile host(void)
{
    lc_profile p;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "test-host");
    snprintf(p.device, sizeof p.device, "a CPU, 4 cores");
    p.cores = 4, p.per_node = 1 << 20, p.mem_bytes = 16e9, p.base_bytes = 50e6, p.fma_gflops = 100;
    p.gemm[0] = 80, p.gemm[1] = 160, p.attn[0][0] = 60, p.attn[0][1] = 70, p.attn[1][0] = 90, p.attn[1][1] = 100;
    p.attn_len = 2048, p.attn_long = 1.1, p.thread_eff = 0.9, p.other_ns = 0.5, p.adamw_ns = 3;
    for (int k = 0; k < 2; k++) {
        for (int l = 0; l < 3; l++) p.lat_us[k][l] = 1 + l, p.gbs[k][l] = 20 - 5 * l;
        p.ar_lat_us[k] = 2, p.ar_gbs[k] = 8;
    }
    return p;
}

static void roundtrip(void)
{
    lc_profile a = host(), b;
    char err[512], path[] = "/tmp/lc-test-profile-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) { FAIL("mkstemp"); return; }
    if (lc_profile_save(path, &a, err, sizeof err)) FAIL("save: %s", err);
    if (lc_profile_load(path, &b, err, sizeof err)) FAIL("load: %s", err);
    else if (memcmp(a.gemm, b.gemm, sizeof a.gemm) || memcmp(a.attn, b.attn, sizeof a.attn) ||
             memcmp(a.lat_us, b.lat_us, sizeof a.lat_us) || memcmp(a.gbs, b.gbs, sizeof a.gbs) ||
             a.cores != b.cores || a.mem_bytes != b.mem_bytes || strcmp(a.device, b.device) || a.other_ns != b.other_ns)
        FAIL("a profile does not survive its file");
    /* a missing key and a garbage value are refused, naming the key */
    FILE *f = fopen(path, "r");
    char buf[8192] = "";
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    char *k = strstr(buf, "\"gemm_bf16\":");
    if (!k) FAIL("no gemm_bf16 key written");
    else {
        memcpy(k + 1, "gemm_xxxx", 9);
        f = fopen(path, "w");
        fputs(buf, f);
        fclose(f);
        if (!lc_profile_load(path, &b, err, sizeof err) || !strstr(err, "gemm_bf16"))
            FAIL("a profile without gemm_bf16 loaded, or the error does not name it: %s", err);
    }
    f = fopen(path, "w");
    fputs("{\"name\":\"x\"}", f);
    fclose(f);
    if (!lc_profile_load(path, &b, err, sizeof err)) FAIL("a file that is no profile loaded");
    remove(path);
    if (!lc_profile_load("/nonexistent/x.json", &b, err, sizeof err) || !strstr(err, "/nonexistent/x.json"))
        FAIL("a missing file: %s", err);
    for (const char *nm = "h100-dgx"; nm; nm = strcmp(nm, "h100-dgx") ? NULL : "gb200-nvl72")
        if (lc_profile_builtin(nm, &b) || !(b.gemm[1] > 0) || !(b.mem_bytes > 0) || !b.gpu || !b.overlap)
            FAIL("built-in profile %s", nm);
    if (!lc_profile_builtin("tpu", &b)) FAIL("an unknown built-in profile");
    printf("ok   profiles: file round trip, broken files refused naming the key, built-ins\n");
}

static lc_cand cand(int D, int C, int T, lc_cp_algo a, int U, int64_t S)
{
    lc_cand c = {.plan = {.dp = D, .cp = C, .tp = T, .order = {0, 1, 2}, .seq_len = S, .layout = LC_CP_ZIGZAG,
                          .algo = a, .ulysses = U, .lowering = LC_LOWER_ONE_SIDED}};
    return c;
}

static void predictions(void)
{
    lc_profile p = host();
    lc_plan_req r = {.seq = 16384, .batch = 2, .pes = 4, .dtype = LC_DT_F32};
    lc_model_preset("small", &r.model);
    char err[256];
    lc_pred a, b;
    lc_cand c = cand(1, 4, 1, LC_CP_RING, 0, r.seq);
    if (lc_planner_predict(&p, &r, &c, &a, err, sizeof err)) { FAIL("predict 1x4x1: %s", err); return; }
    /* the parts add up; memory is the model's estimate, AdamW's 8 bytes per parameter, the baseline */
    double sum = a.t_matmul + a.t_attn + a.t_other + a.t_optim + a.x_cp + a.x_tp + a.x_dp;
    if (fabs(sum - a.t_step) > 1e-12 * a.t_step) FAIL("the step is not the sum of its parts");
    lc_model_run run = {.plan = &c.plan, .compute = LC_DT_F32, .threads = 1};
    lc_model_mem mm;
    lc_model_memory_estimate(&r.model, &run, &mm);
    if (a.mem_weights != mm.weights || a.mem_grads != mm.grads || a.mem_act != mm.activations + mm.attention ||
        a.mem_optim != 2 * a.mem_grads || fabs(a.mem_total - (mm.weights + mm.grads + a.mem_optim + a.mem_act + 50e6)) > 1)
        FAIL("the memory parts are not the model's estimate + AdamW + the baseline");
    if (!(a.x_cp > 0) || a.x_cp != a.t_cp) FAIL("a CPU ring's transfers are all exposed (the CPU copies): %g of %g", a.x_cp, a.t_cp);
    if (a.t_tp != 0 || !(a.t_dp > 0)) FAIL("CP 4: no TP time, a gradient all-reduce over the CP team");
    /* twice the GEMM rate halves the matmul time and nothing else */
    lc_profile q = p;
    q.gemm[0] *= 2;
    lc_planner_predict(&q, &r, &c, &b, NULL, 0);
    if (fabs(b.t_matmul * 2 - a.t_matmul) > 1e-12 * a.t_matmul || b.t_attn != a.t_attn) FAIL("gemm rate");
    /* a faster link cuts the exposed CP time; zero_copy moves no bytes */
    q = p;
    q.gbs[0][0] *= 4;
    lc_planner_predict(&q, &r, &c, &b, NULL, 0);
    if (!(b.x_cp < a.x_cp)) FAIL("a faster link does not cut the CP time");
    lc_cand z = c;
    z.plan.lowering = LC_LOWER_ZERO_COPY;
    lc_planner_predict(&p, &r, &z, &b, NULL, 0);
    if (!(b.x_cp < a.x_cp)) FAIL("zero_copy is not cheaper than one_sided on shared memory");
    /* a contiguous layout pays the causal imbalance (2C - 1) / C in attention */
    lc_cand ct = c;
    ct.plan.layout = LC_CP_CONTIGUOUS;
    lc_planner_predict(&p, &r, &ct, &b, NULL, 0);
    if (fabs(b.t_attn / a.t_attn - 7.0 / 4.0) > 1e-9) FAIL("contiguous: attention x %g, not 7/4", b.t_attn / a.t_attn);
    /* recompute costs compute and saves activations */
    lc_cand rc = c;
    rc.recompute = 1;
    lc_planner_predict(&p, &r, &rc, &b, NULL, 0);
    if (!(b.t_attn > a.t_attn) || !(b.mem_act < a.mem_act)) FAIL("recompute");
    /* TP has all-reduces, DP none of the ring's */
    lc_cand tp = cand(1, 1, 4, LC_CP_RING, 0, r.seq);
    if (lc_planner_predict(&p, &r, &tp, &b, err, sizeof err) || !(b.x_tp > 0) || b.t_cp != 0) FAIL("TP 4: %s", err);
    lc_cand dp = cand(2, 2, 1, LC_CP_RING, 0, r.seq);
    if (lc_planner_predict(&p, &r, &dp, &b, err, sizeof err)) FAIL("2x2x1: %s", err);
    /* refusals: PEs, TP splits, batch over DP, Ulysses heads */
    lc_cand bad = cand(1, 2, 1, LC_CP_RING, 0, r.seq);
    if (!lc_planner_predict(&p, &r, &bad, &b, err, sizeof err)) FAIL("2 PEs planned as 4");
    bad = cand(1, 1, 4, LC_CP_RING, 0, r.seq);
    r.model.ffn_dim = 770;
    if (!lc_planner_predict(&p, &r, &bad, &b, err, sizeof err) || !strstr(err, "ffn_dim")) FAIL("ffn 770 over TP 4: %s", err);
    lc_model_preset("small", &r.model);
    bad = cand(4, 1, 1, LC_CP_RING, 0, r.seq);
    if (!lc_planner_predict(&p, &r, &bad, &b, err, sizeof err) || !strstr(err, "batch")) FAIL("batch 2 over DP 4: %s", err);
    bad = cand(1, 4, 1, LC_CP_ULYSSES, 0, r.seq);
    r.model.n_heads = 2, r.model.n_kv_heads = 2, r.model.dim = 128;
    if (!lc_planner_predict(&p, &r, &bad, &b, err, sizeof err)) FAIL("Ulysses 4 over 2 heads planned");
    printf("ok   predictions: parts add up, memory is the model's + AdamW + baseline, rates and links act as the "
           "formulas say, invalid layouts refused\n");
}

static void ranking(void)
{
    lc_profile p = host();
    lc_plan_req r = {.seq = 16384, .batch = 4, .pes = 4, .dtype = LC_DT_BF16};
    lc_model_preset("small", &r.model);
    lc_pred *rows;
    int n;
    if (lc_planner_enumerate(&p, &r, &rows, &n) || n < 20) { FAIL("enumerate: %d rows", n); return; }
    int seen[3] = {0, 0, 0}, fits_done = 0;
    for (int i = 0; i < n; i++) {
        lc_pred again;
        if (lc_planner_predict(&p, &r, &rows[i].c, &again, NULL, 0) || again.t_step != rows[i].t_step)
            FAIL("row %d does not predict again the same", i);
        if (i && rows[i].fits == rows[i - 1].fits && rows[i].t_step < rows[i - 1].t_step) FAIL("row %d out of order", i);
        if (!rows[i].fits) fits_done = 1;
        else if (fits_done) FAIL("a row that fits after one that does not");
        seen[0] |= rows[i].c.plan.tp > 1, seen[1] |= rows[i].c.plan.dp > 1;
        seen[2] |= rows[i].c.plan.algo == LC_CP_HYBRID;
    }
    if (!seen[0] || !seen[1] || !seen[2]) FAIL("the ranking lacks TP, DP or hybrid rows");
    char why[512];
    lc_planner_explain(rows, n, why, sizeof why);
    if (!strchr(why, ':')) FAIL("explanation: %s", why);
    /* no memory: nothing fits, and the explanation says so */
    p.mem_bytes = 1e6;
    free(rows);
    lc_planner_enumerate(&p, &r, &rows, &n);
    lc_planner_explain(rows, n, why, sizeof why);
    if (n < 1 || rows[0].fits || !strstr(why, "no layout fits")) FAIL("1 MB host: %s", why);
    free(rows);
    printf("ok   ranking: %d rows sorted, fitting first, each predicted again alike; best explained\n", n);
}

int main(void)
{
    roundtrip();
    predictions();
    ranking();
    if (g_fail) printf("%d failures\n", g_fail);
    return g_fail ? 1 : 0;
}
