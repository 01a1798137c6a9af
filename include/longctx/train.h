/* longctx training layer: token files, byte tokenizer, data loader, the DP x CP mesh,
 * metrics and a loss-curve PNG. The optimizer (AdamW, clipping, the learning-rate schedule)
 * is its own layer below this one and the checkpoints: optim.h, included here.
 *
 * Errors: calls return lc_status codes (symm.h); the message, naming the file or value that
 * was wrong, is in lc_train_last_error() (thread-local, like every layer without a handle).
 */
#ifndef LONGCTX_TRAIN_H
#define LONGCTX_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "longctx/cp.h" /* lc_plan: the mesh of a plan */
#include "longctx/optim.h"
#include "longctx/symm.h"

#ifdef __cplusplus
extern "C" {
#endif

const char *lc_train_last_error(void);
/* The PE that speaks for the last error when every PE failed with the same message (the PEs
 * agreed on it, as on a checkpoint none of them can resume from), so that it is printed once;
 * -1 when each PE's message is its own. */
int lc_train_error_reporter(void);

/* ---- token files (llm.c format) ----
 * A 256 x int32 little-endian header: [0] magic 20240520, [1] version, [2] token count, the
 * rest zero; then the tokens. Version 1 stores uint16 tokens (llm.c's); version 2 stores
 * uint32 tokens, for vocabularies over 65536 such as Llama 3's (128256). */
#define LC_TOKFILE_MAGIC 20240520
#define LC_TOKFILE_V_U16 1
#define LC_TOKFILE_V_U32 2
#define LC_TOKFILE_HEADER_INTS 256

typedef struct lc_tokfile lc_tokfile;
/* Maps path read-only and validates it: magic, version, the size the header promises, every
 * token < vocab (vocab <= 0 skips that check), and at least min_tokens tokens (0: any). */
int lc_tokfile_open(const char *path, int vocab, int64_t min_tokens, lc_tokfile **out);
void lc_tokfile_close(lc_tokfile *f);
int64_t lc_tokfile_n_tokens(const lc_tokfile *f);
int lc_tokfile_version(const lc_tokfile *f);
const char *lc_tokfile_path(const lc_tokfile *f);
/* What identifies the tokens wherever the file now lives: a 64-bit FNV-1a hash of the
 * header, the size and 64 evenly spaced 4 KiB pieces (cheap on a 20 GB file; a checkpoint
 * records it so that a resume on other data is refused, a moved file is not). */
uint64_t lc_tokfile_fingerprint(const lc_tokfile *f);
/* Copies tokens [start, start+n) as int32 (the range must lie inside the file). */
void lc_tokfile_read(const lc_tokfile *f, int64_t start, int64_t n, int32_t *dst);
/* Writes tokens; version 1 when vocab <= 65536, else 2. Tokens must lie in [0, vocab).
 * Written to path.tmp and renamed, so a reader never sees half a file. */
int lc_tokfile_write(const char *path, const int32_t *tokens, int64_t n, int vocab);

/* ---- byte-level tokenizer: token = byte value, vocab 256 ---- */
#define LC_BYTE_VOCAB 256
#define LC_BYTE_DOC_SEP 0 /* NUL never occurs in text: it ends a document in packed files */
void lc_byte_encode(const char *text, size_t n, int32_t *out);
/* Writes printable text for tokens (non-printing bytes as '.'); returns chars written. */
size_t lc_byte_decode(const int32_t *tokens, size_t n, char *out, size_t cap);

/* ---- corpus (prepare-data) ---- */
/* Plain text of an HTML page: tags dropped (script/style/comments with their content),
 * entities decoded to UTF-8, whitespace collapsed, block tags as line breaks; only the Sphinx
 * main body when the page marks one. out needs n + 8 bytes. Returns the length. */
size_t lc_html_to_text(const char *in, size_t n, char *out);
typedef struct { int64_t docs, html_bytes, train_tokens, val_tokens; } lc_corpus_stats;
/* Every *.html under src_dir (sorted) as one document; every val_every-th to val.bin, the
 * rest to train.bin in out_dir (byte tokens, each document ended by LC_BYTE_DOC_SEP). */
int lc_corpus_build(const char *src_dir, const char *out_dir, int val_every, lc_corpus_stats *st);

/* ---- data loader ----
 * Sample g of the global stream is a window of seq_len + 1 tokens starting at w * seq_len,
 * where w is the (g mod n_windows)-th entry of a permutation of the windows seeded by
 * (seed, epoch = g / n_windows). The position counts global samples: a DP rank r of dp takes
 * samples pos + r and every rank advances pos by dp, so the ranks see different sequences
 * and the position (one integer, the same on every rank) is all a checkpoint needs. */
typedef struct {
    int64_t seq_len;
    uint64_t seed;
    int dp_rank, dp_size;
    int shuffle;   /* 0: windows in file order (validation) */
    int doc_sep;   /* >= 0: packed documents; this token ends a document */
} lc_loader_config;

typedef struct lc_loader lc_loader;
int lc_loader_create(const lc_tokfile *f, const lc_loader_config *cfg, lc_loader **out);
void lc_loader_destroy(lc_loader *l);
int64_t lc_loader_n_windows(const lc_loader *l);
/* Fills tokens[seq_len], targets[seq_len] (target -1: ignored, i.e. a prediction across a
 * document boundary in packed mode) and doc[seq_len] (document ids, may be NULL) for this
 * rank's next sample, then advances the position by dp_size. Allocates nothing. */
int lc_loader_next(lc_loader *l, int32_t *tokens, int32_t *targets, int32_t *doc);
/* The same for global sample g without moving the position. */
int lc_loader_sample(lc_loader *l, int64_t g, int32_t *tokens, int32_t *targets, int32_t *doc);
int64_t lc_loader_position(const lc_loader *l);
void lc_loader_set_position(lc_loader *l, int64_t pos);

/* ---- the mesh: PEs as DP x CP x TP ----
 * The axis order, innermost first, decides which PEs are neighbours (consecutive world ranks,
 * neighbouring cores); the default tp,cp,dp (Megatron's) gives world rank
 * (dp_rank * cp + cp_rank) * tp + tp_rank: the TP team, which talks most, is consecutive. */
typedef struct {
    int dp, cp, tp;
    int dp_rank, cp_rank, tp_rank;
    lc_team *world;   /* every PE */
    lc_team *cp_team; /* the PEs sharing one sequence (same DP and TP rank) */
    lc_team *dp_team; /* the PEs at my CP and TP rank of the other replicas */
    lc_team *tp_team; /* the PEs sharing my layers' slices (one PE when tp = 1) */
    lc_team *grad_team; /* the PEs holding my slices (CP x DP at my TP rank): gradients are
                           summed here; NULL when that set is not strided (TP in the middle
                           of the order): then over CP, then DP (lc_mesh_allreduce_grads) */
    lc_team *pair_team; /* the two-axis team the axis teams were split from (owned) */
    int order[3];     /* axes innermost first: 0 tp, 1 cp, 2 dp */
} lc_mesh;

/* Checks that dp x cp x tp PEs are n_pes; writes a message into err when not. */
int lc_mesh_check(int n_pes, int dp, int cp, int tp, char *err, size_t errlen);
/* "tp,cp,dp" (NULL: that default) -> order[3] (0 tp, 1 cp, 2 dp), innermost first. */
int lc_mesh_parse_order(const char *s, int order[3], char *err, size_t errlen);
/* Collective over world. lc_mesh_create uses the default order. */
int lc_mesh_create(lc_team *world, int dp, int cp, int tp, lc_mesh *out);
int lc_mesh_create_ordered(lc_team *world, int dp, int cp, int tp, const char *order, lc_mesh *out);
/* The mesh of a plan (cp.h): its dp x cp x tp and order. Collective over world. */
int lc_mesh_create_plan(lc_team *world, const lc_plan *p, lc_mesh *out);
/* Sums grads (in place) over the PEs holding the same slices (CP x DP at my TP rank). */
int lc_mesh_allreduce_grads(const lc_mesh *m, float *grads, size_t n);
void lc_mesh_destroy(lc_mesh *m);

/* ---- metrics ---- */
/* Peak resident memory of this process (VmHWM), in bytes; 0 when unknown. */
size_t lc_peak_rss_bytes(void);

/* ---- loss-curve PNG ----
 * Draws train (x[i], y[i]) and validation points as lines in a framed plot with axes, ticks
 * and labels; writes an 8-bit RGB PNG (zlib stored blocks, CRC32 and Adler-32 by hand). */
typedef struct {
    const double *x, *y;
    int n;
    uint8_t rgb[3];
    const char *label;
} lc_plot_series;
int lc_plot_png(const char *path, int width, int height, const char *title,
                const char *xlabel, const char *ylabel, const lc_plot_series *series,
                int n_series);
/* The raw writer: rgb is height rows of width*3 bytes. */
int lc_png_write(const char *path, int width, int height, const uint8_t *rgb);
uint32_t lc_crc32(uint32_t crc, const void *data, size_t n);

#ifdef __cplusplus
}
#endif
#endif
