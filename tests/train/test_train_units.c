/* Unit tests of src/train: token files (round trip and every corruption), the loader, AdamW
 * against a float64 reference, the schedule, the PNG writer, and the mesh (under the launcher).
 * Usage: test_train_units tokfile|loader|adamw|png|mesh DIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/check.h"
#include "longctx/train.h"

int lc_test_pe = 0;
static uint64_t g_seed;
static const char *g_dir;

static void path_in(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", g_dir, name); }

static void write_raw(const char *path, const int32_t *hdr, const void *tok, size_t tok_bytes)
{
    FILE *f = fopen(path, "wb");
    CHECK(f, "cannot create %s", path);
    int32_t h[256] = {0};
    memcpy(h, hdr, 3 * sizeof *hdr);
    CHECK(fwrite(h, sizeof h, 1, f) == 1, "write");
    if (tok_bytes) CHECK(fwrite(tok, tok_bytes, 1, f) == 1, "write");
    fclose(f);
}

/* Opening path must fail and the message must name the file and contain `want`. */
static void expect_fail(const char *path, int vocab, int64_t min_tokens, const char *want)
{
    lc_tokfile *f = NULL;
    int rc = lc_tokfile_open(path, vocab, min_tokens, &f);
    const char *msg = lc_train_last_error();
    CHECK(rc != 0 && !f, "%s opened but should fail with '%s'", path, want);
    CHECK(strstr(msg, path), "message '%s' does not name the file %s", msg, path);
    CHECK(strstr(msg, want), "message '%s' lacks '%s'", msg, want);
    printf("  ok: %s\n", msg);
}

static void test_tokfile(void)
{
    char p[512];
    int64_t n = 5000;
    int32_t *t = malloc((size_t)n * sizeof *t), *back = malloc((size_t)n * sizeof *back);
    uint64_t s = g_seed;
    for (int vi = 0; vi < 2; vi++) {
        int vocab = vi ? 128256 : 50257;
        for (int64_t i = 0; i < n; i++) t[i] = (int32_t)(lc_test_rng(&s) % (uint64_t)vocab);
        t[0] = vocab - 1;
        path_in(p, sizeof p, vi ? "u32.bin" : "u16.bin");
        CHECK(lc_tokfile_write(p, t, n, vocab) == 0, "%s", lc_train_last_error());
        lc_tokfile *f;
        CHECK(lc_tokfile_open(p, vocab, n, &f) == 0, "%s", lc_train_last_error());
        CHECK(lc_tokfile_version(f) == (vi ? 2 : 1), "version %d", lc_tokfile_version(f));
        CHECK(lc_tokfile_n_tokens(f) == n, "n");
        memset(back, 0xff, (size_t)n * sizeof *back);
        lc_tokfile_read(f, 0, n, back);
        CHECK(!memcmp(back, t, (size_t)n * sizeof *t), "round trip differs (vocab %d)", vocab);
        lc_tokfile_read(f, 1234, 10, back);
        CHECK(!memcmp(back, t + 1234, 10 * sizeof *t), "partial read differs");
        struct stat st;
        stat(p, &st);
        CHECK(st.st_size == 1024 + n * (vi ? 4 : 2), "file size %lld", (long long)st.st_size);
        lc_tokfile_close(f);
        /* one token over the vocabulary the model has */
        expect_fail(p, vocab - 1, 0, "is >= the vocabulary size");
    }
    /* the writer refuses tokens outside the vocabulary */
    for (int i = 0; i < 10; i++) t[i] = i;
    t[7] = 300;
    path_in(p, sizeof p, "bad_write.bin");
    CHECK(lc_tokfile_write(p, t, 10, 256) != 0 && strstr(lc_train_last_error(), "index 7"),
          "writer accepted token 300 of vocab 256: %s", lc_train_last_error());

    uint16_t tok16[100];
    for (int i = 0; i < 100; i++) tok16[i] = (uint16_t)(i % 256);
    int32_t good[3] = {LC_TOKFILE_MAGIC, 1, 100};
    path_in(p, sizeof p, "bad_magic.bin");
    write_raw(p, (int32_t[3]){20240521, 1, 100}, tok16, sizeof tok16);
    expect_fail(p, 256, 0, "bad magic 20240521");
    path_in(p, sizeof p, "bad_version.bin");
    write_raw(p, (int32_t[3]){LC_TOKFILE_MAGIC, 7, 100}, tok16, sizeof tok16);
    expect_fail(p, 256, 0, "unsupported version 7");
    path_in(p, sizeof p, "truncated.bin");
    write_raw(p, good, tok16, 150);
    expect_fail(p, 256, 0, "truncated");
    path_in(p, sizeof p, "short_header.bin");
    FILE *fp = fopen(p, "wb");
    fwrite(good, sizeof good, 1, fp);
    fclose(fp);
    expect_fail(p, 256, 0, "shorter than its 1024-byte header");
    path_in(p, sizeof p, "trailing.bin");
    write_raw(p, (int32_t[3]){LC_TOKFILE_MAGIC, 1, 90}, tok16, sizeof tok16);
    expect_fail(p, 256, 0, "20 bytes after the 90 tokens");
    path_in(p, sizeof p, "big_token.bin");
    tok16[42] = 256;
    write_raw(p, good, tok16, sizeof tok16);
    expect_fail(p, 256, 0, "token 256 at index 42 is >= the vocabulary size 256");
    tok16[42] = 42;
    path_in(p, sizeof p, "short.bin");
    write_raw(p, good, tok16, sizeof tok16);
    expect_fail(p, 256, 129, "shorter than one sequence: 100 tokens, a sequence needs 129");
    path_in(p, sizeof p, "missing.bin");
    expect_fail(p, 256, 0, "cannot open");
    free(t);
    free(back);
}

