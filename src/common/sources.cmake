# Pieces every layer shares: the error convention (err.h).
list(APPEND LONGCTX_SOURCES
  src/common/err.c)
