/* World lifetime: join the launcher's segment (or make a one-PE world), agree on the heap. */
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "symm/internal.h"

#define DEFAULT_HEAP (1ull << 30)
#define DEFAULT_HEARTBEAT_S 30.0

int lc_my_pe(const lc_world *w) { return w->me; }
int lc_n_pes(const lc_world *w) { return w->n; }
double lc_timeout_s(const lc_world *w) { return w->timeout_s; }
const char *lc_world_backend(const lc_world *w) { return w && w->be ? w->be->name : "none"; }

int lc_cores_per_pe(const lc_world *w) { return w ? w->cores : 1; }

static void detach(lc_world *w)
{
    if (w->be && w->be->detach) w->be->detach(w);
    else lc__shm_detach(w);
}

static int env_pair(const char *pe_var, const char *n_var, int *pe, int *n)
{
    const char *a = lc__env_str(pe_var), *b = lc__env_str(n_var);
    if (!a || !b) return 0;
    char *e1, *e2;
    long x = strtol(a, &e1, 10), y = strtol(b, &e2, 10);
    if (*e1 || *e2 || e1 == a || e2 == b || y < 1 || x < 0 || x >= y || y > LC_MAX_PES) return 0;
    if (pe) *pe = (int)x;
    if (n) *n = (int)y;
    return 1;
}

int lc_launched_as(int *pe, int *n_pes)
{
    if (lc__env_str("LONGCTX_SHM_FD")) return env_pair("LONGCTX_PE", "LONGCTX_NPES", pe, n_pes);
    return env_pair("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", pe, n_pes) ||
           env_pair("PMI_RANK", "PMI_SIZE", pe, n_pes) || env_pair("PMIX_RANK", "PMI_SIZE", pe, n_pes);
}

/* Whether an MPI launcher started this process (mpirun's or a PMI's environment). */
static int mpi_launched(void)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (lc__env_str(vars[i])) return 1;
    return 0;
}

/* The backend: lc_world_opts.backend, else $LONGCTX_BACKEND, else mpi when an MPI launcher
 * (and not longctx launch) started the process, else shm. */
static int pick_backend(lc_world *w, const lc_world_opts *o, int *mpi)
{
    const char *b = o->backend && *o->backend ? o->backend : lc__env_str("LONGCTX_BACKEND");
    const char *from = o->backend && *o->backend ? "lc_world_opts.backend" : "LONGCTX_BACKEND";
    *mpi = 0;
    if (!b || !*b || !strcmp(b, "auto")) {
        *mpi = !lc__env_str("LONGCTX_SHM_FD") && mpi_launched();
#ifndef LONGCTX_HAVE_MPI
        if (*mpi)
            return lc__err(w, LC_ERR_UNSUPPORTED, "started by an MPI launcher, but this longctx was built without "
                           "MPI (install libopenmpi-dev and configure with -DLONGCTX_MPI=ON); "
                           "set LONGCTX_BACKEND=shm to run each rank as a world of one");
#endif
        return LC_OK;
    }
    if (!strcmp(b, "shm")) return LC_OK;
    if (strcmp(b, "mpi"))
        return lc__err(w, LC_ERR_ARG, "%s=%s: unknown backend (expected shm, mpi or auto)", from, b);
#ifdef LONGCTX_HAVE_MPI
    if (lc__env_str("LONGCTX_SHM_FD"))
        return lc__err(w, LC_ERR_ARG, "%s=mpi, but this PE was started by `longctx launch` (the shm backend's "
                       "launcher): start it with mpirun instead", from);
    *mpi = 1;
    return LC_OK;
#else
    return lc__err(w, LC_ERR_UNSUPPORTED, "backend 'mpi' is not built in (available: shm); install "
                   "libopenmpi-dev and configure with -DLONGCTX_MPI=ON");
#endif
}

static void fail_init(lc_world *w)
{
    lc__log(w, "world init failed: %s", w->err);
    lc__heartbeat_stop(w);
    if (w->world_team) lc__team_free(w->world_team);
    lc__heap_release(w);
    if (w->hdr && w->me >= 0 && w->me < w->n) {
        /* Nobody else can finish a collective with us now: say so instead of letting them wait. */
        lc__abort(w, w->me, "PE %d failed to join the world: %s", w->me, w->err);
    }
    detach(w);
    free(w);
}

/* The CPUs this PE may use for its own threads: the launcher's share (LONGCTX_CORES_PER_PE,
 * the block it bound the PE to) within what the affinity mask allows; without a launcher,
 * the allowed CPUs. Never 0, and never more than the mask. */
static int my_cores(lc_world *w, char *cpus, size_t len)
{
    cpu_set_t set;
    int mask = 1;
    cpus[0] = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        mask = CPU_COUNT(&set);
        size_t k = 0;
        for (int c = 0; c < CPU_SETSIZE && k + 12 < len; c++) {
            if (!CPU_ISSET(c, &set)) continue;
            int e = c;
            while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, &set)) e++;
            k += (size_t)snprintf(cpus + k, len - k, e > c ? "%s%d-%d" : "%s%d", k ? "," : "", c, e);
            c = e;
        }
    }
    long long share = mask;
    char msg[256];
    if (lc__env_count("LONGCTX_CORES_PER_PE", mask, 1, CPU_SETSIZE, &share, msg, sizeof msg) != LC_OK)
        share = mask; /* only the launcher sets it; a stray value must not break init */
    if (share > mask) share = mask;
    (void)w;
    return share < 1 ? 1 : (int)share;
}

