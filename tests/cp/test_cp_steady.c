/* The steady state of a CP plan (run under `longctx launch -n P`): after lc_cp_create, forward
 * + backward allocate nothing and start no thread on any lowering, counted by interposing
 * the allocator and pthread_create in this binary; a plan with a 2-thread kernel pool gives
 * the same bits as a 1-thread plan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/fail.h"
#include "common/alloc_count.h"
#include "common/rng.h"
#include "longctx/cp.h"

static int g_fail, g_me;
static uint64_t g_rng;

#define FAIL(...) LC_TEST_FAIL_PE(g_fail, g_me, __VA_ARGS__)

typedef struct {
    void *q, *k, *v, *dout, *out;
    float *lse, *dq, *dk, *dv;
} bufs;

static void *rnd_buf(size_t n, lc_dtype dt)
{
    void *x = malloc(n * lc_dtype_size(dt) + 4);
    for (size_t i = 0; i < n; i++) {
        float f = (float)((lc_test_rng(&g_rng) >> 11) * (1.0 / 9007199254740992.0)) * 2 - 1;
        if (dt == LC_DT_BF16) ((lc_bf16 *)x)[i] = lc_f32_to_bf16(f);
        else ((float *)x)[i] = f;
    }
    return x;
}

static int pass(lc_cp *cp, bufs *b)
{
    int rc = lc_cp_forward(cp, b->q, b->k, b->v, NULL, b->out, b->lse);
    if (!rc) rc = lc_cp_backward(cp, b->q, b->k, b->v, NULL, b->out, b->lse, b->dout, b->dq, b->dk, b->dv);
    if (rc) FAIL("%s", lc_cp_last_error(cp));
    return rc;
}

int main(void)
{
    lc_world *w;
    if (lc_world_init(NULL, &w)) {
        fprintf(stderr, "test_cp_steady: cannot join the world\n");
        return 1;
    }
    lc_team *t = lc_team_world(w);
    g_me = lc_my_pe(w);
    int P = lc_n_pes(w);
    uint64_t seed = lc_test_seed();
    lc_broadcast(t, &seed, &seed, sizeof seed, 0);
    if (g_me == 0) printf("test_cp_steady: P=%d seed %llu (LONGCTX_SEED reproduces)\n", P, (unsigned long long)seed);
    if (lc_count_selftest()) FAIL("the allocation/thread counter does not see a malloc and a pthread_create");
    g_rng = seed + 17 * (uint64_t)g_me;
    lc_cp_config cfg = {.plan.seq_len = 2 * P * 70 + 3, .hq = 4, .hkv = 2, .d = 64, .dtype = LC_DT_BF16,
                        .plan.layout = LC_CP_ZIGZAG, .mask = LC_MASK_CAUSAL, .threads = 1};
    lc_cp *one, *two;
    if (lc_cp_create(t, &cfg, &one)) { FAIL("create: %s", lc_cp_last_error(NULL)); return 1; }
    cfg.threads = 2;
    if (lc_cp_create(t, &cfg, &two)) { FAIL("create: %s", lc_cp_last_error(NULL)); return 1; }
    size_t n = (size_t)lc_cp_local_rows(one, g_me), rq = n * cfg.hq * cfg.d, rk = n * cfg.hkv * cfg.d;
    bufs b[2];
    void *q = rnd_buf(rq, cfg.dtype), *k = rnd_buf(rk, cfg.dtype), *v = rnd_buf(rk, cfg.dtype),
         *dout = rnd_buf(rq, cfg.dtype);
    for (int i = 0; i < 2; i++) {
        b[i] = (bufs){q, k, v, dout, malloc(rq * 2 + 4), malloc(n * cfg.hq * 4 + 4), malloc(rq * 4 + 4),
                      malloc(rk * 4 + 4), malloc(rk * 4 + 4)};
    }
    static const struct { const char *name; lc_cp_algo algo; lc_lowering low; } var[] = {
        {"one_sided", LC_CP_RING, LC_LOWER_ONE_SIDED}, {"two_sided", LC_CP_RING, LC_LOWER_TWO_SIDED},
        {"zero_copy", LC_CP_RING, LC_LOWER_ZERO_COPY}, {"allgather", LC_CP_ALLGATHER, LC_LOWER_AUTO}};
    for (int vi = 0; vi < 4; vi++) {
        /* Switching algorithm may allocate (all-gather buffers); the calls after it may not. */
        lc_cp_set_algo(one, var[vi].algo, var[vi].low);
        lc_cp_set_algo(two, var[vi].algo, var[vi].low);
        if (pass(one, &b[0])) break;
        long allocs[2], threads[2];
        for (int r = 0; r < 2; r++) {
            memset(b[1].dq, 0xff, rq * 4);
            lc_count_start();
            int rc = pass(two, &b[1]);
            lc_count_stop(&allocs[r], &threads[r]);
            if (rc) break;
            if (memcmp(b[0].out, b[1].out, rq * 2) || memcmp(b[0].lse, b[1].lse, n * cfg.hq * 4) ||
                memcmp(b[0].dq, b[1].dq, rq * 4) || memcmp(b[0].dk, b[1].dk, rk * 4) ||
                memcmp(b[0].dv, b[1].dv, rk * 4))
                FAIL("%s run %d: the 2-thread plan is not bit-identical to the 1-thread plan", var[vi].name, r);
        }
        if (allocs[0] || allocs[1] || threads[0] || threads[1])
            FAIL("%s: forward + backward allocated %ld + %ld times and started %ld + %ld threads", var[vi].name,
                 allocs[0], allocs[1], threads[0], threads[1]);
        printf("%s PE %d %s: 2 x (forward + backward): %ld allocations, %ld thread starts; 2 threads == 1 thread\n",
               g_fail ? "FAIL" : "ok  ", g_me, var[vi].name, allocs[0] + allocs[1], threads[0] + threads[1]);
        fflush(stdout);
    }
    lc_cp_destroy(two);
    lc_cp_destroy(one);
    for (int i = 0; i < 2; i++) {
        free(b[i].out);
        free(b[i].lse);
        free(b[i].dq);
        free(b[i].dk);
        free(b[i].dv);
    }
    free(q);
    free(k);
    free(v);
    free(dout);
    double f = g_fail, tot = 0;
    if (lc_allreduce_sum_f64(t, &tot, &f, 1)) tot = 1;
    lc_world_finalize(w);
    return tot != 0;
}
