/* Ring attention on GPUs over the NVSHMEM backend.
 *
 * Every PE keeps its Q shard; KV blocks (K, V and their positions / document ids, packed in
 * one slot) travel one hop per step through two slots in the symmetric heap. While the
 * compute stream works on slot b, a second stream puts slot b straight into the
 * successor's other slot with a signal; the receiver's kernel stream waits on that signal.
 * After the compute and the outgoing put are done with slot b, the PE returns a credit to
 * its predecessor, which waits for it before overwriting that slot: double buffer plus
 * credits, no barrier per step.
 *
 * Signals count: every put-with-signal and every credit ADDs 1, and each wait compares the
 * signal with a counter in device memory (arrivals consumed, slot uses, puts sent). Nothing
 * is reset between calls, no step number is baked into any call, so a whole ring call can be
 * captured as a CUDA graph and replayed. A PE credits its predecessor after every use of a KV
 * slot (its own block copied in at step 0 counts as a use), and a sender waits until the
 * credits for the successor's slot reach its own count of uses of that slot: all PEs run the
 * same step sequence, so the two counts name the same steps.
 *
 * Backward: the KV blocks travel the same way; the fp32 dK/dV of each block travel with it,
 * one step behind: a PE adds its contribution to the accumulator that arrived (computed
 * into a local buffer first, so the arrival overlaps the kernel) and sends it on; after the
 * last step the accumulator takes one more hop home. Partials stay fp32 all the way.
 *
 * The two-sided twin (LC_LOWER_TWO_SIDED) moves the same slots with ncclSend/ncclRecv in
 * one group per exchange on the comm stream; the rendezvous replaces signals and credits,
 * and events order the receive into a slot after the kernel that last read it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The runtime and the ring's two stream operations (stream_add, stream_bump) come from the
 * build's architecture header: the real one, or the CPU stand-in of the emulated ring test
 * (tests/gpu/emu/ring), chosen by the include path; this source is the same in both. */
#include <cuda_runtime.h>

#include "cp/core.h" /* layout map, ring schedule, slot format, set-up fingerprint */
#include "gpu_arch.h"
#include "common/gpu_err.h"
#include "longctx/gpu.h"
#include "symm/gpu_err.h" /* lcg_wait_count_on_stream */

/* Padded rows per PE of a layout (the ring's s_local), or -1 for a bad argument. */
static int layout_rows(lc_cp_layout l, int64_t s_global, int n_pes) {
    int np = -1;
    return lc_layout_positions(l, s_global, n_pes, 0, NULL, &np) < 0 ? -1 : np;
}

enum { SIG_KV = 0, SIG_KV_CREDIT = 2, SIG_DKV = 4, SIG_DKV_CREDIT = 6, SIG_FIN = 8,
       SIG_FIN_CREDIT = 9, SIG_COUNT = 16 };
/* device counters (local, not symmetric) */
enum { C_KV_FILL = 0, C_KV_USE = 2, C_DKV_FILL = 4, C_DKV_SENT = 6, C_FIN_FILL = 8, C_FIN_SENT = 9,
       C_COUNT = 16 };

enum { N_KEY = 13 };
struct graph_slot {
    cudaGraphExec_t exec;
    const void *key[N_KEY];
    int valid;
};

struct lc_gpu_ring {
    lc_gpu_ring_opts o;
    lc_gpu_world *w;
    int two_sided;
    lc_gpu_nccl *nc;
    cudaEvent_t recvd, drecvd;
    int me, n, next, prev;
    size_t kbytes;                             /* K (= V) bytes of a slot */
    lc_cp_slot_fmt fmt;                        /* KV slot layout (cp/core.h) */
    size_t dkv_elems;                          /* floats of dK (= of dV) */
    unsigned char *kv;                         /* symmetric: 2 slots */
    float *dkv;                                /* symmetric: 3 slots of dK|dV (2 + final) */
    uint64_t *sig;                             /* symmetric: SIG_COUNT words */
    unsigned long long *cnt;                   /* local device counters */
    float *dloc;                               /* local: 2 slots of dK|dV */
    float *delta;                              /* local: [s_local, hq] */
    cudaStream_t cs;
    cudaEvent_t ready, sent, added, dsent[2];
    unsigned parity; /* parity of the next call's first step */
    graph_slot graphs[2][2]; /* [fwd/bwd][parity] */
    int graph_used;
    char graph_why[200];
    const lc_attn_iface *attn; /* the block kernels: lc_attn_cuda */
    lc_gpu_attn_engine *eng; /* NULL: our kernels */
    int32_t *pos_host;       /* engine: every PE's positions, [n][s_local], host */
};

static int add(float *dst, const float *src, size_t n, cudaStream_t s) {
    return lcg_cuda((cudaError_t)lcg::stream_add(dst, src, n, s), "ring add kernel");
}
static int bump(unsigned long long *c, cudaStream_t s) {
    return lcg_cuda((cudaError_t)lcg::stream_bump(c, s), "ring counter kernel");
}

