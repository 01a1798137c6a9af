/* Ring attention with several PEs (processes) on the one GPU, NVSHMEM's multiple-PEs-per-GPU
 * mode: forward (o, lse) and backward (dq, dk, dv) of the ring must equal one PE running
 * the same kernels over the whole sequence, for the contiguous, zigzag and striped layouts (S with padding rows too) and every
 * mask. Correctness only: PEs sharing a GPU time-slice without MPS.
 * Usage: test_gpu_ring [n_pes [engine]]   (default 4, own). engine cudnn runs the ring's block
 * calls on the cuDNN engine (blocks outside its rule, e.g. striped or document ones, on our
 * kernels, counted); the reference stays our kernels on one PE. Exits 77 without a device or
 * NVSHMEM, or (engine cudnn) without the cuDNN engine. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "gpu_test_util.h"

typedef struct {
    lc_dtype dt;
    int d, hq, hkv, S;
    unsigned kind;
    int window;
    int layout; /* lc_cp_layout: 0 contiguous, 1 zigzag, 2 striped */
    int graph; /* run the ring calls as captured CUDA graphs on a stream of our own */
} rcase;

static lc_gpu_engine_kind g_engine = LC_GPU_ENGINE_OWN;

static double rel(const float *a, const float *b, size_t n) {
    double m = 0, s = 1e-3;
    for (size_t i = 0; i < n; i++) s = fmax(s, fabs(b[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (isnan(a[i])) e = INFINITY;
        m = fmax(m, e);
    }
    return m / s;
}

static void *upload(const void *h, size_t bytes) {
    void *d = gt_dev_alloc(bytes);
    gt_h2d(d, h, bytes);
    return d;
}
static void *zeros(size_t bytes) {
    void *z = calloc(1, bytes ? bytes : 1), *d = upload(z, bytes);
    free(z);
    return d;
}

static int one_case(lc_gpu_world *w, const rcase *c, int pe, int n, uint64_t seed) {
    /* any S: every PE holds sl padded rows; padding rows have position -1 */
    const int S = c->S, d = c->d;
    int sl = -1;
    lc_cp_layout_positions((lc_cp_layout)c->layout, S, n, 0, NULL, &sl);
    const size_t rq = (size_t)c->hq * d, rk = (size_t)c->hkv * d;
    uint16_t *q = malloc(2 * S * rq), *k = malloc(2 * S * rk), *v = malloc(2 * S * rk), *dout = malloc(2 * S * rq);
    uint64_t s = seed;
    for (size_t i = 0; i < S * rq; i++) gt_round(c->dt, gt_uniform(&s), &q[i]);
    for (size_t i = 0; i < S * rk; i++) gt_round(c->dt, gt_uniform(&s), &k[i]);
    for (size_t i = 0; i < S * rk; i++) gt_round(c->dt, gt_uniform(&s), &v[i]);
    for (size_t i = 0; i < S * rq; i++) gt_round(c->dt, gt_uniform(&s), &dout[i]);
    int32_t *doc = malloc(4 * (size_t)S), *pos = malloc(4 * (size_t)sl);
    for (int i = 0; i < S; i++) doc[i] = (i / 45) % 3 + i / 200;
    if (sl < 1 || lc_cp_layout_positions((lc_cp_layout)c->layout, S, n, pe, pos, NULL) < 0) {
        fprintf(stderr, "layout rejected\n");
        return 0;
    }

    /* one PE over the whole sequence: the reference */
    lc_gpu_attn_desc a;
    memset(&a, 0, sizeof a);
    a.sq = a.sk = S; a.hq = c->hq; a.hkv = c->hkv; a.d = d; a.dtype = c->dt;
    a.mask.kind = c->kind; a.mask.window = c->window;
    int32_t *gdoc = upload(doc, 4 * (size_t)S);
    a.mask.q_doc = a.mask.k_doc = gdoc;
    void *gq = upload(q, 2 * S * rq), *gk = upload(k, 2 * S * rk), *gv = upload(v, 2 * S * rk), *gdo = upload(dout, 2 * S * rq);
    float *go = gt_dev_alloc(4 * S * rq), *gl = gt_dev_alloc(4 * (size_t)S * c->hq), *gdl = gt_dev_alloc(4 * (size_t)S * c->hq);
    float *gdq = zeros(4 * S * rq), *gdk = zeros(4 * S * rk), *gdv = zeros(4 * S * rk);
    GT_CHECK(lc_gpu_attn_fwd_init(&a, go, gl, NULL));
    GT_CHECK(lc_gpu_attn_fwd_block(&a, gq, gk, gv, go, gl, NULL));
    GT_CHECK(lc_gpu_attn_bwd_prep(&a, go, gdo, gdl, NULL));
    GT_CHECK(lc_gpu_attn_bwd_block(&a, gq, gk, gv, gdo, gl, gdl, gdq, gdk, gdv, NULL));
    gt_sync();
    float *ro = malloc(4 * S * rq), *rl = malloc(4 * (size_t)S * c->hq), *rdq = malloc(4 * S * rq), *rdk = malloc(4 * S * rk), *rdv = malloc(4 * S * rk);
    gt_d2h(ro, go, 4 * S * rq); gt_d2h(rl, gl, 4 * (size_t)S * c->hq);
    gt_d2h(rdq, gdq, 4 * S * rq); gt_d2h(rdk, gdk, 4 * S * rk); gt_d2h(rdv, gdv, 4 * S * rk);

    /* my shard */
    uint16_t *lq = malloc(2 * sl * rq), *lk = malloc(2 * sl * rk), *lv = malloc(2 * sl * rk), *ldo = malloc(2 * sl * rq);
    int32_t *ldoc = malloc(4 * (size_t)sl);
    for (int i = 0; i < sl; i++) {
        const size_t g = pos[i] >= 0 ? (size_t)pos[i] : 0; /* padding rows carry real-looking data */
        memcpy(lq + i * rq, q + g * rq, 2 * rq);
        memcpy(ldo + i * rq, dout + g * rq, 2 * rq);
        memcpy(lk + i * rk, k + g * rk, 2 * rk);
        memcpy(lv + i * rk, v + g * rk, 2 * rk);
        ldoc[i] = doc[g];
    }
    void *dq_ = upload(lq, 2 * sl * rq), *dk_ = upload(lk, 2 * sl * rk), *dv_ = upload(lv, 2 * sl * rk), *ddo = upload(ldo, 2 * sl * rq);
    int32_t *dpos = upload(pos, 4 * (size_t)sl), *ddoc = upload(ldoc, 4 * (size_t)sl);
    float *o = gt_dev_alloc(4 * sl * rq), *lse = gt_dev_alloc(4 * (size_t)sl * c->hq);
    float *gq_ = zeros(4 * sl * rq), *gk_ = zeros(4 * sl * rk), *gv_ = zeros(4 * sl * rk);

    lc_gpu_ring_opts ro_ = {w, sl, c->hq, c->hkv, d, c->dt, 0.f, c->kind, c->window, LC_LOWER_ONE_SIDED, NULL,
                            c->graph, g_engine, (lc_cp_layout)c->layout, S, NULL, 0};
    lc_gpu_ring *ring = NULL;
    GT_CHECK(lc_gpu_ring_create(&ro_, &ring));
    cudaStream_t st = NULL;
    if (c->graph && cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking) != cudaSuccess) {
        fprintf(stderr, "cudaStreamCreate failed\n");
        return 0;
    }
    int ok = 1;
    /* several calls: the signal counts and credits carry over from call to call (and a
     * captured graph is replayed from the second call on) */
    for (int rep = 0; rep < 3 && ok; rep++) {
        float *zz = calloc(sl * rq, 4);
        gt_h2d(gq_, zz, 4 * sl * rq); gt_h2d(gk_, zz, 4 * sl * rk); gt_h2d(gv_, zz, 4 * sl * rk);
        free(zz);
        GT_CHECK(lc_gpu_ring_fwd(ring, dq_, dk_, dv_, dpos, dpos, ddoc, ddoc, o, lse, st));
        GT_CHECK(lc_gpu_ring_bwd(ring, dq_, dk_, dv_, dpos, dpos, ddoc, ddoc, o, lse, ddo, gq_, gk_, gv_, st));
        GT_CHECK(lc_gpu_world_check(w, st));
        const char *gwhy = "";
        const int greplayed = lc_gpu_ring_graph_status(ring, &gwhy);
        float *mo = malloc(4 * sl * rq), *ml = malloc(4 * (size_t)sl * c->hq), *mdq = malloc(4 * sl * rq), *mdk = malloc(4 * sl * rk), *mdv = malloc(4 * sl * rk);
        gt_d2h(mo, o, 4 * sl * rq); gt_d2h(ml, lse, 4 * (size_t)sl * c->hq);
        gt_d2h(mdq, gq_, 4 * sl * rq); gt_d2h(mdk, gk_, 4 * sl * rk); gt_d2h(mdv, gv_, 4 * sl * rk);
        /* the reference rows of my positions */
        float *eo = malloc(4 * sl * rq), *el = malloc(4 * (size_t)sl * c->hq), *edq = malloc(4 * sl * rq), *edk = malloc(4 * sl * rk), *edv = malloc(4 * sl * rk);
        for (int i = 0; i < sl; i++) {
            if (pos[i] < 0) { /* padding: no key, no gradient */
                memset(eo + i * rq, 0, 4 * rq); memset(edq + i * rq, 0, 4 * rq);
                memset(edk + i * rk, 0, 4 * rk); memset(edv + i * rk, 0, 4 * rk);
                for (int h = 0; h < c->hq; h++) el[(size_t)i * c->hq + h] = -INFINITY;
                continue;
            }
            memcpy(eo + i * rq, ro + (size_t)pos[i] * rq, 4 * rq);
            memcpy(edq + i * rq, rdq + (size_t)pos[i] * rq, 4 * rq);
            memcpy(edk + i * rk, rdk + (size_t)pos[i] * rk, 4 * rk);
            memcpy(edv + i * rk, rdv + (size_t)pos[i] * rk, 4 * rk);
            memcpy(el + (size_t)i * c->hq, rl + (size_t)pos[i] * c->hq, 4 * (size_t)c->hq);
        }
        double lerr = 0;
        for (size_t i = 0; i < (size_t)sl * c->hq; i++)
            if (!(isinf(el[i]) && isinf(ml[i]))) lerr = fmax(lerr, fabs(el[i] - ml[i]));
        const double tf = c->dt == LC_DT_BF16 ? 1.5e-2 : 5e-3, tb = c->dt == LC_DT_BF16 ? 3e-2 : 1e-2;
        double e1 = rel(mo, eo, sl * rq), e2 = rel(mdq, edq, sl * rq), e3 = rel(mdk, edk, sl * rk), e4 = rel(mdv, edv, sl * rk);
        ok = e1 < tf && lerr < 2e-3 && e2 < tb && e3 < tb && e4 < tb;
        if (pe == 0 || !ok)
            printf("%s PE %d/%d %s d=%d hq=%d hkv=%d S=%d mask=%u %s call %d%s%s: o %.2e lse %.2e dq %.2e dk %.2e dv %.2e\n",
                   ok ? "ok  " : "FAIL", pe, n, lc_dtype_name(c->dt), d, c->hq, c->hkv, S, c->kind,
                   c->layout == 1 ? "zigzag" : c->layout == 2 ? "striped" : "contig", rep, c->graph ? (greplayed ? " graph: " : " graph off: ") : "",
                   c->graph ? gwhy : "", e1, lerr, e2, e3, e4);
        free(mo); free(ml); free(mdq); free(mdk); free(mdv); free(eo); free(el); free(edq); free(edk); free(edv);
    }
    if (g_engine == LC_GPU_ENGINE_CUDNN) {
        /* the engine must have run the blocks: every one of them where the mask is causal or
         * none (whole pieces, diagonals at offset 0), at least some under a window (an older
         * cuDNN may refuse a band; those blocks run on ours, counted) */
        lc_gpu_engine_stats es;
        GT_CHECK(lc_gpu_ring_engine_stats(ring, &es));
        const int eng_ok = es.fwd_cudnn > 0 && es.bwd_cudnn > 0 &&
                           ((c->kind & LC_MASK_WINDOW) || (es.fwd_own == 0 && es.bwd_own == 0));
        if (!eng_ok) ok = 0;
        if (pe == 0 || !eng_ok)
            printf("%s PE %d engine %s: blocks fwd/bwd on cuDNN %lld/%lld, on ours %lld/%lld%s%s\n",
                   eng_ok ? "ok  " : "FAIL", pe, lc_gpu_engine_name(g_engine), es.fwd_cudnn, es.bwd_cudnn, es.fwd_own,
                   es.bwd_own, es.fwd_own + es.bwd_own ? "; why: " : "", es.fwd_own + es.bwd_own ? es.last_own_why : "");
    }
    GT_CHECK(lc_gpu_ring_destroy(ring));
    if (st) cudaStreamDestroy(st);
    void *dev[] = {gdoc, gq, gk, gv, gdo, go, gl, gdl, gdq, gdk, gdv, dq_, dk_, dv_, ddo, dpos, ddoc, o, lse, gq_, gk_, gv_};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) gt_dev_free(dev[i]);
    free(q); free(k); free(v); free(dout); free(doc); free(pos); free(ro); free(rl); free(rdq); free(rdk); free(rdv);
    free(lq); free(lk); free(lv); free(ldo); free(ldoc);
    return ok;
}

