// The GPU ring's host code (src/cp/ring_gpu.cu, the real source: this target's include path
// puts tests/gpu/emu/ring first, whose cuda_runtime.h and gpu_arch.h are the CPU stand-ins)
// run on the CPU, with the real lc_attn_cuda table (src/attn/cuda/attn_iface.cu) over the
// stand-in entry points below: PEs are threads, streams are worker threads (cuda_emu_rt.h), the symmetric heap is one
// buffer per PE, NVSHMEM's put-with-signal / signal-op / waits are done by the stream
// workers, and the block kernels are the CPU library's (same contract). Random pauses shake
// the interleavings; a put into a range a PE is still reading (a kernel on a KV slot, or an
// outgoing put from it) is reported as a race. Checks that ring forward and backward equal
// one PE over the whole sequence, for 2-4 PEs, contiguous, zigzag and striped (S with padding
// rows too), several masks, three
// calls in a row (signals and credits carry over).
#include "ring_gpu.cu"
#include "attn_iface.cu"
#include "train/cuda/grad_allreduce.h"

#include <stdarg.h>
#include <stdio.h>

#include <barrier>
#include <cmath>
#include <memory>

#include "attn_check.h"
#include "longctx/attn.h"
#include "common/err.h"
#include "common/gpu_err.h"
#include "symm/gpu_agree.h"

/* ---------- error plumbing and attention entry points over the CPU library ---------- */
/* lcg_fail and lcg_cuda are the library's own (src/common); lc_gpu_last_error lives in the
 * CUDA kernels' library, which this build does not link. */
extern "C" const char *lc_gpu_last_error(void) { return lc__thread_error(); }
/* The device build's argument rules (attn_check.h), so the ring's call sequence is held to
 * what the GPU entry points accept. */
extern "C" int lc_gpu_attn_check(const lc_gpu_attn_desc *a, char *err, size_t errlen) {
    const char *why = lcg_attn_invalid(a, LCG_USES_BLOCK);
    if (why && err && errlen) snprintf(err, errlen, "%s", why);
    return why ? lcg_fail(LC_ERR_ARG, "lc_gpu_attn: %s", why) : LC_OK;
}
/* The engines: the emulated ring has only our kernels, so asking for another fails set-up on
 * that PE (the agreement test below relies on it). */
extern "C" int lc_gpu_attn_engine_create(lc_gpu_engine_kind kind, lc_gpu_attn_engine **out) {
    *out = NULL;
    return lcg_fail(LC_ERR_UNSUPPORTED, "lc_gpu_ring_create: engine %d: the emulated ring has only our kernels",
                    (int)kind);
}
extern "C" int lc_gpu_attn_engine_destroy(lc_gpu_attn_engine *) { return LC_OK; }
extern "C" int lc_gpu_attn_engine_stats(const lc_gpu_attn_engine *, lc_gpu_engine_stats *out) {
    memset(out, 0, sizeof *out);
    return LC_OK;
}
extern "C" const char *lc_gpu_engine_name(lc_gpu_engine_kind k) { return k == LC_GPU_ENGINE_CUDNN ? "cudnn" : "?"; }
extern "C" int lc_gpu_attn_engine_reserve(lc_gpu_attn_engine *, int, int, int, int, int) { return LC_OK; }
static int rules(const lc_gpu_attn_desc *a, int uses, const char *fn) {
    const char *why = lcg_attn_invalid(a, uses);
    return why ? lcg_fail(LC_ERR_ARG, "%s: %s", fn, why) : LC_OK;
}

struct Shared;
static Shared *g_sh;
static void read_begin(int pe, const void *p, size_t n);
static void read_end(int pe, const void *p, size_t n);
static thread_local int g_me = -1;

