/* The cuDNN attention engine (engine = cudnn) against the CPU float64 oracle
 * (lc_attn_ref_fwd / lc_attn_ref_bwd), through the block API a ring step uses:
 * - each block shape the ring produces: full (K before Q), causal diagonal (same positions),
 *   causal with an offset diagonal, window band, causal + window, a zigzag shard (two
 *   position runs), packed documents (few, long), K/V split over two block calls;
 *   bf16 and f16, D 64 and 128, GQA groups 1, 2 and 4;
 * - the per-block rule: a block with padding scattered through it needs more pieces than the
 *   engine takes, so it must run on our kernels, be counted, and still be right;
 * - the rounding of 16-bit partials: one Q shard against 4, 8 and 16 ring steps, cuDNN vs our
 *   fp32 path vs the oracle, printed as a table and bounded by the bf16 tolerance
 *   ($LONGCTX_CUDNN_ERR_OUT: also as JSON lines, for scripts/gpu-check's report).
 * Exits 77 without a GPU, or when this build or machine has no cuDNN engine (after checking
 * that asking for it then says so with LC_ERR_UNSUPPORTED).
 * "test_gpu_cudnn host" checks the engine API's host logic only, on any machine. */
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
    int qpos0, kpos0; /* first positions */
    int zig;          /* Q is two runs: qpos0.. and qpos0 + zig.. (a zigzag shard); with
                         sk == sq, K holds the same positions (the PE's own block) */
    int docs;         /* document ids = pos / docs (0: one document) */
    int scatter_pad;  /* every 5th Q row is padding: too many pieces, runs on our kernels */
    int split;        /* K/V in two block calls */
    int may_refuse;   /* an older cuDNN may refuse this band (right bound != 0, window): then the
                         blocks run on our kernels, counted, with cuDNN's reason printed */
} ccase;

static double relerr_ff(const float *g, const float *r, size_t n) {
    double *rd = malloc(8 * n);
    for (size_t i = 0; i < n; i++) rd[i] = r[i];
    double e = gt_relerr(g, rd, n);
    free(rd);
    return e;
}

/* |lse - ref| over finite entries; infinite ones must agree (count of mismatches in *bad) */
static double lse_err(const float *g, const double *r, size_t n, int *bad) {
    double e = 0;
    *bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (isinf(r[i]) || isinf(g[i]) || isnan(g[i])) {
            if (!(isinf(r[i]) && isinf(g[i]))) (*bad)++;
        } else
            e = fmax(e, fabs(g[i] - r[i]));
    }
    return e;
}

typedef struct {
    size_t nq, nk;
    uint16_t *q16, *k16, *v16, *do16;
    double *q, *k, *v, *dout;
    int32_t *qpos, *kpos, *qdoc, *kdoc;
} inputs;

static void make_inputs(const ccase *c, uint64_t seed, inputs *in) {
    in->nq = (size_t)c->sq * c->hq * c->d;
    in->nk = (size_t)c->sk * c->hkv * c->d;
    in->q16 = malloc(2 * in->nq); in->do16 = malloc(2 * in->nq);
    in->k16 = malloc(2 * in->nk); in->v16 = malloc(2 * in->nk);
    in->q = malloc(8 * in->nq); in->dout = malloc(8 * in->nq);
    in->k = malloc(8 * in->nk); in->v = malloc(8 * in->nk);
    in->qpos = malloc(4 * (size_t)c->sq); in->qdoc = malloc(4 * (size_t)c->sq);
    in->kpos = malloc(4 * (size_t)c->sk); in->kdoc = malloc(4 * (size_t)c->sk);
    uint64_t s = seed;
    for (size_t i = 0; i < in->nq; i++) in->q[i] = gt_round(c->dt, gt_uniform(&s), &in->q16[i]);
    for (size_t i = 0; i < in->nk; i++) in->k[i] = gt_round(c->dt, gt_uniform(&s), &in->k16[i]);
    for (size_t i = 0; i < in->nk; i++) in->v[i] = gt_round(c->dt, gt_uniform(&s), &in->v16[i]);
    for (size_t i = 0; i < in->nq; i++) in->dout[i] = gt_round(c->dt, gt_uniform(&s), &in->do16[i]);
    const int half = c->sq / 2;
    for (int i = 0; i < c->sq; i++) {
        in->qpos[i] = c->zig && i >= half ? c->qpos0 + c->zig + (i - half) : c->qpos0 + i;
        if (c->scatter_pad && i % 5 == 3) in->qpos[i] = -1;
        in->qdoc[i] = c->docs ? in->qpos[i] / c->docs : 0;
    }
    for (int j = 0; j < c->sk; j++) {
        in->kpos[j] = c->zig && c->sk == c->sq ? in->qpos[j] : c->kpos0 + j;
        in->kdoc[j] = c->docs ? in->kpos[j] / c->docs : 0;
    }
}

