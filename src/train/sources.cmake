list(APPEND LONGCTX_SOURCES
  src/train/error.c
  src/train/tokfile.c
  src/train/byte_tok.c
  src/train/corpus.c
  src/train/loader.c
  src/train/adamw.c
  src/train/mesh.c
  src/train/metrics.c
  src/train/png.c
  src/train/plot.c)
# The training loop drives the model layer.
if(EXISTS ${CMAKE_SOURCE_DIR}/src/model/sources.cmake)
  list(APPEND LONGCTX_SOURCES src/train/trainer.c src/train/ckpt_hooks.c)
endif()