#define TRY(x)                 \
    do {                       \
        int rc_ = (x);         \
        if (rc_) return rc_;   \
    } while (0)

/* The attention engine of the block calls: the cuDNN engine plans blocks on the host, so the
 * ring keeps every PE's positions (from the layout) to hand it those of each step's block. */
static int engine_setup(lc_gpu_ring *r) {
    const lc_gpu_ring_opts *o = &r->o;
    if (o->engine != LC_GPU_ENGINE_CUDNN) /* auto (runs our kernels until measured) needs no positions */
        return lc_gpu_attn_engine_create(o->engine, &r->eng);
    if (o->s_global < 1 || layout_rows(o->layout, o->s_global, r->n) != o->s_local)
        return lcg_fail(LC_ERR_ARG, "lc_gpu_ring_create: engine %s needs the layout and s_global the shards came "
                        "from (layout %d, s_global %lld give %d rows per PE, s_local is %d)",
                        lc_gpu_engine_name(o->engine), (int)o->layout, (long long)o->s_global,
                        o->s_global >= 1 ? layout_rows(o->layout, o->s_global, r->n) : -1, o->s_local);
    r->pos_host = (int32_t *)malloc(sizeof(int32_t) * (size_t)r->n * o->s_local);
    if (!r->pos_host) return lcg_fail(LC_ERR_NOMEM, "out of memory");
    for (int pe = 0; pe < r->n; pe++)
        lc_layout_positions(o->layout, o->s_global, r->n, pe, r->pos_host + (size_t)pe * o->s_local, NULL);
    TRY(lc_gpu_attn_engine_create(o->engine, &r->eng));
    int rc = lc_gpu_attn_engine_reserve(r->eng, o->s_local, o->s_local, o->hq, o->hkv, o->d);
    if (rc) {
        lc_gpu_attn_engine_destroy(r->eng);
        r->eng = NULL;
    }
    return rc;
}

extern "C" int lc_gpu_ring_engine_stats(const lc_gpu_ring *r, lc_gpu_engine_stats *out) {
    if (!r || !out) return lcg_fail(LC_ERR_ARG, "lc_gpu_ring_engine_stats: ring or out is NULL");
    if (!r->eng) {
        memset(out, 0, sizeof *out);
        return LC_OK;
    }
    return lc_gpu_attn_engine_stats(r->eng, out);
}

/* What must be the same on every PE of the ring (the set-up record of cp/core.h, the one the
 * CPU plan agrees on): the slot sizes and the call sequence follow from it, so PEs that differ
 * would allocate different symmetric sizes or wait on blocks that never come. */
static lc_cp_setup ring_setup(const lc_gpu_ring_opts *o) {
    lc_cp_setup s;
    lc_cp_setup_init(&s, o->s_global, o->hq, o->hkv, o->d, (int)o->dtype, (int)o->layout, o->mask_kind, o->window,
                     o->scale, LC_CP_RING, (int)o->lowering);
    s.f[LC_CP_SETUP_ROWS] = o->s_local;
    s.f[LC_CP_SETUP_ENGINE] = (int64_t)o->engine;
    s.f[LC_CP_SETUP_GRAPH] = o->use_graph != 0;
    return s;
}

/* Every PE learns whether every PE's part of the setup worked. A PE that failed keeps its
 * own error; the others get one naming it. Returns the status all PEs now share. */
static int ring_agree(const lc_gpu_ring_opts *o, int two, int me, int n, int rc, const char *stage) {
    lc_gpu_agreement ag;
    const lc_cp_setup setup = ring_setup(o);
    const uint32_t key = lc_cp_setup_fingerprint(&setup);
    int arc = two ? lc_gpu_nccl_agree(o->nccl, rc, key, &ag) : lc_gpu_agree(o->world, rc, key, &ag);
    if (arc) return rc ? rc : arc; /* the exchange broke: the world is gone, nothing to wait for */
    if (rc) return rc;
    if (ag.bad_pe >= 0)
        return lcg_fail(ag.bad_status, "lc_gpu_ring_create: PE %d of %d failed its part of the %s (status %d; its "
                        "own error says why), so no PE keeps a ring", ag.bad_pe, n, stage, ag.bad_status);
    if (ag.key_pe >= 0) {
        char mine[512];
        lc_cp_setup_str(&setup, mine, sizeof mine);
        return lcg_fail(LC_ERR_MISMATCH, "lc_gpu_ring_create: the PEs disagree on the ring's options (PE 0's "
                        "fingerprint %08x, PE %d's %08x; mine on PE %d: %s): they must be the same on every PE",
                        ag.key0, ag.key_pe, ag.key_bad, me, mine);
    }
    return LC_OK;
}

