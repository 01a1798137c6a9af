/* Private to src/train. */
#ifndef LONGCTX_TRAIN_INTERNAL_H
#define LONGCTX_TRAIN_INTERNAL_H

#include "longctx/train.h"

/* Records a message for lc_train_last_error() and returns status. */
int lc_train__fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same, for an error every PE holds alike: reporter is the PE that prints it. */
int lc_train__fail_agreed(int reporter, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
