/* Collective permute as an async start/done pair, with two lowerings.
 *
 * one_sided: the receiver grants a credit at start (its dst is free); the sender, once it
 *   holds the credit, puts straight into the receiver's dst with a put-with-signal of the
 *   data counter. If the credit is not there yet at start, the put is issued at done: no PE
 *   ever blocks in start, and a sender never overwrites a buffer its receiver is still reading.
 * two_sided: the NCCL-style baseline. After the same credit hand-shake the sender puts chunks
 *   into a bounded FIFO in the receiver's memory, each with a signal of the receiver's tail;
 *   the receiver copies each chunk out to dst and acks it to the sender. Two copies, and both
 *   sides must make progress together inside done. The FIFO is empty whenever a receiver
 *   grants a credit (its previous permute on the channel is done), so every permute starts
 *   at FIFO slot 0; the sender may be at most LC_FIFO_SLOTS chunks ahead of the acks.
 * Everything crosses PEs through the backend (put_signal, signal_op, wait); a PE only ever
 * reads and waits on its own signal words. Channels: permute k on a team uses channel
 * k mod LC_PERM_CH, so up to that many can be in flight (e.g. KV and dK/dV in a ring
 * backward). */
#include <stdio.h>
#include <string.h>

#include "symm/internal.h"

static lc_slot_sync *my_sync(lc_team *t) { return lc__sync(t, t->me); }

static _Atomic uint64_t *credit_word(lc_team *t, int ch, int receiver)
{
    return &my_sync(t)->credit[ch][receiver];
}

static int credit_ready(lc__perm *r)
{
    lc_team *t = r->team;
    return atomic_load_explicit(credit_word(t, r->channel, r->send_to), memory_order_acquire) >
           t->credit_expect[r->channel * t->size + r->send_to];
}

static void take_credit(lc__perm *r)
{
    r->team->credit_expect[r->channel * r->team->size + r->send_to]++;
}

static int one_sided_put(lc__perm *r)
{
    lc_team *t = r->team;
    lc_world *w = t->w;
    take_credit(r);
    r->sent = 1;
    return w->be->put_signal(w, r->dst, r->src, r->bytes, &my_sync(t)->ch[r->channel].data.v, 1,
                             LC_SIGNAL_ADD, lc__team_pe(t, r->send_to));
}

/* Two-sided progress: returns 1 when something moved, 0 when not, <0 on a transport error.
 * tx_base: chunks I had put into the receiver's FIFO (on this channel) before this permute;
 * the receiver's acks count the same chunks, so tx_base + k - acks is what is in flight. */
static int two_sided_step(lc__perm *r)
{
    lc_team *t = r->team;
    lc_world *w = t->w;
    int c = r->channel, progressed = 0, rc;
    if (r->send_to >= 0 && !r->sent) {
        uint64_t *sent = &t->fifo_sent[c * t->size + r->send_to];
        if (!r->have_credit && credit_ready(r)) {
            take_credit(r);
            r->have_credit = 1;
            r->tx_base = *sent;
            progressed = 1;
        }
        if (r->have_credit) {
            _Atomic uint64_t *acks = &my_sync(t)->fifo_ack[c][r->send_to];
            int pe = lc__team_pe(t, r->send_to);
            uint8_t *fifo = lc__fifo(w, w->me, t->slot, c); /* my copy names the receiver's */
            while (r->tx_chunks < r->n_chunks &&
                   r->tx_base + r->tx_chunks - atomic_load_explicit(acks, memory_order_acquire) < LC_FIFO_SLOTS) {
                size_t off = r->tx_chunks * LC_FIFO_CHUNK;
                size_t b = r->bytes - off < LC_FIFO_CHUNK ? r->bytes - off : LC_FIFO_CHUNK;
                rc = w->be->put_signal(w, fifo + (r->tx_chunks % LC_FIFO_SLOTS) * LC_FIFO_CHUNK,
                                       (const uint8_t *)r->src + off, b, &my_sync(t)->ch[c].tail.v, 1,
                                       LC_SIGNAL_ADD, pe);
                if (rc) return rc;
                r->tx_chunks++;
                (*sent)++;
                progressed = 1;
            }
            if (r->tx_chunks == r->n_chunks) r->sent = 1;
        }
    }
    if (r->recv_from >= 0 && r->rx_chunks < r->n_chunks) {
        _Atomic uint64_t *tail = &my_sync(t)->ch[c].tail.v;
        uint8_t *fifo = lc__fifo(w, w->me, t->slot, c);
        int pe = lc__team_pe(t, r->recv_from);
        while (r->rx_chunks < r->n_chunks &&
               atomic_load_explicit(tail, memory_order_acquire) > r->rx_base + r->rx_chunks) {
            size_t off = r->rx_chunks * LC_FIFO_CHUNK;
            size_t b = r->bytes - off < LC_FIFO_CHUNK ? r->bytes - off : LC_FIFO_CHUNK;
            memcpy((uint8_t *)r->dst + off, fifo + (r->rx_chunks % LC_FIFO_SLOTS) * LC_FIFO_CHUNK, b);
            r->rx_chunks++;
            /* The slot is free again: my reads come before the ack (release ordering). */
            rc = w->be->signal_op(w, &my_sync(t)->fifo_ack[c][t->me], 1, LC_SIGNAL_ADD, pe);
            if (rc) return rc;
            progressed = 1;
        }
        if (r->rx_chunks == r->n_chunks) t->fifo_taken[c] = r->rx_base + r->n_chunks;
    }
    return progressed;
}

