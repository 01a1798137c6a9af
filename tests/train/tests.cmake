# Trainer tests (label train): data, optimizer, PNG and mesh units; the trainer end to end.
add_executable(test_train_units ${CMAKE_CURRENT_LIST_DIR}/test_train_units.c)
target_link_libraries(test_train_units PRIVATE lc_train)
target_include_directories(test_train_units PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/tests)

foreach(_t tokfile loader adamw png html corpus)
  add_test(NAME train_${_t} COMMAND test_train_units ${_t} ${CMAKE_CURRENT_BINARY_DIR}/train_${_t})
  set_tests_properties(train_${_t} PROPERTIES LABELS train TIMEOUT 60 SKIP_RETURN_CODE 77)
endforeach()
foreach(_p 1 2 4 8)
  add_test(NAME train_mesh_p${_p} COMMAND $<TARGET_FILE:longctx> launch -n ${_p} -- $<TARGET_FILE:test_train_units> mesh ${CMAKE_CURRENT_BINARY_DIR}/train_mesh)
  set_tests_properties(train_mesh_p${_p} PROPERTIES LABELS train TIMEOUT 120)
endforeach()
add_test(NAME train_prepare_data_no_html COMMAND $<TARGET_FILE:longctx> prepare-data ${CMAKE_CURRENT_BINARY_DIR}/train_empty_out --source ${CMAKE_CURRENT_LIST_DIR})
set_tests_properties(train_prepare_data_no_html PROPERTIES LABELS train WILL_FAIL FALSE
  PASS_REGULAR_EXPRESSION "prepare-data: .*tests/train has 0 .html files; need at least 20")

# ---- the trainer end to end (needs the model layer) ----
add_executable(train_cmp ${CMAKE_CURRENT_LIST_DIR}/train_cmp.c)
target_link_libraries(train_cmp PRIVATE m)
set(_data ${CMAKE_CURRENT_BINARY_DIR}/train_data)
add_test(NAME train_mkdata COMMAND test_train_units mkdata ${_data})
set_tests_properties(train_mkdata PROPERTIES LABELS train FIXTURES_SETUP train_data)
set(_eq bash ${CMAKE_CURRENT_LIST_DIR}/equiv.sh $<TARGET_FILE:longctx> $<TARGET_FILE:train_cmp> ${_data})
# CP x DP x layout against one PE (norm-wise fp32 tolerance on the weights)
foreach(_cp 1 2 3 4)
  foreach(_dp 1 2)
    if(_cp EQUAL 1 AND _dp EQUAL 1)
      continue()
    endif()
    math(EXPR _acc "2 / ${_dp}")
    set(_runs)
    foreach(_lay contiguous zigzag striped)
      list(APPEND _runs -- --cp ${_cp} --dp ${_dp} --accum ${_acc} --layout ${_lay})
    endforeach()
    add_test(NAME train_equiv_cp${_cp}_dp${_dp}
             COMMAND ${_eq} ${CMAKE_CURRENT_BINARY_DIR}/equiv_cp${_cp}_dp${_dp} 1e-4 1e-5
                     --cp 1 --dp 1 --accum 2 ${_runs})
    set_tests_properties(train_equiv_cp${_cp}_dp${_dp} PROPERTIES LABELS train TIMEOUT 300
                         FIXTURES_REQUIRED train_data)
  endforeach()
endforeach()
# every CP lowering, the all-gather algorithm and --recompute: bit-identical weights to the
# one-sided ring
add_test(NAME train_equiv_lowerings
         COMMAND ${_eq} ${CMAKE_CURRENT_BINARY_DIR}/equiv_lowerings 0 0
                 --cp 2 --accum 2 --permute one_sided
                 -- --cp 2 --accum 2 --permute two_sided -- --cp 2 --accum 2 --permute zero_copy
                 -- --cp 2 --accum 2 --permute auto -- --cp 2 --accum 2 --cp-algo allgather
                 -- --cp 2 --accum 2 --recompute)
