/* A failure that is counted, not fatal: the test reports every wrong case before it exits. */
#ifndef LONGCTX_TEST_FAIL_H
#define LONGCTX_TEST_FAIL_H
#include <stdio.h>

#define LC_TEST_FAIL(counter, ...)                                                         \
    do {                                                                                   \
        (counter)++;                                                                       \
        printf("FAIL %s:%d: ", __FILE__, __LINE__);                                        \
        printf(__VA_ARGS__);                                                               \
        printf("\n");                                                                      \
    } while (0)

/* The same for a test running as several PEs: the message names the PE. */
#define LC_TEST_FAIL_PE(counter, pe, ...)                                                  \
    do {                                                                                   \
        (counter)++;                                                                       \
        printf("FAIL PE %d %s:%d: ", (pe), __FILE__, __LINE__);                            \
        printf(__VA_ARGS__);                                                               \
        printf("\n");                                                                      \
        fflush(stdout);                                                                    \
    } while (0)

#endif
