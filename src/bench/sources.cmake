# The benchmarks of the longctx binary (longctx bench permute|attn|tiles|ring|train): a layer
# above the library that only the CLI's dispatch uses, so the library carries none of them.
longctx_layer(bench
  src/bench/bench_util.c
  src/bench/peak.c
  src/bench/bench_permute.c
  src/bench/bench_attn.c
  src/bench/bench_tiles.c
  src/bench/bench_ring.c
  src/bench/bench_balance.c
  src/bench/bench_train.c
  src/bench/bench_train_peers.c)
# MPI measured directly beside the permute on the mpi backend (bench permute --backend mpi).
if(LONGCTX_HAVE_MPI)
  target_sources(lc_bench PRIVATE src/bench/bench_mpi.c)
  set_property(SOURCE src/bench/bench_permute.c src/bench/bench_mpi.c APPEND PROPERTY
               COMPILE_DEFINITIONS LONGCTX_HAVE_MPI)
endif()

# The model's step benchmark, a program of its own (bench/model/bench_model.c; not a test).
add_executable(bench_model ${CMAKE_SOURCE_DIR}/bench/model/bench_model.c)
target_link_libraries(bench_model PRIVATE lc_model)
set_target_properties(bench_model PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