static int two_sided_finished(const lc__perm *r)
{
    return (r->send_to < 0 || r->sent) && (r->recv_from < 0 || r->rx_chunks == r->n_chunks);
}

/* Drives every outstanding two-sided request of the team, so that PEs completing their
 * requests in different orders cannot deadlock on each other's full FIFOs. */
/* Drives every outstanding two-sided request of the team, so that PEs completing their
 * requests in different orders cannot deadlock on each other's full FIFOs. A transport error
 * ends the wait (the request remembers it). */
static int two_sided_pred(void *p)
{
    lc__perm *r = p;
    lc_team *t = r->team;
    for (int c = 0; c < LC_PERM_CH; c++) {
        lc__perm *o = t->in_flight[c];
        if (o && o->lowering == LC_LOWER_TWO_SIDED && !o->native && !two_sided_finished(o)) {
            int rc = two_sided_step(o);
            if (rc < 0 && !r->error) r->error = rc;
        }
    }
    return r->error || two_sided_finished(r);
}

static void two_sided_describe(void *p, char *buf, size_t len)
{
    lc__perm *r = p;
    snprintf(buf, len,
             "two_sided permute channel %d: send to rank %d %s (%zu/%zu chunks), receive from rank "
             "%d (%zu/%zu chunks)",
             r->channel, r->send_to, r->have_credit || r->send_to < 0 ? "credited" : "awaiting credit",
             r->tx_chunks, r->n_chunks, r->recv_from, r->rx_chunks, r->n_chunks);
}

static int start(lc_team *t, int send_to, int recv_from, const void *src, void *dst, size_t bytes,
                 lc_lowering lowering, lc__perm *req)
{
    lc_world *w = t->w;
    if (lc__aborted(w)) return lc__abort_error(w, "lc_permute_start");
    if (bytes && ((send_to >= 0 && !src) || (recv_from >= 0 && !dst)))
        return lc__coll_err(w, LC_ERR_ARG, "lc_permute_start: NULL buffer for %zu bytes", bytes);
    if (lowering == LC_LOWER_ZERO_COPY || lowering == LC_LOWER_COMPUTE_ONLY)
        return lc__coll_err(w, LC_ERR_ARG, "lc_permute_start: lowering %s moves no bytes; a permute copies "
                            "(auto, one_sided or two_sided)", lc_lowering_name(lowering));
    if ((unsigned)lowering > LC_LOWER_TWO_SIDED)
        return lc__coll_err(w, LC_ERR_ARG, "lc_permute_start: unknown lowering %d", (int)lowering);
    int c = (int)(t->perm_seq % LC_PERM_CH);
    if (t->ch_busy[c])
        return lc__coll_err(w, LC_ERR_ARG,
                       "lc_permute_start: more than %d permutes outstanding on this team (call "
                       "lc_permute_done first)", LC_PERM_CH);
    const char *why;
    lc_lowering l = lc_lowering_resolve(t, lowering, 0, dst, bytes, &why);
    if (l == LC_LOWER_ONE_SIDED && recv_from >= 0 && recv_from != t->me && bytes &&
        !lc_symm_contains(w, dst, bytes))
        return lc__coll_err(w, LC_ERR_ARG,
                       "lc_permute_start: one_sided needs dst in the symmetric heap (%zu bytes at %p are not)",
                       bytes, dst);
    if (w->debug && (t->logged_bytes != bytes || t->logged_lowering != (int)l)) {
        lc__debug(w, "permute on team(start %d, stride %d, size %d): %zu bytes -> %s (%s)", t->start,
                  t->stride, t->size, bytes, lc_lowering_name(l), why);
        t->logged_bytes = bytes;
        t->logged_lowering = (int)l;
    }
    memset(req, 0, sizeof *req);
    req->team = t;
    req->send_to = send_to;
    req->recv_from = recv_from;
    req->src = src;
    req->dst = dst;
    req->bytes = bytes;
    req->lowering = l;
    req->channel = c;
    req->epoch = ++t->perm_seq;
    req->magic = LC__PERM_ACTIVE;
    req->n_chunks = (bytes + LC_FIFO_CHUNK - 1) / LC_FIFO_CHUNK;
    t->ch_busy[c] = 1;
    t->in_flight[c] = req;
    if (send_to == t->me) { /* a shift that maps onto myself: a local copy, no signals */
        if (bytes && dst != src) memmove(dst, src, bytes);
        req->send_to = req->recv_from = -1;
        return LC_OK;
    }
    int rc = LC_OK;
    /* The backend's own two-sided messages (MPI_Isend/Irecv) need no credits: the receive
     * names dst, and MPI's matching keeps the order per channel. */
    if (l == LC_LOWER_TWO_SIDED && w->be->perm_start && bytes <= (1u << 30)) {
        req->native = 1;
        return w->be->perm_start(req);
    }
    if (recv_from >= 0) {
        /* Credit: my dst (and my FIFO, drained by my last done on this channel) is free from
         * now on. My earlier reads of dst come before it (release ordering). */
        req->rx_base = t->fifo_taken[c];
        rc = w->be->signal_op(w, credit_word(t, c, t->me), 1, LC_SIGNAL_ADD, lc__team_pe(t, recv_from));
    }
    if (!rc && send_to >= 0 && l == LC_LOWER_ONE_SIDED && credit_ready(req)) rc = one_sided_put(req);
    return rc;
}

