/* llm.c token files: a 256 x int32 header, then uint16 (version 1) or uint32 (version 2)
 * tokens. The file is mapped, and validated fully at open, so that a bad file is reported
 * (naming the file and the problem) before any training step. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hash.h"
#include "train/internal.h"

struct lc_tokfile {
    char *path;
    const uint8_t *map;
    size_t map_bytes;
    int version;
    int64_t n;
    const void *tokens;
    uint64_t fingerprint; /* lc_tokfile_fingerprint */
};

static int64_t token_bytes(int version)
{
    return version == LC_TOKFILE_V_U16 ? 2 : 4;
}

/* Computed once at open (65 pieces of 4 KiB): checkpoints and resumes ask for it often. */
static uint64_t fingerprint(const uint8_t *map, size_t n)
{
    const size_t piece = 4096;
    const uint64_t size = n;
    uint64_t h = lc_fnv1a64(LC_FNV1A64_INIT, &size, sizeof size);
    for (int k = 0; k <= 64; k++) {
        /* piece 0 is the header; piece 64 ends at the last byte */
        size_t at = n <= piece ? 0 : (size_t)((double)(n - piece) * k / 64);
        h = lc_fnv1a64(h, map + at, n < piece ? n : piece);
    }
    return h;
}

int lc_tokfile_open(const char *path, int vocab, int64_t min_tokens, lc_tokfile **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return lc_train__fail(LC_ERR_SYS, "cannot open token file %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) {
        close(fd);
        return lc_train__fail(LC_ERR_SYS, "cannot stat token file %s: %s", path, strerror(errno));
    }
    const int64_t hdr_bytes = LC_TOKFILE_HEADER_INTS * 4;
    int64_t size = (int64_t)st.st_size;
    if (size < hdr_bytes) {
        close(fd);
        return lc_train__fail(LC_ERR_ARG,
                              "token file %s is truncated: %lld bytes, shorter than its %lld-byte header",
                              path, (long long)size, (long long)hdr_bytes);
    }
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return lc_train__fail(LC_ERR_SYS, "cannot map token file %s: %s", path, strerror(errno));
    int rc = LC_ERR_ARG;
    int32_t hdr[3];
    memcpy(hdr, map, sizeof hdr);
    if (hdr[0] != LC_TOKFILE_MAGIC) {
        lc_train__fail(rc, "token file %s has bad magic %d (expected %d): not an llm.c token file",
                       path, hdr[0], LC_TOKFILE_MAGIC);
        goto fail;
    }
    if (hdr[1] != LC_TOKFILE_V_U16 && hdr[1] != LC_TOKFILE_V_U32) {
        lc_train__fail(rc, "token file %s has unsupported version %d (1: uint16 tokens, 2: uint32 tokens)",
                       path, hdr[1]);
        goto fail;
    }
    if (hdr[2] < 0) {
        lc_train__fail(rc, "token file %s has a negative token count %d in its header", path, hdr[2]);
        goto fail;
    }
    int64_t w = token_bytes(hdr[1]), n = hdr[2], want = hdr_bytes + n * w;
    if (size < want) {
        lc_train__fail(rc,
                       "token file %s is truncated: its header promises %lld tokens (%lld bytes) but "
                       "only %lld bytes of tokens follow",
                       path, (long long)n, (long long)(n * w), (long long)(size - hdr_bytes));
        goto fail;
    }
    if (size > want) {
        lc_train__fail(rc, "token file %s has %lld bytes after the %lld tokens its header promises",
                       path, (long long)(size - want), (long long)n);
        goto fail;
    }
    const uint8_t *tok = (const uint8_t *)map + hdr_bytes;
    if (vocab > 0) {
        for (int64_t i = 0; i < n; i++) {
            uint32_t t;
            if (w == 2) {
                uint16_t s;
                memcpy(&s, tok + 2 * i, 2);
                t = s;
            } else {
                memcpy(&t, tok + 4 * i, 4);
            }
            if (t >= (uint32_t)vocab) {
                lc_train__fail(rc, "token file %s: token %u at index %lld is >= the vocabulary size %d",
                               path, t, (long long)i, vocab);
                goto fail;
            }
        }
    }
    if (min_tokens > 0 && n < min_tokens) {
        lc_train__fail(rc,
                       "token file %s is shorter than one sequence: %lld tokens, a sequence needs %lld "
                       "(seq_len + 1)",
                       path, (long long)n, (long long)min_tokens);
        goto fail;
    }
    lc_tokfile *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        rc = lc_train__fail(LC_ERR_SYS, "out of memory opening %s", path);
        goto fail;
    }
    f->map = map;
    f->map_bytes = (size_t)size;
    f->version = hdr[1];
    f->n = n;
    f->fingerprint = fingerprint(f->map, f->map_bytes);
    f->tokens = tok;
    *out = f;
    return LC_OK;
