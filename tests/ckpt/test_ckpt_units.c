/* Unit tests of src/ckpt: the strict JSON parser, the safetensors reader on well-formed and
 * corrupt images (each corrupt case must be refused with a message naming what was wrong),
 * dtype conversion, config.json round trip, and a model + AdamW save -> load round trip on
 * one PE that is bit-exact, plus a failed load that leaves the model and optimizer untouched.
 * usage: test_ckpt_units json|st|config|roundtrip WORKDIR */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/json.h"
#include "common/fail.h"
#include "common/rng.h"
#include "longctx/ckpt.h"

static int fails;

static void json_case(const char *s, int ok)
{
    char err[256];
    lc_jdoc *d = lc_json_parse(s, strlen(s), err, sizeof err);
    if (!!d != ok) LC_TEST_FAIL(fails, "JSON '%s': %s, expected %s (%s)", s, d ? "accepted" : "refused", ok ? "accept" : "refuse", d ? "" : err);
    lc_json_free(d);
}

static int test_json(void)
{
    const char *good[] = {"{}", "[]", "0", "-0.5e-3", " \"s\" ", "{\"a\":[1,-2.5E3,true,false,null,\"x\\u00e9\\ud83d\\ude00\\n\"]}",
                          "{\"a\":{\"b\":{}}}", "[\"\xc3\xa9\"]"};
    const char *bad[] = {"", "{", "{\"a\":1,}", "[1,]", "{\"a\":1,\"a\":2}", "01", "1.", "-", "1e", "\"\x01\"",
                         "\"\\ud800\"", "\"\\udc00\"", "\"\\q\"", "tru", "{} x", "{'a':1}", "\"\xff\"", "[1 2]",
                         "{\"a\" 1}", "\"abc", "NaN", "{\"a\":1 \"b\":2}", "\"\\u12\"", "\"\xc0\x80\"", "\"\xed\xa0\x80\"",
                         "{1:2}", "[01]", "+1"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) json_case(good[i], 1);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) json_case(bad[i], 0);
    char deep[300];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    deep[200] = 0;
    json_case(deep, 0); /* deeper than 64 */
    memset(deep, '[', 60);
    memset(deep + 60, ']', 60);
    deep[120] = 0;
    json_case(deep, 1);
    /* decoded values */
    const char *s = "{\"k\":\"a\\u00e9\\ud83d\\ude00\",\"big\":9223372036854775807,\"over\":9223372036854775808,"
                    "\"neg\":-9223372036854775808,\"f\":1.5}";
    lc_jdoc *d = lc_json_parse(s, strlen(s), NULL, 0);
    if (!d) {
        LC_TEST_FAIL(fails, "valid object refused");
        return fails;
    }
    const lc_jval *r = lc_json_root(d), *k = lc_json_get(r, "k");
    if (!k || strcmp(k->text, "a\xc3\xa9\xf0\x9f\x98\x80")) LC_TEST_FAIL(fails, "\\u escapes decoded wrong");
    int64_t x;
    if (lc_json_int(lc_json_get(r, "big"), INT64_MIN, INT64_MAX, &x) || x != INT64_MAX) LC_TEST_FAIL(fails, "INT64_MAX");
    if (!lc_json_int(lc_json_get(r, "over"), INT64_MIN, INT64_MAX, &x)) LC_TEST_FAIL(fails, "2^63 accepted as int64");
    if (lc_json_int(lc_json_get(r, "neg"), INT64_MIN, INT64_MAX, &x) || x != INT64_MIN) LC_TEST_FAIL(fails, "INT64_MIN");
    if (!lc_json_int(lc_json_get(r, "f"), INT64_MIN, INT64_MAX, &x)) LC_TEST_FAIL(fails, "1.5 accepted as an integer");
    lc_json_free(d);
    char q[64];
    lc_json_quote(q, sizeof q, "a\"b\\c\n");
    if (strcmp(q, "\"a\\\"b\\\\c\\u000a\"")) LC_TEST_FAIL(fails, "quote gave %s", q);
    printf("json: %d failures\n", fails);
    return fails;
}

