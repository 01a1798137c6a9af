# The Llama-3-architecture model (src/model). Linear layers need a CBLAS: OpenBLAS from
# Debian (libopenblas-dev). Debian keeps OpenBLAS's cblas.h under an alternatives folder
# (/usr/include/x86_64-linux-gnu/openblas-pthread); other distributions use include/openblas.
longctx_layer(model
  src/model/config.c
  src/model/device_cpu.c
  src/model/layers.c
  src/model/linear.c
  src/model/gemm_bf16.c
  src/model/model.c
  src/model/shard.c
  src/model/step.c)

find_path(LONGCTX_OPENBLAS_INCLUDE NAMES cblas.h
  PATHS /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-pthread
        /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp
        /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-serial
        /usr/include/openblas /usr/local/include/openblas /usr/local/include
  NO_DEFAULT_PATH)
find_library(LONGCTX_OPENBLAS_LIB NAMES openblas
  PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-pthread /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE})
if(NOT LONGCTX_OPENBLAS_INCLUDE OR NOT LONGCTX_OPENBLAS_LIB)
  message(FATAL_ERROR "OpenBLAS not found (cblas.h: ${LONGCTX_OPENBLAS_INCLUDE}, libopenblas: "
                      "${LONGCTX_OPENBLAS_LIB}); install it with scripts/setup.sh (apt-get install libopenblas-dev)")
endif()
message(STATUS "OpenBLAS: ${LONGCTX_OPENBLAS_LIB} (cblas.h in ${LONGCTX_OPENBLAS_INCLUDE})")
# Loaded with dlopen at first use (linear.c says why); only the header is needed to build.
set_source_files_properties(src/model/linear.c PROPERTIES
  COMPILE_DEFINITIONS "LONGCTX_CBLAS_HEADER=<cblas.h>;LONGCTX_OPENBLAS_SO=\"${LONGCTX_OPENBLAS_LIB}\""
  INCLUDE_DIRECTORIES "${LONGCTX_OPENBLAS_INCLUDE}")
target_link_libraries(lc_model PUBLIC ${CMAKE_DL_LIBS})
list(APPEND LONGCTX_LINK_LIBS ${CMAKE_DL_LIBS}) # for the installed archive
# oneDNN (Debian libdnnl-dev) for bf16 GEMMs: also loaded with dlopen (gemm_bf16.c); without
# its header the model keeps sgemm on bf16-rounded operands.
find_path(LONGCTX_DNNL_INCLUDE NAMES oneapi/dnnl/dnnl.h)
if(LONGCTX_DNNL_INCLUDE)
  message(STATUS "oneDNN: bf16 GEMMs (oneapi/dnnl/dnnl.h in ${LONGCTX_DNNL_INCLUDE})")
  set_source_files_properties(src/model/gemm_bf16.c PROPERTIES COMPILE_DEFINITIONS LONGCTX_HAVE_DNNL
                              INCLUDE_DIRECTORIES "${LONGCTX_DNNL_INCLUDE}")
else()
  message(STATUS "oneDNN: not found (bf16 GEMMs take sgemm on rounded operands)")
endif()
