/* Checkpoint folders: step-NNNNNNNN names, finding the newest complete one, publishing a
 * finished temporary folder by rename, pruning to the newest K, cleaning leftovers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/dir.h"
#include "ckpt/internal.h"

int lc_ckpt__parse_step_name(const char *name, int64_t *step)
{
    if (strncmp(name, "step-", 5)) return -1;
    const char *d = name + 5;
    size_t n = strlen(d);
    if (n < 8 || n > 18) return -1;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (d[i] < '0' || d[i] > '9') return -1;
        x = x * 10 + (d[i] - '0');
    }
    *step = x;
    return 0;
}

static int is_dir(const char *p)
{
    struct stat st;
    return !stat(p, &st) && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
    struct stat st;
    return !stat(p, &st) && S_ISREG(st.st_mode);
}

/* Removes a checkpoint folder (files only, one level). */
int lc_ckpt__rm_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return errno == ENOENT ? 0 : -1;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        unlink(p);
    }
    closedir(d);
    return rmdir(path);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The complete checkpoints' steps under dir, ascending; *n of them (malloc'd; NULL when 0). */
static int64_t *list_steps(const char *dir, int *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    int64_t *s = NULL;
    int cap = 0;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        int64_t st;
        if (lc_ckpt__parse_step_name(e->d_name, &st)) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (!is_dir(p)) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            int64_t *ns = realloc(s, (size_t)cap * sizeof *ns);
            if (!ns) break;
            s = ns;
        }
        s[(*n)++] = st;
    }
    closedir(d);
    if (s) qsort(s, (size_t)*n, sizeof *s, cmp_i64);
    return s;
}

int lc_ckpt_find_latest(const char *dir, char *path, size_t cap)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    if (is_file(p)) {
        snprintf(path, cap, "%s", dir);
        return LC_OK;
    }
    if (!is_dir(dir)) return lc_ckpt__fail(LC_ERR_ARG, "checkpoint folder %s does not exist", dir);
    int n;
    int64_t *s = list_steps(dir, &n);
    if (!n) {
        free(s);
        return lc_ckpt__fail(LC_ERR_ARG, "no complete checkpoint (a step-NNNNNNNN folder) in %s", dir);
    }
    snprintf(path, cap, "%s/step-%08lld", dir, (long long)s[n - 1]);
    free(s);
    return LC_OK;
}

void lc_ckpt_clean_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        const char *t = strstr(e->d_name, ".tmp-");
        if (!t) t = strstr(e->d_name, ".old-");
        if (strncmp(e->d_name, "step-", 5) || !t) continue;
        char *end;
        long pid = strtol(t + 5, &end, 10);
        if (*end || pid <= 0) continue;
        /* a live writer's folder (another run sharing the folder) is not ours to remove */
        if (pid != (long)getpid() && !(kill((pid_t)pid, 0) && errno == ESRCH)) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        lc_ckpt__rm_dir(p);
    }
    closedir(d);
}

int lc_ckpt__publish(const char *tmp, const char *final, const char *dir)
{
    if (rename(tmp, final)) {
        if (errno != ENOTEMPTY && errno != EEXIST)
            return lc_ckpt__fail(LC_ERR_SYS, "cannot rename %s to %s: %m", tmp, final);
        /* The step was saved before (a rerun into the same folder): swap atomically, so that
         * one complete copy exists at every moment, then drop the old one. */
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_EXCHANGE))
            return lc_ckpt__fail(LC_ERR_SYS, "cannot replace %s with %s: %m", final, tmp);
        lc_ckpt__rm_dir(tmp);
    }
    lc_ckpt__pause();
    if (lc_ckpt__fsync_path(dir)) return lc_ckpt__fail(LC_ERR_SYS, "cannot fsync %s: %m", dir);
    return LC_OK;
}

void lc_ckpt__prune(const char *dir, int keep)
{
    if (keep <= 0) return;
    int n;
    int64_t *s = list_steps(dir, &n);
    char p[4096];
    for (int i = 0; i + keep < n; i++) {
        snprintf(p, sizeof p, "%s/step-%08lld", dir, (long long)s[i]);
        /* renamed away first: a crash mid-removal must not leave a half folder that looks
         * complete */
        char q[4200];
        snprintf(q, sizeof q, "%s.old-%ld", p, (long)getpid());
        if (!rename(p, q)) lc_ckpt__rm_dir(q);
    }
    free(s);
    if (n > keep) lc_ckpt__fsync_path(dir);
}

int lc_ckpt_mkdirs(const char *path)
{
    char p[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof p) return -1;
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != 0) continue;
        char c = p[i];
        p[i] = 0;
        if (mkdir(p, 0755) && errno != EEXIST) return -1;
        p[i] = c;
    }
    return is_dir(path) ? 0 : -1;
}
