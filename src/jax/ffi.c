/* The JAX binding's engine: XLA FFI handlers (plain C, against jaxlib's xla/ffi/api/c_api.h)
 * that run longctx's CP attention on this process's PE, plus the few world calls the Python
 * layer (python/longctx/jax.py, through ctypes) needs. One process is one PE; the shard_map
 * axis is the CP team, which is the world.
 *
 * Calls are collective over the world, so every PE must make the same calls in the same
 * order. XLA may order independent calls differently on different processes; each call
 * therefore carries a sequence number and a fingerprint of what it is (kind, shapes, mask,
 * layout, ...), agreed over the world before any KV block moves: a mismatch is an error on
 * every PE naming both calls, never a ring that pairs the wrong blocks. One call runs at a
 * time per process (a mutex), so a second XLA thread cannot interleave its ring. */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "longctx/cp.h"
#include "xla/ffi/api/c_api.h"

#define LCJ_EXPORT __attribute__((visibility("default")))
#define MAX_PLANS 16

typedef struct {
    lc_cp_config cfg;
    lc_cp *cp;
} plan_entry;

static struct {
    pthread_mutex_t mu;
    lc_world *w;
    plan_entry plans[MAX_PLANS];
    int n_plans;
    long long seq;      /* calls made on this PE */
    int aborted;        /* the world ended early: nothing collective is left to do */
    lc_team *cp_team;   /* my CP group when the CP axis is smaller than the world */
    int cp_team_size;
    char err[1024];
} G = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* ---- the world (called from Python through ctypes) ---- */

LCJ_EXPORT const char *lcj_last_error(void) { return G.err; }

/* Joins the world the launcher described (or a world of one). Idempotent. Returns the
 * number of PEs, or -1 with lcj_last_error. */
LCJ_EXPORT int lcj_init(void)
{
    pthread_mutex_lock(&G.mu);
    int rc = 0;
    if (!G.w) {
        lc_world_opts wo = {0};
        if (lc_world_init(&wo, &G.w)) {
            snprintf(G.err, sizeof G.err, "cannot join the longctx world: %s", lc_last_error(NULL));
            G.w = NULL;
            rc = -1;
        }
    }
    if (!rc) rc = lc_n_pes(G.w);
    pthread_mutex_unlock(&G.mu);
    return rc;
}

LCJ_EXPORT int lcj_my_pe(void) { return G.w ? lc_my_pe(G.w) : -1; }
LCJ_EXPORT int lcj_n_pes(void) { return G.w ? lc_n_pes(G.w) : 0; }
LCJ_EXPORT const char *lcj_backend(void) { return G.w ? lc_world_backend(G.w) : ""; }
LCJ_EXPORT int lcj_launched(void) { return lc_launched_as(NULL, NULL); }

/* Ends the world with a reason (an uncaught Python exception on this PE): every peer's
 * wait ends at once with it, instead of waiting for a PE that will never call again. */
LCJ_EXPORT void lcj_abort(const char *reason)
{
    if (G.w) lc_world_abort(G.w, reason);
    G.aborted = 1;
}

/* PE root's bytes to every PE (the coordinator address for jax.distributed). */
LCJ_EXPORT int lcj_broadcast(void *buf, long bytes, int root)
{
    if (!G.w) return snprintf(G.err, sizeof G.err, "lcj_broadcast: no world (call initialize first)"), -1;
    pthread_mutex_lock(&G.mu);
    int rc = lc_broadcast(lc_team_world(G.w), buf, buf, (size_t)bytes, root);
    if (rc) snprintf(G.err, sizeof G.err, "broadcast failed: %s", lc_last_error(G.w));
    pthread_mutex_unlock(&G.mu);
    return rc ? -1 : 0;
}

/* Collective: the plans' buffers, then the world. */
LCJ_EXPORT int lcj_finalize(void)
{
    pthread_mutex_lock(&G.mu);
    int rc = 0;
    if (G.aborted) { /* the reason was said where it happened; the launcher sees the rest */
        pthread_mutex_unlock(&G.mu);
        return -1;
    }
    for (int i = 0; i < G.n_plans; i++) rc |= lc_cp_destroy(G.plans[i].cp);
    G.n_plans = 0;
    if (G.cp_team) lc_team_destroy(G.cp_team);
    G.cp_team = NULL;
    if (G.w) rc |= lc_world_finalize(G.w);
    G.w = NULL;
    pthread_mutex_unlock(&G.mu);
    return rc ? -1 : 0;
}

