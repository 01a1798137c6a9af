longctx_layer(attn
  src/attn/common.c
  src/attn/bf16_choice.c
  src/attn/cpu_amx.c
  src/attn/threads.c
  src/attn/ref.c
  src/attn/driver.c
  src/attn/tiles.c
  src/attn/scalar.c)
# The hot loops want -O3 (full unrolling of the register-blocked micro-kernels).
set_source_files_properties(src/attn/driver.c src/attn/scalar.c src/attn/tiles.c
  PROPERTIES COMPILE_OPTIONS "-O3")
# Only these two files get ISA flags, so the rest of the library stays portable; their
# code runs only after cpuid says the CPU has the features.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|i.86")
  target_sources(lc_attn PRIVATE src/attn/avx2.c src/attn/avx512.c)
  set_source_files_properties(src/attn/avx2.c
    PROPERTIES COMPILE_OPTIONS "-O3;-mavx2;-mfma")
  set_source_files_properties(src/attn/avx512.c
    PROPERTIES COMPILE_OPTIONS "-O3;-mavx512f;-mavx512bw;-mavx512vl;-mfma")
endif()
# Timing points in the tile loops (src/attn/parts.h; bench/attn-parts builds them on its own
# copy of driver.c): this puts them in the library itself, which then prints its parts at exit.
option(LONGCTX_ATTN_PARTS "Build the attention driver's timing points (bench/attn-parts) into the library" OFF)
if(LONGCTX_ATTN_PARTS)
  set_property(SOURCE src/attn/driver.c APPEND PROPERTY COMPILE_DEFINITIONS LONGCTX_ATTN_PARTS)
endif()