int lc_permute_start(lc_team *t, int shift, const void *src, void *dst, size_t bytes,
                     lc_lowering lowering, lc_permute_req *req)
{
    if (!t || !req) return LC_ERR_ARG;
    int n = t->size;
    int s = ((shift % n) + n) % n;
    return start(t, (t->me + s) % n, (t->me - s + n) % n, src, dst, bytes, lowering, (lc__perm *)req);
}

int lc_permute_start_map(lc_team *t, const int *dest_of, const void *src, void *dst, size_t bytes,
                         lc_lowering lowering, lc_permute_req *req)
{
    if (!t || !req) return LC_ERR_ARG;
    if (!dest_of) return lc__coll_err(t->w, LC_ERR_ARG, "lc_permute_start_map: NULL map");
    int recv_from = -1;
    for (int r = 0; r < t->size; r++) {
        if (dest_of[r] < -1 || dest_of[r] >= t->size)
            return lc__coll_err(t->w, LC_ERR_ARG, "lc_permute_start_map: dest_of[%d] = %d is not a team rank or -1",
                           r, dest_of[r]);
        if (dest_of[r] == t->me) {
            if (recv_from >= 0)
                return lc__coll_err(t->w, LC_ERR_ARG,
                               "lc_permute_start_map: rank %d receives from both %d and %d", t->me,
                               recv_from, r);
            recv_from = r;
        }
    }
    int send_to = dest_of[t->me];
    if (send_to == t->me) recv_from = t->me;
    return start(t, send_to, recv_from, src, dst, bytes, lowering, (lc__perm *)req);
}

int lc_permute_done(lc_permute_req *opaque)
{
    lc__perm *req = (lc__perm *)opaque;
    /* A request that was never started (or is done already) is not one of the team's. */
    if (!req || req->magic != LC__PERM_ACTIVE || !req->team || (unsigned)req->channel >= LC_PERM_CH ||
        req->team->in_flight[req->channel] != req)
        return LC_ERR_ARG;
    lc_team *t = req->team;
    lc_world *w = t->w;
    int rc = LC_OK;
    if (req->lowering == LC_LOWER_ONE_SIDED) {
        if (req->send_to >= 0 && !req->sent) {
            char what[96];
            snprintf(what, sizeof what, "credit from receiver rank %d, channel %d", req->send_to, req->channel);
            rc = w->be->wait(w, credit_word(t, req->channel, req->send_to), LC_CMP_GT,
                             t->credit_expect[req->channel * t->size + req->send_to],
                             "lc_permute_done (one_sided send)", what, NULL);
            if (!rc) rc = one_sided_put(req);
        }
        if (!rc && req->recv_from >= 0) {
            char what[96];
            snprintf(what, sizeof what, "data from rank %d (PE %d), channel %d", req->recv_from,
                     lc__team_pe(t, req->recv_from), req->channel);
            t->data_expect[req->channel]++;
            rc = w->be->wait(w, &my_sync(t)->ch[req->channel].data.v, LC_CMP_GE, t->data_expect[req->channel],
                             "lc_permute_done (one_sided receive)", what, NULL);
        }
    } else if (req->native) {
        rc = w->be->perm_done(req, "lc_permute_done (two_sided)");
    } else {
        rc = w->be->wait_pred(w, two_sided_pred, req, "lc_permute_done (two_sided)", two_sided_describe);
        if (!rc) rc = req->error;
    }
    w->be->quiet(w);
    t->ch_busy[req->channel] = 0;
    t->in_flight[req->channel] = NULL;
    req->magic = 0;
    return rc;
}
