# Context-parallel attention tests (label cp). Multi-PE tests run under the launcher.
add_executable(test_cp ${CMAKE_CURRENT_LIST_DIR}/test_cp.c)
target_link_libraries(test_cp PRIVATE lc_cp)
target_include_directories(test_cp PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/tests)

function(lc_cp_test name pes)
  add_test(NAME ${name} COMMAND $<TARGET_FILE:longctx> launch -n ${pes} -- $<TARGET_FILE:test_cp> ${ARGN})
  set_tests_properties(${name} PROPERTIES LABELS cp TIMEOUT 300)
endfunction()

add_test(NAME cp_layout COMMAND test_cp layout)
set_tests_properties(cp_layout PROPERTIES LABELS cp TIMEOUT 60)
foreach(_p 1 2 3)
  lc_cp_test(cp_p${_p}_sweep ${_p} sweep)
endforeach()
# P = 4 is the slowest (oversubscribed): two halves so ctest -j can overlap them.
lc_cp_test(cp_p4_sweep_a 4 sweep 0 11)
lc_cp_test(cp_p4_sweep_b 4 sweep 11 10)
# AUTO under a pinned runtime lowering takes the permute ring instead of zero-copy.
lc_cp_test(cp_p3_sweep_permute_env 3 sweep 0 4)
set_tests_properties(cp_p3_sweep_permute_env PROPERTIES ENVIRONMENT "LONGCTX_PERMUTE=two_sided")
# The sweep (its bf16 cases against the float64 oracle, every layout and lowering) with each
# bf16 inner product pinned: a job may run either (lc_attn_bf16_dot).
foreach(_dot 0 1)
  lc_cp_test(cp_p2_sweep_bf16dot${_dot} 2 sweep)
  set_tests_properties(cp_p2_sweep_bf16dot${_dot} PROPERTIES ENVIRONMENT "LONGCTX_ATTN_BF16_DOT=${_dot}"
                       SKIP_RETURN_CODE 77)
endforeach()
lc_cp_test(cp_p2_stress 2 stress 150)
lc_cp_test(cp_p4_stress 4 stress 100)
lc_cp_test(cp_p3_errors 3 errors)
# balance by the real mask: the work model, the deal at 64K, plans dealt per sequence
foreach(_p 1 2 4)
  lc_cp_test(cp_p${_p}_balance ${_p} balance)
endforeach()
# Plans on CP teams of 2 inside a world of 4: one team alone, then both at once.
lc_cp_test(cp_p4_teams 4 teams)
set_tests_properties(cp_p4_teams PROPERTIES SKIP_RETURN_CODE 77)

# die.sh needs only bash and awk (no bc), so these tests exist on every machine.
foreach(_d "3;1;exit;one_sided" "4;2;kill;zero_copy" "2;0;kill;two_sided")
  list(GET _d 0 _p)
  list(GET _d 1 _v)
  list(GET _d 2 _how)
  list(GET _d 3 _low)
  add_test(NAME cp_die_p${_p}_${_how}_${_low}
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/die.sh $<TARGET_FILE:longctx> $<TARGET_FILE:test_cp>
                   ${_p} ${_v} ${_how} ${_low})
  set_tests_properties(cp_die_p${_p}_${_how}_${_low} PROPERTIES LABELS cp TIMEOUT 120 SKIP_RETURN_CODE 77)
endforeach()
lc_cp_test(cp_p2_f32out 2 f32out)
# One PE's bad argument in a collective call fails every PE fast, with the reason.
foreach(_d "3;1;q;one_sided;q is NULL" "2;0;doc;zero_copy;doc is NULL" "3;2;dout;two_sided;dout is NULL"
           "2;1;q;allgather;q is NULL")
  list(GET _d 0 _p)
  list(GET _d 1 _v)
  list(GET _d 2 _what)
  list(GET _d 3 _low)
  list(GET _d 4 _reason)
  add_test(NAME cp_badarg_p${_p}_${_what}_${_low}
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/badarg.sh $<TARGET_FILE:longctx> $<TARGET_FILE:test_cp>
                   ${_p} ${_v} ${_what} ${_low} "${_reason}")
  set_tests_properties(cp_badarg_p${_p}_${_what}_${_low} PROPERTIES LABELS cp TIMEOUT 120)
endforeach()
lc_cp_test(cp_p1_f32out 1 f32out)

# Steady state of a plan: no allocation, no thread start per forward/backward (counted).
add_executable(test_cp_steady ${CMAKE_CURRENT_LIST_DIR}/test_cp_steady.c
               ${CMAKE_CURRENT_LIST_DIR}/../common/alloc_count.c)
target_link_libraries(test_cp_steady PRIVATE lc_cp ${CMAKE_DL_LIBS})
target_include_directories(test_cp_steady PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/tests)
add_test(NAME cp_p2_steady COMMAND $<TARGET_FILE:longctx> launch -n 2 -- $<TARGET_FILE:test_cp_steady>)
set_tests_properties(cp_p2_steady PROPERTIES LABELS cp TIMEOUT 120)