extern "C" int lc_gpu_ring_create(const lc_gpu_ring_opts *o, lc_gpu_ring **out) {
    if (!o || !out) return lcg_fail(LC_ERR_ARG, "lc_gpu_ring_create: opts or out is NULL");
    *out = NULL;
    const int two = o->lowering == LC_LOWER_TWO_SIDED;
    if (two && !o->nccl) return lcg_fail(LC_ERR_ARG, "lc_gpu_ring_create: TWO_SIDED needs an NCCL communicator");
    if (!two && !o->world) return lcg_fail(LC_ERR_ARG, "lc_gpu_ring_create: ONE_SIDED needs an NVSHMEM world");
    const int wn = two ? lc_gpu_nccl_size(o->nccl) : lc_gpu_n_pes(o->world);
    int me = two ? lc_gpu_nccl_rank(o->nccl) : lc_gpu_my_pe(o->world), n = wn, rc = LC_OK;
    /* From here on every failure is local to one PE: each PE goes on to the agreements below,
     * so that none is left waiting in a collective (an allocation, a barrier, a permute) for
     * a PE that returned early. */
    if (!two && o->ring_pes) { /* a ring over some of the world's PEs (a CP team beside others) */
        int mine = -1, ok = o->n_ring >= 1 && o->n_ring <= wn;
        for (int i = 0; ok && i < o->n_ring; i++) {
            ok = o->ring_pes[i] >= 0 && o->ring_pes[i] < wn;
            for (int j = 0; ok && j < i; j++) ok = o->ring_pes[j] != o->ring_pes[i];
            if (ok && o->ring_pes[i] == me) mine = i;
        }
        if (!ok || mine < 0)
            rc = lcg_fail(LC_ERR_ARG, "lc_gpu_ring_create: ring_pes must list %d distinct PEs of the world's %d, this "
                          "PE (%d) among them", o->n_ring, wn, me);
        else
            me = mine, n = o->n_ring;
    }
    lc_gpu_attn_desc a;
    memset(&a, 0, sizeof a);
    a.sq = a.sk = o->s_local;
    a.hq = o->hq; a.hkv = o->hkv; a.d = o->d; a.dtype = o->dtype; a.scale = o->scale;
    a.mask.kind = o->mask_kind; a.mask.window = o->window;
    static const int32_t dummy = 0; /* the check wants doc pointers; the ring passes real ones */
    a.mask.q_doc = a.mask.k_doc = &dummy;
    char err[160];
    if (!rc && lc_gpu_attn_check(&a, err, sizeof err)) rc = lcg_fail(LC_ERR_ARG, "lc_gpu_ring_create: %s", err);

    lc_gpu_ring *r = NULL;
    if (!rc) {
        r = (lc_gpu_ring *)calloc(1, sizeof *r);
        if (!r) rc = lcg_fail(LC_ERR_NOMEM, "out of memory");
    }
    if (r) {
        r->o = *o;
        r->w = o->world;
        r->two_sided = two;
        r->nc = o->nccl;
        r->me = me;
        r->n = n;
        /* the neighbours as world PEs: puts and signals address the world */
        r->next = lc_ring_next(r->me, r->n);
        r->prev = lc_ring_prev(r->me, r->n);
        if (!two && o->ring_pes) r->next = o->ring_pes[r->next], r->prev = o->ring_pes[r->prev];
        r->attn = &lc_attn_cuda;
        r->kbytes = (size_t)o->s_local * o->hkv * o->d * lc_dtype_size(o->dtype);
        r->fmt = lc_cp_slot_format(r->kbytes, (size_t)o->s_local);
        r->dkv_elems = (size_t)o->s_local * o->hkv * o->d;
        snprintf(r->graph_why, sizeof r->graph_why, "%s", o->use_graph ? "not called yet" : "use_graph is off");
        if (o->engine != LC_GPU_ENGINE_OWN) rc = engine_setup(r);
    }
    /* first agreement: arguments, options and engines, before any collective allocation */
    rc = ring_agree(o, two, me, wn, rc, "argument and engine setup");
    if (rc) {
        if (r) {
            if (r->eng) lc_gpu_attn_engine_destroy(r->eng);
            free(r->pos_host);
            free(r);
        }
        return rc;
    }

    if (two) {
        rc = lcg_cuda(cudaMalloc(&r->kv, 2 * r->fmt.bytes), "cudaMalloc KV slots");
        if (!rc) rc = lcg_cuda(cudaMalloc(&r->dkv, 3 * 2 * r->dkv_elems * sizeof(float)), "cudaMalloc dK/dV slots");
    } else {
        /* collective allocations, in the same order on every PE */
        r->kv = (unsigned char *)lc_gpu_symm_alloc(r->w, 2 * r->fmt.bytes);
        r->dkv = (float *)lc_gpu_symm_alloc(r->w, 3 * 2 * r->dkv_elems * sizeof(float));
        r->sig = (uint64_t *)lc_gpu_symm_alloc(r->w, SIG_COUNT * sizeof(uint64_t));
        if (!r->kv || !r->dkv || !r->sig)
            rc = lcg_fail(LC_ERR_NOMEM, "lc_gpu_ring_create: the symmetric heap has no room for the KV, dK/dV "
                          "and signal slots (%zu bytes)", 2 * r->fmt.bytes + 6 * r->dkv_elems * sizeof(float));
        if (!rc) rc = lcg_cuda(cudaMemset(r->sig, 0, SIG_COUNT * sizeof(uint64_t)), "memset signals");
    }
    if (!rc) rc = lcg_cuda(cudaMalloc(&r->cnt, C_COUNT * sizeof(unsigned long long)), "cudaMalloc counters");
    if (!rc) rc = lcg_cuda(cudaMemset(r->cnt, 0, C_COUNT * sizeof(unsigned long long)), "memset counters");
    if (!rc) rc = lcg_cuda(cudaMalloc(&r->dloc, 2 * 2 * r->dkv_elems * sizeof(float)), "cudaMalloc dK/dV");
    if (!rc) rc = lcg_cuda(cudaMalloc(&r->delta, (size_t)o->s_local * o->hq * sizeof(float)), "cudaMalloc delta");
    if (!rc) rc = lcg_cuda(cudaStreamCreateWithFlags(&r->cs, cudaStreamNonBlocking), "stream");
    cudaEvent_t *evs[] = {&r->ready, &r->sent, &r->added, &r->dsent[0], &r->dsent[1], &r->recvd, &r->drecvd};
    for (int i = 0; i < 7 && !rc; i++)
        rc = lcg_cuda(cudaEventCreateWithFlags(evs[i], cudaEventDisableTiming), "event");
    if (!rc) rc = lcg_cuda(cudaDeviceSynchronize(), "ring setup");
    /* Second agreement, also the barrier the first signals need: a PE leaves it only after
     * every PE entered it, that is after every PE's signal words were zeroed. */
    rc = ring_agree(o, two, me, wn, rc, "allocations");
    if (rc) {
        lc_gpu_ring_destroy(r); /* collective frees: every PE is here */
        return rc;
    }
    *out = r;
    return LC_OK;
}

