# Pieces every layer shares: the status codes and error convention (err.h), and the
# environment read through the checked parsers (settings.h).
list(APPEND LONGCTX_SOURCES
  src/common/err.c
  src/common/settings.c)
