/* Fork-join for the attention kernels.
 *
 * lc_attn_pool keeps its workers for its whole life: between calls they sleep on a condition
 * variable (no spinning, so the cores stay free for BLAS or the runtime), and a call wakes
 * them with one broadcast. This is what a plan uses in the steady state: no thread is
 * created per call. lc_attn_parallel (no pool) starts and joins threads per call; it is the
 * convenience path for callers without a pool. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "attn/internal.h"

typedef void (*task_fn)(void *ctx, int task, int worker);

typedef struct {
    task_fn fn;
    void *ctx;
    int ntasks;
    atomic_int next;
} job;

static void run_tasks(job *j, int worker)
{
    for (;;) {
        int t = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (t >= j->ntasks) break;
        j->fn(j->ctx, t, worker);
    }
}

static int clamp_workers(int nthreads, int ntasks)
{
    if (nthreads > ntasks) nthreads = ntasks;
    if (nthreads > LC_ATTN_MAX_THREADS) nthreads = LC_ATTN_MAX_THREADS;
    return nthreads < 1 ? 1 : nthreads;
}

/* ---- per-call threads (no pool) ---- */

typedef struct {
    job *j;
    int worker;
} worker_arg;

static void *oneshot_main(void *arg)
{
    worker_arg *w = arg;
    run_tasks(w->j, w->worker);
    return NULL;
}

int lc_attn_parallel(int nthreads, int ntasks, task_fn fn, void *ctx)
{
    if (ntasks <= 0) return 0;
    nthreads = clamp_workers(nthreads, ntasks);
    job j = {.fn = fn, .ctx = ctx, .ntasks = ntasks};
    atomic_init(&j.next, 0);
    pthread_t tid[LC_ATTN_MAX_THREADS];
    worker_arg args[LC_ATTN_MAX_THREADS];
    int started = 0, rc = 0;
    for (int i = 1; i < nthreads; i++) {
        args[i].j = &j;
        args[i].worker = i;
        if (pthread_create(&tid[i], NULL, oneshot_main, &args[i]) != 0) {
            rc = -1;
            break;
        }
        started = i;
    }
    run_tasks(&j, 0);
    for (int i = 1; i <= started; i++) pthread_join(tid[i], NULL);
    return rc;
}

/* ---- persistent pool ---- */

struct lc_attn_pool {
    int n;                 /* workers including the caller's thread (worker 0) */
    pthread_t *tid;        /* [n], tid[0] unused */
    pthread_mutex_t call;  /* one call at a time */
    pthread_mutex_t mu;    /* guards everything below */
    pthread_cond_t wake, done;
    uint64_t gen;          /* bumped per call; a worker runs each generation at most once */
    int active;            /* workers 0..active-1 take part in the current generation */
    int pending;           /* participating pool threads not yet finished */
    int ready;             /* threads that reached their loop */
    int stop;
    job j;
};

typedef struct {
    lc_attn_pool *p;
    int worker;
} pool_arg;

static void *pool_main(void *arg)
{
    pool_arg a = *(pool_arg *)arg;
    free(arg);
    lc_attn_pool *p = a.p;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    p->ready++;
    pthread_cond_broadcast(&p->done);
    for (;;) {
        while (p->gen == seen && !p->stop) pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop) break;
        seen = p->gen;
        if (a.worker >= p->active) continue; /* not needed this time: sleep again */
        pthread_mutex_unlock(&p->mu);
        run_tasks(&p->j, a.worker);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void pool_stop(lc_attn_pool *p, int started)
{
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i <= started; i++) pthread_join(p->tid[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->call);
    free(p->tid);
    free(p);
}

lc_attn_pool *lc_attn_pool_create(int nthreads)
{
    if (nthreads < 1 || nthreads > LC_ATTN_MAX_THREADS) {
        lc_attn_fail("lc_attn_pool_create: nthreads = %d must be in [1, %d]", nthreads,
                     LC_ATTN_MAX_THREADS);
        return NULL;
    }
    lc_attn_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->tid = calloc((size_t)nthreads, sizeof(pthread_t)))) {
        free(p);
        lc_attn_fail("lc_attn_pool_create: out of memory");
        return NULL;
    }
    p->n = nthreads;
    pthread_mutex_init(&p->call, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 1; i < nthreads; i++) {
        pool_arg *a = malloc(sizeof *a);
        if (a) *a = (pool_arg){p, i};
        if (!a || pthread_create(&p->tid[i], NULL, pool_main, a) != 0) {
            free(a);
            pool_stop(p, i - 1);
            lc_attn_fail("lc_attn_pool_create: could not start thread %d of %d", i, nthreads);
            return NULL;
        }
    }
    /* Return only once every worker runs: whatever a thread's start costs (the runtime's or
     * a sanitizer's per-thread setup) is paid here, not in the first call. */
    pthread_mutex_lock(&p->mu);
    while (p->ready < nthreads - 1) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
    return p;
}

void lc_attn_pool_destroy(lc_attn_pool *p)
{
    if (p) pool_stop(p, p->n - 1);
}

int lc_attn_pool_threads(const lc_attn_pool *p) { return p ? p->n : 0; }

int lc_attn_pool_run(lc_attn_pool *p, int nthreads, int ntasks, task_fn fn, void *ctx)
{
    if (ntasks <= 0) return 0;
    if (nthreads > p->n) nthreads = p->n;
    nthreads = clamp_workers(nthreads, ntasks);
    if (nthreads == 1) { /* nothing to wake */
        job j = {.fn = fn, .ctx = ctx, .ntasks = ntasks};
        atomic_init(&j.next, 0);
        run_tasks(&j, 0);
        return 0;
    }
    pthread_mutex_lock(&p->call);
    pthread_mutex_lock(&p->mu);
    p->j.fn = fn;
    p->j.ctx = ctx;
    p->j.ntasks = ntasks;
    atomic_store_explicit(&p->j.next, 0, memory_order_relaxed);
    p->active = nthreads;
    p->pending = nthreads - 1;
    p->gen++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_tasks(&p->j, 0);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->call);
    return 0;
}
