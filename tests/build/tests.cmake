# Build-structure tests (label build): the layer check of cmake/check_includes.cmake passes on
# this tree and fails, naming file, line, include and layers, on upward includes planted in a
# copy of it.
add_test(NAME layers_check COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/layers_check.sh ${CMAKE_SOURCE_DIR}
         ${CMAKE_COMMAND})
set_tests_properties(layers_check PROPERTIES LABELS build TIMEOUT 120)