static void free_inputs(inputs *in) {
    void *p[] = {in->q16, in->k16, in->v16, in->do16, in->q, in->k, in->v, in->dout,
                 in->qpos, in->kpos, in->qdoc, in->kdoc};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
}

typedef struct {
    float *o, *lse, *dq, *dk, *dv; /* host results */
} results;

/* The block calls of one ring step over device copies of in, K/V cut into nblk equal blocks
 * (nblk 1 or 2 here; the rounding table uses more), with engine e (NULL: our kernels). */
static void run_device(const ccase *c, const inputs *in, lc_gpu_attn_engine *e, int nblk, results *r) {
    const size_t nq = in->nq, nk = in->nk, rows = (size_t)c->sq * c->hq;
    void *dQ = gt_dev_alloc(2 * nq), *dK = gt_dev_alloc(2 * nk), *dV = gt_dev_alloc(2 * nk), *dDO = gt_dev_alloc(2 * nq);
    float *dO = gt_dev_alloc(4 * nq), *dL = gt_dev_alloc(4 * rows), *dDelta = gt_dev_alloc(4 * rows);
    float *ddq = gt_dev_alloc(4 * nq), *ddk = gt_dev_alloc(4 * nk), *ddv = gt_dev_alloc(4 * nk);
    int32_t *dqp = gt_dev_alloc(4 * (size_t)c->sq), *dkp = gt_dev_alloc(4 * (size_t)c->sk);
    int32_t *dqd = gt_dev_alloc(4 * (size_t)c->sq), *dkd = gt_dev_alloc(4 * (size_t)c->sk);
    gt_h2d(dQ, in->q16, 2 * nq); gt_h2d(dK, in->k16, 2 * nk); gt_h2d(dV, in->v16, 2 * nk); gt_h2d(dDO, in->do16, 2 * nq);
    gt_h2d(dqp, in->qpos, 4 * (size_t)c->sq); gt_h2d(dkp, in->kpos, 4 * (size_t)c->sk);
    gt_h2d(dqd, in->qdoc, 4 * (size_t)c->sq); gt_h2d(dkd, in->kdoc, 4 * (size_t)c->sk);
    {   /* poison the outputs the calls write, zero the accumulators */
        float *nan = malloc(4 * nq), *z = calloc(nq > nk ? nq : nk, 4);
        for (size_t i = 0; i < nq; i++) nan[i] = NAN;
        gt_h2d(dO, nan, 4 * nq); gt_h2d(dL, nan, 4 * rows); gt_h2d(dDelta, nan, 4 * rows);
        gt_h2d(ddq, z, 4 * nq); gt_h2d(ddk, z, 4 * nk); gt_h2d(ddv, z, 4 * nk);
        free(nan);
        free(z);
    }
    lc_gpu_attn_desc a;
    memset(&a, 0, sizeof a);
    a.sq = c->sq; a.hq = c->hq; a.hkv = c->hkv; a.d = c->d; a.dtype = c->dt;
    a.q_pos = dqp; a.q_pos_host = in->qpos;
    a.mask.kind = c->kind; a.mask.window = c->window;
    a.mask.q_doc = dqd; a.q_doc_host = in->qdoc;
    a.engine = e;
    GT_CHECK(lc_gpu_attn_fwd_init(&a, dO, dL, NULL));
    const int per = ((c->sk + nblk - 1) / nblk + 7) & ~7; /* block starts 16-byte aligned */
    for (int k0 = 0; k0 < c->sk; k0 += per) {
        const int kn = c->sk - k0 < per ? c->sk - k0 : per;
        a.sk = kn;
        a.k_pos = dkp + k0; a.k_pos_host = in->kpos + k0;
        a.mask.k_doc = dkd + k0; a.k_doc_host = in->kdoc + k0;
        GT_CHECK(lc_gpu_attn_fwd_block(&a, dQ, (char *)dK + (size_t)k0 * c->hkv * c->d * 2,
                                       (char *)dV + (size_t)k0 * c->hkv * c->d * 2, dO, dL, NULL));
    }
    a.sk = c->sk;
    GT_CHECK(lc_gpu_attn_bwd_prep(&a, dO, dDO, dDelta, NULL));
    for (int k0 = 0; k0 < c->sk; k0 += per) {
        const int kn = c->sk - k0 < per ? c->sk - k0 : per;
        a.sk = kn;
        a.k_pos = dkp + k0; a.k_pos_host = in->kpos + k0;
        a.mask.k_doc = dkd + k0; a.k_doc_host = in->kdoc + k0;
        GT_CHECK(lc_gpu_attn_bwd_block(&a, dQ, (char *)dK + (size_t)k0 * c->hkv * c->d * 2,
                                       (char *)dV + (size_t)k0 * c->hkv * c->d * 2, dDO, dL, dDelta, ddq,
                                       ddk + (size_t)k0 * c->hkv * c->d, ddv + (size_t)k0 * c->hkv * c->d, NULL));
    }
    gt_sync();
    r->o = malloc(4 * nq); r->lse = malloc(4 * rows); r->dq = malloc(4 * nq); r->dk = malloc(4 * nk); r->dv = malloc(4 * nk);
    gt_d2h(r->o, dO, 4 * nq); gt_d2h(r->lse, dL, 4 * rows);
    gt_d2h(r->dq, ddq, 4 * nq); gt_d2h(r->dk, ddk, 4 * nk); gt_d2h(r->dv, ddv, 4 * nk);
    void *dev[] = {dQ, dK, dV, dDO, dO, dL, dDelta, ddq, ddk, ddv, dqp, dkp, dqd, dkd};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) gt_dev_free(dev[i]);
}