/* Reads the LONGCTX_* settings of a PE. A bad value is an error naming the variable, never
 * silently replaced by the default. */
static int read_env(lc_world *w, const lc_world_opts *o, size_t *heap)
{
    char msg[512];
    long long spin;
    double hb;
    int rc;
    *heap = o->heap_bytes;
    if ((rc = lc__env_flag("LONGCTX_DEBUG", &w->debug, msg, sizeof msg)) ||
        (!o->timeout_s && (rc = lc__env_seconds("LONGCTX_TIMEOUT", INFINITY, 1, &w->timeout_s, msg, sizeof msg))) ||
        (!o->heap_bytes && (rc = lc__env_bytes("LONGCTX_HEAP_SIZE", DEFAULT_HEAP, heap, msg, sizeof msg))) ||
        (rc = lc__env_count("LONGCTX_SPIN_US", -1, 0, 1000000000000LL, &spin, msg, sizeof msg)) ||
        (rc = lc__env_seconds("LONGCTX_HEARTBEAT_S", DEFAULT_HEARTBEAT_S, 1, &hb, msg, sizeof msg)))
        return lc__err(w, rc, "%s", msg);
    if (o->timeout_s) w->timeout_s = o->timeout_s;
    if (!(w->timeout_s > 0)) return lc__err(w, LC_ERR_ARG, "lc_world_opts.timeout_s = %g must be > 0", o->timeout_s);
    w->heartbeat_s = hb;
    w->spin_us = (double)spin; /* -1: decided once the PE count is known */
    const char *b = lc__env_str("LONGCTX_BIND");
    if (b && *b && strcmp(b, "none") && strcmp(b, "core"))
        return lc__err(w, LC_ERR_ARG, "LONGCTX_BIND=%s: expected core (a block of CPUs per PE, the default) or none", b);
    const char *pl = lc__env_str("LONGCTX_PERMUTE");
    /* The one reading of $LONGCTX_PERMUTE: lc_lowering_resolve applies it everywhere. Only
     * the lowerings a permute has may be pinned. */
    if (pl && *pl && (lc_lowering_parse(pl, &w->permute_override) != 0 ||
                      w->permute_override > LC_LOWER_TWO_SIDED))
        return lc__err(w, LC_ERR_ARG, "LONGCTX_PERMUTE=%s: expected one_sided, two_sided or auto", pl);
    return LC_OK;
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
    w->log = o.log;
    w->log_ctx = o.log_ctx;
    size_t heap;
    int use_mpi = 0;
    int rc = read_env(w, &o, &heap);
    if (rc == LC_OK) rc = pick_backend(w, &o, &use_mpi);
    if (rc != LC_OK) {
        lc__log(w, "%s", w->err);
        free(w);
        return rc;
    }
#ifdef LONGCTX_HAVE_MPI
    rc = use_mpi ? lc__mpi_attach(w, heap) : lc__shm_attach(w, heap);
#else
    rc = lc__shm_attach(w, heap);
#endif
    if (rc != LC_OK) {
        fail_init(w);
        return rc;
    }
    char cpus[256];
    w->cores = my_cores(w, cpus, sizeof cpus);
    /* Spinning only pays when every PE has a core; oversubscribed PEs must yield fast. */
    if (w->spin_us < 0) w->spin_us = (long)w->n <= sysconf(_SC_NPROCESSORS_ONLN) ? 200 : 0;
    if ((rc = lc__heap_init(w)) != LC_OK || (rc = lc__team_world_create(w)) != LC_OK ||
        (rc = lc__heartbeat_start(w)) != LC_OK || (rc = lc__barrier(w->world_team, "lc_world_init")) != LC_OK) {
        fail_init(w);
        return rc;
    }
    for (int p = 0; p < w->n; p++) {
        lc_pe_info *info = lc__pe_info(w, p); /* NULL on another host: mpi.c checked it */
        uint64_t hp = info ? atomic_load(&info->heap_req) : w->heap_bytes;
        if (hp != w->heap_bytes) {
            rc = lc__err(w, LC_ERR_MISMATCH,
                         "symmetric heap sizes differ: PE %d asked for %zu bytes, PE %d for %llu "
                         "(set LONGCTX_HEAP_SIZE the same for all)",
                         w->me, w->heap_bytes, p, (unsigned long long)hp);
            fail_init(w);
            return rc;
        }
    }
    lc__debug(w, "joined world of %d PEs, backend %s, heap %zu bytes, timeout %.1f s, heartbeat %.1f s", w->n,
              w->be->name, w->heap_bytes, w->timeout_s, w->heartbeat_s);
    lc__debug(w, "CPUs %s, %d core%s for this PE's threads (lc_cores_per_pe)", cpus, w->cores,
              w->cores == 1 ? "" : "s");
    *out = w;
    return LC_OK;
}

int lc_world_finalize(lc_world *w)
{
    if (!w) return LC_ERR_ARG;
    int rc = lc__aborted(w) ? LC_ERR_ABORT : lc__barrier(w->world_team, "lc_world_finalize");
    if (rc == LC_OK) atomic_store(&lc__pe_info(w, w->me)->state, LC_PE_FINALIZED);
    else if (rc == LC_ERR_ABORT && !w->err[0]) lc__abort_error(w, "lc_world_finalize");
    if (rc) lc__log(w, "%s", w->err);
    lc__heartbeat_stop(w);
    lc__team_free(w->world_team);
    lc__heap_release(w);
    detach(w);
    free(w);
    return rc;
}