static void test_loader(void)
{
    char p[512];
    path_in(p, sizeof p, "loader.bin");
    const int64_t N = 1000, S = 31;
    int32_t t[1000];
    uint64_t s = g_seed;
    for (int i = 0; i < N; i++) t[i] = (int32_t)(1 + lc_test_rng(&s) % 255);
    for (int i = 50; i < N; i += 37) t[i] = LC_BYTE_DOC_SEP;
    CHECK(lc_tokfile_write(p, t, N, 256) == 0, "%s", lc_train_last_error());
    lc_tokfile *f;
    CHECK(lc_tokfile_open(p, 256, S + 1, &f) == 0, "%s", lc_train_last_error());
    int64_t nw = (N - 1) / S;
    int32_t tok[31], tgt[31], doc[31], tok2[31], tgt2[31];
    /* Two DP ranks: disjoint windows within an epoch, and together they cover every window. */
    lc_loader *r0, *r1;
    lc_loader_config c = {S, 1234, 0, 2, 1, -1};
    CHECK(lc_loader_create(f, &c, &r0) == 0, "%s", lc_train_last_error());
    c.dp_rank = 1;
    CHECK(lc_loader_create(f, &c, &r1) == 0, "%s", lc_train_last_error());
    CHECK(lc_loader_n_windows(r0) == nw, "windows %lld", (long long)lc_loader_n_windows(r0));
    int *seen = calloc((size_t)nw, sizeof *seen);
    for (int64_t k = 0; k < nw / 2; k++) {
        for (int r = 0; r < 2; r++) {
            CHECK(lc_loader_next(r ? r1 : r0, tok, tgt, NULL) == 0, "next");
            int64_t start = -1;
            for (int64_t w = 0; w < nw; w++)
                if (!memcmp(tok, t + w * S, sizeof tok)) start = w;
            CHECK(start >= 0, "sample is not a window of the file");
            CHECK(!memcmp(tgt, t + start * S + 1, sizeof tgt), "targets are not tokens shifted by one");
            CHECK(!seen[start], "window %lld served twice in one epoch", (long long)start);
            seen[start] = 1;
        }
    }
    CHECK(lc_loader_position(r0) == (nw / 2) * 2, "position %lld", (long long)lc_loader_position(r0));
    /* Save / restore: a fresh loader at the saved position yields the same next sample. */
    int64_t pos = lc_loader_position(r1);
    CHECK(lc_loader_next(r1, tok, tgt, NULL) == 0, "next");
    lc_loader *r1b;
    CHECK(lc_loader_create(f, &c, &r1b) == 0, "create");
    lc_loader_set_position(r1b, pos);
    CHECK(lc_loader_next(r1b, tok2, tgt2, NULL) == 0, "next");
    CHECK(!memcmp(tok, tok2, sizeof tok) && !memcmp(tgt, tgt2, sizeof tgt), "restored position differs");
    /* A different seed gives a different order; the same seed the same. */
    lc_loader_config c2 = c;
    c2.seed = 99;
    lc_loader *o;
    CHECK(lc_loader_create(f, &c2, &o) == 0, "create");
    int differ = 0;
    for (int64_t g = 0; g < nw; g++) {
        lc_loader_sample(o, g, tok, tgt, NULL);
        lc_loader_sample(r0, g, tok2, tgt2, NULL);
        differ |= memcmp(tok, tok2, sizeof tok) != 0;
    }
    CHECK(differ, "seeds 99 and 1234 gave the same order");
    lc_loader_destroy(o);
    /* Packed documents: ids count separators; predictions across a boundary are ignored. */
    c.doc_sep = LC_BYTE_DOC_SEP;
    c.shuffle = 0;
    c.dp_rank = 0;
    c.dp_size = 1;
    CHECK(lc_loader_create(f, &c, &o) == 0, "create");
    int checked = 0;
    for (int64_t g = 0; g < nw; g++) {
        lc_loader_sample(o, g, tok, tgt, doc);
        CHECK(!memcmp(tok, t + g * S, sizeof tok), "unshuffled loader is not in file order");
        int32_t d = 0;
        for (int i = 0; i < S; i++) {
            CHECK(doc[i] == d, "doc id %d at %d, want %d", doc[i], i, d);
            int boundary = tok[i] == LC_BYTE_DOC_SEP;
            CHECK(tgt[i] == (boundary ? -1 : t[g * S + i + 1]), "target at %d of window %lld", i, (long long)g);
            checked += boundary;
            d += boundary;
        }
    }
    CHECK(checked > 10, "only %d boundaries seen", checked);
    /* Too short for one sequence */
    lc_loader_config big = {N, 1, 0, 1, 1, -1};
    lc_loader *x = NULL;
    CHECK(lc_loader_create(f, &big, &x) != 0 && strstr(lc_train_last_error(), "shorter than one sequence") &&
              strstr(lc_train_last_error(), p),
          "loader accepted seq_len = file length: %s", lc_train_last_error());
    printf("  ok: %s\n", lc_train_last_error());
    lc_loader_destroy(o);
    lc_loader_destroy(r0);
    lc_loader_destroy(r1);
    lc_loader_destroy(r1b);
    lc_tokfile_close(f);
    free(seen);
}

