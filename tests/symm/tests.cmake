# Runtime tests: every primitive at P = 1, 2, 3, 4 and 8 (oversubscribed on 2 cores is fine).
add_executable(test_symm ${CMAKE_CURRENT_LIST_DIR}/test_symm.c)
target_include_directories(test_symm PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(test_symm PRIVATE lc_symm)
add_executable(test_fault ${CMAKE_CURRENT_LIST_DIR}/test_fault.c)
target_link_libraries(test_fault PRIVATE lc_symm)

foreach(p 1 2 3 4 8)
  foreach(what rma heap permute coll)
    add_test(NAME symm_${what}_p${p} COMMAND $<TARGET_FILE:longctx> launch -n ${p} -- $<TARGET_FILE:test_symm> ${what})
    set_tests_properties(symm_${what}_p${p} PROPERTIES LABELS symm TIMEOUT 300)
  endforeach()
endforeach()
# Team-collective symmetric allocation: rows of 2 allocate on their own, then the world.
foreach(p 1 2 3 4 8)
  add_test(NAME symm_teamheap_p${p} COMMAND $<TARGET_FILE:longctx> launch -n ${p} -- $<TARGET_FILE:test_symm> teamheap)
  set_tests_properties(symm_teamheap_p${p} PROPERTIES LABELS symm TIMEOUT 300)
endforeach()
# Big odd sizes that reuse every landing area several times, on the world and sub-teams.
foreach(p 2 3 4)
  add_test(NAME symm_collbig_p${p} COMMAND $<TARGET_FILE:longctx> launch -n ${p} -- $<TARGET_FILE:test_symm> collbig)
  set_tests_properties(symm_collbig_p${p} PROPERTIES LABELS symm TIMEOUT 300)
endforeach()
foreach(p 2 4 8)
  add_test(NAME symm_teams_p${p} COMMAND $<TARGET_FILE:longctx> launch -n ${p} -- $<TARGET_FILE:test_symm> teams)
  set_tests_properties(symm_teams_p${p} PROPERTIES LABELS symm TIMEOUT 300)
endforeach()
foreach(p 2 3)
  add_test(NAME symm_stress_p${p} COMMAND $<TARGET_FILE:longctx> launch -n ${p} -- $<TARGET_FILE:test_symm> stress 3000)
  set_tests_properties(symm_stress_p${p} PROPERTIES LABELS symm TIMEOUT 300)
endforeach()
# Without the launcher a runtime program is a world of one PE.
add_test(NAME symm_single_pe_no_launcher COMMAND $<TARGET_FILE:test_symm> permute)
set_tests_properties(symm_single_pe_no_launcher PROPERTIES LABELS symm)
add_test(NAME symm_faults COMMAND ${CMAKE_CURRENT_LIST_DIR}/fault_test.sh $<TARGET_FILE:longctx> $<TARGET_FILE:test_fault>)
set_tests_properties(symm_faults PROPERTIES LABELS symm TIMEOUT 200)
add_test(NAME cli_bench_permute_json COMMAND $<TARGET_FILE:longctx> bench permute --pes 2 --bytes 8,200000 --reps 2 --json)
set_tests_properties(cli_bench_permute_json PROPERTIES LABELS "symm;bench"
  PASS_REGULAR_EXPRESSION "\"bench\":\"permute\",\"backend\":\"shm\",\"lowering\":\"two_sided\",\"pes\":2,\"bytes\":200000")
add_test(NAME cli_bad_flag COMMAND $<TARGET_FILE:longctx> bench permute --lowering three_sided)
set_tests_properties(cli_bad_flag PROPERTIES LABELS symm WILL_FAIL TRUE)
add_test(NAME symm_policy_auto_logged COMMAND $<TARGET_FILE:longctx> launch -n 2 -- $<TARGET_FILE:test_symm> policy)
set_tests_properties(symm_policy_auto_logged PROPERTIES LABELS symm ENVIRONMENT "LONGCTX_DEBUG=1;LONGCTX_PERMUTE="
  PASS_REGULAR_EXPRESSION "64 bytes -> one_sided \\(auto: peers reachable by load/store\\)")
add_test(NAME symm_policy_env_override COMMAND $<TARGET_FILE:longctx> launch -n 2 -- $<TARGET_FILE:test_symm> policy)
set_tests_properties(symm_policy_env_override PROPERTIES LABELS symm ENVIRONMENT "LONGCTX_DEBUG=1;LONGCTX_PERMUTE=two_sided"
  PASS_REGULAR_EXPRESSION "64 bytes -> two_sided \\(LONGCTX_PERMUTE\\)")
add_test(NAME symm_policy_env_invalid COMMAND $<TARGET_FILE:test_symm> policy)
set_tests_properties(symm_policy_env_invalid PROPERTIES LABELS symm ENVIRONMENT "LONGCTX_PERMUTE=sideways"
  PASS_REGULAR_EXPRESSION "LONGCTX_PERMUTE=sideways: expected one_sided, two_sided or auto")
add_test(NAME symm_cores_per_pe COMMAND ${CMAKE_CURRENT_LIST_DIR}/cores_test.sh $<TARGET_FILE:longctx> $<TARGET_FILE:test_fault>)
set_tests_properties(symm_cores_per_pe PROPERTIES LABELS symm TIMEOUT 120)
add_test(NAME cli_env_errors COMMAND ${CMAKE_CURRENT_LIST_DIR}/cli_errors.sh $<TARGET_FILE:longctx> $<TARGET_FILE:test_fault>)
set_tests_properties(cli_env_errors PROPERTIES LABELS symm TIMEOUT 120)
# The world's log sink receives the runtime's messages (nothing on stderr); lc_team_destroy
# of the world team is a no-op.
add_test(NAME symm_log_sink_and_world_team COMMAND $<TARGET_FILE:longctx> launch -n 2 -- $<TARGET_FILE:test_fault> api)
set_tests_properties(symm_log_sink_and_world_team PROPERTIES LABELS symm ENVIRONMENT "LONGCTX_DEBUG=1"
  FAIL_REGULAR_EXPRESSION "FAILED;[^ ]longctx\\[PE")
