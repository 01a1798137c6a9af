/* A minimal fork-join over pthreads. Threads are created per call: a call does at least
 * one Q tile x one KV block of work per task, which dwarfs the ~20 us thread start. */
#include <pthread.h>
#include <stdatomic.h>

#include "attn/internal.h"

#define LC_ATTN_MAX_THREADS 256

typedef struct {
    void (*fn)(void *ctx, int task, int worker);
    void *ctx;
    int ntasks;
    atomic_int next;
} pool;

typedef struct {
    pool *p;
    int worker;
} worker_arg;

static void run_tasks(pool *p, int worker)
{
    for (;;) {
        int t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= p->ntasks)
            break;
        p->fn(p->ctx, t, worker);
    }
}

static void *worker_main(void *arg)
{
    worker_arg *w = arg;
    run_tasks(w->p, w->worker);
    return NULL;
}

int lc_attn_parallel(int nthreads, int ntasks, void (*fn)(void *ctx, int task, int worker),
                     void *ctx)
{
    if (ntasks <= 0)
        return 0;
    if (nthreads > ntasks)
        nthreads = ntasks;
    if (nthreads > LC_ATTN_MAX_THREADS)
        nthreads = LC_ATTN_MAX_THREADS;
    if (nthreads < 1)
        nthreads = 1;
    pool p = {.fn = fn, .ctx = ctx, .ntasks = ntasks};
    atomic_init(&p.next, 0);
    pthread_t tid[LC_ATTN_MAX_THREADS];
    worker_arg args[LC_ATTN_MAX_THREADS];
    int started = 0, rc = 0;
    for (int i = 1; i < nthreads; i++) {
        args[i].p = &p;
        args[i].worker = i;
        if (pthread_create(&tid[i], NULL, worker_main, &args[i]) != 0) {
            rc = -1;
            break;
        }
        started = i;
    }
    run_tasks(&p, 0);
    for (int i = 1; i <= started; i++)
        pthread_join(tid[i], NULL);
    return rc;
}
