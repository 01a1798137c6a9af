/* longctx checkpoints (src/ckpt): Hugging Face safetensors files and checkpoint directories
 * that transformers' LlamaForCausalLM.from_pretrained loads as they are.
 *
 * A checkpoint is DIR/step-NNNNNNNN/ holding
 *   config.json                 LlamaConfig fields (architectures, hidden_size, ...)
 *   model.safetensors           the weights, F32, Hugging Face Llama names, metadata format=pt
 *   training_state.safetensors  AdamW moments (exp_avg.NAME, exp_avg_sq.NAME) and, in its
 *                               __metadata__, step, data position, optimizer steps, seed,
 *                               schedule, the layout that wrote it and the model preset.
 * Tensors are always whole (gathered over TP; DP/CP replicas are equal), so a checkpoint
 * does not depend on the layout that wrote it. A save writes DIR/step-N.tmp-PID, fsyncs every
 * file and the folder, renames it to DIR/step-N and fsyncs DIR: the rename is what makes a
 * checkpoint complete, so a crash at any moment leaves the previous one intact.
 *
 * Errors return lc_status codes (symm.h) with a message naming the file, tensor or field in
 * lc_ckpt_last_error() (thread-local). Every load validates everything into staging buffers
 * before it changes anything. */
#ifndef LONGCTX_CKPT_H
#define LONGCTX_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "longctx/model.h"
#include "longctx/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

const char *lc_ckpt_last_error(void);

/* ---- safetensors ----
 * 8-byte little-endian header length N, N bytes of JSON {name: {"dtype", "shape",
 * "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the data; offsets are
 * relative to the data and must tile it exactly (sorted, no gap, no overlap). */
typedef enum {
    LC_ST_F64, LC_ST_F32, LC_ST_F16, LC_ST_BF16, LC_ST_I64, LC_ST_I32, LC_ST_I16, LC_ST_I8,
    LC_ST_U8, LC_ST_BOOL, LC_ST_N_DTYPES
} lc_st_dtype;
#define LC_ST_MAX_DIMS 8
#define LC_ST_MAX_HEADER (100u << 20) /* the limit of the reference implementation */

const char *lc_st_dtype_name(lc_st_dtype t);
size_t lc_st_dtype_size(lc_st_dtype t);

typedef struct {
    const char *name;
    lc_st_dtype dtype;
    int ndim;
    int64_t shape[LC_ST_MAX_DIMS];
    uint64_t numel;
    uint64_t begin, end; /* byte range in the data section */
} lc_st_tensor;

typedef struct lc_st_file lc_st_file;
/* Validates a whole file image buf[0, len) (kept, not copied: it must outlive the handle).
 * `what` names the source in messages (a path). Returns LC_ERR_ARG with a message for any
 * malformed input; never reads outside buf. */
int lc_st_parse(const void *buf, size_t len, const char *what, lc_st_file **out);
/* Maps path read-only and parses it. */
int lc_st_open(const char *path, lc_st_file **out);
void lc_st_close(lc_st_file *f);
int lc_st_n_tensors(const lc_st_file *f);
const lc_st_tensor *lc_st_tensor_at(const lc_st_file *f, int i); /* in header order */
int lc_st_find(const lc_st_file *f, const char *name);           /* index or -1 */
const void *lc_st_data(const lc_st_file *f, int i);              /* the tensor's bytes */
/* __metadata__ entries (string values). */
int lc_st_n_meta(const lc_st_file *f);
void lc_st_meta_at(const lc_st_file *f, int i, const char **key, const char **val);
const char *lc_st_meta(const lc_st_file *f, const char *key); /* NULL when absent */
/* Converts tensor i (F32, BF16 or F16) to fp32 into dst[n]; n must equal its numel. */
int lc_st_read_f32(const lc_st_file *f, int i, float *dst, size_t n);

/* Streaming writer: the header first (shapes are known), then each tensor's bytes in the
 * order given. The file is fsynced and closed by lc_st_write_end. */
typedef struct {
    const char *name;
    lc_st_dtype dtype;
    int ndim;
    int64_t shape[LC_ST_MAX_DIMS];
} lc_st_desc;
typedef struct lc_st_writer lc_st_writer;
int lc_st_write_begin(const char *path, const lc_st_desc *t, int n, const char *const *meta_keys,
                      const char *const *meta_vals, int n_meta, lc_st_writer **out);
int lc_st_write_data(lc_st_writer *w, const void *data, size_t bytes);
/* Checks every byte promised was written, fsyncs, closes. abort != 0: just close and unlink. */
int lc_st_write_end(lc_st_writer *w, int abort);

