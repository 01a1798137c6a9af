list(APPEND LONGCTX_SOURCES
  src/symm/util.c
  src/symm/parse.c
  src/symm/world.c
  src/symm/shm.c
  src/symm/wait.c
  src/symm/heap.c
  src/symm/rma.c
  src/symm/team.c
  src/symm/coll.c
  src/symm/permute.c
  src/symm/launch.c)
