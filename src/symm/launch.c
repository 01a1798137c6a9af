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

/* The cores of the job are the launcher's allowed CPUs (its cpuset or taskset), never
 * CPU 0.. of the machine: two jobs started side by side in different cpusets must not pile
 * onto the same cores. PE i gets the i-th block of per = allowed / P of them (mpirun
 * --map-by slot:PE=per --bind-to core), so its kernel and BLAS threads have cores of their
 * own; lc_cores_per_pe tells the PE how many. With more PEs than CPUs they share the
 * allowed set and count one core each. */
typedef struct {
    cpu_set_t allowed;
    int n_allowed, per, bind;
} cpu_plan;

static int plan_cpus(cpu_plan *c, int n, char *err, size_t len)
{
    const char *b = lc__env_str("LONGCTX_BIND");
    c->bind = !(b && !strcmp(b, "none"));
    if (b && *b && strcmp(b, "none") && strcmp(b, "core")) {
        snprintf(err, len, "LONGCTX_BIND=%s: expected core (a block of CPUs per PE, the default) or none", b);
        return -1;
    }
    if (sched_getaffinity(0, sizeof c->allowed, &c->allowed) != 0) {
        c->bind = 0;
        c->n_allowed = (int)sysconf(_SC_NPROCESSORS_ONLN);
    } else {
        c->n_allowed = CPU_COUNT(&c->allowed);
    }
    c->per = c->n_allowed >= n ? c->n_allowed / n : 1;
    if (c->n_allowed < n) c->bind = 0; /* no core of its own to give: the scheduler shares */
    return 0;
}

static void bind_pe(const cpu_plan *c, int pe, char *desc, size_t len)
{
    snprintf(desc, len, "unbound");
    if (!c->bind) return;
    cpu_set_t mine;
    CPU_ZERO(&mine);
    int first = pe * c->per, k = 0, lo = -1, hi = -1;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &c->allowed)) continue;
        if (k >= first && k < first + c->per) {
            CPU_SET(cpu, &mine);
            if (lo < 0) lo = cpu;
            hi = cpu;
        }
        k++;
    }
    if (sched_setaffinity(0, sizeof mine, &mine) == 0)
        snprintf(desc, len, c->per > 1 ? "CPUs %d..%d (%d of them)" : "CPU %d", lo, hi, c->per);
    else
        snprintf(desc, len, "unbound (sched_setaffinity: %s)", strerror(errno));
}

double lc_now_s(void) { return lc__now(); }