static void test_adamw(void)
{
    const size_t n = 1000;
    float *p = malloc(n * sizeof *p), *g = malloc(n * sizeof *g);
    double *pr = malloc(n * sizeof *pr), *mr = calloc(n, sizeof *mr), *vr = calloc(n, sizeof *vr);
    uint64_t s = g_seed;
    for (size_t i = 0; i < n; i++) pr[i] = p[i] = (float)((double)(lc_test_rng(&s) >> 11) / 9007199254740992.0 - 0.5);
    lc_adamw_config cfg = {0.9f, 0.95f, 1e-8f, 0.1f};
    lc_adamw *o;
    CHECK(lc_adamw_create(n, &cfg, &o) == 0, "%s", lc_train_last_error());
    CHECK(lc_adamw_set_decay(o, 100, 50, 0) == 0, "set_decay");
    CHECK(lc_adamw_set_decay(o, 900, 100, 0) == 0, "set_decay");
    CHECK(lc_adamw_set_decay(o, 120, 10, 0) != 0, "overlap accepted");
    double maxrel = 0;
    for (int step = 0; step < 5; step++) {
        for (size_t i = 0; i < n; i++) g[i] = (float)((double)(lc_test_rng(&s) >> 11) / 9007199254740992.0 - 0.5);
        double norm = lc_global_norm(g, n), ref = 0;
        for (size_t i = 0; i < n; i++) ref += (double)g[i] * g[i];
        CHECK(fabs(norm - sqrt(ref)) < 1e-12 * sqrt(ref), "norm %g vs %g", norm, sqrt(ref));
        float clip = lc_clip_factor(norm, 5.0f);
        CHECK(clip > 0 && clip <= 1 && (norm <= 5 || fabs(clip * norm - 5) < 1e-5), "clip %g norm %g", clip, norm);
        float lr = lc_lr_at(step, 2, 5, 1e-2f, 1e-3f);
        lc_adamw_step(o, p, g, lr, clip);
        int t = step + 1;
        for (size_t i = 0; i < n; i++) {
            double gi = (double)g[i] * clip;
            mr[i] = 0.9 * mr[i] + 0.1 * gi;
            vr[i] = 0.95 * vr[i] + 0.05 * gi * gi;
            double mh = mr[i] / (1 - pow(0.9, t)), vh = vr[i] / (1 - pow(0.95, t));
            int decay = !((i >= 100 && i < 150) || i >= 900);
            pr[i] -= lr * (mh / (sqrt(vh) + 1e-8) + (decay ? 0.1 : 0.0) * pr[i]);
        }
        for (size_t i = 0; i < n; i++) {
            double rel = fabs(p[i] - pr[i]) / fmax(fabs(pr[i]), 1e-3);
            CHECK(!isnan(p[i]) && rel < 1e-5, "param %zu step %d: %.9g vs %.9g", i, step, p[i], pr[i]);
            if (rel > maxrel) maxrel = rel;
        }
    }
    CHECK(lc_adamw_steps(o) == 5, "steps");
    printf("  adamw vs float64 reference, 5 steps: max rel diff %.3g\n", maxrel);
    /* The schedule: linear warmup, then cosine to lr_min. */
    CHECK(fabsf(lc_lr_at(0, 10, 100, 1.0f, 0.1f) - 0.1f) < 1e-7, "warmup start");
    CHECK(fabsf(lc_lr_at(9, 10, 100, 1.0f, 0.1f) - 1.0f) < 1e-7, "warmup end");
    CHECK(fabsf(lc_lr_at(10, 10, 100, 1.0f, 0.1f) - 1.0f) < 1e-6, "cosine start");
    CHECK(fabsf(lc_lr_at(55, 10, 100, 1.0f, 0.1f) - 0.55f) < 1e-6, "cosine middle %g", lc_lr_at(55, 10, 100, 1.0f, 0.1f));
    CHECK(fabsf(lc_lr_at(100, 10, 100, 1.0f, 0.1f) - 0.1f) < 1e-6, "cosine end");
    CHECK(lc_clip_factor(3.0, 0) == 1.0f && lc_clip_factor(3.0, 4) == 1.0f, "clip off");
    lc_adamw_destroy(o);
    free(p); free(g); free(pr); free(mr); free(vr);
}

