/* GPU attention kernels against the CPU float64 oracle (lc_attn_ref_fwd / lc_attn_ref_bwd):
 * bf16 and f16, D = 64 and 128, masks none / causal / window / document and combinations,
 * GQA, odd lengths, padding rows, shifted positions (a ring step), and the K/V split over
 * two block calls so that the (o, lse) merge and the accumulating backward are exercised.
 * Exits 77 (skip) without a device. The same source also runs on every machine as gpu_attn_cpu,
 * over a CPU stand-in of the device (tests/gpu/emu/gpu_attn_standin.c) with the same argument
 * rules (attn_check.h), so a call sequence the device refuses fails there too.
 *
 * The call sequence is a ring step's: init the (o, lse) state from the Q side alone, then
 * set sk, k_pos and k_doc per K/V block.
 *
 * usage: test_gpu_attn [quick] [fwd]. quick: a sampled sweep. fwd: the forward alone (o, lse;
 * no backward is called or checked), so that a forward kernel family is judged by its own
 * test and a failing backward cannot hide a passing forward or the reverse. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test_util.h"

typedef struct {
    lc_dtype dt;
    int d, hq, hkv, sq, sk;
    unsigned kind;
    int window;
    int pad;     /* some rows are padding (negative positions) */
    int shift;   /* K positions start here, Q positions at shift + sk/2 (a ring step) */
    int split;   /* K/V in two block calls */
} tcase;

static int fwd_only;

