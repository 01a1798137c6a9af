longctx_layer(symm
  src/symm/util.c
  src/symm/world.c
  src/symm/shm.c
  src/symm/wait.c
  src/symm/heap.c
  src/symm/rma.c
  src/symm/team.c
  src/symm/coll.c
  src/symm/lowering.c
  src/symm/permute.c
  src/symm/launch.c)

# The MPI backend (mpi.c, mpi_coll.c): built when an MPI is found (Debian: libopenmpi-dev),
# unless LONGCTX_MPI=OFF; LONGCTX_MPI=ON makes a missing MPI an error.
set(LONGCTX_MPI AUTO CACHE STRING "Build the MPI backend: AUTO (when MPI is found), ON or OFF")
set_property(CACHE LONGCTX_MPI PROPERTY STRINGS AUTO ON OFF)
set(LONGCTX_HAVE_MPI OFF)
if(NOT LONGCTX_MPI STREQUAL "OFF")
  find_package(MPI COMPONENTS C QUIET)
  if(MPI_C_FOUND)
    set(LONGCTX_HAVE_MPI ON)
    target_sources(lc_symm PRIVATE src/symm/mpi.c src/symm/mpi_coll.c)
    target_link_libraries(lc_symm PUBLIC MPI::MPI_C)
    list(APPEND LONGCTX_LINK_LIBS MPI::MPI_C) # for the installed archive
    set_source_files_properties(src/symm/world.c PROPERTIES COMPILE_DEFINITIONS LONGCTX_HAVE_MPI=1)
    # For an installed longctx: find_package(longctx) finds MPI too, pkg-config links it.
    set(LONGCTX_CONFIG_MPI ON) # cmake/longctxConfig.cmake.in finds MPI for the user
    string(REPLACE ";" " " LONGCTX_PC_LIBS "${MPI_C_LIBRARIES}")
    message(STATUS "MPI backend: on (${MPI_C_LIBRARIES})")
  elseif(LONGCTX_MPI STREQUAL "ON")
    message(FATAL_ERROR "LONGCTX_MPI=ON but no MPI was found: install it with scripts/setup.sh "
                        "(apt-get install openmpi-bin libopenmpi-dev)")
  else()
    message(STATUS "MPI backend: off (no MPI found; apt-get install libopenmpi-dev)")
  endif()
endif()
