/* The status codes every longctx layer returns (common layer): a layer that only needs to
 * report an error includes this, not the runtime. Failing calls return a negative code and
 * leave a message naming what was wrong (see each layer's *_last_error). */
#ifndef LONGCTX_STATUS_H
#define LONGCTX_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    LC_OK = 0,
    LC_ERR_ARG = -1,         /* bad argument (message says which) */
    LC_ERR_NOMEM = -2,       /* symmetric heap exhausted */
    LC_ERR_TIMEOUT = -3,     /* a wait passed its deadline */
    LC_ERR_ABORT = -4,       /* another PE died or failed; the world is unusable */
    LC_ERR_MISMATCH = -5,    /* PEs disagree on a collective call (sizes, order) */
    LC_ERR_SYS = -6,         /* an OS call failed */
    LC_ERR_UNSUPPORTED = -7, /* backend or build lacks the feature */
    LC_STOPPED = -8          /* stopped early on request (lc_trainer_request_stop): resumable */
} lc_status;

const char *lc_status_str(int status);

#ifdef __cplusplus
}
#endif
#endif
