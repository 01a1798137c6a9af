#include <stdarg.h>
#include <stdio.h>

#include "train/internal.h"

static _Thread_local char g_err[512];
static _Thread_local int g_reporter = -1;

const char *lc_train_last_error(void)
{
    return g_err;
}

int lc_train_error_reporter(void)
{
    return g_reporter;
}

int lc_train__fail(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    g_reporter = -1;
    return status;
}

int lc_train__fail_agreed(int reporter, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    g_reporter = reporter;
    return status;
}
