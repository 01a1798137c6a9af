# The command line as a user meets it: --help/-h everywhere, --version, printed paths, errors
# before any PE exists. Label train too, so the sanitizer pass runs it.
add_test(NAME cli_basics COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/basics.sh $<TARGET_FILE:longctx>
         ${PROJECT_VERSION} ${CMAKE_CURRENT_BINARY_DIR}/cli_basics)
set_tests_properties(cli_basics PROPERTIES LABELS "cli;train" TIMEOUT 120)
