/* Collectives built on the transport seam (put_signal, signal_op, wait). Data is pushed into
 * a landing zone in each PE's control region (two areas, alternated so a fast PE can never
 * overwrite what a slow PE is still reading), each push a put-with-signal of an arrival
 * counter. Every collective starts with a barrier, so no member writes into a peer that is
 * still busy with the previous one. Reductions add contributions in team-rank order on
 * exactly one PE per piece, so every member ends with bit-identical results.
 * Addresses handed to the backend are my own copies (landing slot, counter); the backend
 * reaches the target's. Only my own words are ever waited on. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "symm/internal.h"

#define AREA_BYTES (LC_SCRATCH_BYTES / 2)

static size_t slot_bytes(const lc_team *t)
{
    return (AREA_BYTES / (size_t)t->size) & ~(size_t)(LC_CACHELINE - 1);
}

/* My copy of area's landing slot for sender from_rank (every PE has the same layout). */
static uint8_t *landing(lc_team *t, int area, int from_rank)
{
    return lc__scratch(t->w, t->w->me) + (size_t)area * AREA_BYTES + (size_t)from_rank * slot_bytes(t);
}

static lc_slot_sync *my_sync(lc_team *t) { return lc__sync(t, t->me); }

static _Atomic uint64_t *area_counter(lc_team *t, int area)
{
    return area ? &my_sync(t)->ag.v : &my_sync(t)->rs.v;
}

/* Puts bytes into rank's landing slot for me in area, with its arrival counter. */
static int push(lc_team *t, int rank, int area, const void *src, size_t bytes)
{
    lc_world *w = t->w;
    return w->be->put_signal(w, landing(t, area, t->me), src, bytes, area_counter(t, area), 1,
                             LC_SIGNAL_ADD, lc__team_pe(t, rank));
}

static int await(lc_team *t, int area, uint64_t count, const char *op)
{
    uint64_t *e = area ? &t->ag_expect : &t->rs_expect;
    *e += count;
    return t->w->be->wait(t->w, area_counter(t, area), LC_CMP_GE, *e, op,
                          area ? "collective phase-2 arrivals" : "collective arrivals", NULL);
}

/* A quiet first, as nvshmem_barrier: my puts before the barrier are complete after it. */
int lc__barrier(lc_team *t, const char *op)
{
    lc_world *w = t->w;
    if (lc__aborted(w)) return lc__abort_error(w, op);
    int n = t->size, rc;
    w->be->quiet(w);
    if (w->be->coll) return w->be->coll->barrier(t, op);
    for (int k = 0, dist = 1; dist < n; k++, dist <<= 1) {
        int peer = (t->me + dist) % n;
        if ((rc = w->be->signal_op(w, &my_sync(t)->bar[k].v, 1, LC_SIGNAL_ADD, lc__team_pe(t, peer))))
            return rc;
        t->bar_expect[k]++;
        if ((rc = w->be->wait(w, &my_sync(t)->bar[k].v, LC_CMP_GE, t->bar_expect[k], op, "barrier round", NULL)))
            return rc;
    }
    return LC_OK;
}

int lc_barrier(lc_team *t) { return t ? lc__barrier(t, "lc_barrier") : LC_ERR_ARG; }

/* Before a collective the backend lowers itself: my puts are complete (as after the barrier
 * that starts coll.c's own). Returns 0, or the abort's error. */
static int lowered(lc_team *t)
{
    if (!t->w->be->coll) return LC_OK;
    if (lc__aborted(t->w)) return lc__abort_error(t->w, "collective");
    t->w->be->quiet(t->w);
    return LC_OK;
}

static int check(lc_team *t, const char *op, const void *dst, const void *src, size_t bytes)
{
    if (!t) return LC_ERR_ARG;
    if (bytes && (!dst || !src)) return lc__coll_err(t->w, LC_ERR_ARG, "%s: NULL buffer", op);
    return LC_OK;
}

