/* The MPI backend's teams, two-sided permute and collectives: a team is a communicator, and
 * every operation is MPI's non-blocking one completed inside the runtime's bounded wait
 * (lc__wait), so a dead or failed peer still ends it with the abort's reason, and
 * LONGCTX_TIMEOUT still bounds it. Reductions move data with MPI (all-to-all, all-gather)
 * but add in team-rank order here, as coll.c does, so that every member and both backends
 * get the same bits (MPI_Allreduce promises neither). A call MPI cannot express in int
 * counts returns 1: coll.c then runs its own algorithm over the transport. */
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "symm/mpi_internal.h"

#define TAG_PERM 16     /* + channel */
#define TAG_TEAM 1000   /* + slot, MPI_Comm_create_group */
#define INT_COUNT(x) ((x) <= (size_t)(1u << 30))

typedef struct {
    MPI_Request *req;
    int n, mrc;
    const char *what;
} req_wait;

static int req_pred(void *p)
{
    req_wait *r = p;
    int flag = 0;
    int mrc = MPI_Testall(r->n, r->req, &flag, MPI_STATUSES_IGNORE);
    if (mrc != MPI_SUCCESS) {
        r->mrc = mrc;
        return 1;
    }
    return flag;
}

static void req_describe(void *p, char *buf, size_t len)
{
    req_wait *r = p;
    snprintf(buf, len, "%s (MPI requests not complete)", r->what);
}

static int complete(lc_team *t, MPI_Request *req, int n, const char *op, const char *what)
{
    req_wait r = {req, n, MPI_SUCCESS, what};
    lc_mpi_state *s = t->w->be_state;
    s->req_waits++; /* MPI's messages ring no doorbell */
    int rc = lc__wait(t->w, req_pred, &r, op, req_describe);
    s->req_waits--;
    /* The abort may overtake an operation that had in fact completed (its last message sits
     * in MPI's queues, undriven): finish it, so that an abort is reported by the first call
     * that really cannot complete, as on shm. Bounded: a short grace of progress. */
    for (double until = lc__now() + 0.2; rc == LC_ERR_ABORT && lc__now() < until;) {
        int flag = 0;
        if (MPI_Testall(n, req, &flag, MPI_STATUSES_IGNORE) != MPI_SUCCESS) break;
        if (flag) rc = LC_OK;
        else sched_yield();
    }
    if (!rc && r.mrc != MPI_SUCCESS) {
        lc__mpi_status(t->w, r.mrc, LC_ERR_ABORT, "%s: %s", op, what);
        return lc__coll_err(t->w, LC_ERR_ABORT, "%s", t->w->err);
    }
    return rc;
}

static int started(lc_team *t, int mrc, const char *op, const char *call)
{
    if (mrc == MPI_SUCCESS) return LC_OK;
    lc__mpi_status(t->w, mrc, LC_ERR_ABORT, "%s: %s on team(start %d, stride %d, size %d)", op, call, t->start,
                   t->stride, t->size);
    return lc__coll_err(t->w, LC_ERR_ABORT, "%s", t->w->err);
}

static MPI_Comm comm_of(lc_team *t) { return ((lc_mpi_team *)t->be_team)->comm; }

int lc__mpi_team_init(lc_team *t)
{
    lc_world *w = t->w;
    lc_mpi_state *s = w->be_state;
    lc_mpi_team *m = calloc(1, sizeof *m);
    if (!m) return lc__err(w, LC_ERR_SYS, "out of host memory");
    for (int c = 0; c < LC_PERM_CH; c++) m->perm[c][0] = m->perm[c][1] = MPI_REQUEST_NULL;
    if (t->start == 0 && t->stride == 1 && t->size == w->n) {
        m->comm = s->world;
    } else {
        /* Collective over the members only, as a split is for the new team. */
        MPI_Group gw, g;
        int range[1][3] = {{t->start, t->start + (t->size - 1) * t->stride, t->stride}};
        MPI_Comm_group(s->world, &gw);
        MPI_Group_range_incl(gw, 1, range, &g);
        int mrc = MPI_Comm_create_group(s->world, g, TAG_TEAM + t->slot, &m->comm);
        MPI_Group_free(&g);
        MPI_Group_free(&gw);
        if (mrc != MPI_SUCCESS) {
            free(m);
            return lc__mpi_status(w, mrc, LC_ERR_SYS, "MPI_Comm_create_group for team(start %d, stride %d, size %d)",
                                  t->start, t->stride, t->size);
        }
        MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
        m->own = 1;
    }
    t->be_team = m;
    return LC_OK;
}

