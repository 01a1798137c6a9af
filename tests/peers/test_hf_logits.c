/* The transformers cross-check, our side (run by hf_logits.sh on P PEs): a seeded tiny model,
 * exported as a Hugging Face checkpoint, and its logits for a seeded sequence.
 *   test_hf_logits DIR SEQ
 * writes our checkpoint with lc_ckpt_save under DIR/ckpt (PE 0 writes DIR/ckpt/step-00000000:
 * config.json, model.safetensors, ...), DIR/tokens.i32 and DIR/loss.txt
 * (PE 0), DIR/logits.<pe>.f32 [local rows, vocab] and DIR/pos.<pe>.i32 (each PE's global
 * positions). hf_logits.py loads the checkpoint with LlamaForCausalLM.from_pretrained and
 * compares. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "longctx/ckpt.h"
#include "longctx/model.h"

static int write_file(const char *dir, const char *name, int pe, const void *p, size_t bytes)
{
    char path[4200];
    if (pe >= 0) snprintf(path, sizeof path, "%s/%s.%d.%s", dir, name, pe, strcmp(name, "pos") ? "f32" : "i32");
    else snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, bytes, f) != bytes || fclose(f)) {
        fprintf(stderr, "test_hf_logits: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test_hf_logits DIR SEQ\n");
        return 2;
    }
    const char *dir = argv[1];
    int64_t S = atoll(argv[2]);
    const char *se = getenv("LONGCTX_SEED");
    uint64_t seed = se && *se ? strtoull(se, NULL, 0) : 20261201;
    lc_world *w;
    if (lc_world_init(NULL, &w)) {
        fprintf(stderr, "test_hf_logits: world init failed\n");
        return 1;
    }
    int me = lc_my_pe(w);
    lc_model_config cfg;
    lc_model_preset("tiny", &cfg);
    /* not the default theta: a checkpoint that lost it would fail the comparison */
    cfg.rope_theta = 5000.0f;
    lc_plan plan = {.seq_len = S, .layout = LC_CP_ZIGZAG, .algo = LC_CP_RING, .lowering = LC_LOWER_AUTO};
    lc_model_run run = {.cp_team = lc_team_world(w), .plan = &plan, .compute = LC_DT_F32, .threads = 1};
    lc_model *m;
    if (lc_model_create(&cfg, &run, &m)) {
        fprintf(stderr, "test_hf_logits: PE %d: %s\n", me, lc_model_last_error(NULL));
        return 1;
    }
    lc_model_init_params(m, seed);
    /* norm weights away from 1, so a dropped or transposed norm shows */
    float *params = lc_model_params(m);
    uint64_t r = seed ^ 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < lc_model_n_tensors(m); i++) {
        const lc_model_tensor *t = lc_model_tensor_at(m, i);
        if (t->ndim != 1) continue;
        for (size_t j = 0; j < t->numel; j++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            params[t->offset + j] = 0.5f + (float)((r >> 40) & 0xffff) / 65536.0f;
        }
    }
    int32_t *tok = malloc((size_t)S * 4), *tgt = malloc((size_t)S * 4);
    int rows = lc_model_local_rows(m);
    float *logits = malloc((size_t)rows * cfg.vocab * sizeof *logits);
    if (!tok || !tgt || !logits) return 1;
    for (int64_t i = 0; i < S; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int32_t)((r >> 33) % (uint64_t)cfg.vocab);
    }
    for (int64_t i = 0; i < S; i++) tgt[i] = i + 1 < S ? tok[i + 1] : -1;
    for (size_t i = 0; i < (size_t)rows * cfg.vocab; i++) logits[i] = NAN; /* poison */
    char cdir[4200];
    snprintf(cdir, sizeof cdir, "%s/ckpt", dir);
    float loss = NAN;
    lc_adamw_config ac = {0.9f, 0.95f, 1e-8f, 0.1f};
    lc_adamw *opt;
    lc_ckpt_state st = {0};
    st.seq_len = S;
    st.dp = st.tp = 1;
    st.cp = lc_n_pes(w);
    st.lr = st.lr_min = 1e-3f;
    st.beta1 = ac.beta1, st.beta2 = ac.beta2, st.eps = ac.eps, st.weight_decay = ac.weight_decay;
    snprintf(st.layout, sizeof st.layout, "zigzag");
    snprintf(st.model_name, sizeof st.model_name, "custom");
    lc_ckpt_save_opts so = {lc_team_world(w), me == 0, 1, 0};
    int rc = lc_adamw_create(lc_model_n_params(m), &ac, &opt);
    if (!rc && (rc = lc_ckpt_save(m, opt, &st, cdir, &so)))
        fprintf(stderr, "test_hf_logits: PE %d: save: %s\n", me, lc_ckpt_last_error());
    if (!rc && lc_model_forward_logits(m, tok, tgt, NULL, &loss, logits)) {
        fprintf(stderr, "test_hf_logits: PE %d: %s\n", me, lc_model_last_error(m));
        rc = 1;
    }
    if (!rc) rc = write_file(dir, "logits", me, logits, (size_t)rows * cfg.vocab * sizeof *logits);
    if (!rc) rc = write_file(dir, "pos", me, lc_model_local_pos(m), (size_t)rows * sizeof(int32_t));
    if (!rc && me == 0) {
        char txt[64];
        int n = snprintf(txt, sizeof txt, "%.9g\n", (double)loss);
        rc = write_file(dir, "tokens.i32", -1, tok, (size_t)S * 4) || write_file(dir, "loss.txt", -1, txt, (size_t)n);
    }
    free(tok);
    free(tgt);
    free(logits);
    if (rc) _exit(1);
    lc_adamw_destroy(opt);
    lc_model_destroy(m);
    return lc_world_finalize(w) ? 1 : 0;
}
