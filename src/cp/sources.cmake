longctx_layer(cp
  src/cp/layout.c
  src/cp/plan.c
  src/cp/cp.c
  src/cp/ring.c
  src/cp/zcopy.c
  src/cp/allgather.c
  src/cp/ulysses.c)