void lc__mpi_team_free(lc_team *t)
{
    lc_mpi_team *m = t->be_team;
    if (!m) return;
    /* After an abort a peer may never take part in the free: leave the communicator. */
    if (m->own && !lc__aborted(t->w)) MPI_Comm_free(&m->comm);
    free(m);
    t->be_team = NULL;
}

/* ---- two-sided permute: MPI's own matching replaces the credits and the FIFO ---- */
int lc__mpi_perm_start(struct lc__perm *r)
{
    lc_team *t = r->team;
    lc_mpi_team *m = t->be_team;
    MPI_Request *q = m->perm[r->channel];
    int mrc = MPI_SUCCESS;
    if (r->recv_from >= 0)
        mrc = MPI_Irecv(r->dst, (int)r->bytes, MPI_BYTE, r->recv_from, TAG_PERM + r->channel, m->comm, &q[0]);
    if (mrc == MPI_SUCCESS && r->send_to >= 0)
        mrc = MPI_Isend(r->src, (int)r->bytes, MPI_BYTE, r->send_to, TAG_PERM + r->channel, m->comm, &q[1]);
    return started(t, mrc, "lc_permute_start (two_sided)", "MPI_Isend/MPI_Irecv");
}

int lc__mpi_perm_done(struct lc__perm *r, const char *op)
{
    lc_team *t = r->team;
    lc_mpi_team *m = t->be_team;
    char what[128];
    snprintf(what, sizeof what, "MPI permute channel %d: send to rank %d, receive from rank %d", r->channel,
             r->send_to, r->recv_from);
    return complete(t, m->perm[r->channel], 2, op, what);
}

/* ---- collectives ---- */
static int mpi_barrier(lc_team *t, const char *op)
{
    MPI_Request q;
    int rc = started(t, MPI_Ibarrier(comm_of(t), &q), op, "MPI_Ibarrier");
    return rc ? rc : complete(t, &q, 1, op, "MPI_Ibarrier");
}

static int mpi_broadcast(lc_team *t, void *dst, const void *src, size_t bytes, int root)
{
    if (t->me == root && dst != src && bytes) memmove(dst, src, bytes);
    for (size_t off = 0; off < bytes || (off == 0 && bytes == 0); off += (size_t)1 << 30) {
        size_t b = bytes - off < ((size_t)1 << 30) ? bytes - off : (size_t)1 << 30;
        MPI_Request q;
        int rc = started(t, MPI_Ibcast((uint8_t *)dst + off, (int)b, MPI_BYTE, root, comm_of(t), &q), "lc_broadcast",
                         "MPI_Ibcast");
        if (rc || (rc = complete(t, &q, 1, "lc_broadcast", "MPI_Ibcast"))) return rc;
        if (!bytes) break;
    }
    return LC_OK;
}

static int overlaps(const void *a, size_t an, const void *b, size_t bn)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return an && bn && x < y + bn && y < x + an;
}

static int mpi_allgather(lc_team *t, void *dst, const void *src, size_t bpp)
{
    size_t all = bpp * (size_t)t->size;
    if (!INT_COUNT(bpp) || all / (size_t)t->size != bpp) return 1;
    const void *sb = src;
    if (src == (uint8_t *)dst + (size_t)t->me * bpp) sb = MPI_IN_PLACE;
    else if (overlaps(src, bpp, dst, all)) return 1;
    MPI_Request q;
    int rc = started(t, MPI_Iallgather(sb, (int)bpp, MPI_BYTE, dst, (int)bpp, MPI_BYTE, comm_of(t), &q),
                     "lc_allgather", "MPI_Iallgather");
    return rc ? rc : complete(t, &q, 1, "lc_allgather", "MPI_Iallgather");
}

static int mpi_alltoall(lc_team *t, void *dst, const void *src, size_t bpp)
{
    size_t all = bpp * (size_t)t->size;
    if (!INT_COUNT(bpp) || all / (size_t)t->size != bpp || overlaps(src, all, dst, all)) return 1;
    MPI_Request q;
    int rc = started(t, MPI_Ialltoall(src, (int)bpp, MPI_BYTE, dst, (int)bpp, MPI_BYTE, comm_of(t), &q),
                     "lc_alltoall", "MPI_Ialltoall");
    return rc ? rc : complete(t, &q, 1, "lc_alltoall", "MPI_Ialltoall");
}

