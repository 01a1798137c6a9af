/* Counts heap allocations and thread starts of the whole process, for the steady-state
 * tests: this file defines malloc, calloc, realloc, free, aligned_alloc, posix_memalign,
 * memalign and pthread_create, which the static library's calls bind to, and forwards each
 * to the next definition (libc's, or the sanitizer's). Link it into one test binary only.
 *
 * dlsym itself may allocate before the real functions are known: those few requests are
 * served from a static arena and never handed to the real free. */
#include <dlfcn.h>
#include <execinfo.h>
#include <stdlib.h>
#include <unistd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/alloc_count.h"

static atomic_long g_allocs, g_threads;
static atomic_int g_on;

static void *(*r_malloc)(size_t);
static void *(*r_calloc)(size_t, size_t);
static void *(*r_realloc)(void *, size_t);
static void (*r_free)(void *);
static void *(*r_aligned_alloc)(size_t, size_t);
static int (*r_posix_memalign)(void **, size_t, size_t);
static void *(*r_memalign)(size_t, size_t);
static int (*r_pthread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

static _Alignas(64) unsigned char g_arena[1 << 16];
static size_t g_arena_used;
static int g_resolving;

static int in_arena(const void *p)
{
    return (const unsigned char *)p >= g_arena && (const unsigned char *)p < g_arena + sizeof g_arena;
}

static void *arena(size_t n)
{
    size_t off = (g_arena_used + 63) & ~(size_t)63;
    if (off + n > sizeof g_arena) return NULL;
    g_arena_used = off + n;
    return g_arena + off;
}

static void resolve(void)
{
    if (r_free || g_resolving) return;
    g_resolving = 1;
    r_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    r_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    r_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    r_aligned_alloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
    r_posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
    r_memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
    r_pthread_create = (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))dlsym(
        RTLD_NEXT, "pthread_create");
    r_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    g_resolving = 0;
}

/* LC_COUNT_TRACE=1 prints the call stack of every counted call (to find a culprit). */
static void count(atomic_long *c)
{
    static _Thread_local int in_trace;
    if (!atomic_load_explicit(&g_on, memory_order_relaxed) || in_trace) return;
    atomic_fetch_add(c, 1);
    static int trace = -1;
    if (trace < 0) trace = getenv("LC_COUNT_TRACE") != NULL;
    if (trace) {
        void *pcs[16];
        in_trace = 1; /* backtrace may load libgcc and allocate */
        int n = backtrace(pcs, 16);
        backtrace_symbols_fd(pcs, n, 2);
        in_trace = 0;
        if (write(2, "--\n", 3) < 0) return;
    }
}

void *malloc(size_t n)
{
    resolve();
    if (!r_malloc) return arena(n);
    count(&g_allocs);
    return r_malloc(n);
}

void *calloc(size_t n, size_t m)
{
    resolve();
    if (!r_calloc) return arena(n * m); /* the arena is zeroed static memory */
    count(&g_allocs);
    return r_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
    resolve();
    count(&g_allocs);
    if (in_arena(p)) {
        void *q = r_malloc ? r_malloc(n) : arena(n);
        size_t rest = (size_t)(g_arena + sizeof g_arena - (unsigned char *)p);
        if (q) memcpy(q, p, n < rest ? n : rest);
        return q;
    }
    return r_realloc(p, n);
}

void free(void *p)
{
    if (!p || in_arena(p)) return;
    resolve();
    r_free(p);
}

void *aligned_alloc(size_t al, size_t n)
{
    resolve();
    count(&g_allocs);
    return r_aligned_alloc(al, n);
}

int posix_memalign(void **out, size_t al, size_t n)
{
    resolve();
    count(&g_allocs);
    return r_posix_memalign(out, al, n);
}

void *memalign(size_t al, size_t n)
{
    resolve();
    count(&g_allocs);
    return r_memalign(al, n);
}

int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    resolve();
    count(&g_threads);
    return r_pthread_create(t, attr, fn, arg);
}

void lc_count_start(void)
{
    resolve();
    atomic_store(&g_allocs, 0);
    atomic_store(&g_threads, 0);
    atomic_store(&g_on, 1);
}

void lc_count_stop(long *allocs, long *threads)
{
    atomic_store(&g_on, 0);
    *allocs = atomic_load(&g_allocs);
    *threads = atomic_load(&g_threads);
}

/* A test that the counting works at all: one malloc and one thread must be seen. */
static void *nop(void *a) { return a; }

int lc_count_selftest(void)
{
    long a, t;
    pthread_t th;
    lc_count_start();
    void *volatile p = malloc(24);
    int rc = pthread_create(&th, NULL, nop, NULL);
    lc_count_stop(&a, &t);
    free(p);
    if (rc == 0) pthread_join(th, NULL);
    return a >= 1 && t == 1 ? 0 : -1;
}
