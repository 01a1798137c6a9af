/* Builds train/val token files from a directory of HTML (the Python documentation that
 * Debian's python3-doc ships): each page becomes one document of plain text (tags dropped,
 * entities decoded, whitespace collapsed, only Sphinx's main body when it is marked), encoded
 * by the byte tokenizer and ended by the document separator. Every val_every-th page (in
 * sorted path order, so the split is the same everywhere) goes to validation. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "train/internal.h"

static int starts_ci(const char *p, const char *end, const char *w)
{
    size_t n = strlen(w);
    return (size_t)(end - p) >= n && !strncasecmp(p, w, n);
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | (cp >> 6 & 63)); o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    if (cp > 0x10FFFF) return 0;
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | (cp >> 12 & 63));
    o[2] = (char)(0x80 | (cp >> 6 & 63)); o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

/* Decodes the entity at p ('&'); returns the bytes consumed (0: not an entity). */
static size_t entity(const char *p, const char *end, char *o, size_t *olen)
{
    static const struct { const char *name; unsigned cp; } NAMED[] = {
        {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}, {"nbsp", ' '},
        {"para", 0xB6}, {"copy", 0xA9}, {"ndash", 0x2013}, {"mdash", 0x2014}, {"hellip", 0x2026},
        {"rsquo", 0x2019}, {"lsquo", 0x2018}, {"ldquo", 0x201C}, {"rdquo", 0x201D}, {"times", 0xD7}};
    const char *q = p + 1;
    while (q < end && q - p < 12 && *q != ';' && *q != '&' && *q != '<' && *q != ' ') q++;
    if (q >= end || *q != ';') return 0;
    size_t n = (size_t)(q - p - 1);
    unsigned cp = 0;
    if (n >= 2 && p[1] == '#') {
        char buf[16];
        memcpy(buf, p + 2, n - 1);
        buf[n - 1] = 0;
        char *e;
        cp = (unsigned)strtoul(buf[0] == 'x' || buf[0] == 'X' ? buf + 1 : buf, &e,
                               buf[0] == 'x' || buf[0] == 'X' ? 16 : 10);
        if (*e || cp == 0) return 0;
    } else {
        for (size_t i = 0; i < sizeof NAMED / sizeof NAMED[0] && !cp; i++)
            if (strlen(NAMED[i].name) == n && !strncmp(p + 1, NAMED[i].name, n)) cp = NAMED[i].cp;
        if (!cp) return 0;
    }
    *olen = put_utf8(o, cp);
    return n + 2;
}

size_t lc_html_to_text(const char *in, size_t n, char *out)
{
    const char *p = in, *end = in + n;
    /* Sphinx marks the page body; outside it is navigation. */
    const char *body = strstr(in, "role=\"main\"");
    if (body && body < end) {
        while (body > in && *body != '<') body--;
        const char *side = strstr(body, "class=\"sphinxsidebar\"");
        p = body;
        if (side && side < end) end = side;
    }
    size_t k = 0;
    int space = 0, nl = 0, in_pre = 0; /* pending separators before the next visible char */
    while (p < end) {
        char c = *p;
        if (c == '<') {
            if (starts_ci(p, end, "<!--")) {
                const char *e = strstr(p + 4, "-->");
                p = e && e < end ? e + 3 : end;
                continue;
            }
            const char *skip_to = NULL;
            if (starts_ci(p, end, "<script")) skip_to = "</script>";
            else if (starts_ci(p, end, "<style")) skip_to = "</style>";
            if (skip_to) {
                const char *e = p;
                while (e < end && !starts_ci(e, end, skip_to)) e++;
                p = e;
            }
            const char *t = p + 1;
            int closing = t < end && *t == '/';
            t += closing;
            /* 2: a paragraph break, 1: a line break */
            static const struct { const char *tag; int nl; } BLOCK[] = {
                {"p", 2}, {"div", 2}, {"h1", 2}, {"h2", 2}, {"h3", 2}, {"h4", 2}, {"h5", 2},
                {"h6", 2}, {"pre", 2}, {"section", 2}, {"table", 2}, {"ul", 2}, {"ol", 2},
                {"dl", 2}, {"blockquote", 2}, {"br", 1}, {"li", 1}, {"tr", 1}, {"dt", 1}, {"dd", 1}};
            for (size_t i = 0; i < sizeof BLOCK / sizeof BLOCK[0]; i++) {
                size_t bl = strlen(BLOCK[i].tag);
                if (starts_ci(t, end, BLOCK[i].tag) && t + bl < end &&
                    (t[bl] == '>' || t[bl] == ' ' || t[bl] == '/' || t[bl] == '\n')) {
                    if (BLOCK[i].nl > nl) nl = BLOCK[i].nl;
                    if (!strcmp(BLOCK[i].tag, "pre")) in_pre = !closing;
                    break;
                }
            }
            while (p < end && *p != '>') p++;
            p++;
            continue;
        }
        char buf[4];
        size_t bl = 1;
        buf[0] = c;
        p++;
        if (c == '&') {
            size_t used = entity(p - 1, end, buf, &bl);
            if (used) p += used - 1;
            if (!bl) continue;
        }
        if (buf[0] == 0) continue;
        int ws = bl == 1 && (buf[0] == ' ' || buf[0] == '\t' || buf[0] == '\r' || buf[0] == '\n');
        if (ws && !in_pre) {
            space = 1;
            continue;
        }
        if (k > 0 && nl) {
            while (nl--) out[k++] = '\n';
        } else if (k > 0 && space) {
            out[k++] = ' ';
        }
        nl = 0;
        space = 0;
        memcpy(out + k, buf, bl);
        k += bl;
    }
    if (k > 0) out[k++] = '\n';
    return k;
}

