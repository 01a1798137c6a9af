# Model tests (label model): per-layer gradient checks, the whole model against a float64
# reference, CP equivalence over layouts and lowerings, bf16, errors, peak memory vs CP.
add_executable(test_model_layers ${CMAKE_CURRENT_LIST_DIR}/test_layers.c)
target_link_libraries(test_model_layers PRIVATE lc_model)
target_include_directories(test_model_layers PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/tests ${CMAKE_SOURCE_DIR}/src)

foreach(_sec embed rmsnorm rope swiglu linear ce attn)
  add_test(NAME model_layer_${_sec} COMMAND test_model_layers ${_sec})
  set_tests_properties(model_layer_${_sec} PROPERTIES LABELS model TIMEOUT 120)
endforeach()

add_executable(test_model ${CMAKE_CURRENT_LIST_DIR}/test_model.c)
target_link_libraries(test_model PRIVATE lc_model)
target_include_directories(test_model PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/tests ${CMAKE_SOURCE_DIR}/src ${CMAKE_CURRENT_LIST_DIR}/..)

function(lc_model_test name pes)
  add_test(NAME ${name} COMMAND $<TARGET_FILE:longctx> launch -n ${pes} -- $<TARGET_FILE:test_model> ${ARGN})
  set_tests_properties(${name} PROPERTIES LABELS model TIMEOUT 300)
endfunction()
add_test(NAME model_ref COMMAND test_model ref)
add_test(NAME model_bf16 COMMAND test_model bf16)
add_test(NAME model_errors COMMAND test_model errors)
# bf16 with the other GEMM path as well: sgemm on rounded operands (every CPU), and oneDNN's
# bf16 GEMMs against sgemm form by form (CPUs with native bf16 kernels; 77 elsewhere)
add_test(NAME model_bf16_sgemm COMMAND test_model bf16)
set_tests_properties(model_bf16_sgemm PROPERTIES ENVIRONMENT "LONGCTX_BF16_GEMM=sgemm")
add_test(NAME model_gemm16 COMMAND test_model gemm16)
set_tests_properties(model_gemm16 PROPERTIES SKIP_RETURN_CODE 77)
set_tests_properties(model_ref model_bf16 model_errors model_bf16_sgemm model_gemm16 PROPERTIES LABELS model TIMEOUT 120)
foreach(_p 1 2 3 4)
  lc_model_test(model_cp_p${_p} ${_p} cp)
endforeach()
lc_model_test(model_errors_p3 3 errors)
# several 64-row attention tiles per PE
lc_model_test(model_cp_p2_s300 2 cp 300)
lc_model_test(model_cp_p3_s300 3 cp 300)
add_test(NAME model_mem_cp COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/mem.sh $<TARGET_FILE:longctx> $<TARGET_FILE:test_model> 4096)
set_tests_properties(model_mem_cp PROPERTIES LABELS model TIMEOUT 300)

# head_dim 128, one KV head, odd vocab and ffn
lc_model_test(model_cp_p3_wide 3 cp 150 wide)
add_test(NAME model_ref_wide COMMAND test_model ref wide)
set_tests_properties(model_ref_wide PROPERTIES LABELS model TIMEOUT 120)
# tensor parallelism (CP x TP, TP innermost) against one PE: full gathered gradients, replicas,
# layout-independent init; TP 4 > 2 KV heads replicates them; sp = sequence parallelism
lc_model_test(model_tp_c1t2 2 tp 1 2 45)
lc_model_test(model_tp_c2t2 4 tp 2 2 45)
lc_model_test(model_tp_c1t4 4 tp 1 4 45)
lc_model_test(model_tp_c1t2_sp 2 tp 1 2 45 sp)
lc_model_test(model_tp_c2t2_sp 4 tp 2 2 45 sp)
lc_model_test(model_tp_c1t4_sp 4 tp 1 4 45 sp)
lc_model_test(model_tp_c1t2_wide 2 tp 1 2 150 - wide)
lc_model_test(model_tp_errors_p2 2 tp_errors)
lc_model_test(model_tp_errors_p4 4 tp_errors)

# Steady state under TP and SP: no allocation, no thread start per step (counted).
add_executable(test_model_steady ${CMAKE_CURRENT_LIST_DIR}/test_model_steady.c
               ${CMAKE_CURRENT_LIST_DIR}/../common/alloc_count.c)
target_link_libraries(test_model_steady PRIVATE lc_model ${CMAKE_DL_LIBS})
target_include_directories(test_model_steady PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/tests)
add_test(NAME model_steady_c2t2 COMMAND $<TARGET_FILE:longctx> launch -n 4 -- $<TARGET_FILE:test_model_steady>)
set_tests_properties(model_steady_c2t2 PROPERTIES LABELS model TIMEOUT 120)