/* Reads back a PNG written by lc_png_write: signature, chunk CRCs, stored blocks, Adler-32,
 * and the pixels themselves. */
static void test_png(void)
{
    CHECK(lc_crc32(0, "123456789", 9) == 0xCBF43926u, "crc32 check value %08x", lc_crc32(0, "123456789", 9));
    char p[512];
    path_in(p, sizeof p, "t.png");
    const int W = 300, H = 251; /* 226051 raw bytes: several stored blocks */
    uint8_t *rgb = malloc((size_t)W * H * 3);
    uint64_t s = g_seed;
    for (size_t i = 0; i < (size_t)W * H * 3; i++) rgb[i] = (uint8_t)lc_test_rng(&s);
    CHECK(lc_png_write(p, W, H, rgb) == 0, "%s", lc_train_last_error());
    FILE *f = fopen(p, "rb");
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)sz);
    CHECK(fread(b, 1, (size_t)sz, f) == (size_t)sz, "read");
    fclose(f);
    CHECK(!memcmp(b, "\x89PNG\r\n\x1a\n", 8), "signature");
    long k = 8;
    uint8_t *idat = NULL;
    uint32_t idat_n = 0;
    int n_chunks = 0;
    while (k < sz) {
        uint32_t len = (uint32_t)b[k] << 24 | b[k + 1] << 16 | b[k + 2] << 8 | b[k + 3];
        uint32_t crc = (uint32_t)b[k + 8 + len] << 24 | b[k + 9 + len] << 16 | b[k + 10 + len] << 8 | b[k + 11 + len];
        CHECK(lc_crc32(0, b + k + 4, len + 4) == crc, "chunk %.4s crc", (char *)b + k + 4);
        if (!memcmp(b + k + 4, "IDAT", 4)) idat = b + k + 8, idat_n = len;
        k += 12 + len;
        n_chunks++;
    }
    CHECK(k == sz && n_chunks == 3 && idat, "chunks");
    CHECK((idat[0] << 8 | idat[1]) % 31 == 0, "zlib header check");
    size_t at = 2, out = 0, row = (size_t)W * 3 + 1;
    uint32_t a = 1, bb = 0;
    int final = 0;
    while (!final) {
        final = idat[at] & 1;
        CHECK((idat[at] >> 1 & 3) == 0, "not a stored block");
        uint16_t len = (uint16_t)(idat[at + 1] | idat[at + 2] << 8), nlen = (uint16_t)(idat[at + 3] | idat[at + 4] << 8);
        CHECK((int)len + (int)nlen == 0xFFFF, "LEN/NLEN");
        at += 5;
        for (uint16_t i = 0; i < len; i++, out++) {
            uint8_t v = idat[at + i];
            size_t y = out / row, x = out % row;
            CHECK(x == 0 ? v == 0 : v == rgb[y * (size_t)W * 3 + x - 1], "pixel byte %zu", out);
            a = (a + v) % 65521;
            bb = (bb + a) % 65521;
        }
        at += len;
    }
    CHECK(out == row * H, "raw bytes %zu", out);
    uint32_t adler = (uint32_t)idat[at] << 24 | idat[at + 1] << 16 | idat[at + 2] << 8 | idat[at + 3];
    CHECK(adler == (bb << 16 | a) && at + 4 == idat_n, "adler32");
    /* A plot: two series, written without error, with non-white pixels in the frame. */
    double x[50], y[50], vx[5], vy[5];
    for (int i = 0; i < 50; i++) x[i] = i + 1, y[i] = 5.5 * exp(-i / 15.0) + 1.2;
    for (int i = 0; i < 5; i++) vx[i] = 10 * i + 10, vy[i] = 5.5 * exp(-(10 * i + 9) / 15.0) + 1.3;
    lc_plot_series se[2] = {{x, y, 50, {31, 119, 180}, "train"}, {vx, vy, 5, {214, 39, 40}, "val"}};
    path_in(p, sizeof p, "plot.png");
    CHECK(lc_plot_png(p, 640, 400, "loss: tiny test", "step", "loss", se, 2) == 0, "%s", lc_train_last_error());
    printf("  wrote %s\n", p);
    free(rgb);
    free(b);
}