static void free_results(results *r) {
    free(r->o); free(r->lse); free(r->dq); free(r->dk); free(r->dv);
}

typedef struct {
    double *out, *lse, *dq, *dk, *dv;
} oracle;

static void run_oracle(const ccase *c, const inputs *in, oracle *or_) {
    or_->out = malloc(8 * in->nq); or_->lse = malloc(8 * (size_t)c->sq * c->hq);
    or_->dq = malloc(8 * in->nq); or_->dk = malloc(8 * in->nk); or_->dv = malloc(8 * in->nk);
    lc_attn_desc ra;
    memset(&ra, 0, sizeof ra);
    ra.sq = c->sq; ra.sk = c->sk; ra.hq = c->hq; ra.hkv = c->hkv; ra.d = c->d;
    ra.qkv_dtype = LC_DT_F32;
    ra.q_pos = in->qpos; ra.k_pos = in->kpos;
    ra.mask.kind = c->kind; ra.mask.window = c->window;
    ra.mask.q_doc = in->qdoc; ra.mask.k_doc = in->kdoc;
    ra.threads = 1;
    if (lc_attn_ref_fwd(&ra, in->q, in->k, in->v, or_->out, or_->lse) ||
        lc_attn_ref_bwd(&ra, in->q, in->k, in->v, in->dout, or_->dq, or_->dk, or_->dv)) {
        fprintf(stderr, "reference failed: %s\n", lc_attn_last_error());
        exit(1);
    }
}

static void free_oracle(oracle *o) {
    free(o->out); free(o->lse); free(o->dq); free(o->dk); free(o->dv);
}

