/* splitmix64: deterministic data any PE (or test) can regenerate from a seed. */
#ifndef LONGCTX_TEST_RNG_H
#define LONGCTX_TEST_RNG_H
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t lc_test_rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The run's seed: LONGCTX_SEED when set (to reproduce a failure), else fresh from the clock
 * and pid. Multi-PE tests broadcast PE 0's so every PE draws the same inputs. */
static inline uint64_t lc_test_seed(void)
{
    const char *s = getenv("LONGCTX_SEED");
    return s && *s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) * 1000003u + (uint64_t)getpid();
}
#endif
