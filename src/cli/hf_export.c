/* Writes config.json and model.safetensors (see hf_export.h). safetensors: an 8-byte
 * little-endian header length, a JSON header {name: {dtype, shape, data_offsets}} padded with
 * spaces to 8 bytes, then the tensors' bytes in header order. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/hf_export.h"

static int mkdir_p(const char *dir)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

static int write_config(const lc_model_config *c, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f,
            "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n"
            "  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n  \"num_attention_heads\": %d,\n"
            "  \"num_key_value_heads\": %d,\n  \"num_hidden_layers\": %d,\n  \"head_dim\": %d,\n"
            "  \"rms_norm_eps\": %.9g,\n  \"rope_theta\": %.9g,\n  \"vocab_size\": %d,\n"
            "  \"max_position_embeddings\": %lld,\n  \"hidden_act\": \"silu\",\n"
            "  \"attention_bias\": false,\n  \"mlp_bias\": false,\n  \"tie_word_embeddings\": false,\n"
            "  \"torch_dtype\": \"float32\"\n}\n",
            c->dim, c->ffn_dim, c->n_heads, c->n_kv_heads, c->n_layers, c->dim / c->n_heads,
            (double)c->norm_eps, (double)c->rope_theta, c->vocab, (long long)c->max_seq);
    return fclose(f);
}

int lc_hf_export(lc_model *m, const char *dir, int write)
{
    int nt = lc_model_n_tensors(m), rc = -1;
    size_t maxn = 0;
    for (int i = 0; i < nt; i++) {
        int64_t sh[2];
        size_t n = lc_model_tensor_full_shape(m, i, sh);
        if (n > maxn) maxn = n;
    }
    float *buf = malloc(maxn * sizeof *buf);
    size_t hcap = 256 + (size_t)nt * 200;
    char *hdr = malloc(hcap);
    FILE *f = NULL;
    char path[4200];
    if (!buf || !hdr) {
        fprintf(stderr, "hf export: out of memory\n");
        goto out;
    }
    size_t hl = (size_t)snprintf(hdr, hcap, "{\"__metadata__\":{\"format\":\"pt\"}");
    size_t off = 0;
    for (int i = 0; i < nt; i++) {
        int64_t sh[2];
        size_t n = lc_model_tensor_full_shape(m, i, sh);
        char shape[64];
        if (sh[1]) snprintf(shape, sizeof shape, "[%lld,%lld]", (long long)sh[0], (long long)sh[1]);
        else snprintf(shape, sizeof shape, "[%lld]", (long long)sh[0]);
        hl += (size_t)snprintf(hdr + hl, hcap - hl, ",\"%s\":{\"dtype\":\"F32\",\"shape\":%s,\"data_offsets\":[%zu,%zu]}",
                               lc_model_tensor_at(m, i)->name, shape, off * 4, (off + n) * 4);
        off += n;
    }
    hl += (size_t)snprintf(hdr + hl, hcap - hl, "}");
    while (hl % 8) hdr[hl++] = ' ';
    if (hl >= hcap) {
        fprintf(stderr, "hf export: header overflow\n");
        goto out;
    }
    if (write) {
        snprintf(path, sizeof path, "%s/config.json", dir);
        if (mkdir_p(dir) || write_config(lc_model_get_config(m), path)) {
            fprintf(stderr, "hf export: cannot write %s: %s\n", path, strerror(errno));
            goto out;
        }
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        f = fopen(path, "wb");
        unsigned char len8[8];
        for (int k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)hl >> (8 * k));
        if (!f || fwrite(len8, 1, 8, f) != 8 || fwrite(hdr, 1, hl, f) != hl) {
            fprintf(stderr, "hf export: cannot write %s: %s\n", path, strerror(errno));
            goto out;
        }
    }
    const float *params = lc_model_params(m);
    for (int i = 0; i < nt; i++) {
        int64_t sh[2];
        size_t n = lc_model_tensor_full_shape(m, i, sh);
        if (lc_model_gather_tensor(m, i, params, buf)) {
            fprintf(stderr, "hf export: gather %s: %s\n", lc_model_tensor_at(m, i)->name, lc_model_last_error(m));
            goto out;
        }
        /* fp32 little-endian: this host's order (x86-64, aarch64) */
        if (write && fwrite(buf, sizeof *buf, n, f) != n) {
            fprintf(stderr, "hf export: cannot write %s: %s\n", path, strerror(errno));
            goto out;
        }
    }
    rc = 0;
out:
    if (f && fclose(f) && !rc) {
        fprintf(stderr, "hf export: cannot write %s: %s\n", path, strerror(errno));
        rc = -1;
    }
    free(buf);
    free(hdr);
    return rc;
}
