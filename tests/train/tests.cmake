# Trainer tests (label train): data, optimizer, PNG and mesh units; the trainer end to end.
add_executable(test_train_units ${CMAKE_CURRENT_LIST_DIR}/test_train_units.c)
target_link_libraries(test_train_units PRIVATE longctx_lib)
target_include_directories(test_train_units PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/tests)

foreach(_t tokfile loader adamw png html corpus)
  add_test(NAME train_${_t} COMMAND test_train_units ${_t} ${CMAKE_CURRENT_BINARY_DIR}/train_${_t})
  set_tests_properties(train_${_t} PROPERTIES LABELS train TIMEOUT 60 SKIP_RETURN_CODE 77)
endforeach()
foreach(_p 1 2 4)
  add_test(NAME train_mesh_p${_p} COMMAND $<TARGET_FILE:longctx> launch -n ${_p} -- $<TARGET_FILE:test_train_units> mesh ${CMAKE_CURRENT_BINARY_DIR}/train_mesh)
  set_tests_properties(train_mesh_p${_p} PROPERTIES LABELS train TIMEOUT 120)
endforeach()
add_test(NAME train_prepare_data_no_html COMMAND $<TARGET_FILE:longctx> prepare-data ${CMAKE_CURRENT_BINARY_DIR}/train_empty_out --source ${CMAKE_CURRENT_LIST_DIR})
set_tests_properties(train_prepare_data_no_html PROPERTIES LABELS train WILL_FAIL FALSE
  PASS_REGULAR_EXPRESSION "prepare-data: .*tests/train has 0 .html files; need at least 20")