static int run_case(const ccase *c, lc_gpu_attn_engine *e, uint64_t seed) {
    inputs in;
    oracle ref;
    results r;
    make_inputs(c, seed, &in);
    run_oracle(c, &in, &ref);
    lc_gpu_engine_stats s0, s1;
    GT_CHECK(lc_gpu_attn_engine_stats(e, &s0));
    const int nblk = c->split ? 2 : 1;
    run_device(c, &in, e, nblk, &r);
    GT_CHECK(lc_gpu_attn_engine_stats(e, &s1));
    int lbad;
    const double lerr = lse_err(r.lse, ref.lse, (size_t)c->sq * c->hq, &lbad);
    const double eo = gt_relerr(r.o, ref.out, in.nq), eq = gt_relerr(r.dq, ref.dq, in.nq), ek = gt_relerr(r.dk, ref.dk, in.nk),
                 ev = gt_relerr(r.dv, ref.dv, in.nk);
    const int bf = c->dt == LC_DT_BF16;
    /* the tolerances of test_gpu_attn (our kernels): the cuDNN backward's 16-bit dq/dk/dv
     * per piece stay inside them */
    const double tf = bf ? 1.5e-2 : 4e-3, tb = bf ? 4e-2 : 1.2e-2;
    /* who ran the blocks: cuDNN for every block call, or (scatter_pad) our kernels, counted */
    const long long fc = s1.fwd_cudnn - s0.fwd_cudnn, bc = s1.bwd_cudnn - s0.bwd_cudnn;
    const long long fo = s1.fwd_own - s0.fwd_own, bo = s1.bwd_own - s0.bwd_own;
    const int all_own = fo == nblk && bo == nblk && fc == 0 && bc == 0;
    const int refused = c->may_refuse && (fo || bo) && fc + fo == nblk && bc + bo == nblk &&
                        strstr(s1.last_own_why, "cuDNN refused") != NULL;
    const int who_ok = c->scatter_pad ? all_own : ((fc == nblk && bc == nblk && fo == 0 && bo == 0) || refused);
    const int ok = who_ok && !lbad && lerr < 2e-3 && eo < tf && eq < tb && ek < tb && ev < tb;
    printf("%s%s %-4s d=%-3d hq=%d hkv=%d sq=%-4d sk=%-4d mask=%u w=%-3d qpos0=%-4d kpos0=%-4d zig=%-3d docs=%-3d "
           "pad=%d split=%d: o %.2e lse %.2e (%d inf mismatches) dq %.2e dk %.2e dv %.2e; cuDNN blocks %lld/%lld, "
           "ours %lld/%lld%s%s\n",
           ok ? "ok  " : "FAIL", refused ? " (cuDNN refused this band: ran on ours)" : "", lc_dtype_name(c->dt), c->d, c->hq, c->hkv, c->sq, c->sk, c->kind, c->window,
           c->qpos0, c->kpos0, c->zig, c->docs, c->scatter_pad, c->split, eo, lerr, lbad, eq, ek, ev, fc, bc, fo, bo,
           (fo || bo) ? "; why: " : "", (fo || bo) ? s1.last_own_why : "");
    free_results(&r);
    free_oracle(&ref);
    free_inputs(&in);
    return ok;
}

/* One Q shard (the last PE's, which sees every block under the causal mask) against P ring
 * steps of c->sk / P keys each: o, lse and the gradients from cuDNN's 16-bit partials vs our
 * fp32 path vs the oracle. */
static int rounding_row(lc_gpu_attn_engine *e, int P, FILE *js) {
    const int chunk = 256;
    ccase c = {LC_DT_BF16, 128, 8, 2, chunk, P * chunk, LC_MASK_CAUSAL, 0, (P - 1) * chunk, 0, 0, 0, 0, 0, 0};
    inputs in;
    oracle ref;
    results rc, ro;
    make_inputs(&c, 1000 + (uint64_t)P, &in);
    run_oracle(&c, &in, &ref);
    run_device(&c, &in, e, P, &rc);
    run_device(&c, &in, NULL, P, &ro);
    int b1, b2;
    const size_t rows = (size_t)c.sq * c.hq;
    const double co = gt_relerr(rc.o, ref.out, in.nq), oo = gt_relerr(ro.o, ref.out, in.nq), xo = relerr_ff(rc.o, ro.o, in.nq);
    const double cl = lse_err(rc.lse, ref.lse, rows, &b1), ol = lse_err(ro.lse, ref.lse, rows, &b2);
    const double cq = gt_relerr(rc.dq, ref.dq, in.nq), oq = gt_relerr(ro.dq, ref.dq, in.nq);
    const double ck = fmax(gt_relerr(rc.dk, ref.dk, in.nk), gt_relerr(rc.dv, ref.dv, in.nk));
    const double ok_ = fmax(gt_relerr(ro.dk, ref.dk, in.nk), gt_relerr(ro.dv, ref.dv, in.nk));
    /* bounded by the bf16 tolerance: 1e-2 on o, the backward's 4e-2 on the gradients */
    const int ok = !b1 && !b2 && co < 1e-2 && cl < 2e-3 && cq < 4e-2 && ck < 4e-2;
    printf("%s rounding P=%-2d (sq=%d, %d keys, bf16, D=128, 8/2 heads, causal): o cudnn %.2e ours %.2e "
           "cudnn-vs-ours %.2e | lse cudnn %.2e ours %.2e | dq cudnn %.2e ours %.2e | dk,dv cudnn %.2e ours %.2e\n",
           ok ? "ok  " : "FAIL", P, c.sq, c.sk, co, oo, xo, cl, ol, cq, oq, ck, ok_);
    if (js)
        fprintf(js,
                "{\"kind\":\"cudnn_rounding\",\"steps\":%d,\"sq\":%d,\"sk\":%d,\"o_cudnn\":%.3e,\"o_ours\":%.3e,"
                "\"o_cudnn_vs_ours\":%.3e,\"lse_cudnn\":%.3e,\"lse_ours\":%.3e,\"dq_cudnn\":%.3e,\"dq_ours\":%.3e,"
                "\"dkv_cudnn\":%.3e,\"dkv_ours\":%.3e,\"ok\":%s}\n",
                P, c.sq, c.sk, co, oo, xo, cl, ol, cq, oq, ck, ok_, ok ? "true" : "false");
    free_results(&rc);
    free_results(&ro);
    free_oracle(&ref);
    free_inputs(&in);
    return ok;
}

