/* The shm launcher: one memfd segment, P children that inherit it, and a reaper that turns
 * any early death into a world abort naming the PE, so that no survivor waits forever. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "symm/internal.h"

static volatile sig_atomic_t g_forward_sig;

static void on_signal(int sig) { g_forward_sig = sig; }

static void describe_status(int status, char *buf, size_t len)
{
    if (WIFEXITED(status)) snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else snprintf(buf, len, "ended with wait status %d", status);
}

static int exit_code(int status)
{
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
}

/* PE i gets the i-th CPU of the launcher's allowed set when there are enough (like
 * mpirun --bind-to core). Without it the scheduler may start both PEs of a ring on one core,
 * where each hand-off waits for a time slice. LONGCTX_BIND=none turns it off. */
static void bind_to_core(int pe, int n)
{
    const char *b = getenv("LONGCTX_BIND");
    if (b && !strcmp(b, "none")) return;
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0 || CPU_COUNT(&allowed) < n) return;
    for (int cpu = 0, k = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &allowed)) continue;
        if (k++ == pe) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            sched_setaffinity(0, sizeof one, &one);
            return;
        }
    }
}

int lc_launch(const lc_launch_opts *opts, char *const argv[])
{
    int n = opts ? opts->n_pes : 0;
    if (n < 1 || n > LC_MAX_PES) {
        fprintf(stderr, "longctx launch: -n must be in [1, %d], got %d\n", LC_MAX_PES, n);
        return -1;
    }
    if (!argv || !argv[0]) {
        fprintf(stderr, "longctx launch: no command to run\n");
        return -1;
    }
    size_t heap = opts->heap_bytes ? opts->heap_bytes : lc__env_size("LONGCTX_HEAP_SIZE", 1ull << 30);
    size_t total = lc__segment_bytes(n, heap, NULL, NULL);
    int fd = memfd_create("longctx", 0);
    if (fd < 0) {
        fprintf(stderr, "longctx launch: memfd_create: %s\n", strerror(errno));
        return -1;
    }
    if (ftruncate(fd, (off_t)total) != 0) {
        fprintf(stderr, "longctx launch: sizing the %zu-byte segment: %s\n", total, strerror(errno));
        close(fd);
        return -1;
    }
    /* The launcher maps the whole segment: it must ring every PE's doorbell on abort. */
    uint8_t *map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        fprintf(stderr, "longctx launch: mmap: %s\n", strerror(errno));
        close(fd);
        return -1;
    }
    lc__shm_init_header(map, n, heap);
    lc_world view = {0}; /* a world-shaped view so the abort helpers work from here */
    view.me = -1;
    view.n = n;
    view.map = map;
    view.map_bytes = total;
    view.hdr = (lc_shm_header *)map;
    view.ctrl0 = map + view.hdr->ctrl_off;
    view.heap0 = map + view.hdr->heap_off;
    view.ctrl_stride = view.hdr->ctrl_stride;
    view.heap_stride = view.hdr->heap_stride;

    struct sigaction sa = {0}, old_int, old_term, old_hup;
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);
    g_forward_sig = 0;

    pid_t *pids = calloc((size_t)n, sizeof(pid_t));
    int *done = calloc((size_t)n, sizeof(int));
    pid_t me = getpid();
    char fdbuf[32], pebuf[32], nbuf[32], heapbuf[32];
    snprintf(fdbuf, sizeof fdbuf, "%d", fd);
    snprintf(nbuf, sizeof nbuf, "%d", n);
    snprintf(heapbuf, sizeof heapbuf, "%zu", heap);
    int started = 0, first_bad = 0, alive = 0;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "longctx launch: fork of PE %d: %s\n", i, strerror(errno));
            first_bad = 1;
            break;
        }
        if (pid == 0) {
            /* A PE must not outlive its launcher (a SIGKILLed launcher cannot clean up). */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != me) _exit(125);
            signal(SIGINT, SIG_DFL);
            signal(SIGTERM, SIG_DFL);
            signal(SIGHUP, SIG_DFL);
            bind_to_core(i, n);
            snprintf(pebuf, sizeof pebuf, "%d", i);
            setenv("LONGCTX_PE", pebuf, 1);
            setenv("LONGCTX_NPES", nbuf, 1);
            setenv("LONGCTX_SHM_FD", fdbuf, 1);
            setenv("LONGCTX_HEAP_SIZE", heapbuf, 1);
            execvp(argv[0], argv);
            fprintf(stderr, "longctx launch: PE %d: cannot run %s: %s\n", i, argv[0], strerror(errno));
            _exit(127);
        }
        pids[i] = pid;
        atomic_store(&view.hdr->pe[i].pid, (int32_t)pid);
        started++;
        alive++;
    }
    if (first_bad) {
        lc__abort(&view, -1, "the launcher could not start every PE");
        for (int i = 0; i < started; i++) kill(pids[i], SIGKILL);
    }
    double abort_at = 0, grace = lc__env_double("LONGCTX_ABORT_GRACE", 10.0);
    int forwarded = 0;
    while (alive > 0) {
        int status;
        /* Block while all is well (a polling launcher would steal cycles from the PEs);
         * poll only while forwarding a signal or counting down the abort grace period. */
        int polling = g_forward_sig || abort_at;
        pid_t pid = waitpid(-1, &status, polling ? WNOHANG : 0);
        if (pid == 0) {
            if (g_forward_sig && !forwarded) {
                for (int i = 0; i < started; i++)
                    if (!done[i]) kill(pids[i], g_forward_sig);
                forwarded = 1;
                if (!abort_at) abort_at = lc__now();
            }
            if (abort_at && lc__now() - abort_at > grace) {
                /* A PE that ignores the abort (stuck outside the runtime) is ended. */
                for (int i = 0; i < started; i++)
                    if (!done[i]) {
                        if (!opts->quiet)
                            fprintf(stderr, "longctx launch: PE %d did not stop %.0f s after the abort; killing it\n",
                                    i, grace);
                        kill(pids[i], SIGKILL);
                    }
                abort_at = lc__now() + 1e9;
            }
            struct timespec ts = {0, 5 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        if (pid < 0) {
            if (errno == EINTR) continue;
            break;
        }
        int i = 0;
        while (i < started && pids[i] != pid) i++;
        if (i == started) continue;
        done[i] = 1;
        alive--;
        int code = exit_code(status);
        uint32_t st = atomic_load(&view.hdr->pe[i].state);
        /* A PE that joined the world and left without finalizing strands its peers. */
        int stranded = st == LC_PE_RUNNING;
        if (code != 0 || stranded) {
            char how[128];
            describe_status(status, how, sizeof how);
            if (!atomic_load(&view.hdr->abort_state)) {
                lc__abort(&view, i, "PE %d %s%s", i, how, stranded ? " before lc_world_finalize" : "");
                if (!opts->quiet) fprintf(stderr, "longctx launch: PE %d %s\n", i, how);
            }
            atomic_store(&view.hdr->pe[i].state, LC_PE_DEAD);
            if (!first_bad) first_bad = code ? code : 1;
            if (!abort_at) abort_at = lc__now();
        }
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    free(pids);
    free(done);
    munmap(map, total);
    close(fd);
    if (g_forward_sig && !first_bad) first_bad = 128 + g_forward_sig;
    return first_bad;
}