/* An image: 8-byte length, header, data_len bytes (i/255). */
static unsigned char *image(const char *hdr, size_t data_len, size_t *len)
{
    size_t h = strlen(hdr);
    *len = 8 + h + data_len;
    unsigned char *b = malloc(*len + 1);
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)h >> (8 * k));
    memcpy(b + 8, hdr, h);
    for (size_t i = 0; i < data_len; i++) b[8 + h + i] = (unsigned char)(i % 255);
    return b;
}

static void st_case(const char *hdr, size_t data_len, const char *want)
{
    size_t len;
    unsigned char *b = image(hdr, data_len, &len);
    /* an exact-size copy, so that ASan sees any read past the end */
    unsigned char *exact = malloc(len);
    memcpy(exact, b, len);
    lc_st_file *f = NULL;
    int rc = lc_st_parse(exact, len, "img", &f);
    if (!want && rc) LC_TEST_FAIL(fails, "refused %s: %s", hdr, lc_ckpt_last_error());
    if (want && !rc) LC_TEST_FAIL(fails, "accepted %s (%zu data bytes); wanted '%s'", hdr, data_len, want);
    if (want && rc && !strstr(lc_ckpt_last_error(), want))
        LC_TEST_FAIL(fails, "%s: message '%s' lacks '%s'", hdr, lc_ckpt_last_error(), want);
    lc_st_close(f);
    free(exact);
    free(b);
}

static int test_st(const char *work)
{
    const char *A = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
    char h[512];
    snprintf(h, sizeof h, "%s}", A);
    st_case(h, 8, NULL);
    st_case(h, 4, "run past the 4 data bytes");                       /* truncated data */
    st_case(h, 12, "cover 8 data bytes but the file has 12");         /* trailing bytes */
    st_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs 12");
    st_case("{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype \"F33\"");
    st_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "end before begin");
    st_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "missing field \"data_offsets\"");
    st_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8, "unknown field \"x\"");
    st_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape[0]");
    st_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, "shape[0]");
    st_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, "overflows");
    st_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap");
    st_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20, "gap");
    st_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, "duplicate key \"a\"");
    st_case("{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ \"k\" is not a string");
    st_case("{\"__metadata__\":{\"k\":\"v\"}}", 0, NULL);
    st_case("[]", 0, "does not start with '{'");
    st_case("{\"a\":[]}", 0, "not an object");
    st_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", 8, "bad JSON");
    st_case("{\"a\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[0,2]}}", 2, NULL); /* a scalar */
    st_case("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0, NULL);
    /* header length beyond the file, a file shorter than 8 bytes */
    size_t len;
    unsigned char *b = image(h, 8, &len);
    b[0] = (unsigned char)(b[0] + 100);
    lc_st_file *f;
    if (!lc_st_parse(b, len, "img", &f) || !strstr(lc_ckpt_last_error(), "runs past the end"))
        LC_TEST_FAIL(fails, "header length beyond the file: %s", lc_ckpt_last_error());
    if (!lc_st_parse(b, 5, "img", &f) || !strstr(lc_ckpt_last_error(), "shorter than the 8-byte"))
        LC_TEST_FAIL(fails, "5-byte file: %s", lc_ckpt_last_error());
    free(b);

    /* writer -> reader, metadata, conversions */
    char path[4096];
    snprintf(path, sizeof path, "%s/w.safetensors", work);
    lc_st_desc d[3] = {{"f", LC_ST_F32, 2, {2, 2}}, {"h", LC_ST_F16, 1, {5}}, {"b", LC_ST_BF16, 1, {2}}};
    const char *mk[2] = {"format", "q\"uote"}, *mv[2] = {"pt", "x\ny"};
    lc_st_writer *w;
    float fv[4] = {1, -2, 3.5f, 1e-30f};
    uint16_t hv[5] = {0x3C00, 0xC000, 0x0001, 0x7C00, 0x3555}, bv[2] = {0x3F80, 0xC0A0};
    if (lc_st_write_begin(path, d, 3, mk, mv, 2, &w) || lc_st_write_data(w, fv, sizeof fv) ||
        lc_st_write_data(w, hv, sizeof hv) || lc_st_write_data(w, bv, sizeof bv) || lc_st_write_end(w, 0)) {
        LC_TEST_FAIL(fails, "writer: %s", lc_ckpt_last_error());
        return fails;
    }
    if (lc_st_open(path, &f)) {
        LC_TEST_FAIL(fails, "reader: %s", lc_ckpt_last_error());
        return fails;
    }
    float o[5];
    const float hwant[5] = {1.0f, -2.0f, 5.9604645e-08f, INFINITY, 0.333251953125f};
    if (lc_st_n_tensors(f) != 3 || lc_st_read_f32(f, lc_st_find(f, "f"), o, 4) || memcmp(o, fv, sizeof fv))
        LC_TEST_FAIL(fails, "F32 round trip");
    if (lc_st_read_f32(f, lc_st_find(f, "h"), o, 5) || memcmp(o, hwant, sizeof hwant))
        LC_TEST_FAIL(fails, "F16 -> F32: %g %g %g %g %g", o[0], o[1], o[2], o[3], o[4]);
    if (lc_st_read_f32(f, lc_st_find(f, "b"), o, 2) || o[0] != 1.0f || o[1] != -5.0f) LC_TEST_FAIL(fails, "BF16 -> F32");
    if (!lc_st_read_f32(f, 0, o, 3)) LC_TEST_FAIL(fails, "read with the wrong count accepted");
    if (!lc_st_meta(f, "q\"uote") || strcmp(lc_st_meta(f, "q\"uote"), "x\ny") || strcmp(lc_st_meta(f, "format"), "pt"))
        LC_TEST_FAIL(fails, "metadata round trip");
    lc_st_close(f);
    /* a writer that wrote fewer bytes than promised fails and leaves no file */
    if (lc_st_write_begin(path, d, 1, NULL, NULL, 0, &w) || (lc_st_write_data(w, fv, 8) == 0 && !lc_st_write_end(w, 0)))
        LC_TEST_FAIL(fails, "short write accepted");
    if (access(path, F_OK) == 0) LC_TEST_FAIL(fails, "a failed write left %s", path);
    printf("st: %d failures\n", fails);
    return fails;
}

