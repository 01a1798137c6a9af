/* Minimal checks for the C tests: a failing CHECK prints where and why and exits 1. */
#ifndef LONGCTX_TEST_CHECK_H
#define LONGCTX_TEST_CHECK_H
#include <stdio.h>
#include <stdlib.h>

#include "common/rng.h"

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

#endif