/* out[i] = contributions of ranks 0..n-1 in order (in[r * stride + i]), as coll.c adds. */
static void reduce_rows(int kind, int n, const uint8_t *in, size_t stride, uint8_t *out, size_t count)
{
    if (kind == 0) {
        float *o = (float *)out;
        const float *p = (const float *)in;
        for (size_t i = 0; i < count; i++) o[i] = 0.0f;
        for (int r = 0; r < n; r++)
            for (size_t i = 0; i < count; i++) o[i] += p[(size_t)r * stride + i];
        return;
    }
    double *o = (double *)out;
    const double *p = (const double *)in;
    for (int r = 0; r < n; r++)
        for (size_t i = 0; i < count; i++) {
            double v = p[(size_t)r * stride + i];
            if (r == 0) o[i] = v;
            else if (kind == 1) o[i] += v;
            else o[i] = (v > o[i] || isnan(v)) ? v : o[i];
        }
}

static int mpi_reduce(lc_team *t, int kind, int scatter, void *dstv, const void *srcv, size_t count, const char *op)
{
    int n = t->size, rc = LC_OK;
    size_t es = kind == 0 ? 4 : 8;
    MPI_Datatype type = kind == 0 ? MPI_FLOAT : MPI_DOUBLE;
    const uint8_t *src = srcv;
    uint8_t *dst = dstv;
    MPI_Request q;
    if (scatter) { /* my block of everyone's src, then added in rank order */
        if (!INT_COUNT(count)) return 1;
        uint8_t *tmp = lc__team_scratch(t, count * es * (size_t)n + 1);
        if (!tmp) return lc__coll_err(t->w, LC_ERR_SYS, "%s: out of host memory", op);
        rc = started(t, MPI_Ialltoall(src, (int)count, type, tmp, (int)count, type, comm_of(t), &q), op,
                     "MPI_Ialltoall");
        if (!rc) rc = complete(t, &q, 1, op, "MPI_Ialltoall");
        if (!rc) reduce_rows(kind, n, tmp, count, dst, count);
        return rc;
    }
    /* All-reduce: piece r of every member goes to r, which adds them; then all pieces go to
     * everyone. Rounds keep every count and displacement an int. */
    size_t round = (size_t)n << 24;
    size_t max_piece = ((count < round ? count : round) + (size_t)n - 1) / (size_t)n;
    size_t cnt_bytes = (sizeof(int) * (size_t)n * 4 + 15) & ~(size_t)15; /* keeps tmp 16-aligned */
    uint8_t *scratch = lc__team_scratch(t, cnt_bytes + max_piece * es * (size_t)n + 1);
    if (!scratch) return lc__coll_err(t->w, LC_ERR_SYS, "%s: out of host memory", op);
    int *cnt = (int *)scratch;
    uint8_t *tmp = scratch + cnt_bytes;
    int *sdis = cnt + n, *rcnt = cnt + 2 * n, *rdis = cnt + 3 * n;
    for (size_t base = 0; base < count && !rc; base += round) {
        size_t here = count - base < round ? count - base : round;
        size_t piece = (here + (size_t)n - 1) / (size_t)n;
        for (int r = 0; r < n; r++) {
            size_t lo = (size_t)r * piece < here ? (size_t)r * piece : here;
            size_t hi = (size_t)(r + 1) * piece < here ? (size_t)(r + 1) * piece : here;
            cnt[r] = (int)(hi - lo);
            sdis[r] = (int)lo;
        }
        int mine = cnt[t->me];
        for (int r = 0; r < n; r++) {
            rcnt[r] = mine;
            rdis[r] = r * mine;
        }
        rc = started(t, MPI_Ialltoallv(src + base * es, cnt, sdis, type, tmp, rcnt, rdis, type, comm_of(t), &q), op,
                     "MPI_Ialltoallv");
        if (!rc) rc = complete(t, &q, 1, op, "MPI_Ialltoallv");
        if (rc) break;
        uint8_t *out = dst + (base + (size_t)sdis[t->me]) * es;
        reduce_rows(kind, n, tmp, (size_t)mine, out, (size_t)mine);
        rc = started(t, MPI_Iallgatherv(MPI_IN_PLACE, 0, type, dst + base * es, cnt, sdis, type, comm_of(t), &q), op,
                     "MPI_Iallgatherv");
        if (!rc) rc = complete(t, &q, 1, op, "MPI_Iallgatherv");
    }
    return rc;
}

const lc_coll_ops lc__mpi_coll = {
    .barrier = mpi_barrier,
    .broadcast = mpi_broadcast,
    .allgather = mpi_allgather,
    .alltoall = mpi_alltoall,
    .reduce = mpi_reduce,
};
