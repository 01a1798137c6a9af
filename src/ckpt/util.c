/* Errors, the test hook and small file helpers of src/ckpt. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt/internal.h"
#include "common/settings.h"

static _Thread_local char g_err[1024];

const char *lc_ckpt_last_error(void) { return g_err; }

int lc_ckpt__fail(int status, const char *fmt, ...)
{
    char m[sizeof g_err];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap); /* may format an earlier message: build first */
    va_end(ap);
    memcpy(g_err, m, sizeof g_err);
    return status;
}

unsigned lc_ckpt__slow_us(void)
{
    const char *e = lc__env_str("LONGCTX_CKPT_TEST_SLOW_US");
    return e ? (unsigned)strtoul(e, NULL, 10) : 0;
}

void lc_ckpt__test_fsize(void)
{
    /* A real file-size limit imposed on the writer at save time (a disk that fills while the
     * run goes on), with SIGXFSZ ignored so that the write fails with EFBIG as on a full
     * disk; set before the world exists it would stop the launcher's segment instead. */
    const char *e = lc__env_str("LONGCTX_CKPT_TEST_FSIZE");
    if (!e) return;
    struct rlimit r = {(rlim_t)strtoull(e, NULL, 10), (rlim_t)strtoull(e, NULL, 10)};
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &r);
}

void lc_ckpt__pause(void)
{
    unsigned us = lc_ckpt__slow_us();
    if (us) {
        struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
        nanosleep(&ts, NULL);
    }
}

int lc_ckpt__write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    size_t piece = lc_ckpt__slow_us() ? 4096 : ((size_t)1 << 30);
    while (n) {
        size_t k = n < piece ? n : piece;
        ssize_t w = write(fd, p, k);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        if (piece == 4096) lc_ckpt__pause();
    }
    return 0;
}

int lc_ckpt__fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

char *lc_ckpt__read_file(const char *path, size_t limit, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        lc_ckpt__fail(LC_ERR_SYS, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        lc_ckpt__fail(LC_ERR_ARG, "%s is not a regular file", path);
        return NULL;
    }
    if ((uint64_t)st.st_size > limit) {
        close(fd);
        lc_ckpt__fail(LC_ERR_ARG, "%s is %lld bytes, over the limit of %zu", path, (long long)st.st_size, limit);
        return NULL;
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        lc_ckpt__fail(LC_ERR_SYS, "out of memory reading %s", path);
        return NULL;
    }
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            free(buf);
            close(fd);
            lc_ckpt__fail(LC_ERR_SYS, "cannot read %s: %s", path, r ? strerror(errno) : "file shrank");
            return NULL;
        }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *len = n;
    return buf;
}
