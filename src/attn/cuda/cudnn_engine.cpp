/* The attention engine handle and the cuDNN engine: cuDNN frontend SDPA graphs (forward
 * with softmax stats; backward from the stats) per piece of a block (cudnn_plan.h), built
 * once per shape and cached in the handle, executed on the caller's stream.
 *
 * Numerics (docs/GPU.md, "the cuDNN engine"):
 * - forward: cuDNN writes each piece's partial output rounded to bf16/f16 (its log-sum-exp
 *   stays fp32); the merge into the fp32 state (lcg_merge_row) is exact fp32, so each ring
 *   step adds one 16-bit rounding of a partial, weighted by its share of the softmax mass;
 * - backward: cuDNN reads O in 16 bits (the final fp32 o rounded once, in bwd_prep) and
 *   computes rowsum(dO * O) from it; it writes each piece's dq/dk/dv rounded to 16 bits,
 *   which are then added into the fp32 accumulators.
 *
 * Without cuDNN in the build (LONGCTX_HAVE_CUDNN undefined) the handle still exists for OWN
 * and AUTO, and CUDNN is refused with LC_ERR_UNSUPPORTED saying why. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <array>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cudnn_engine.h"
#include "cudnn_plan.h"

#ifdef LONGCTX_HAVE_CUDNN
#include <cudnn_frontend.h>
namespace fe = cudnn_frontend;
#endif

static_assert((int)LC_GPU_ENGINE_OWN == LCG_ENGINE_OWN && (int)LC_GPU_ENGINE_CUDNN == LCG_ENGINE_CUDNN &&
                  (int)LC_GPU_ENGINE_AUTO == LCG_ENGINE_AUTO,
              "engine numbers are cudnn_plan.h's");

extern "C" int lc_gpu_engine_parse(const char *s, lc_gpu_engine_kind *out) {
    int k;
    if (!out) return lcg_fail(LC_ERR_ARG, "lc_gpu_engine_parse: out is NULL");
    if (lcg_engine_parse(s, &k))
        return lcg_fail(LC_ERR_ARG, "attention engine '%s' is not one of own, cudnn, auto", s);
    *out = (lc_gpu_engine_kind)k;
    return LC_OK;
}

extern "C" const char *lc_gpu_engine_name(lc_gpu_engine_kind k) { return lcg_engine_name((int)k); }

namespace {

enum { FWD = 0, BWD = 1 };

/* Device buffer that only grows (sized once by reserve in steady use). A smaller one it
 * replaces is kept until release: queued work may still read it, and cudaFree is not allowed
 * while a stream is being captured (the ring's use_graph), cudaMalloc is. */
struct Buf {
    void *p = nullptr;
    size_t cap = 0;
    std::vector<void *> retired;
    int ensure(size_t bytes, const char *what) {
        if (bytes <= cap) return LC_OK;
        void *q = nullptr;
        int rc = lcg_cuda(cudaMalloc(&q, bytes), what);
        if (rc) return rc;
        if (p) retired.push_back(p);
        p = q;
        cap = bytes;
        return LC_OK;
    }
    void release() {
        for (void *r : retired) cudaFree(r);
        retired.clear();
        if (p) cudaFree(p);
        p = nullptr;
        cap = 0;
    }
};

#ifdef LONGCTX_HAVE_CUDNN
/* uids: forward Q K V O Stats = 1..5; backward Q K V O dO Stats dQ dK dV = 1..9 */
struct Graph {
    std::shared_ptr<fe::graph::Graph> g;
    std::unordered_map<int64_t, void *> pack; /* keys set once; only the pointers change */
    int64_t ws = 0;
    int ok = 0;
    std::string why;
};
using Key = std::array<int64_t, 11>;
#endif

} // namespace

