/* longctx launch -n P [--heap SIZE] [--] CMD ARGS... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "longctx/symm.h"

static const char USAGE[] =
    "usage: longctx launch -n P [--heap SIZE] [--] CMD ARGS...\n"
    "Starts CMD as P PEs of one world on the built-in shm backend (each bound to its block of\n"
    "this job's CPUs), waits for all and exits with the first failing PE's status.\n";

int lc_cmd_launch(int argc, char **argv)
{
    lc_launch_opts o = {0};
    int i = 1;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        if (!strcmp(argv[i], "-n") || !strcmp(argv[i], "--pes") || !strcmp(argv[i], "--heap")) {
            char err[256];
            long long n;
            int rc = i + 1 >= argc ? LC_ERR_ARG
                     : argv[i][2] == 'h' ? lc_parse_bytes(argv[i], argv[i + 1], &o.heap_bytes, err, sizeof err)
                                         : lc_parse_count(argv[i], argv[i + 1], 1, 1024, &n, err, sizeof err);
            if (i + 1 >= argc) snprintf(err, sizeof err, "%s needs a value", argv[i]);
            else if (!rc && argv[i][2] == 'h' && !o.heap_bytes) rc = LC_ERR_ARG, snprintf(err, sizeof err, "--heap must not be 0");
            else if (!rc && argv[i][2] != 'h') o.n_pes = (int)n;
            if (rc) {
                fprintf(stderr, "longctx launch: %s\n", err);
                return 2;
            }
            i++;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "longctx launch: unknown option '%s'\n", argv[i]);
            return 2;
        } else {
            break;
        }
    }
    if (!o.n_pes || i >= argc) {
        fputs(USAGE, stderr);
        return 2;
    }
    int rc = lc_launch(&o, argv + i);
    return rc < 0 ? 2 : rc;
}
