# The MPI backend (label mpi): the runtime, ring and trainer tests again under mpirun with
# 2-4 ranks on this machine (LONGCTX_MPI_SHARE=0 makes every peer remote, so the MPI RMA
# path runs too), then across two network namespaces ("hosts" joined by a veth link).
# Without MPI in the build, or without mpirun or the privileges, tests exit 77 with the reason.
# Backend selection errors name the setting (with or without MPI in the build).
add_test(NAME symm_backend_env_invalid COMMAND $<TARGET_FILE:test_symm> rma)
set_tests_properties(symm_backend_env_invalid PROPERTIES LABELS symm ENVIRONMENT "LONGCTX_BACKEND=bogus"
  PASS_REGULAR_EXPRESSION "LONGCTX_BACKEND=bogus: unknown backend \\(expected shm, mpi or auto\\)")
if(NOT LONGCTX_HAVE_MPI)
  add_test(NAME mpi_backend COMMAND sh -c "echo 'SKIP: built without MPI (apt-get install libopenmpi-dev; -DLONGCTX_MPI=ON)'; exit 77")
  set_tests_properties(mpi_backend PROPERTIES LABELS mpi SKIP_RETURN_CODE 77)
  return()
endif()
set(_run ${CMAKE_CURRENT_LIST_DIR}/mpirun.sh)
set(_ns ${CMAKE_CURRENT_LIST_DIR}/netns.sh)
function(lc_mpi_test name)
  add_test(NAME ${name} COMMAND ${ARGN})
  set_tests_properties(${name} PROPERTIES LABELS mpi TIMEOUT 300 SKIP_RETURN_CODE 77)
endfunction()
foreach(_p 2 4)
  foreach(_what rma heap permute coll teamheap teams collbig)
    lc_mpi_test(mpi_symm_${_what}_p${_p} ${_run} ${_p} $<TARGET_FILE:test_symm> ${_what})
  endforeach()
endforeach()
# Without mpirun, --backend mpi is a world of one MPI rank (MPI's singleton start).
lc_mpi_test(mpi_singleton $<TARGET_FILE:test_symm> rma)
set_tests_properties(mpi_singleton PROPERTIES ENVIRONMENT
  "LONGCTX_BACKEND=mpi;LONGCTX_HEAP_SIZE=64M;OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_mca_base_component_disable_dlclose=1;LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_LIST_DIR}/lsan.supp:print_suppressions=0:fast_unwind_on_malloc=0")
# mpi under the shm launcher is refused, naming both.
lc_mpi_test(mpi_under_shm_launcher $<TARGET_FILE:longctx> launch -n 2 -- $<TARGET_FILE:test_symm> rma)
set_tests_properties(mpi_under_shm_launcher PROPERTIES ENVIRONMENT "LONGCTX_BACKEND=mpi"
  PASS_REGULAR_EXPRESSION "LONGCTX_BACKEND=mpi, but this PE was started by `longctx launch`")
# Every peer remote: puts, signals and gets through the MPI window; policy and lowerings.
foreach(_what rma permute coll collbig teams)
  lc_mpi_test(mpi_symm_${_what}_p3_remote ${_run} 3 $<TARGET_FILE:test_symm> ${_what})
  set_tests_properties(mpi_symm_${_what}_p3_remote PROPERTIES ENVIRONMENT "LONGCTX_MPI_SHARE=0")
endforeach()
lc_mpi_test(mpi_symm_stress_p3_remote ${_run} 3 $<TARGET_FILE:test_symm> stress 500)
set_tests_properties(mpi_symm_stress_p3_remote PROPERTIES ENVIRONMENT "LONGCTX_MPI_SHARE=0")
lc_mpi_test(mpi_symm_policy_remote ${_run} 2 $<TARGET_FILE:test_symm> policy)
set_tests_properties(mpi_symm_policy_remote PROPERTIES ENVIRONMENT "LONGCTX_DEBUG=1;LONGCTX_MPI_SHARE=0;LONGCTX_PERMUTE="
  PASS_REGULAR_EXPRESSION "backend mpi.*64 bytes -> two_sided \\(auto: a peer is not load/store reachable\\)")
# Ring attention (float64 oracle and one-PE comparison inside test_cp) on a host and remote.
lc_mpi_test(mpi_cp_p2_sweep ${_run} 2 $<TARGET_FILE:test_cp> sweep 0 8)
lc_mpi_test(mpi_cp_p3_sweep_remote ${_run} 3 $<TARGET_FILE:test_cp> sweep 0 8)
set_tests_properties(mpi_cp_p3_sweep_remote PROPERTIES ENVIRONMENT "LONGCTX_MPI_SHARE=0")
lc_mpi_test(mpi_cp_p4_teams ${_run} 4 $<TARGET_FILE:test_cp> teams)
lc_mpi_test(mpi_dead_rank_local ${CMAKE_CURRENT_LIST_DIR}/dead.sh 1 $<TARGET_FILE:test_cp> ${_run} 3)
# A rank stopped on my host (mpirun sees nothing wrong): the heartbeat detector reads its
# liveness record through the shared window and names it.
lc_mpi_test(mpi_heartbeat_stopped_rank ${_run} 3 $<TARGET_FILE:test_fault> stop)
set_tests_properties(mpi_heartbeat_stopped_rank PROPERTIES TIMEOUT 60 ENVIRONMENT "LONGCTX_HEARTBEAT_S=2"
  PASS_REGULAR_EXPRESSION "PE 0: rc=-4 \\(aborted\\) after [0-9.]+ s: .*PE 1 stopped responding .*process [0-9]+ is stopped")
