/* Minimal checks for the C tests: a failing CHECK prints where and why and exits 1. */
#ifndef LONGCTX_TEST_CHECK_H
#define LONGCTX_TEST_CHECK_H
#include <stdio.h>
#include <stdlib.h>

extern int lc_test_pe; /* set by the test so that messages name the PE */

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "FAIL PE %d %s:%d: %s: ", lc_test_pe, __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                          \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

#define CHECK_OK(w, expr)                                                                 \
    do {                                                                                  \
        int rc_ = (expr);                                                                 \
        CHECK(rc_ == 0, "%s returned %d: %s", #expr, rc_, lc_last_error(w));              \
    } while (0)

/* splitmix64: deterministic data every PE can regenerate for any other PE. */
static inline unsigned long long lc_test_rng(unsigned long long *s)
{
    unsigned long long z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
#endif
