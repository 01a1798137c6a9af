# GPU tests: LABELS gpu. Without a device they print "SKIP: ... no CUDA device" and exit 77,
# which SKIP_RETURN_CODE turns into a skip (never a pass).
add_test(NAME gpu_attn COMMAND test_gpu_attn)
# the other compiled kernel variants, on a sampled sweep
add_test(NAME gpu_attn_fwd16_bwd4 COMMAND test_gpu_attn quick)
add_test(NAME gpu_attn_fwd32_bwd8 COMMAND test_gpu_attn quick)
# the Hopper forward kernel (skips on other cards), both compiled tile shapes
add_test(NAME gpu_attn_sm90 COMMAND test_gpu_attn)
add_test(NAME gpu_attn_sm90_bn64 COMMAND test_gpu_attn quick)
add_test(NAME gpu_permute COMMAND test_gpu_permute)
add_test(NAME gpu_ring COMMAND test_gpu_ring 4)
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
foreach(t gpu_attn gpu_attn_fwd16_bwd4 gpu_attn_fwd32_bwd8 gpu_attn_sm90 gpu_attn_sm90_bn64 gpu_permute gpu_ring
          gpu_cudnn gpu_ring_cudnn)
  set_tests_properties(${t} PROPERTIES LABELS gpu SKIP_RETURN_CODE 77 TIMEOUT 600)
  if(LONGCTX_GPU_ENV)
    set_tests_properties(${t} PROPERTIES ENVIRONMENT "${LONGCTX_GPU_ENV}")
  endif()
endforeach()
set_property(TEST gpu_attn_fwd16_bwd4 APPEND PROPERTY ENVIRONMENT LONGCTX_GPU_FWD_MT=1 LONGCTX_GPU_BWD_WARPS=4)
set_property(TEST gpu_attn_fwd32_bwd8 APPEND PROPERTY ENVIRONMENT LONGCTX_GPU_FWD_MT=2 LONGCTX_GPU_BWD_WARPS=8)
# one run per forward kernel family: the sm_80 variants above pinned to it, the sm_90 ones here
foreach(t gpu_attn gpu_attn_fwd16_bwd4 gpu_attn_fwd32_bwd8)
  set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT LONGCTX_GPU_KERNEL=sm80)
endforeach()
set_property(TEST gpu_attn_sm90 APPEND PROPERTY ENVIRONMENT LONGCTX_GPU_KERNEL=sm90 LONGCTX_GPU_SM90_BN=128)
set_property(TEST gpu_attn_sm90_bn64 APPEND PROPERTY ENVIRONMENT LONGCTX_GPU_KERNEL=sm90 LONGCTX_GPU_SM90_BN=64)
