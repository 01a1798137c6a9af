/* longctx bench ring: context-parallel attention step time per layout, algorithm and
 * lowering, beside the compute-only time of the same kernel calls measured in the same run
 * (the ring's own loop with the communication left out), so the exposed communication is
 * (step - compute) / step. Busy time and balance use each PE's thread CPU time inside the
 * kernels, which stays meaningful when the PEs outnumber the cores. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/bench_util.h"
#include "longctx/cp.h"

static const char *const LAYOUTS[] = {"contiguous", "zigzag", "striped", NULL};
static const char *const ALGOS[] = {"ring", "allgather", "ulysses", "hybrid", NULL};
static const char *const LOWERINGS[] = {"one_sided", "two_sided", "zero_copy", "auto", NULL};
static const char *const PASSES[] = {"fwd", "fwd_bwd", NULL};
static const char *const MASKS[] = {"causal", "none", NULL};

typedef struct {
    lc_ilist pes, s, hq, hkv, d, ulysses;
    lc_slist layout, algo, lowering, pass, mask;
    int json, reps, threads, balance_mask;
} opts_t;

static void usage(void)
{
    fprintf(stderr,
            "usage: longctx bench ring [--pes 2,4] [--s 8K,32K] [--layout contiguous,zigzag,striped]\n"
            "                          [--algo ring,allgather,ulysses,hybrid] [--ulysses 2] [--lowering one_sided,two_sided,zero_copy,auto]\n"
            "                          [--pass fwd,fwd_bwd] [--mask causal|none] [--hq 8] [--hkv 2] [--d 64]\n"
            "                          [--reps N] [--threads T] [--balance-mask] [--json]\n"
            "Defaults are a quick subset (S = 8K, forward); the full range is --s 8K,16K,32K,64K,128K,256K\n"
            "--pass fwd,fwd_bwd. Each row is timed right after a compute-only run of the same kernel calls.\n"
            "hybrid runs once per --ulysses degree (Ulysses over U neighbours x the ring over P / U groups);\n"
            "ulysses and hybrid need --hq (and --hkv, or its multiples) to split over U. MiB/PE: bytes each PE\n"
            "sent per call; planMiB: the memory the plan holds (lc_cp_mem_bytes, max over PEs); imb: max / mean PE\n"
            "work under the mask (lc_cp_balance_step; --balance-mask deals ring and all-gather rows by it).\n");
}

static void set_words(lc_slist *l, const char *const *w, int n)
{
    l->n = n;
    for (int i = 0; i < n; i++) snprintf(l->v[i], sizeof l->v[i], "%s", w[i]);
}

static int parse(int argc, char **argv, opts_t *o, int *worker)
{
    memset(o, 0, sizeof *o);
    o->pes = (lc_ilist){2, {2, 4}};
    o->s = (lc_ilist){1, {8192}};
    o->hq = (lc_ilist){1, {8}};
    o->hkv = (lc_ilist){1, {2}};
    o->d = (lc_ilist){1, {64}};
    o->ulysses = (lc_ilist){1, {2}};
    set_words(&o->layout, LAYOUTS, 3);
    set_words(&o->algo, ALGOS, 1);
    set_words(&o->lowering, LOWERINGS, 3);
    set_words(&o->pass, PASSES, 1);
    set_words(&o->mask, MASKS, 1);
    o->reps = 1;
    o->threads = 1;
    *worker = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--json")) o->json = 1;
        else if (!strcmp(a, "--balance-mask")) o->balance_mask = 1;
        else if (!strcmp(a, "--worker")) *worker = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            exit(0);
        } else if (!v) bad = 1;
        else {
            i++;
            if (a[0] != '-' || a[1] != '-') bad = 2;
            else if (!strcmp(a, "--pes")) bad = lc_parse_count_list(a, v, 1, LC_CLI_MAX_PES, &o->pes);
            else if (!strcmp(a, "--s")) bad = lc_parse_count_list(a, v, 1, INT32_MAX, &o->s);
            else if (!strcmp(a, "--hq")) bad = lc_parse_int_list(a, v, &o->hq);
            else if (!strcmp(a, "--hkv")) bad = lc_parse_int_list(a, v, &o->hkv);
            else if (!strcmp(a, "--d")) bad = lc_parse_int_list(a, v, &o->d);
            else if (!strcmp(a, "--ulysses")) bad = lc_parse_count_list(a, v, 1, LC_CLI_MAX_PES, &o->ulysses);
            else if (!strcmp(a, "--layout")) bad = lc_parse_word_list(a, v, LAYOUTS, &o->layout);
            else if (!strcmp(a, "--algo")) bad = lc_parse_word_list(a, v, ALGOS, &o->algo);
            else if (!strcmp(a, "--lowering")) bad = lc_parse_word_list(a, v, LOWERINGS, &o->lowering);
            else if (!strcmp(a, "--pass")) bad = lc_parse_word_list(a, v, PASSES, &o->pass);
            else if (!strcmp(a, "--mask")) bad = lc_parse_word_list(a, v, MASKS, &o->mask);
            else if (!strcmp(a, "--reps")) bad = lc_parse_int_opt(a, v, 1, 64, &o->reps);
            else if (!strcmp(a, "--threads")) bad = lc_parse_int_opt(a, v, 1, 4096, &o->threads);
            else bad = 2;
        }
        if (bad) { /* a bad value was named by its parser */
            if (bad == 2 || a[0] != '-') fprintf(stderr, "longctx bench ring: unknown option '%s'\n", a);
            else if (!v) fprintf(stderr, "longctx bench ring: %s needs a value\n", a);
            usage();
            return -1;
        }
    }
    for (int i = 0; i < o->pes.n; i++)
        if (o->pes.v[i] < 1) {
            fprintf(stderr, "longctx bench ring: --pes must be >= 1\n");
            return -1;
        }
    return 0;
}