static int test_config(const char *work)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/config.json", work);
    const char *names[3] = {"tiny", "small", "llama3-8b"};
    for (int i = 0; i < 3; i++) {
        lc_model_config c, r;
        lc_model_preset(names[i], &c);
        c.norm_eps = 1e-6f;
        int tied = 1;
        if (lc_ckpt_write_config(p, &c) || lc_ckpt_read_config(p, &r, &tied)) {
            LC_TEST_FAIL(fails, "%s: %s", names[i], lc_ckpt_last_error());
            continue;
        }
        if (memcmp(&c, &r, sizeof c) || tied) LC_TEST_FAIL(fails, "%s: config round trip differs", names[i]);
    }
    struct { const char *js, *want; } bad[] = {
        {"{\"hidden_size\":64,\"intermediate_size\":128,\"num_attention_heads\":4,\"vocab_size\":256}", "\"num_hidden_layers\" is missing"},
        {"{\"num_hidden_layers\":2,\"hidden_size\":64,\"intermediate_size\":128,\"num_attention_heads\":4,\"vocab_size\":256,\"rope_scaling\":{\"type\":\"llama3\"}}", "rope_scaling"},
        {"{\"num_hidden_layers\":2,\"hidden_size\":64,\"intermediate_size\":128,\"num_attention_heads\":4,\"vocab_size\":256,\"hidden_act\":\"gelu\"}", "hidden_act"},
        {"{\"num_hidden_layers\":2,\"hidden_size\":64,\"intermediate_size\":128,\"num_attention_heads\":4,\"vocab_size\":256,\"head_dim\":32}", "head_dim"},
        {"{\"num_hidden_layers\":2.5,\"hidden_size\":64,\"intermediate_size\":128,\"num_attention_heads\":4,\"vocab_size\":256}", "num_hidden_layers"},
        {"{\"num_hidden_layers\":2,\"hidden_size\":64,\"intermediate_size\":128,\"num_attention_heads\":4,\"vocab_size\":256,\"attention_bias\":true}", "attention_bias"},
        {"{\"num_hidden_layers\":2,\"hidden_size\":64,\"intermediate_size\":128,\"num_attention_heads\":4,\"vocab_size\":256,\"rms_norm_eps\":-1}", "rms_norm_eps"},
        {"{\"num_hidden_layers\":2,\"hidden_size\":64,\"intermediate_size\":128,\"num_attention_heads\":3,\"vocab_size\":256}", "n_heads"},
        {"{\"num_hidden_layers\":2,", "bad JSON"},
        {"{\"num_hidden_layers\":2,\"hidden_size\":64,\"intermediate_size\":128,\"num_attention_heads\":4,\"vocab_size\":256,\"rope_parameters\":{\"rope_type\":\"llama3\",\"rope_theta\":5e5}}", "rope_type"},
        {"{\"num_hidden_layers\":2,\"hidden_size\":64,\"intermediate_size\":128,\"num_attention_heads\":4,\"vocab_size\":256,\"rope_parameters\":{\"rope_type\":\"default\",\"factor\":8}}", "rope_parameters.factor"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        FILE *f = fopen(p, "w");
        fputs(bad[i].js, f);
        fclose(f);
        lc_model_config c;
        if (!lc_ckpt_read_config(p, &c, NULL)) LC_TEST_FAIL(fails, "config %zu accepted", i);
        else if (!strstr(lc_ckpt_last_error(), bad[i].want))
            LC_TEST_FAIL(fails, "config %zu: '%s' lacks '%s'", i, lc_ckpt_last_error(), bad[i].want);
    }
    /* HF defaults: no num_key_value_heads (= heads), tied embeddings */
    FILE *f = fopen(p, "w");
    fputs("{\"num_hidden_layers\":2,\"hidden_size\":64,\"intermediate_size\":128,\"num_attention_heads\":4,"
          "\"vocab_size\":256,\"tie_word_embeddings\":true,\"transformers_version\":\"4.44\",\"bos_token_id\":1}", f);
    fclose(f);
    lc_model_config c;
    int tied = 0;
    if (lc_ckpt_read_config(p, &c, &tied) || c.n_kv_heads != 4 || !tied || c.rope_theta != 10000.0f || c.norm_eps != 1e-6f)
        LC_TEST_FAIL(fails, "HF defaults: %s", lc_ckpt_last_error());
    /* transformers 5: RoPE in rope_parameters */
    f = fopen(p, "w");
    fputs("{\"num_hidden_layers\":2,\"hidden_size\":64,\"intermediate_size\":128,\"num_attention_heads\":4,"
          "\"vocab_size\":256,\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":250000.0}}", f);
    fclose(f);
    if (lc_ckpt_read_config(p, &c, &tied) || c.rope_theta != 250000.0f) LC_TEST_FAIL(fails, "rope_parameters: %s", lc_ckpt_last_error());
    printf("config: %d failures\n", fails);
    return fails;
}

