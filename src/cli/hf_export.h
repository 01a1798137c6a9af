/* A Hugging Face checkpoint directory (config.json + model.safetensors, LlamaForCausalLM
 * names, fp32) of a model's current parameters, for the peers of bench train and the
 * transformers cross-check. Stop-gap until the checkpoint layer (src/ckpt) lands; then this
 * calls its export. */
#ifndef LONGCTX_CLI_HF_EXPORT_H
#define LONGCTX_CLI_HF_EXPORT_H
#include "longctx/model.h"

/* Collective over the model's TP team (every PE calls it: tensors are gathered); only a PE
 * with write != 0 creates dir (mkdir -p) and writes the files. 0 or -1 with a message on
 * stderr naming the file. */
int lc_hf_export(lc_model *m, const char *dir, int write);

#endif
