/* Model configs: presets, validation, the FLOP count and a memory estimate. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/internal.h"

int lc_model_preset(const char *name, lc_model_config *out)
{
    if (!name || !out) return LC_ERR_ARG;
    lc_model_config c = {0};
    if (!strcmp(name, "tiny")) {
        /* head_dim 16 is the smallest the attention kernels take; GQA 2:1 */
        c = (lc_model_config){.n_layers = 2, .dim = 64, .n_heads = 4, .n_kv_heads = 2,
                              .ffn_dim = 128, .vocab = 256, .rope_theta = 10000.0f,
                              .norm_eps = 1e-5f, .max_seq = 1 << 16};
    } else if (!strcmp(name, "small")) {
        /* byte-level vocab; head_dim 64; matmul widths multiples of 128 for BLAS. At 16K
         * tokens attention is ~95% of the FLOPs (6*L*dim*S vs 6N per token), so the layer
         * count sets the step time: 2 layers keep a 16K step at CP=2 near 20 s on 2 cores. */
        c = (lc_model_config){.n_layers = 2, .dim = 256, .n_heads = 4, .n_kv_heads = 2,
                              .ffn_dim = 768, .vocab = 256, .rope_theta = 500000.0f,
                              .norm_eps = 1e-5f, .max_seq = 1 << 20};
    } else if (!strcmp(name, "llama3-8b")) {
        c = (lc_model_config){.n_layers = 32, .dim = 4096, .n_heads = 32, .n_kv_heads = 8,
                              .ffn_dim = 14336, .vocab = 128256, .rope_theta = 500000.0f,
                              .norm_eps = 1e-5f, .max_seq = 8192};
    } else {
        return LC_ERR_ARG;
    }
    *out = c;
    return LC_OK;
}

int lc_model_config_check(const lc_model_config *c, char *err, size_t n)
{
    char tmp[8];
    if (!err) { err = tmp; n = sizeof tmp; }
#define BAD(...) do { snprintf(err, n, __VA_ARGS__); return LC_ERR_ARG; } while (0)
    if (!c) BAD("config is NULL");
    if (c->n_layers < 1) BAD("n_layers = %d must be >= 1", c->n_layers);
    if (c->dim < 1) BAD("dim = %d must be >= 1", c->dim);
    if (c->n_heads < 1) BAD("n_heads = %d must be >= 1", c->n_heads);
    if (c->n_kv_heads < 1) BAD("n_kv_heads = %d must be >= 1", c->n_kv_heads);
    if (c->ffn_dim < 1) BAD("ffn_dim = %d must be >= 1", c->ffn_dim);
    if (c->vocab < 2) BAD("vocab = %d must be >= 2", c->vocab);
    if (c->dim % c->n_heads)
        BAD("dim = %d is not divisible by n_heads = %d", c->dim, c->n_heads);
    if (c->n_heads % c->n_kv_heads)
        BAD("n_heads = %d is not divisible by n_kv_heads = %d", c->n_heads, c->n_kv_heads);
    int hd = c->dim / c->n_heads;
    if (hd % 16 || hd > 256)
        BAD("head_dim = dim / n_heads = %d must be a multiple of 16 and <= 256 (attention "
            "kernels)", hd);
    if (!(c->rope_theta > 1.0f) || !isfinite(c->rope_theta))
        BAD("rope_theta = %g must be finite and > 1", (double)c->rope_theta);
    if (!(c->norm_eps > 0.0f) || !isfinite(c->norm_eps))
        BAD("norm_eps = %g must be finite and > 0", (double)c->norm_eps);
    if (c->max_seq < 1) BAD("max_seq = %lld must be >= 1", (long long)c->max_seq);
    /* sizes of one flat buffer must fit the int BLAS dimensions and size_t */
    if ((int64_t)c->vocab * c->dim > (int64_t)1 << 31)
        BAD("vocab * dim = %lld is too large", (long long)c->vocab * c->dim);
#undef BAD
    return LC_OK;
}

/* Matmul parameters: every Linear weight and the LM head (not embedding, not norms). */
static double matmul_params(const lc_model_config *c)
{
    double hd = (double)c->dim / c->n_heads, kvdim = hd * c->n_kv_heads;
    double layer = (double)c->dim * (c->dim + 2.0 * kvdim) /* qkv */ + (double)c->dim * c->dim
                   + 3.0 * c->dim * c->ffn_dim;
    return layer * c->n_layers + (double)c->vocab * c->dim;
}

double lc_model_flops_per_token(const lc_model_config *c, int64_t seq_len)
{
    if (!c || c->n_layers < 1) return 0.0;
    /* attention per token per layer: QK^T and PV, 2*dim*S FLOPs each, forward + backward
     * (x3), causal halves it: 6 * dim * S */
    return 6.0 * matmul_params(c) + 6.0 * c->n_layers * (double)c->dim * (double)seq_len;
}

