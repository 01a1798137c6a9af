/* Strict JSON (json.h). Recursive descent over a bounded depth; nodes and strings in an arena
 * of large blocks so that a header of thousands of tensors costs a handful of allocations. */
#include "ckpt/json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64
#define BLOCK (64 * 1024)

typedef struct blk {
    struct blk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} blk;

struct lc_jdoc {
    blk *head;
    lc_jval *root;
};

typedef struct {
    const char *s;
    size_t n, i;
    lc_jdoc *d;
    char *err;
    size_t errlen;
    int failed;
} parser;

static void *arena(parser *p, size_t bytes)
{
    bytes = (bytes + 15) & ~(size_t)15;
    blk *b = p->d->head;
    if (!b || b->cap - b->used < bytes) {
        size_t cap = bytes > BLOCK ? bytes : BLOCK;
        blk *nb = malloc(sizeof *nb + cap);
        if (!nb) return NULL;
        nb->used = 0;
        nb->cap = cap;
        if (b && bytes > BLOCK) { /* keep bumping the current block after a big one */
            nb->next = b->next;
            b->next = nb;
            nb->used = bytes;
            return nb->data;
        }
        nb->next = b;
        p->d->head = b = nb;
    }
    void *r = b->data + b->used;
    b->used += bytes;
    return r;
}

static int fail(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parser *p, const char *fmt, ...)
{
    if (p->failed) return -1;
    p->failed = 1;
    char m[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "bad JSON at byte %zu: %s", p->i, m);
    return -1;
}

static void skip_ws(parser *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static lc_jval *node(parser *p, lc_jtype t)
{
    lc_jval *v = arena(p, sizeof *v);
    if (!v) {
        fail(p, "out of memory");
        return NULL;
    }
    memset(v, 0, sizeof *v);
    v->type = t;
    return v;
}

static int hex4(parser *p, unsigned *out)
{
    if (p->n - p->i < 4) return fail(p, "truncated \\u escape");
    unsigned x = 0;
    for (int k = 0; k < 4; k++) {
        char c = p->s[p->i++];
        x <<= 4;
        if (c >= '0' && c <= '9') x |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') x |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') x |= (unsigned)(c - 'A' + 10);
        else return fail(p, "bad hex digit in \\u escape");
    }
    *out = x;
    return 0;
}

/* Validates one UTF-8 sequence starting at s[i]; returns its length or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, min = 0x10000;
    else return 0;
    if (n < len) return 0;
    unsigned cp = c & (0xFF >> (len + 1));
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) *o++ = (char)cp;
    else if (cp < 0x800) *o++ = (char)(0xC0 | (cp >> 6)), *o++ = (char)(0x80 | (cp & 0x3F));
    else if (cp < 0x10000)
        *o++ = (char)(0xE0 | (cp >> 12)), *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)), *o++ = (char)(0x80 | (cp & 0x3F));
    else
        *o++ = (char)(0xF0 | (cp >> 18)), *o++ = (char)(0x80 | ((cp >> 12) & 0x3F)),
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)), *o++ = (char)(0x80 | (cp & 0x3F));
    return o;
}

/* At the opening quote. The decoded text is never longer than the source. */
static int parse_string(parser *p, const char **out, size_t *outlen)
{
    size_t start = ++p->i, end = start;
    while (end < p->n && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->n) return fail(p, "unterminated string");
    char *buf = arena(p, end - start + 1), *o = buf;
    if (!buf) return fail(p, "out of memory");
    while (p->s[p->i] != '"') {
        unsigned char c = (unsigned char)p->s[p->i];
        if (c < 0x20) return fail(p, "control character 0x%02x in a string", c);
        if (c != '\\') {
            size_t l = utf8_len((const unsigned char *)p->s + p->i, end - p->i);
            if (!l) return fail(p, "invalid UTF-8 in a string");
            memcpy(o, p->s + p->i, l);
            o += l;
            p->i += l;
            continue;
        }
        p->i++;
        char e = p->s[p->i++];
        switch (e) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (hex4(p, &cp)) return -1;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(p, "lone low surrogate \\u%04x", cp);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (p->n - p->i < 2 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u')
                    return fail(p, "high surrogate \\u%04x without its low half", cp);
                p->i += 2;
                if (hex4(p, &lo)) return -1;
                if (lo < 0xDC00 || lo > 0xDFFF) return fail(p, "high surrogate \\u%04x followed by \\u%04x", cp, lo);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            o = put_utf8(o, cp);
            break;
        }
        default: return fail(p, "bad escape \\%c", e >= 0x20 && e < 0x7f ? e : '?');
        }
        if (p->i > end) return fail(p, "escape runs past the string's end");
    }
    p->i++;
    *o = 0;
    *out = buf;
    *outlen = (size_t)(o - buf);
    return 0;
}