extern "C" int lc_gpu_ring_destroy(lc_gpu_ring *r) {
    if (!r) return LC_OK;
    cudaDeviceSynchronize();
    if (!r->two_sided) lc_gpu_barrier_all(r->w);
    for (int d = 0; d < 2; d++)
        for (int p = 0; p < 2; p++)
            if (r->graphs[d][p].valid) cudaGraphExecDestroy(r->graphs[d][p].exec);
    if (r->two_sided) {
        cudaFree(r->kv);
        cudaFree(r->dkv);
    } else {
        /* collective: every PE frees all three, also a NULL one its full heap refused */
        lc_gpu_symm_free(r->w, r->sig);
        lc_gpu_symm_free(r->w, r->dkv);
        lc_gpu_symm_free(r->w, r->kv);
    }
    cudaFree(r->cnt);
    cudaFree(r->dloc);
    cudaFree(r->delta);
    cudaEvent_t evs[] = {r->ready, r->sent, r->added, r->dsent[0], r->dsent[1], r->recvd, r->drecvd};
    for (int i = 0; i < 7; i++)
        if (evs[i]) cudaEventDestroy(evs[i]);
    if (r->cs) cudaStreamDestroy(r->cs);
    if (r->eng) lc_gpu_attn_engine_destroy(r->eng);
    free(r->pos_host);
    free(r);
    return LC_OK;
}

extern "C" int lc_gpu_ring_graph_status(const lc_gpu_ring *r, const char **why) {
    if (why) *why = r->graph_why;
    return r->graph_used;
}

static int check_inputs(lc_gpu_ring *r, const int32_t *q_pos, const int32_t *k_pos,
                        const int32_t *q_doc, const int32_t *k_doc) {
    if (!q_pos || !k_pos)
        return lcg_fail(LC_ERR_ARG, "lc_gpu_ring: q_pos and k_pos are required (global positions of my shard)");
    if ((r->o.mask_kind & LC_MASK_DOC) && (!q_doc || !k_doc))
        return lcg_fail(LC_ERR_ARG, "lc_gpu_ring: the document mask needs q_doc and k_doc");
    return LC_OK;
}

/* The block call's descriptor for the interface (lc_attn_iface); src: the PE whose KV block
 * the slot holds (the engine reads its host positions through ext). */
static lc_attn_desc desc_for(lc_gpu_ring *r, const int32_t *q_pos, const int32_t *q_doc,
                             const unsigned char *slot, int src, lc_gpu_attn_ext *ext) {
    lc_attn_desc a;
    memset(&a, 0, sizeof a);
    a.sq = a.sk = r->o.s_local;
    a.hq = r->o.hq; a.hkv = r->o.hkv; a.d = r->o.d; a.qkv_dtype = r->o.dtype; a.scale = r->o.scale;
    a.q_pos = q_pos;
    a.k_pos = (const int32_t *)(slot + r->fmt.pos);
    a.mask.kind = r->o.mask_kind;
    a.mask.window = r->o.window;
    a.mask.q_doc = q_doc;
    a.mask.k_doc = (const int32_t *)(slot + r->fmt.doc);
    memset(ext, 0, sizeof *ext);
    if (r->eng) {
        ext->engine = r->eng;
        ext->q_pos_host = r->pos_host + (size_t)r->me * r->o.s_local;
        ext->k_pos_host = r->pos_host + (size_t)src * r->o.s_local;
        a.dev = ext;
    }
    return a;
}