static int run(const tcase *c, uint64_t seed) {
    const size_t nq = (size_t)c->sq * c->hq * c->d, nk = (size_t)c->sk * c->hkv * c->d;
    uint16_t *hq16 = malloc(2 * nq), *hk16 = malloc(2 * nk), *hv16 = malloc(2 * nk), *hdo16 = malloc(2 * nq);
    double *q = malloc(8 * nq), *k = malloc(8 * nk), *v = malloc(8 * nk), *dout = malloc(8 * nq);
    double *out = malloc(8 * nq), *lse = malloc(8 * (size_t)c->sq * c->hq);
    double *dq = malloc(8 * nq), *dk = malloc(8 * nk), *dv = malloc(8 * nk);
    int32_t *qpos = malloc(4 * (size_t)c->sq), *kpos = malloc(4 * (size_t)c->sk);
    int32_t *qdoc = malloc(4 * (size_t)c->sq), *kdoc = malloc(4 * (size_t)c->sk);
    uint64_t s = seed;
    for (size_t i = 0; i < nq; i++) q[i] = gt_round(c->dt, gt_uniform(&s), &hq16[i]);
    for (size_t i = 0; i < nk; i++) k[i] = gt_round(c->dt, gt_uniform(&s), &hk16[i]);
    for (size_t i = 0; i < nk; i++) v[i] = gt_round(c->dt, gt_uniform(&s), &hv16[i]);
    for (size_t i = 0; i < nq; i++) dout[i] = gt_round(c->dt, gt_uniform(&s), &hdo16[i]);
    for (int i = 0; i < c->sq; i++) {
        qpos[i] = c->shift + c->sk / 2 + i;
        if (c->pad && gt_rng(&s) % 7 == 0) qpos[i] = -1;
        qdoc[i] = (qpos[i] / 23) % 4;
    }
    for (int i = 0; i < c->sk; i++) {
        kpos[i] = c->shift + i;
        if (c->pad && gt_rng(&s) % 7 == 0) kpos[i] = -1;
        kdoc[i] = (kpos[i] / 23) % 4;
    }
    lc_attn_desc ra;
    memset(&ra, 0, sizeof ra);
    ra.sq = c->sq; ra.sk = c->sk; ra.hq = c->hq; ra.hkv = c->hkv; ra.d = c->d;
    ra.qkv_dtype = LC_DT_F32;
    ra.q_pos = qpos; ra.k_pos = kpos;
    ra.mask.kind = c->kind; ra.mask.window = c->window;
    ra.mask.q_doc = qdoc; ra.mask.k_doc = kdoc;
    ra.threads = 1;
    if (lc_attn_ref_fwd(&ra, q, k, v, out, lse) || (!fwd_only && lc_attn_ref_bwd(&ra, q, k, v, dout, dq, dk, dv))) {
        fprintf(stderr, "reference failed: %s\n", lc_attn_last_error());
        exit(1);
    }

    void *dQ = gt_dev_alloc(2 * nq), *dK = gt_dev_alloc(2 * nk), *dV = gt_dev_alloc(2 * nk), *dDO = gt_dev_alloc(2 * nq);
    float *dO = gt_dev_alloc(4 * nq), *dL = gt_dev_alloc(4 * (size_t)c->sq * c->hq), *dDelta = gt_dev_alloc(4 * (size_t)c->sq * c->hq);
    float *ddq = gt_dev_alloc(4 * nq), *ddk = gt_dev_alloc(4 * nk), *ddv = gt_dev_alloc(4 * nk);
    int32_t *dqp = gt_dev_alloc(4 * (size_t)c->sq), *dkp = gt_dev_alloc(4 * (size_t)c->sk);
    int32_t *dqd = gt_dev_alloc(4 * (size_t)c->sq), *dkd = gt_dev_alloc(4 * (size_t)c->sk);
    gt_h2d(dQ, hq16, 2 * nq); gt_h2d(dK, hk16, 2 * nk); gt_h2d(dV, hv16, 2 * nk); gt_h2d(dDO, hdo16, 2 * nq);
    gt_h2d(dqp, qpos, 4 * (size_t)c->sq); gt_h2d(dkp, kpos, 4 * (size_t)c->sk);
    gt_h2d(dqd, qdoc, 4 * (size_t)c->sq); gt_h2d(dkd, kdoc, 4 * (size_t)c->sk);

    lc_gpu_attn_desc a;
    memset(&a, 0, sizeof a);
    a.sq = c->sq; a.hq = c->hq; a.hkv = c->hkv; a.d = c->d; a.dtype = c->dt;
    a.q_pos = dqp;
    a.mask.kind = c->kind; a.mask.window = c->window; a.mask.q_doc = dqd;
    GT_CHECK(lc_gpu_attn_fwd_init(&a, dO, dL, NULL));
    /* K/V in one or two blocks (the second starts at a 64-row boundary plus an odd offset
     * would break 16-byte alignment, so split at a multiple of 8 rows) */
    int cut = c->split ? ((c->sk / 2) & ~7) : c->sk;
    int parts[2][2] = {{0, cut}, {cut, c->sk}};
    const size_t es = 2;
    for (int pi = 0; pi < 2; pi++) {
        int k0 = parts[pi][0], kn = parts[pi][1] - parts[pi][0];
        if (kn <= 0) continue;
        a.sk = kn;
        a.k_pos = dkp + k0;
        a.mask.k_doc = dkd + k0;
        GT_CHECK(lc_gpu_attn_fwd_block(&a, dQ, (char *)dK + (size_t)k0 * c->hkv * c->d * es,
                                       (char *)dV + (size_t)k0 * c->hkv * c->d * es, dO, dL, NULL));
    }
    a.sk = c->sk;
    if (!fwd_only) GT_CHECK(lc_gpu_attn_bwd_prep(&a, dO, dDO, dDelta, NULL));
    {
        float *z = calloc(nq > nk ? nq : nk, 4);
        gt_h2d(ddq, z, 4 * nq); gt_h2d(ddk, z, 4 * nk); gt_h2d(ddv, z, 4 * nk);
        free(z);
    }
    for (int pi = 0; pi < 2 && !fwd_only; pi++) {
        int k0 = parts[pi][0], kn = parts[pi][1] - parts[pi][0];
        if (kn <= 0) continue;
        a.sk = kn;
        a.k_pos = dkp + k0;
        a.mask.k_doc = dkd + k0;
        GT_CHECK(lc_gpu_attn_bwd_block(&a, dQ, (char *)dK + (size_t)k0 * c->hkv * c->d * es,
                                       (char *)dV + (size_t)k0 * c->hkv * c->d * es, dDO, dL, dDelta, ddq,
                                       ddk + (size_t)k0 * c->hkv * c->d, ddv + (size_t)k0 * c->hkv * c->d, NULL));
    }
    gt_sync();
    float *go = malloc(4 * nq), *gl = malloc(4 * (size_t)c->sq * c->hq), *gdq = malloc(4 * nq), *gdk = malloc(4 * nk), *gdv = malloc(4 * nk);
    gt_d2h(go, dO, 4 * nq); gt_d2h(gl, dL, 4 * (size_t)c->sq * c->hq);
    gt_d2h(gdq, ddq, 4 * nq); gt_d2h(gdk, ddk, 4 * nk); gt_d2h(gdv, ddv, 4 * nk);

    /* lse: -inf must match exactly; finite values to 1e-3 absolute */
    double lerr = 0;
    int lbad = 0;
    for (size_t i = 0; i < (size_t)c->sq * c->hq; i++) {
        if (isinf(lse[i]) || isinf(gl[i])) {
            if (!(isinf(lse[i]) && isinf(gl[i]))) lbad++;
        } else
            lerr = fmax(lerr, fabs(gl[i] - lse[i]));
    }
    const int bf = c->dt == LC_DT_BF16;
    const double tf = bf ? 1.5e-2 : 4e-3, tb = bf ? 4e-2 : 1.2e-2;
    double eo = gt_relerr(go, out, nq), eq = 0, ek = 0, ev = 0;
    if (!fwd_only) eq = gt_relerr(gdq, dq, nq), ek = gt_relerr(gdk, dk, nk), ev = gt_relerr(gdv, dv, nk);
    int ok = !lbad && lerr < 2e-3 && eo < tf && eq < tb && ek < tb && ev < tb;
    printf("%s %-4s d=%-3d hq=%d hkv=%d sq=%-4d sk=%-4d mask=%u w=%-3d pad=%d shift=%-4d split=%d: "
           "o %.2e lse %.2e (%d inf mismatches)",
           ok ? "ok  " : "FAIL", lc_dtype_name(c->dt), c->d, c->hq, c->hkv, c->sq, c->sk, c->kind,
           c->window, c->pad, c->shift, c->split, eo, lerr, lbad);
    if (fwd_only) printf(" (forward only)\n");
    else printf(" dq %.2e dk %.2e dv %.2e\n", eq, ek, ev);
    free(hq16); free(hk16); free(hv16); free(hdo16); free(q); free(k); free(v); free(dout);
    free(out); free(lse); free(dq); free(dk); free(dv); free(qpos); free(kpos); free(qdoc); free(kdoc);
    free(go); free(gl); free(gdq); free(gdk); free(gdv);
    void *dev[] = {dQ, dK, dV, dDO, dO, dL, dDelta, ddq, ddk, ddv, dqp, dkp, dqd, dkd};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) gt_dev_free(dev[i]);
    return ok;
}

