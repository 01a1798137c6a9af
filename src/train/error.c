#include <stdarg.h>
#include <stdio.h>

#include "train/internal.h"

static _Thread_local char g_err[512];

const char *lc_train_last_error(void)
{
    return g_err;
}

int lc_train__fail(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return status;
}