/* The layout map of lc_cp_layout_positions, for shard_sequence: pos gets the global position
 * of each of PE pe's padded rows (-1: padding). Returns the real rows, or -1. */
LCJ_EXPORT int lcj_layout_positions(const char *layout, long long seq_len, int n_pes, int pe, int32_t *pos,
                                    int *n_pad)
{
    lc_cp_layout l;
    if (lc_cp_layout_parse(layout, &l)) return snprintf(G.err, sizeof G.err, "unknown layout '%s'", layout), -1;
    int r = lc_cp_layout_positions(l, seq_len, n_pes, pe, pos, n_pad);
    if (r < 0) snprintf(G.err, sizeof G.err, "layout %s cannot split %lld tokens over %d PEs", layout, seq_len, n_pes);
    return r;
}

/* ---- FFI plumbing ---- */

static XLA_FFI_Error *ffi_error(const XLA_FFI_Api *api, XLA_FFI_Error_Code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static XLA_FFI_Error *ffi_error(const XLA_FFI_Api *api, XLA_FFI_Error_Code code, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    XLA_FFI_Error_Create_Args a = {XLA_FFI_Error_Create_Args_STRUCT_SIZE, NULL, msg, code};
    return api->XLA_FFI_Error_Create(&a);
}

/* XLA asks a handler for its metadata (the API version it was built against) before use. */
static XLA_FFI_Error *metadata(XLA_FFI_CallFrame *cf)
{
    XLA_FFI_Metadata_Extension *ext = (XLA_FFI_Metadata_Extension *)cf->extension_start;
    ext->metadata->api_version = (XLA_FFI_Api_Version){XLA_FFI_Api_Version_STRUCT_SIZE, NULL, XLA_FFI_API_MAJOR,
                                                       XLA_FFI_API_MINOR};
    ext->metadata->traits = 0;
    return NULL;
}

typedef struct {
    long long causal, window, has_doc, seq_len, cp;
    float scale;
    char layout[32], lowering[32], algo[32];
} attrs_t;

static int attr_name(const XLA_FFI_CallFrame *cf, int i, const char *want)
{
    const XLA_FFI_ByteSpan *n = cf->attrs.names[i];
    return n->len == strlen(want) && !memcmp(n->ptr, want, n->len);
}

/* The handler's attributes; a missing or mistyped one is the Python layer's bug, said. */
static const char *read_attrs(const XLA_FFI_CallFrame *cf, attrs_t *a)
{
    memset(a, 0, sizeof *a);
    static const char *const I64[5] = {"causal", "window", "has_doc", "seq_len", "cp"};
    static const char *const STR[3] = {"layout", "lowering", "algo"};
    long long *iv[5] = {&a->causal, &a->window, &a->has_doc, &a->seq_len, &a->cp};
    char *sv[3] = {a->layout, a->lowering, a->algo};
    int seen = 0;
    for (int i = 0; i < cf->attrs.size; i++) {
        void *p = cf->attrs.attrs[i];
        XLA_FFI_AttrType t = cf->attrs.types[i];
        for (int k = 0; k < 5; k++)
            if (attr_name(cf, i, I64[k])) {
                XLA_FFI_Scalar *s = p;
                if (t != XLA_FFI_AttrType_SCALAR || s->dtype != XLA_FFI_DataType_S64) return I64[k];
                *iv[k] = *(int64_t *)s->value;
                seen |= 1 << k;
            }
        for (int k = 0; k < 3; k++)
            if (attr_name(cf, i, STR[k])) {
                XLA_FFI_ByteSpan *s = p;
                if (t != XLA_FFI_AttrType_STRING || s->len >= 32) return STR[k];
                memcpy(sv[k], s->ptr, s->len);
                sv[k][s->len] = 0;
                seen |= 1 << (5 + k);
            }
        if (attr_name(cf, i, "scale")) {
            XLA_FFI_Scalar *s = p;
            if (t != XLA_FFI_AttrType_SCALAR || s->dtype != XLA_FFI_DataType_F32) return "scale";
            a->scale = *(float *)s->value;
            seen |= 1 << 8;
        }
    }
    return seen == 0x1ff ? NULL : "(one is missing)";
}

static const XLA_FFI_Buffer *arg(const XLA_FFI_CallFrame *cf, int i)
{
    return i < cf->args.size && cf->args.types[i] == XLA_FFI_ArgType_BUFFER ? cf->args.args[i] : NULL;
}

static const XLA_FFI_Buffer *ret(const XLA_FFI_CallFrame *cf, int i)
{
    return i < cf->rets.size && cf->rets.types[i] == XLA_FFI_RetType_BUFFER ? cf->rets.rets[i] : NULL;
}

static const char *dtype_name(XLA_FFI_DataType t)
{
    switch (t) {
    case XLA_FFI_DataType_F32: return "float32";
    case XLA_FFI_DataType_BF16: return "bfloat16";
    case XLA_FFI_DataType_F16: return "float16";
    case XLA_FFI_DataType_F64: return "float64";
    case XLA_FFI_DataType_S32: return "int32";
    default: return "another dtype";
    }
}

/* One call's identity, agreed over the world before it runs. */
typedef struct {
    char what[400];
    uint64_t hash;
} call_id;

/* Every PE's call number and fingerprint must match; else each PE learns all of them and
 * names the first that differs from its own. */
static int agree(lc_team *t, const call_id *me, long long seq, char *err, size_t len)
{
    double v[6] = {(double)seq, (double)(me->hash >> 32), (double)(me->hash & 0xffffffffu)}, mx[6];
    for (int i = 0; i < 3; i++) v[3 + i] = -v[i];
    int rc = lc_allreduce_max_f64(t, mx, v, 6);
    if (rc) return snprintf(err, len, "agreeing on the call failed: %s", lc_last_error(lc_team_get_world(t))), rc;
    int same = 1;
    for (int i = 0; i < 3; i++) same &= mx[i] == -mx[3 + i];
    if (same) return 0;
    int n = lc_team_n_pes(t), my = lc_team_my_pe(t);
    struct {
        long long seq;
        char what[400];
    } mine, *all = calloc((size_t)n, sizeof *all);
    if (!all) return snprintf(err, len, "the PEs' ring calls differ (and no memory to say how)"), LC_ERR_SYS;
    memset(&mine, 0, sizeof mine);
    mine.seq = seq;
    snprintf(mine.what, sizeof mine.what, "%s", me->what);
    if ((rc = lc_allgather(t, all, &mine, sizeof mine))) {
        free(all);
        return snprintf(err, len, "the PEs' ring calls differ: %s", lc_last_error(lc_team_get_world(t))), rc;
    }
    int other = 0;
    for (int p = 0; p < n; p++)
        if (all[p].seq != seq || strcmp(all[p].what, me->what)) {
            other = p;
            break;
        }
    snprintf(err, len, "the PEs do not make the same ring calls: PE %d's call #%lld is %s; PE %d's call #%lld is %s "
             "(every PE must call ring_attention with the same shapes, mask and layout, in the same order)",
             my, seq, me->what, other, all[other].seq, all[other].what);
    free(all);
    return LC_ERR_ARG;
}

/* The team of my CP group: the world, or my row of cp consecutive PEs (one collective split,
 * redone only when the CP size changes: the plans on the old rows go with it). */
static lc_team *team_for(int cp, char *err, size_t len)
{
    if (cp == lc_n_pes(G.w)) return lc_team_world(G.w);
    if (G.cp_team && G.cp_team_size == cp) return G.cp_team;
    for (int i = 0; i < G.n_plans; i++) lc_cp_destroy(G.plans[i].cp);
    G.n_plans = 0;
    if (G.cp_team) lc_team_destroy(G.cp_team);
    G.cp_team = NULL;
    lc_team *col = NULL;
    if (lc_team_split_2d(lc_team_world(G.w), cp, &G.cp_team, &col)) {
        snprintf(err, len, "splitting the world into CP groups of %d: %s", cp, lc_last_error(G.w));
        G.cp_team = NULL;
        return NULL;
    }
    lc_team_destroy(col);
    G.cp_team_size = cp;
    return G.cp_team;
}

/* The cached plan for cfg (created collectively on first use; every PE reaches this point
 * with the same cfg, as agree() just checked). */
static lc_cp *plan_for(const lc_cp_config *cfg, char *err, size_t len)
{
    for (int i = 0; i < G.n_plans; i++)
        if (!memcmp(&G.plans[i].cfg, cfg, sizeof *cfg)) return G.plans[i].cp;
    if (G.n_plans == MAX_PLANS) {
        /* the oldest goes: a program with this many distinct attention shapes is rare */
        lc_cp_destroy(G.plans[0].cp);
        memmove(G.plans, G.plans + 1, sizeof G.plans[0] * (MAX_PLANS - 1));
        G.n_plans--;
    }
    lc_cp *cp;
    lc_team *team = team_for(cfg->plan.cp, err, len);
    if (!team) return NULL;
    if (lc_cp_create(team, cfg, &cp)) {
        snprintf(err, len, "%s", lc_cp_last_error(NULL));
        return NULL;
    }
    G.plans[G.n_plans].cfg = *cfg;
    G.plans[G.n_plans++].cp = cp;
    return cp;
}

enum { FWD = 0, BWD = 1 };

/* Checks the call's operands and builds its plan config. Shapes follow
 * jax.nn.dot_product_attention per shard: q (B, T, N, H), k and v (B, T, K, H), doc (B, T)
 * int32, idx () int32 (the shard_map axis index of this shard). */
static int prepare(const XLA_FFI_CallFrame *cf, int kind, const attrs_t *a, lc_cp_config *cfg, call_id *id,
                   int64_t *B, int64_t *T, char *err, size_t len)
{
    const XLA_FFI_Buffer *q = arg(cf, 0), *k = arg(cf, 1), *v = arg(cf, 2), *doc = arg(cf, 3), *idx = arg(cf, 4);
    if (!q || !k || !v || !doc || !idx) return snprintf(err, len, "internal: expected buffers q, k, v, doc, idx"), -1;
    if (q->rank != 4 || k->rank != 4 || v->rank != 4)
        return snprintf(err, len, "q, k and v must be (batch, tokens, heads, head_dim); got ranks %lld, %lld, %lld",
                        (long long)q->rank, (long long)k->rank, (long long)v->rank), -1;
    if (q->dtype != k->dtype || q->dtype != v->dtype || (q->dtype != XLA_FFI_DataType_F32 && q->dtype != XLA_FFI_DataType_BF16))
        return snprintf(err, len, "q, k, v are %s, %s, %s: ring_attention takes float32 or bfloat16, all alike",
                        dtype_name(q->dtype), dtype_name(k->dtype), dtype_name(v->dtype)), -1;
    for (int i = 0; i < 4; i++)
        if (k->dims[i] != v->dims[i]) return snprintf(err, len, "k and v shapes differ in dimension %d (%lld vs %lld)",
                                                      i, (long long)k->dims[i], (long long)v->dims[i]), -1;
    if (k->dims[0] != q->dims[0] || k->dims[1] != q->dims[1] || k->dims[3] != q->dims[3])
        return snprintf(err, len, "q (%lld, %lld, %lld, %lld) and k (%lld, %lld, %lld, %lld) must agree in batch, "
                        "tokens and head_dim", (long long)q->dims[0], (long long)q->dims[1], (long long)q->dims[2],
                        (long long)q->dims[3], (long long)k->dims[0], (long long)k->dims[1], (long long)k->dims[2],
                        (long long)k->dims[3]), -1;
    if (k->dims[2] < 1 || q->dims[2] % k->dims[2])
        return snprintf(err, len, "query heads %lld must be a multiple of key/value heads %lld", (long long)q->dims[2],
                        (long long)k->dims[2]), -1;
    if (doc->dtype != XLA_FFI_DataType_S32 || doc->rank != 2 || doc->dims[0] != q->dims[0] || doc->dims[1] != q->dims[1])
        return snprintf(err, len, "doc_ids must be int32 (batch, tokens) = (%lld, %lld)", (long long)q->dims[0],
                        (long long)q->dims[1]), -1;
    /* The CP axis is the mesh's innermost over the processes in PE order: CP group g holds
     * PEs g*cp .. g*cp+cp-1 (the other axes, DP for instance, are the groups). */
    const int n = lc_n_pes(G.w), P = (int)a->cp, me = lc_my_pe(G.w) % (int)(a->cp > 0 ? a->cp : 1);
    if (P < 1 || n % P)
        return snprintf(err, len, "the CP axis has %d shards, which does not divide the world's %d PEs", P, n), -1;
    int axis = *(const int32_t *)idx->data;
    if (axis != me)
        return snprintf(err, len, "this shard is index %d of the shard_map axis, but runs on longctx PE %d (index %d "
                        "of its CP group of %d): the CP axis must be the mesh's innermost over the processes in PE "
                        "order (jax.devices() order)", axis, lc_my_pe(G.w), me, P), -1;
    memset(cfg, 0, sizeof *cfg);
    lc_plan_init(&cfg->plan);
    cfg->plan.seq_len = a->seq_len;
    cfg->plan.cp = P;
    if (lc_cp_layout_parse(a->layout, &cfg->plan.layout))
        return snprintf(err, len, "layout '%s': zigzag, contiguous or striped", a->layout), -1;
    /* "hybrid:U": Ulysses over U neighbouring shards x the ring over the groups */
    char algo[32];
    snprintf(algo, sizeof algo, "%s", a->algo);
    char *colon = strchr(algo, ':');
    if (colon) *colon = 0, cfg->plan.ulysses = atoi(colon + 1);
    if (lc_cp_algo_parse(algo, &cfg->plan.algo) || (colon && cfg->plan.algo != LC_CP_HYBRID) ||
        (cfg->plan.algo == LC_CP_HYBRID && cfg->plan.ulysses < 1))
        return snprintf(err, len, "algo '%s': ring, allgather, ulysses or hybrid:U (U divides the axis size)", a->algo), -1;
    if (lc_lowering_parse(a->lowering, &cfg->plan.lowering) || cfg->plan.lowering == LC_LOWER_COMPUTE_ONLY)
        return snprintf(err, len, "lowering '%s': auto, one_sided, two_sided or zero_copy", a->lowering), -1;
    cfg->hq = (int)q->dims[2];
    cfg->hkv = (int)k->dims[2];
    cfg->d = (int)q->dims[3];
    cfg->dtype = q->dtype == XLA_FFI_DataType_BF16 ? LC_DT_BF16 : LC_DT_F32;
    cfg->mask = (a->causal ? LC_MASK_CAUSAL : 0) | (a->window > 0 ? LC_MASK_WINDOW : 0) | (a->has_doc ? LC_MASK_DOC : 0);
    cfg->window = a->window;
    cfg->scale = a->scale;
    cfg->threads = lc_cores_per_pe(G.w);
    *B = q->dims[0];
    *T = q->dims[1];
    int n_pad = 0;
    if (lc_cp_layout_positions(cfg->plan.layout, a->seq_len, P, me, NULL, &n_pad) < 0 || n_pad != *T)
        return snprintf(err, len, "seq_len %lld over %d PEs with the %s layout gives %d rows per shard, but the shard "
                        "has %lld tokens (shard with lcj.shard_sequence and pass its seq_len)", (long long)a->seq_len, P,
                        a->layout, n_pad, (long long)*T), -1;
    snprintf(id->what, sizeof id->what, "%s (B %lld, T %lld, heads %d/%d, dim %d, %s, mask %s%s%s, window %lld, "
             "%s, %s, %s, seq_len %lld, scale %g, cp %d)", kind == FWD ? "forward" : "backward", (long long)*B, (long long)*T,
             cfg->hq, cfg->hkv, cfg->d, dtype_name(q->dtype), a->causal ? "causal" : "full", a->has_doc ? "+doc" : "",
             a->window > 0 ? "+window" : "", a->window, a->layout, a->algo, a->lowering, (long long)a->seq_len,
             (double)a->scale, P);
    id->hash = lc_fnv1a64(LC_FNV1A64_INIT, id->what, strlen(id->what));
    return 0;
}

/* Runs one forward or backward call: args q, k, v, doc, idx (+ out32, lse, dout in the
 * backward); rets out (+ out32 for bf16), lse in the forward, dq, dk, dv (fp32) in the
 * backward. */
static XLA_FFI_Error *run(XLA_FFI_CallFrame *cf, int kind)
{
    if (cf->extension_start && cf->extension_start->type == XLA_FFI_Extension_Metadata) return metadata(cf);
    if (cf->stage != XLA_FFI_ExecutionStage_EXECUTE) return NULL;
    const XLA_FFI_Api *api = cf->api;
    if (!G.w)
        return ffi_error(api, XLA_FFI_Error_Code_FAILED_PRECONDITION, "longctx ring_attention: this process is not in a "
                         "longctx world: call longctx.jax.initialize() first (and start the processes with `longctx "
                         "launch -n P` or mpirun)");
    attrs_t a;
    const char *bad = read_attrs(cf, &a);
    if (bad) return ffi_error(api, XLA_FFI_Error_Code_INTERNAL, "longctx ring_attention: attribute %s is missing or mistyped", bad);
    char err[1536];
    lc_cp_config cfg;
    call_id id;
    int64_t B, T;
    pthread_mutex_lock(&G.mu);
    long long seq = G.seq++;
    int rc = prepare(cf, kind, &a, &cfg, &id, &B, &T, err, sizeof err);
    if (rc) {
        /* the bad call is this PE's alone: its peers would wait for it, so end the world */
        char reason[1700];
        snprintf(reason, sizeof reason, "ring_attention: %s", err);
        lc_world_abort(G.w, reason);
        G.aborted = 1;
        pthread_mutex_unlock(&G.mu);
        return ffi_error(api, XLA_FFI_Error_Code_INVALID_ARGUMENT, "longctx ring_attention on PE %d: %s",
                         lc_my_pe(G.w), err);
    }
    lc_cp *cp = NULL;
    if ((rc = agree(lc_team_world(G.w), &id, seq, err, sizeof err)) == 0 && !(cp = plan_for(&cfg, err, sizeof err)))
        rc = LC_ERR_ARG;
    const size_t es = cfg.dtype == LC_DT_BF16 ? 2 : 4;
    const size_t nq = (size_t)T * cfg.hq * cfg.d, nk = (size_t)T * cfg.hkv * cfg.d, nl = (size_t)T * cfg.hq;
    const char *q = arg(cf, 0)->data, *k = arg(cf, 1)->data, *v = arg(cf, 2)->data;
    const int32_t *doc = a.has_doc ? arg(cf, 3)->data : NULL;
    for (int64_t b = 0; b < B && !rc; b++) {
        const char *qb = q + b * nq * es, *kb = k + b * nk * es, *vb = v + b * nk * es;
        const int32_t *db = doc ? doc + b * T : NULL;
        if (kind == FWD) {
            /* f32: rets out, lse. bf16: rets out, out32 (the fp32 output the backward's row
             * sums use: 5e-4 -> 1e-6 relative error in dq, dk), lse. */
            int bf = cfg.dtype == LC_DT_BF16;
            char *out = ret(cf, 0)->data;
            float *o32 = bf ? (float *)ret(cf, 1)->data + b * nq : NULL;
            float *lse = (float *)ret(cf, bf ? 2 : 1)->data + b * nl;
            rc = lc_cp_forward_ex(cp, qb, kb, vb, db, out + b * nq * es, o32, lse);
        } else {
            /* args ..., out32 (f32: out), lse, dout; rets dq, dk, dv (fp32) */
            const float *o32 = (const float *)arg(cf, 5)->data + b * nq, *lse = (const float *)arg(cf, 6)->data + b * nl;
            const char *dout = (const char *)arg(cf, 7)->data + b * nq * es;
            float *dq = (float *)ret(cf, 0)->data + b * nq, *dk = (float *)ret(cf, 1)->data + b * nk,
                  *dv = (float *)ret(cf, 2)->data + b * nk;
            rc = lc_cp_backward_ex(cp, qb, kb, vb, db, NULL, o32, lse, dout, dq, dk, dv);
        }
        if (rc) snprintf(err, sizeof err, "%s", lc_cp_last_error(cp));
    }
    if (rc == LC_ERR_ABORT) G.aborted = 1;
    pthread_mutex_unlock(&G.mu);
    if (rc)
        return ffi_error(api, XLA_FFI_Error_Code_INVALID_ARGUMENT, "longctx ring_attention on PE %d: %s", lc_my_pe(G.w),
                         err);
    return NULL;
}

LCJ_EXPORT XLA_FFI_Error *lcj_ring_fwd(XLA_FFI_CallFrame *cf) { return run(cf, FWD); }
LCJ_EXPORT XLA_FFI_Error *lcj_ring_bwd(XLA_FFI_CallFrame *cf) { return run(cf, BWD); }