fail:
    munmap(map, (size_t)size);
    return rc;
}

void lc_tokfile_close(lc_tokfile *f)
{
    if (!f) return;
    munmap((void *)f->map, f->map_bytes);
    free(f->path);
    free(f);
}

int64_t lc_tokfile_n_tokens(const lc_tokfile *f) { return f->n; }
int lc_tokfile_version(const lc_tokfile *f) { return f->version; }
const char *lc_tokfile_path(const lc_tokfile *f) { return f->path; }

uint64_t lc_tokfile_fingerprint(const lc_tokfile *f) { return f->fingerprint; }

void lc_tokfile_read(const lc_tokfile *f, int64_t start, int64_t n, int32_t *dst)
{
    if (f->version == LC_TOKFILE_V_U16) {
        const uint16_t *s = (const uint16_t *)f->tokens + start;
        for (int64_t i = 0; i < n; i++) dst[i] = s[i];
    } else {
        const uint32_t *s = (const uint32_t *)f->tokens + start;
        for (int64_t i = 0; i < n; i++) dst[i] = (int32_t)s[i];
    }
}

int lc_tokfile_write(const char *path, const int32_t *tokens, int64_t n, int vocab)
{
    if (vocab <= 0 || n < 0 || n > INT32_MAX)
        return lc_train__fail(LC_ERR_ARG, "cannot write %s: bad vocab %d or token count %lld", path,
                              vocab, (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= vocab)
            return lc_train__fail(LC_ERR_ARG, "cannot write %s: token %d at index %lld is outside [0, %d)",
                                  path, tokens[i], (long long)i, vocab);
    int version = vocab <= 65536 ? LC_TOKFILE_V_U16 : LC_TOKFILE_V_U32;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) return lc_train__fail(LC_ERR_SYS, "out of memory writing %s", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        int rc = lc_train__fail(LC_ERR_SYS, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    int32_t hdr[LC_TOKFILE_HEADER_INTS] = {LC_TOKFILE_MAGIC, version, (int32_t)n};
    int ok = fwrite(hdr, sizeof hdr, 1, fp) == 1;
    enum { CHUNK = 8192 };
    uint16_t b16[CHUNK];
    uint32_t b32[CHUNK];
    for (int64_t i = 0; ok && i < n; i += CHUNK) {
        size_t m = (size_t)(n - i < CHUNK ? n - i : CHUNK);
        if (version == LC_TOKFILE_V_U16) {
            for (size_t j = 0; j < m; j++) b16[j] = (uint16_t)tokens[i + (int64_t)j];
            ok = fwrite(b16, 2, m, fp) == m;
        } else {
            for (size_t j = 0; j < m; j++) b32[j] = (uint32_t)tokens[i + (int64_t)j];
            ok = fwrite(b32, 4, m, fp) == m;
        }
    }
    ok = ok && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
    ok = (fclose(fp) == 0) && ok;
    if (!ok || rename(tmp, path)) {
        int rc = lc_train__fail(LC_ERR_SYS, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return rc;
    }
    free(tmp);
    return LC_OK;
}
