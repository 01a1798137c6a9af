/* config.json: the LlamaConfig fields transformers reads, written and read strictly. */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/internal.h"
#include "ckpt/json.h"

/* The shortest decimal that reads back as the same float (1e-05, not 9.99999975e-06). */
static void fmt_float(char *buf, size_t n, float x)
{
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, n, "%.*g", prec, (double)x);
        if (strtof(buf, NULL) == x) break;
    }
    /* keep it a JSON float for transformers (1e+06 is fine, 500000 would read as an int) */
    if (!strpbrk(buf, ".eE")) strncat(buf, ".0", n - strlen(buf) - 1);
}

int lc_ckpt_write_config(const char *path, const lc_model_config *c)
{
    char theta[48], eps[48], js[2048];
    fmt_float(theta, sizeof theta, c->rope_theta);
    fmt_float(eps, sizeof eps, c->norm_eps);
    int len = snprintf(js, sizeof js,
                       "{\n"
                       "  \"architectures\": [\"LlamaForCausalLM\"],\n"
                       "  \"model_type\": \"llama\",\n"
                       "  \"hidden_size\": %d,\n"
                       "  \"intermediate_size\": %d,\n"
                       "  \"num_attention_heads\": %d,\n"
                       "  \"num_key_value_heads\": %d,\n"
                       "  \"num_hidden_layers\": %d,\n"
                       "  \"head_dim\": %d,\n"
                       "  \"rms_norm_eps\": %s,\n"
                       "  \"rope_theta\": %s,\n"
                       "  \"rope_scaling\": null,\n"
                       "  \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": %s},\n"
                       "  \"vocab_size\": %d,\n"
                       "  \"max_position_embeddings\": %lld,\n"
                       "  \"tie_word_embeddings\": false,\n"
                       "  \"torch_dtype\": \"float32\",\n"
                       "  \"dtype\": \"float32\",\n"
                       "  \"hidden_act\": \"silu\",\n"
                       "  \"attention_bias\": false,\n"
                       "  \"attention_dropout\": 0.0,\n"
                       "  \"mlp_bias\": false,\n"
                       "  \"initializer_range\": 0.02,\n"
                       "  \"pretraining_tp\": 1,\n"
                       "  \"use_cache\": true\n"
                       "}\n",
                       c->dim, c->ffn_dim, c->n_heads, c->n_kv_heads, c->n_layers, c->dim / c->n_heads, eps, theta, theta,
                       c->vocab, (long long)c->max_seq);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return lc_ckpt__fail(LC_ERR_SYS, "cannot create %s: %m", path);
    int bad = lc_ckpt__write_all(fd, js, (size_t)len) || fsync(fd);
    bad |= close(fd) != 0;
    if (bad) return lc_ckpt__fail(LC_ERR_SYS, "cannot write %s: %m", path);
    return LC_OK;
}

static int get_int(const char *path, const lc_jval *root, const char *key, int required, int64_t dflt, int64_t lo,
                   int64_t hi, int64_t *out)
{
    const lc_jval *v = lc_json_get(root, key);
    if (!v || v->type == LC_J_NULL) {
        if (required) return lc_ckpt__fail(LC_ERR_ARG, "%s: field \"%s\" is missing", path, key);
        *out = dflt;
        return LC_OK;
    }
    if (lc_json_int(v, lo, hi, out))
        return lc_ckpt__fail(LC_ERR_ARG, "%s: field \"%s\" must be an integer in [%lld, %lld]", path, key, (long long)lo,
                             (long long)hi);
    return LC_OK;
}

static int get_float(const char *path, const lc_jval *root, const char *key, double dflt, float *out)
{
    const lc_jval *v = lc_json_get(root, key);
    if (!v || v->type == LC_J_NULL) {
        *out = (float)dflt;
        return LC_OK;
    }
    if (v->type != LC_J_NUM || !isfinite(v->num) || !(v->num > 0) || !isfinite((float)v->num))
        return lc_ckpt__fail(LC_ERR_ARG, "%s: field \"%s\" must be a finite number > 0", path, key);
    *out = (float)v->num;
    return LC_OK;
}

/* A field longctx cannot honour unless it has this value (or is absent). */
static int want_bool(const char *path, const lc_jval *root, const char *key, int want)
{
    const lc_jval *v = lc_json_get(root, key);
    if (!v || v->type == LC_J_NULL) return LC_OK;
    if (v->type != LC_J_BOOL) return lc_ckpt__fail(LC_ERR_ARG, "%s: field \"%s\" is not a boolean", path, key);
    if (v->boolean != want)
        return lc_ckpt__fail(LC_ERR_ARG, "%s: field \"%s\" is %s; longctx's Llama supports only %s", path, key,
                             v->boolean ? "true" : "false", want ? "true" : "false");
    return LC_OK;
}

static int want_str(const char *path, const lc_jval *root, const char *key, const char *want)
{
    const lc_jval *v = lc_json_get(root, key);
    if (!v || v->type == LC_J_NULL) return LC_OK;
    if (v->type != LC_J_STR || strcmp(v->text, want))
        return lc_ckpt__fail(LC_ERR_ARG, "%s: field \"%s\" is %s%.40s%s; longctx supports only \"%s\"", path, key,
                             v->type == LC_J_STR ? "\"" : "", v->type == LC_J_STR ? v->text : "not a string",
                             v->type == LC_J_STR ? "\"" : "", want);
    return LC_OK;
}

