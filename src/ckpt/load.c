/* Loading: our checkpoints (weights + training state) and Hugging Face folders (weights, one
 * file or shards with an index). Everything is read and checked into staging buffers laid
 * out like the model's flat parameters; only when all of it validated is it copied into the
 * model and the optimizer. Local: each PE reads the files itself. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt/internal.h"
#include "ckpt/json.h"

/* Where the tensors come from: one file, or shards named by an index's weight_map. */
typedef struct {
    const char *what;    /* for messages */
    lc_st_file **files;
    char **fnames;
    int nfiles;
    lc_jdoc *index;
    const lc_jval *wmap; /* NULL: single file */
} source;

static void source_close(source *s)
{
    for (int i = 0; i < s->nfiles; i++) {
        lc_st_close(s->files[i]);
        free(s->fnames[i]);
    }
    free(s->files);
    free(s->fnames);
    lc_json_free(s->index);
    memset(s, 0, sizeof *s);
}

static int file_exists(const char *p)
{
    struct stat st;
    return !stat(p, &st) && S_ISREG(st.st_mode);
}

static int source_open_single(source *s, const char *path)
{
    memset(s, 0, sizeof *s);
    s->what = path;
    s->files = calloc(1, sizeof *s->files);
    s->fnames = calloc(1, sizeof *s->fnames);
    if (!s->files || !s->fnames) return lc_ckpt__fail(LC_ERR_SYS, "out of memory");
    int rc = lc_st_open(path, &s->files[0]);
    if (rc) return rc;
    s->fnames[0] = strdup(path);
    s->nfiles = 1;
    return LC_OK;
}

/* dir/model.safetensors, or dir/model.safetensors.index.json and its shards. */
static int source_open_hf(source *s, const char *dir, char *idxpath, size_t cap)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    if (file_exists(p)) return source_open_single(s, p);
    memset(s, 0, sizeof *s);
    snprintf(idxpath, cap, "%s/model.safetensors.index.json", dir);
    if (!file_exists(idxpath))
        return lc_ckpt__fail(LC_ERR_ARG, "%s has neither model.safetensors nor model.safetensors.index.json", dir);
    s->what = idxpath;
    size_t len;
    char *buf = lc_ckpt__read_file(idxpath, 64 << 20, &len), err[300];
    if (!buf) return LC_ERR_ARG;
    s->index = lc_json_parse(buf, len, err, sizeof err);
    free(buf);
    if (!s->index) return lc_ckpt__fail(LC_ERR_ARG, "%s: %s", idxpath, err);
    const lc_jval *r = lc_json_root(s->index);
    s->wmap = lc_json_get(r, "weight_map");
    if (!s->wmap || s->wmap->type != LC_J_OBJ)
        return lc_ckpt__fail(LC_ERR_ARG, "%s: field \"weight_map\" is missing or not an object", idxpath);
    int n = s->wmap->n;
    s->files = calloc((size_t)n + 1, sizeof *s->files);
    s->fnames = calloc((size_t)n + 1, sizeof *s->fnames);
    if (!s->files || !s->fnames) return lc_ckpt__fail(LC_ERR_SYS, "out of memory");
    for (int i = 0; i < n; i++) {
        const lc_jval *v = s->wmap->kids[i];
        if (v->type != LC_J_STR || strlen(v->text) != v->len || !v->len || strchr(v->text, '/') ||
            !strcmp(v->text, "..") || !strcmp(v->text, "."))
            return lc_ckpt__fail(LC_ERR_ARG, "%s: weight_map[\"%.200s\"] is not a file name in the folder", idxpath,
                                 s->wmap->keys[i]);
        int j;
        for (j = 0; j < s->nfiles && strcmp(s->fnames[j], v->text); j++) {}
        if (j < s->nfiles) continue;
        if (!(s->fnames[j] = strdup(v->text))) return lc_ckpt__fail(LC_ERR_SYS, "out of memory");
        s->nfiles++;
        snprintf(p, sizeof p, "%s/%s", dir, v->text);
        int rc = lc_st_open(p, &s->files[j]);
        if (rc) return rc;
    }
    return LC_OK;
}

/* The file and index of tensor `name`: 0; 1 when absent; an error (with message) when the
 * index points to a shard without it. */