static int pe_main(int pe, int n, const lc_gpu_uid *uid, void *arg) {
    (void)arg;
    lc_gpu_world_opts wo = {pe, n, uid, -1, (size_t)256 << 20, 60.0};
    lc_gpu_world *w = NULL;
    if (lc_gpu_world_init(&wo, &w)) {
        fprintf(stderr, "PE %d: %s\n", pe, lc_gpu_last_error());
        return 1;
    }
    if (pe == 0) printf("ring test: %d PEs, %d per GPU\n", n, lc_gpu_pes_per_device(w));
    const rcase cases[] = {
        {LC_DT_BF16, 128, 4, 2, 512, LC_MASK_CAUSAL, 0, 1, 0},
        {LC_DT_BF16, 128, 4, 2, 512, LC_MASK_CAUSAL, 0, 0, 0},
        {LC_DT_BF16, 64, 2, 2, 384, 0, 0, 0, 0},
        {LC_DT_F16, 64, 4, 1, 384, LC_MASK_CAUSAL | LC_MASK_WINDOW, 100, 1, 0},
        {LC_DT_F16, 128, 4, 4, 448, LC_MASK_DOC | LC_MASK_CAUSAL, 0, 1, 0},
        {LC_DT_BF16, 64, 4, 2, 320, LC_MASK_DOC, 0, 0, 0},
        {LC_DT_BF16, 128, 4, 2, 512, LC_MASK_CAUSAL, 0, 1, 1},
        /* S that no layout divides (padding rows), and the striped layout */
        {LC_DT_BF16, 128, 4, 2, 509, LC_MASK_CAUSAL, 0, 1, 0},
        {LC_DT_F16, 64, 4, 2, 389, LC_MASK_CAUSAL | LC_MASK_DOC, 0, 2, 0},
        {LC_DT_BF16, 64, 2, 1, 331, 0, 0, 0, 0},
        {LC_DT_BF16, 128, 4, 2, 512, LC_MASK_CAUSAL | LC_MASK_WINDOW, 90, 2, 1},
    };
    int all = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* engine cudnn: the cases whose blocks it takes (contiguous and zigzag, no documents);
         * the striped and document ones would only run our kernels again, after graph builds */
        if (g_engine == LC_GPU_ENGINE_CUDNN && (cases[i].layout == 2 || (cases[i].kind & LC_MASK_DOC))) continue;
        all &= one_case(w, &cases[i], pe, n, 1000 + i);
    }
    lc_gpu_world_finalize(w);
    return all ? 0 : 1;
}

