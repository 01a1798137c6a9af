/* longctx ckpt: inspect and check checkpoints.
 *   info DIR                     config, step, metadata and the tensor tables
 *   verify DIR                   loads the newest complete checkpoint into a model + AdamW
 *                                exactly as --resume would (every check), on one PE
 *   loss DIR --tokens a,b,c,...  the model's mean next-token loss on those tokens (fp32), to
 *                                compare with another implementation loading the same folder */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "longctx/ckpt.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: longctx ckpt info DIR | verify DIR | loss DIR --tokens T0,T1,... [--hf]\n"
               "DIR: a checkpoint (step-N folder or a Hugging Face folder) or a --save-dir (its newest\n"
               "complete checkpoint). loss: --hf reads a save_pretrained folder (no training state).\n");
}

static int parse_tokens(const char *s, int32_t **out, int64_t *n)
{
    int64_t cap = 1;
    for (const char *c = s; *c; c++) cap += *c == ',';
    int32_t *t = malloc((size_t)cap * sizeof *t);
    if (!t) return -1;
    int64_t k = 0;
    const char *c = s;
    while (*c) {
        char *e;
        long v = strtol(c, &e, 10);
        if (e == c || v < 0 || v > 0x7fffffff || (*e && *e != ',')) {
            free(t);
            return -1;
        }
        t[k++] = (int32_t)v;
        c = *e ? e + 1 : e;
    }
    *out = t;
    *n = k;
    return k > 1 ? 0 : -1;
}

/* A world of one PE and a model of cfg over seq tokens. */
static int with_model(const char *path, int64_t seq, int hf, const int32_t *tok, const int32_t *tgt, float *loss)
{
    lc_model_config cfg;
    char p[4200];
    snprintf(p, sizeof p, "%s/config.json", path);
    if (lc_ckpt_read_config(p, &cfg, NULL)) {
        fprintf(stderr, "longctx ckpt: %s\n", lc_ckpt_last_error());
        return 1;
    }
    if (seq > cfg.max_seq) cfg.max_seq = seq;
    lc_world *w;
    lc_world_opts wo = {0};
    if (lc_world_init(&wo, &w)) {
        fprintf(stderr, "longctx ckpt: cannot start a world of one PE\n");
        return 1;
    }
    lc_plan plan = {.dp = 1, .cp = 1, .tp = 1, .seq_len = seq, .layout = LC_CP_CONTIGUOUS, .algo = LC_CP_RING};
    lc_model_run run = {.cp_team = lc_team_world(w), .plan = &plan, .compute = LC_DT_F32, .threads = 1};
    lc_model *m = NULL;
    lc_adamw *opt = NULL;
    lc_adamw_config ac = {0.9f, 0.95f, 1e-8f, 0.1f};
    int rc = 1;
    if (lc_model_create(&cfg, &run, &m)) {
        fprintf(stderr, "longctx ckpt: %s\n", lc_model_last_error(NULL));
        goto out;
    }
    if (!hf && lc_adamw_create(lc_model_n_params(m), &ac, &opt)) {
        fprintf(stderr, "longctx ckpt: %s\n", lc_optim_last_error());
        goto out;
    }
    lc_ckpt_state st;
    if (hf ? lc_ckpt_load_hf(m, path, 0) : lc_ckpt_load(m, opt, path, 0, &st)) {
        fprintf(stderr, "longctx ckpt: %s\n", lc_ckpt_last_error());
        goto out;
    }
    if (tok) {
        if (lc_model_forward(m, tok, tgt, NULL, loss)) {
            fprintf(stderr, "longctx ckpt: forward: %s\n", lc_model_last_error(m));
            goto out;
        }
    } else {
        printf("ok: %s loads (step %lld, data position %lld, %zu parameters)\n", path, (long long)st.step,
               (long long)st.data_position, lc_model_n_params(m));
    }
    rc = 0;
out:
    lc_adamw_destroy(opt);
    if (m) lc_model_destroy(m);
    lc_world_finalize(w);
    return rc;
}

static int has(const char *dir, const char *name)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

/* A save_pretrained folder: a config and weights (one file or shards), but none of the
 * training state every checkpoint of ours carries. */
static int is_hf_folder(const char *dir)
{
    return has(dir, "config.json") && !has(dir, "training_state.safetensors") &&
           (has(dir, "model.safetensors") || has(dir, "model.safetensors.index.json"));
}

int lc_cmd_ckpt(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    if (argc < 3) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1], *dir = argv[2];
    if (!strcmp(cmd, "info")) {
        if (lc_ckpt_print_info(dir, stdout)) {
            fprintf(stderr, "longctx ckpt info: %s\n", lc_ckpt_last_error());
            return 1;
        }
        return 0;
    }
    int hf = 0;
    const char *toks = NULL;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--hf")) hf = 1;
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) toks = argv[++i];
        else {
            fprintf(stderr, "longctx ckpt: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    char path[4096];
    if (!hf && is_hf_folder(dir)) {
        /* its weights would load, then fail on a dtype or the missing optimizer state: say so first */
        fprintf(stderr, "longctx ckpt %s: %s is a Hugging Face folder (config.json and weights, no "
                        "training_state.safetensors): pass --hf to read it as one\n", cmd, dir);
        return 2;
    }
    if (hf) snprintf(path, sizeof path, "%s", dir);
    else if (lc_ckpt_find_latest(dir, path, sizeof path)) {
        fprintf(stderr, "longctx ckpt %s: %s\n", cmd, lc_ckpt_last_error());
        return 1;
    }
    if (!strcmp(cmd, "verify")) return with_model(path, 2, hf, NULL, NULL, NULL);
    if (!strcmp(cmd, "loss")) {
        int32_t *tok;
        int64_t n;
        if (!toks || parse_tokens(toks, &tok, &n)) {
            fprintf(stderr, "longctx ckpt loss: give --tokens as at least 2 comma-separated integers\n");
            return 2;
        }
        int32_t *tgt = malloc((size_t)n * sizeof *tgt);
        if (!tgt) return 1;
        for (int64_t i = 0; i < n; i++) tgt[i] = i + 1 < n ? tok[i + 1] : -1;
        float loss = 0;
        int rc = with_model(path, n, hf, tok, tgt, &loss);
        if (!rc) printf("loss %.9g\n", (double)loss);
        free(tok);
        free(tgt);
        return rc;
    }
    usage(stderr);
    return 2;
}