static void test_html(void)
{
    const char *html =
        "<html><head><title>Nav</title><style>p { x }</style><script>var a = '<p>';</script></head>"
        "<body><div class=\"related\">NAVIGATION</div><div class=\"body\" role=\"main\">"
        "<h1>Lists &amp; tuples&#182;</h1><!-- a <b>comment</b> -->\n<p>A  list\n   is &lt;mutable&gt;"
        "&nbsp;&#x2014; see <a href=\"x\">here</a>.</p><pre>x = 1\n  y = 2</pre><p>&bogus; end</p></div>"
        "<div class=\"sphinxsidebar\">SIDEBAR</div></body></html>";
    char out[1024];
    size_t n = lc_html_to_text(html, strlen(html), out);
    out[n] = 0;
    const char *want = "Lists & tuples\xc2\xb6\n\nA list is <mutable> \xe2\x80\x94 see here.\n\n"
                       "x = 1\n  y = 2\n\n&bogus; end\n";
    CHECK(!strcmp(out, want), "html_to_text gave [%s]\nwant [%s]", out, want);
}

/* The real corpus: python3-doc's HTML to token files that open clean with vocab 256. */
static int test_corpus(void)
{
    const char *src = "/usr/share/doc/python3-doc/html";
    struct stat st;
    if (stat(src, &st)) {
        printf("SKIP: %s is missing (apt-get install python3-doc; scripts/setup.sh installs it)\n", src);
        return 77;
    }
    lc_corpus_stats cs;
    CHECK(lc_corpus_build(src, g_dir, 20, &cs) == 0, "%s", lc_train_last_error());
    CHECK(cs.docs > 100 && cs.train_tokens > 1000000 && cs.val_tokens > 50000, "corpus too small: %lld docs, %lld/%lld tokens",
          (long long)cs.docs, (long long)cs.train_tokens, (long long)cs.val_tokens);
    char p[512];
    path_in(p, sizeof p, "train.bin");
    lc_tokfile *f;
    CHECK(lc_tokfile_open(p, 256, 16385, &f) == 0, "%s", lc_train_last_error());
    CHECK(lc_tokfile_n_tokens(f) == cs.train_tokens, "tokens");
    /* English: spaces and the letter e are the most common bytes, no markup survives. */
    int64_t n = lc_tokfile_n_tokens(f), cnt[256] = {0};
    int32_t *t = malloc((size_t)n * sizeof *t);
    lc_tokfile_read(f, 0, n, t);
    int64_t lt = 0;
    for (int64_t i = 0; i < n; i++) {
        cnt[t[i]]++;
        lt += i + 3 < n && t[i] == '<' && t[i + 1] == 'd' && t[i + 2] == 'i' && t[i + 3] == 'v';
    }
    CHECK(cnt[' '] > n / 10 && cnt['e'] > n / 30, "not English text: %lld spaces, %lld e in %lld", (long long)cnt[' '],
          (long long)cnt['e'], (long long)n);
    CHECK(lt < 20, "%lld '<div' left in the text (the pages have ~27000; a few are examples)", (long long)lt);
    printf("  corpus: %lld pages, %lld train / %lld val tokens\n", (long long)cs.docs, (long long)cs.train_tokens,
           (long long)cs.val_tokens);
    free(t);
    lc_tokfile_close(f);
    return 0;
}