/* ---- config.json (LlamaConfig) ---- */
int lc_ckpt_write_config(const char *path, const lc_model_config *cfg);
/* Reads a LlamaConfig; fields transformers defaults (num_key_value_heads, rms_norm_eps,
 * rope_theta, max_position_embeddings) get its defaults; anything longctx cannot run
 * (rope_scaling, biases, another activation or model type, a head_dim other than
 * hidden_size / heads) is an error naming the field. *tied (may be NULL) gets
 * tie_word_embeddings. */
int lc_ckpt_read_config(const char *path, lc_model_config *cfg, int *tied);

/* ---- checkpoints of a training run ---- */
typedef struct {
    int64_t step;            /* optimizer steps done */
    int64_t data_position;   /* the loader's global sample position */
    int64_t optimizer_steps; /* AdamW's step count t (bias correction) */
    uint64_t seed;           /* init, data order */
    int64_t total_steps, warmup; /* the lr schedule */
    float lr, lr_min;
    float beta1, beta2, eps, weight_decay;
    int64_t seq_len;
    int dp, cp, tp;          /* the layout that wrote it */
    char layout[32];         /* the CP layout's name */
    char model_name[64];     /* the preset, or "custom" */
    /* The run's other settings that change the math or the data (format 2; a resume takes
     * them). has_run 0: a format-1 checkpoint that did not record them. */
    int has_run;
    char dtype[8];           /* compute dtype: f32, bf16 */
    char bf16_dot[8];        /* bf16: the kernels' inner product (fma, dpbf16); "": not recorded */
    int doc_mask, doc_sep;   /* packed-document masking and its separator token */
    int64_t window;          /* sliding attention window (0: none; absent in older files) */
    int ulysses;             /* hybrid CP: the Ulysses degree (0: not hybrid; absent in older files) */
    char cp_algo[16];        /* ring, allgather */
    char lowering[16];       /* as asked (auto, one_sided, ...), not as resolved */
    int accum;               /* micro-batches per DP rank and step */
    int64_t global_batch;    /* sequences per optimizer step: dp x accum */
    float clip;
    char train_path[1024], val_path[1024]; /* val_path "": none */
    int64_t train_tokens;
    uint64_t train_fingerprint; /* lc_tokfile_fingerprint: the data, wherever it lives now */
} lc_ckpt_state;

/* Who does what in a collective save (all PEs of the world call lc_ckpt_save):
 * writer: this PE writes the files (exactly one PE); gather: this PE's TP team includes the
 * writer, so it joins the per-tensor gathers (without TP every PE may say 0 but the writer). */
typedef struct {
    lc_team *world;
    int writer;
    int gather;
    int keep;    /* keep the newest `keep` complete checkpoints in dir; 0: all */
} lc_ckpt_save_opts;

/* Saves params, AdamW m and v and st as dir/step-NNNNNNNN (see the top). Collective over
 * so->world; every PE returns the same status (the writer's failure is reported on all). */
int lc_ckpt_save(lc_model *m, lc_adamw *opt, const lc_ckpt_state *st, const char *dir,
                 const lc_ckpt_save_opts *so);

/* The newest complete checkpoint under dir (step-N folders; .tmp leftovers ignored) into
 * path[cap], or dir itself when it is a checkpoint (holds model.safetensors). LC_ERR_ARG
 * with a message when there is none. */
int lc_ckpt_find_latest(const char *dir, char *path, size_t cap);
/* Removes step-*.tmp-PID folders under dir whose writer process is gone. */
void lc_ckpt_clean_tmp(const char *dir);
/* mkdir -p path: 0 when it is a folder afterwards, else -1 (errno says why when a mkdir
 * failed). The trainer makes its --out folder with it. */
int lc_ckpt_mkdirs(const char *path);

/* Loads checkpoint folder path into m (params) and, when opt is given, the AdamW moments
 * and step count from training_state.safetensors, and *st. Local (no communication):
 * every PE reads the files itself. The config must match m's on every shape field
 * (rope_theta too unless allow_rope_theta); nothing in m or opt changes unless everything
 * validated. */
int lc_ckpt_load(lc_model *m, lc_adamw *opt, const char *path, int allow_rope_theta, lc_ckpt_state *st);
/* Weights only from a Hugging Face folder (save_pretrained, safetensors): config.json and
 * model.safetensors or model.safetensors.index.json with shards; F32, BF16 or F16. A tied
 * model without lm_head.weight gets the embedding. Local; staged like lc_ckpt_load. */
int lc_ckpt_load_hf(lc_model *m, const char *path, int allow_rope_theta);

/* `longctx ckpt info DIR`: config, metadata and tensor tables to f. */
int lc_ckpt_print_info(const char *path, void *file /* FILE* */);
/* The run state of checkpoint folder path (its training_state.safetensors metadata) without
 * loading any tensor: what a resume is resolved against before any PE starts. */
int lc_ckpt_read_state(const char *path, lc_ckpt_state *st);

#ifdef __cplusplus
}
#endif
#endif
