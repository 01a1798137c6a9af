/* splitmix64: deterministic data any PE (or test) can regenerate from a seed. */
#ifndef LONGCTX_TEST_RNG_H
#define LONGCTX_TEST_RNG_H
#include <stdint.h>

static inline uint64_t lc_test_rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
#endif