int lc_model_memory_estimate(const lc_model_config *c, const lc_model_run *r, lc_model_mem *out)
{
    if (!c || !r || !r->plan || !out || r->plan->cp < 1 || r->plan->tp < 1) return LC_ERR_ARG;
    memset(out, 0, sizeof *out);
    const lc_plan *pl = r->plan;
    /* under TP (T PEs) heads, ffn and vocab are 1/T per PE (replicated KV heads: one); with sp
     * the residual stream and the saved norm outputs hold 1/T of the rows */
    int T = pl->tp;
    int hl = c->n_heads / T, hkvl = c->n_kv_heads % T == 0 ? c->n_kv_heads / T : 1;
    double hd = (double)c->dim / c->n_heads, heads = hl;
    double qdim = hd * hl, kvdim = hd * hkvl, ffn = (double)c->ffn_dim / T, vocab = (double)c->vocab / T;
    double sh = pl->sp && T > 1 ? 1.0 / T : 1.0; /* residual rows per row */
    double layer_w = (double)c->dim * (qdim + 2 * kvdim) + (double)c->dim * qdim + 3.0 * c->dim * ffn;
    double params = layer_w * c->n_layers + 2.0 * vocab * c->dim + (2.0 * c->n_layers + 1) * c->dim;
    int n_pad = 0;
    if (lc_cp_layout_positions(pl->layout, pl->seq_len, pl->cp, 0, NULL, &n_pad) < 0) return LC_ERR_ARG;
    double rows = n_pad, es = r->compute == LC_DT_BF16 ? 2.0 : 4.0;
    double per_layer = 4.0 * (sh * (3.0 * c->dim + 2) + heads + 2.0 * ffn) + es * (2.0 * qdim + 2 * kvdim);
    /* every layer's input x, plus the rest of one layer (recompute) or of every layer */
    double saved = 4.0 * sh * c->dim * c->n_layers + per_layer * (r->recompute ? 1 : c->n_layers);
    /* dres, dtmp, xlast, xf (+ sp's gathered dres, gathered norm output and shard) + the
     * shared region (model.c): max(MLP dh|act, attention set) */
    double att_set = 4.0 * (qdim + 2 * kvdim + 2.0 * qdim + 2 * kvdim) + es * qdim;
    double mlp_set = 4.0 * 3.0 * ffn;
    double scratch = 4.0 * (1 + 3 * sh) * c->dim + (sh < 1 ? 4.0 * (2 + sh) * c->dim : 0)
                     + (att_set > mlp_set ? att_set : mlp_set);
    double chunk = (double)(LC_MODEL__LOGITS_MAX / (unsigned)vocab);
    if (chunk < 16) chunk = 16;
    if (chunk > rows) chunk = rows;
    out->weights = params * 4.0 * (r->compute == LC_DT_BF16 ? 2.0 : 1.0);
    out->grads = params * 4.0;
    out->activations = rows * (saved + scratch + 16.0 + 4.0 * hd) + chunk * vocab * 4.0;
    lc_cp_config cc = {.plan = *pl, .hq = hl, .hkv = hkvl, .d = (int)hd, .dtype = r->compute,
                       .mask = LC_MASK_CAUSAL | (r->doc_mask ? LC_MASK_DOC : 0) | (r->window > 0 ? LC_MASK_WINDOW : 0),
                       .window = r->window, .threads = r->threads > 0 ? r->threads : 1};
    out->attention = (double)lc_cp_mem_estimate(&cc, pl->cp);
    return LC_OK;
}

int lc_model_tp_check(const lc_model_config *c, int tp, char *err, size_t n)
{
    char tmp[8];
    if (!err) { err = tmp; n = sizeof tmp; }
#define BAD(...) do { snprintf(err, n, __VA_ARGS__); return LC_ERR_ARG; } while (0)
    if (!c) BAD("config is NULL");
    if (tp < 1) BAD("tp = %d must be >= 1", tp);
    if (tp == 1) return LC_OK;
    if (c->n_heads % tp)
        BAD("n_heads = %d is not divisible by tp = %d (query heads are split over TP)", c->n_heads, tp);
    if (c->n_kv_heads % tp && (tp % c->n_kv_heads || c->n_heads % tp))
        BAD("n_kv_heads = %d and tp = %d: one must divide the other (KV heads are split over TP, "
            "or replicated when tp is a multiple of them)", c->n_kv_heads, tp);
    if (c->ffn_dim % tp)
        BAD("ffn_dim = %d is not divisible by tp = %d (gate/up/down are split over TP)", c->ffn_dim, tp);
    if (c->vocab % tp)
        BAD("vocab = %d is not divisible by tp = %d (the embedding and LM head are split by "
            "vocabulary; pad the vocabulary to a multiple of tp)", c->vocab, tp);
#undef BAD
    return LC_OK;
}
