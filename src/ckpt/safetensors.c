/* safetensors: a validating reader over a file image and a streaming writer.
 *
 * The reader trusts nothing in the file: the header length is checked against the image, the
 * JSON is parsed strictly, every shape product and byte count is overflow-checked, and the
 * data offsets must tile the data section exactly (as the reference implementation demands),
 * so a tensor's bytes always lie inside the image and no two tensors share bytes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/internal.h"
#include "ckpt/json.h"

static const char *const DT_NAME[LC_ST_N_DTYPES] = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"};
static const size_t DT_SIZE[LC_ST_N_DTYPES] = {8, 4, 2, 2, 8, 4, 2, 1, 1, 1};

const char *lc_st_dtype_name(lc_st_dtype t) { return (unsigned)t < LC_ST_N_DTYPES ? DT_NAME[t] : "?"; }
size_t lc_st_dtype_size(lc_st_dtype t) { return (unsigned)t < LC_ST_N_DTYPES ? DT_SIZE[t] : 0; }

struct lc_st_file {
    const unsigned char *img; /* the whole file */
    size_t len;
    const unsigned char *data; /* after the header */
    size_t data_len;
    lc_jdoc *doc;
    lc_st_tensor *t;
    int n;
    const char **mkey, **mval;
    int n_meta;
    void *map; /* lc_st_open's mapping */
    size_t map_len;
};

void lc_st_close(lc_st_file *f)
{
    if (!f) return;
    lc_json_free(f->doc);
    free(f->t);
    free(f->mkey);
    free(f->mval);
    if (f->map) munmap(f->map, f->map_len);
    free(f);
}

