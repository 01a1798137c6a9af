/* longctx prepare-data OUTDIR [--source DIR] [--val-every N]: train.bin and val.bin (byte
 * tokens, llm.c format) from the Python documentation that Debian's python3-doc installs. */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "longctx/train.h"

static int is_dir(const char *p)
{
    struct stat st;
    return !stat(p, &st) && S_ISDIR(st.st_mode);
}

/* python3-doc links /usr/share/doc/python3-doc/html to the versioned package's HTML. */
static int find_source(char *out, size_t n)
{
    const char *fixed[] = {"/usr/share/doc/python3-doc/html", "/usr/share/doc/python3/html"};
    for (size_t i = 0; i < 2; i++)
        if (is_dir(fixed[i])) return snprintf(out, n, "%s", fixed[i]), 0;
    glob_t g;
    int found = -1;
    if (!glob("/usr/share/doc/python3.*/html", 0, NULL, &g)) {
        for (size_t i = g.gl_pathc; i-- > 0 && found;)
            if (is_dir(g.gl_pathv[i])) snprintf(out, n, "%s", g.gl_pathv[i]), found = 0;
        globfree(&g);
    }
    return found;
}

int lc_cmd_prepare_data(int argc, char **argv)
{
    const char *out = NULL, *src = NULL;
    int val_every = 20;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--source") && i + 1 < argc) src = argv[++i];
        else if (!strcmp(argv[i], "--val-every") && i + 1 < argc) {
            char *e;
            val_every = (int)strtol(argv[++i], &e, 10);
            if (*e || val_every < 2) {
                fprintf(stderr, "longctx prepare-data: --val-every needs an integer >= 2\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: longctx prepare-data OUTDIR [--source HTMLDIR] [--val-every 20]\n"
                   "Writes OUTDIR/train.bin and OUTDIR/val.bin (llm.c token files, byte tokens,\n"
                   "documents ended by byte 0) from the Python documentation of Debian's\n"
                   "python3-doc (default source /usr/share/doc/python3-doc/html).\n");
            return 0;
        } else if (argv[i][0] == '-' || out) {
            fprintf(stderr, "longctx prepare-data: unexpected argument %s (see --help)\n", argv[i]);
            return 2;
        } else {
            out = argv[i];
        }
    }
    if (!out) {
        fprintf(stderr, "usage: longctx prepare-data OUTDIR [--source HTMLDIR] [--val-every N]\n");
        return 2;
    }
    /* "data/" names the folder as "data" does: the paths below must not read "data//train.bin" */
    char outdir[4096];
    snprintf(outdir, sizeof outdir, "%s", out);
    for (size_t n = strlen(outdir); n > 1 && outdir[n - 1] == '/'; n--) outdir[n - 1] = 0;
    out = outdir;
    char buf[4096];
    if (!src) {
        if (find_source(buf, sizeof buf)) {
            fprintf(stderr, "longctx prepare-data: no Python documentation under /usr/share/doc; "
                            "install it with: apt-get install python3-doc (scripts/setup.sh does)\n");
            return 1;
        }
        src = buf;
    }
    lc_corpus_stats st;
    if (lc_corpus_build(src, out, val_every, &st)) {
        fprintf(stderr, "longctx prepare-data: %s\n", lc_train_last_error());
        return 1;
    }
    printf("prepare-data: %lld pages (%.1f MB of HTML) from %s -> %s/train.bin (%lld tokens), "
           "%s/val.bin (%lld tokens)\n",
           (long long)st.docs, (double)st.html_bytes / 1e6, src, out, (long long)st.train_tokens, out,
           (long long)st.val_tokens);
    return 0;
}
