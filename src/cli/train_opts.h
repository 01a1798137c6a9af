/* The options of `longctx train` (train_opts.c): one table that parses them, prints the
 * usage and says which a resume takes from the checkpoint. */
#ifndef LONGCTX_CLI_TRAIN_OPTS_H
#define LONGCTX_CLI_TRAIN_OPTS_H

#include <stdio.h>

#include "longctx/ckpt.h"
#include "longctx/settings.h"
#include "longctx/trainer.h"

#define LC_TRAIN_PATH_MAX 1024 /* what a checkpoint records of a data path */
#define LC_TRAIN_MAX_GIVEN 128

/* Everything `longctx train` takes: the trainer's options and the CLI's own. */
typedef struct {
    lc_trainer_opts o;
    const char *model, *data, *backend;
    const char *plan_mode; /* --plan auto: the planner chooses the mesh and the CP settings */
    int pes, worker;
    size_t heap;
    int max_restarts;      /* restart a failed world this many times from the newest checkpoint */
    int min_pes;           /* > 0: a PE that cannot start again is left out, down to this many */
    double term_grace;     /* seconds a SIGTERM gives the PEs to finish and save their step */
    char train[LC_TRAIN_PATH_MAX], val[LC_TRAIN_PATH_MAX];
    const char *given[LC_TRAIN_MAX_GIVEN]; /* the flags on the command line */
    int n_given;
} lc_train_args;

void lc_train_args_defaults(lc_train_args *a);
void lc_train_usage(FILE *f);
/* Parses argv[1..] into a (after lc_train_args_defaults). 0; 1 for --help / -h; -1 with the
 * reason in err. */
int lc_train_args_parse(lc_train_args *a, int argc, char **argv, char *err, size_t len);
int lc_train_args_given(const lc_train_args *a, const char *flag);
/* A resume: every setting checkpoint ck (state st) recorded and the command line did not give
 * is taken from it, through the same parser (the global batch is kept: --accum follows --dp);
 * took[] lists them as flags (a switch only when on). said[] gets the recorded settings this
 * run changes (the lr, the CP algorithm, layout and lowering may). Conflicts are lc_trainer_resume_check's to find. 0, or -1 with err. */
int lc_train_args_resume(lc_train_args *a, const lc_ckpt_state *st, const char *ck, char *took, size_t took_len,
                         char *said, size_t said_len, char *err, size_t len);

#endif
