/* World lifetime: join the launcher's segment (or make a one-PE world), agree on the heap. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "symm/internal.h"

#define DEFAULT_HEAP (1ull << 30)

int lc_my_pe(const lc_world *w) { return w->me; }
int lc_n_pes(const lc_world *w) { return w->n; }
double lc_timeout_s(const lc_world *w) { return w->timeout_s; }

static void fail_init(lc_world *w)
{
    fprintf(stderr, "longctx: world init failed: %s\n", w->err);
    if (w->world_team) lc_team_destroy(w->world_team);
    lc__heap_release(w);
    if (w->hdr && w->me >= 0 && w->me < w->n) {
        /* Nobody else can finish a collective with us now: say so instead of letting them wait. */
        lc__abort(w, w->me, "PE %d failed to join the world: %s", w->me, w->err);
    }
    lc__shm_detach(w);
    free(w);
}

int lc_world_init(const lc_world_opts *opts, lc_world **out)
{
    lc_world_opts o = {0};
    if (opts) o = *opts;
    if (!out) return LC_ERR_ARG;
    *out = NULL;
    lc_world *w = calloc(1, sizeof *w);
    if (!w) return LC_ERR_SYS;
    w->me = -1;
    w->debug = getenv("LONGCTX_DEBUG") && strcmp(getenv("LONGCTX_DEBUG"), "0");
    w->timeout_s = o.timeout_s > 0 ? o.timeout_s : lc__env_double("LONGCTX_TIMEOUT", 120.0);
    size_t heap = o.heap_bytes ? o.heap_bytes : lc__env_size("LONGCTX_HEAP_SIZE", DEFAULT_HEAP);
    int rc = LC_OK;
    if (o.backend && strcmp(o.backend, "shm")) {
        rc = lc__err(w, LC_ERR_UNSUPPORTED, "backend '%s' is not built in (available: shm)", o.backend);
        fprintf(stderr, "longctx: %s\n", w->err);
        free(w);
        return rc;
    }
    const char *pl = getenv("LONGCTX_PERMUTE");
    if (pl && *pl && lc_lowering_parse(pl, &w->permute_override) != 0) {
        rc = lc__err(w, LC_ERR_ARG, "LONGCTX_PERMUTE=%s: expected one_sided, two_sided or auto", pl);
        fprintf(stderr, "longctx: %s\n", w->err);
        free(w);
        return rc;
    }
    if ((rc = lc__shm_attach(w, heap)) != LC_OK) {
        fail_init(w);
        return rc;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    /* Spinning only pays when every PE has a core; oversubscribed PEs must yield fast. */
    w->spin_us = (long)w->n <= ncpu ? 200 : 0; /* microseconds of spinning */
    const char *sp = getenv("LONGCTX_SPIN_US");
    if (sp && *sp) w->spin_us = atol(sp);
    if ((rc = lc__heap_init(w)) != LC_OK || (rc = lc__team_world_create(w)) != LC_OK ||
        (rc = lc__barrier(w->world_team, "lc_world_init")) != LC_OK) {
        fail_init(w);
        return rc;
    }
    for (int p = 0; p < w->n; p++) {
        uint64_t hp = atomic_load(&w->hdr->pe[p].heap_req);
        if (hp != w->heap_bytes) {
            rc = lc__err(w, LC_ERR_MISMATCH,
                         "symmetric heap sizes differ: PE %d asked for %zu bytes, PE %d for %llu "
                         "(set LONGCTX_HEAP_SIZE the same for all)",
                         w->me, w->heap_bytes, p, (unsigned long long)hp);
            fail_init(w);
            return rc;
        }
    }
    lc__debug(w, "joined world of %d PEs, backend %s, heap %zu bytes, timeout %.1f s", w->n,
              w->be->name, w->heap_bytes, w->timeout_s);
    *out = w;
    return LC_OK;
}

int lc_world_finalize(lc_world *w)
{
    if (!w) return LC_ERR_ARG;
    int rc = lc__aborted(w) ? LC_ERR_ABORT : lc__barrier(w->world_team, "lc_world_finalize");
    if (rc == LC_OK) atomic_store(&w->hdr->pe[w->me].state, LC_PE_FINALIZED);
    else if (rc == LC_ERR_ABORT && !w->err[0]) lc__abort_error(w, "lc_world_finalize");
    if (rc) fprintf(stderr, "longctx: %s\n", w->err);
    lc_team_destroy(w->world_team);
    lc__heap_release(w);
    lc__shm_detach(w);
    free(w);
    return rc;
}
