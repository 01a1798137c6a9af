/* A small strict JSON parser (RFC 8259) for safetensors headers and config.json.
 *
 * Strict: one value, no trailing garbage, no comments, no trailing commas, no duplicate keys,
 * no control characters or bad escapes in strings, no lone surrogates, depth <= 64. Every
 * node lives in one arena freed with lc_json_free. Errors name the byte offset. */
#ifndef LONGCTX_CKPT_JSON_H
#define LONGCTX_CKPT_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum { LC_J_NULL, LC_J_BOOL, LC_J_NUM, LC_J_STR, LC_J_ARR, LC_J_OBJ } lc_jtype;

typedef struct lc_jval {
    lc_jtype type;
    int boolean;
    double num;          /* LC_J_NUM */
    int num_is_int;      /* the text had no fraction or exponent */
    const char *text;    /* LC_J_NUM: the number as written; LC_J_STR: the decoded string */
    size_t len;          /* bytes of text (strings may hold NUL: compare with len) */
    int n;               /* LC_J_ARR, LC_J_OBJ: members */
    struct lc_jval **kids;
    const char **keys;   /* LC_J_OBJ: decoded keys (NUL-terminated; NUL inside is refused) */
} lc_jval;

typedef struct lc_jdoc lc_jdoc;

/* Parses s[0, n). On error returns NULL and writes a message into err. */
lc_jdoc *lc_json_parse(const char *s, size_t n, char *err, size_t errlen);
const lc_jval *lc_json_root(const lc_jdoc *d);
void lc_json_free(lc_jdoc *d);

/* The member named key of an object, or NULL. */
const lc_jval *lc_json_get(const lc_jval *obj, const char *key);
/* An integer number in [lo, hi] (no fraction, no exponent, no overflow): 0, else -1. */
int lc_json_int(const lc_jval *v, int64_t lo, int64_t hi, int64_t *out);
/* Appends s as a JSON string literal (quotes, escapes) to buf (cap bytes, NUL-terminated);
 * returns the length it needed. */
size_t lc_json_quote(char *buf, size_t cap, const char *s);

#endif