/* Step st of the KV path (slot b), up to the point where slot b holds the block: step 0
 * copies my own block in, later steps consume the predecessor's put; then the forwarding put
 * to the successor's other slot starts on the comm stream once the successor has credited
 * every earlier use of that slot. */
static int kv_step_begin(lc_gpu_ring *r, int st, int b, const void *k, const void *v,
                         const int32_t *k_pos, const int32_t *k_doc, cudaStream_t xs) {
    unsigned char *slot = r->kv + b * r->fmt.bytes;
    if (st == 0) {
        TRY(lcg_cuda(cudaMemcpyAsync(slot, k, r->kbytes, cudaMemcpyDeviceToDevice, xs), "copy K"));
        TRY(lcg_cuda(cudaMemcpyAsync(slot + r->fmt.v, v, r->kbytes, cudaMemcpyDeviceToDevice, xs), "copy V"));
        TRY(lcg_cuda(cudaMemcpyAsync(slot + r->fmt.pos, k_pos, (size_t)r->o.s_local * 4,
                                     cudaMemcpyDeviceToDevice, xs), "copy k_pos"));
        if (k_doc)
            TRY(lcg_cuda(cudaMemcpyAsync(slot + r->fmt.doc, k_doc, (size_t)r->o.s_local * 4,
                                         cudaMemcpyDeviceToDevice, xs), "copy k_doc"));
    } else {
        TRY(lcg_wait_count_on_stream(r->w, r->sig + SIG_KV + b, r->cnt + C_KV_FILL + b, 1, xs));
    }
    if (st < r->n - 1) {
        const int nb = b ^ 1;
        TRY(lcg_cuda(cudaEventRecord(r->ready, xs), "event"));
        TRY(lcg_cuda(cudaStreamWaitEvent(r->cs, r->ready, 0), "event wait"));
        TRY(lcg_wait_count_on_stream(r->w, r->sig + SIG_KV_CREDIT + nb, r->cnt + C_KV_USE + nb, 0, r->cs));
        TRY(lc_gpu_put_signal_on_stream(r->w, r->kv + nb * r->fmt.bytes, slot, r->fmt.bytes,
                                        r->sig + SIG_KV + nb, 1, LC_SIGNAL_ADD, r->next, r->cs));
        TRY(lcg_cuda(cudaEventRecord(r->sent, r->cs), "event"));
    }
    return LC_OK;
}

/* After the step's kernel: once my own forwarding put has read slot b too, count the use and
 * credit the predecessor for it. */
static int kv_step_end(lc_gpu_ring *r, int st, int b, cudaStream_t xs) {
    if (st < r->n - 1) TRY(lcg_cuda(cudaStreamWaitEvent(xs, r->sent, 0), "event wait"));
    TRY(bump(r->cnt + C_KV_USE + b, xs));
    return lc_gpu_signal_op_on_stream(r->w, r->sig + SIG_KV_CREDIT + b, 1, LC_SIGNAL_ADD, r->prev, xs);
}

static int fwd_body(lc_gpu_ring *r, unsigned parity, const void *q, const void *k, const void *v,
                    const int32_t *q_pos, const int32_t *k_pos, const int32_t *q_doc,
                    const int32_t *k_doc, float *o, float *lse, cudaStream_t xs) {
    lc_gpu_attn_ext x0, x;
    lc_attn_desc a0 = desc_for(r, q_pos, q_doc, r->kv, r->me, &x0);
    TRY(r->attn->init(&a0, o, lse, xs));
    for (int st = 0; st < r->n; st++) {
        const int b = (int)((parity + st) & 1);
        const unsigned char *slot = r->kv + b * r->fmt.bytes;
        TRY(kv_step_begin(r, st, b, k, v, k_pos, k_doc, xs));
        lc_attn_desc a = desc_for(r, q_pos, q_doc, slot, lc_ring_owner(r->me, st, r->n), &x);
        TRY(r->attn->block(&a, q, slot, slot + r->fmt.v, o, lse, xs));
        TRY(kv_step_end(r, st, b, xs));
    }
    return lc_gpu_quiet_on_stream(r->w, xs);
}

