# The GPU tests (label gpu), next to the code they test in src/gpu.cmake.
#
# On every machine: the logic the kernels share with the host, and the kernels' and the GPU
# ring's own source over CPU stand-ins (label "gpu;cpu").
# The mask / tile-classification / layout logic is plain C shared with the kernels: test it
# on every machine.
add_executable(test_gpu_logic ${CMAKE_SOURCE_DIR}/tests/gpu/test_gpu_logic.c)
target_include_directories(test_gpu_logic PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(test_gpu_logic PRIVATE longctx_lib m)
add_test(NAME gpu_logic COMMAND test_gpu_logic)
set_tests_properties(gpu_logic PROPERTIES LABELS "gpu;cpu" TIMEOUT 120)

# the cuDNN engine's host logic (block -> pieces rule, engine names, the partial merge)
add_executable(test_gpu_cudnn_plan ${CMAKE_SOURCE_DIR}/tests/gpu/test_gpu_cudnn_plan.c)
target_include_directories(test_gpu_cudnn_plan PRIVATE ${CMAKE_SOURCE_DIR}/src/attn/cuda ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(test_gpu_cudnn_plan PRIVATE longctx_lib m)
add_test(NAME gpu_cudnn_plan COMMAND test_gpu_cudnn_plan)
set_tests_properties(gpu_cudnn_plan PROPERTIES LABELS "gpu;cpu" TIMEOUT 120)

# test_gpu_attn's own call sequence over a CPU stand-in of the device with the device build's
# argument rules (attn_check.h): catches a sequence the GPU would refuse, on every machine.
add_executable(test_gpu_attn_cpu ${CMAKE_SOURCE_DIR}/tests/gpu/test_gpu_attn.c
               ${CMAKE_SOURCE_DIR}/tests/gpu/gpu_test_util.c ${CMAKE_SOURCE_DIR}/tests/gpu/emu/gpu_attn_standin.c)
target_compile_definitions(test_gpu_attn_cpu PRIVATE GT_CPU_STANDIN)
target_include_directories(test_gpu_attn_cpu PRIVATE ${CMAKE_SOURCE_DIR}/tests/gpu
                           ${CMAKE_SOURCE_DIR}/src/attn/cuda ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(test_gpu_attn_cpu PRIVATE longctx_lib m)
set(_gpu_attn_cpu_args "")
if(LONGCTX_SANITIZE OR LONGCTX_TSAN)
  set(_gpu_attn_cpu_args quick) # the sampled sweep under the sanitizers (the full one takes 75 s there)
endif()
add_test(NAME gpu_attn_cpu COMMAND test_gpu_attn_cpu ${_gpu_attn_cpu_args})
set_tests_properties(gpu_attn_cpu PROPERTIES LABELS "gpu;cpu" TIMEOUT 300)
# the forward-only sequence that judges the sm90 forward on a device (gpu_attn_sm90_fwd*)
add_test(NAME gpu_attn_cpu_fwd COMMAND test_gpu_attn_cpu quick fwd)
set_tests_properties(gpu_attn_cpu_fwd PROPERTIES LABELS "gpu;cpu" TIMEOUT 300)

# The GPU ring's host code over a CPU stand-in of CUDA streams and NVSHMEM (tests/gpu/emu):
# its signal/credit protocol, dK/dV travel and race checks, with no CUDA at all.
if(CMAKE_CXX_COMPILER)
  add_executable(test_ring_emu ${CMAKE_SOURCE_DIR}/tests/gpu/emu/test_ring_emu.cc)
  set_target_properties(test_ring_emu PROPERTIES CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
  # the architecture (gpu_arch.h) and CUDA runtime of this build are the stand-ins in
  # tests/gpu/emu/ring: first on the path, so the ring's real source takes them
  target_include_directories(test_ring_emu PRIVATE ${CMAKE_SOURCE_DIR}/tests/gpu/emu/ring ${CMAKE_SOURCE_DIR}/src
                             ${CMAKE_SOURCE_DIR}/src/attn/cuda ${CMAKE_SOURCE_DIR}/src/cp ${CMAKE_SOURCE_DIR}/include)
  target_compile_options(test_ring_emu PRIVATE -O1 -Wno-unused-parameter)
  target_link_libraries(test_ring_emu PRIVATE longctx_lib Threads::Threads m)
  add_test(NAME gpu_ring_emu COMMAND test_ring_emu)
  set_tests_properties(gpu_ring_emu PROPERTIES LABELS "gpu;cpu" TIMEOUT 300)
endif()

# The kernels' own source run on CPU threads (tests/gpu/emu): checks fragment layouts, tile
# lists, masks and accumulation where there is no GPU. Needs a C++20 host compiler and the
# CUDA headers only (src/gpu.cmake looks for them when LONGCTX_CUDA is on).
if(LONGCTX_CUDA AND CMAKE_CXX_COMPILER AND CUDAToolkit_FOUND)
  add_executable(test_gpu_emu ${CMAKE_SOURCE_DIR}/tests/gpu/emu/test_gpu_emu.cc)
  set_target_properties(test_gpu_emu PROPERTIES CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
  # the architecture header of this build is the emulator's (tests/gpu/emu/gpu_arch.h)
  target_include_directories(test_gpu_emu PRIVATE ${CMAKE_SOURCE_DIR}/tests/gpu/emu ${CMAKE_SOURCE_DIR}/src
                             ${CMAKE_SOURCE_DIR}/src/attn/cuda ${CMAKE_SOURCE_DIR}/include)
  target_include_directories(test_gpu_emu SYSTEM PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
  target_compile_options(test_gpu_emu PRIVATE -O2 -Wno-unknown-pragmas)
  target_link_libraries(test_gpu_emu PRIVATE longctx_lib Threads::Threads m)
  add_test(NAME gpu_emu COMMAND test_gpu_emu)
  # A test of sources built for the CPU emulation of CUDA (cuda_emu.h): C++20, the CUDA headers
  # for their types only, the library for the CPU side it is compared with.
  function(lc_gpu_emu_exe name src)
    add_executable(${name} ${CMAKE_SOURCE_DIR}/tests/gpu/emu/${src})
    set_target_properties(${name} PROPERTIES CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/gpu/emu ${CMAKE_SOURCE_DIR}/tests/gpu
                               ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include)
    target_include_directories(${name} SYSTEM PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
    target_compile_options(${name} PRIVATE -O2 -Wno-unknown-pragmas -Wno-attributes)
    target_link_libraries(${name} PRIVATE longctx_lib Threads::Threads m)
  endfunction()
  # the model's memory-bound kernels (src/model/cuda/layers_gpu.cu) against the CPU layers
  lc_gpu_emu_exe(test_model_emu test_model_emu.cc)
  add_test(NAME gpu_model_emu COMMAND test_model_emu)
  set_tests_properties(gpu_model_emu PROPERTIES LABELS "gpu;cpu;model" TIMEOUT 300)
  # the GPU's fp32 reference attention kernels against the float64 oracle
  lc_gpu_emu_exe(test_ref32_emu test_ref32_emu.cc)
  add_test(NAME gpu_ref32_emu COMMAND test_ref32_emu)
  set_tests_properties(gpu_ref32_emu PROPERTIES LABELS "gpu;cpu;attn" TIMEOUT 120)
  # the model's whole step on the GPU's device table (src/model/cuda/device_gpu.cu) against the
  # host's, on 1 and 2 PEs
  lc_gpu_emu_exe(test_device_emu test_device_emu.cc)
  add_test(NAME gpu_device_emu COMMAND test_device_emu)
  add_test(NAME gpu_device_emu_p2 COMMAND $<TARGET_FILE:longctx> launch -n 2 -- $<TARGET_FILE:test_device_emu>)
  set_tests_properties(gpu_device_emu gpu_device_emu_p2 PROPERTIES LABELS "gpu;cpu;model" TIMEOUT 300)
  # the trainer's GPU plugin over the emulated device, loaded by `longctx train --device cuda`
  # (LONGCTX_CUDA_PLUGIN); its symbols of the library come from the binary (ENABLE_EXPORTS)
  add_library(longctx_cuda_emu MODULE ${CMAKE_SOURCE_DIR}/tests/gpu/emu/plugin_emu.cc)
  set_target_properties(longctx_cuda_emu PROPERTIES CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF
                        LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  target_include_directories(longctx_cuda_emu PRIVATE ${CMAKE_SOURCE_DIR}/tests/gpu/emu ${CMAKE_SOURCE_DIR}/src
                             ${CMAKE_SOURCE_DIR}/include)
  target_include_directories(longctx_cuda_emu SYSTEM PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
  target_compile_options(longctx_cuda_emu PRIVATE -O2 -Wno-unknown-pragmas -Wno-attributes)
  target_link_libraries(longctx_cuda_emu PRIVATE Threads::Threads)
  add_dependencies(longctx_cuda_emu lc_layer_check)
  add_test(NAME train_cuda_emu COMMAND bash ${CMAKE_SOURCE_DIR}/tests/train/cuda_emu.sh $<TARGET_FILE:longctx>
           $<TARGET_FILE:train_cmp> ${CMAKE_CURRENT_BINARY_DIR}/train_data ${CMAKE_CURRENT_BINARY_DIR}/train_cuda_emu
           $<TARGET_FILE:longctx_cuda_emu>)
  set_tests_properties(train_cuda_emu PROPERTIES LABELS "gpu;cpu;train" TIMEOUT 300 FIXTURES_REQUIRED train_data)
  # bench train --device cuda over the same plugin: one JSON line per layout, on the device
  add_test(NAME bench_train_cuda_emu COMMAND bash -c "set -o pipefail; \"$1\" bench train --model tiny --seq 64 --cp 1,2 --steps 1 --device cuda --json | python3 -c 'import json, sys; rows = [json.loads(l) for l in sys.stdin]; assert len(rows) == 2 and all(r[\"device\"] == \"cuda\" and r[\"step_s\"] > 0 for r in rows), rows; print(\"PASS\", len(rows), \"rows on the device\")'" _ $<TARGET_FILE:longctx>)
  set_tests_properties(bench_train_cuda_emu PROPERTIES LABELS "gpu;cpu;bench" TIMEOUT 120
                       ENVIRONMENT "LONGCTX_CUDA_PLUGIN=$<TARGET_FILE:longctx_cuda_emu>")
  set_tests_properties(gpu_emu PROPERTIES LABELS "gpu;cpu" TIMEOUT 300)
  if(LONGCTX_SANITIZE OR LONGCTX_TSAN)
    set_tests_properties(gpu_emu PROPERTIES ENVIRONMENT "LONGCTX_TEST_QUICK=1")
  endif()
endif()

# On a device (the CUDA libraries of src/gpu.cmake were built): the kernels against the CPU
# oracle, the permute, the ring. Without a device they print "SKIP: ... no CUDA device" and
# exit 77, which SKIP_RETURN_CODE turns into a skip (never a pass).
if(NOT LONGCTX_GPU_BUILT)
  return()
endif()
# ptxas's view of the Hopper kernel, no device needed: no spills, no serialised wgmma (C7515),
# no setmaxnreg that ptxas ignored (C7508)
add_test(NAME gpu_sm90_ptxas COMMAND bash ${CMAKE_SOURCE_DIR}/tests/gpu/sm90_ptxas.sh ${CMAKE_CUDA_COMPILER}
         ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR}/tests/gpu_sm90_ptxas)
set_tests_properties(gpu_sm90_ptxas PROPERTIES LABELS "gpu;cpu" TIMEOUT 300 SKIP_RETURN_CODE 77)

set(_gpu_tests test_gpu_attn test_gpu_ring test_gpu_permute test_gpu_cudnn)
foreach(t ${_gpu_tests})
  add_executable(${t} ${CMAKE_SOURCE_DIR}/tests/gpu/${t}.c ${CMAKE_SOURCE_DIR}/tests/gpu/gpu_test_util.c)
  target_include_directories(${t} PRIVATE ${CMAKE_SOURCE_DIR}/tests/gpu ${CMAKE_SOURCE_DIR}/src/cp)
  target_link_libraries(${t} PRIVATE longctx_gpu longctx_lib m)
  set_target_properties(${t} PROPERTIES LINKER_LANGUAGE CUDA)
endforeach()

add_test(NAME gpu_attn COMMAND test_gpu_attn)
# the other compiled kernel variants, on a sampled sweep
add_test(NAME gpu_attn_fwd16_bwd4 COMMAND test_gpu_attn quick)
add_test(NAME gpu_attn_fwd32_bwd8 COMMAND test_gpu_attn quick)
# The Hopper forward kernel (skips on other cards): judged by forward-only runs, both
# compiled tile shapes, so that the verdict on it does not wait on the backward; the
# backward after its (o, lse) state is a test of its own (the backward kernel is sm_80's).
add_test(NAME gpu_attn_sm90_fwd COMMAND test_gpu_attn fwd)
add_test(NAME gpu_attn_sm90_fwd_bn64 COMMAND test_gpu_attn quick fwd)
add_test(NAME gpu_attn_sm90_bwd COMMAND test_gpu_attn quick)
add_test(NAME gpu_permute COMMAND test_gpu_permute)
# the model's memory-bound kernels at model sizes against the CPU layers
add_executable(test_gpu_model ${CMAKE_SOURCE_DIR}/tests/gpu/test_gpu_model.c ${CMAKE_SOURCE_DIR}/tests/gpu/gpu_test_util.c)
target_include_directories(test_gpu_model PRIVATE ${CMAKE_SOURCE_DIR}/tests/gpu ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_gpu_model PRIVATE longctx_gpu longctx_lib m)
set_target_properties(test_gpu_model PROPERTIES LINKER_LANGUAGE CUDA)
add_test(NAME gpu_model COMMAND test_gpu_model)
add_test(NAME gpu_ring COMMAND test_gpu_ring 4)
# the model's whole step on the GPU against the host model, on 1 and 2 PEs sharing the GPU
add_executable(test_gpu_step ${CMAKE_SOURCE_DIR}/tests/gpu/test_gpu_step.c ${CMAKE_SOURCE_DIR}/tests/gpu/gpu_test_util.c)
target_include_directories(test_gpu_step PRIVATE ${CMAKE_SOURCE_DIR}/tests/gpu ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_gpu_step PRIVATE longctx_gpu longctx_lib m)
set_target_properties(test_gpu_step PROPERTIES LINKER_LANGUAGE CUDA)
add_test(NAME gpu_step COMMAND test_gpu_step)
add_test(NAME gpu_step_p2 COMMAND $<TARGET_FILE:longctx> launch -n 2 -- $<TARGET_FILE:test_gpu_step>)
add_test(NAME gpu_step_dp2 COMMAND $<TARGET_FILE:longctx> launch -n 4 -- $<TARGET_FILE:test_gpu_step> 2)
# the cuDNN engine against the oracle; skips (77) without a GPU or without the engine
add_test(NAME gpu_cudnn COMMAND test_gpu_cudnn)
# the engine API's host logic (names, refusals), with or without a device
add_test(NAME gpu_cudnn_host COMMAND test_gpu_cudnn host)
set_tests_properties(gpu_cudnn_host PROPERTIES LABELS "gpu;cpu" TIMEOUT 60)
if(LONGCTX_GPU_ENV)
  set_tests_properties(gpu_cudnn_host PROPERTIES ENVIRONMENT "${LONGCTX_GPU_ENV}")
endif()
# the ring with its block calls on the cuDNN engine, equal to one PE on our kernels
add_test(NAME gpu_ring_cudnn COMMAND test_gpu_ring 4 cudnn)
# Each test's own bound, which is what binds (a TIMEOUT property wins over ctest --timeout):
# one stuck test must not eat a lent machine's run. The sm90 tests take seconds when the
# kernel works; a kernel whose barrier wait never completes traps after ~10 s per launch.
foreach(t gpu_attn gpu_attn_fwd16_bwd4 gpu_attn_fwd32_bwd8 gpu_attn_sm90_fwd gpu_attn_sm90_fwd_bn64 gpu_attn_sm90_bwd
          gpu_permute gpu_ring gpu_cudnn gpu_ring_cudnn gpu_model gpu_step gpu_step_p2 gpu_step_dp2)
  set(_bound 150)
  if(t MATCHES "^gpu_attn_sm90")
    set(_bound 60)
  endif()
  set_tests_properties(${t} PROPERTIES LABELS gpu SKIP_RETURN_CODE 77 TIMEOUT ${_bound})
  if(LONGCTX_GPU_ENV)
    set_tests_properties(${t} PROPERTIES ENVIRONMENT "${LONGCTX_GPU_ENV}")
  endif()
endforeach()
# NVSHMEM's world is one per process but several PEs per GPU share the device's memory and
# time slices: the tests that start PEs run one at a time under ctest -j
set_tests_properties(gpu_permute gpu_ring gpu_ring_cudnn gpu_step gpu_step_p2 gpu_step_dp2 PROPERTIES RESOURCE_LOCK longctx_pes)
set_property(TEST gpu_attn_fwd16_bwd4 APPEND PROPERTY ENVIRONMENT LONGCTX_GPU_FWD_MT=1 LONGCTX_GPU_BWD_WARPS=4)
set_property(TEST gpu_attn_fwd32_bwd8 APPEND PROPERTY ENVIRONMENT LONGCTX_GPU_FWD_MT=2 LONGCTX_GPU_BWD_WARPS=8)
# one run per forward kernel family: the sm_80 variants above pinned to it, the sm_90 ones here
foreach(t gpu_attn gpu_attn_fwd16_bwd4 gpu_attn_fwd32_bwd8)
  set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT LONGCTX_GPU_KERNEL=sm80)
endforeach()
set_property(TEST gpu_attn_sm90_fwd APPEND PROPERTY ENVIRONMENT LONGCTX_GPU_KERNEL=sm90 LONGCTX_GPU_SM90_BN=128)
set_property(TEST gpu_attn_sm90_fwd_bn64 APPEND PROPERTY ENVIRONMENT LONGCTX_GPU_KERNEL=sm90 LONGCTX_GPU_SM90_BN=64)
set_property(TEST gpu_attn_sm90_bwd APPEND PROPERTY ENVIRONMENT LONGCTX_GPU_KERNEL=sm90 LONGCTX_GPU_SM90_BN=128)
