# Attention kernel tests (label attn): about 20 s in Release. LONGCTX_TEST_QUICK=1 (set by
# scripts/test.sh for the sanitizer pass) halves the sweep: ~35 s under ASan+UBSan Debug.
# ThreadSanitizer is ~10x slower, so it always runs a 1/8 sample.
add_executable(test_attn ${CMAKE_CURRENT_LIST_DIR}/test_attn.c)
target_link_libraries(test_attn PRIVATE longctx_lib)
target_include_directories(test_attn PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src)
set(_attn_env "")
if(LONGCTX_TSAN)
  set(_attn_env "LONGCTX_TEST_QUICK=8")
endif()
foreach(_sec basic fwd bwd big threads)
  add_test(NAME attn_${_sec} COMMAND test_attn ${_sec})
  set_tests_properties(attn_${_sec} PROPERTIES LABELS attn TIMEOUT 600)
  if(_attn_env)
    set_tests_properties(attn_${_sec} PROPERTIES ENVIRONMENT "${_attn_env}")
  endif()
endforeach()