struct lc_gpu_attn_engine {
    int kind, resolved;
    int device;
    lc_gpu_engine_stats st;
    /* host scratch of the planner */
    std::vector<int> qs, ql, ks, kl;
    lcg_piece pieces[LCG_CUDNN_MAX_PIECES];
#ifdef LONGCTX_HAVE_CUDNN
    cudnnHandle_t h = nullptr;
    std::map<Key, std::unique_ptr<Graph>> graphs;
    Buf ws, part, stats, o16, dq16, dk16, dv16;
    size_t o16_rows = 0; /* rows of the 16-bit o copy made by the last bwd_prep */
#endif
    /* the delta of the last bwd_prep, deferred until a block falls back to our kernels */
    const float *delta_o = nullptr;
    const void *delta_dout = nullptr;
};

extern "C" int lc_gpu_have_cudnn(char *why, size_t whylen) {
#ifdef LONGCTX_HAVE_CUDNN
    const size_t v = cudnnGetVersion();
    if (v < 90000) {
        if (why && whylen) snprintf(why, whylen, "cuDNN %zu is loaded; the engine needs cuDNN 9", v);
        return 0;
    }
    if (why && whylen) snprintf(why, whylen, "cuDNN %zu (built against %d), frontend %d", v, CUDNN_VERSION,
                                CUDNN_FRONTEND_VERSION);
    return 1;
#else
#ifndef LONGCTX_CUDNN_WHY
#define LONGCTX_CUDNN_WHY "no cuDNN frontend or no cuDNN at configure time"
#endif
    if (why && whylen) snprintf(why, whylen, "this build has no cuDNN engine: %s", LONGCTX_CUDNN_WHY);
    return 0;
#endif
}

extern "C" int lc_gpu_attn_engine_create(lc_gpu_engine_kind kind, lc_gpu_attn_engine **out) {
    if (!out) return lcg_fail(LC_ERR_ARG, "lc_gpu_attn_engine_create: out is NULL");
    *out = nullptr;
    if (kind != LC_GPU_ENGINE_OWN && kind != LC_GPU_ENGINE_CUDNN && kind != LC_GPU_ENGINE_AUTO)
        return lcg_fail(LC_ERR_ARG, "lc_gpu_attn_engine_create: engine %d is not own, cudnn or auto", (int)kind);
    char why[200];
    if (kind == LC_GPU_ENGINE_CUDNN && !lc_gpu_have_cudnn(why, sizeof why))
        return lcg_fail(LC_ERR_UNSUPPORTED, "attention engine cudnn: %s", why);
    lc_gpu_attn_engine *e = new (std::nothrow) lc_gpu_attn_engine();
    if (!e) return lcg_fail(LC_ERR_NOMEM, "out of memory");
    e->kind = (int)kind;
    /* auto: our kernels until a measured decision says otherwise (docs/GPU.md) */
    e->resolved = kind == LC_GPU_ENGINE_CUDNN ? LCG_ENGINE_CUDNN : LCG_ENGINE_OWN;
    e->st.kind = kind;
    e->st.resolved = (lc_gpu_engine_kind)e->resolved;
    snprintf(e->st.last_own_why, sizeof e->st.last_own_why, "%s",
             kind == LC_GPU_ENGINE_AUTO ? "auto: no measured decision for cuDNN yet, our kernels run" : "");
    cudaGetDevice(&e->device);
#ifdef LONGCTX_HAVE_CUDNN
    if (e->resolved == LCG_ENGINE_CUDNN) {
        cudnnStatus_t s = cudnnCreate(&e->h);
        if (s != CUDNN_STATUS_SUCCESS) {
            delete e;
            return lcg_fail(LC_ERR_UNSUPPORTED, "attention engine cudnn: cudnnCreate failed: %s",
                            cudnnGetErrorString(s));
        }
    }
#endif
    *out = e;
    return LC_OK;
}

