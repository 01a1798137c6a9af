# Pieces every layer shares: the status codes and error convention (err.h), and the
# environment read through the checked parsers (settings.h).
longctx_layer(common
  src/common/err.c
  src/common/settings.c)
target_link_libraries(lc_common PUBLIC Threads::Threads m)
