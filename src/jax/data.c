/* The training data as `longctx train` reads it, for JAX programs (examples/jax_llama.py):
 * global sample g of an llm.c token file under (seq_len, seed), through the trainer's own
 * loader, so that a JAX run and a longctx run see the same tokens at the same step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "longctx/train.h"

#define LCJ_EXPORT __attribute__((visibility("default")))

static struct {
    char path[4096];
    long long seq_len;
    unsigned long long seed;
    int doc_sep;
    lc_tokfile *f;
    lc_loader *l;
} D;
static char D_err[1024];

LCJ_EXPORT const char *lcj_data_error(void) { return D_err; }

/* tokens, targets and doc ids (may be NULL) [seq_len] of sample g. doc_sep < 0: no document
 * masking (targets never -1). 0, or -1 with lcj_data_error. */
LCJ_EXPORT int lcj_sample(const char *path, long long seq_len, unsigned long long seed, int doc_sep, long long g,
                          int32_t *tok, int32_t *tgt, int32_t *doc)
{
    if (!D.l || strcmp(D.path, path) || D.seq_len != seq_len || D.seed != seed || D.doc_sep != doc_sep) {
        lc_loader_destroy(D.l);
        lc_tokfile_close(D.f);
        memset(&D, 0, sizeof D);
        lc_loader_config c = {seq_len, seed, 0, 1, 1, doc_sep};
        if (lc_tokfile_open(path, 0, seq_len + 1, &D.f) || lc_loader_create(D.f, &c, &D.l)) {
            snprintf(D_err, sizeof D_err, "%s", lc_train_last_error());
            lc_tokfile_close(D.f);
            D.f = NULL;
            D.l = NULL;
            return -1;
        }
        snprintf(D.path, sizeof D.path, "%s", path);
        D.seq_len = seq_len;
        D.seed = seed;
        D.doc_sep = doc_sep;
    }
    if (lc_loader_sample(D.l, g, tok, tgt, doc)) {
        snprintf(D_err, sizeof D_err, "%s", lc_train_last_error());
        return -1;
    }
    return 0;
}