static lc_attn_desc cpu_desc(const lc_gpu_attn_desc *a) {
    lc_attn_desc d;
    memset(&d, 0, sizeof d);
    d.sq = a->sq; d.sk = a->sk; d.hq = a->hq; d.hkv = a->hkv; d.d = a->d;
    d.qkv_dtype = LC_DT_BF16; d.scale = a->scale; d.q_pos = a->q_pos; d.k_pos = a->k_pos;
    d.mask = a->mask; d.threads = 1; d.impl = LC_ATTN_AUTO;
    return d;
}
static void must(int rc, const char *what) {
    if (rc) {
        fprintf(stderr, "%s failed: %s\n", what, lc_attn_last_error());
        abort();
    }
}
extern "C" int lc_gpu_attn_fwd_init(const lc_gpu_attn_desc *a, float *o, float *lse, lc_gpu_stream s) {
    if (int rc = rules(a, LCG_USES_STATE, "lc_gpu_attn_fwd_init")) return rc;
    lc_attn_desc d = cpu_desc(a);
    emu_stream_op((cudaStream_t)s, [=] { lc_attn_fwd_init(&d, o, lse); });
    return LC_OK;
}
extern "C" int lc_gpu_attn_fwd_block(const lc_gpu_attn_desc *a, const void *q, const void *k, const void *v,
                                     float *o, float *lse, lc_gpu_stream s) {
    if (int rc = rules(a, LCG_USES_BLOCK, "lc_gpu_attn_fwd_block")) return rc;
    lc_attn_desc d = cpu_desc(a);
    const int me = g_me;
    const size_t kb = (size_t)a->sk * a->hkv * a->d * 2;
    emu_stream_op((cudaStream_t)s, [=] {
        read_begin(me, k, kb);
        read_begin(me, v, kb);
        std::this_thread::sleep_for(std::chrono::microseconds(100));
        must(lc_attn_fwd_block(&d, q, k, v, o, lse), "lc_attn_fwd_block");
        read_end(me, k, kb);
        read_end(me, v, kb);
    });
    return LC_OK;
}
extern "C" int lc_gpu_attn_fwd_finish(const lc_gpu_attn_desc *a, const float *o, void *out, lc_dtype out_dtype,
                                      lc_gpu_stream s) {
    if (int rc = rules(a, LCG_USES_STATE, "lc_gpu_attn_fwd_finish")) return rc;
    lc_attn_desc d = cpu_desc(a);
    emu_stream_op((cudaStream_t)s, [=] { must(lc_attn_fwd_finish(&d, o, out, out_dtype), "lc_attn_fwd_finish"); });
    return LC_OK;
}
extern "C" int lc_gpu_attn_bwd_prep(const lc_gpu_attn_desc *a, const float *o, const void *dout, float *delta,
                                    lc_gpu_stream s) {
    if (int rc = rules(a, LCG_USES_STATE, "lc_gpu_attn_bwd_prep")) return rc;
    lc_attn_desc d = cpu_desc(a);
    emu_stream_op((cudaStream_t)s, [=] { must(lc_attn_bwd_prep(&d, o, dout, delta), "lc_attn_bwd_prep"); });
    return LC_OK;
}
extern "C" int lc_gpu_attn_bwd_block(const lc_gpu_attn_desc *a, const void *q, const void *k, const void *v,
                                     const void *dout, const float *lse, const float *delta, float *dq,
                                     float *dk, float *dv, lc_gpu_stream s) {
    if (int rc = rules(a, LCG_USES_BLOCK, "lc_gpu_attn_bwd_block")) return rc;
    lc_attn_desc d = cpu_desc(a);
    const int me = g_me;
    const size_t kb = (size_t)a->sk * a->hkv * a->d * 2;
    emu_stream_op((cudaStream_t)s, [=] {
        read_begin(me, k, kb);
        read_begin(me, v, kb);
        std::this_thread::sleep_for(std::chrono::microseconds(100));
        must(lc_attn_bwd_block(&d, q, k, v, dout, lse, delta, dq, dk, dv), "lc_attn_bwd_block");
        read_end(me, k, kb);
        read_end(me, v, kb);
    });
    return LC_OK;
}

/* ---------- the emulated NVSHMEM world ---------- */
struct Shared {
    int n;
    size_t heap_bytes;
    std::vector<std::vector<unsigned char>> heap;
    std::vector<size_t> off;
    std::unique_ptr<std::barrier<>> bar;
    std::mutex rm;
    std::vector<std::vector<std::pair<uintptr_t, uintptr_t>>> reads; /* per PE, own addresses */
    std::atomic<int> races{0}, timeouts{0};
    std::vector<int64_t> agree; /* [2 * n]: each PE's (status, key) */
};

struct lc_gpu_world {
    int pe, n;
    std::atomic<int> failed{0};
    char err[256];
};

static void read_begin(int pe, const void *p, size_t n) {
    std::lock_guard<std::mutex> l(g_sh->rm);
    g_sh->reads[pe].push_back({(uintptr_t)p, (uintptr_t)p + n});
}
static void read_end(int pe, const void *p, size_t n) {
    std::lock_guard<std::mutex> l(g_sh->rm);
    auto &v = g_sh->reads[pe];
    for (size_t i = 0; i < v.size(); i++)
        if (v[i].first == (uintptr_t)p && v[i].second == (uintptr_t)p + n) {
            v.erase(v.begin() + (long)i);
            return;
        }
}
static void check_write(int pe, const void *p, size_t n) {
    std::lock_guard<std::mutex> l(g_sh->rm);
    for (auto &r : g_sh->reads[pe])
        if ((uintptr_t)p < r.second && r.first < (uintptr_t)p + n) {
            if (g_sh->races.fetch_add(1) < 5)
                fprintf(stderr, "RACE: a put into PE %d overwrites a range it is still reading\n", pe);
        }
}
static unsigned char *peer_addr(lc_gpu_world *w, const void *mine, int pe) {
    return g_sh->heap[pe].data() + ((const unsigned char *)mine - g_sh->heap[w->pe].data());
}

