/* Full-tensor views of the flat, possibly TP-sharded buffers (model.h: layout-independent
 * access). Without a TP team every tensor is whole on every PE. Under TP a tensor is whole
 * (norm weights), a block of rows (embedding, q/k/v, gate/up, LM head) or a block of columns
 * (o, down) of the full HF tensor; with KV replication member r holds KV head r / kvrep. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* First row (ROWS) or column (COLS) of member r's block. */
static int64_t part_start(const lc_model *m, const lc_model__part *pt, int r)
{
    return (pt->kind == LC_MODEL__ROWS && pt->kv ? r / m->kvrep : r) * pt->unit;
}

size_t lc_model_tensor_full_shape(const lc_model *m, int i, int64_t shape[2])
{
    const lc_model_tensor *t = lc_model_tensor_at(m, i);
    if (!t) return 0;
    const lc_model__part *pt = &m->parts[i];
    shape[0] = pt->full[0];
    shape[1] = pt->full[1];
    return (size_t)shape[0] * (size_t)(shape[1] ? shape[1] : 1);
}

int lc_model_gather_tensor(lc_model *m, int i, const float *src_flat, float *full)
{
    const lc_model_tensor *t = lc_model_tensor_at(m, i);
    if (!t || !src_flat || !full) {
        snprintf(m->err, sizeof m->err, "lc_model_gather_tensor: tensor %d of %d, or a NULL buffer", i,
                 m->n_tensors);
        return LC_ERR_ARG;
    }
    const lc_model__part *pt = &m->parts[i];
    const float *src = src_flat + t->offset;
    if (pt->kind == LC_MODEL__REPL) {
        memcpy(full, src, t->numel * sizeof *full);
        return LC_OK;
    }
    int T = m->T, rc;
    size_t bpp = t->numel * sizeof(float);
    if (pt->kind == LC_MODEL__ROWS && !(pt->kv && m->kvrep > 1)) {
        /* member r's rows are rows [r * unit, (r + 1) * unit): the all-gather's own order */
        if ((rc = lc_allgather(m->tp, full, src, bpp)))
            goto coll_fail;
        return LC_OK;
    }
    float *all = malloc(bpp * (size_t)T);
    if (!all) {
        snprintf(m->err, sizeof m->err, "lc_model_gather_tensor: out of memory (%zu bytes)", bpp * (size_t)T);
        lc_world_abort(m->w, m->err); /* the other members are inside the all-gather */
        return LC_ERR_SYS;
    }
    if ((rc = lc_allgather(m->tp, all, src, bpp))) {
        free(all);
        goto coll_fail;
    }
    if (pt->kind == LC_MODEL__ROWS) { /* replicated KV heads: the first replica of each */
        for (int r = 0; r < T; r += m->kvrep)
            memcpy(full + (size_t)part_start(m, pt, r) * (size_t)pt->full[1], all + (size_t)r * t->numel, bpp);
    } else {
        int64_t rows = pt->full[0], cols = pt->full[1], u = pt->unit;
        for (int r = 0; r < T; r++)
            for (int64_t y = 0; y < rows; y++)
                memcpy(full + (size_t)(y * cols + part_start(m, pt, r)), all + (size_t)r * t->numel + (size_t)(y * u),
                       (size_t)u * sizeof(float));
    }
    free(all);
    return LC_OK;
coll_fail:
    snprintf(m->err, sizeof m->err, "lc_model_gather_tensor %s: TP all-gather: %s", t->name, lc_last_error(m->w));
    return rc;
}

int lc_model_scatter_tensor(const lc_model *m, int i, const float *full, float *dst_flat)
{
    const lc_model_tensor *t = lc_model_tensor_at(m, i);
    if (!t || !full || !dst_flat) return LC_ERR_ARG;
    const lc_model__part *pt = &m->parts[i];
    float *dst = dst_flat + t->offset;
    if (pt->kind == LC_MODEL__REPL) {
        memcpy(dst, full, t->numel * sizeof *full);
    } else if (pt->kind == LC_MODEL__ROWS) {
        memcpy(dst, full + (size_t)part_start(m, pt, m->tr) * (size_t)pt->full[1], t->numel * sizeof *full);
    } else {
        int64_t rows = pt->full[0], cols = pt->full[1], u = pt->unit, c0 = part_start(m, pt, m->tr);
        for (int64_t y = 0; y < rows; y++)
            memcpy(dst + (size_t)(y * u), full + (size_t)(y * cols + c0), (size_t)u * sizeof(float));
    }
    return LC_OK;
}

int lc_model_tensor_counts(const lc_model *m, int i)
{
    if (i < 0 || i >= m->n_tensors) return 0;
    const lc_model__part *pt = &m->parts[i];
    if (pt->kind == LC_MODEL__REPL) return m->tr == 0;
    if (pt->kv && m->kvrep > 1) return m->tr % m->kvrep == 0;
    return 1;
}

int lc_model_global_norm(lc_model *m, const float *flat, double *norm)
{
    if (!flat || !norm) return LC_ERR_ARG;
    double s[4] = {0, 0, 0, 0}, mine, tot;
    for (int i = 0; i < m->n_tensors; i++) {
        if (!lc_model_tensor_counts(m, i)) continue;
        const float *g = flat + m->tensors[i].offset;
        size_t n = m->tensors[i].numel, j = 0;
        for (; j + 4 <= n; j += 4)
            for (int k = 0; k < 4; k++) s[k] += (double)g[j + k] * g[j + k];
        for (; j < n; j++) s[0] += (double)g[j] * g[j];
    }
    mine = (s[0] + s[1]) + (s[2] + s[3]);
    if (m->T > 1) {
        int rc = lc_allreduce_sum_f64(m->tp, &tot, &mine, 1);
        if (rc) {
            snprintf(m->err, sizeof m->err, "lc_model_global_norm: TP all-reduce: %s", lc_last_error(m->w));
            return rc;
        }
    } else {
        tot = mine;
    }
    *norm = sqrt(tot);
    return LC_OK;
}