static double load1(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

typedef struct {
    double step, busy_max, busy_min, comm_cpu, stage_cpu, comm_wall, bytes;
} meas;


/* One call of the pass; *dt gets the slowest PE's wall time. */
static int run_once(lc_cp *cp, lc_team *t, int bwd, float *b[10], double *dt)
{
    if (lc_barrier(t)) return -1;
    double t0 = lc_wall();
    int rc = lc_cp_forward(cp, b[0], b[1], b[2], NULL, b[3], b[4]);
    if (!rc && bwd) rc = lc_cp_backward(cp, b[0], b[1], b[2], NULL, b[3], b[4], b[5], b[6], b[7], b[8]);
    if (rc) {
        fprintf(stderr, "bench ring: %s\n", lc_cp_last_error(cp));
        return -1;
    }
    double mine = lc_wall() - t0;
    return lc_allreduce_max_f64(t, dt, &mine, 1) ? -1 : 0;
}

/* Runs the pass reps times, each run right after a compute-only run of the same kernel calls,
 * so that a burst of load from other processes hits both sides of the comparison alike.
 * Step and compute times are the best of reps (other processes only ever slow a run down);
 * the CPU counters are per call of the real runs. */
static int measure(lc_cp *cp, lc_team *t, int bwd, int reps, float *b[10], lc_cp_algo algo,
                   lc_lowering low, meas *m, meas *comp)
{
    lc_cp_stats st, sum = {0};
    m->step = comp->step = 1e300;
    for (int r = 0; r < reps; r++) {
        double dt;
        /* a Ulysses plan keeps its algorithm: its compute-only run skips the all-to-all too */
        lc_cp_set_algo(cp, algo == LC_CP_ULYSSES || algo == LC_CP_HYBRID ? algo : LC_CP_RING, LC_LOWER_COMPUTE_ONLY);
        if (run_once(cp, t, bwd, b, &dt)) return -1;
        comp->step = dt < comp->step ? dt : comp->step;
        lc_cp_set_algo(cp, algo, low);
        lc_cp_reset_stats(cp);
        if (run_once(cp, t, bwd, b, &dt)) return -1;
        m->step = dt < m->step ? dt : m->step;
        lc_cp_get_stats(cp, &st);
        sum.compute_cpu_s += st.compute_cpu_s;
        sum.comm_cpu_s += st.comm_cpu_s;
        sum.comm_wall_s += st.comm_wall_s;
        sum.stage_cpu_s += st.stage_cpu_s;
        sum.bytes_sent += st.bytes_sent;
    }
    double mine[6] = {sum.compute_cpu_s / reps, -sum.compute_cpu_s / reps, sum.comm_cpu_s / reps,
                      sum.stage_cpu_s / reps, sum.comm_wall_s / reps, sum.bytes_sent / reps}, mx[6], tot[6];
    if (lc_allreduce_max_f64(t, mx, mine, 6) || lc_allreduce_sum_f64(t, tot, mine, 6)) return -1;
    m->bytes = mx[5];
    m->comm_wall = mx[4];
    m->busy_max = mx[0];
    m->busy_min = -mx[1];
    m->comm_cpu = tot[2];
    m->stage_cpu = tot[3];
    return 0;
}

static int worker(const opts_t *o)
{
    lc_world *w;
    if (lc_world_init(NULL, &w)) return 1; /* the runtime said why */
    lc_team *t = lc_team_world(w);
    int me = lc_my_pe(w), P = lc_n_pes(w), err = 0;
    if (me == 0 && !o->json)
        printf("%-7s %-10s %-9s %-10s %-7s %9s %9s %8s %9s %10s %8s %7s %8s %8s %6s\n", "S", "layout", "algo", "lowering",
               "pass", "step_s", "compute_s", "exposed", "comm_wall", "comm_cpu_s", "1s/2s", "balance", "MiB/PE",
               "planMiB", "imb");
    for (int si = 0; si < o->s.n && !err; si++)
        for (int hi = 0; hi < o->hq.n && !err; hi++)
            for (int li = 0; li < o->layout.n && !err; li++)
                for (int mi = 0; mi < o->mask.n && !err; mi++) {
                    lc_cp_config base = {.plan.seq_len = o->s.v[si], .hq = (int)o->hq.v[hi],
                                         .hkv = (int)o->hkv.v[hi < o->hkv.n ? hi : 0],
                                         .d = (int)o->d.v[hi < o->d.n ? hi : 0], .dtype = LC_DT_F32,
                                         .mask = strcmp(o->mask.v[mi], "causal") ? 0 : LC_MASK_CAUSAL,
                                         .threads = o->threads};
                    lc_cp_layout_parse(o->layout.v[li], &base.plan.layout);
                    /* One plan per algorithm (and Ulysses degree): ring and all-gather could share
                     * one, but a plan of its own gives each its own memory figure. */
                    for (int ai = 0; ai < o->algo.n && !err; ai++) {
                        lc_cp_algo algo;
                        lc_cp_algo_parse(o->algo.v[ai], &algo);
                        int nu = algo == LC_CP_HYBRID ? o->ulysses.n : 1;
                        for (int ui = 0; ui < nu && !err; ui++) {
                            lc_cp_config cfg = base;
                            cfg.plan.algo = algo;
                            cfg.plan.ulysses = algo == LC_CP_HYBRID ? (int)o->ulysses.v[ui] : 0;
                            if (o->balance_mask && (algo == LC_CP_RING || algo == LC_CP_ALLGATHER))
                                cfg.plan.balance = LC_CP_BALANCE_MASK;
                            char why[256], name[24];
                            int u = algo == LC_CP_ULYSSES ? P : algo == LC_CP_HYBRID ? cfg.plan.ulysses : 1;
                            snprintf(name, sizeof name, algo == LC_CP_HYBRID ? "%s%d" : "%s", o->algo.v[ai], u);
                            if ((algo == LC_CP_HYBRID && P % u) ||
                                ((algo == LC_CP_ULYSSES || algo == LC_CP_HYBRID) &&
                                 lc_plan_heads_split(cfg.hq, cfg.hkv, u, why, sizeof why))) {
                                if (me == 0 && !o->json)
                                    printf("# %s at P = %d: not run (%s)\n", name, P,
                                           P % u ? "the degree does not divide P" : why);
                                continue;
                            }
                            lc_cp *cp;
                            if (lc_cp_create(t, &cfg, &cp)) {
                                fprintf(stderr, "bench ring: PE %d: creating the %s plan for --s %lld: %s\n", me, name,
                                        o->s.v[si], lc_cp_last_error(NULL));
                                err = 1;
                                break;
                            }
                            /* the work per PE under this mask (no documents here), and its deal */
                            if (lc_cp_balance_step(cp, NULL)) {
                                fprintf(stderr, "bench ring: %s\n", lc_cp_last_error(cp));
                                err = 1;
                                break;
                            }
                            double imb = lc_cp_imbalance(cp);
                            size_t n = (size_t)lc_cp_local_rows(cp, me) + 1;
                            size_t nq = n * cfg.hq * cfg.d, nk = n * cfg.hkv * cfg.d;
                            size_t sz[10] = {nq, nk, nk, nq, n * cfg.hq, nq, nq, nk, nk, 1};
                            float *b[10];
                            for (int i = 0; i < 10; i++) {
                                b[i] = malloc(sz[i] * sizeof(float));
                                if (!b[i]) {
                                    char whym[160];
                                    snprintf(whym, sizeof whym, "bench ring: no memory for %zu floats of buffers at --s %lld: "
                                             "lower --s or raise --pes", sz[i], o->s.v[si]);
                                    lc_world_abort(w, whym); /* the peers are about to wait for me */
                                    lc_world_finalize(w);
                                    return 1;
                                }
                                for (size_t j = 0; j < sz[i]; j++) b[i][j] = (float)((j * 2654435761u) % 1000) / 1000.0f - 0.5f;
                            }
                            for (int pi = 0; pi < o->pass.n && !err; pi++) {
                                int bwd = !strcmp(o->pass.v[pi], "fwd_bwd");
                                meas comp, m, one = {0};
                                int ag = algo == LC_CP_ALLGATHER;
                                for (int wi = 0; wi < (ag ? 1 : o->lowering.n) && !err; wi++) {
                                    lc_lowering low = LC_LOWER_AUTO;
                                    if (!ag) lc_lowering_parse(o->lowering.v[wi], &low);
                                    if (measure(cp, t, bwd, o->reps, b, algo, low, &m, &comp)) {
                                        err = 1;
                                        break;
                                    }
                                    double mine = (double)lc_cp_mem_bytes(cp), plan_mem;
                                    if (lc_allreduce_max_f64(t, &plan_mem, &mine, 1)) err = 1;
                                    if (low == LC_LOWER_ONE_SIDED && !ag) one = m;
                                    const char *lname = ag ? "collective" : o->lowering.v[wi];
                                    double exposed = (m.step - comp.step) / m.step;
                                    double bal = m.busy_min > 0 ? m.busy_max / m.busy_min : 0;
                                    char ratio[16] = "";
                                    if (low == LC_LOWER_TWO_SIDED && !ag && one.step > 0 && m.comm_cpu > 0)
                                        snprintf(ratio, sizeof ratio, "%.2fx", one.comm_cpu / m.comm_cpu);
                                    if (me != 0) continue;
                                    if (o->json)
                                        printf("{\"bench\":\"ring\",\"pes\":%d,\"s\":%lld,\"layout\":\"%s\",\"algo\":\"%s\","
                                               "\"ulysses\":%d,\"lowering\":\"%s\",\"pass\":\"%s\",\"mask\":\"%s\",\"hq\":%d,"
                                               "\"hkv\":%d,\"d\":%d,\"step_s\":%.6g,\"compute_s\":%.6g,\"exposed_frac\":%.5f,"
                                               "\"comm_cpu_s\":%.6g,\"stage_cpu_s\":%.6g,\"balance\":%.4f,\"busy_max_s\":%.6g,"
                                               "\"busy_min_s\":%.6g,\"comm_wall_frac\":%.5f,\"bytes_per_pe\":%.0f,"
                                               "\"plan_mem_bytes\":%.0f,\"imbalance\":%.4f,\"balance\":\"%s\",\"threads\":%d,\"reps\":%d,"
                                               "\"load1\":%.2f}\n",
                                               P, o->s.v[si], o->layout.v[li], o->algo.v[ai], u, lname, o->pass.v[pi],
                                               o->mask.v[mi], cfg.hq, cfg.hkv, cfg.d, m.step, comp.step, exposed,
                                               m.comm_cpu, m.stage_cpu, bal, m.busy_max, m.busy_min, m.comm_wall / m.step,
                                               m.bytes, plan_mem, imb, lc_cp_balance_name(cfg.plan.balance), o->threads,
                                               o->reps, load1());
                                    else
                                        printf("%-7lld %-10s %-9s %-10s %-7s %9.4f %9.4f %7.2f%% %8.2f%% %10.5f %8s %7.3f "
                                               "%8.1f %8.1f %6.3f\n",
                                               o->s.v[si], o->layout.v[li], name, lname, o->pass.v[pi], m.step,
                                               comp.step, 100 * exposed, 100 * m.comm_wall / m.step, m.comm_cpu, ratio, bal,
                                               m.bytes / 1048576.0, plan_mem / 1048576.0, imb);
                                    fflush(stdout);
                                }
                            }
                            for (int i = 0; i < 10; i++) free(b[i]);
                            if (lc_cp_destroy(cp)) err = 1;
                        }
                    }
                }
    int rc = lc_world_finalize(w);
    return err || rc ? 1 : 0;
}

int lc_cmd_bench_ring(int argc, char **argv)
{
    opts_t o;
    int is_worker;
    if (parse(argc, argv, &o, &is_worker)) return 2;
    if (is_worker) return worker(&o);
    long long smax = 0, hmax = 0, dmax = 0;
    for (int i = 0; i < o.s.n; i++) smax = o.s.v[i] > smax ? o.s.v[i] : smax;
    for (int i = 0; i < o.hkv.n; i++) hmax = o.hkv.v[i] > hmax ? o.hkv.v[i] : hmax;
    for (int i = 0; i < o.d.n; i++) dmax = o.d.v[i] > dmax ? o.d.v[i] : dmax;
    long long hqmax = 0;
    for (int i = 0; i < o.hq.n; i++) hqmax = o.hq.v[i] > hqmax ? o.hq.v[i] : hqmax;
    int rc = 0;
    for (int pi = 0; pi < o.pes.n && !rc; pi++) {
        long long P = o.pes.v[pi], rows = (smax + 2 * P - 1) / (2 * P) * 2;
        /* Three KV slots and the dK/dV accumulator (fp32), plus slack for the runtime; in
         * double, since the options may ask for more than any size_t (checked below). */
        double kv = 2.0 * (double)rows * (double)hmax * (double)dmax * 4;
        double need = 3 * (kv + 8.0 * (double)rows + 256) + kv + (64u << 20);
        /* A Ulysses or hybrid plan instead (plans live one at a time): U send and U - 1 receive
         * pieces of the backward's all-to-all (Q, K, V, dO of a rank's heads, lse, D, doc ids),
         * and its groups' ring on U x rows rows; and the group-ordered copies outside the heap. */
        double uly_local = 0;
        for (int ai = 0; ai < o.algo.n; ai++) {
            int is_u = !strcmp(o.algo.v[ai], "ulysses"), is_h = !strcmp(o.algo.v[ai], "hybrid");
            for (int ui = 0; ui < (is_h ? o.ulysses.n : is_u ? 1 : 0); ui++) {
                long long U = is_u ? P : o.ulysses.v[ui];
                if (U < 1 || P % U || hqmax % U) continue;
                double hq_l = (double)hqmax / U, hkv_l = hmax % U ? 1 : (double)hmax / U, d = (double)dmax;
                double piece = (double)rows * (2 * hq_l * d * 4 + 2 * hkv_l * d * 4 + 2 * hq_l * 4 + 4) + 7 * 64;
                double gp = (double)U * rows, slot = 2 * gp * hkv_l * d * 4 + 8 * gp + 1024;
                double inner = P / U > 1 ? 3 * slot + 2 * gp * hkv_l * d * 4 : slot;
                double un = (2.0 * U - 1) * piece + inner + (64u << 20);
                need = un > need ? un : need;
                double ul = gp * (4 * hq_l * d * 4 + 2 * hkv_l * d * 4 + hq_l * 4 + 4);
                uly_local = ul > uly_local ? ul : uly_local;
            }
        }
        /* The bench's own buffers per PE: Q, O, dO, dQ ([rows, hq, d]), lse, K, V, dK, dV. */
        double local = (double)rows * (4.0 * (double)hqmax * (double)dmax + (double)hqmax + 4.0 * (double)hmax * (double)dmax) * 4;
        char what[160];
        snprintf(what, sizeof what, "--s %lld with --pes %lld, --hq %lld, --hkv %lld, --d %lld (lower --s or raise --pes)",
                 smax, P, hqmax, hmax, dmax);
        size_t heap;
        if (lc_bench_fits_memory("ring", need + local + uly_local, (int)P, what) || lc_bench_heap("ring", (size_t)need, &heap))
            return 2;
        if (!o.json)
            printf("== bench ring, shm backend, P = %lld, hq %lld hkv %lld d %lld, fp32, load %.2f ==\n", P,
                   o.hq.v[0], o.hkv.v[0], o.d.v[0], load1());
        rc = lc_bench_launch_workers("ring", argc, argv, (int)P, heap);
    }
    if (!o.json) printf("load average at the end: %.2f\n", load1());
    return rc;
}
