# GPU path of longctx: CUDA attention kernels, NVSHMEM backend, NCCL twin, GPU ring.
#
# Included by the top-level CMakeLists.txt after the CPU layers exist. Everything is
# optional: without nvcc (or with -DLONGCTX_CUDA=OFF) nothing here is built and this file says
# what it skipped. Each layer's GPU sources make their own library beside the CPU one:
# lc_attn_gpu (src/attn/cuda), lc_symm_gpu + lc_symm_nvshmem (src/symm/*.cu), lc_cp_gpu
# (src/cp/ring_gpu.cu), lc_model_gpu (src/model/cuda); longctx_gpu is all of them. The tests, the emulated ones included,
# are registered in tests/gpu/tests.cmake (LONGCTX_GPU_BUILT says whether these exist).

set(LONGCTX_GPU_SUMMARY "")
set(LONGCTX_GPU_BUILT OFF)

# The emulated GPU tests need a C++ compiler (C++20), with or without CUDA.
include(CheckLanguage)
check_language(CXX)
if(CMAKE_CXX_COMPILER)
  enable_language(CXX)
else()
  message(STATUS "longctx GPU: no C++ compiler, the emulated GPU tests are skipped")
endif()

if(NOT LONGCTX_CUDA)
  message(STATUS "longctx GPU: skipped (LONGCTX_CUDA=OFF)")
  return()
endif()
# The emulated GPU tests (tests/gpu/tests.cmake) run the kernels' source on CPU threads:
# they need a C++20 host compiler and the CUDA headers only.
find_package(CUDAToolkit QUIET)

if(LONGCTX_SANITIZE OR LONGCTX_TSAN)
  # sanitizers do not reach device code, and their link flags break nvcc's device link;
  # the emulated GPU tests still run under them
  message(STATUS "longctx GPU: CUDA parts skipped in sanitizer builds (emulated GPU tests still built)")
  return()
endif()

if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  # SASS for A100 (sm_80) and H100/H200 (sm_90), no PTX: halves nvcc time and nothing is
  # JIT-compiled at start on those cards.
  set(CMAKE_CUDA_ARCHITECTURES "80-real;90-real")
endif()
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  message(STATUS "longctx GPU: skipped (no CUDA compiler found; set CUDACXX or put nvcc on PATH)")
  return()
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)

# ---- NCCL: beside the CUDA toolkit, a system install, or the pip wheel nvidia-nccl-cu13
# (which ships only libnccl.so.2) ----
# Where a pip wheel's package lives, asked of python3 on PATH and of the project venv:
# nvidia.* are namespace packages, so __path__ (not __file__) names the folder.
find_program(LONGCTX_PYTHON3 python3)
set(_longctx_pythons ${LONGCTX_PYTHON3})
if(EXISTS ${CMAKE_SOURCE_DIR}/.venv/bin/python3)
  list(APPEND _longctx_pythons ${CMAKE_SOURCE_DIR}/.venv/bin/python3)
endif()
function(longctx_wheel_dir module out)
  set(dirs "")
  foreach(py ${_longctx_pythons})
    execute_process(COMMAND ${py} -c "import ${module} as m; print(list(m.__path__)[0])"
                    OUTPUT_VARIABLE d OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
    if(rc EQUAL 0 AND d)
      list(APPEND dirs ${d})
    endif()
  endforeach()
  set(${out} "${dirs}" PARENT_SCOPE)
endfunction()
longctx_wheel_dir(nvidia.nccl _nccl_py)
find_path(LONGCTX_NCCL_INCLUDE nccl.h PATH_SUFFIXES include
  HINTS ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_ROOT}/include /usr/local/include /usr/include
        ${_nccl_py})
find_library(LONGCTX_NCCL_LIB nccl
  HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib ${CUDAToolkit_LIBRARY_ROOT}/lib64
        /usr/local/lib /usr/lib/x86_64-linux-gnu)
if(NOT LONGCTX_NCCL_LIB AND _nccl_py)
  find_file(LONGCTX_NCCL_LIB libnccl.so.2 HINTS ${_nccl_py} PATH_SUFFIXES lib NO_DEFAULT_PATH)
endif()
if(LONGCTX_NCCL_INCLUDE AND LONGCTX_NCCL_LIB)
  set(LONGCTX_HAVE_NCCL ON)
else()
  set(LONGCTX_HAVE_NCCL OFF)
endif()