static int parse_number(parser *p, lc_jval *v)
{
    size_t s = p->i;
    const char *c = p->s;
    int is_int = 1;
    if (p->i < p->n && c[p->i] == '-') p->i++;
    if (p->i >= p->n) return fail(p, "truncated number");
    if (c[p->i] == '0') p->i++;
    else if (c[p->i] >= '1' && c[p->i] <= '9')
        while (p->i < p->n && c[p->i] >= '0' && c[p->i] <= '9') p->i++;
    else return fail(p, "bad number");
    if (p->i < p->n && c[p->i] == '.') {
        is_int = 0;
        p->i++;
        if (p->i >= p->n || c[p->i] < '0' || c[p->i] > '9') return fail(p, "no digit after the decimal point");
        while (p->i < p->n && c[p->i] >= '0' && c[p->i] <= '9') p->i++;
    }
    if (p->i < p->n && (c[p->i] == 'e' || c[p->i] == 'E')) {
        is_int = 0;
        p->i++;
        if (p->i < p->n && (c[p->i] == '+' || c[p->i] == '-')) p->i++;
        if (p->i >= p->n || c[p->i] < '0' || c[p->i] > '9') return fail(p, "no digit in the exponent");
        while (p->i < p->n && c[p->i] >= '0' && c[p->i] <= '9') p->i++;
    }
    size_t len = p->i - s;
    char tmp[64], *t = len < sizeof tmp ? tmp : arena(p, len + 1);
    if (!t) return fail(p, "out of memory");
    memcpy(t, c + s, len);
    t[len] = 0;
    v->num = strtod(t, NULL); /* may be +-inf for huge exponents: callers range-check */
    v->num_is_int = is_int;
    v->text = c + s;
    v->len = len;
    return 0;
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static lc_jval *parse_value(parser *p, int depth);

static lc_jval *parse_container(parser *p, int depth, int is_obj)
{
    lc_jval *v = node(p, is_obj ? LC_J_OBJ : LC_J_ARR);
    if (!v) return NULL;
    p->i++;
    lc_jval **kids = NULL;
    const char **keys = NULL;
    int n = 0, cap = 0;
    char close = is_obj ? '}' : ']';
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
        return v;
    }
    for (;;) {
        const char *key = NULL;
        skip_ws(p);
        if (is_obj) {
            size_t kl;
            if (p->i >= p->n || p->s[p->i] != '"') {
                fail(p, "expected a key string");
                goto bad;
            }
            if (parse_string(p, &key, &kl)) goto bad;
            if (strlen(key) != kl) {
                fail(p, "NUL inside a key");
                goto bad;
            }
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') {
                fail(p, "expected ':' after key \"%.60s\"", key);
                goto bad;
            }
            p->i++;
        }
        lc_jval *k = parse_value(p, depth + 1);
        if (!k) goto bad;
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            lc_jval **nk = realloc(kids, (size_t)cap * sizeof *nk);
            if (!nk) { fail(p, "out of memory"); goto bad; }
            kids = nk;
            if (is_obj) {
                const char **nkeys = realloc(keys, (size_t)cap * sizeof *nkeys);
                if (!nkeys) { fail(p, "out of memory"); goto bad; }
                keys = nkeys;
            }
        }
        if (is_obj) keys[n] = key;
        kids[n++] = k;
        skip_ws(p);
        if (p->i >= p->n) {
            fail(p, "unterminated %s", is_obj ? "object" : "array");
            goto bad;
        }
        if (p->s[p->i] == ',') {
            p->i++;
            continue;
        }
        if (p->s[p->i] == close) {
            p->i++;
            break;
        }
        fail(p, "expected ',' or '%c'", close);
        goto bad;
    }
    v->n = n;
    v->kids = arena(p, (size_t)n * sizeof *kids);
    if (!v->kids) { fail(p, "out of memory"); goto bad; }
    memcpy(v->kids, kids, (size_t)n * sizeof *kids);
    if (is_obj) {
        v->keys = arena(p, (size_t)n * sizeof *keys);
        if (!v->keys) { fail(p, "out of memory"); goto bad; }
        memcpy(v->keys, keys, (size_t)n * sizeof *keys);
        /* duplicates: sort a copy (n log n even for huge headers) */
        qsort(keys, (size_t)n, sizeof *keys, cmp_key);
        for (int i = 1; i < n; i++)
            if (!strcmp(keys[i - 1], keys[i])) {
                fail(p, "duplicate key \"%.80s\"", keys[i]);
                goto bad;
            }
    }
    free(kids);
    free(keys);
    return v;
