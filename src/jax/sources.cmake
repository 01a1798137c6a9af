# The JAX binding (src/jax): XLA FFI handlers over the CP core, built as liblongctx_jax.so
# (loaded by python/longctx/jax.py) when jaxlib's FFI headers are found. The Python that has
# them: LONGCTX_PYTHON, else the project's virtualenv (.venv, made by scripts/setup.sh).
set(LONGCTX_PYTHON "" CACHE FILEPATH "A Python with jax installed (default: .venv/bin/python when present)")
set(_lc_py "${LONGCTX_PYTHON}")
if(NOT _lc_py AND SKBUILD AND Python_EXECUTABLE) # pip install ./python: the Python that builds
  set(_lc_py ${Python_EXECUTABLE})
endif()
if(NOT _lc_py AND EXISTS ${CMAKE_SOURCE_DIR}/.venv/bin/python)
  set(_lc_py ${CMAKE_SOURCE_DIR}/.venv/bin/python)
endif()
set(LONGCTX_JAX_INCLUDE "")
if(_lc_py)
  execute_process(COMMAND ${_lc_py} -c "import jax.ffi; print(jax.ffi.include_dir())"
                  OUTPUT_VARIABLE _lc_jax_inc OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _lc_rc ERROR_QUIET)
  if(_lc_rc EQUAL 0 AND EXISTS "${_lc_jax_inc}/xla/ffi/api/c_api.h")
    set(LONGCTX_JAX_INCLUDE ${_lc_jax_inc})
  endif()
endif()
if(LONGCTX_JAX_INCLUDE)
  message(STATUS "longctx: JAX binding against ${LONGCTX_JAX_INCLUDE} (${_lc_py})")
  add_library(longctx_jax MODULE src/jax/ffi.c src/jax/data.c)
  set_target_properties(longctx_jax PROPERTIES C_VISIBILITY_PRESET hidden PREFIX "lib" OUTPUT_NAME longctx_jax)
  target_include_directories(longctx_jax PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_include_directories(longctx_jax SYSTEM PRIVATE ${LONGCTX_JAX_INCLUDE})
  # Only the lcj_* entry points are exported; the layers' symbols stay inside the module.
  target_link_libraries(longctx_jax PRIVATE lc_train -Wl,--exclude-libs,ALL)
  add_dependencies(longctx_jax lc_layer_check)
  set(LONGCTX_JAX_PYTHON ${_lc_py})
  # `pip install ./python` (scikit-build-core) puts the module inside the package.
  if(SKBUILD)
    install(TARGETS longctx_jax LIBRARY DESTINATION longctx COMPONENT python)
  endif()
else()
  message(STATUS "longctx: no jax found (${_lc_py}); the JAX binding is not built (scripts/setup.sh makes .venv)")
endif()
