/* The steady state of the attention kernels: with a worker pool and a workspace from
 * lc_attn_workspace_size, forward + backward allocate nothing and start no thread (counted
 * by interposing the allocator and pthread_create), and give the same bits as the
 * convenience path (per-call buffers, one thread). Also: a too-small workspace is refused
 * with a message, and one workspace serves smaller calls. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/fail.h"
#include "common/alloc_count.h"
#include "common/rng.h"
#include "longctx/attn.h"

static int g_fail;
static uint64_t g_rng;

#define FAIL(...) LC_TEST_FAIL(g_fail, __VA_ARGS__)

static float urand(void) { return (float)((lc_test_rng(&g_rng) >> 11) * (1.0 / 9007199254740992.0)) * 2 - 1; }

typedef struct {
    void *q, *k, *v, *dout;
    int32_t *qpos, *kpos, *qdoc, *kdoc;
} inputs;

typedef struct {
    float *o, *lse, *delta, *dq, *dk, *dv;
} outputs;

static void *fill(size_t n, lc_dtype dt)
{
    void *x = malloc(n * lc_dtype_size(dt));
    for (size_t i = 0; i < n; i++) {
        float f = urand();
        if (dt == LC_DT_BF16) ((lc_bf16 *)x)[i] = lc_f32_to_bf16(f);
        else ((float *)x)[i] = f;
    }
    return x;
}

static void outs_make(outputs *o, const lc_attn_desc *a)
{
    size_t nq = (size_t)a->sq * a->hq * a->d, nk = (size_t)a->sk * a->hkv * a->d, nr = (size_t)a->sq * a->hq;
    o->o = malloc(nq * 4), o->lse = malloc(nr * 4), o->delta = malloc(nr * 4);
    o->dq = malloc(nq * 4), o->dk = malloc(nk * 4), o->dv = malloc(nk * 4);
}

static void outs_free(outputs *o)
{
    free(o->o); free(o->lse); free(o->delta); free(o->dq); free(o->dk); free(o->dv);
}

/* Forward (init, block, finish in place) then backward; no allocation of its own. */
static int pass(const lc_attn_desc *a, const inputs *in, outputs *o)
{
    size_t nq = (size_t)a->sq * a->hq * a->d, nk = (size_t)a->sk * a->hkv * a->d;
    memset(o->dq, 0, nq * 4);
    memset(o->dk, 0, nk * 4);
    memset(o->dv, 0, nk * 4);
    lc_attn_fwd_init(a, o->o, o->lse);
    if (lc_attn_fwd_block(a, in->q, in->k, in->v, o->o, o->lse)) return -1;
    if (lc_attn_fwd_finish(a, o->o, o->o, LC_DT_F32)) return -1;
    if (lc_attn_bwd_prep(a, o->o, in->dout, o->delta)) return -1;
    return lc_attn_bwd_block(a, in->q, in->k, in->v, in->dout, o->lse, o->delta, o->dq, o->dk, o->dv);
}

static int same(const outputs *x, const outputs *y, const lc_attn_desc *a)
{
    size_t nq = (size_t)a->sq * a->hq * a->d, nk = (size_t)a->sk * a->hkv * a->d, nr = (size_t)a->sq * a->hq;
    return !memcmp(x->o, y->o, nq * 4) && !memcmp(x->lse, y->lse, nr * 4) && !memcmp(x->dq, y->dq, nq * 4) &&
           !memcmp(x->dk, y->dk, nk * 4) && !memcmp(x->dv, y->dv, nk * 4);
}