static int bwd_body(lc_gpu_ring *r, unsigned parity, const void *q, const void *k, const void *v,
                    const int32_t *q_pos, const int32_t *k_pos, const int32_t *q_doc,
                    const int32_t *k_doc, const float *o, const float *lse, const void *dout,
                    float *dq, float *dk, float *dv, cudaStream_t xs) {
    const size_t E = r->dkv_elems;
    lc_gpu_attn_ext x0, x;
    lc_attn_desc a0 = desc_for(r, q_pos, q_doc, r->kv, r->me, &x0);
    TRY(r->attn->bwd_prep(&a0, o, dout, r->delta, xs));
    float *final_slot = r->dkv + 2 * 2 * E;
    for (int st = 0; st < r->n; st++) {
        const int b = (int)((parity + st) & 1);
        const unsigned char *slot = r->kv + b * r->fmt.bytes;
        float *loc = r->dloc + (st & 1) * 2 * E;
        TRY(kv_step_begin(r, st, b, k, v, k_pos, k_doc, xs));
        /* the put of step st-2 read loc; it must be done before loc is cleared */
        if (st >= 2) TRY(lcg_cuda(cudaStreamWaitEvent(xs, r->dsent[st & 1], 0), "event wait"));
        TRY(lcg_cuda(cudaMemsetAsync(loc, 0, 2 * E * sizeof(float), xs), "memset dK/dV"));
        lc_attn_desc a = desc_for(r, q_pos, q_doc, slot, lc_ring_owner(r->me, st, r->n), &x);
        TRY(r->attn->bwd_block(&a, q, slot, slot + r->fmt.v, dout, lse, r->delta, dq, loc, loc + E, xs));
        TRY(kv_step_end(r, st, b, xs));
        /* fold in the accumulator of this block that travelled from the predecessor */
        if (st > 0) {
            TRY(lcg_wait_count_on_stream(r->w, r->sig + SIG_DKV + b, r->cnt + C_DKV_FILL + b, 1, xs));
            TRY(add(loc, r->dkv + b * 2 * E, 2 * E, xs));
            TRY(lc_gpu_signal_op_on_stream(r->w, r->sig + SIG_DKV_CREDIT + b, 1, LC_SIGNAL_ADD,
                                           r->prev, xs));
        }
        TRY(lcg_cuda(cudaEventRecord(r->added, xs), "event"));
        TRY(lcg_cuda(cudaStreamWaitEvent(r->cs, r->added, 0), "event wait"));
        if (st < r->n - 1) {
            const int nb = b ^ 1;
            /* every earlier put into the successor's slot nb has been consumed */
            TRY(lcg_wait_count_on_stream(r->w, r->sig + SIG_DKV_CREDIT + nb, r->cnt + C_DKV_SENT + nb, 0, r->cs));
            TRY(lc_gpu_put_signal_on_stream(r->w, r->dkv + nb * 2 * E, loc, 2 * E * sizeof(float),
                                            r->sig + SIG_DKV + nb, 1, LC_SIGNAL_ADD, r->next, r->cs));
            TRY(bump(r->cnt + C_DKV_SENT + nb, r->cs));
        } else {
            /* the block at the last step belongs to my successor: send it home */
            TRY(lcg_wait_count_on_stream(r->w, r->sig + SIG_FIN_CREDIT, r->cnt + C_FIN_SENT, 0, r->cs));
            TRY(lc_gpu_put_signal_on_stream(r->w, final_slot, loc, 2 * E * sizeof(float),
                                            r->sig + SIG_FIN, 1, LC_SIGNAL_ADD, r->next, r->cs));
            TRY(bump(r->cnt + C_FIN_SENT, r->cs));
        }
        TRY(lcg_cuda(cudaEventRecord(r->dsent[st & 1], r->cs), "event"));
    }
    /* my own block's accumulator comes home from the predecessor */
    TRY(lcg_wait_count_on_stream(r->w, r->sig + SIG_FIN, r->cnt + C_FIN_FILL, 1, xs));
    TRY(add(dk, final_slot, E, xs));
    TRY(add(dv, final_slot + E, E, xs));
    TRY(lc_gpu_signal_op_on_stream(r->w, r->sig + SIG_FIN_CREDIT, 1, LC_SIGNAL_ADD, r->prev, xs));
    for (int i = 0; i < 2; i++) TRY(lcg_cuda(cudaStreamWaitEvent(xs, r->dsent[i], 0), "event wait"));
    return lc_gpu_quiet_on_stream(r->w, xs);
}

/* ---- two-sided (NCCL) twin: same slots and steps, rendezvous instead of signals ---- */
static int copy_own_block(lc_gpu_ring *r, unsigned char *slot, const void *k, const void *v,
                          const int32_t *k_pos, const int32_t *k_doc, cudaStream_t xs) {
    TRY(lcg_cuda(cudaMemcpyAsync(slot, k, r->kbytes, cudaMemcpyDeviceToDevice, xs), "copy K"));
    TRY(lcg_cuda(cudaMemcpyAsync(slot + r->fmt.v, v, r->kbytes, cudaMemcpyDeviceToDevice, xs), "copy V"));
    TRY(lcg_cuda(cudaMemcpyAsync(slot + r->fmt.pos, k_pos, (size_t)r->o.s_local * 4, cudaMemcpyDeviceToDevice,
                                 xs), "copy k_pos"));
    if (k_doc)
        TRY(lcg_cuda(cudaMemcpyAsync(slot + r->fmt.doc, k_doc, (size_t)r->o.s_local * 4,
                                     cudaMemcpyDeviceToDevice, xs), "copy k_doc"));
    return LC_OK;
}

/* Slot b holds step st's block once this returns (in stream order); the exchange that
 * fills the other slot for step st+1 is queued on the comm stream after everything xs has
 * done so far, the previous kernel on that slot included. */
