# Peers tests (label peers): our checkpoint loaded by Hugging Face transformers gives the same
# logits and loss. They need bench/peers/.venv (never in CI) and exit 77 without it.
add_executable(test_hf_logits ${CMAKE_CURRENT_LIST_DIR}/test_hf_logits.c)
target_link_libraries(test_hf_logits PRIVATE longctx_lib)
target_include_directories(test_hf_logits PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src)
foreach(_p 1 2 3)
  add_test(NAME peers_hf_logits_p${_p} COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/hf_logits.sh $<TARGET_FILE:longctx>
           $<TARGET_FILE:test_hf_logits> ${CMAKE_SOURCE_DIR} ${_p} 203)
  set_tests_properties(peers_hf_logits_p${_p} PROPERTIES LABELS peers TIMEOUT 300)
endforeach()