/* One put as a stream worker runs it: half now, a pause, the rest, so a reader racing with it
 * sees a torn block, and a write into a range PE pe is still reading is reported. */
static void torn_put(int me, int pe, unsigned char *d, const void *src, size_t bytes) {
    read_begin(me, src, bytes);
    check_write(pe, d, bytes);
    memcpy(d, src, bytes / 2);
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    check_write(pe, d, bytes);
    memcpy(d + bytes / 2, (const unsigned char *)src + bytes / 2, bytes - bytes / 2);
    read_end(me, src, bytes);
}

extern "C" int lc_gpu_my_pe(const lc_gpu_world *w) { return w->pe; }
extern "C" int lc_gpu_n_pes(const lc_gpu_world *w) { return w->n; }
extern "C" int lc_gpu_barrier_all(lc_gpu_world *) {
    g_sh->bar->arrive_and_wait();
    return LC_OK;
}
/* lc_gpu_agree's all-gather: write mine, meet, read all, meet again before anyone reuses it */
static int emu_agree(int me, int n, int status, uint32_t key, lc_gpu_agreement *out) {
    g_sh->agree[2 * (size_t)me] = status;
    g_sh->agree[2 * (size_t)me + 1] = key;
    g_sh->bar->arrive_and_wait();
    std::vector<int64_t> all(g_sh->agree);
    g_sh->bar->arrive_and_wait();
    lcg_agree_read(all.data(), n, out);
    return LC_OK;
}
extern "C" int lc_gpu_agree(lc_gpu_world *w, int status, uint32_t key, lc_gpu_agreement *out) {
    return emu_agree(w->pe, w->n, status, key, out);
}
extern "C" void *lc_gpu_symm_alloc(lc_gpu_world *w, size_t bytes) {
    size_t o = g_sh->off[w->pe];
    g_sh->off[w->pe] += (bytes + 255) & ~(size_t)255;
    g_sh->bar->arrive_and_wait(); /* collective even when this PE's heap is full */
    if (g_sh->off[w->pe] > g_sh->heap_bytes) return NULL;
    return g_sh->heap[w->pe].data() + o;
}
extern "C" int lc_gpu_symm_free(lc_gpu_world *, void *) {
    g_sh->bar->arrive_and_wait();
    return LC_OK;
}
extern "C" int lc_gpu_put_signal_on_stream(lc_gpu_world *w, void *dst, const void *src, size_t bytes, uint64_t *sig,
                                           uint64_t value, int op, int pe, lc_gpu_stream s) {
    unsigned char *d = peer_addr(w, dst, pe);
    uint64_t *sg = (uint64_t *)peer_addr(w, sig, pe);
    const int me = w->pe;
    emu_stream_op((cudaStream_t)s, [=] {
        torn_put(me, pe, d, src, bytes);
        std::atomic_ref<uint64_t> a(*sg);
        if (op == LC_SIGNAL_ADD) a.fetch_add(value);
        else a.store(value);
    });
    return LC_OK;
}
extern "C" int lc_gpu_signal_op_on_stream(lc_gpu_world *w, uint64_t *sig, uint64_t value, int op, int pe,
                                          lc_gpu_stream s) {
    uint64_t *sg = (uint64_t *)peer_addr(w, sig, pe);
    emu_stream_op((cudaStream_t)s, [=] {
        std::atomic_ref<uint64_t> a(*sg);
        if (op == LC_SIGNAL_ADD) a.fetch_add(value);
        else a.store(value);
    });
    return LC_OK;
}
int lcg_wait_count_on_stream(lc_gpu_world *w, uint64_t *sig, unsigned long long *count, int consume,
                             cudaStream_t s) {
    emu_stream_op(s, [=] {
        const unsigned long long target = *count + (consume ? 1 : 0);
        std::atomic_ref<uint64_t> a(*sig);
        auto t0 = std::chrono::steady_clock::now();
        while (a.load() < target) {
            if (w->failed.load()) return;
            if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(20)) {
                w->failed = 1;
                snprintf(w->err, sizeof w->err, "PE %d: wait for %llu timed out at %llu", w->pe, target,
                         (unsigned long long)a.load());
                g_sh->timeouts++;
                return;
            }
            std::this_thread::yield();
        }
        if (consume) *count = target;
    });
    return LC_OK;
}
extern "C" int lc_gpu_quiet_on_stream(lc_gpu_world *, lc_gpu_stream) { return LC_OK; }
/* A put without a signal; and the stream's barrier_all: the stream
 * worker meets every other PE's at the world barrier (the host threads wait on their streams). */