/* A small data dir for the trainer tests: byte tokens from a seeded generator (a Markov-ish
 * stream so there is something to learn), documents ended by 0 every ~200 tokens. */
static void make_data(void)
{
    const int64_t n = 60000;
    int32_t *t = malloc((size_t)n * sizeof *t);
    uint64_t s = 42;
    for (int f = 0; f < 2; f++) {
        int32_t prev = 'a';
        for (int64_t i = 0; i < n; i++) {
            uint64_t r = lc_test_rng(&s);
            prev = (r % 4) ? (int32_t)('a' + (prev * 7 + 3) % 26) : (int32_t)(32 + (r >> 8) % 90);
            t[i] = (r >> 20) % 200 == 0 ? LC_BYTE_DOC_SEP : prev;
        }
        char p[512];
        path_in(p, sizeof p, f ? "val.bin" : "train.bin");
        CHECK(lc_tokfile_write(p, t, f ? n / 4 : n, 256) == 0, "%s", lc_train_last_error());
    }
    free(t);
}

static void test_mesh(void)
{
    lc_world *w;
    CHECK(lc_world_init(NULL, &w) == 0, "world");
    lc_test_pe = lc_my_pe(w);
    int n = lc_n_pes(w);
    char err[256];
    CHECK(lc_mesh_check(n, n, 1, 1, err, sizeof err) == 0, "%s", err);
    CHECK(lc_mesh_check(n, n + 1, 1, 1, err, sizeof err) != 0 && strstr(err, "cannot form"), "%s", err);
    CHECK(lc_mesh_check(n, 1, n, 2, err, sizeof err) != 0 && strstr(err, "x TP 2"), "%s", err);
    int ord[3];
    CHECK(lc_mesh_parse_order("cp,dp,tp", ord, err, sizeof err) == 0 && ord[0] == 1 && ord[1] == 2 && ord[2] == 0, "%s", err);
    CHECK(lc_mesh_parse_order("cp,tp", ord, err, sizeof err) != 0 && strstr(err, "--mesh-order 'cp,tp'"), "%s", err);
    CHECK(lc_mesh_parse_order("tp,tp,dp", ord, err, sizeof err) != 0, "tp twice accepted");
    /* DP x CP x TP in every axis order: ranks from the strides, team sums, gradient sums */
    static const char *const orders[] = {"tp,cp,dp", "cp,tp,dp", "dp,cp,tp", "cp,dp,tp"};
    for (int tp = 2; tp <= n; tp++) {
        if (n % tp) continue;
        int rest = n / tp, cp = rest % 2 == 0 && rest > 1 ? 2 : 1, dp = rest / cp;
        for (int k = 0; k < 4; k++) {
            lc_mesh m;
            CHECK(lc_mesh_create_ordered(lc_team_world(w), dp, cp, tp, orders[k], &m) == 0, "%s", lc_train_last_error());
            int me = lc_my_pe(w), size[3] = {tp, cp, dp}, stride[3], s = 1, rank[3] = {m.tp_rank, m.cp_rank, m.dp_rank};
            lc_mesh_parse_order(orders[k], ord, err, sizeof err);
            for (int a = 0; a < 3; a++) stride[ord[a]] = s, s *= size[ord[a]];
            CHECK(me == rank[0] * stride[0] + rank[1] * stride[1] + rank[2] * stride[2], "%s: rank %d from coords", orders[k], me);
            CHECK(lc_team_n_pes(m.tp_team) == tp && lc_team_my_pe(m.tp_team) == m.tp_rank, "tp team");
            CHECK(lc_team_n_pes(m.cp_team) == cp && lc_team_my_pe(m.cp_team) == m.cp_rank, "cp team");
            CHECK(lc_team_n_pes(m.dp_team) == dp && lc_team_my_pe(m.dp_team) == m.dp_rank, "dp team");
            /* the TP team sums my TP neighbours; the gradient sum covers my TP rank's PEs */
            float v = (float)me, sum, g[2] = {(float)me, 1}, want = 0;
            CHECK(lc_allreduce_sum_f32(m.tp_team, &sum, &v, 1) == 0, "allreduce");
            for (int t = 0; t < tp; t++) want += (float)(me + (t - m.tp_rank) * stride[0]);
            CHECK(sum == want, "%s: tp sum %g want %g", orders[k], sum, want);
            CHECK(lc_mesh_allreduce_grads(&m, g, 2) == 0, "grad allreduce");
            want = 0;
            for (int r = 0; r < n; r++) want += (r / stride[0]) % tp == m.tp_rank ? (float)r : 0.0f;
            CHECK(g[0] == want && g[1] == (float)(cp * dp), "%s: grad sum %g want %g over %g PEs", orders[k], g[0], want, g[1]);
            lc_mesh_destroy(&m);
        }
    }
    for (int dp = 1; dp <= n; dp++) {
        if (n % dp) continue;
        int cp = n / dp;
        lc_mesh m;
        CHECK(lc_mesh_create(lc_team_world(w), dp, cp, 1, &m) == 0, "%s", lc_train_last_error());
        int me = lc_my_pe(w);
        CHECK(m.dp_rank == me / cp && m.cp_rank == me % cp, "ranks");
        CHECK(lc_team_n_pes(m.cp_team) == cp && lc_team_n_pes(m.dp_team) == dp, "team sizes");
        CHECK(lc_team_my_pe(m.cp_team) == m.cp_rank && lc_team_my_pe(m.dp_team) == m.dp_rank, "team ranks");
        /* A sum over the CP team adds the world ranks of my row; over the DP team my column. */
        float v = (float)me, sum;
        CHECK(lc_allreduce_sum_f32(m.cp_team, &sum, &v, 1) == 0, "allreduce");
        float want = 0;
        for (int c = 0; c < cp; c++) want += (float)(m.dp_rank * cp + c);
        CHECK(sum == want, "cp sum %g want %g", sum, want);
        CHECK(lc_allreduce_sum_f32(m.dp_team, &sum, &v, 1) == 0, "allreduce");
        want = 0;
        for (int d = 0; d < dp; d++) want += (float)(d * cp + m.cp_rank);
        CHECK(sum == want, "dp sum %g want %g", sum, want);
        lc_mesh_destroy(&m);
    }
    CHECK(lc_world_finalize(w) == 0, "finalize");
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: test_train_units tokfile|loader|adamw|png|mesh DIR\n");
        return 2;
    }
    const char *e = getenv("LONGCTX_SEED");
    g_seed = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL);
    g_dir = argv[2];
    mkdir(g_dir, 0755);
    if (strcmp(argv[1], "mesh")) printf("test_train_units %s: seed %llu (LONGCTX_SEED overrides)\n", argv[1], (unsigned long long)g_seed);
    if (!strcmp(argv[1], "tokfile")) test_tokfile();
    else if (!strcmp(argv[1], "loader")) test_loader();
    else if (!strcmp(argv[1], "adamw")) test_adamw();
    else if (!strcmp(argv[1], "png")) test_png();
    else if (!strcmp(argv[1], "mesh")) test_mesh();
    else if (!strcmp(argv[1], "html")) test_html();
    else if (!strcmp(argv[1], "mkdata")) make_data();
    else if (!strcmp(argv[1], "corpus")) {
        int rc = test_corpus();
        if (rc) return rc;
    }
    else {
        fprintf(stderr, "unknown test %s\n", argv[1]);
        return 2;
    }
    printf("PASS %s\n", argv[1]);
    return 0;
}