static int source_find(const source *s, const char *name, int *file, int *idx)
{
    if (!s->wmap) {
        *file = 0;
        *idx = lc_st_find(s->files[0], name);
        return *idx >= 0 ? LC_OK : 1;
    }
    const lc_jval *v = lc_json_get(s->wmap, name);
    if (!v) return 1;
    for (int j = 0; j < s->nfiles; j++)
        if (!strcmp(s->fnames[j], v->text)) {
            *file = j;
            *idx = lc_st_find(s->files[j], name);
            if (*idx < 0)
                return lc_ckpt__fail(LC_ERR_ARG, "tensor \"%s\": the index names shard %s, which does not hold it", name,
                                     v->text);
            return LC_OK;
        }
    return 1;
}

/* Is `name` prefix + a model tensor (or an ignorable leftover of older transformers)? */
static int known_name(const lc_model *m, const char *name, const char *const *prefixes, int np, int hf)
{
    for (int p = 0; p < np; p++) {
        size_t l = strlen(prefixes[p]);
        if (!strncmp(name, prefixes[p], l) && lc_model_find_tensor(m, name + l) >= 0) return 1;
    }
    if (hf) {
        size_t l = strlen(name), k = strlen("rotary_emb.inv_freq");
        if (l >= k && !strcmp(name + l - k, "rotary_emb.inv_freq")) return 1;
    }
    return 0;
}

/* Every tensor stored must be one we load (no unknown extras), and a shard's tensors must be
 * where the index says. */
static int check_extras(const source *s, const lc_model *m, const char *const *prefixes, int np, int hf)
{
    for (int j = 0; j < s->nfiles; j++)
        for (int i = 0; i < lc_st_n_tensors(s->files[j]); i++) {
            const char *nm = lc_st_tensor_at(s->files[j], i)->name;
            if (!known_name(m, nm, prefixes, np, hf))
                return lc_ckpt__fail(LC_ERR_ARG, "%s: unknown tensor \"%.200s\" (not a tensor of this model)",
                                     s->wmap ? s->fnames[j] : s->what, nm);
            if (s->wmap) {
                const lc_jval *v = lc_json_get(s->wmap, nm);
                if (!v || strcmp(v->text, s->fnames[j]))
                    return lc_ckpt__fail(LC_ERR_ARG, "%s: tensor \"%.200s\" is in shard %s but the index %s", s->what,
                                         nm, s->fnames[j], v ? "names another shard" : "does not list it");
            }
        }
    if (s->wmap)
        for (int i = 0; i < s->wmap->n; i++)
            if (!known_name(m, s->wmap->keys[i], prefixes, np, hf))
                return lc_ckpt__fail(LC_ERR_ARG, "%s: unknown tensor \"%.200s\" (not a tensor of this model)", s->what,
                                     s->wmap->keys[i]);
    return LC_OK;
}

/* Every model tensor `prefix + name` from s into the staging flat buffer dst (laid out like
 * the parameters). tied: lm_head.weight may be absent and is then the embedding. */
static int load_flat(const source *s, const lc_model *m, const char *prefix, int f32_only, int tied, float *full,
                     float *dst)
{
    for (int i = 0; i < lc_model_n_tensors(m); i++) {
        const char *nm = lc_model_tensor_at(m, i)->name;
        char name[512];
        snprintf(name, sizeof name, "%s%s", prefix, nm);
        int fi, ti, rc = source_find(s, name, &fi, &ti);
        if (rc == 1 && tied && !strcmp(nm, "lm_head.weight"))
            rc = source_find(s, "model.embed_tokens.weight", &fi, &ti);
        if (rc == 1) return lc_ckpt__fail(LC_ERR_ARG, "%s: tensor \"%s\" is missing", s->what, name);
        if (rc) return rc;
        const lc_st_tensor *t = lc_st_tensor_at(s->files[fi], ti);
        const char *fn = s->wmap ? s->fnames[fi] : s->what;
        if (f32_only ? t->dtype != LC_ST_F32
                     : t->dtype != LC_ST_F32 && t->dtype != LC_ST_BF16 && t->dtype != LC_ST_F16)
            return lc_ckpt__fail(LC_ERR_ARG, "%s: tensor \"%s\" has dtype %s, expected %s", fn, name,
                                 lc_st_dtype_name(t->dtype), f32_only ? "F32" : "F32, BF16 or F16");
        int64_t sh[2];
        size_t n = lc_model_tensor_full_shape(m, i, sh);
        int nd = sh[1] ? 2 : 1;
        if (t->ndim != nd || t->shape[0] != sh[0] || (nd == 2 && t->shape[1] != sh[1])) {
            char got[128] = "", want[64];
            for (int k = 0, o = 0; k < t->ndim && o < (int)sizeof got - 24; k++)
                o += snprintf(got + o, sizeof got - (size_t)o, "%s%lld", k ? ", " : "", (long long)t->shape[k]);
            if (nd == 2) snprintf(want, sizeof want, "%lld, %lld", (long long)sh[0], (long long)sh[1]);
            else snprintf(want, sizeof want, "%lld", (long long)sh[0]);
            return lc_ckpt__fail(LC_ERR_ARG, "%s: tensor \"%s\" has shape [%s], the model needs [%s]", fn, name, got,
                                 want);
        }
        if ((rc = lc_st_read_f32(s->files[fi], ti, full, n))) return rc;
        if ((rc = lc_model_scatter_tensor(m, i, full, dst)))
            return lc_ckpt__fail(rc, "scattering %s: %s", nm, lc_model_last_error(m));
    }
    return LC_OK;
}

