/* The model's steady state (run under `longctx launch -n 4`): over CP 2 x TP 2, with and
 * without sequence parallelism, the second and third forward+backward allocate nothing and
 * start no thread (counted by interposing the allocator and pthread_create in this binary).
 * TP and SP call the runtime's all-reduce, reduce-scatter and all-gather many times a step,
 * so this is where a per-call buffer in a collective would show. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc_count.h"
#include "common/fail.h"
#include "longctx/model.h"

static int g_fail, g_me;
#define FAIL(...) LC_TEST_FAIL_PE(g_fail, g_me, __VA_ARGS__)

int main(void)
{
    lc_world *w;
    if (lc_world_init(NULL, &w)) {
        fprintf(stderr, "test_model_steady: cannot join the world\n");
        return 1;
    }
    lc_team *world = lc_team_world(w);
    g_me = lc_my_pe(w);
    if (lc_n_pes(w) != 4) {
        fprintf(stderr, "test_model_steady: needs 4 PEs (CP 2 x TP 2), have %d\n", lc_n_pes(w));
        lc_world_finalize(w);
        return 1;
    }
    if (lc_count_selftest()) FAIL("the allocation/thread counter does not see a malloc and a pthread_create");
    /* TP innermost: TP teams {0,1} {2,3}, CP teams {0,2} {1,3} */
    lc_team *cpt = NULL, *tpt = NULL;
    for (int r = 0; r < 2; r++) {
        lc_team *t = NULL;
        if (lc_team_split_strided(world, r, 2, 2, &t)) FAIL("cp split: %s", lc_last_error(w));
        if (t) cpt = t;
    }
    for (int c = 0; c < 2; c++) {
        lc_team *t = NULL;
        if (lc_team_split_strided(world, 2 * c, 1, 2, &t)) FAIL("tp split: %s", lc_last_error(w));
        if (t) tpt = t;
    }
    lc_model_config cfg;
    lc_model_preset("tiny", &cfg);
    const int S = 96;
    int32_t *tok = malloc(S * sizeof *tok), *tgt = malloc(S * sizeof *tgt);
    for (int i = 0; i < S; i++) {
        tok[i] = (i * 37 + 11) % cfg.vocab;
        tgt[i] = i % 13 == 5 ? -1 : (i * 53 + 7) % cfg.vocab;
    }
    for (int sp = 0; sp <= 1 && cpt && tpt; sp++) {
        lc_plan plan = {.seq_len = S, .layout = LC_CP_ZIGZAG, .algo = LC_CP_RING, .lowering = LC_LOWER_AUTO,
                        .sp = sp};
        lc_model_run run = {.cp_team = cpt, .plan = &plan, .compute = LC_DT_F32, .threads = 1, .tp_team = tpt};
        lc_model *m;
        if (lc_model_create(&cfg, &run, &m)) {
            FAIL("sp %d: create: %s", sp, lc_model_last_error(NULL));
            continue;
        }
        lc_model_init_params(m, 1234);
        float loss[3];
        long allocs = 0, threads = 0;
        for (int step = 0; step < 3; step++) {
            lc_model_zero_grads(m);
            if (step) lc_count_start();
            int rc = lc_model_forward_backward(m, tok, tgt, NULL, 1.0f, &loss[step]);
            long a = 0, th = 0;
            if (step) lc_count_stop(&a, &th);
            allocs += a;
            threads += th;
            if (rc) {
                FAIL("sp %d step %d: %s", sp, step, lc_model_last_error(m));
                break;
            }
        }
        if (allocs || threads)
            FAIL("sp %d: steps 2 and 3 allocated %ld times and started %ld threads", sp, allocs, threads);
        if (loss[1] != loss[0] || loss[2] != loss[0])
            FAIL("sp %d: the same step gave losses %.9g %.9g %.9g", sp, loss[0], loss[1], loss[2]);
        printf("%s PE %d CP 2 x TP 2 sp %d: 2 steady forward+backward: %ld allocations, %ld thread starts\n",
               g_fail ? "FAIL" : "ok  ", g_me, sp, allocs, threads);
        fflush(stdout);
        lc_model_destroy(m);
    }
    free(tok);
    free(tgt);
    lc_team_destroy(cpt);
    lc_team_destroy(tpt);
    double f = g_fail, tot = 0;
    if (lc_allreduce_sum_f64(world, &tot, &f, 1)) tot = 1;
    lc_world_finalize(w);
    return tot != 0;
}
