# The training layer (src/train): token files, the loader, the mesh, metrics, the loss plot
# and the training loop, which drives the model, the optimizer and the checkpoints.
longctx_layer(train
  src/train/error.c
  src/train/tokfile.c
  src/train/byte_tok.c
  src/train/corpus.c
  src/train/loader.c
  src/train/mesh.c
  src/train/metrics.c
  src/train/png.c
  src/train/plot.c
  src/train/trainer.c
  src/train/ckpt_hooks.c
  src/train/cuda_load.c)
# where an installed longctx finds its GPU plugin: ../<libdir> from the binary
set_source_files_properties(src/train/cuda_load.c PROPERTIES
  COMPILE_DEFINITIONS "LONGCTX_LIBDIR=\"${CMAKE_INSTALL_LIBDIR}\"")