static int kv_step_2s(lc_gpu_ring *r, int st, int b, const void *k, const void *v,
                      const int32_t *k_pos, const int32_t *k_doc, cudaStream_t xs) {
    unsigned char *slot = r->kv + b * r->fmt.bytes;
    if (st == 0)
        TRY(copy_own_block(r, slot, k, v, k_pos, k_doc, xs));
    else
        TRY(lcg_cuda(cudaStreamWaitEvent(xs, r->recvd, 0), "event wait"));
    if (st < r->n - 1) {
        TRY(lcg_cuda(cudaEventRecord(r->ready, xs), "event"));
        TRY(lcg_cuda(cudaStreamWaitEvent(r->cs, r->ready, 0), "event wait"));
        TRY(lc_gpu_nccl_permute(r->nc, 1, slot, r->kv + (b ^ 1) * r->fmt.bytes, r->fmt.bytes, r->cs));
        TRY(lcg_cuda(cudaEventRecord(r->recvd, r->cs), "event"));
    }
    return LC_OK;
}

static int fwd_body_2s(lc_gpu_ring *r, const void *q, const void *k, const void *v,
                       const int32_t *q_pos, const int32_t *k_pos, const int32_t *q_doc,
                       const int32_t *k_doc, float *o, float *lse, cudaStream_t xs) {
    lc_gpu_attn_ext x0, x;
    lc_attn_desc a0 = desc_for(r, q_pos, q_doc, r->kv, r->me, &x0);
    TRY(r->attn->init(&a0, o, lse, xs));
    for (int st = 0; st < r->n; st++) {
        const int b = st & 1;
        const unsigned char *slot = r->kv + b * r->fmt.bytes;
        TRY(kv_step_2s(r, st, b, k, v, k_pos, k_doc, xs));
        lc_attn_desc a = desc_for(r, q_pos, q_doc, slot, lc_ring_owner(r->me, st, r->n), &x);
        TRY(r->attn->block(&a, q, slot, slot + r->fmt.v, o, lse, xs));
    }
    return LC_OK;
}

static int bwd_body_2s(lc_gpu_ring *r, const void *q, const void *k, const void *v,
                       const int32_t *q_pos, const int32_t *k_pos, const int32_t *q_doc,
                       const int32_t *k_doc, const float *o, const float *lse, const void *dout,
                       float *dq, float *dk, float *dv, cudaStream_t xs) {
    const size_t E = r->dkv_elems;
    lc_gpu_attn_ext x0, x;
    lc_attn_desc a0 = desc_for(r, q_pos, q_doc, r->kv, r->me, &x0);
    TRY(r->attn->bwd_prep(&a0, o, dout, r->delta, xs));
    float *final_slot = r->dkv + 2 * 2 * E;
    for (int st = 0; st < r->n; st++) {
        const int b = st & 1;
        const unsigned char *slot = r->kv + b * r->fmt.bytes;
        float *loc = r->dloc + b * 2 * E;
        TRY(kv_step_2s(r, st, b, k, v, k_pos, k_doc, xs));
        if (st >= 2) TRY(lcg_cuda(cudaStreamWaitEvent(xs, r->dsent[b], 0), "event wait"));
        TRY(lcg_cuda(cudaMemsetAsync(loc, 0, 2 * E * sizeof(float), xs), "memset dK/dV"));
        lc_attn_desc a = desc_for(r, q_pos, q_doc, slot, lc_ring_owner(r->me, st, r->n), &x);
        TRY(r->attn->bwd_block(&a, q, slot, slot + r->fmt.v, dout, lse, r->delta, dq, loc, loc + E, xs));
        if (st > 0) {
            TRY(lcg_cuda(cudaStreamWaitEvent(xs, r->drecvd, 0), "event wait"));
            TRY(add(loc, r->dkv + b * 2 * E, 2 * E, xs));
        }
        TRY(lcg_cuda(cudaEventRecord(r->added, xs), "event"));
        TRY(lcg_cuda(cudaStreamWaitEvent(r->cs, r->added, 0), "event wait"));
        float *into = st < r->n - 1 ? r->dkv + (b ^ 1) * 2 * E : final_slot;
        TRY(lc_gpu_nccl_permute(r->nc, 1, loc, into, 2 * E * sizeof(float), r->cs));
        TRY(lcg_cuda(cudaEventRecord(r->drecvd, r->cs), "event"));
        TRY(lcg_cuda(cudaEventRecord(r->dsent[b], r->cs), "event"));
    }
    TRY(lcg_cuda(cudaStreamWaitEvent(xs, r->drecvd, 0), "event wait"));
    TRY(add(dk, final_slot, E, xs));
    TRY(add(dv, final_slot + E, E, xs));
    for (int i = 0; i < 2; i++) TRY(lcg_cuda(cudaStreamWaitEvent(xs, r->dsent[i], 0), "event wait"));
    return LC_OK;
}