/* src/attn/cuda/cudnn_engine.h: the frontend's validation of one piece graph, deviceless */
int lcg_cudnn_validate_piece(int dir, int hq, int hkv, int d, int dtype, float scale, int nq, int nk, int right,
                             int left, int sm_version, char *why, size_t whylen);

/* The frontend's own rules for the piece graphs the engine makes, for Hopper (sm 90) and
 * Ampere (sm 80), with no device: every dtype, head dim, GQA, the ring's pieces (full,
 * diagonal at offset 0) and the bands (shifted diagonal, window, causal + window). A shape
 * the frontend rejects here would be refused on the GPU too. */
static int validate_graphs(void) {
    char why[512];
    if (!lc_gpu_have_cudnn(why, sizeof why)) {
        printf("skip graph validation: %s\n", why);
        return 0;
    }
    const struct { int nq, nk, right, left; const char *what; } sh[] = {
        {256, 256, -1, 0, "full"}, {256, 256, 0, 0, "causal diagonal"}, {160, 256, 100, 0, "shifted diagonal"},
        {133, 256, -1, 70, "window band"}, {256, 320, 64, 26, "causal + window"}, {77, 77, 0, 0, "odd diagonal"}};
    const int heads[][2] = {{8, 2}, {4, 4}, {32, 8}};
    int bad = 0, n = 0;
    for (int sm = 80; sm <= 90; sm += 10)
        for (int dt = LC_DT_BF16; dt <= LC_DT_F16; dt++)
            for (int d = 64; d <= 128; d += 64)
                for (size_t hi = 0; hi < 3; hi++)
                    for (size_t i = 0; i < sizeof sh / sizeof sh[0]; i++)
                        for (int dir = 0; dir < 2; dir++) {
                            n++;
                            if (lcg_cudnn_validate_piece(dir, heads[hi][0], heads[hi][1], d, dt, 0.08838835f, sh[i].nq,
                                                         sh[i].nk, sh[i].right, sh[i].left, sm, why, sizeof why)) {
                                /* the bands may be refused by a cuDNN too old for them: reported, and the
                                 * engine then runs those blocks on our kernels; the ring's own pieces must pass */
                                const int band = sh[i].left > 0 || sh[i].right > 0;
                                printf("%s sm %d %s D=%d %d/%d heads %s %s: %s\n", band ? "note" : "FAIL", sm,
                                       lc_dtype_name((lc_dtype)dt), d, heads[hi][0], heads[hi][1], sh[i].what,
                                       dir ? "backward" : "forward", why);
                                bad += !band;
                            }
                        }
    /* the control: a window band with more rows than keys is what the frontend refuses (and
     * what the planner cuts into row chunks), so this validation does look at the pieces */
    if (!lcg_cudnn_validate_piece(0, 8, 2, 128, LC_DT_BF16, 0.08838835f, 300, 256, -1, 70, 90, why, sizeof why)) {
        printf("FAIL: the frontend accepted a window band with 300 rows > 256 keys\n");
        bad++;
    } else
        printf("ok   control: window band 300 rows x 256 keys refused: %.120s\n", why);
    printf("%s cuDNN frontend validation of %d piece graphs (sm 80 and 90, no device)\n", bad ? "FAIL" : "ok  ", n);
    return bad;
}

