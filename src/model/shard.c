/* Full-tensor views of the flat, possibly TP-sharded buffers (model.h: layout-independent
 * access). Without a TP team every tensor is whole on every PE. */
#include <string.h>

#include "internal.h"

static int tp_size(const lc_model *m)
{
    return m->run.tp_team ? lc_team_n_pes(m->run.tp_team) : 1;
}

size_t lc_model_tensor_full_shape(const lc_model *m, int i, int64_t shape[2])
{
    const lc_model_tensor *t = lc_model_tensor_at(m, i);
    if (!t) return 0;
    shape[0] = t->shape[0];
    shape[1] = t->ndim == 2 ? t->shape[1] : 0;
    return t->numel;
}

int lc_model_gather_tensor(lc_model *m, int i, const float *src_flat, float *full)
{
    const lc_model_tensor *t = lc_model_tensor_at(m, i);
    if (!t || !src_flat || !full) return LC_ERR_ARG;
    if (tp_size(m) > 1) return LC_ERR_UNSUPPORTED;
    memcpy(full, src_flat + t->offset, t->numel * sizeof *full);
    return LC_OK;
}

int lc_model_scatter_tensor(const lc_model *m, int i, const float *full, float *dst_flat)
{
    const lc_model_tensor *t = lc_model_tensor_at(m, i);
    if (!t || !full || !dst_flat) return LC_ERR_ARG;
    if (tp_size(m) > 1) return LC_ERR_UNSUPPORTED;
    memcpy(dst_flat + t->offset, full, t->numel * sizeof *full);
    return LC_OK;
}
