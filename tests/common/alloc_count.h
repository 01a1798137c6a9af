/* Process-wide counters of heap allocations and thread starts (tests/common/alloc_count.c). */
#ifndef LONGCTX_TEST_ALLOC_COUNT_H
#define LONGCTX_TEST_ALLOC_COUNT_H

void lc_count_start(void);                      /* zero the counters and start counting */
void lc_count_stop(long *allocs, long *threads); /* stop and read them */
int lc_count_selftest(void);                    /* 0 when a malloc and a thread are seen */

#endif
