/* longctx launch -n P [--heap SIZE] [--] CMD ARGS... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "longctx/symm.h"

int lc_cmd_launch(int argc, char **argv)
{
    lc_launch_opts o = {0};
    int i = 1;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        if (!strcmp(argv[i], "-n") || !strcmp(argv[i], "--pes")) {
            char *end;
            if (i + 1 >= argc || (o.n_pes = (int)strtol(argv[i + 1], &end, 10), *end) || o.n_pes < 1) {
                fprintf(stderr, "longctx launch: -n needs a positive PE count\n");
                return 2;
            }
            i++;
        } else if (!strcmp(argv[i], "--heap")) {
            if (i + 1 >= argc || lc_parse_size(argv[i + 1], &o.heap_bytes) || !o.heap_bytes) {
                fprintf(stderr, "longctx launch: --heap needs a size like 256M or 2G\n");
                return 2;
            }
            i++;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "longctx launch: unknown option %s\n", argv[i]);
            return 2;
        } else {
            break;
        }
    }
    if (!o.n_pes || i >= argc) {
        fprintf(stderr, "usage: longctx launch -n P [--heap SIZE] [--] CMD ARGS...\n");
        return 2;
    }
    int rc = lc_launch(&o, argv + i);
    return rc < 0 ? 2 : rc;
}