static int cmp_range(const void *a, const void *b)
{
    const lc_st_tensor *x = *(const lc_st_tensor *const *)a, *y = *(const lc_st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int parse_tensor(lc_st_file *f, const char *what, const char *name, const lc_jval *v, lc_st_tensor *t)
{
#define BAD(...) do { char m_[256]; snprintf(m_, sizeof m_, __VA_ARGS__); \
        return lc_ckpt__fail(LC_ERR_ARG, "%s: tensor \"%.200s\": %s", what, name, m_); } while (0)
    if (!name[0]) BAD("empty tensor name");
    if (v->type != LC_J_OBJ) BAD("entry is not an object");
    const lc_jval *dt = NULL, *sh = NULL, *off = NULL;
    for (int k = 0; k < v->n; k++) {
        if (!strcmp(v->keys[k], "dtype")) dt = v->kids[k];
        else if (!strcmp(v->keys[k], "shape")) sh = v->kids[k];
        else if (!strcmp(v->keys[k], "data_offsets")) off = v->kids[k];
        else BAD("unknown field \"%.60s\"", v->keys[k]);
    }
    if (!dt || !sh || !off) BAD("missing field \"%s\"", !dt ? "dtype" : !sh ? "shape" : "data_offsets");
    if (dt->type != LC_J_STR) BAD("dtype is not a string");
    int d;
    for (d = 0; d < LC_ST_N_DTYPES && (strlen(DT_NAME[d]) != dt->len || memcmp(DT_NAME[d], dt->text, dt->len)); d++) {}
    if (d == LC_ST_N_DTYPES) BAD("unknown dtype \"%.20s\"", dt->text);
    t->dtype = (lc_st_dtype)d;
    if (sh->type != LC_J_ARR) BAD("shape is not an array");
    if (sh->n > LC_ST_MAX_DIMS) BAD("%d dimensions (at most %d)", sh->n, LC_ST_MAX_DIMS);
    t->ndim = sh->n;
    uint64_t numel = 1;
    for (int k = 0; k < sh->n; k++) {
        int64_t x;
        if (lc_json_int(sh->kids[k], 0, INT64_MAX, &x)) BAD("shape[%d] is not an integer >= 0", k);
        t->shape[k] = x;
        if (x && numel > UINT64_MAX / (uint64_t)x) BAD("shape overflows");
        numel *= (uint64_t)x;
    }
    t->numel = numel;
    if (numel > UINT64_MAX / DT_SIZE[d]) BAD("byte size overflows");
    uint64_t bytes = numel * DT_SIZE[d];
    int64_t b, e;
    if (off->type != LC_J_ARR || off->n != 2 || lc_json_int(off->kids[0], 0, INT64_MAX, &b) ||
        lc_json_int(off->kids[1], 0, INT64_MAX, &e))
        BAD("data_offsets is not [begin, end] of integers >= 0");
    if (e < b) BAD("data_offsets [%lld, %lld] end before begin", (long long)b, (long long)e);
    if ((uint64_t)e > f->data_len)
        BAD("data_offsets [%lld, %lld] run past the %zu data bytes (truncated file?)", (long long)b, (long long)e,
            f->data_len);
    if ((uint64_t)(e - b) != bytes)
        BAD("data_offsets [%lld, %lld] hold %lld bytes but %s %s needs %llu", (long long)b, (long long)e,
            (long long)(e - b), DT_NAME[d], t->ndim ? "of that shape" : "scalar", (unsigned long long)bytes);
    t->begin = (uint64_t)b;
    t->end = (uint64_t)e;
    t->name = name;
    return LC_OK;
#undef BAD
}

int lc_st_parse(const void *buf, size_t len, const char *what, lc_st_file **out)
{
    *out = NULL;
    if (!what) what = "safetensors";
    const unsigned char *img = buf;
    if (len < 8) return lc_ckpt__fail(LC_ERR_ARG, "%s: %zu bytes, shorter than the 8-byte header length", what, len);
    uint64_t hl = 0;
    for (int k = 7; k >= 0; k--) hl = (hl << 8) | img[k];
    if (hl > len - 8)
        return lc_ckpt__fail(LC_ERR_ARG, "%s: header length %llu runs past the end of the %zu-byte file", what,
                             (unsigned long long)hl, len);
    if (hl > LC_ST_MAX_HEADER)
        return lc_ckpt__fail(LC_ERR_ARG, "%s: header length %llu over the limit of %u", what, (unsigned long long)hl,
                             LC_ST_MAX_HEADER);
    if (hl < 2 || img[8] != '{') return lc_ckpt__fail(LC_ERR_ARG, "%s: the header does not start with '{'", what);
    lc_st_file *f = calloc(1, sizeof *f);
    if (!f) return lc_ckpt__fail(LC_ERR_SYS, "%s: out of memory", what);
    f->img = img;
    f->len = len;
    f->data = img + 8 + hl;
    f->data_len = len - 8 - (size_t)hl;
    char err[300];
    int rc = LC_OK;
    f->doc = lc_json_parse((const char *)img + 8, (size_t)hl, err, sizeof err);
    if (!f->doc) {
        rc = lc_ckpt__fail(LC_ERR_ARG, "%s: header: %s", what, err);
        goto fail;
    }
    const lc_jval *root = lc_json_root(f->doc);
    if (root->type != LC_J_OBJ) {
        rc = lc_ckpt__fail(LC_ERR_ARG, "%s: the header is not a JSON object", what);
        goto fail;
    }
    f->t = calloc((size_t)root->n + 1, sizeof *f->t);
    lc_st_tensor **order = calloc((size_t)root->n + 1, sizeof *order);
    if (!f->t || !order) {
        free(order);
        rc = lc_ckpt__fail(LC_ERR_SYS, "%s: out of memory", what);
        goto fail;
    }
    for (int i = 0; i < root->n; i++) {
        const lc_jval *v = root->kids[i];
        if (!strcmp(root->keys[i], "__metadata__")) {
            if (v->type != LC_J_OBJ) {
                rc = lc_ckpt__fail(LC_ERR_ARG, "%s: __metadata__ is not an object", what);
                break;
            }
            f->mkey = calloc((size_t)v->n + 1, sizeof *f->mkey);
            f->mval = calloc((size_t)v->n + 1, sizeof *f->mval);
            if (!f->mkey || !f->mval) {
                rc = lc_ckpt__fail(LC_ERR_SYS, "%s: out of memory", what);
                break;
            }
            for (int k = 0; k < v->n; k++) {
                if (v->kids[k]->type != LC_J_STR || strlen(v->kids[k]->text) != v->kids[k]->len) {
                    rc = lc_ckpt__fail(LC_ERR_ARG, "%s: __metadata__ \"%.80s\" is not a string", what, v->keys[k]);
                    break;
                }
                f->mkey[k] = v->keys[k];
                f->mval[k] = v->kids[k]->text;
            }
            f->n_meta = v->n;
            if (rc) break;
            continue;
        }
        if ((rc = parse_tensor(f, what, root->keys[i], v, &f->t[f->n]))) break;
        order[f->n] = &f->t[f->n];
        f->n++;
    }
    if (!rc) {
        /* the tensors must tile the data section exactly */
        qsort(order, (size_t)f->n, sizeof *order, cmp_range);
        uint64_t at = 0;
        for (int i = 0; i < f->n && !rc; i++) {
            if (order[i]->begin != at)
                rc = lc_ckpt__fail(LC_ERR_ARG, "%s: tensor \"%.200s\": data_offsets [%llu, %llu] %s at byte %llu", what,
                                   order[i]->name, (unsigned long long)order[i]->begin, (unsigned long long)order[i]->end,
                                   order[i]->begin < at ? "overlap the previous tensor, which ends" : "leave a gap: the previous tensor ends",
                                   (unsigned long long)at);
            at = order[i]->end;
        }
        if (!rc && at != f->data_len)
            rc = lc_ckpt__fail(LC_ERR_ARG, "%s: the tensors cover %llu data bytes but the file has %zu after the header",
                               what, (unsigned long long)at, f->data_len);
    }
    free(order);
    if (rc) goto fail;
    *out = f;
    return LC_OK;
fail:
    lc_st_close(f);
    return rc;
}

int lc_st_open(const char *path, lc_st_file **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return lc_ckpt__fail(errno == ENOENT ? LC_ERR_ARG : LC_ERR_SYS, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return lc_ckpt__fail(LC_ERR_ARG, "%s is not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    void *map = NULL;
    if (len) {
        map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return lc_ckpt__fail(LC_ERR_SYS, "cannot map %s: %s", path, strerror(e));
        }
    }
    close(fd);
    static const unsigned char empty[1];
    int rc = lc_st_parse(map ? map : empty, len, path, out);
    if (rc) {
        if (map) munmap(map, len);
        return rc;
    }
    (*out)->map = map;
    (*out)->map_len = len;
    return LC_OK;
}

int lc_st_n_tensors(const lc_st_file *f) { return f->n; }
const lc_st_tensor *lc_st_tensor_at(const lc_st_file *f, int i) { return i >= 0 && i < f->n ? &f->t[i] : NULL; }
int lc_st_find(const lc_st_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return i;
    return -1;
}
const void *lc_st_data(const lc_st_file *f, int i) { return i >= 0 && i < f->n ? f->data + f->t[i].begin : NULL; }
int lc_st_n_meta(const lc_st_file *f) { return f->n_meta; }
void lc_st_meta_at(const lc_st_file *f, int i, const char **key, const char **val)
{
    *key = f->mkey[i];
    *val = f->mval[i];
}
const char *lc_st_meta(const lc_st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->mkey[i], key)) return f->mval[i];
    return NULL;
}

