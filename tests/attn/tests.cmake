# Attention kernel tests (label attn): about 20 s in Release. LONGCTX_TEST_QUICK=1 (set by
# scripts/test.sh for the sanitizer pass) halves the sweep: ~35 s under ASan+UBSan Debug.
# ThreadSanitizer is ~10x slower, so it always runs a 1/8 sample.
add_executable(test_attn ${CMAKE_CURRENT_LIST_DIR}/test_attn.c)
target_link_libraries(test_attn PRIVATE lc_attn)
target_include_directories(test_attn PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/tests ${CMAKE_SOURCE_DIR}/src)
set(_attn_env "")
if(LONGCTX_TSAN)
  set(_attn_env "LONGCTX_TEST_QUICK=8")
endif()
# AVX-512 runs as its own entries, which exit 77 (a skip, never a pass) on CPUs without it.
foreach(_sec basic fwd bwd big threads)
  add_test(NAME attn_${_sec} COMMAND test_attn ${_sec} scalar,avx2)
  add_test(NAME attn_${_sec}_avx512 COMMAND test_attn ${_sec} avx512)
  foreach(_t attn_${_sec} attn_${_sec}_avx512)
    set_tests_properties(${_t} PROPERTIES LABELS attn TIMEOUT 600 SKIP_RETURN_CODE 77)
    if(_attn_env)
      set_tests_properties(${_t} PROPERTIES ENVIRONMENT "${_attn_env}")
    endif()
  endforeach()
endforeach()

# The opt-in bf16 dot-product kernels (vdpbf16ps), through the same oracle sweeps.
foreach(_sec fwd bwd)
  add_test(NAME attn_${_sec}_avx512bf16dot COMMAND test_attn ${_sec} avx512)
  set_tests_properties(attn_${_sec}_avx512bf16dot PROPERTIES LABELS attn TIMEOUT 600
    SKIP_RETURN_CODE 77 ENVIRONMENT "LONGCTX_ATTN_BF16_DOT=1;${_attn_env}")
endforeach()

# The choice between them: names, the environment's force, the measurement and its cache.
add_test(NAME attn_bf16dot_choice COMMAND test_attn bf16dot)
set_tests_properties(attn_bf16dot_choice PROPERTIES LABELS attn TIMEOUT 120)

# The bench runs and prints JSON rows; bad flags exit 2 with a message.
add_test(NAME cli_bench_attn_json COMMAND $<TARGET_FILE:longctx> bench attn --s 200 --d 64
  --hq 4 --hkv 2 --pass fwd,fwd_bwd --dtype f32,bf16 --reps 1 --no-peers --json)
set_tests_properties(cli_bench_attn_json PROPERTIES LABELS "attn;bench"
  PASS_REGULAR_EXPRESSION "\"bench\":\"attn\",\"impl\":\"[a-z0-9]+\",\"pass\":\"fwd_bwd\",\"dtype\":\"bf16\",\"s\":200")
add_test(NAME cli_bench_attn_peers_fake COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/peers_fake.sh
  $<TARGET_FILE:longctx> ${CMAKE_CURRENT_BINARY_DIR}/attn_peers_fake)
set_tests_properties(cli_bench_attn_peers_fake PROPERTIES LABELS "attn;bench" TIMEOUT 120)
add_test(NAME cli_bench_attn_bad_flag COMMAND $<TARGET_FILE:longctx> bench attn --mask sideways)
set_tests_properties(cli_bench_attn_bad_flag PROPERTIES LABELS "attn;bench" WILL_FAIL TRUE)
add_test(NAME cli_bench_tiles_json COMMAND $<TARGET_FILE:longctx> bench tiles --d 64 --reps 20 --rounds 2 --json)
set_tests_properties(cli_bench_tiles_json PROPERTIES LABELS "attn;bench"
  PASS_REGULAR_EXPRESSION "\"op\":\"bwd dV/dK\",\"seconds\":[0-9.e-]+,\"gflops\":[0-9.e+]+.*\"op\":\"fwd tile step\".*\"softmax_share\":0\\.[0-9]+")
add_test(NAME cli_bench_tiles_bad_d COMMAND $<TARGET_FILE:longctx> bench tiles --d 40)
set_tests_properties(cli_bench_tiles_bad_d PROPERTIES LABELS "attn;bench"
  PASS_REGULAR_EXPRESSION "lc_attn_tile_rates: need .*d a multiple of 16 .*\\(d = 40\\)")

# Steady state: with a pool and a workspace, forward + backward allocate nothing and start
# no thread (counted by interposing malloc & co. and pthread_create in this binary).
add_executable(test_attn_steady ${CMAKE_CURRENT_LIST_DIR}/test_attn_steady.c
               ${CMAKE_CURRENT_LIST_DIR}/../common/alloc_count.c)
target_link_libraries(test_attn_steady PRIVATE lc_attn ${CMAKE_DL_LIBS})
target_include_directories(test_attn_steady PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/tests)
add_test(NAME attn_steady COMMAND test_attn_steady)
set_tests_properties(attn_steady PROPERTIES LABELS attn TIMEOUT 120)
# The backward-by-part timing tool (bench/attn-parts) builds driver.c with its timing points
# and runs, against this build's library archive.
set(_parts_cflags "")
if(LONGCTX_SANITIZE)
  set(_parts_cflags "-fsanitize=address,undefined -fno-sanitize-recover=undefined")
elseif(LONGCTX_TSAN)
  set(_parts_cflags "-fsanitize=thread")
endif()
add_test(NAME bench_attn_parts_tool COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/parts_tool.sh
  $<TARGET_FILE:longctx_archive> "${_parts_cflags}")
set_tests_properties(bench_attn_parts_tool PROPERTIES LABELS "attn;bench" TIMEOUT 120)
