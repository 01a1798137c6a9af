# The layer check: every #include in src/<layer>/ and include/longctx/ must name a file of
# the same layer or of one the layer table (cmake/layers.cmake) lets it use. Run in ALL by
# the build (target lc_layer_check) and by the test layers_check.
#
# usage: cmake -DROOT=<tree holding src/ and include/> [-DTABLE=<layers.cmake>]
#              [-DWORK=<scratch folder>] -P check_includes.cmake
# Fails (exit status 1) with one line per upward include: file:line, the included file, and
# both layers. The scan itself is check_includes.awk (POSIX awk: nothing extra to install).
cmake_minimum_required(VERSION 3.20)
if(NOT ROOT)
  message(FATAL_ERROR "check_includes: give -DROOT=<source tree>")
endif()
if(NOT TABLE)
  set(TABLE ${CMAKE_CURRENT_LIST_DIR}/layers.cmake)
endif()
if(NOT WORK)
  set(WORK ${ROOT})
endif()
include(${TABLE})

# The table for awk, one fact a line.
set(_t "")
foreach(_l ${LONGCTX_LAYERS})
  string(REPLACE ";" " " _below "${LONGCTX_LAYER_BELOW_${_l}}")
  string(APPEND _t "layer ${_l} ${_below}\n")
endforeach()
foreach(_l ${LONGCTX_LAYERS_OPEN_SRC})
  string(APPEND _t "open ${_l}\n")
endforeach()
foreach(_h ${LONGCTX_PUBLIC_HEADERS})
  string(REPLACE "=" " " _h "${_h}")
  string(APPEND _t "header ${_h}\n")
endforeach()
foreach(_f ${LONGCTX_SHARED_HEADERS})
  string(APPEND _t "shared ${_f}\n")
endforeach()
foreach(_a ${LONGCTX_LAYER_ALLOW})
  string(APPEND _t "allow ${_a}\n")
endforeach()
file(WRITE ${WORK}/layers.table "${_t}")

file(GLOB_RECURSE _files RELATIVE ${ROOT} ${ROOT}/src/*.c ${ROOT}/src/*.h ${ROOT}/src/*.cu
     ${ROOT}/src/*.cuh ${ROOT}/src/*.cpp ${ROOT}/include/longctx/*.h)
list(SORT _files)
find_program(_awk NAMES awk gawk mawk REQUIRED)
execute_process(COMMAND ${_awk} -f ${CMAKE_CURRENT_LIST_DIR}/check_includes.awk ${WORK}/layers.table ${_files}
                WORKING_DIRECTORY ${ROOT} RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "longctx layers: the check failed (the layer table is cmake/layers.cmake)")
endif()