bad:
    free(kids);
    free(keys);
    return NULL;
}

static int literal(parser *p, const char *word)
{
    size_t l = strlen(word);
    if (p->n - p->i < l || memcmp(p->s + p->i, word, l)) return fail(p, "unexpected character");
    p->i += l;
    return 0;
}

static lc_jval *parse_value(parser *p, int depth)
{
    if (depth > MAX_DEPTH) {
        fail(p, "nested deeper than %d", MAX_DEPTH);
        return NULL;
    }
    skip_ws(p);
    if (p->i >= p->n) {
        fail(p, "unexpected end of input");
        return NULL;
    }
    char c = p->s[p->i];
    lc_jval *v;
    switch (c) {
    case '{': return parse_container(p, depth, 1);
    case '[': return parse_container(p, depth, 0);
    case '"':
        if (!(v = node(p, LC_J_STR)) || parse_string(p, &v->text, &v->len)) return NULL;
        return v;
    case 't':
    case 'f':
        if (!(v = node(p, LC_J_BOOL)) || literal(p, c == 't' ? "true" : "false")) return NULL;
        v->boolean = c == 't';
        return v;
    case 'n':
        if (!(v = node(p, LC_J_NULL)) || literal(p, "null")) return NULL;
        return v;
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            if (!(v = node(p, LC_J_NUM)) || parse_number(p, v)) return NULL;
            return v;
        }
        fail(p, "unexpected character 0x%02x", (unsigned char)c);
        return NULL;
    }
}

lc_jdoc *lc_json_parse(const char *s, size_t n, char *err, size_t errlen)
{
    char tmp[8];
    if (!err) err = tmp, errlen = sizeof tmp;
    lc_jdoc *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    parser p = {s, n, 0, d, err, errlen, 0};
    d->root = parse_value(&p, 0);
    if (d->root) {
        skip_ws(&p);
        if (p.i != n) {
            fail(&p, "trailing characters after the value");
            d->root = NULL;
        }
    }
    if (!d->root) {
        lc_json_free(d);
        return NULL;
    }
    return d;
}

const lc_jval *lc_json_root(const lc_jdoc *d) { return d ? d->root : NULL; }

void lc_json_free(lc_jdoc *d)
{
    if (!d) return;
    for (blk *b = d->head, *nx; b; b = nx) {
        nx = b->next;
        free(b);
    }
    free(d);
}

const lc_jval *lc_json_get(const lc_jval *obj, const char *key)
{
    if (!obj || obj->type != LC_J_OBJ) return NULL;
    for (int i = 0; i < obj->n; i++)
        if (!strcmp(obj->keys[i], key)) return obj->kids[i];
    return NULL;
}

int lc_json_int(const lc_jval *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (!v || v->type != LC_J_NUM || !v->num_is_int) return -1;
    const char *t = v->text;
    size_t i = 0;
    int neg = t[0] == '-';
    if (neg) i++;
    /* accumulate as a negative number: INT64_MIN fits */
    int64_t x = 0;
    for (; i < v->len; i++) {
        int dgt = t[i] - '0';
        if (x < (INT64_MIN + dgt) / 10) return -1;
        x = x * 10 - dgt;
    }
    if (!neg) {
        if (x == INT64_MIN) return -1;
        x = -x;
    }
    if (x < lo || x > hi) return -1;
    *out = x;
    return 0;
}

size_t lc_json_quote(char *buf, size_t cap, const char *s)
{
    size_t n = 0;
#define PUT(ch) do { if (n + 1 < cap) buf[n] = (ch); n++; } while (0)
    PUT('"');
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            PUT('\\');
            PUT((char)*c);
        } else if (*c < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", *c);
            for (int k = 0; e[k]; k++) PUT(e[k]);
        } else {
            PUT((char)*c);
        }
    }
    PUT('"');
    if (cap) buf[n < cap ? n : cap - 1] = 0;
#undef PUT
    return n;
}