static float half_to_float(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1F, m = h & 0x3FF, bits;
    if (e == 0x1F) bits = s | 0x7F800000u | (m << 13); /* inf, nan */
    else if (e) bits = s | ((e + 112) << 23) | (m << 13);
    else if (!m) bits = s;
    else { /* subnormal: normalise */
        e = 113;
        while (!(m & 0x400)) m <<= 1, e--;
        bits = s | (e << 23) | ((m & 0x3FF) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

int lc_st_read_f32(const lc_st_file *f, int i, float *dst, size_t n)
{
    const lc_st_tensor *t = lc_st_tensor_at(f, i);
    if (!t) return lc_ckpt__fail(LC_ERR_ARG, "lc_st_read_f32: no tensor %d", i);
    if (t->numel != n)
        return lc_ckpt__fail(LC_ERR_ARG, "tensor \"%s\": %llu elements, expected %zu", t->name,
                             (unsigned long long)t->numel, n);
    const unsigned char *p = f->data + t->begin;
    /* the data may be unaligned (a header length that is not a multiple of 4): memcpy */
    switch (t->dtype) {
    case LC_ST_F32: memcpy(dst, p, n * 4); break;
    case LC_ST_BF16:
        for (size_t k = 0; k < n; k++) {
            uint32_t b = (uint32_t)p[2 * k] | (uint32_t)p[2 * k + 1] << 8;
            b <<= 16;
            memcpy(dst + k, &b, 4);
        }
        break;
    case LC_ST_F16:
        for (size_t k = 0; k < n; k++) dst[k] = half_to_float((uint16_t)(p[2 * k] | p[2 * k + 1] << 8));
        break;
    default:
        return lc_ckpt__fail(LC_ERR_ARG, "tensor \"%s\": dtype %s, expected F32, BF16 or F16", t->name,
                             lc_st_dtype_name(t->dtype));
    }
    return LC_OK;
}

/* ---- writer ---- */
struct lc_st_writer {
    int fd;
    char *path;
    uint64_t promised, written;
};

int lc_st_write_begin(const char *path, const lc_st_desc *t, int n, const char *const *meta_keys,
                      const char *const *meta_vals, int n_meta, lc_st_writer **out)
{
    *out = NULL;
    size_t cap = 256, len = 0;
    for (int i = 0; i < n; i++) cap += 6 * strlen(t[i].name) + 64 + 24 * (size_t)(t[i].ndim + 2) + 64;
    for (int i = 0; i < n_meta; i++) cap += 6 * (strlen(meta_keys[i]) + strlen(meta_vals[i])) + 16;
    char *h = malloc(cap + 8);
    if (!h) return lc_ckpt__fail(LC_ERR_SYS, "%s: out of memory for the header", path);
#define ADD(...) len += (size_t)snprintf(h + len, cap - len, __VA_ARGS__)
    ADD("{");
    if (n_meta) {
        ADD("\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) ADD(",");
            len += lc_json_quote(h + len, cap - len, meta_keys[i]);
            ADD(":");
            len += lc_json_quote(h + len, cap - len, meta_vals[i]);
        }
        ADD("}");
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        uint64_t numel = 1;
        for (int k = 0; k < t[i].ndim; k++) numel *= (uint64_t)t[i].shape[k];
        uint64_t bytes = numel * lc_st_dtype_size(t[i].dtype);
        ADD("%s", n_meta || i ? "," : "");
        len += lc_json_quote(h + len, cap - len, t[i].name);
        ADD(":{\"dtype\":\"%s\",\"shape\":[", lc_st_dtype_name(t[i].dtype));
        for (int k = 0; k < t[i].ndim; k++) ADD("%s%lld", k ? "," : "", (long long)t[i].shape[k]);
        ADD("],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + bytes));
        off += bytes;
    }
    ADD("}");
#undef ADD
    /* pad with spaces so that the data starts 8-byte aligned, like the reference writer */
    while ((len + 8) % 8) h[len++] = ' ';
    unsigned char lenb[8];
    for (int k = 0; k < 8; k++) lenb[k] = (unsigned char)((uint64_t)len >> (8 * k));
    lc_st_writer *w = calloc(1, sizeof *w);
    if (w) w->path = strdup(path);
    if (!w || !w->path) {
        free(h);
        if (w) free(w);
        return lc_ckpt__fail(LC_ERR_SYS, "%s: out of memory", path);
    }
    w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0 || lc_ckpt__write_all(w->fd, lenb, 8) || lc_ckpt__write_all(w->fd, h, len)) {
        int e = errno;
        free(h);
        lc_st_write_end(w, 1);
        return lc_ckpt__fail(LC_ERR_SYS, "cannot write %s: %s", path, strerror(e));
    }
    free(h);
    w->promised = off;
    *out = w;
    return LC_OK;
}

int lc_st_write_data(lc_st_writer *w, const void *data, size_t bytes)
{
    if (w->written + bytes > w->promised)
        return lc_ckpt__fail(LC_ERR_ARG, "%s: writing %zu bytes past the %llu the header promised", w->path, bytes,
                             (unsigned long long)w->promised);
    if (lc_ckpt__write_all(w->fd, data, bytes))
        return lc_ckpt__fail(LC_ERR_SYS, "cannot write %s: %s", w->path, strerror(errno));
    w->written += bytes;
    return LC_OK;
}

int lc_st_write_end(lc_st_writer *w, int abort)
{
    if (!w) return LC_OK;
    int rc = LC_OK;
    if (!abort && w->written != w->promised)
        rc = lc_ckpt__fail(LC_ERR_ARG, "%s: %llu data bytes written, the header promised %llu", w->path,
                           (unsigned long long)w->written, (unsigned long long)w->promised);
    if (!abort && !rc && fsync(w->fd)) rc = lc_ckpt__fail(LC_ERR_SYS, "cannot fsync %s: %s", w->path, strerror(errno));
    if (w->fd >= 0 && close(w->fd) && !abort && !rc)
        rc = lc_ckpt__fail(LC_ERR_SYS, "cannot close %s: %s", w->path, strerror(errno));
    if (abort || rc) unlink(w->path);
    free(w->path);
    free(w);
    return rc;
}