/* The argument rules per entry point: the state calls need only the Q side; a block call
 * under the document mask without k_doc (or q_doc) is refused with a message naming it. */
static int check_rules(void) {
    int bad = 0;
    lc_gpu_attn_desc a;
    memset(&a, 0, sizeof a);
    a.sq = 16; a.sk = 16; a.hq = 2; a.hkv = 1; a.d = 64; a.dtype = LC_DT_BF16;
    a.mask.kind = LC_MASK_CAUSAL | LC_MASK_DOC;
    float *o = gt_dev_alloc(4 * 16 * 2 * 64), *l = gt_dev_alloc(4 * 16 * 2);
    void *x = gt_dev_alloc(2 * 16 * 2 * 64);
    int32_t *doc = gt_dev_alloc(4 * 16);
    int32_t zero[16] = {0};
    gt_h2d(doc, zero, sizeof zero);
    a.mask.q_doc = doc; /* k_doc not yet set: a ring sets it per block */
    if (lc_gpu_attn_fwd_init(&a, o, l, NULL)) {
        fprintf(stderr, "FAIL: fwd_init refused a Q-side-only descriptor: %s\n", lc_gpu_last_error());
        bad++;
    }
    int rc = lc_gpu_attn_fwd_block(&a, x, x, x, o, l, NULL);
    if (rc != LC_ERR_ARG || !strstr(lc_gpu_last_error(), "k_doc")) {
        fprintf(stderr, "FAIL: fwd_block without k_doc returned %d (%s), want LC_ERR_ARG naming k_doc\n", rc,
                lc_gpu_last_error());
        bad++;
    }
    a.mask.k_doc = doc; a.mask.q_doc = NULL;
    rc = lc_gpu_attn_fwd_block(&a, x, x, x, o, l, NULL);
    if (rc != LC_ERR_ARG || !strstr(lc_gpu_last_error(), "q_doc")) {
        fprintf(stderr, "FAIL: fwd_block without q_doc returned %d (%s), want LC_ERR_ARG naming q_doc\n", rc,
                lc_gpu_last_error());
        bad++;
    }
    a.mask.q_doc = doc;
    a.d = 96;
    rc = lc_gpu_attn_fwd_init(&a, o, l, NULL);
    if (rc != LC_ERR_ARG || !strstr(lc_gpu_last_error(), "head dim")) {
        fprintf(stderr, "FAIL: fwd_init with d=96 returned %d (%s)\n", rc, lc_gpu_last_error());
        bad++;
    }
    gt_sync();
    gt_dev_free(o); gt_dev_free(l); gt_dev_free(x); gt_dev_free(doc);
    printf("%s argument rules per entry point\n", bad ? "FAIL" : "ok  ");
    return bad == 0;
}