extern "C" int lc_gpu_attn_engine_destroy(lc_gpu_attn_engine *e) {
    if (!e) return LC_OK;
#ifdef LONGCTX_HAVE_CUDNN
    if (e->h) {
        cudaDeviceSynchronize(); /* cuDNN work may still read the scratch */
        e->graphs.clear();
        cudnnDestroy(e->h);
    }
    Buf *bufs[] = {&e->ws, &e->part, &e->stats, &e->o16, &e->dq16, &e->dk16, &e->dv16};
    for (Buf *b : bufs) b->release();
#endif
    delete e;
    return LC_OK;
}

extern "C" int lc_gpu_attn_engine_stats(const lc_gpu_attn_engine *e, lc_gpu_engine_stats *out) {
    if (!e || !out) return lcg_fail(LC_ERR_ARG, "lc_gpu_attn_engine_stats: engine or out is NULL");
    *out = e->st;
    return LC_OK;
}

extern "C" int lc_gpu_attn_engine_reserve(lc_gpu_attn_engine *e, int sq, int sk, int hq, int hkv, int d) {
    if (!e || e->resolved != LCG_ENGINE_CUDNN) return LC_OK;
#ifdef LONGCTX_HAVE_CUDNN
    const size_t rq = (size_t)sq * hq * d, rk = (size_t)sk * hkv * d;
    int rc = e->part.ensure(2 * rq, "cudaMalloc cuDNN partial o");
    if (!rc) rc = e->stats.ensure(4 * (size_t)sq * hq, "cudaMalloc cuDNN stats");
    if (!rc) rc = e->o16.ensure(2 * rq, "cudaMalloc cuDNN 16-bit o");
    if (!rc) rc = e->dq16.ensure(2 * rq, "cudaMalloc cuDNN dq");
    if (!rc) rc = e->dk16.ensure(2 * rk, "cudaMalloc cuDNN dk");
    if (!rc) rc = e->dv16.ensure(2 * rk, "cudaMalloc cuDNN dv");
    e->qs.reserve(sq); e->ql.reserve(sq); e->ks.reserve(sk); e->kl.reserve(sk);
    return rc;
#else
    (void)sq; (void)sk; (void)hq; (void)hkv; (void)d;
    return LC_OK;
#endif
}

int lcg_engine_take_delta(lc_gpu_attn_engine *e, const float **o, const void **dout) {
    if (!e->delta_o) return 0;
    *o = e->delta_o;
    *dout = e->delta_dout;
    e->delta_o = nullptr;
    e->delta_dout = nullptr;
    return 1;
}

#ifdef LONGCTX_HAVE_CUDNN
static const int kMaxGraphs = 128; /* shapes; each costs host memory and a build (~0.1-1 s) */

static int own(lc_gpu_attn_engine *e, int bwd, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int own(lc_gpu_attn_engine *e, int bwd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->st.last_own_why, sizeof e->st.last_own_why, fmt, ap);
    va_end(ap);
    if (bwd) e->st.bwd_own++;
    else e->st.fwd_own++;
    return LCG_USE_OWN;
}

