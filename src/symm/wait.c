/* Bounded waits. A PE spins briefly (sub-microsecond hand-offs when it owns a core), then
 * sleeps on its doorbell futex so that oversubscribed PEs leave the core to the PE that has
 * work. Every wait checks the shared abort word and its deadline: nothing waits forever. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
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
    /* shm: the header is everyone's; other backends copy the abort into each peer's. */
    if (w->be && w->be->abort_peers) w->be->abort_peers(w);
    else
        for (int p = 0; p < w->n; p++) lc__ring(w, p);
}

lc_pe_info *lc__pe_info(lc_world *w, int pe)
{
    return w->be && w->be->pe_info ? w->be->pe_info(w, pe) : &w->hdr->pe[pe];
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

/* ---- heartbeat: the failure detector ----
 * A deadline cannot tell a dead peer from a busy one (a ring step at 256K tokens, a
 * checkpoint write). So a PE's liveness is a thread that bumps beat_ns while the process
 * runs; it beats through any amount of compute and stops only when the process is stopped,
 * dead, or so starved that it is of no use to its peers. */
struct lc_heartbeat {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    double period;
    uint64_t bound_ns;
    _Atomic uint64_t *beat;
    /* When this process last came back from a gap (stopped with its job, Ctrl-Z, or
     * starved): peers were stopped with it, so their silence before now is no evidence. */
    _Atomic uint64_t resumed_ns;
};

static void *beat_main(void *arg)
{
    struct lc_heartbeat *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        uint64_t now = lc__now_ns(), prev = atomic_load_explicit(h->beat, memory_order_relaxed);
        if (now - prev > h->bound_ns / 2) atomic_store(&h->resumed_ns, now);
        atomic_store_explicit(h->beat, now, memory_order_relaxed);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double t = (double)ts.tv_nsec * 1e-9 + h->period;
        ts.tv_sec += (time_t)t;
        ts.tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
        while (!h->stop && pthread_cond_timedwait(&h->cv, &h->mu, &ts) == 0) {}
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

int lc__heartbeat_start(lc_world *w)
{
    _Atomic uint64_t *beat = &lc__pe_info(w, w->me)->beat_ns;
    atomic_store(beat, lc__now_ns());
    if (w->n < 2 || !isfinite(w->heartbeat_s)) return LC_OK; /* nobody to watch us */
    struct lc_heartbeat *h = calloc(1, sizeof *h);
    if (!h) return lc__err(w, LC_ERR_SYS, "out of host memory");
    /* Several beats per bound, so one late wake-up of the thread is not a missed beat. */
    h->period = w->heartbeat_s / 8 < 0.5 ? w->heartbeat_s / 8 : 0.5;
    h->beat = beat;
    h->bound_ns = (uint64_t)(w->heartbeat_s * 1e9);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&h->mu, NULL);
    /* The beat thread must not take signals meant for the PE's own threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int e = pthread_create(&h->thread, NULL, beat_main, h);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        pthread_cond_destroy(&h->cv);
        pthread_mutex_destroy(&h->mu);
        free(h);
        return lc__err(w, LC_ERR_SYS, "starting the heartbeat thread: %s", strerror(e));
    }
    w->hb = h;
    return LC_OK;
}

void lc__heartbeat_stop(lc_world *w)
{
    struct lc_heartbeat *h = w->hb;
    if (!h) return;
    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
    w->hb = NULL;
}

/* What the kernel says about a silent peer's process: stopped, a zombie, gone. */
static void process_state(int pid, char *buf, size_t len)
{
    char path[64], stat[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = pid > 0 ? fopen(path, "r") : NULL;
    size_t n = f ? fread(stat, 1, sizeof stat - 1, f) : 0;
    if (f) fclose(f);
    stat[n] = 0;
    const char *p = strrchr(stat, ')'); /* the command name may hold spaces */
    char st = p && p[1] == ' ' ? p[2] : 0;
    if (!st) snprintf(buf, len, "process %d is gone", pid);
    else if (st == 'Z' || st == 'X') snprintf(buf, len, "process %d has exited", pid);
    else if (st == 'T' || st == 't') snprintf(buf, len, "process %d is stopped", pid);
    else snprintf(buf, len, "process %d is in state %c", pid, st);
}

int lc__watch_peers(lc_world *w, const char *op)
{
    if (lc__aborted(w)) return 1;
    if (!w->hb || w->n < 2) return 0;
    double now = lc__now();
    if (now < w->next_watch) return 0;
    w->next_watch = now + (w->heartbeat_s / 8 < 0.05 ? w->heartbeat_s / 8 : 0.05);
    uint64_t now_ns = lc__now_ns(), bound = w->hb->bound_ns;
    /* My own beat is late too: this process was stopped or starved with the others (a
     * stopped job resumes all its PEs at once), so their silence says nothing yet. */
    uint64_t mine = atomic_load_explicit(&lc__pe_info(w, w->me)->beat_ns, memory_order_relaxed);
    if (now_ns - mine > bound / 2) return 0;
    uint64_t from = atomic_load(&w->hb->resumed_ns);
    for (int p = 0; p < w->n; p++) {
        lc_pe_info *info = lc__pe_info(w, p); /* NULL: another host, watched by its launcher */
        if (p == w->me || !info || atomic_load(&info->state) != LC_PE_RUNNING) continue;
        uint64_t beat = atomic_load_explicit(&info->beat_ns, memory_order_relaxed);
        if (!beat) continue; /* still joining */
        uint64_t since = beat < from ? from : beat;
        if (since > now_ns || now_ns - since <= bound) continue;
        char how[96];
        process_state(atomic_load(&info->pid), how, sizeof how);
        lc__abort(w, p, "PE %d stopped responding (no heartbeat for %.1f s, LONGCTX_HEARTBEAT_S=%g; %s) "
                  "while PE %d waited in %s", p, 1e-9 * (double)(now_ns - beat), w->heartbeat_s, how, w->me, op);
        return 1;
    }
    return 0;
}

int lc__wait(lc_world *w, lc_pred_fn pred, void *ctx, const char *op, lc_describe_fn describe)
{
    if (pred(ctx)) return LC_OK;
    /* One deadline for the spin and the sleep: a long spin budget must not outlast it.
     * Unbounded (INFINITY) unless LONGCTX_TIMEOUT asks; peers are watched by heartbeat. */
    double t0 = lc__now(), deadline = t0 + w->timeout_s;
    /* Spin for a bounded time (not count: the cost of one check varies with the predicate).
     * The first 2 us are a pure spin, the rest yields between checks: when the peer we wait
     * for shares our core (other load on the machine), a pure spin would hold it off for the
     * whole spin time, while sched_yield returns at once when nobody else wants the core. */
    if (w->spin_us > 0) {
        double pure = t0 + 2e-6; /* pure spin: the hand-off latency on idle cores */
        double until = t0 + 1e-6 * w->spin_us;
        if (until > deadline) until = deadline;
        for (long i = 1;; i++) {
            cpu_relax();
            if (pred(ctx)) return LC_OK;
            if ((i & 63) == 0) {
                if (w->be->progress) w->be->progress(w);
                if (lc__watch_peers(w, op)) return lc__abort_error(w, op);
                double now = lc__now();
                if (now > until) break;
                if (now > pure) sched_yield();
            }
        }
    }
    lc_pe_ctrl *me = lc__ctrl(w, w->me);
    /* A backend whose remote updates ring no doorbell caps the sleep (progress's answer);
     * the slice starts short and doubles while nothing arrives. */
    double slice = 20e-6;
    for (;;) {
        double cap = 0.1;
        if (w->be->progress) {
            cap = w->be->progress(w);
            if (pred(ctx)) return LC_OK;
        }
        if (lc__watch_peers(w, op)) return lc__abort_error(w, op);
        double left = deadline - lc__now();
        if (left <= 0) break;
        slice = !w->be->progress ? cap : slice * 2 < cap ? slice * 2 : cap;
        if (left > slice) left = slice;
        /* Announce the sleep before re-checking, so a signaller either sees a sleeper
         * (and wakes us) or we see its update: no lost wake-up. */
        atomic_fetch_add(&me->sleepers, 1);
        uint32_t bell = atomic_load(&me->doorbell);
        int ready = pred(ctx) || lc__aborted(w);
        if (!ready) futex_wait(&me->doorbell, bell, left);
        atomic_fetch_sub(&me->sleepers, 1);
        if (pred(ctx)) return LC_OK;
    }
    char what[512] = "";
    if (describe) describe(ctx, what, sizeof what);
    lc__abort(w, w->me, "PE %d timed out after %.1f s in %s (%s) [LONGCTX_TIMEOUT=%g]", w->me, w->timeout_s, op,
              what, w->timeout_s);
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
