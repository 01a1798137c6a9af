/* Private to src/train. */
#ifndef LONGCTX_TRAIN_INTERNAL_H
#define LONGCTX_TRAIN_INTERNAL_H

#include "longctx/train.h"

/* Records a message for lc_train_last_error() and returns status. */
int lc_train__fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
