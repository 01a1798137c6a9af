# Model tests (label model): per-layer gradient checks, the whole model against a float64
# reference, CP equivalence over layouts and lowerings, bf16, errors, peak memory vs CP.
add_executable(test_model_layers ${CMAKE_CURRENT_LIST_DIR}/test_layers.c)
target_link_libraries(test_model_layers PRIVATE longctx_lib)
target_include_directories(test_model_layers PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/tests ${CMAKE_SOURCE_DIR}/src)

foreach(_sec embed rmsnorm rope swiglu linear ce attn)
  add_test(NAME model_layer_${_sec} COMMAND test_model_layers ${_sec})
  set_tests_properties(model_layer_${_sec} PROPERTIES LABELS model TIMEOUT 120)
endforeach()