/* Only the root writes, so nothing in the data path tells it that the receivers have read
 * an area: without back-pressure it would overwrite chunk i with chunk i + 2 while a slow
 * receiver still copies chunk i out. Each receiver therefore acks an area to the root once it
 * has copied it out (only for chunks whose area the root will use again), on a counter per
 * area, and the root waits for all n - 1 acks of chunk i - 2 before it writes chunk i. Per
 * area, not one counter: a fast receiver may ack chunk i + 1 before a slow one acks chunk i,
 * but it cannot ack chunk i + 2 before chunk i's acks are all in, so an area's count is
 * exact. Acks sent and awaited are the same set, so the expectations carry across calls. */
int lc_broadcast(lc_team *t, void *dst, const void *src, size_t bytes, int root)
{
    int rc = check(t, "lc_broadcast", dst, t && t->me == root ? src : dst, bytes);
    if (rc) return rc;
    if (root < 0 || root >= t->size)
        return lc__coll_err(t->w, LC_ERR_ARG, "lc_broadcast: root %d not in team of %d", root, t->size);
    if (t->w->be->coll) {
        t->w->be->quiet(t->w);
        return t->w->be->coll->broadcast(t, dst, src, bytes, root);
    }
    if ((rc = lc__barrier(t, "lc_broadcast"))) return rc;
    lc_world *w = t->w;
    int n = t->size;
    size_t chunk = slot_bytes(t) * (size_t)n; /* only the root writes: use the whole area */
    chunk &= ~(size_t)(LC_CACHELINE - 1);
    size_t nchunks = bytes ? (bytes + chunk - 1) / chunk : 1;
    for (size_t i = 0; i < nchunks; i++) {
        size_t off = i * chunk, b = bytes - off < chunk ? bytes - off : chunk;
        int area = (int)(i & 1);
        if (t->me == root) {
            if (i >= 2) {
                t->bc_ack_expect[area] += (uint64_t)(n - 1);
                rc = w->be->wait(w, &my_sync(t)->bc_ack[area].v, LC_CMP_GE, t->bc_ack_expect[area],
                                 "lc_broadcast", "receivers done with a landing area (root)", NULL);
                if (rc) return rc;
            }
            for (int k = 1; k < n && !rc; k++) /* root's data sits at the start of the area */
                rc = w->be->put_signal(w, landing(t, area, 0), (const uint8_t *)src + off, b,
                                       area_counter(t, area), 1, LC_SIGNAL_ADD, lc__team_pe(t, (root + k) % n));
            if (rc) return rc;
            if (dst != src && b) memmove((uint8_t *)dst + off, (const uint8_t *)src + off, b);
        } else {
            if ((rc = await(t, area, 1, "lc_broadcast"))) return rc;
            if (b) memcpy((uint8_t *)dst + off, landing(t, area, 0), b);
            /* My reads of the area come before the ack (release ordering of signal_op). */
            if (i + 2 < nchunks &&
                (rc = w->be->signal_op(w, &my_sync(t)->bc_ack[area].v, 1, LC_SIGNAL_ADD, lc__team_pe(t, root))))
                return rc;
        }
    }
    return LC_OK;
}

/* Generic personalised exchange: for each peer r, send block r (bytes at src + r*src_stride)
 * into r's landing slot; then hand each received block to sink. Used by all-gather (same
 * block for everyone) and all-to-all. Chunked by the landing slot size. */
