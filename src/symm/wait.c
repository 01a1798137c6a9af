/* Bounded waits. A PE spins briefly (sub-microsecond hand-offs when it owns a core), then
 * sleeps on its doorbell futex so that oversubscribed PEs leave the core to the PE that has
 * work. Every wait checks the shared abort word and its deadline: nothing waits forever. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "symm/internal.h"

/* No PAUSE in the spin: under KVM, pause-loop exiting turns a PAUSE spin into VM exits
 * that deschedule the vCPU for hundreds of microseconds. A plain re-read is cheap. */
#define cpu_relax() __asm__ volatile("" ::: "memory")

int lc__aborted(lc_world *w) { return atomic_load_explicit(&w->hdr->abort_state, memory_order_acquire) != 0; }

void lc__abort(lc_world *w, int pe, const char *fmt, ...)
{
    lc_shm_header *h = w->hdr;
    uint32_t expect = 0;
    if (atomic_compare_exchange_strong(&h->abort_state, &expect, 1)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(h->abort_reason, sizeof h->abort_reason, fmt, ap);
        va_end(ap);
        h->abort_pe = pe;
        atomic_store(&h->abort_state, 2);
    }
    for (int p = 0; p < w->n; p++) lc__ring(w, p);
}

void lc_world_abort(lc_world *w, const char *reason)
{
    if (w && w->hdr) lc__abort(w, w->me, "PE %d aborted: %s", w->me, reason ? reason : "no reason given");
}

int lc__abort_error(lc_world *w, const char *op)
{
    lc_shm_header *h = w->hdr;
    /* The writer publishes state 2 after the reason; give it a moment if we caught it mid-way. */
    for (int i = 0; i < 1000 && atomic_load(&h->abort_state) == 1; i++) sched_yield();
    return lc__err(w, LC_ERR_ABORT, "%s stopped: %s", op,
                   atomic_load(&h->abort_state) == 2 ? h->abort_reason : "the world was aborted");
}

static long futex_wait(_Atomic uint32_t *addr, uint32_t val, double seconds)
{
    struct timespec ts;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    return syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT, val, &ts, NULL, 0);
}

int lc__wait(lc_world *w, lc_pred_fn pred, void *ctx, const char *op, lc_describe_fn describe)
{
    if (pred(ctx)) return LC_OK;
    /* Spin for a bounded time (not count: the cost of one check varies with the predicate).
     * The first 2 us are a pure spin, the rest yields between checks: when the peer we wait
     * for shares our core (other load on the machine), a pure spin would hold it off for the
     * whole spin time, while sched_yield returns at once when nobody else wants the core. */
    if (w->spin_us > 0) {
        double t0 = lc__now(), pure = t0 + 2e-6; /* pure spin: the hand-off latency on idle cores */
        double until = t0 + 1e-6 * (double)w->spin_us;
        for (long i = 1;; i++) {
            cpu_relax();
            if (pred(ctx)) return LC_OK;
            if ((i & 63) == 0) {
                if (lc__aborted(w)) return lc__abort_error(w, op);
                double now = lc__now();
                if (now > until) break;
                if (now > pure) sched_yield();
            }
        }
    }
    lc_pe_ctrl *me = lc__ctrl(w, w->me);
    double deadline = lc__now() + w->timeout_s;
    for (;;) {
        if (lc__aborted(w)) return lc__abort_error(w, op);
        double left = deadline - lc__now();
        if (left <= 0) break;
        /* Announce the sleep before re-checking, so a signaller either sees a sleeper
         * (and wakes us) or we see its update: no lost wake-up. */
        atomic_fetch_add(&me->sleepers, 1);
        uint32_t bell = atomic_load(&me->doorbell);
        int ready = pred(ctx) || lc__aborted(w);
        if (!ready) futex_wait(&me->doorbell, bell, left < 0.1 ? left : 0.1);
        atomic_fetch_sub(&me->sleepers, 1);
        if (pred(ctx)) return LC_OK;
    }
    char what[512] = "";
    if (describe) describe(ctx, what, sizeof what);
    lc__abort(w, w->me, "PE %d timed out after %.1f s in %s (%s)", w->me, w->timeout_s, op, what);
    return lc__err(w, LC_ERR_TIMEOUT, "timeout after %.1f s in %s: %s", w->timeout_s, op, what);
}

typedef struct {
    _Atomic uint64_t *sig;
    int sig_pe;
    lc_cmp cmp;
    uint64_t value;
    const char *what;
    lc_world *w;
} sig_wait;

static int sig_pred(void *p)
{
    sig_wait *s = p;
    return lc__cmp_holds(atomic_load_explicit(s->sig, memory_order_acquire), s->cmp, s->value);
}

static void sig_describe(void *p, char *buf, size_t len)
{
    sig_wait *s = p;
    lc_world *w = s->w;
    uintptr_t a = (uintptr_t)s->sig, base = (uintptr_t)w->map;
    const char *region = "control";
    uintptr_t off = a - base;
    uintptr_t heap_me = (uintptr_t)(w->heap0 + (size_t)w->me * w->heap_stride);
    if (a >= heap_me && a < heap_me + w->heap_bytes) {
        region = "heap";
        off = a - heap_me;
    }
    snprintf(buf, len, "%s: signal at %s+0x%zx on PE %d expected %s %llu, observed %llu",
             s->what ? s->what : "signal", region, (size_t)off, s->sig_pe, lc__cmp_str(s->cmp),
             (unsigned long long)s->value, (unsigned long long)atomic_load(s->sig));
}

int lc__wait_sig(lc_world *w, _Atomic uint64_t *sig, int sig_pe, lc_cmp cmp, uint64_t value,
                 const char *op, const char *what, uint64_t *observed)
{
    sig_wait s = {sig, sig_pe, cmp, value, what, w};
    int rc = lc__wait(w, sig_pred, &s, op, sig_describe);
    if (observed) *observed = atomic_load(sig);
    return rc;
}