int lc_ckpt_read_config(const char *path, lc_model_config *cfg, int *tied)
{
    size_t len;
    char *buf = lc_ckpt__read_file(path, 1 << 20, &len);
    if (!buf) return LC_ERR_ARG;
    char err[300];
    lc_jdoc *d = lc_json_parse(buf, len, err, sizeof err);
    int rc;
    if (!d) {
        rc = lc_ckpt__fail(LC_ERR_ARG, "%s: %s", path, err);
        free(buf);
        return rc;
    }
    const lc_jval *r = lc_json_root(d);
    lc_model_config c = {0};
    int64_t L, D, H, KV, F, V, HD, P;
    if (r->type != LC_J_OBJ) {
        rc = lc_ckpt__fail(LC_ERR_ARG, "%s: not a JSON object", path);
        goto out;
    }
    if ((rc = want_str(path, r, "model_type", "llama")) || (rc = want_str(path, r, "hidden_act", "silu")) ||
        (rc = want_bool(path, r, "attention_bias", 0)) || (rc = want_bool(path, r, "mlp_bias", 0)))
        goto out;
    const lc_jval *rs = lc_json_get(r, "rope_scaling");
    if (rs && rs->type != LC_J_NULL) {
        rc = lc_ckpt__fail(LC_ERR_ARG, "%s: field \"rope_scaling\" is set; longctx has plain RoPE only (use "
                           "--rope-theta to extend the context)", path);
        goto out;
    }
    const lc_jval *arch = lc_json_get(r, "architectures");
    if (arch && arch->type != LC_J_NULL) {
        int ok = arch->type == LC_J_ARR && arch->n >= 1;
        for (int i = 0; ok && i < arch->n; i++)
            ok = arch->kids[i]->type == LC_J_STR && !strcmp(arch->kids[i]->text, "LlamaForCausalLM");
        if (!ok) {
            rc = lc_ckpt__fail(LC_ERR_ARG, "%s: field \"architectures\" must be [\"LlamaForCausalLM\"]", path);
            goto out;
        }
    }
    const int64_t BIG = 1 << 30;
    if ((rc = get_int(path, r, "num_hidden_layers", 1, 0, 1, BIG, &L)) ||
        (rc = get_int(path, r, "hidden_size", 1, 0, 1, BIG, &D)) ||
        (rc = get_int(path, r, "num_attention_heads", 1, 0, 1, BIG, &H)) ||
        (rc = get_int(path, r, "num_key_value_heads", 0, H, 1, BIG, &KV)) ||
        (rc = get_int(path, r, "intermediate_size", 1, 0, 1, BIG, &F)) ||
        (rc = get_int(path, r, "vocab_size", 1, 0, 2, BIG, &V)) ||
        (rc = get_int(path, r, "head_dim", 0, D / H, 1, BIG, &HD)) ||
        (rc = get_int(path, r, "max_position_embeddings", 0, 2048, 1, INT64_MAX, &P)))
        goto out;
    if (HD * H != D) {
        rc = lc_ckpt__fail(LC_ERR_ARG, "%s: field \"head_dim\" = %lld but hidden_size / num_attention_heads = %lld / "
                           "%lld; longctx needs head_dim * heads = hidden_size", path, (long long)HD, (long long)D,
                           (long long)H);
        goto out;
    }
    c.n_layers = (int)L, c.dim = (int)D, c.n_heads = (int)H, c.n_kv_heads = (int)KV, c.ffn_dim = (int)F;
    c.vocab = (int)V, c.max_seq = P;
    if ((rc = get_float(path, r, "rms_norm_eps", 1e-6, &c.norm_eps)) ||
        (rc = get_float(path, r, "rope_theta", 10000.0, &c.rope_theta)))
        goto out;
    /* transformers 5 keeps RoPE in rope_parameters (4.x: rope_theta, rope_scaling at the top) */
    const lc_jval *rp = lc_json_get(r, "rope_parameters");
    if (rp && rp->type != LC_J_NULL) {
        if (rp->type != LC_J_OBJ) {
            rc = lc_ckpt__fail(LC_ERR_ARG, "%s: field \"rope_parameters\" is not an object", path);
            goto out;
        }
        for (int i = 0; i < rp->n; i++)
            if (strcmp(rp->keys[i], "rope_type") && strcmp(rp->keys[i], "rope_theta")) {
                rc = lc_ckpt__fail(LC_ERR_ARG, "%s: field \"rope_parameters.%.40s\" is set; longctx has plain RoPE "
                                   "only (use --rope-theta to extend the context)", path, rp->keys[i]);
                goto out;
            }
        if ((rc = want_str(path, rp, "rope_type", "default")) || (rc = get_float(path, rp, "rope_theta", c.rope_theta, &c.rope_theta)))
            goto out;
    }
    const lc_jval *tw = lc_json_get(r, "tie_word_embeddings");
    if (tw && tw->type != LC_J_NULL && tw->type != LC_J_BOOL) {
        rc = lc_ckpt__fail(LC_ERR_ARG, "%s: field \"tie_word_embeddings\" is not a boolean", path);
        goto out;
    }
    if (tied) *tied = tw && tw->type == LC_J_BOOL && tw->boolean;
    char e2[256];
    if (lc_model_config_check(&c, e2, sizeof e2)) {
        rc = lc_ckpt__fail(LC_ERR_ARG, "%s: %s", path, e2);
        goto out;
    }
    *cfg = c;
    rc = LC_OK;
out:
    lc_json_free(d);
    free(buf);
    return rc;
}