set_tests_properties(train_equiv_lowerings PROPERTIES LABELS train TIMEOUT 300 FIXTURES_REQUIRED train_data)
# every CP algorithm with packed documents and a sliding window against one PE: the ring and
# all-gather, Ulysses (KV heads split at CP 2, replicated at CP 4 and under TP 2) and hybrid
# (Ulysses 2 x ring 2, two-sided all-to-all)
set(_m --accum 2 --doc-mask --window 24)
add_test(NAME train_equiv_algos
         COMMAND ${_eq} ${CMAKE_CURRENT_BINARY_DIR}/equiv_algos 1e-4 1e-5 ${_m}
                 -- --cp 2 ${_m} -- --cp 2 ${_m} --cp-algo allgather -- --cp 2 ${_m} --cp-algo ulysses
                 -- --cp 4 ${_m} --cp-algo ulysses --layout contiguous
                 -- --cp 4 ${_m} --cp-algo hybrid --ulysses 2 --permute two_sided
                 -- --cp 2 --tp 2 ${_m} --cp-algo ulysses --permute one_sided)
# balance by the mask: chunks dealt per sequence (ring at CP 2, all-gather at CP 4, zero-copy
# and two-sided lowerings) give one PE's losses and weights
set(_b --seq 256 --accum 2 --doc-mask --window 40)
add_test(NAME train_equiv_balance
         COMMAND ${_eq} ${CMAKE_CURRENT_BINARY_DIR}/equiv_balance 1e-4 1e-5 ${_b}
                 -- --cp 2 ${_b} --balance mask --permute zero_copy
                 -- --cp 4 ${_b} --balance mask --cp-algo allgather
                 -- --cp 2 --dp 2 --seq 256 --doc-mask --window 40 --balance mask --permute two_sided)
set_tests_properties(train_equiv_algos train_equiv_balance PROPERTIES LABELS train TIMEOUT 300
                     FIXTURES_REQUIRED train_data)
# tensor parallelism: CP x TP in {1x2, 2x2, 4x1, 1x4 (KV heads replicated)} and DP 2 x CP 2 x
# TP 2 against one PE (full gathered gradients and weights), without and with --sp; the
# other mesh orders (TP in the middle: gradients summed over CP, then DP)
add_test(NAME train_equiv_tp
         COMMAND ${_eq} ${CMAKE_CURRENT_BINARY_DIR}/equiv_tp 1e-4 1e-5 --accum 2
                 -- --tp 2 --accum 2 -- --cp 2 --tp 2 --accum 2 -- --cp 4 --accum 2
                 -- --tp 4 --accum 2 -- --dp 2 --cp 2 --tp 2)
add_test(NAME train_equiv_tp_sp
         COMMAND ${_eq} ${CMAKE_CURRENT_BINARY_DIR}/equiv_tp_sp 1e-4 1e-5 --accum 2
                 -- --tp 2 --accum 2 --sp -- --cp 2 --tp 2 --accum 2 --sp --layout contiguous
                 -- --tp 4 --accum 2 --sp -- --dp 2 --cp 2 --tp 2 --sp
                 -- --dp 2 --cp 2 --tp 2 --sp --mesh-order cp,tp,dp
                 -- --dp 2 --cp 2 --tp 2 --mesh-order dp,cp,tp)
add_test(NAME train_equiv_tp_docmask
         COMMAND ${_eq} ${CMAKE_CURRENT_BINARY_DIR}/equiv_tp_docmask 1e-4 1e-5 --accum 2 --doc-mask
                 -- --tp 4 --accum 2 --sp --doc-mask -- --cp 2 --tp 2 --accum 2 --doc-mask --recompute)
# bf16 compute under TP (+ CP, sp, recompute) against bf16 on one PE (bf16 tolerance)
add_test(NAME train_equiv_tp_bf16
         COMMAND ${_eq} ${CMAKE_CURRENT_BINARY_DIR}/equiv_tp_bf16 1e-2 1e-2 --accum 2 --dtype bf16
                 -- --tp 2 --accum 2 --dtype bf16 -- --cp 2 --tp 4 --accum 2 --dtype bf16 --sp --recompute)