static void fill(float *x, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)((double)(lc_test_rng(&seed) >> 11) * 0x1.0p-53 - 0.5);
}

static int test_roundtrip(const char *work)
{
    lc_world *w;
    lc_world_opts wo = {0};
    if (lc_world_init(&wo, &w)) return printf("cannot start a world of one\n"), 1;
    lc_model_config cfg;
    lc_model_preset("tiny", &cfg);
    lc_plan plan = {.seq_len = 8, .layout = LC_CP_CONTIGUOUS, .algo = LC_CP_RING, .lowering = LC_LOWER_AUTO};
    lc_model_run run = {.cp_team = lc_team_world(w), .plan = &plan, .compute = LC_DT_F32, .threads = 1};
    lc_model *a, *b;
    lc_adamw *oa, *ob;
    lc_adamw_config ac = {0.9f, 0.95f, 1e-8f, 0.1f};
    if (lc_model_create(&cfg, &run, &a) || lc_model_create(&cfg, &run, &b)) return printf("model: %s\n", lc_model_last_error(NULL)), 1;
    size_t np = lc_model_n_params(a);
    lc_adamw_create(np, &ac, &oa);
    lc_adamw_create(np, &ac, &ob);
    lc_model_init_params(a, 1);
    lc_model_init_params(b, 2);
    fill(lc_adamw_m(oa), np, 3);
    fill(lc_adamw_v(oa), np, 4);
    lc_adamw_set_steps(oa, 7);
    lc_ckpt_state st = {.step = 5, .data_position = 10, .optimizer_steps = 7, .seed = 42, .total_steps = 9, .warmup = 1,
                        .lr = 3e-3f, .lr_min = 3e-4f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f,
                        .seq_len = 8, .dp = 1, .cp = 1, .tp = 1, .layout = "contiguous", .model_name = "tiny"};
    char dir[4096], ck[4200];
    snprintf(dir, sizeof dir, "%s/rt", work);
    lc_ckpt_save_opts so = {lc_team_world(w), 1, 1, 0};
    if (lc_ckpt_save(a, oa, &st, dir, &so)) return printf("save: %s\n", lc_ckpt_last_error()), 1;
    snprintf(ck, sizeof ck, "%s/step-00000005", dir);
    /* a failed load changes nothing: truncate the training state by 4 bytes (the model file
     * was staged first) */
    float *before = malloc(np * 4), *mb = malloc(np * 4);
    memcpy(before, lc_model_params(b), np * 4);
    memcpy(mb, lc_adamw_m(ob), np * 4);
    char ts[4300], bak[4400];
    snprintf(ts, sizeof ts, "%s/training_state.safetensors", ck);
    snprintf(bak, sizeof bak, "%s.bak", ts);
    struct stat sb;
    stat(ts, &sb);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", ts, bak);
    if (system(cmd)) return 1;
    if (truncate(ts, sb.st_size - 4)) return 1;
    lc_ckpt_state got;
    if (!lc_ckpt_load(b, ob, ck, 0, &got)) LC_TEST_FAIL(fails, "a truncated training state loaded");
    else if (!strstr(lc_ckpt_last_error(), "training_state.safetensors"))
        LC_TEST_FAIL(fails, "truncation message: %s", lc_ckpt_last_error());
    if (memcmp(before, lc_model_params(b), np * 4) || memcmp(mb, lc_adamw_m(ob), np * 4) || lc_adamw_steps(ob) != 0)
        LC_TEST_FAIL(fails, "the failed load changed the model or optimizer");
    rename(bak, ts);
    /* config mismatch */
    lc_model_config c2 = cfg;
    c2.ffn_dim = 64;
    lc_model *c;
    if (lc_model_create(&c2, &run, &c)) return 1;
    if (!lc_ckpt_load(c, NULL, ck, 0, NULL) || !strstr(lc_ckpt_last_error(), "intermediate_size = 128"))
        LC_TEST_FAIL(fails, "ffn mismatch: %s", lc_ckpt_last_error());
    lc_model_destroy(c);
    /* the round trip */
    if (lc_ckpt_load(b, ob, ck, 0, &got)) {
        LC_TEST_FAIL(fails, "load: %s", lc_ckpt_last_error());
    } else {
        if (memcmp(lc_model_params(a), lc_model_params(b), np * 4)) LC_TEST_FAIL(fails, "params differ after the round trip");
        if (memcmp(lc_adamw_m(oa), lc_adamw_m(ob), np * 4) || memcmp(lc_adamw_v(oa), lc_adamw_v(ob), np * 4))
            LC_TEST_FAIL(fails, "AdamW moments differ after the round trip");
        if (lc_adamw_steps(ob) != 7) LC_TEST_FAIL(fails, "optimizer steps %lld", (long long)lc_adamw_steps(ob));
        if (got.step != 5 || got.data_position != 10 || got.seed != 42 || got.total_steps != 9 || got.warmup != 1 ||
            got.lr != st.lr || got.lr_min != st.lr_min || got.eps != st.eps || got.beta2 != st.beta2 ||
            got.seq_len != 8 || strcmp(got.layout, "contiguous") || strcmp(got.model_name, "tiny"))
            LC_TEST_FAIL(fails, "state metadata differs after the round trip");
    }
    /* saving the same step again replaces it whole */
    lc_model_init_params(a, 9);
    if (lc_ckpt_save(a, oa, &st, dir, &so) || lc_ckpt_load(b, ob, ck, 0, &got) ||
        memcmp(lc_model_params(a), lc_model_params(b), np * 4))
        LC_TEST_FAIL(fails, "re-saving step 5: %s", lc_ckpt_last_error());
    /* the run settings (format 2) round-trip; a state saved without them reads back without */
    if (got.has_run) LC_TEST_FAIL(fails, "a state saved without run settings reads back with them");
    lc_ckpt_state s2 = st;
    s2.has_run = 1;
    snprintf(s2.dtype, sizeof s2.dtype, "bf16");
    s2.doc_mask = 1;
    s2.doc_sep = 3;
    snprintf(s2.cp_algo, sizeof s2.cp_algo, "allgather");
    snprintf(s2.lowering, sizeof s2.lowering, "two_sided");
    s2.accum = 3;
    s2.global_batch = 6;
    s2.clip = 0.25f;
    snprintf(s2.train_path, sizeof s2.train_path, "/data/train.bin");
    s2.train_tokens = 12345;
    s2.train_fingerprint = 0xfedcba9876543210ull;
    if (lc_ckpt_save(a, oa, &s2, dir, &so) || lc_ckpt_read_state(ck, &got))
        LC_TEST_FAIL(fails, "saving run settings: %s", lc_ckpt_last_error());
    else if (!got.has_run || strcmp(got.dtype, "bf16") || got.doc_mask != 1 || got.doc_sep != 3 ||
             strcmp(got.cp_algo, "allgather") || strcmp(got.lowering, "two_sided") || got.accum != 3 ||
             got.global_batch != 6 || got.clip != 0.25f || strcmp(got.train_path, "/data/train.bin") ||
             got.val_path[0] || got.train_tokens != 12345 || got.train_fingerprint != 0xfedcba9876543210ull ||
             got.step != 5 || got.seed != 42)
        LC_TEST_FAIL(fails, "run settings differ after the round trip");
    /* a save into an impossible folder fails cleanly */
    if (!lc_ckpt_save(a, oa, &st, "/proc/no/such/dir", &so)) LC_TEST_FAIL(fails, "a save into /proc succeeded");
    free(before);
    free(mb);
    lc_adamw_destroy(oa);
    lc_adamw_destroy(ob);
    lc_model_destroy(a);
    lc_model_destroy(b);
    lc_world_finalize(w);
    printf("roundtrip: %d failures\n", fails);
    return fails;
}

int main(int argc, char **argv)
{
    if (argc < 3) return fprintf(stderr, "usage: test_ckpt_units json|st|config|roundtrip WORKDIR\n"), 2;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", argv[2], argv[2]);
    if (system(cmd)) return 1;
    int rc;
    if (!strcmp(argv[1], "json")) rc = test_json();
    else if (!strcmp(argv[1], "st")) rc = test_st(argv[2]);
    else if (!strcmp(argv[1], "config")) rc = test_config(argv[2]);
    else if (!strcmp(argv[1], "roundtrip")) rc = test_roundtrip(argv[2]);
    else return fprintf(stderr, "unknown test %s\n", argv[1]), 2;
    printf("%s\n", rc ? "FAILED" : "PASS");
    return rc ? 1 : 0;
}