int main(int argc, char **argv) {
    gt_require_gpu_nofork_parent("test_gpu_ring");
    if (!lc_gpu_have_nvshmem()) {
        printf("SKIP: test_gpu_ring: built without NVSHMEM\n");
        return LC_SKIP;
    }
    int n = argc > 1 ? atoi(argv[1]) : 4;
    if (n < 1) n = 4;
    if (argc > 2 && lc_gpu_engine_parse(argv[2], &g_engine)) {
        fprintf(stderr, "test_gpu_ring: %s\n", lc_gpu_last_error());
        return 2;
    }
    char why[256];
    if (g_engine == LC_GPU_ENGINE_CUDNN && !lc_gpu_have_cudnn(why, sizeof why)) {
        printf("SKIP: test_gpu_ring (engine cudnn): %s\n", why);
        return LC_SKIP;
    }
    /* the cuDNN engine builds its graphs in every PE on first use of each shape */
    int rc = gt_spawn(n, pe_main, NULL, g_engine == LC_GPU_ENGINE_CUDNN ? 400 : 170);
    printf("test_gpu_ring (%d PEs, engine %s): %s\n", n, lc_gpu_engine_name(g_engine), rc == 0 ? "ok" : rc == LC_SKIP ? "skipped" : "FAILED");
    return rc;
}