# ---- NVSHMEM: $NVSHMEM_HOME / -DNVSHMEM_HOME, else the pip wheel nvidia-nvshmem-cu13 ----
set(NVSHMEM_HOME "$ENV{NVSHMEM_HOME}" CACHE PATH "NVSHMEM install or unpacked wheel (nvidia/nvshmem)")
set(_nvshmem_hints "")
if(NVSHMEM_HOME)
  list(APPEND _nvshmem_hints ${NVSHMEM_HOME} ${NVSHMEM_HOME}/nvidia/nvshmem)
endif()
list(APPEND _nvshmem_hints ${CMAKE_SOURCE_DIR}/.nvshmem ${CMAKE_SOURCE_DIR}/.nvshmem/nvidia/nvshmem)
longctx_wheel_dir(nvidia.nvshmem _nvshmem_py)
list(APPEND _nvshmem_hints ${_nvshmem_py})
find_path(LONGCTX_NVSHMEM_INCLUDE nvshmem.h HINTS ${_nvshmem_hints} PATH_SUFFIXES include NO_DEFAULT_PATH)
find_file(LONGCTX_NVSHMEM_HOST_LIB libnvshmem_host.so.3 HINTS ${_nvshmem_hints} PATH_SUFFIXES lib lib64 NO_DEFAULT_PATH)
find_file(LONGCTX_NVSHMEM_DEVICE_LIB libnvshmem_device.a HINTS ${_nvshmem_hints} PATH_SUFFIXES lib lib64 NO_DEFAULT_PATH)
if(LONGCTX_NVSHMEM_INCLUDE AND LONGCTX_NVSHMEM_HOST_LIB AND LONGCTX_NVSHMEM_DEVICE_LIB)
  set(LONGCTX_HAVE_NVSHMEM ON)
  get_filename_component(LONGCTX_NVSHMEM_LIBDIR ${LONGCTX_NVSHMEM_HOST_LIB} DIRECTORY)
else()
  set(LONGCTX_HAVE_NVSHMEM OFF)
endif()

