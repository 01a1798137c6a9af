# The longctx binary, on top of every layer: launch, prepare-data, train, ckpt, and the
# dispatch to the benchmarks (src/bench).
add_executable(longctx
  src/cli/main.c
  src/cli/launch_cmd.c
  src/cli/prepare_cmd.c
  src/cli/train_cmd.c
  src/cli/train_opts.c
  src/cli/ckpt_cmd.c)
target_include_directories(longctx PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(longctx PRIVATE lc_planner)
add_dependencies(longctx lc_layer_check)
# `train --device cuda` loads its GPU part as a plugin (include/longctx/train_cuda.h), which takes
# the library's symbols from this binary rather than a second copy of its own
set_target_properties(longctx PROPERTIES ENABLE_EXPORTS ON)
# `longctx --version`: the project version of this build (CMakeLists.txt's project()).
target_compile_definitions(longctx PRIVATE LONGCTX_VERSION="${PROJECT_VERSION}")
