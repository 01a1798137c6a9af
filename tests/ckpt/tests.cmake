# Checkpoint tests (label ckpt): JSON and safetensors units, the model round trip, resume
# bit-for-bit and across layouts, SIGKILL during saves, every corrupt-file case, --init-from
# a Hugging Face folder (bf16, shards), the libFuzzer run, and (peers' venv only) transformers.
add_executable(test_ckpt_units ${CMAKE_CURRENT_LIST_DIR}/test_ckpt_units.c)
target_link_libraries(test_ckpt_units PRIVATE lc_ckpt)
target_include_directories(test_ckpt_units PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src
                           ${CMAKE_SOURCE_DIR}/tests)
foreach(_t json st config roundtrip)
  add_test(NAME ckpt_${_t} COMMAND test_ckpt_units ${_t} ${CMAKE_CURRENT_BINARY_DIR}/ckpt_${_t})
  set_tests_properties(ckpt_${_t} PROPERTIES LABELS ckpt TIMEOUT 120)
endforeach()
set(_ck_args $<TARGET_FILE:longctx> $<TARGET_FILE:train_cmp> ${CMAKE_CURRENT_BINARY_DIR}/train_data)
foreach(_t resume kill corrupt init_from)
  add_test(NAME ckpt_${_t} COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/${_t}.sh ${_ck_args}
           ${CMAKE_CURRENT_BINARY_DIR}/ckpt_${_t})
  set_tests_properties(ckpt_${_t} PROPERTIES LABELS ckpt TIMEOUT 300 FIXTURES_REQUIRED train_data)
endforeach()
# transformers loads our checkpoint and gives our loss (only where bench/peers/.venv exists)
add_test(NAME ckpt_hf_transformers COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/hf_transformers.sh ${_ck_args}
         ${CMAKE_CURRENT_BINARY_DIR}/ckpt_hf ${CMAKE_SOURCE_DIR}/bench/peers/.venv)
set_tests_properties(ckpt_hf_transformers PROPERTIES LABELS ckpt TIMEOUT 300 FIXTURES_REQUIRED train_data)

# libFuzzer on the safetensors reader, built with clang (-fsanitize=fuzzer,address,undefined)
# from the reader's own sources, whatever compiler builds the rest.
find_program(LONGCTX_CLANG NAMES clang clang-14)
set(_fz ${CMAKE_CURRENT_BINARY_DIR}/fuzz_safetensors)
if(LONGCTX_CLANG)
  set(_fz_src ${CMAKE_CURRENT_LIST_DIR}/fuzz_safetensors.c ${CMAKE_SOURCE_DIR}/src/ckpt/json.c
              ${CMAKE_SOURCE_DIR}/src/ckpt/safetensors.c ${CMAKE_SOURCE_DIR}/src/ckpt/util.c)
  # the build of the fuzzer may fail (no libclang-rt): the test then says so and skips
  add_custom_command(OUTPUT ${_fz}.stamp
    COMMAND ${LONGCTX_CLANG} -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined
            -fno-sanitize-recover=undefined -I${CMAKE_SOURCE_DIR}/include -I${CMAKE_SOURCE_DIR}/src
            ${_fz_src} -o ${_fz} > ${_fz}.log 2>&1 || true
    COMMAND ${CMAKE_COMMAND} -E touch ${_fz}.stamp
    DEPENDS ${_fz_src} ${CMAKE_SOURCE_DIR}/src/ckpt/json.h ${CMAKE_SOURCE_DIR}/include/longctx/ckpt.h
    COMMENT "Building the safetensors fuzzer with clang" VERBATIM)
  add_custom_target(fuzz_safetensors_build ALL DEPENDS ${_fz}.stamp)
endif()
add_test(NAME ckpt_fuzz COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/fuzz.sh ${_fz} ${CMAKE_CURRENT_BINARY_DIR}/ckpt_fuzz
         "${LONGCTX_CLANG}")
set_tests_properties(ckpt_fuzz PROPERTIES LABELS "ckpt;fuzz" TIMEOUT 180)

# A run that survives a lost PE (train --max-restarts), stops on SIGTERM with a checkpoint, and
# keeps its previous checkpoint when a save fails (tests/train/restart.sh).
add_test(NAME train_restart COMMAND bash ${CMAKE_SOURCE_DIR}/tests/train/restart.sh ${_ck_args}
         ${CMAKE_CURRENT_BINARY_DIR}/train_restart)
# its kill moments are drawn within the time a run took just before: a neighbour test that
# loads both cores meanwhile (the emulated GPU tests run thousands of threads) moves them, so
# it runs alone (PROCESSORS 2 under ctest -j2)
set_tests_properties(train_restart PROPERTIES LABELS "train;ckpt" TIMEOUT 300 FIXTURES_REQUIRED train_data
                     PROCESSORS 2)