static int check_config(const char *path, const lc_model_config *got, const lc_model_config *want, int allow_theta)
{
#define CMP(field, key)                                                                                            \
    if (got->field != want->field)                                                                                 \
        return lc_ckpt__fail(LC_ERR_ARG, "%s: %s = %lld but this run's model has %lld (config mismatch with the " \
                             "flags: give the same --model/shape flags)", path, key, (long long)got->field,        \
                             (long long)want->field);
    CMP(n_layers, "num_hidden_layers")
    CMP(dim, "hidden_size")
    CMP(n_heads, "num_attention_heads")
    CMP(n_kv_heads, "num_key_value_heads")
    CMP(ffn_dim, "intermediate_size")
    CMP(vocab, "vocab_size")
#undef CMP
    if (got->norm_eps != want->norm_eps)
        return lc_ckpt__fail(LC_ERR_ARG, "%s: rms_norm_eps = %g but this run's model has %g", path,
                             (double)got->norm_eps, (double)want->norm_eps);
    if (!allow_theta && got->rope_theta != want->rope_theta)
        return lc_ckpt__fail(LC_ERR_ARG, "%s: rope_theta = %g but this run's model has %g (pass --rope-theta to "
                             "override the stored value)", path, (double)got->rope_theta, (double)want->rope_theta);
    return LC_OK;
}

static int meta_i64(const lc_st_file *f, const char *what, const char *key, int64_t lo, int64_t *out)
{
    const char *v = lc_st_meta(f, key);
    char *e;
    if (!v) return lc_ckpt__fail(LC_ERR_ARG, "%s: metadata field \"%s\" is missing", what, key);
    long long x = strtoll(v, &e, 10);
    if (!*v || *e || x < lo) return lc_ckpt__fail(LC_ERR_ARG, "%s: metadata field \"%s\" = \"%.40s\" is not an integer >= %lld", what, key, v, (long long)lo);
    *out = x;
    return LC_OK;
}

static int meta_f(const lc_st_file *f, const char *what, const char *key, float *out)
{
    const char *v = lc_st_meta(f, key);
    char *e;
    if (!v) return lc_ckpt__fail(LC_ERR_ARG, "%s: metadata field \"%s\" is missing", what, key);
    float x = strtof(v, &e);
    if (!*v || *e || !isfinite(x)) return lc_ckpt__fail(LC_ERR_ARG, "%s: metadata field \"%s\" = \"%.40s\" is not a number", what, key, v);
    *out = x;
    return LC_OK;
}

/* A string field into out[cap]: missing or too long is malformed. */
static int meta_s(const lc_st_file *f, const char *what, const char *key, int empty_ok, char *out, size_t cap)
{
    const char *v = lc_st_meta(f, key);
    if (!v) return lc_ckpt__fail(LC_ERR_ARG, "%s: metadata field \"%s\" is missing", what, key);
    if ((!empty_ok && !*v) || strlen(v) >= cap)
        return lc_ckpt__fail(LC_ERR_ARG, "%s: metadata field \"%s\" = \"%.40s\" is malformed", what, key, v);
    snprintf(out, cap, "%s", v);
    return LC_OK;
}