static void one_case(lc_attn_impl impl, lc_dtype dt, int hq, int hkv, int nthr)
{
    int sq = 150, sk = 200, d = 64;
    inputs in;
    in.q = fill((size_t)sq * hq * d, dt), in.dout = fill((size_t)sq * hq * d, dt);
    in.k = fill((size_t)sk * hkv * d, dt), in.v = fill((size_t)sk * hkv * d, dt);
    in.qpos = malloc(sq * 4), in.kpos = malloc(sk * 4), in.qdoc = malloc(sq * 4), in.kdoc = malloc(sk * 4);
    for (int i = 0; i < sq; i++) in.qpos[i] = i % 11 == 5 ? -1 : 100 + i, in.qdoc[i] = (100 + i) / 37;
    for (int j = 0; j < sk; j++) in.kpos[j] = j % 13 == 7 ? -1 : j, in.kdoc[j] = j / 37;
    lc_attn_desc a = {.sq = sq, .sk = sk, .hq = hq, .hkv = hkv, .d = d, .qkv_dtype = dt,
                      .q_pos = in.qpos, .k_pos = in.kpos,
                      .mask = {LC_MASK_CAUSAL | LC_MASK_DOC, 0, in.qdoc, in.kdoc},
                      .threads = 1, .impl = impl};
    int fails0 = g_fail;
    outputs ref, got;
    outs_make(&ref, &a);
    outs_make(&got, &a);
    char what[128];
    snprintf(what, sizeof what, "impl %s %s hq/hkv %d/%d, pool of %d", lc_attn_impl_name(impl),
             lc_dtype_name(dt), hq, hkv, nthr);
    long conv_allocs, conv_threads;
    a.threads = 2;
    lc_count_start();
    if (pass(&a, &in, &ref)) FAIL("%s: convenience path: %s", what, lc_attn_last_error());
    lc_count_stop(&conv_allocs, &conv_threads);
    a.threads = 1;
    /* The counter sees what the convenience path does (else a zero below would mean nothing). */
    if (conv_allocs < 2 || conv_threads < 2)
        FAIL("%s: the convenience path counted only %ld allocations, %ld threads", what, conv_allocs, conv_threads);

    /* The steady state: pool and workspace made once; a workspace sized for a larger call. */
    lc_attn_desc s = a;
    s.threads = 0; /* the pool's size */
    s.pool = lc_attn_pool_create(nthr);
    if (!s.pool) FAIL("%s: %s", what, lc_attn_last_error());
    lc_attn_desc big = s;
    big.sq += 70, big.sk += 64;
    size_t need = 0, need_exact = 0;
    if (lc_attn_workspace_size(&big, LC_ATTN_PASS_FWD | LC_ATTN_PASS_BWD, &need) ||
        lc_attn_workspace_size(&s, LC_ATTN_PASS_FWD | LC_ATTN_PASS_BWD, &need_exact))
        FAIL("%s: workspace size: %s", what, lc_attn_last_error());
    if (!(need > need_exact && need_exact > 0)) FAIL("%s: workspace sizes %zu (bigger call) vs %zu", what, need, need_exact);
    char *ws = malloc(need + 1);
    s.work = ws + 1; /* any alignment */
    s.work_bytes = need;
    long allocs[2], threads[2];
    for (int r = 0; r < 2; r++) {
        memset(got.o, 0xff, (size_t)sq * hq * d * 4); /* poison: NaN */
        lc_count_start();
        int rc = pass(&s, &in, &got);
        lc_count_stop(&allocs[r], &threads[r]);
        if (rc) FAIL("%s: steady pass %d: %s", what, r, lc_attn_last_error());
        if (!same(&got, &ref, &a)) FAIL("%s: run %d is not bit-identical to the convenience path", what, r);
    }
    if (allocs[0] || allocs[1] || threads[0] || threads[1])
        FAIL("%s: steady state allocated %ld + %ld times and started %ld + %ld threads", what, allocs[0],
             allocs[1], threads[0], threads[1]);
    /* A workspace one byte short of the forward's need is refused, naming the workspace
     * (the size includes 64 bytes of slack for alignment, unused on an aligned pointer). */
    size_t need_fwd = 0;
    lc_attn_workspace_size(&s, LC_ATTN_PASS_FWD, &need_fwd);
    s.work = (char *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    s.work_bytes = need_fwd - 65;
    if (lc_attn_fwd_block(&s, in.q, in.k, in.v, got.o, got.lse) != -1 || !strstr(lc_attn_last_error(), "workspace"))
        FAIL("%s: a short workspace was not refused ('%s')", what, lc_attn_last_error());
    printf("%s %s: 2 x (fwd + bwd) with %zu-byte workspace: %ld allocations, %ld thread starts, bit-identical\n",
           g_fail != fails0 ? "FAIL" : "ok  ", what, need, allocs[0] + allocs[1], threads[0] + threads[1]);
    lc_attn_pool_destroy(s.pool);
    free(ws);
    outs_free(&ref);
    outs_free(&got);
    free(in.q); free(in.k); free(in.v); free(in.dout);
    free(in.qpos); free(in.kpos); free(in.qdoc); free(in.kdoc);
}

int main(void)
{
    const char *s = getenv("LONGCTX_SEED");
    uint64_t seed = s && *s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL);
    g_rng = seed;
    printf("test_attn_steady: seed %llu (LONGCTX_SEED reproduces)\n", (unsigned long long)seed);
    if (lc_count_selftest()) {
        printf("FAIL: the allocation/thread counter does not see a malloc and a pthread_create\n");
        return 1;
    }
    if (lc_attn_pool_create(0) || !strstr(lc_attn_last_error(), "nthreads")) FAIL("pool of 0 threads accepted");
    static const lc_attn_impl impls[] = {LC_ATTN_SCALAR, LC_ATTN_AVX2, LC_ATTN_AVX512};
    for (int i = 0; i < 3; i++) {
        if (!lc_attn_impl_supported(impls[i])) {
            printf("note: impl %s not supported by this CPU, not tested here\n", lc_attn_impl_name(impls[i]));
            continue;
        }
        for (int dt = 0; dt < 2; dt++) {
            one_case(impls[i], (lc_dtype)dt, 8, 2, 2); /* fused backward */
            one_case(impls[i], (lc_dtype)dt, 3, 1, 3); /* split backward */
        }
    }
    return g_fail != 0;
}