int lc_launch(const lc_launch_opts *opts, char *const argv[])
{
    int n = opts ? opts->n_pes : 0;
    if (opts && opts->report) {
        memset(opts->report, 0, sizeof *opts->report);
        opts->report->pe = -1;
    }
    if (n < 1 || n > LC_MAX_PES) {
        fprintf(stderr, "longctx launch: -n must be in [1, %d], got %d\n", LC_MAX_PES, n);
        return -1;
    }
    if (!argv || !argv[0]) {
        fprintf(stderr, "longctx launch: no command to run\n");
        return -1;
    }
    char msg[512];
    size_t heap = opts->heap_bytes;
    double grace;
    int debug;
    cpu_plan cpus;
    if ((!heap && lc__env_bytes("LONGCTX_HEAP_SIZE", 1ull << 30, &heap, msg, sizeof msg)) ||
        lc__env_seconds("LONGCTX_ABORT_GRACE", 10.0, 0, &grace, msg, sizeof msg) ||
        lc__env_flag("LONGCTX_DEBUG", &debug, msg, sizeof msg) || plan_cpus(&cpus, n, msg, sizeof msg)) {
        fprintf(stderr, "longctx launch: %s\n", msg);
        return -1;
    }
    /* Each PE's heap and control region live in one segment: it must fit an off_t and the
     * address space, or the PEs would map a wrapped size and die of SIGSEGV. */
    if (heap > lc__max_heap(n)) {
        fprintf(stderr,
                "longctx launch: a symmetric heap of %zu bytes per PE for %d PEs is more than this "
                "machine can map (at most %zu bytes per PE); lower --heap or LONGCTX_HEAP_SIZE\n",
                heap, n, lc__max_heap(n));
        return -1;
    }
    size_t total = lc__segment_bytes(n, heap, NULL, NULL);
    int fd = memfd_create("longctx", 0);
    if (fd < 0) {
        fprintf(stderr, "longctx launch: memfd_create: %s\n", strerror(errno));
        return -1;
    }
    if (ftruncate(fd, (off_t)total) != 0) {
        fprintf(stderr, "longctx launch: sizing the %zu-byte segment (%d PEs x %zu-byte heap): %s; lower --heap or LONGCTX_HEAP_SIZE\n",
                total, n, heap, strerror(errno));
        close(fd);
        return -1;
    }
    /* The launcher maps the whole segment: it must ring every PE's doorbell on abort. */
    uint8_t *map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        fprintf(stderr, "longctx launch: mapping the %zu-byte segment (%d PEs x %zu-byte heap): %s; lower --heap or LONGCTX_HEAP_SIZE\n",
                total, n, heap, strerror(errno));
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
    char fdbuf[32], pebuf[32], nbuf[32], heapbuf[32], perbuf[32];
    snprintf(perbuf, sizeof perbuf, "%d", cpus.per);
    if (debug)
        fprintf(stderr, "longctx launch: %d PEs on the %d CPUs this job may use: %s\n", n, cpus.n_allowed,
                cpus.bind ? "a block of cores each (LONGCTX_BIND=core)"
                          : cpus.n_allowed < n ? "unbound, sharing them (more PEs than CPUs)" : "unbound (LONGCTX_BIND=none)");
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
            char where[96];
            bind_pe(&cpus, i, where, sizeof where);
            if (debug) fprintf(stderr, "longctx launch: PE %d on %s, %d core%s for its threads\n", i, where, cpus.per,
                               cpus.per == 1 ? "" : "s");
            snprintf(pebuf, sizeof pebuf, "%d", i);
            setenv("LONGCTX_CORES_PER_PE", perbuf, 1);
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
    double abort_at = 0;
    int forwarded = 0, killed = 0;
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
            double limit = g_forward_sig == SIGTERM && opts->term_grace_s > 0 ? opts->term_grace_s : grace;
            if (abort_at && lc__now() - abort_at > limit) {
                /* A PE that ignores the abort (stuck outside the runtime) is ended. */
                for (int i = 0; i < started; i++)
                    if (!done[i]) {
                        if (!opts->quiet)
                            fprintf(stderr, "longctx launch: PE %d did not stop %.0f s after the %s; killing it\n",
                                    i, limit, g_forward_sig == SIGTERM ? "termination request" : "abort");
                        kill(pids[i], SIGKILL);
                    }
                abort_at = lc__now() + 1e9;
                killed = 1;
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
            if (opts->report && opts->report->pe < 0 && !g_forward_sig) {
                opts->report->pe = i;
                snprintf(opts->report->how, sizeof opts->report->how, "%.100s%s", how,
                         stranded && code == 0 ? " before lc_world_finalize" : "");
                opts->report->t_fail = lc__now();
                opts->report->lost = WIFSIGNALED(status) || (stranded && code == 0);
            }
            if (!atomic_load(&view.hdr->abort_state)) {
                lc__abort(&view, i, "PE %d %s%s", i, how, stranded ? " before lc_world_finalize" : "");
                if (!opts->quiet) fprintf(stderr, "longctx launch: PE %d %s\n", i, how);
            } else if (WIFSIGNALED(status) && !killed && !forwarded && !opts->quiet) {
                /* A death the PEs may have seen only as silence (this launcher was stopped
                 * when it happened): say what it was. */
                fprintf(stderr, "longctx launch: PE %d %s\n", i, how);
            }
            atomic_store(&view.hdr->pe[i].state, LC_PE_DEAD);
            if (!first_bad) first_bad = code ? code : 1;
            if (!abort_at) abort_at = lc__now();
        }
    }
    /* A PE the heartbeat declared dead is the one lost, whoever exited first. */
    if (opts->report && !g_forward_sig && atomic_load(&view.hdr->abort_state) == 2 &&
        strstr(view.hdr->abort_reason, "stopped responding") && view.hdr->abort_pe >= 0) {
        lc_launch_report *r = opts->report;
        r->pe = view.hdr->abort_pe;
        snprintf(r->how, sizeof r->how, "stopped answering its heartbeat");
        r->lost = 1;
        if (!r->t_fail) r->t_fail = lc__now();
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