/* The run settings of format 2 (a format-1 checkpoint has none: has_run stays 0). */
static int read_run(const lc_st_file *f, const char *what, lc_ckpt_state *st)
{
    const char *ver = lc_st_meta(f, "longctx_version");
    if (ver && !strcmp(ver, "1")) return LC_OK;
    if (!ver || strcmp(ver, "2"))
        return lc_ckpt__fail(LC_ERR_ARG, "%s: metadata field \"longctx_version\" is %s (this build reads 1 and 2)", what,
                             ver ? ver : "missing");
    int64_t mask, sep, accum;
    char fp[32], *e;
    int rc;
    if ((rc = meta_s(f, what, "dtype", 0, st->dtype, sizeof st->dtype)) ||
        (rc = meta_i64(f, what, "doc_mask", 0, &mask)) || (rc = meta_i64(f, what, "doc_sep", 0, &sep)) ||
        (rc = meta_s(f, what, "cp_algo", 0, st->cp_algo, sizeof st->cp_algo)) ||
        (rc = meta_s(f, what, "lowering", 0, st->lowering, sizeof st->lowering)) ||
        (rc = meta_i64(f, what, "accum", 1, &accum)) || (rc = meta_i64(f, what, "global_batch", 1, &st->global_batch)) ||
        (rc = meta_f(f, what, "clip", &st->clip)) ||
        (rc = meta_s(f, what, "train_data", 0, st->train_path, sizeof st->train_path)) ||
        (rc = meta_i64(f, what, "train_tokens", 1, &st->train_tokens)) ||
        (rc = meta_s(f, what, "train_fingerprint", 0, fp, sizeof fp)) ||
        (rc = meta_s(f, what, "val_data", 1, st->val_path, sizeof st->val_path)))
        return rc;
    const char *dot = lc_st_meta(f, "attn_bf16_dot"); /* optional: the first format-2 files lack it */
    snprintf(st->bf16_dot, sizeof st->bf16_dot, "%s", dot && strlen(dot) < sizeof st->bf16_dot ? dot : "");
    /* optional too (later additions): absent means none */
    int64_t window = 0, uly = 0;
    if ((lc_st_meta(f, "attn_window") && (rc = meta_i64(f, what, "attn_window", 0, &window))) ||
        (lc_st_meta(f, "cp_ulysses") && (rc = meta_i64(f, what, "cp_ulysses", 0, &uly))))
        return rc;
    if (window > INT32_MAX || uly > 1 << 20)
        return lc_ckpt__fail(LC_ERR_ARG, "%s: metadata fields attn_window %lld, cp_ulysses %lld: one is out of range",
                             what, (long long)window, (long long)uly);
    st->window = window;
    st->ulysses = (int)uly;
    st->train_fingerprint = strtoull(fp, &e, 16);
    if (mask > 1 || sep > INT32_MAX || accum > INT32_MAX || *e || strlen(fp) != 16)
        return lc_ckpt__fail(LC_ERR_ARG, "%s: metadata fields doc_mask %lld, doc_sep %lld, accum %lld, "
                             "train_fingerprint \"%s\": one is out of range", what, (long long)mask, (long long)sep,
                             (long long)accum, fp);
    st->doc_mask = (int)mask;
    st->doc_sep = (int)sep;
    st->accum = (int)accum;
    st->has_run = 1;
    return LC_OK;
}

static int read_state(const lc_st_file *f, const char *what, lc_ckpt_state *st)
{
    memset(st, 0, sizeof *st);
    const char *fmt = lc_st_meta(f, "format");
    if (!fmt || strcmp(fmt, "longctx-train-state"))
        return lc_ckpt__fail(LC_ERR_ARG, "%s: metadata field \"format\" is %s, expected \"longctx-train-state\"", what,
                             fmt ? fmt : "missing");
    int64_t seed, x;
    int rc;
    if ((rc = meta_i64(f, what, "step", 0, &st->step)) || (rc = meta_i64(f, what, "data_position", 0, &st->data_position)) ||
        (rc = meta_i64(f, what, "optimizer_steps", 0, &st->optimizer_steps)) || (rc = meta_i64(f, what, "seed", 0, &seed)) ||
        (rc = meta_i64(f, what, "total_steps", 0, &st->total_steps)) || (rc = meta_i64(f, what, "warmup", 0, &st->warmup)) ||
        (rc = meta_i64(f, what, "seq_len", 1, &st->seq_len)) || (rc = meta_f(f, what, "lr", &st->lr)) ||
        (rc = meta_f(f, what, "lr_min", &st->lr_min)) || (rc = meta_f(f, what, "beta1", &st->beta1)) ||
        (rc = meta_f(f, what, "beta2", &st->beta2)) || (rc = meta_f(f, what, "eps", &st->eps)) ||
        (rc = meta_f(f, what, "weight_decay", &st->weight_decay)))
        return rc;
    (void)x;
    st->seed = (uint64_t)seed;
    const char *lay = lc_st_meta(f, "layout"), *mod = lc_st_meta(f, "model");
    if (lay && sscanf(lay, "dp=%d cp=%d tp=%d %31s", &st->dp, &st->cp, &st->tp, st->layout) != 4)
        return lc_ckpt__fail(LC_ERR_ARG, "%s: metadata field \"layout\" = \"%.60s\" is malformed", what, lay);
    snprintf(st->model_name, sizeof st->model_name, "%s", mod ? mod : "custom");
    return read_run(f, what, st);
}