namespace {

/* Plans a block into e->pieces: the count, or -1 with the reason recorded as an own-block. */
int plan(lc_gpu_attn_engine *e, const lc_gpu_attn_desc *a, int bwd) {
    if ((a->q_pos && !a->q_pos_host) || (a->k_pos && !a->k_pos_host))
        return own(e, bwd, "no host copy of the positions (q_pos_host / k_pos_host)"), -1;
    if ((a->mask.kind & LC_MASK_DOC) && (!a->q_doc_host || !a->k_doc_host))
        return own(e, bwd, "document mask without host copies of the document ids"), -1;
    e->qs.resize(a->sq); e->ql.resize(a->sq); e->ks.resize(a->sk); e->kl.resize(a->sk);
    const int n = lcg_plan_pieces(a->mask.kind, a->mask.window, a->q_pos ? a->q_pos_host : NULL, a->q_doc_host,
                                  a->sq, a->k_pos ? a->k_pos_host : NULL, a->k_doc_host, a->sk, e->qs.data(),
                                  e->ql.data(), e->ks.data(), e->kl.data(), e->pieces, LCG_CUDNN_MAX_PIECES);
    if (n < 0) return own(e, bwd, "block needs more than %d pieces (short position runs or documents)",
                          LCG_CUDNN_MAX_PIECES), -1;
    return n;
}

float eff_scale(const lc_gpu_attn_desc *a) { return a->scale > 0.f ? a->scale : 1.f / sqrtf((float)a->d); }

std::shared_ptr<fe::graph::Tensor_attributes> rows_tensor(fe::graph::Graph &g, const char *name, int64_t uid,
                                                          int64_t n, int64_t h, int64_t d) {
    /* [rows, heads, d] row-major, seen as cuDNN's [b=1, h, s, d] */
    return g.tensor(fe::graph::Tensor_attributes().set_name(name).set_uid(uid).set_dim({1, h, n, d}).set_stride(
        {n * h * d, d, h * d, 1}));
}

/* The SDPA graph of one piece shape (tensors and attributes only; nothing built yet). */
std::shared_ptr<fe::graph::Graph> make_graph(int64_t hq, int64_t hk, int64_t d, int dtype, float scale,
                                             const lcg_piece &p, int dir, int sm_version = 0) {
    auto g = std::make_shared<fe::graph::Graph>();
    if (sm_version) g->set_sm_version(sm_version); /* before the nodes, which copy the context */
    const auto io = dtype == LC_DT_BF16 ? fe::DataType_t::BFLOAT16 : fe::DataType_t::HALF;
    g->set_io_data_type(io).set_intermediate_data_type(fe::DataType_t::FLOAT).set_compute_data_type(
        fe::DataType_t::FLOAT);
    const int64_t nq = p.nq, nk = p.nk;
    auto Q = rows_tensor(*g, "Q", 1, nq, hq, d);
    auto K = rows_tensor(*g, "K", 2, nk, hk, d);
    auto V = rows_tensor(*g, "V", 3, nk, hk, d);
    if (dir == FWD) {
        auto o = fe::graph::SDPA_attributes().set_name("sdpa").set_generate_stats(true).set_attn_scale(scale);
        if (p.right >= 0 || p.left > 0) o.set_diagonal_alignment(fe::DiagonalAlignment_t::TOP_LEFT);
        if (p.right >= 0) o.set_diagonal_band_right_bound(p.right);
        if (p.left > 0) o.set_diagonal_band_left_bound(p.left);
        auto [O, Stats] = g->sdpa(Q, K, V, o);
        O->set_output(true).set_uid(4).set_dim({1, hq, nq, d}).set_stride({nq * hq * d, d, hq * d, 1});
        Stats->set_output(true).set_uid(5).set_data_type(fe::DataType_t::FLOAT).set_dim({1, hq, nq, 1}).set_stride(
            {hq * nq, nq, 1, 1});
    } else {
        auto O = rows_tensor(*g, "O", 4, nq, hq, d);
        auto dO = rows_tensor(*g, "dO", 5, nq, hq, d);
        auto Stats = g->tensor(fe::graph::Tensor_attributes().set_name("Stats").set_uid(6).set_dim({1, hq, nq, 1})
                                   .set_stride({hq * nq, nq, 1, 1}).set_data_type(fe::DataType_t::FLOAT));
        auto o = fe::graph::SDPA_backward_attributes().set_name("sdpa_bwd").set_attn_scale(scale);
        if (p.right >= 0 || p.left > 0) o.set_diagonal_alignment(fe::DiagonalAlignment_t::TOP_LEFT);
        if (p.right >= 0) o.set_diagonal_band_right_bound(p.right);
        if (p.left > 0) o.set_diagonal_band_left_bound(p.left);
        auto [dQ, dK, dV] = g->sdpa_backward(Q, K, V, O, dO, Stats, o);
        dQ->set_output(true).set_uid(7).set_dim({1, hq, nq, d}).set_stride({nq * hq * d, d, hq * d, 1});
        dK->set_output(true).set_uid(8).set_dim({1, hk, nk, d}).set_stride({nk * hk * d, d, hk * d, 1});
        dV->set_output(true).set_uid(9).set_dim({1, hk, nk, d}).set_stride({nk * hk * d, d, hk * d, 1});
    }
    return g;
}

/* The graph of one piece shape, built on first use. NULL when cuDNN refuses it or the cache
 * is full, with the reason in why. */
Graph *graph_for(lc_gpu_attn_engine *e, const lc_gpu_attn_desc *a, const lcg_piece &p, int dir, char *why,
                 size_t whylen) {
    float scale = eff_scale(a);
    int32_t sbits;
    memcpy(&sbits, &scale, 4);
    const Key key = {dir, p.nq, p.nk, a->hq, a->hkv, a->d, (int64_t)a->dtype, p.right, p.left, sbits, 0};
    auto it = e->graphs.find(key);
    if (it == e->graphs.end() && (int)e->graphs.size() >= kMaxGraphs) {
        snprintf(why, whylen, "the graph cache is full (%d shapes)", kMaxGraphs);
        return nullptr;
    }
    if (it != e->graphs.end()) {
        Graph *g = it->second.get();
        if (!g->ok)
            snprintf(why, whylen, "cuDNN refused %s %dx%d right %d left %d: %.100s", dir == FWD ? "forward" : "backward",
                     p.nq, p.nk, p.right, p.left, g->why.c_str());
        return g->ok ? g : nullptr;
    }
    auto gr = std::make_unique<Graph>();
    auto g = make_graph(a->hq, a->hkv, a->d, (int)a->dtype, scale, p, dir);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fe::error_t err = g->validate();
    if (err.is_good()) err = g->build_operation_graph(e->h);
    if (err.is_good()) err = g->create_execution_plans({fe::HeurMode_t::A});
    if (err.is_good()) err = g->check_support(e->h);
    if (err.is_good()) err = g->build_plans(e->h);
    if (err.is_good()) err = g->get_workspace_size(gr->ws);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    e->st.graph_build_s += (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (err.is_good()) {
        gr->ok = 1;
        gr->g = g;
        for (int64_t u = 1; u <= (dir == FWD ? 5 : 9); u++) gr->pack[u] = nullptr;
        e->st.graphs++;
    } else {
        gr->why = err.get_message();
        e->st.graphs_refused++;
    }
    Graph *out = gr->ok ? gr.get() : nullptr;
    if (!gr->ok)
        snprintf(why, whylen, "cuDNN refused %s %dx%d right %d left %d: %.100s", dir == FWD ? "forward" : "backward",
                 p.nq, p.nk, p.right, p.left, gr->why.c_str());
    e->graphs.emplace(key, std::move(gr));
    return out;
}

/* Every piece's graph, before any work is queued: a block runs wholly on cuDNN or wholly on
 * our kernels. */
int graphs_for(lc_gpu_attn_engine *e, const lc_gpu_attn_desc *a, int n, int dir, Graph **out, int bwd) {
    char why[200];
    for (int i = 0; i < n; i++) {
        out[i] = graph_for(e, a, e->pieces[i], dir, why, sizeof why);
        if (!out[i]) return own(e, bwd, "%s", why);
        int rc = e->ws.ensure((size_t)out[i]->ws, "cudaMalloc cuDNN workspace");
        if (rc) return rc;
    }
    return LC_OK;
}

int exec(lc_gpu_attn_engine *e, Graph *g, const char *what) {
    fe::error_t err = g->g->execute(e->h, g->pack, e->ws.p);
    if (!err.is_good()) return lcg_fail(LC_ERR_SYS, "cuDNN %s: %s", what, err.get_message().c_str());
    e->st.pieces++;
    return LC_OK;
}

char *rows(const void *base, int row, int h, int d) { return (char *)base + (size_t)row * h * d * 2; }

} // namespace

extern "C" int lcg_cudnn_validate_piece(int dir, int hq, int hkv, int d, int dtype, float scale, int nq, int nk,
                                        int right, int left, int sm_version, char *why, size_t whylen) {
    lcg_piece p = {0, nq, 0, nk, right, left};
    auto g = make_graph(hq, hkv, d, dtype, scale, p, dir ? BWD : FWD, sm_version);
    fe::error_t err = g->validate();
    if (err.is_good()) return LC_OK;
    snprintf(why, whylen, "%s", err.get_message().c_str());
    return LC_ERR_UNSUPPORTED;
}

int lcg_engine_fwd_block(const lc_gpu_attn_desc *a, const void *q, const void *k, const void *v, float *o,
                         float *lse, cudaStream_t s) {
    lc_gpu_attn_engine *e = a->engine;
    if (e->resolved != LCG_ENGINE_CUDNN) return e->st.fwd_own++, LCG_USE_OWN;
    const int n = plan(e, a, 0);
    if (n < 0) return LCG_USE_OWN;
    Graph *gs[LCG_CUDNN_MAX_PIECES];
    int rc = graphs_for(e, a, n, FWD, gs, 0);
    if (rc) return rc; /* LCG_USE_OWN or an error */
    int maxq = 0;
    for (int i = 0; i < n; i++) maxq = e->pieces[i].nq > maxq ? e->pieces[i].nq : maxq;
    rc = e->part.ensure(2 * (size_t)maxq * a->hq * a->d, "cudaMalloc cuDNN partial o");
    if (!rc) rc = e->stats.ensure(4 * (size_t)maxq * a->hq, "cudaMalloc cuDNN stats");
    if (!rc && cudnnSetStream(e->h, s) != CUDNN_STATUS_SUCCESS) rc = lcg_fail(LC_ERR_SYS, "cudnnSetStream failed");
    for (int i = 0; i < n && !rc; i++) {
        const lcg_piece &p = e->pieces[i];
        Graph *g = gs[i];
        g->pack[1] = rows(q, p.q0, a->hq, a->d);
        g->pack[2] = rows(k, p.k0, a->hkv, a->d);
        g->pack[3] = rows(v, p.k0, a->hkv, a->d);
        g->pack[4] = e->part.p;
        g->pack[5] = e->stats.p;
        rc = exec(e, g, "SDPA forward");
        if (!rc)
            rc = lcg_cudnn_merge(o, lse, e->part.p, (const float *)e->stats.p, p.q0, p.nq, a->hq, a->d, a->dtype, s);
    }
    if (!rc) e->st.fwd_cudnn++;
    return rc;
}

int lcg_engine_bwd_prep(const lc_gpu_attn_desc *a, const float *o, const void *dout, cudaStream_t s) {
    lc_gpu_attn_engine *e = a->engine;
    if (e->resolved != LCG_ENGINE_CUDNN) return LCG_USE_OWN;
    const size_t n = (size_t)a->sq * a->hq * a->d;
    int rc = e->o16.ensure(2 * n, "cudaMalloc cuDNN 16-bit o");
    if (!rc) rc = lcg_cudnn_to16(o, e->o16.p, n, a->dtype, s);
    e->o16_rows = rc ? 0 : (size_t)a->sq;
    e->delta_o = rc ? nullptr : o;
    e->delta_dout = rc ? nullptr : dout;
    return rc;
}

int lcg_engine_bwd_block(const lc_gpu_attn_desc *a, const void *q, const void *k, const void *v, const void *dout,
                         const float *lse, float *dq, float *dk, float *dv, cudaStream_t s) {
    lc_gpu_attn_engine *e = a->engine;
    if (e->resolved != LCG_ENGINE_CUDNN) return e->st.bwd_own++, LCG_USE_OWN;
    if (e->o16_rows != (size_t)a->sq)
        return lcg_fail(LC_ERR_ARG, "lc_gpu_attn_bwd_block (cudnn engine): call lc_gpu_attn_bwd_prep with this "
                                    "engine first (cuDNN's backward reads the final o it keeps)");
    const int n = plan(e, a, 1);
    if (n < 0) return LCG_USE_OWN;
    Graph *gs[LCG_CUDNN_MAX_PIECES];
    int rc = graphs_for(e, a, n, BWD, gs, 1);
    if (rc) return rc; /* LCG_USE_OWN or an error */
    int maxq = 0, maxk = 0;
    for (int i = 0; i < n; i++) {
        maxq = e->pieces[i].nq > maxq ? e->pieces[i].nq : maxq;
        maxk = e->pieces[i].nk > maxk ? e->pieces[i].nk : maxk;
    }
    rc = e->stats.ensure(4 * (size_t)maxq * a->hq, "cudaMalloc cuDNN stats");
    if (!rc) rc = e->dq16.ensure(2 * (size_t)maxq * a->hq * a->d, "cudaMalloc cuDNN dq");
    if (!rc) rc = e->dk16.ensure(2 * (size_t)maxk * a->hkv * a->d, "cudaMalloc cuDNN dk");
    if (!rc) rc = e->dv16.ensure(2 * (size_t)maxk * a->hkv * a->d, "cudaMalloc cuDNN dv");
    if (!rc && cudnnSetStream(e->h, s) != CUDNN_STATUS_SUCCESS) rc = lcg_fail(LC_ERR_SYS, "cudnnSetStream failed");
    for (int i = 0; i < n && !rc; i++) {
        const lcg_piece &p = e->pieces[i];
        Graph *g = gs[i];
        rc = lcg_cudnn_lse_t(lse, (float *)e->stats.p, p.q0, p.nq, a->hq, s);
        if (rc) break;
        g->pack[1] = rows(q, p.q0, a->hq, a->d);
        g->pack[2] = rows(k, p.k0, a->hkv, a->d);
        g->pack[3] = rows(v, p.k0, a->hkv, a->d);
        g->pack[4] = rows(e->o16.p, p.q0, a->hq, a->d);
        g->pack[5] = rows(dout, p.q0, a->hq, a->d);
        g->pack[6] = e->stats.p;
        g->pack[7] = e->dq16.p;
        g->pack[8] = e->dk16.p;
        g->pack[9] = e->dv16.p;
        rc = exec(e, g, "SDPA backward");
        const size_t rq = (size_t)p.nq * a->hq * a->d, rk = (size_t)p.nk * a->hkv * a->d;
        if (!rc) rc = lcg_cudnn_add16(dq + (size_t)p.q0 * a->hq * a->d, e->dq16.p, rq, a->dtype, s);
        if (!rc) rc = lcg_cudnn_add16(dk + (size_t)p.k0 * a->hkv * a->d, e->dk16.p, rk, a->dtype, s);
        if (!rc) rc = lcg_cudnn_add16(dv + (size_t)p.k0 * a->hkv * a->d, e->dv16.p, rk, a->dtype, s);
    }
    if (!rc) e->st.bwd_cudnn++;
    return rc;
}

#else /* no cuDNN in this build: only OWN and AUTO handles exist, and both run our kernels */

int lcg_engine_fwd_block(const lc_gpu_attn_desc *a, const void *, const void *, const void *, float *, float *,
                         cudaStream_t) {
    a->engine->st.fwd_own++;
    return LCG_USE_OWN;
}
int lcg_engine_bwd_prep(const lc_gpu_attn_desc *, const float *, const void *, cudaStream_t) { return LCG_USE_OWN; }
int lcg_engine_bwd_block(const lc_gpu_attn_desc *a, const void *, const void *, const void *, const void *,
                         const float *, float *, float *, float *, cudaStream_t) {
    a->engine->st.bwd_own++;
    return LCG_USE_OWN;
}

extern "C" int lcg_cudnn_validate_piece(int, int, int, int, int, float, int, int, int, int, int, char *why, size_t whylen) {
    snprintf(why, whylen, "this build has no cuDNN engine: %s", LONGCTX_CUDNN_WHY);
    return LC_ERR_UNSUPPORTED;
}

#endif