set_tests_properties(train_equiv_tp train_equiv_tp_sp train_equiv_tp_docmask train_equiv_tp_bf16 PROPERTIES LABELS train
                     TIMEOUT 300 FIXTURES_REQUIRED train_data)

add_test(NAME train_cli_errors COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/cli_errors.sh $<TARGET_FILE:longctx>
         ${_data} ${CMAKE_CURRENT_BINARY_DIR}/cli_errors)
set_tests_properties(train_cli_errors PROPERTIES LABELS train TIMEOUT 300 FIXTURES_REQUIRED train_data)
add_test(NAME train_loss_falls COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/loss_falls.sh $<TARGET_FILE:longctx>
         $<TARGET_FILE:train_cmp> ${CMAKE_CURRENT_BINARY_DIR}/loss_falls)
set_tests_properties(train_loss_falls PROPERTIES LABELS train TIMEOUT 300 SKIP_RETURN_CODE 77)
# the benchmark runs, tiny: one JSON line per (seq, cp, dtype)
add_test(NAME train_bench_smoke COMMAND $<TARGET_FILE:longctx> bench train --model tiny --seq 256 --cp 1,2
         --dtype f32,bf16 --steps 1 --warm 0 --threads 1 --json)
set_tests_properties(train_bench_smoke PROPERTIES LABELS "train;bench" TIMEOUT 300
  PASS_REGULAR_EXPRESSION "\"bench\":\"train\",\"model\":\"tiny\",\"seq\":256,\"cp\":2,\"dtype\":\"bf16\"")
# --peers plumbing with a stand-in peer: ratio, MFU, ceiling, and a mismatched loss refused
add_test(NAME train_bench_peers_fake COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/peers_fake.sh $<TARGET_FILE:longctx>
         ${CMAKE_CURRENT_BINARY_DIR}/peers_fake)
set_tests_properties(train_bench_peers_fake PROPERTIES LABELS "train;bench" TIMEOUT 300)
# CP x TP layouts, sequence parallel: one JSON line per layout
add_test(NAME train_bench_tp_smoke COMMAND $<TARGET_FILE:longctx> bench train --model tiny --seq 256
         --layouts 2x1,1x2 --sp --steps 1 --warm 0 --threads 1 --json)
set_tests_properties(train_bench_tp_smoke PROPERTIES LABELS "train;bench" TIMEOUT 300
  PASS_REGULAR_EXPRESSION "\"tp\":2,\"sp\":1,\"mesh\":\"1x2\".*\"tp_comm_s\":[0-9]")

# packed-document masking: the same model on one PE and over CP (doc ids from byte 0)
add_test(NAME train_equiv_docmask
         COMMAND ${_eq} ${CMAKE_CURRENT_BINARY_DIR}/equiv_docmask 1e-4 1e-5 --accum 2 --doc-mask
                 -- --cp 2 --accum 2 --doc-mask -- --cp 3 --accum 2 --layout striped --doc-mask
                 -- --cp 2 --dp 2 --layout contiguous --doc-mask)
set_tests_properties(train_equiv_docmask PROPERTIES LABELS train TIMEOUT 300 FIXTURES_REQUIRED train_data)

add_test(NAME train_mem_falls COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/mem_falls.sh cp $<TARGET_FILE:longctx>
         ${_data} ${CMAKE_CURRENT_BINARY_DIR}/mem_falls)
set_tests_properties(train_mem_falls PROPERTIES LABELS train TIMEOUT 300 FIXTURES_REQUIRED train_data)
add_test(NAME train_mem_falls_tp COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/mem_falls.sh tp $<TARGET_FILE:longctx>
         ${_data} ${CMAKE_CURRENT_BINARY_DIR}/mem_falls_tp)
set_tests_properties(train_mem_falls_tp PROPERTIES LABELS train TIMEOUT 600 FIXTURES_REQUIRED train_data)
