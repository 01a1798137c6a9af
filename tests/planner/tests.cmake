# ---- the planner (longctx plan) ----
add_executable(test_planner ${CMAKE_CURRENT_LIST_DIR}/test_planner.c)
target_include_directories(test_planner PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_planner PRIVATE lc_planner)
add_test(NAME planner_units COMMAND test_planner)
set_tests_properties(planner_units PROPERTIES LABELS planner TIMEOUT 60)
# the memory estimate against the trainer's measured peak, >= 200 MB per PE (not under ASan:
# its shadow memory is resident and is no part of what the planner predicts)
add_test(NAME planner_memory COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/plan_mem.sh $<TARGET_FILE:longctx>
         ${CMAKE_CURRENT_BINARY_DIR}/train_data ${CMAKE_CURRENT_BINARY_DIR}/planner_memory)
set_tests_properties(planner_memory PROPERTIES LABELS "planner;memory" FIXTURES_REQUIRED train_data TIMEOUT 300)
