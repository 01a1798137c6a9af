/* A PE that misbehaves on purpose: test_fault exit-early|sigkill|timeout|sleep.
 * PE 1 (or PE 0 for timeout) misbehaves; the others sit in a barrier and must be released
 * by the runtime with an error that names the culprit. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "longctx/symm.h"

int main(int argc, char **argv)
{
    if (argc < 2) return 2;
    const char *mode = argv[1];
    lc_world *w;
    if (!strcmp(mode, "heap-mismatch")) {
        /* PE 1 asks for a different heap: every PE must fail init with a message, not hang. */
        const char *pe = getenv("LONGCTX_PE");
        lc_world_opts o = {0};
        o.heap_bytes = pe && !strcmp(pe, "1") ? (64u << 20) : (32u << 20);
        int rc = lc_world_init(&o, &w);
        fprintf(stderr, "PE %s: rc=%d (%s)\n", pe ? pe : "?", rc, lc_status_str(rc));
        return rc ? 1 : 0;
    }
    if (lc_world_init(NULL, &w)) return 1;
    int me = lc_my_pe(w);
    uint64_t *sig = lc_symm_alloc(w, 8);
    if (!sig) return 1;
    if (!strcmp(mode, "sleep")) {
        sleep(600); /* the launcher's signal forwarding must end this */
        return 0;
    }
    int culprit = !strcmp(mode, "timeout") ? 0 : 1;
    int rc;
    if (me == culprit) {
        if (!strcmp(mode, "exit-early")) _exit(3);
        if (!strcmp(mode, "sigkill")) raise(SIGKILL);
        rc = lc_signal_wait_until(w, sig, LC_CMP_GE, 1, NULL); /* nobody will signal */
    } else {
        usleep(200000); /* be waiting in the barrier when the culprit fails */
        rc = lc_barrier(lc_team_world(w));
    }
    fprintf(stderr, "PE %d: rc=%d (%s): %s\n", me, rc, lc_status_str(rc), lc_last_error(w));
    lc_world_finalize(w); /* after an abort it returns at once, and frees the world */
    return rc ? 1 : 0;
}