extern "C" int lc_gpu_put_on_stream(lc_gpu_world *w, void *dst, const void *src, size_t bytes, int pe,
                                    lc_gpu_stream s) {
    unsigned char *d = peer_addr(w, dst, pe);
    const int me = w->pe;
    emu_stream_op((cudaStream_t)s, [=] { torn_put(me, pe, d, src, bytes); });
    return LC_OK;
}
extern "C" int lc_gpu_barrier_all_on_stream(lc_gpu_world *, lc_gpu_stream s) {
    emu_stream_op((cudaStream_t)s, [] { g_sh->bar->arrive_and_wait(); });
    return LC_OK;
}

/* ---------- the emulated NCCL twin: buffered send, blocking receive, per (to, from) queue ---- */
struct lc_gpu_nccl {
    int pe, n;
};
struct Mailboxes {
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::deque<std::vector<unsigned char>>> q; /* [to * n + from] */
};
static Mailboxes *g_mb;
extern "C" int lc_gpu_nccl_rank(const lc_gpu_nccl *c) { return c->pe; }
extern "C" int lc_gpu_nccl_size(const lc_gpu_nccl *c) { return c->n; }
extern "C" int lc_gpu_nccl_agree(lc_gpu_nccl *c, int status, uint32_t key, lc_gpu_agreement *out) {
    return emu_agree(c->pe, c->n, status, key, out);
}
extern "C" int lc_gpu_nccl_permute(lc_gpu_nccl *c, int shift, const void *src, void *dst, size_t bytes,
                                   lc_gpu_stream s) {
    const int n = c->n, me = c->pe, to = ((me + shift) % n + n) % n, from = ((me - shift) % n + n) % n;
    emu_stream_op((cudaStream_t)s, [=] {
        read_begin(me, src, bytes);
        std::vector<unsigned char> msg((const unsigned char *)src, (const unsigned char *)src + bytes);
        read_end(me, src, bytes);
        std::unique_lock<std::mutex> l(g_mb->m);
        g_mb->q[(size_t)to * n + me].push_back(std::move(msg));
        g_mb->cv.notify_all();
        auto &in = g_mb->q[(size_t)me * n + from];
        if (!g_mb->cv.wait_for(l, std::chrono::seconds(20), [&] { return !in.empty(); })) {
            fprintf(stderr, "PE %d: NCCL receive from %d never matched\n", me, from);
            g_sh->timeouts++;
            return;
        }
        std::vector<unsigned char> got = std::move(in.front());
        in.pop_front();
        l.unlock();
        check_write(me, dst, bytes);
        memcpy(dst, got.data(), bytes);
    });
    return LC_OK;
}
extern "C" int lc_gpu_world_check(lc_gpu_world *w, lc_gpu_stream s) {
    cudaDeviceSynchronize();
    (void)s;
    return w->failed ? lcg_fail(LC_ERR_TIMEOUT, "%s", w->err) : LC_OK;
}

/* ---------- the test ---------- */
/* The emulated machine of one case (n PEs' heaps, their barrier, the NCCL mailboxes),
 * installed as g_sh and g_mb while it lives. */
struct EmuMachine {
    Mailboxes mb;
    Shared sh;
    EmuMachine(int n, size_t heap_bytes) {
        mb.q.resize((size_t)n * n);
        sh.n = n;
        sh.heap_bytes = heap_bytes;
        sh.heap.assign(n, std::vector<unsigned char>(heap_bytes));
        sh.off.assign(n, 0);
        sh.bar = std::make_unique<std::barrier<>>(n);
        sh.reads.assign(n, {});
        sh.agree.assign(2 * (size_t)n, 0);
        g_mb = &mb;
        g_sh = &sh;
    }
};

/* A PE thread's start: its stream emulation and its world handle. */
static void pe_begin(int pe, int n, lc_gpu_world *w) {
    g_me = pe;
    emu_pe_begin();
    g_emu_pe->id = pe;
    w->pe = pe;
    w->n = n;
    w->err[0] = 0;
}

struct Case {
    int n, S, hq, hkv, d;
    unsigned kind;
    int window, layout; /* lc_cp_layout: 0 contiguous, 1 zigzag, 2 striped */
    int two_sided;
    int dp = 0; /* > 1: dp rings of n PEs each in one world of dp x n (ring_pes), every one checked */
};

