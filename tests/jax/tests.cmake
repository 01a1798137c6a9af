# The JAX binding (python/longctx/jax.py over liblongctx_jax.so), when jax was found
# (src/jax/sources.cmake). Label jax: the Release pass runs them (an ASan library does not
# load into CPython); `quick` trims the lowering matrix where the full one is not needed.
if(TARGET longctx_jax)
  set(_lc_jax_env "LONGCTX_JAX_LIB=$<TARGET_FILE:longctx_jax>" "PYTHONPATH=${CMAKE_SOURCE_DIR}/python"
      "JAX_PLATFORMS=cpu")
  set(_lc_jax_run ${CMAKE_CURRENT_LIST_DIR}/run.sh)
  add_test(NAME jax_ring_p1 COMMAND ${_lc_jax_run} $<TARGET_FILE:longctx> ${LONGCTX_JAX_PYTHON} 0
           ${CMAKE_CURRENT_LIST_DIR}/test_ring.py)
  add_test(NAME jax_ring_p2 COMMAND ${_lc_jax_run} $<TARGET_FILE:longctx> ${LONGCTX_JAX_PYTHON} 2
           ${CMAKE_CURRENT_LIST_DIR}/test_ring.py)
  add_test(NAME jax_ring_p3 COMMAND ${_lc_jax_run} $<TARGET_FILE:longctx> ${LONGCTX_JAX_PYTHON} 3
           ${CMAKE_CURRENT_LIST_DIR}/test_ring.py quick)
  add_test(NAME jax_ring_mpi_p2 COMMAND ${_lc_jax_run} $<TARGET_FILE:longctx> ${LONGCTX_JAX_PYTHON} mpi:2
           ${CMAKE_CURRENT_LIST_DIR}/test_ring.py quick)
  add_test(NAME jax_dp_cp_p4 COMMAND ${_lc_jax_run} --world-ends $<TARGET_FILE:longctx> ${LONGCTX_JAX_PYTHON} 4
           ${CMAKE_CURRENT_LIST_DIR}/test_dp.py)
  add_test(NAME jax_refusals COMMAND ${_lc_jax_run} --world-ends $<TARGET_FILE:longctx> ${LONGCTX_JAX_PYTHON} 2
           ${CMAKE_CURRENT_LIST_DIR}/test_refusals.py)
  add_test(NAME jax_outside_world COMMAND ${_lc_jax_run} $<TARGET_FILE:longctx> ${LONGCTX_JAX_PYTHON} 0
           ${CMAKE_CURRENT_LIST_DIR}/test_refusals.py outside)
  add_test(NAME jax_example_equals_train COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/test_example.sh $<TARGET_FILE:longctx>
           ${LONGCTX_JAX_PYTHON} ${CMAKE_SOURCE_DIR}/examples/jax_llama.py ${CMAKE_CURRENT_BINARY_DIR}/jax_example)
  set(_lc_jax_tests jax_ring_p1 jax_ring_p2 jax_ring_p3 jax_ring_mpi_p2 jax_dp_cp_p4 jax_refusals jax_outside_world jax_example_equals_train)
  set_tests_properties(${_lc_jax_tests} PROPERTIES LABELS "jax" TIMEOUT 150 ENVIRONMENT "${_lc_jax_env}"
                       SKIP_RETURN_CODE 77)
  # The package as `pip install ./python` put it in the project's virtualenv (scripts/setup.sh):
  # no build-tree paths, so it imports the installed engine.
  add_test(NAME jax_installed_package COMMAND ${_lc_jax_run} $<TARGET_FILE:longctx> ${LONGCTX_JAX_PYTHON} 0
           ${CMAKE_CURRENT_LIST_DIR}/test_ring.py quick)
  set_tests_properties(jax_installed_package PROPERTIES LABELS "jax" TIMEOUT 150
                       ENVIRONMENT "JAX_PLATFORMS=cpu")
endif()
