set(LONGCTX_CLI_SOURCES
  src/cli/main.c
  src/cli/launch_cmd.c
  src/cli/bench_permute.c
  src/cli/bench_util.c
  src/cli/prepare_cmd.c
  src/cli/peak.c)
# Layers that have landed add their bench commands here.
if(EXISTS ${CMAKE_SOURCE_DIR}/src/cli/bench_attn.c)
  list(APPEND LONGCTX_CLI_SOURCES src/cli/bench_attn.c src/cli/bench_tiles.c)
endif()
if(EXISTS ${CMAKE_SOURCE_DIR}/src/cli/bench_ring.c)
  list(APPEND LONGCTX_CLI_SOURCES src/cli/bench_ring.c)
endif()
if(EXISTS ${CMAKE_SOURCE_DIR}/src/cli/bench_attn.c)
  set_property(SOURCE src/cli/main.c APPEND PROPERTY COMPILE_DEFINITIONS LONGCTX_HAVE_BENCH_ATTN)
endif()
if(EXISTS ${CMAKE_SOURCE_DIR}/src/cli/bench_ring.c)
  set_property(SOURCE src/cli/main.c APPEND PROPERTY COMPILE_DEFINITIONS LONGCTX_HAVE_BENCH_RING)
endif()
# The trainer needs the model layer (src/model).
if(EXISTS ${CMAKE_SOURCE_DIR}/src/model/sources.cmake)
  list(APPEND LONGCTX_CLI_SOURCES src/cli/train_cmd.c src/cli/bench_train.c src/cli/ckpt_cmd.c
       src/cli/bench_train_peers.c)
  set_property(SOURCE src/cli/main.c APPEND PROPERTY COMPILE_DEFINITIONS LONGCTX_HAVE_TRAIN)
endif()
# MPI measured directly beside the permute on the mpi backend (bench permute --backend mpi).
if(LONGCTX_HAVE_MPI)
  list(APPEND LONGCTX_CLI_SOURCES src/cli/bench_mpi.c)
  set_property(SOURCE src/cli/bench_permute.c src/cli/bench_mpi.c APPEND PROPERTY COMPILE_DEFINITIONS LONGCTX_HAVE_MPI)
endif()
