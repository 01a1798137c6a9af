/* FNV-1a, 64 bits: the one non-cryptographic hash of the layers (a token file's fingerprint,
 * the identity of a JAX ring call). Chain calls to hash pieces: h = lc_fnv1a64(h, p, n). */
#ifndef LONGCTX_COMMON_HASH_H
#define LONGCTX_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

#define LC_FNV1A64_INIT 0xcbf29ce484222325ull

static inline uint64_t lc_fnv1a64(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = (const uint8_t *)p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

#endif