static float urand(uint64_t &s) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((s >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

static double rel(const float *a, const float *b, size_t n) {
    double m = 0, sc = 1e-3;
    for (size_t i = 0; i < n; i++) sc = std::max(sc, (double)std::fabs(b[i]));
    for (size_t i = 0; i < n; i++) m = std::max(m, std::isnan(a[i]) ? INFINITY : (double)std::fabs(a[i] - b[i]));
    return m / sc;
}

static bool run_case(const Case &c) {
    /* any S: sl padded rows per PE, padding rows at position -1 */
    const int S = c.S, n = c.n, d = c.d;
    int sl = -1;
    lc_cp_layout_positions((lc_cp_layout)c.layout, S, n, 0, NULL, &sl);
    const size_t rq = (size_t)c.hq * d, rk = (size_t)c.hkv * d;
    std::vector<uint16_t> q(S * rq), k(S * rk), v(S * rk), dout(S * rq);
    uint64_t s = 12345 + S + c.kind;
    for (auto &x : q) x = lc_f32_to_bf16(urand(s));
    for (auto &x : k) x = lc_f32_to_bf16(urand(s));
    for (auto &x : v) x = lc_f32_to_bf16(urand(s));
    for (auto &x : dout) x = lc_f32_to_bf16(urand(s));
    std::vector<int32_t> doc(S);
    for (int i = 0; i < S; i++) doc[i] = (i / 37) % 3 + i / 150;
    /* one PE over the whole sequence */
    lc_attn_desc a;
    memset(&a, 0, sizeof a);
    a.sq = a.sk = S; a.hq = c.hq; a.hkv = c.hkv; a.d = d; a.qkv_dtype = LC_DT_BF16; a.threads = 2;
    a.mask.kind = c.kind; a.mask.window = c.window; a.mask.q_doc = doc.data(); a.mask.k_doc = doc.data();
    std::vector<float> ro(S * rq), rl((size_t)S * c.hq), rdl((size_t)S * c.hq), rdq(S * rq, 0.f), rdk(S * rk, 0.f), rdv(S * rk, 0.f);
    lc_attn_fwd_init(&a, ro.data(), rl.data());
    must(lc_attn_fwd_block(&a, q.data(), k.data(), v.data(), ro.data(), rl.data()), "reference fwd");
    must(lc_attn_bwd_prep(&a, ro.data(), dout.data(), rdl.data()), "reference prep");
    must(lc_attn_bwd_block(&a, q.data(), k.data(), v.data(), dout.data(), rl.data(), rdl.data(), rdq.data(),
                           rdk.data(), rdv.data()), "reference bwd");

    const int dp = c.dp > 1 ? c.dp : 1, nw = n * dp;
    std::vector<int> ring_pes(nw);
    for (int i = 0; i < nw; i++) ring_pes[i] = i; /* replica r's ring: world PEs r*n .. r*n + n - 1 */
    EmuMachine m(nw, 64u << 20);
    Shared &sh = m.sh;
    std::atomic<int> bad{0};
    std::vector<std::thread> pes;
    for (int wpe = 0; wpe < nw; wpe++)
        pes.emplace_back([&, wpe] {
            const int pe = wpe % n; /* my rank in my ring */
            lc_gpu_world w;
            pe_begin(wpe, nw, &w);
            std::vector<int32_t> pos(sl), ldoc(sl);
            lc_cp_layout_positions((lc_cp_layout)c.layout, S, n, pe, pos.data(), NULL);
            std::vector<uint16_t> lq(sl * rq), lk(sl * rk), lv(sl * rk), ldo(sl * rq);
            for (int i = 0; i < sl; i++) {
                const size_t g = pos[i] >= 0 ? (size_t)pos[i] : 0; /* padding rows carry real-looking data */
                memcpy(&lq[i * rq], &q[g * rq], 2 * rq);
                memcpy(&ldo[i * rq], &dout[g * rq], 2 * rq);
                memcpy(&lk[i * rk], &k[g * rk], 2 * rk);
                memcpy(&lv[i * rk], &v[g * rk], 2 * rk);
                ldoc[i] = doc[g];
            }
            lc_gpu_nccl comm = {pe, n};
            lc_gpu_ring_opts o = {c.two_sided ? NULL : &w, sl, c.hq, c.hkv, d, LC_DT_BF16, 0.f, c.kind, c.window,
                                  c.two_sided ? LC_LOWER_TWO_SIDED : LC_LOWER_ONE_SIDED, &comm, 1,
                                  LC_GPU_ENGINE_OWN, LC_CP_CONTIGUOUS, 0, NULL, 0};
            if (dp > 1) o.ring_pes = ring_pes.data() + (size_t)(wpe / n) * n, o.n_ring = n;
            lc_gpu_ring *r = NULL;
            if (lc_gpu_ring_create(&o, &r)) {
                fprintf(stderr, "PE %d: ring create: %s\n", pe, lc_gpu_last_error());
                bad++;
                emu_pe_end();
                return;
            }
            cudaStream_t st;
            cudaStreamCreateWithFlags(&st, 0);
            for (int call = 0; call < 3; call++) {
                std::vector<float> oo(sl * rq), ll((size_t)sl * c.hq), dq(sl * rq, 0.f), dk(sl * rk, 0.f), dv(sl * rk, 0.f);
                int rc = lc_gpu_ring_fwd(r, lq.data(), lk.data(), lv.data(), pos.data(), pos.data(), ldoc.data(),
                                         ldoc.data(), oo.data(), ll.data(), call == 1 ? st : NULL);
                rc |= lc_gpu_ring_bwd(r, lq.data(), lk.data(), lv.data(), pos.data(), pos.data(), ldoc.data(),
                                      ldoc.data(), oo.data(), ll.data(), ldo.data(), dq.data(), dk.data(), dv.data(),
                                      call == 1 ? st : NULL);
                rc |= lc_gpu_world_check(&w, NULL);
                if (rc) {
                    fprintf(stderr, "PE %d call %d: %s\n", pe, call, lc_gpu_last_error());
                    bad++;
                    break;
                }
                std::vector<float> eo(sl * rq), el((size_t)sl * c.hq), edq(sl * rq), edk(sl * rk), edv(sl * rk);
                for (int i = 0; i < sl; i++) {
                    if (pos[i] < 0) { /* padding: no key, no gradient */
                        std::fill_n(&eo[i * rq], rq, 0.f); std::fill_n(&edq[i * rq], rq, 0.f);
                        std::fill_n(&edk[i * rk], rk, 0.f); std::fill_n(&edv[i * rk], rk, 0.f);
                        std::fill_n(&el[(size_t)i * c.hq], c.hq, -INFINITY);
                        continue;
                    }
                    memcpy(&eo[i * rq], &ro[(size_t)pos[i] * rq], 4 * rq);
                    memcpy(&edq[i * rq], &rdq[(size_t)pos[i] * rq], 4 * rq);
                    memcpy(&edk[i * rk], &rdk[(size_t)pos[i] * rk], 4 * rk);
                    memcpy(&edv[i * rk], &rdv[(size_t)pos[i] * rk], 4 * rk);
                    memcpy(&el[(size_t)i * c.hq], &rl[(size_t)pos[i] * c.hq], 4 * (size_t)c.hq);
                }
                double lerr = 0;
                for (size_t i = 0; i < el.size(); i++)
                    if (!(std::isinf(el[i]) && std::isinf(ll[i]))) lerr = std::max(lerr, (double)std::fabs(el[i] - ll[i]));
                const double e1 = rel(oo.data(), eo.data(), eo.size()), e2 = rel(dq.data(), edq.data(), edq.size()),
                             e3 = rel(dk.data(), edk.data(), edk.size()), e4 = rel(dv.data(), edv.data(), edv.size());
                const bool ok = e1 < 1e-4 && lerr < 1e-4 && e2 < 1e-4 && e3 < 1e-4 && e4 < 1e-4;
                if (!ok) {
                    fprintf(stderr, "PE %d call %d: o %.2e lse %.2e dq %.2e dk %.2e dv %.2e\n", pe, call, e1, lerr, e2,
                            e3, e4);
                    bad++;
                }
            }
            lc_gpu_ring_destroy(r);
            emu_pe_end();
        });
    for (auto &t : pes) t.join();
    const bool ok = !bad && !sh.races && !sh.timeouts;
    printf("%s ring %s n=%d dp=%d S=%d hq=%d hkv=%d d=%d mask=%u %s: %d PE errors, %d races, %d timeouts\n",
           ok ? "ok  " : "FAIL", c.two_sided ? "nccl" : "nvshmem", n, dp, S, c.hq, c.hkv, d, c.kind,
           c.layout == 1 ? "zigzag" : c.layout == 2 ? "striped" : "contig", bad.load(),
           sh.races.load(), sh.timeouts.load());
    fflush(stdout);
    return ok;
}

/* A PE whose options or setup differ: every PE's lc_gpu_ring_create must return an error
 * (none may wait in a collective for the PE that failed), the odd PE with its own reason and
 * the others with one naming it. A watchdog turns a hang into a failure. */
struct FailCase {
    const char *what;
    int n, odd, two_sided;
    void (*mutate)(lc_gpu_ring_opts *o);
    const char *odd_says, *others_say;
};

static bool run_fail_case(const FailCase &c) {
    const int n = c.n, sl = 64;
    EmuMachine m(n, 16u << 20);
    std::atomic<int> bad{0}, done{0};
    std::vector<std::thread> pes;
    for (int pe = 0; pe < n; pe++)
        pes.emplace_back([&, pe] {
            lc_gpu_world w;
            pe_begin(pe, n, &w);
            lc_gpu_nccl comm = {pe, n};
            lc_gpu_ring_opts o = {c.two_sided ? NULL : &w, sl, 2, 1, 64, LC_DT_BF16, 0.f, LC_MASK_CAUSAL, 0,
                                  c.two_sided ? LC_LOWER_TWO_SIDED : LC_LOWER_ONE_SIDED, &comm, 0,
                                  LC_GPU_ENGINE_OWN, LC_CP_CONTIGUOUS, 0, NULL, 0};
            if (pe == c.odd) c.mutate(&o);
            lc_gpu_ring *r = NULL;
            int rc = lc_gpu_ring_create(&o, &r);
            const char *want = pe == c.odd ? c.odd_says : c.others_say;
            if (!rc || r || !strstr(lc_gpu_last_error(), want)) {
                fprintf(stderr, "PE %d: rc %d, ring %p, error '%s', wanted an error with '%s'\n", pe, rc, (void *)r,
                        rc ? lc_gpu_last_error() : "", want);
                bad++;
            }
            if (r) lc_gpu_ring_destroy(r);
            emu_pe_end();
            done++;
        });
    for (int t = 0; t < 200 && done < n; t++) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (done < n) {
        printf("FAIL setup %s: %d of %d PEs still inside lc_gpu_ring_create after 20 s (a hang)\n", c.what, n - done.load(), n);
        fflush(stdout);
        _exit(1);
    }
    for (auto &t : pes) t.join();
    printf("%s setup %s (%s, %d PEs): %d PEs answered wrongly\n", bad ? "FAIL" : "ok  ", c.what,
           c.two_sided ? "nccl" : "nvshmem", n, bad.load());
    fflush(stdout);
    return !bad;
}

/* The GPU trainer's gradient all-reduce (src/train/cuda/grad_allreduce.h) over the stand-in:
 * several calls in a row, each PE's gradients different every call, every PE's result bit for
 * bit the rank-ordered sum; the sum reads its slots as a marked range, so a put of the next call
 * landing in a slot still being summed is reported as a race. */
static int sum_on_stream(void *, const float *slots, int P, size_t n, float *g, void *stream) {
    const int me = g_me;
    emu_stream_op((cudaStream_t)stream, [=] {
        read_begin(me, slots, sizeof(float) * n * P);
        for (size_t i = 0; i < n; i++) {
            float a = slots[i];
            for (int r = 1; r < P; r++) a += slots[(size_t)r * n + i];
            g[i] = a;
            /* the higher PEs sum slower: a put of the next call that does not wait for them lands mid-sum */
            if (i == n / 2) std::this_thread::sleep_for(std::chrono::microseconds(200 + 2000 * me));
        }
        read_end(me, slots, sizeof(float) * n * P);
    });
    return LC_OK;
}
static float grad_value(int pe, int call, size_t i) {
    uint64_t s = 0x9e3779b97f4a7c15ull * (uint64_t)(pe + 1) + 7919u * (uint64_t)call + i;
    s ^= s >> 29, s *= 0xbf58476d1ce4e5b9ull, s ^= s >> 32;
    return (float)((double)(s >> 11) / 9007199254740992.0 - 0.5) * (float)(1 + (i % 7) * 1000); /* order matters */
}
static bool run_allreduce(int n, size_t len) {
    EmuMachine m(n, 64u << 20);
    std::atomic<int> bad{0};
    std::vector<std::thread> pes;
    for (int pe = 0; pe < n; pe++)
        pes.emplace_back([&, pe] {
            lc_gpu_world w;
            pe_begin(pe, n, &w);
            float *slots = (float *)lc_gpu_symm_alloc(&w, sizeof(float) * len * n);
            std::vector<float> g(len);
            cudaStream_t st;
            cudaStreamCreateWithFlags(&st, 0);
            for (int call = 0; call < 4 && slots; call++) {
                for (size_t i = 0; i < len; i++) g[i] = grad_value(pe, call, i);
                if (lc_grad_allreduce(&w, slots, g.data(), len, call == 2 ? NULL : st, sum_on_stream, NULL)) bad++;
                cudaStreamSynchronize(call == 2 ? NULL : st);
                for (size_t i = 0; i < len; i++) {
                    float e = grad_value(0, call, i);
                    for (int r = 1; r < n; r++) e += grad_value(r, call, i);
                    if (memcmp(&e, &g[i], 4)) {
                        if (bad++ < 3) fprintf(stderr, "PE %d call %d: g[%zu] = %.9g, the rank-ordered sum is %.9g\n", pe,
                                               call, i, (double)g[i], (double)e);
                    }
                }
            }
            if (!slots) bad++;
            emu_pe_end();
        });
    for (auto &t : pes) t.join();
    const bool ok = !bad && !m.sh.races && !m.sh.timeouts;
    printf("%s gradient all-reduce n=%d, %zu floats, 4 calls: %d errors, %d races\n", ok ? "ok  " : "FAIL", n, len,
           bad.load(), m.sh.races.load());
    fflush(stdout);
    return ok;
}

int main() {
    g_emu_jitter_us = 300;
    g_emu_read_begin = read_begin;
    g_emu_read_end = read_end;
    const Case cases[] = {
        {2, 128, 2, 1, 64, LC_MASK_CAUSAL, 0, 1, 0},
        {3, 192, 2, 2, 64, 0, 0, 0, 0},
        {4, 256, 4, 2, 64, LC_MASK_CAUSAL, 0, 1, 0},
        {4, 256, 2, 1, 64, LC_MASK_DOC | LC_MASK_CAUSAL, 0, 0, 0},
        {3, 192, 2, 1, 64, LC_MASK_WINDOW | LC_MASK_CAUSAL, 40, 1, 0},
        {2, 128, 2, 1, 64, LC_MASK_CAUSAL, 0, 1, 1},
        {4, 256, 4, 2, 64, LC_MASK_CAUSAL | LC_MASK_DOC, 0, 1, 1},
        {3, 192, 2, 2, 64, 0, 0, 0, 1},
        /* S that no layout divides (padding rows on the last PEs), and striped */
        {4, 253, 4, 2, 64, LC_MASK_CAUSAL, 0, 1, 0},
        {3, 187, 2, 1, 64, LC_MASK_DOC | LC_MASK_CAUSAL, 0, 2, 0},
        {2, 129, 2, 2, 64, LC_MASK_WINDOW | LC_MASK_CAUSAL, 30, 0, 0},
        {4, 256, 4, 2, 64, LC_MASK_CAUSAL, 0, 2, 0},
        {3, 190, 2, 1, 64, LC_MASK_CAUSAL, 0, 2, 1},
        /* DP x CP: two rings of 2 and of 3 in one world (ring_pes) */
        {2, 128, 2, 1, 64, LC_MASK_CAUSAL, 0, 1, 0, 2},
        {3, 187, 2, 2, 64, LC_MASK_CAUSAL | LC_MASK_DOC, 0, 2, 0, 2},
    };
    int ok = 0, total = 0;
    for (const Case &c : cases) {
        total++;
        ok += run_case(c);
    }
    const FailCase fails[] = {
        {"one PE asks for the cuDNN engine", 3, 1, 0, [](lc_gpu_ring_opts *o) {
             /* a layout and S that match s_local, so set-up reaches the engine itself */
             o->engine = LC_GPU_ENGINE_CUDNN;
             o->s_global = (int64_t)o->s_local * lc_gpu_n_pes(o->world);
         },
         "the emulated ring has only our kernels", "PE 1 of 3 failed its part of the argument and engine setup"},
        {"one PE has other heads", 4, 2, 0, [](lc_gpu_ring_opts *o) { o->hq = 4; },
         "the PEs disagree on the ring's options", "the PEs disagree on the ring's options (PE 0's fingerprint"},
        {"one PE's head_dim is refused", 2, 0, 1, [](lc_gpu_ring_opts *o) { o->d = 40; },
         "lc_gpu_ring_create: head dim must be 64 or 128", "PE 0 of 2 failed its part of the argument and engine setup"},
        {"one PE's symmetric heap is full", 3, 2, 0, [](lc_gpu_ring_opts *o) { g_sh->off[2] = g_sh->heap_bytes; },
         "the symmetric heap has no room", "PE 2 of 3 failed its part of the allocations"},
    };
    for (const FailCase &c : fails) {
        total++;
        ok += run_fail_case(c);
    }
    for (int n : {2, 3, 4}) {
        total++;
        ok += run_allreduce(n, 4099);
    }
    printf("test_ring_emu: %d/%d cases passed\n", ok, total);
    return ok == total ? 0 : 1;
}