# ---- the NVSHMEM backend (symm): relocatable device code, device-linked against
# libnvshmem_device (whose host half holds nvshmemi_init_thread). Kept apart so the attention
# kernels are compiled whole-program, without -rdc.
add_library(lc_symm_nvshmem STATIC ${CMAKE_SOURCE_DIR}/src/symm/nvshmem.cu)
target_include_directories(lc_symm_nvshmem PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(lc_symm_nvshmem PUBLIC CUDA::cudart)
add_dependencies(lc_symm_nvshmem lc_layer_check)
if(LONGCTX_HAVE_NVSHMEM)
  target_compile_definitions(lc_symm_nvshmem PRIVATE LONGCTX_HAVE_NVSHMEM=1)
  target_include_directories(lc_symm_nvshmem SYSTEM PRIVATE ${LONGCTX_NVSHMEM_INCLUDE})
  set_target_properties(lc_symm_nvshmem PROPERTIES CUDA_SEPARABLE_COMPILATION ON
                        CUDA_RESOLVE_DEVICE_SYMBOLS ON POSITION_INDEPENDENT_CODE ON)
  target_link_libraries(lc_symm_nvshmem PUBLIC ${LONGCTX_NVSHMEM_DEVICE_LIB} ${LONGCTX_NVSHMEM_HOST_LIB}
                        CUDA::cuda_driver dl rt)
endif()

# The Hopper forward kernel: wgmma, TMA and setmaxnreg exist on sm_90a alone, so this one
# file is built for that target only (attn_select.cu runs it on compute capability 9.0).
add_library(lc_attn_sm90 OBJECT ${CMAKE_SOURCE_DIR}/src/attn/cuda/attn_fwd_sm90.cu)
set_target_properties(lc_attn_sm90 PROPERTIES CUDA_ARCHITECTURES 90a-real POSITION_INDEPENDENT_CODE ON)
target_include_directories(lc_attn_sm90 PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/src/attn/cuda
                           ${CMAKE_SOURCE_DIR}/src/attn/cuda/arch)
target_compile_options(lc_attn_sm90 PRIVATE -O3 -Xcompiler=-Wall,-Wextra,-Wno-unused-parameter)
add_dependencies(lc_attn_sm90 lc_layer_check)

# ---- the cuDNN attention engine: the header-only cuDNN frontend ($CUDNN_FRONTEND_HOME, then
# .cudnn-frontend/ made by scripts/fetch-cudnn-frontend.sh, then the installed Python package
# nvidia-cudnn-frontend) and cuDNN 9 itself (beside the CUDA toolkit, then the pip wheel
# nvidia-cudnn-cu13). Absent either, the engine is compiled out and asking for it gives
# LC_ERR_UNSUPPORTED with the reason; -DLONGCTX_CUDNN=OFF compiles it out on purpose (the
# frontend costs about a minute of compile time).
option(LONGCTX_CUDNN "build the cuDNN attention engine when cuDNN and its frontend are found" ON)
set(CUDNN_FRONTEND_HOME "$ENV{CUDNN_FRONTEND_HOME}" CACHE PATH "folder holding include/cudnn_frontend.h")
set(LONGCTX_HAVE_CUDNN OFF)
set(LONGCTX_CUDNN_WHY "")
if(LONGCTX_CUDNN)
  set(_fe_hints "")
  if(CUDNN_FRONTEND_HOME)
    list(APPEND _fe_hints ${CUDNN_FRONTEND_HOME})
  endif()
  list(APPEND _fe_hints ${CMAKE_SOURCE_DIR}/.cudnn-frontend)
  foreach(py ${_longctx_pythons})
    # the wheel installs include/ beside the cudnn package (site-packages/include)
    execute_process(COMMAND ${py} -c "import cudnn, os; print(os.path.dirname(os.path.dirname(cudnn.__file__)))"
                    OUTPUT_VARIABLE d OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
    if(rc EQUAL 0 AND d)
      list(APPEND _fe_hints ${d} ${d}/cudnn)
    endif()
  endforeach()
  find_path(LONGCTX_CUDNN_FRONTEND_INCLUDE cudnn_frontend.h HINTS ${_fe_hints} PATH_SUFFIXES include NO_DEFAULT_PATH)
  longctx_wheel_dir(nvidia.cudnn _cudnn_py)
  find_path(LONGCTX_CUDNN_INCLUDE cudnn.h
    HINTS ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_ROOT}/include /usr/include /usr/local/include ${_cudnn_py}
    PATH_SUFFIXES include)
  find_library(LONGCTX_CUDNN_LIB cudnn
    HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib ${CUDAToolkit_LIBRARY_ROOT}/lib64
          /usr/lib/x86_64-linux-gnu)
  if(NOT LONGCTX_CUDNN_LIB AND _cudnn_py)
    find_file(LONGCTX_CUDNN_LIB libcudnn.so.9 HINTS ${_cudnn_py} PATH_SUFFIXES lib NO_DEFAULT_PATH)
  endif()
  if(NOT LONGCTX_CUDNN_FRONTEND_INCLUDE)
    set(LONGCTX_CUDNN_WHY "no cuDNN frontend (scripts/fetch-cudnn-frontend.sh, or CUDNN_FRONTEND_HOME)")
  elseif(NOT LONGCTX_CUDNN_INCLUDE OR NOT LONGCTX_CUDNN_LIB)
    set(LONGCTX_CUDNN_WHY "no cuDNN 9 (cudnn.h and libcudnn beside CUDA, or pip install nvidia-cudnn-cu13)")
  elseif(NOT CMAKE_CXX_COMPILER)
    set(LONGCTX_CUDNN_WHY "no C++ compiler")
  else()
    set(LONGCTX_HAVE_CUDNN ON)
    get_filename_component(LONGCTX_CUDNN_LIBDIR ${LONGCTX_CUDNN_LIB} DIRECTORY)
  endif()
else()
  set(LONGCTX_CUDNN_WHY "LONGCTX_CUDNN=OFF")
endif()

# The flags every GPU library of ours compiles with.
function(longctx_gpu_flags t)
  target_compile_options(${t} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-O3 -Xcompiler=-Wall,-Wextra,-Wno-unused-parameter>)
  target_compile_options(${t} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-O2 -Wall -Wextra>)
  # src/attn/cuda/arch: the real architecture header (gpu_arch.h); the emulated builds name
  # their own folder instead
  target_include_directories(${t} PUBLIC ${CMAKE_SOURCE_DIR}/include PRIVATE ${CMAKE_SOURCE_DIR}/src
                             ${CMAKE_SOURCE_DIR}/src/attn/cuda ${CMAKE_SOURCE_DIR}/src/attn/cuda/arch)
  add_dependencies(${t} lc_layer_check)
endfunction()

# attn: the kernels, their selection and the cuDNN engine.
add_library(lc_attn_gpu STATIC
  ${CMAKE_SOURCE_DIR}/src/attn/cuda/cudnn_engine.cpp
  ${CMAKE_SOURCE_DIR}/src/attn/cuda/cudnn_kernels.cu
  ${CMAKE_SOURCE_DIR}/src/attn/cuda/attn_api.cu
  ${CMAKE_SOURCE_DIR}/src/attn/cuda/attn_iface.cu
  ${CMAKE_SOURCE_DIR}/src/attn/cuda/attn_select.cu
  $<TARGET_OBJECTS:lc_attn_sm90>
  ${CMAKE_SOURCE_DIR}/src/attn/cuda/attn_fwd.cu
  ${CMAKE_SOURCE_DIR}/src/attn/cuda/attn_bwd.cu
  ${CMAKE_SOURCE_DIR}/src/attn/cuda/attn_ref32.cu)
longctx_gpu_flags(lc_attn_gpu)
target_link_libraries(lc_attn_gpu PUBLIC lc_attn CUDA::cudart)
set_source_files_properties(${CMAKE_SOURCE_DIR}/src/attn/cuda/cudnn_engine.cpp PROPERTIES
                            INCLUDE_DIRECTORIES "${CUDAToolkit_INCLUDE_DIRS}")
if(LONGCTX_HAVE_CUDNN)
  # the frontend's headers are not ours to warn about
  set_source_files_properties(${CMAKE_SOURCE_DIR}/src/attn/cuda/cudnn_engine.cpp PROPERTIES
    COMPILE_DEFINITIONS LONGCTX_HAVE_CUDNN=1
    COMPILE_OPTIONS "-isystem;${LONGCTX_CUDNN_FRONTEND_INCLUDE};-isystem;${LONGCTX_CUDNN_INCLUDE};-std=c++17"
    INCLUDE_DIRECTORIES "${CUDAToolkit_INCLUDE_DIRS}")
  # the frontend also carries its own NVRTC-compiled engines (it calls nvrtc* and cu*)
  target_link_libraries(lc_attn_gpu PUBLIC ${LONGCTX_CUDNN_LIB} CUDA::nvrtc CUDA::cuda_driver)
  # libcudnn loads its sub-libraries (graph, engines) from the same folder at run time
  set_property(TARGET lc_attn_gpu APPEND PROPERTY INTERFACE_LINK_OPTIONS "-Wl,-rpath,${LONGCTX_CUDNN_LIBDIR}")
else()
  # the reason, for the LC_ERR_UNSUPPORTED message of engine=cudnn
  set_source_files_properties(${CMAKE_SOURCE_DIR}/src/attn/cuda/cudnn_engine.cpp PROPERTIES
    COMPILE_DEFINITIONS "LONGCTX_CUDNN_WHY=\"${LONGCTX_CUDNN_WHY}\"")
endif()

# symm: the NCCL twin of the NVSHMEM backend. Both report CUDA errors through common's
# helpers (common/gpu_err.h), so they link nothing above symm.
add_library(lc_symm_gpu STATIC ${CMAKE_SOURCE_DIR}/src/symm/nccl_permute.cu)
longctx_gpu_flags(lc_symm_gpu)
target_link_libraries(lc_symm_gpu PUBLIC lc_symm lc_symm_nvshmem CUDA::cudart)
# INTERFACE: for its users' link only, so the NVSHMEM device link sees its own objects alone
target_link_libraries(lc_symm_nvshmem INTERFACE lc_symm)
if(LONGCTX_HAVE_NCCL)
  target_compile_definitions(lc_symm_gpu PRIVATE LONGCTX_HAVE_NCCL=1)
  target_include_directories(lc_symm_gpu SYSTEM PRIVATE ${LONGCTX_NCCL_INCLUDE})
  target_link_libraries(lc_symm_gpu PUBLIC ${LONGCTX_NCCL_LIB})
endif()

# cp: ring attention on the GPU, over the kernels and the NVSHMEM/NCCL backends.
add_library(lc_cp_gpu STATIC ${CMAKE_SOURCE_DIR}/src/cp/ring_gpu.cu)
longctx_gpu_flags(lc_cp_gpu)
target_include_directories(lc_cp_gpu PRIVATE ${CMAKE_SOURCE_DIR}/src/cp)
target_link_libraries(lc_cp_gpu PUBLIC lc_cp lc_attn_gpu lc_symm_gpu CUDA::cudart)

# model: the decoder's memory-bound layers (embedding, RMSNorm, RoPE, SwiGLU, cross-entropy,
# AdamW, the gradient norm), the GEMM seam (cuBLASLt) and the GPU's device table, on which
# step.c runs the model (lc_model_run.device; include/longctx/model_gpu.h)
add_library(lc_model_gpu STATIC ${CMAKE_SOURCE_DIR}/src/model/cuda/layers_gpu.cu
            ${CMAKE_SOURCE_DIR}/src/model/cuda/gemm_gpu.cu ${CMAKE_SOURCE_DIR}/src/model/cuda/device_gpu.cu)
longctx_gpu_flags(lc_model_gpu)
# the device table (device_gpu.cu) runs attention on the GPU ring (cp, below model)
target_link_libraries(lc_model_gpu PUBLIC lc_model lc_cp_gpu CUDA::cudart CUDA::cublasLt)

# train: `longctx train --device cuda`'s GPU part, a plugin the binary loads when asked
# (include/longctx/train_cuda.h): the GPU world, the model's device over it, the GPU's report.
# Beside the binary, where the trainer looks for it.
add_library(longctx_cuda MODULE ${CMAKE_SOURCE_DIR}/src/train/cuda/plugin.cu)
longctx_gpu_flags(longctx_cuda)
target_link_libraries(longctx_cuda PRIVATE lc_model_gpu)
set_target_properties(longctx_cuda PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
install(TARGETS longctx_cuda LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})

# What the GPU tests and benchmarks link: every GPU library.
add_library(longctx_gpu INTERFACE)
target_link_libraries(longctx_gpu INTERFACE lc_cp_gpu lc_model_gpu)

# NVSHMEM loads its bootstrap and transport plugins by soname: they must be on the path.
set(LONGCTX_GPU_ENV "")
set(_gpu_ld "")
if(LONGCTX_HAVE_NVSHMEM)
  set(_gpu_ld "${LONGCTX_NVSHMEM_LIBDIR}:")
endif()
if(LONGCTX_HAVE_CUDNN)
  set(_gpu_ld "${_gpu_ld}${LONGCTX_CUDNN_LIBDIR}:")
endif()
if(_gpu_ld)
  set(LONGCTX_GPU_ENV "LD_LIBRARY_PATH=${_gpu_ld}$ENV{LD_LIBRARY_PATH}")
endif()

# The GPU benchmark (bench/gpu; scripts/gpu-check runs it).
add_executable(longctx-gpu-bench ${CMAKE_SOURCE_DIR}/bench/gpu/gpu_bench.c
               ${CMAKE_SOURCE_DIR}/tests/gpu/gpu_test_util.c)
target_include_directories(longctx-gpu-bench PRIVATE ${CMAKE_SOURCE_DIR}/tests/gpu)
target_link_libraries(longctx-gpu-bench PRIVATE longctx_gpu longctx_lib m)
set_target_properties(longctx-gpu-bench PROPERTIES LINKER_LANGUAGE CUDA)

set(LONGCTX_GPU_BUILT ON)
message(STATUS "longctx GPU: building CUDA kernels for ${CMAKE_CUDA_ARCHITECTURES} "
               "(nvcc ${CMAKE_CUDA_COMPILER_VERSION}); NCCL: ${LONGCTX_HAVE_NCCL} ${LONGCTX_NCCL_LIB}; "
               "NVSHMEM: ${LONGCTX_HAVE_NVSHMEM} ${LONGCTX_NVSHMEM_LIBDIR}")
if(LONGCTX_HAVE_CUDNN)
  message(STATUS "longctx GPU: cuDNN engine: ON (frontend ${LONGCTX_CUDNN_FRONTEND_INCLUDE}; cuDNN ${LONGCTX_CUDNN_LIB})")
else()
  message(STATUS "longctx GPU: cuDNN engine: OFF (${LONGCTX_CUDNN_WHY}); engine=cudnn reports unsupported")
endif()
if(NOT LONGCTX_HAVE_NVSHMEM)
  message(STATUS "longctx GPU: NVSHMEM not found (pip install nvidia-nvshmem-cu13, or NVSHMEM_HOME=<unpacked wheel>/nvidia/nvshmem); the ring tests will skip")
endif()