/* ---- directory walk ---- */
static char **g_paths;
static size_t g_n, g_cap;

static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    size_t l = strlen(path);
    if (type != FTW_F || l < 5 || strcmp(path + l - 5, ".html")) return 0;
    /* Index pages are lists of names, not English. */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (!strncmp(base, "genindex", 8) || !strncmp(base, "py-modindex", 11) || !strcmp(base, "search.html"))
        return 0;
    if (g_n == g_cap) {
        size_t cap = g_cap ? 2 * g_cap : 256;
        char **p = realloc(g_paths, cap * sizeof *p);
        if (!p) return -1;
        g_paths = p;
        g_cap = cap;
    }
    if (!(g_paths[g_n] = strdup(path))) return -1;
    g_n++;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int read_all(const char *path, char **buf, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc((size_t)sz + 1);
    if (!*buf || fread(*buf, 1, (size_t)sz, f) != (size_t)sz) {
        fclose(f);
        free(*buf);
        return -1;
    }
    (*buf)[sz] = 0;
    *n = (size_t)sz;
    fclose(f);
    return 0;
}

typedef struct { int32_t *t; int64_t n, cap; } tokbuf;

static int append(tokbuf *b, const char *text, size_t n)
{
    if (b->n + (int64_t)n + 1 > b->cap) {
        int64_t cap = (b->cap ? 2 * b->cap : 1 << 20);
        while (cap < b->n + (int64_t)n + 1) cap *= 2;
        int32_t *t = realloc(b->t, (size_t)cap * sizeof *t);
        if (!t) return -1;
        b->t = t;
        b->cap = cap;
    }
    lc_byte_encode(text, n, b->t + b->n);
    for (size_t i = 0; i < n; i++)
        if (b->t[b->n + (int64_t)i] == LC_BYTE_DOC_SEP) b->t[b->n + (int64_t)i] = ' ';
    b->n += (int64_t)n;
    b->t[b->n++] = LC_BYTE_DOC_SEP;
    return 0;
}

int lc_corpus_build(const char *src_dir, const char *out_dir, int val_every, lc_corpus_stats *st)
{
    memset(st, 0, sizeof *st);
    if (val_every < 2) return lc_train__fail(LC_ERR_ARG, "prepare-data: val_every %d must be >= 2", val_every);
    char *root = realpath(src_dir, NULL);
    if (!root) return lc_train__fail(LC_ERR_ARG, "prepare-data: source %s: %s", src_dir, strerror(errno));
    g_paths = NULL;
    g_n = g_cap = 0;
    int rc = nftw(root, visit, 32, FTW_PHYS);
    free(root);
    if (rc) return lc_train__fail(LC_ERR_SYS, "prepare-data: cannot walk %s", src_dir);
    if (g_n < (size_t)val_every) {
        for (size_t i = 0; i < g_n; i++) free(g_paths[i]);
        free(g_paths);
        return lc_train__fail(LC_ERR_ARG, "prepare-data: %s has %zu .html files; need at least %d", src_dir,
                              g_n, val_every);
    }
    qsort(g_paths, g_n, sizeof *g_paths, cmp_str);
    tokbuf tr = {0}, va = {0};
    rc = LC_OK;
    for (size_t i = 0; i < g_n && rc == LC_OK; i++) {
        char *html;
        size_t n;
        if (read_all(g_paths[i], &html, &n)) {
            rc = lc_train__fail(LC_ERR_SYS, "prepare-data: cannot read %s", g_paths[i]);
            break;
        }
        char *text = malloc(n + 8);
        size_t tn = text ? lc_html_to_text(html, n, text) : 0;
        st->html_bytes += (int64_t)n;
        if (!text || append(i % (size_t)val_every == (size_t)val_every - 1 ? &va : &tr, text, tn))
            rc = lc_train__fail(LC_ERR_SYS, "prepare-data: out of memory");
        st->docs++;
        free(text);
        free(html);
    }
    for (size_t i = 0; i < g_n; i++) free(g_paths[i]);
    free(g_paths);
    char path[4096];
    if (rc == LC_OK && mkdir(out_dir, 0755) && errno != EEXIST)
        rc = lc_train__fail(LC_ERR_SYS, "prepare-data: cannot create %s: %s", out_dir, strerror(errno));
    if (rc == LC_OK) {
        snprintf(path, sizeof path, "%s/train.bin", out_dir);
        rc = lc_tokfile_write(path, tr.t, tr.n, LC_BYTE_VOCAB);
    }
    if (rc == LC_OK) {
        snprintf(path, sizeof path, "%s/val.bin", out_dir);
        rc = lc_tokfile_write(path, va.t, va.n, LC_BYTE_VOCAB);
    }
    st->train_tokens = tr.n;
    st->val_tokens = va.n;
    free(tr.t);
    free(va.t);
    return rc;
}
