# Checkpoints (src/ckpt): safetensors, config.json, checkpoint folders; uses the model's
# layout-independent tensor access and the optimizer's moments.
longctx_layer(ckpt
  src/ckpt/json.c
  src/ckpt/safetensors.c
  src/ckpt/config.c
  src/ckpt/dir.c
  src/ckpt/save.c
  src/ckpt/load.c
  src/ckpt/info.c
  src/ckpt/util.c)
