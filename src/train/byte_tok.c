/* The byte-level tokenizer: a token is a byte. No merges, so any text round-trips and the
 * vocabulary (256) needs no file. */
#include "train/internal.h"

void lc_byte_encode(const char *text, size_t n, int32_t *out)
{
    for (size_t i = 0; i < n; i++) out[i] = (unsigned char)text[i];
}

size_t lc_byte_decode(const int32_t *tokens, size_t n, char *out, size_t cap)
{
    if (!cap) return 0;
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++) {
        int t = tokens[i];
        out[k++] = (t == '\n' || (t >= 32 && t < 127)) ? (char)t : '.';
    }
    out[k] = 0;
    return k;
}