/* The engine API's host logic, with or without a device or cuDNN (ctest gpu_cudnn_host, labels
 * gpu;cpu): names, bad input named, own/auto handles that run our kernels, cudnn either made
 * or refused with LC_ERR_UNSUPPORTED and the reason, never a silent fallback. */
static int host_checks(void) {
    int bad = 0;
    lc_gpu_engine_kind k = LC_GPU_ENGINE_AUTO;
    if (lc_gpu_engine_parse("cudnn", &k) || k != LC_GPU_ENGINE_CUDNN || lc_gpu_engine_parse(NULL, &k) ||
        k != LC_GPU_ENGINE_OWN || strcmp(lc_gpu_engine_name(LC_GPU_ENGINE_AUTO), "auto")) {
        printf("FAIL: engine names\n");
        bad++;
    }
    if (lc_gpu_engine_parse("cuDNN9", &k) != LC_ERR_ARG || !strstr(lc_gpu_last_error(), "cuDNN9")) {
        printf("FAIL: a bad engine name is not named: %s\n", lc_gpu_last_error());
        bad++;
    }
    lc_gpu_attn_engine *e = NULL;
    if (lc_gpu_attn_engine_create((lc_gpu_engine_kind)7, &e) != LC_ERR_ARG || e) {
        printf("FAIL: engine 7 accepted\n");
        bad++;
    }
    for (int kind = LC_GPU_ENGINE_OWN; kind <= LC_GPU_ENGINE_AUTO; kind += 2) { /* own, auto */
        lc_gpu_engine_stats st;
        if (lc_gpu_attn_engine_create((lc_gpu_engine_kind)kind, &e) || lc_gpu_attn_engine_stats(e, &st) ||
            st.resolved != LC_GPU_ENGINE_OWN || (int)st.kind != kind) {
            printf("FAIL: engine %s: %s\n", lc_gpu_engine_name((lc_gpu_engine_kind)kind), lc_gpu_last_error());
            bad++;
        }
        if (kind == LC_GPU_ENGINE_AUTO && !strstr(st.last_own_why, "auto")) {
            printf("FAIL: auto does not say why it runs our kernels: '%s'\n", st.last_own_why);
            bad++;
        }
        lc_gpu_attn_engine_destroy(e);
        e = NULL;
    }
    char why[256], dev[256];
    const int have = lc_gpu_have_cudnn(why, sizeof why), ndev = lc_gpu_device_count(dev, sizeof dev);
    const int rc = lc_gpu_attn_engine_create(LC_GPU_ENGINE_CUDNN, &e);
    if (have && ndev > 0 ? rc != LC_OK || !e
                         : rc != LC_ERR_UNSUPPORTED || e || !strstr(lc_gpu_last_error(), "cudnn")) {
        printf("FAIL: engine cudnn (cuDNN %s, %d devices) returned %d: %s\n", have ? "built" : "absent", ndev, rc,
               lc_gpu_last_error());
        bad++;
    }
    printf("%s engine cudnn with cuDNN %s and %d devices: %s\n", bad ? "FAIL" : "ok  ", have ? "built" : "absent",
           ndev, rc ? lc_gpu_last_error() : "made");
    lc_gpu_attn_engine_destroy(e);
    if (lc_gpu_attn_engine_stats(NULL, NULL) != LC_ERR_ARG) {
        printf("FAIL: stats of a NULL engine\n");
        bad++;
    }
    bad += validate_graphs();
    printf("test_gpu_cudnn host: %s\n", bad ? "FAIL" : "ok");
    return bad ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "host")) return host_checks();
    char why[256];
    /* without the engine, asking for it must say so (LC_ERR_UNSUPPORTED), never fall back */
    if (!lc_gpu_have_cudnn(why, sizeof why)) {
        lc_gpu_attn_engine *e = NULL;
        int rc = lc_gpu_attn_engine_create(LC_GPU_ENGINE_CUDNN, &e);
        if (rc != LC_ERR_UNSUPPORTED || e || !strstr(lc_gpu_last_error(), "cudnn")) {
            fprintf(stderr, "FAIL: engine cudnn without cuDNN returned %d (%s), want LC_ERR_UNSUPPORTED\n", rc,
                    lc_gpu_last_error());
            return 1;
        }
        printf("SKIP: test_gpu_cudnn: engine=cudnn refused with LC_ERR_UNSUPPORTED as it must: %s\n",
               lc_gpu_last_error());
        return LC_SKIP;
    }
    gt_require_gpu("test_gpu_cudnn");
    printf("%s\n", why);
    lc_gpu_attn_engine *e = NULL;
    GT_CHECK(lc_gpu_attn_engine_create(LC_GPU_ENGINE_CUDNN, &e));
    int total = 0, passed = 0;
    uint64_t seed = 7;
    const lc_dtype dts[] = {LC_DT_BF16, LC_DT_F16};
    const int ds[] = {64, 128};
    const int heads[][2] = {{4, 4}, {8, 2}, {4, 2}};
    for (int di = 0; di < 2; di++)
        for (int dd = 0; dd < 2; dd++) {
            const int hi = (di + dd) % 3;
            const int hq = heads[hi][0], hkv = heads[hi][1], d = ds[dd];
            const lc_dtype dt = dts[di];
            const ccase cs[] = {
                /* full: every key before every query (an earlier ring block) */
                {dt, d, hq, hkv, 192, 256, LC_MASK_CAUSAL, 0, 512, 0, 0, 0, 0, 0, 0},
                /* no mask at all, K/V in two calls */
                {dt, d, hq, hkv, 200, 264, 0, 0, 0, 0, 0, 0, 0, 1, 0},
                /* causal diagonal: the PE's own block */
                {dt, d, hq, hkv, 256, 256, LC_MASK_CAUSAL, 0, 0, 0, 0, 0, 0, 0, 0},
                /* causal with the diagonal shifted (Q starts 100 positions into K) */
                {dt, d, hq, hkv, 160, 256, LC_MASK_CAUSAL, 0, 100, 0, 0, 0, 0, 0, 1},
                /* window band, no causal bound, K/V in two calls */
                {dt, d, hq, hkv, 256, 256, LC_MASK_WINDOW, 70, 64, 0, 0, 0, 0, 1, 1},
                /* causal + window */
                {dt, d, hq, hkv, 256, 320, LC_MASK_CAUSAL | LC_MASK_WINDOW, 90, 64, 0, 0, 0, 0, 0, 1},
                /* a zigzag PE's own block: Q and K hold chunks 1 and 6 of 8 (64 rows each):
                 * two diagonals and one full piece */
                {dt, d, hq, hkv, 128, 128, LC_MASK_CAUSAL, 0, 64, 0, 320, 0, 0, 0, 0},
                /* a zigzag shard against contiguous keys 0..511: diagonals shifted by 64 and 384 */
                {dt, d, hq, hkv, 128, 512, LC_MASK_CAUSAL, 0, 64, 0, 320, 0, 0, 0, 1},
                /* packed documents of 96 tokens, causal */
                {dt, d, hq, hkv, 192, 384, LC_MASK_CAUSAL | LC_MASK_DOC, 0, 192, 0, 0, 96, 0, 0, 0},
                /* padding scattered through Q: more pieces than the rule allows -> our kernels */
                {dt, d, hq, hkv, 128, 128, LC_MASK_CAUSAL, 0, 0, 0, 0, 0, 1, 0, 0},
            };
            /* every shape on one configuration (bf16, D 128, GQA 4); the ring's own shapes (full,
             * diagonal, zigzag, documents, the rule) on the others: each new piece shape costs a
             * cuDNN graph build */
            const int full_list = di == 0 && dd == 1;
            for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
                if (!full_list && (cs[i].may_refuse || cs[i].split)) continue;
                total++;
                passed += run_case(&cs[i], e, seed++);
            }
        }
    const char *jpath = getenv("LONGCTX_CUDNN_ERR_OUT");
    FILE *js = jpath && *jpath ? fopen(jpath, "a") : NULL;
    for (int P = 4; P <= 16; P *= 2) {
        total++;
        passed += rounding_row(e, P, js);
    }
    if (js) fclose(js);
    lc_gpu_engine_stats st;
    GT_CHECK(lc_gpu_attn_engine_stats(e, &st));
    printf("engine: %lld/%lld forward/backward blocks on cuDNN, %lld/%lld on ours, %lld cuDNN calls, %d graphs "
           "(%d refused) built in %.1f s\n", st.fwd_cudnn, st.bwd_cudnn, st.fwd_own, st.bwd_own, st.pieces, st.graphs,
           st.graphs_refused, st.graph_build_s);
    lc_gpu_attn_engine_destroy(e);
    printf("test_gpu_cudnn: %d/%d cases passed\n", passed, total);
    return passed == total ? 0 : 1;
}