lc_mpi_test(mpi_coll_error_local ${CMAKE_CURRENT_LIST_DIR}/collerr.sh 3 $<TARGET_FILE:test_fault> ${_run} 3)
lc_mpi_test(mpi_coll_error_remote ${CMAKE_CURRENT_LIST_DIR}/collerr.sh 3 $<TARGET_FILE:test_fault> ${_run} 3)
set_tests_properties(mpi_coll_error_remote PROPERTIES ENVIRONMENT "LONGCTX_MPI_SHARE=0")
# A wait nobody will end is bounded by LONGCTX_TIMEOUT on the mpi backend too.
lc_mpi_test(mpi_timeout_remote ${_run} 2 $<TARGET_FILE:test_fault> timeout)
set_tests_properties(mpi_timeout_remote PROPERTIES ENVIRONMENT "LONGCTX_MPI_SHARE=0;LONGCTX_TIMEOUT=2"
  PASS_REGULAR_EXPRESSION "PE 1: rc=-4 \\(aborted\\) after 2\\.[0-9]+ s: .*PE 0 timed out after 2\\.0 s")
# Two "hosts": ring attention with P = 3 (two ranks on one host, one on the other), training
# with CP = 2 across them, and a rank on the other host killed.
lc_mpi_test(mpi_netns_cp_p3 ${_ns} hA:2,hB:1 $<TARGET_FILE:test_cp> sweep 0 12)
lc_mpi_test(mpi_netns_dead_rank ${CMAKE_CURRENT_LIST_DIR}/dead.sh 2 $<TARGET_FILE:test_cp> ${_ns} hA:2,hB:1)
lc_mpi_test(mpi_netns_coll_error ${CMAKE_CURRENT_LIST_DIR}/collerr.sh 3 $<TARGET_FILE:test_fault> ${_ns} hA:2,hB:1)
set(_tr bash ${CMAKE_CURRENT_LIST_DIR}/train.sh $<TARGET_FILE:longctx> $<TARGET_FILE:train_cmp>
    ${CMAKE_CURRENT_BINARY_DIR}/train_data)
lc_mpi_test(mpi_train_cp2 ${_tr} ${CMAKE_CURRENT_BINARY_DIR}/mpi_train_local ${_run} 2)
lc_mpi_test(mpi_netns_train_cp2 ${_tr} ${CMAKE_CURRENT_BINARY_DIR}/mpi_train_netns ${_ns} hA:1,hB:1)
# CP 2 x DP 2 over two hosts: CP teams are consecutive ranks, so each host holds one CP
# team and the gradient all-reduce crosses the link.
lc_mpi_test(mpi_netns_train_cp2_dp2 ${_tr} ${CMAKE_CURRENT_BINARY_DIR}/mpi_train_netns_dp ${_ns} hA:2,hB:2)
set_tests_properties(mpi_netns_train_cp2_dp2 PROPERTIES ENVIRONMENT "MESH=--cp 2 --dp 2 --accum 1" RESOURCE_LOCK netns)
set_tests_properties(mpi_train_cp2 mpi_netns_train_cp2 mpi_netns_train_cp2_dp2 PROPERTIES FIXTURES_REQUIRED train_data)
# The network-namespace tests create and delete namespaces: never two at once.
set_tests_properties(mpi_netns_cp_p3 mpi_netns_dead_rank mpi_netns_coll_error PROPERTIES RESOURCE_LOCK netns)
set_tests_properties(mpi_netns_train_cp2 PROPERTIES RESOURCE_LOCK netns)
# bench permute on the mpi backend (it starts mpirun itself): our permute and MPI's own rows.
add_test(NAME mpi_cli_bench_permute_json COMMAND $<TARGET_FILE:longctx> bench permute --backend mpi --pes 2
         --bytes 8,200000 --reps 2 --json)
set_tests_properties(mpi_cli_bench_permute_json PROPERTIES LABELS "mpi;bench" TIMEOUT 300
  ENVIRONMENT "OMPI_MCA_btl_vader_single_copy_mechanism=none"
  PASS_REGULAR_EXPRESSION "\"bench\":\"mpi_raw\",\"backend\":\"mpi\",\"op\":\"sendrecv\",\"pes\":2,\"bytes\":200000")
