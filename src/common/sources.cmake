# Pieces every layer shares: the error convention (err.h).
longctx_layer(common
  src/common/err.c)
target_link_libraries(lc_common PUBLIC Threads::Threads m)
