# GPU tests: LABELS gpu. Without a device they print "SKIP: ... no CUDA device" and exit 77,
# which SKIP_RETURN_CODE turns into a skip (never a pass).
set(_gpu_env ENVIRONMENT "${LONGCTX_GPU_ENV}")
add_test(NAME gpu_attn COMMAND test_gpu_attn)
add_test(NAME gpu_permute COMMAND test_gpu_permute)
add_test(NAME gpu_ring COMMAND test_gpu_ring 4)
foreach(t gpu_attn gpu_permute gpu_ring)
  set_tests_properties(${t} PROPERTIES LABELS gpu SKIP_RETURN_CODE 77 TIMEOUT 600)
  if(LONGCTX_GPU_ENV)
    set_tests_properties(${t} PROPERTIES ENVIRONMENT "${LONGCTX_GPU_ENV}")
  endif()
endforeach()