static int exchange(lc_team *t, const char *op, const uint8_t *src, size_t src_stride, uint8_t *dst,
                    size_t dst_stride, size_t bytes)
{
    int rc = lc__barrier(t, op);
    if (rc) return rc;
    size_t chunk = slot_bytes(t), i = 0;
    int n = t->size;
    for (size_t off = 0; off < bytes; off += chunk, i++) {
        size_t b = bytes - off < chunk ? bytes - off : chunk;
        int area = (int)(i & 1);
        for (int k = 1; k < n && !rc; k++) {
            int r = (t->me + k) % n; /* staggered so that PEs do not all hit one peer at once */
            rc = push(t, r, area, src + (size_t)r * src_stride + off, b);
        }
        if (rc) return rc;
        memmove(dst + (size_t)t->me * dst_stride + off, src + (size_t)t->me * src_stride + off, b);
        if ((rc = await(t, area, (uint64_t)(n - 1), op))) return rc;
        for (int r = 0; r < n; r++)
            if (r != t->me) memcpy(dst + (size_t)r * dst_stride + off, landing(t, area, r), b);
    }
    return LC_OK;
}

int lc_allgather(lc_team *t, void *dst, const void *src, size_t bpp)
{
    int rc = check(t, "lc_allgather", dst, src, bpp);
    if (rc || (rc = lowered(t)) || (t->w->be->coll && (rc = t->w->be->coll->allgather(t, dst, src, bpp)) <= 0))
        return rc;
    /* src_stride 0 sends the same block to all; my block lands at dst + me*bpp. The local copy
     * in exchange() reads src + me*0 = src. */
    return exchange(t, "lc_allgather", src, 0, dst, bpp, bpp);
}

int lc_alltoall(lc_team *t, void *dst, const void *src, size_t bpp)
{
    int rc = check(t, "lc_alltoall", dst, src, bpp);
    if (rc) return rc;
    if (dst == src && bpp && t->size > 1)
        return lc__coll_err(t->w, LC_ERR_ARG, "lc_alltoall: dst and src must not be the same buffer");
    if ((rc = lowered(t)) || (t->w->be->coll && (rc = t->w->be->coll->alltoall(t, dst, src, bpp)) <= 0)) return rc;
    return exchange(t, "lc_alltoall", src, bpp, dst, bpp, bpp);
}

typedef enum { RED_SUM_F32, RED_SUM_F64, RED_MAX_F64 } red_op;

static size_t esize(red_op op) { return op == RED_SUM_F32 ? 4 : 8; }

/* out = sum over ranks in order of the pieces; mine comes from local memory. */
static void reduce_piece(lc_team *t, red_op op, int area, const uint8_t *mine, uint8_t *out, size_t count)
{
    int n = t->size;
    if (op == RED_SUM_F32) {
        float *o = (float *)out;
        for (size_t i = 0; i < count; i++) o[i] = 0.0f;
        for (int r = 0; r < n; r++) {
            const float *p = (const float *)(r == t->me ? mine : landing(t, area, r));
            for (size_t i = 0; i < count; i++) o[i] += p[i];
        }
    } else {
        double *o = (double *)out;
        for (int r = 0; r < n; r++) {
            const double *p = (const double *)(r == t->me ? mine : landing(t, area, r));
            for (size_t i = 0; i < count; i++) {
                if (r == 0) o[i] = p[i];
                else if (op == RED_SUM_F64) o[i] += p[i];
                else o[i] = (p[i] > o[i] || isnan(p[i])) ? p[i] : o[i];
            }
        }
    }
}