/* Runs body eagerly, or replays (capturing first) the graph of this direction and parity. */
template <typename F>
static int run_call(lc_gpu_ring *r, int dir, const void *const key[N_KEY], cudaStream_t xs, F body) {
    const unsigned parity = r->parity;
    r->parity = (r->parity + (unsigned)r->n) & 1u;
    r->graph_used = 0;
    if (!r->o.use_graph) return body(parity);
    if (!xs) {
        snprintf(r->graph_why, sizeof r->graph_why, "the legacy default stream cannot be captured");
        return body(parity);
    }
    graph_slot *g = &r->graphs[dir][parity];
    if (g->valid && memcmp(g->key, key, sizeof g->key) != 0) {
        cudaGraphExecDestroy(g->exec);
        g->valid = 0;
    }
    if (!g->valid) {
        cudaGraph_t graph = NULL;
        int rc = lcg_cuda(cudaStreamBeginCapture(xs, cudaStreamCaptureModeRelaxed), "cudaStreamBeginCapture");
        if (!rc) {
            int brc = body(parity);
            cudaError_t e = cudaStreamEndCapture(xs, &graph);
            if (brc || e != cudaSuccess) {
                snprintf(r->graph_why, sizeof r->graph_why, "capture refused: %.150s",
                         brc ? lc_gpu_last_error() : cudaGetErrorString(e));
                if (graph) cudaGraphDestroy(graph);
                (void)cudaGetLastError();
                r->o.use_graph = 0; /* nothing ran: run this call eagerly, and later ones */
                return body(parity);
            }
            rc = lcg_cuda(cudaGraphInstantiate(&g->exec, graph, 0), "cudaGraphInstantiate");
            cudaGraphDestroy(graph);
            if (rc) {
                snprintf(r->graph_why, sizeof r->graph_why, "instantiate failed: %.150s", lc_gpu_last_error());
                r->o.use_graph = 0;
                return body(parity);
            }
            memcpy(g->key, key, sizeof g->key);
            g->valid = 1;
        } else {
            snprintf(r->graph_why, sizeof r->graph_why, "%.190s", lc_gpu_last_error());
            r->o.use_graph = 0;
            return body(parity);
        }
    }
    TRY(lcg_cuda(cudaGraphLaunch(g->exec, xs), "cudaGraphLaunch"));
    r->graph_used = 1;
    snprintf(r->graph_why, sizeof r->graph_why, "replayed");
    return LC_OK;
}

extern "C" int lc_gpu_ring_fwd(lc_gpu_ring *r, const void *q, const void *k, const void *v,
                               const int32_t *q_pos, const int32_t *k_pos, const int32_t *q_doc,
                               const int32_t *k_doc, float *o, float *lse, lc_gpu_stream s) {
    TRY(check_inputs(r, q_pos, k_pos, q_doc, k_doc));
    cudaStream_t xs = (cudaStream_t)s;
    if (r->n == 1) {
        lc_gpu_attn_ext x0;
        lc_attn_desc a0 = desc_for(r, q_pos, q_doc, r->kv, r->me, &x0);
        a0.k_pos = k_pos;
        a0.mask.k_doc = k_doc;
        TRY(r->attn->init(&a0, o, lse, s));
        return r->attn->block(&a0, q, k, v, o, lse, s);
    }
    const void *key[N_KEY] = {q, k, v, q_pos, k_pos, q_doc, k_doc, o, lse, NULL, NULL, NULL, NULL};
    return run_call(r, 0, key, xs, [&](unsigned parity) {
        if (r->two_sided) return fwd_body_2s(r, q, k, v, q_pos, k_pos, q_doc, k_doc, o, lse, xs);
        return fwd_body(r, parity, q, k, v, q_pos, k_pos, q_doc, k_doc, o, lse, xs);
    });
}

extern "C" int lc_gpu_ring_bwd(lc_gpu_ring *r, const void *q, const void *k, const void *v,
                               const int32_t *q_pos, const int32_t *k_pos, const int32_t *q_doc,
                               const int32_t *k_doc, const float *o, const float *lse,
                               const void *dout, float *dq, float *dk, float *dv,
                               lc_gpu_stream s) {
    TRY(check_inputs(r, q_pos, k_pos, q_doc, k_doc));
    cudaStream_t xs = (cudaStream_t)s;
    if (r->n == 1) {
        lc_gpu_attn_ext x0;
        lc_attn_desc a0 = desc_for(r, q_pos, q_doc, r->kv, r->me, &x0);
        a0.k_pos = k_pos;
        a0.mask.k_doc = k_doc;
        TRY(r->attn->bwd_prep(&a0, o, dout, r->delta, s));
        return r->attn->bwd_block(&a0, q, k, v, dout, lse, r->delta, dq, dk, dv, s);
    }
    const void *key[N_KEY] = {q, k, v, q_pos, k_pos, q_doc, k_doc, o, lse, dout, dq, dk, dv};
    return run_call(r, 1, key, xs, [&](unsigned parity) {
        if (r->two_sided)
            return bwd_body_2s(r, q, k, v, q_pos, k_pos, q_doc, k_doc, o, lse, dout, dq, dk, dv, xs);
        return bwd_body(r, parity, q, k, v, q_pos, k_pos, q_doc, k_doc, o, lse, dout, dq, dk, dv, xs);
    });
}