int lc_ckpt_read_state(const char *path, lc_ckpt_state *st)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/training_state.safetensors", path);
    lc_st_file *f;
    int rc = lc_st_open(p, &f);
    if (rc) return rc;
    rc = read_state(f, p, st);
    lc_st_close(f);
    return rc;
}

static int load_common(lc_model *m, lc_adamw *opt, const char *path, int allow_theta, int hf, lc_ckpt_state *st)
{
    char p[4096], idx[4096];
    lc_model_config cfg;
    int tied = 0, rc;
    snprintf(p, sizeof p, "%s/config.json", path);
    if ((rc = lc_ckpt_read_config(p, &cfg, &tied))) return rc;
    if ((rc = check_config(p, &cfg, lc_model_get_config(m), allow_theta))) return rc;
    if (opt && lc_adamw_n_params(opt) != lc_model_n_params(m))
        return lc_ckpt__fail(LC_ERR_ARG, "the optimizer has %zu parameters, the model %zu", lc_adamw_n_params(opt),
                             lc_model_n_params(m));
    const size_t np = lc_model_n_params(m);
    size_t maxn = 1;
    for (int i = 0; i < lc_model_n_tensors(m); i++) {
        int64_t sh[2];
        size_t k = lc_model_tensor_full_shape(m, i, sh);
        if (k > maxn) maxn = k;
    }
    source ms = {0}, ts = {0};
    float *full = malloc(maxn * sizeof *full);
    /* staging starts as a copy: under TP a PE's flat buffer may hold more than the tensors */
    float *sp = malloc(np * sizeof *sp), *sm = NULL, *sv = NULL;
    if (opt) {
        sm = malloc(np * sizeof *sm);
        sv = malloc(np * sizeof *sv);
    }
    lc_ckpt_state tmp;
    if (!full || !sp || (opt && (!sm || !sv))) {
        rc = lc_ckpt__fail(LC_ERR_SYS, "out of memory for the staging buffers (%zu parameters)", np);
        goto out;
    }
    if ((rc = lc_model_read(m, lc_model_params(m), sp))) { /* a model on a device: a transfer */
        lc_ckpt__fail(rc, "reading the weights: %s", lc_model_last_error(m));
        goto out;
    }
    static const char *const model_pre[1] = {""};
    rc = hf ? source_open_hf(&ms, path, idx, sizeof idx) : (snprintf(p, sizeof p, "%s/model.safetensors", path),
                                                          source_open_single(&ms, p));
    if (rc || (rc = check_extras(&ms, m, model_pre, 1, hf)) ||
        (rc = load_flat(&ms, m, "", !hf, hf && tied, full, sp)))
        goto out;
    if (opt) {
        static const char *const pre[2] = {"exp_avg.", "exp_avg_sq."};
        snprintf(p, sizeof p, "%s/training_state.safetensors", path);
        memcpy(sm, lc_adamw_m(opt), np * sizeof *sm);
        memcpy(sv, lc_adamw_v(opt), np * sizeof *sv);
        if ((rc = source_open_single(&ts, p)) || (rc = read_state(ts.files[0], p, &tmp)) ||
            (rc = check_extras(&ts, m, pre, 2, 0)) || (rc = load_flat(&ts, m, pre[0], 1, 0, full, sm)) ||
            (rc = load_flat(&ts, m, pre[1], 1, 0, full, sv)))
            goto out;
    }
    /* Everything validated: commit. */
    if ((rc = lc_model_write(m, lc_model_params(m), sp))) {
        lc_ckpt__fail(rc, "writing the weights: %s", lc_model_last_error(m));
        goto out;
    }
    if (opt) {
        memcpy(lc_adamw_m(opt), sm, np * sizeof *sm);
        memcpy(lc_adamw_v(opt), sv, np * sizeof *sv);
        lc_adamw_set_steps(opt, tmp.optimizer_steps);
        if (st) *st = tmp;
    }
    rc = LC_OK;
out:
    source_close(&ms);
    source_close(&ts);
    free(full);
    free(sp);
    free(sm);
    free(sv);
    return rc;
}

int lc_ckpt_load(lc_model *m, lc_adamw *opt, const char *path, int allow_rope_theta, lc_ckpt_state *st)
{
    return load_common(m, opt, path, allow_rope_theta, 0, st);
}

int lc_ckpt_load_hf(lc_model *m, const char *path, int allow_rope_theta)
{
    return load_common(m, NULL, path, allow_rope_theta, 1, NULL);
}