static int allreduce(lc_team *t, red_op op, void *dstv, const void *srcv, size_t count, const char *name)
{
    int rc = check(t, name, dstv, srcv, count);
    if (rc || (rc = lowered(t)) ||
        (t->w->be->coll && (rc = t->w->be->coll->reduce(t, (int)op, 0, dstv, srcv, count, name)) <= 0))
        return rc;
    if ((rc = lc__barrier(t, name))) return rc;
    int n = t->size;
    size_t es = esize(op), piece_max = slot_bytes(t) / es; /* elements per piece */
    const uint8_t *src = srcv;
    uint8_t *dst = dstv;
    uint8_t *tmp = lc__team_scratch(t, piece_max * es);
    if (!tmp) return lc__err(t->w, LC_ERR_SYS, "out of host memory");
    size_t round = piece_max * (size_t)n;
    for (size_t base = 0; base < count; base += round) {
        size_t here = count - base < round ? count - base : round;
        size_t piece = (here + (size_t)n - 1) / (size_t)n;
#define PIECE_LO(r) ((size_t)(r) * piece < here ? (size_t)(r) * piece : here)
#define PIECE_N(r) (PIECE_LO((r) + 1) - PIECE_LO(r))
        /* phase 1: piece r of my data goes to rank r */
        for (int k = 1; k < n && !rc; k++) {
            int r = (t->me + k) % n;
            rc = push(t, r, 0, src + (base + PIECE_LO(r)) * es, PIECE_N(r) * es);
        }
        if (rc || (rc = await(t, 0, (uint64_t)(n - 1), name))) break;
        reduce_piece(t, op, 0, src + (base + PIECE_LO(t->me)) * es, tmp, PIECE_N(t->me));
        /* phase 2: my reduced piece goes to everyone */
        for (int k = 1; k < n && !rc; k++) rc = push(t, (t->me + k) % n, 1, tmp, PIECE_N(t->me) * es);
        if (rc) break;
        memcpy(dst + (base + PIECE_LO(t->me)) * es, tmp, PIECE_N(t->me) * es);
        if ((rc = await(t, 1, (uint64_t)(n - 1), name))) break;
        for (int r = 0; r < n; r++)
            if (r != t->me)
                memcpy(dst + (base + PIECE_LO(r)) * es, landing(t, 1, r), PIECE_N(r) * es);
#undef PIECE_LO
#undef PIECE_N
    }
    return rc;
}

int lc_allreduce_sum_f32(lc_team *t, float *dst, const float *src, size_t count)
{
    return allreduce(t, RED_SUM_F32, dst, src, count, "lc_allreduce_sum_f32");
}
int lc_allreduce_sum_f64(lc_team *t, double *dst, const double *src, size_t count)
{
    return allreduce(t, RED_SUM_F64, dst, src, count, "lc_allreduce_sum_f64");
}
int lc_allreduce_max_f64(lc_team *t, double *dst, const double *src, size_t count)
{
    return allreduce(t, RED_MAX_F64, dst, src, count, "lc_allreduce_max_f64");
}

int lc_reduce_scatter_sum_f32(lc_team *t, float *dst, const float *src, size_t cpp)
{
    int rc = check(t, "lc_reduce_scatter_sum_f32", dst, src, cpp);
    if (rc || (rc = lowered(t)) ||
        (t->w->be->coll &&
         (rc = t->w->be->coll->reduce(t, RED_SUM_F32, 1, dst, src, cpp, "lc_reduce_scatter_sum_f32")) <= 0))
        return rc;
    if ((rc = lc__barrier(t, "lc_reduce_scatter_sum_f32"))) return rc;
    int n = t->size;
    size_t chunk = slot_bytes(t) / 4, i = 0;
    float *tmp = lc__team_scratch(t, chunk * sizeof(float)); /* dst may overlap src */
    if (!tmp) return lc__err(t->w, LC_ERR_SYS, "out of host memory");
    for (size_t off = 0; off < cpp; off += chunk, i++) {
        size_t c = cpp - off < chunk ? cpp - off : chunk;
        int area = (int)(i & 1);
        for (int k = 1; k < n && !rc; k++) {
            int r = (t->me + k) % n;
            rc = push(t, r, area, src + (size_t)r * cpp + off, c * 4);
        }
        if (rc || (rc = await(t, area, (uint64_t)(n - 1), "lc_reduce_scatter_sum_f32"))) break;
        reduce_piece(t, RED_SUM_F32, area, (const uint8_t *)(src + (size_t)t->me * cpp + off),
                     (uint8_t *)tmp, c);
        memcpy(dst + off, tmp, c * sizeof(float));
    }
    return rc;
}