int main(int argc, char **argv) {
    gt_require_gpu("test_gpu_attn");
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "quick")) quick = 1;
        else if (!strcmp(argv[i], "fwd")) fwd_only = 1;
        else {
            fprintf(stderr, "usage: test_gpu_attn [quick] [fwd] (unknown argument %s)\n", argv[i]);
            return 2;
        }
    }
    const lc_dtype dts[] = {LC_DT_BF16, LC_DT_F16};
    const int ds[] = {64, 128};
    /* $LONGCTX_GPU_KERNEL picks the forward kernel family under test (gpu-check runs this
     * once per family); a family this device cannot run is a skip, never a pass */
    const char *want = getenv("LONGCTX_GPU_KERNEL");
    for (int di = 0; di < 2; di++)
        for (int dd = 0; dd < 2; dd++) {
            const char *kn = lc_gpu_attn_fwd_kernel(dts[di], ds[dd]);
            if (!kn) {
                printf("%s: test_gpu_attn: %s\n", want && !strcmp(want, "sm90") ? "SKIP" : "FAIL", lc_gpu_last_error());
                return want && !strcmp(want, "sm90") ? LC_SKIP : 1;
            }
            printf("forward kernel %s d=%d: %s (LONGCTX_GPU_KERNEL=%s)\n", lc_dtype_name(dts[di]), ds[dd], kn,
                   want ? want : "unset");
        }
    const unsigned kinds[] = {0, LC_MASK_CAUSAL, LC_MASK_WINDOW, LC_MASK_CAUSAL | LC_MASK_WINDOW,
                              LC_MASK_DOC, LC_MASK_CAUSAL | LC_MASK_DOC};
    const int heads[][2] = {{2, 2}, {4, 1}, {6, 2}};
    int total = 1, passed = check_rules();
    uint64_t seed = 1;
    for (int di = 0; di < 2; di++)
        for (int dd = 0; dd < 2; dd++)
            for (int ki = 0; ki < 6; ki++)
                for (int hi = 0; hi < 3; hi++) {
                    if (quick && hi != 1) continue;
                    tcase c = {dts[di], ds[dd], heads[hi][0], heads[hi][1], 0, 0, kinds[ki], 0, 0, 0, 0};
                    /* odd lengths that straddle tile edges; long enough for several K tiles */
                    c.sq = 77 + 64 * hi;
                    c.sk = 130 + 33 * ki;
                    c.window = 37;
                    c.pad = (ki + hi) % 2;
                    c.shift = (ki % 2) ? 0 : 200;
                    c.split = (dd + ki) % 2;
                    total++;
                    passed += run(&c, seed++);
                }
    /* a longer causal case so that the skip list and the FULL path carry real weight */
    tcase big = {LC_DT_BF16, 128, 4, 2, 515, 515, LC_MASK_CAUSAL, 0, 0, -257, 0};
    total++;
    passed += run(&big, 99);
    tcase big2 = {LC_DT_F16, 64, 8, 8, 300, 700, 0, 0, 0, 0, 1};
    total++;
    passed += run(&big2, 100);
    /* Keys past 32 tiles: each warp of the sm90 kernel classifies the tile summaries 32 at a
     * time (one ballot per chunk), so these reach its second chunk at 128-key tiles and its
     * second and third at 64: every tile live with padding; a window whose live tiles all lie
     * past the first chunk (that chunk is all SKIP); a causal diagonal inside the second chunk.
     * One block call each: a split would halve sk. */
    const tcase longk[] = {
        {LC_DT_BF16, 128, 2, 1, 160, 4700, 0, 0, 1, 0, 0},
        {LC_DT_F16, 64, 2, 1, 130, 5000, LC_MASK_WINDOW, 300, 0, 2300, 0},
        {LC_DT_BF16, 128, 2, 1, 130, 4400, LC_MASK_CAUSAL, 0, 0, 2100, 0},
    };
    for (size_t i = 0; i < sizeof longk / sizeof longk[0]; i++) {
        total++;
        passed += run(&longk[i], 200 + i);
    }
    printf("test_gpu_attn: %d/%d cases passed%s\n", passed, total,
           fwd_only ? " (forward only: o and lse; the backward was not run)" : "");
    return passed == total ? 0 : 1;
}
