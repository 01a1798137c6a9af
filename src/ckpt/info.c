/* `longctx ckpt info`: what a checkpoint (or a Hugging Face folder) holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt/internal.h"
#include "ckpt/json.h"

static void table(FILE *o, const char *path, const lc_st_file *f)
{
    fprintf(o, "%s: %d tensors\n", path, lc_st_n_tensors(f));
    for (int i = 0; i < lc_st_n_meta(f); i++) {
        const char *k, *v;
        lc_st_meta_at(f, i, &k, &v);
        fprintf(o, "  metadata %-18s %s\n", k, v);
    }
    unsigned long long total = 0;
    for (int i = 0; i < lc_st_n_tensors(f); i++) {
        const lc_st_tensor *t = lc_st_tensor_at(f, i);
        char sh[128] = "[";
        size_t l = 1;
        for (int k = 0; k < t->ndim && l < sizeof sh - 24; k++)
            l += (size_t)snprintf(sh + l, sizeof sh - l, "%s%lld", k ? ", " : "", (long long)t->shape[k]);
        snprintf(sh + l, sizeof sh - l, "]");
        fprintf(o, "  %-48s %-5s %-16s %12llu bytes\n", t->name, lc_st_dtype_name(t->dtype), sh,
                (unsigned long long)(t->end - t->begin));
        total += t->end - t->begin;
    }
    fprintf(o, "  total %llu bytes\n", total);
}

static int exists(const char *p)
{
    struct stat st;
    return !stat(p, &st);
}

int lc_ckpt_print_info(const char *dir, void *file)
{
    FILE *o = file;
    char path[4096], p[4200];
    int rc = lc_ckpt_find_latest(dir, path, sizeof path);
    if (rc) {
        /* a Hugging Face folder with shards only */
        snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
        if (!exists(p)) return rc;
        snprintf(path, sizeof path, "%s", dir);
    }
    fprintf(o, "checkpoint %s\n", path);
    lc_model_config c;
    int tied = 0;
    snprintf(p, sizeof p, "%s/config.json", path);
    if ((rc = lc_ckpt_read_config(p, &c, &tied))) return rc;
    fprintf(o, "config: %d layers, hidden %d, heads %d (kv %d, head_dim %d), ffn %d, vocab %d, rope_theta %g, "
               "rms_norm_eps %g, max_position_embeddings %lld%s\n",
            c.n_layers, c.dim, c.n_heads, c.n_kv_heads, c.dim / c.n_heads, c.ffn_dim, c.vocab, (double)c.rope_theta,
            (double)c.norm_eps, (long long)c.max_seq, tied ? ", tied embeddings" : "");
    const char *files[2] = {"model.safetensors", "training_state.safetensors"};
    int shown = 0;
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/%s", path, files[k]);
        if (!exists(p)) continue;
        lc_st_file *f;
        if ((rc = lc_st_open(p, &f))) return rc;
        if (k == 1) {
            const char *s = lc_st_meta(f, "step"), *d = lc_st_meta(f, "data_position");
            fprintf(o, "step %s, data position %s\n", s ? s : "?", d ? d : "?");
        }
        table(o, p, f);
        lc_st_close(f);
        shown++;
    }
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", path);
    if (!shown && exists(p)) {
        size_t len;
        char *buf = lc_ckpt__read_file(p, 64 << 20, &len), err[300];
        if (!buf) return LC_ERR_ARG;
        lc_jdoc *d = lc_json_parse(buf, len, err, sizeof err);
        free(buf);
        if (!d) return lc_ckpt__fail(LC_ERR_ARG, "%s: %s", p, err);
        const lc_jval *wm = lc_json_get(lc_json_root(d), "weight_map");
        rc = LC_OK;
        for (int i = 0; wm && wm->type == LC_J_OBJ && i < wm->n && !rc; i++) {
            const lc_jval *v = wm->kids[i];
            int seen = 0;
            for (int j = 0; j < i; j++) seen |= v->type == LC_J_STR && wm->kids[j]->type == LC_J_STR && !strcmp(wm->kids[j]->text, v->text);
            if (seen || v->type != LC_J_STR || strchr(v->text, '/')) continue;
            char sp[4400];
            snprintf(sp, sizeof sp, "%s/%s", path, v->text);
            lc_st_file *f;
            if ((rc = lc_st_open(sp, &f))) break;
            table(o, sp, f);
            lc_st_close(f);
        }
        lc_json_free(d);
        if (rc) return rc;
    }
    return LC_OK;
}
