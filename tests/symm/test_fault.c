/* A PE that misbehaves on purpose:
 *   test_fault exit-early|sigkill|timeout|sleep|heap-mismatch|stop|busy|hang|bad-root|bad-map|
 *              private-dst|cores|api
 * PE 1 (or PE 0 for timeout) misbehaves; the others sit in a barrier and must be released
 * by the runtime with an error that names the culprit (busy: must NOT be released). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "longctx/symm.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The world's log sink gets the runtime's messages (LONGCTX_DEBUG=1 here), and destroying
 * the world team is a no-op that leaves finalize working. */
static char g_log[8192];
static void sink(void *ctx, const char *line)
{
    size_t n = strlen(g_log);
    snprintf(g_log + n, sizeof g_log - n, "[%s] %s\n", (const char *)ctx, line);
}

static int api_checks(void)
{
    lc_world *w;
    lc_world_opts o = {0};
    o.log = sink;
    o.log_ctx = "sink";
    int rc = lc_world_init(&o, &w), ok = rc == LC_OK;
    if (!ok) return 1;
    lc_team_destroy(lc_team_world(w)); /* owned by the world: must do nothing */
    ok &= lc_barrier(lc_team_world(w)) == LC_OK;
    lc_world_log(w, "hello from PE %d", lc_my_pe(w));
    ok &= lc_world_debug(w) == 1 && lc_cores_per_pe(w) >= 1;
    ok &= strstr(g_log, "[sink] longctx[PE ") && strstr(g_log, "joined world") && strstr(g_log, "hello from PE");
    ok &= lc_world_finalize(w) == LC_OK;
    printf("PE %s: api %s\n%s", getenv("LONGCTX_PE") ? getenv("LONGCTX_PE") : "0", ok ? "ok" : "FAILED", g_log);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) return 2;
    const char *mode = argv[1];
    const char *pe = getenv("LONGCTX_PE");
    lc_world *w;
    if (!strcmp(mode, "heap-mismatch")) {
        /* PE 1 asks for a different heap: every PE must fail init with a message, not hang. */
        lc_world_opts o = {0};
        o.heap_bytes = pe && !strcmp(pe, "1") ? (64u << 20) : (32u << 20);
        int rc = lc_world_init(&o, &w);
        fprintf(stderr, "PE %s: rc=%d (%s)\n", pe ? pe : "?", rc, lc_status_str(rc));
        return rc ? 1 : 0;
    }
    if (!strcmp(mode, "api")) return api_checks();
    int rc = lc_world_init(NULL, &w);
    if (rc) {
        fprintf(stderr, "PE %s: rc=%d (%s) in lc_world_init\n", pe ? pe : "?", rc, lc_status_str(rc));
        return 1;
    }
    int me = lc_my_pe(w);
    if (!strcmp(mode, "cores")) {
        /* The launcher's block of cores, seen from inside the PE. */
        printf("PE %d of %d: cores=%d\n", me, lc_n_pes(w), lc_cores_per_pe(w));
        return lc_world_finalize(w) ? 1 : 0;
    }
    uint64_t *sig = lc_symm_alloc(w, 8);
    if (!sig) {
        /* A survivor may still be inside the allocation's barrier when the culprit fails:
         * that is a reported error too (the old test lost it, and counted one PE short). */
        fprintf(stderr, "PE %d: rc=-1 in lc_symm_alloc: %s\n", me, lc_last_error(w));
        lc_world_finalize(w);
        return 1;
    }
    if (!strcmp(mode, "sleep")) {
        sleep(600); /* the launcher's signal forwarding must end this */
        return 0;
    }
    int culprit = !strcmp(mode, "timeout") ? 0 : 1;
    double t0 = now();
    if (me == culprit) {
        if (!strcmp(mode, "exit-early")) _exit(3);
        if (!strcmp(mode, "sigkill")) raise(SIGKILL);
        if (!strcmp(mode, "stop")) raise(SIGSTOP); /* the launcher kills it after the abort */
        if (!strcmp(mode, "hang")) sleep(600);     /* the test kills it while the launcher is stopped */
        if (!strcmp(mode, "busy")) {
            /* Compute without communicating for several heartbeat bounds: alive, not dead. */
            double secs = argc > 2 ? atof(argv[2]) : 3.0;
            volatile double x = 0;
            while (now() - t0 < secs)
                for (int i = 0; i < 100000; i++) x += 1e-9 * i;
        }
        if (!strcmp(mode, "bad-root")) {
            /* A bad argument on one PE only: every PE must fail fast with this reason. */
            uint64_t v = 0;
            rc = lc_broadcast(lc_team_world(w), &v, &v, sizeof v, 99);
        } else if (!strcmp(mode, "bad-map")) {
            int map[3] = {3, 2, 0};
            lc_permute_req r;
            rc = lc_permute_start_map(lc_team_world(w), map, sig, sig, 8, LC_LOWER_AUTO, &r);
        } else if (!strcmp(mode, "private-dst")) {
            uint64_t local[1] = {0};
            lc_permute_req r;
            rc = lc_permute_start(lc_team_world(w), 1, sig, local, 8, LC_LOWER_ONE_SIDED, &r);
        } else if (!strcmp(mode, "zero-copy-permute")) {
            lc_permute_req r; /* a permute copies: zero_copy is the consumer's lowering, not its */
            rc = lc_permute_start(lc_team_world(w), 1, sig, sig, 8, LC_LOWER_ZERO_COPY, &r);
        } else if (!strcmp(mode, "busy")) {
            rc = lc_barrier(lc_team_world(w));
        } else {
            rc = lc_signal_wait_until(w, sig, LC_CMP_GE, 1, NULL); /* nobody will signal */
        }
    } else {
        usleep(200000); /* be waiting in the barrier when the culprit fails */
        if (!strcmp(mode, "bad-root")) {
            uint64_t v = 7;
            rc = lc_broadcast(lc_team_world(w), &v, &v, sizeof v, 1);
        } else if (!strcmp(mode, "bad-map") || !strcmp(mode, "private-dst") || !strcmp(mode, "zero-copy-permute")) {
            uint64_t v = 5;
            lc_permute_req r;
            rc = lc_permute_start(lc_team_world(w), 1, &v, sig, 8, LC_LOWER_ONE_SIDED, &r);
            if (!rc) rc = lc_permute_done(&r);
        } else {
            rc = lc_barrier(lc_team_world(w));
        }
    }
    fprintf(stderr, "PE %d: rc=%d (%s) after %.2f s: %s\n", me, rc, lc_status_str(rc), now() - t0,
            rc ? lc_last_error(w) : "");
    int frc = lc_world_finalize(w); /* after an abort it returns at once, and frees the world */
    return rc || frc ? 1 : 0;
}
