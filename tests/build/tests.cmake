# Build-structure tests (label build): the layer check of cmake/check_includes.cmake passes on
# this tree and fails, naming file, line, include and layers, on upward includes planted in a
# copy of it.
add_test(NAME layers_check COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/layers_check.sh ${CMAKE_SOURCE_DIR}
         ${CMAKE_COMMAND})
set_tests_properties(layers_check PROPERTIES LABELS build TIMEOUT 120)

# docs/ARCHITECTURE.md's picture of the layers and of one training step is drawn from the
# layer table; this fails when the picture is stale or an entry point it names has moved.
add_test(NAME layers_doc COMMAND ${CMAKE_COMMAND} -DROOT=${CMAKE_SOURCE_DIR} -P ${CMAKE_SOURCE_DIR}/cmake/layer_doc.cmake)
set_tests_properties(layers_doc PROPERTIES LABELS build TIMEOUT 60)
