/* Loads the trainer's GPU plugin (train_cuda.h) on first use. */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/settings.h"

#ifndef LONGCTX_LIBDIR
#define LONGCTX_LIBDIR "lib"
#endif
#include "longctx/train_cuda.h"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static const lc_cuda_plugin *g_plugin;

/* The folder of the running binary ("" when /proc does not say). */
static void exe_dir(char *dir, size_t len)
{
    char p[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", p, sizeof p - 1);
    dir[0] = 0;
    if (n <= 0) return;
    p[n] = 0;
    char *slash = strrchr(p, '/');
    if (slash) *slash = 0;
    snprintf(dir, len, "%s", p);
}

const lc_cuda_plugin *lc_train_cuda_plugin(char *err, size_t len)
{
    pthread_mutex_lock(&g_mu);
    const lc_cuda_plugin *pl = g_plugin;
    if (pl) {
        pthread_mutex_unlock(&g_mu);
        return pl;
    }
    char dir[PATH_MAX], cand[3][PATH_MAX + 64];
    int nc = 0;
    const char *env = lc__env_str("LONGCTX_CUDA_PLUGIN");
    exe_dir(dir, sizeof dir);
    if (env && *env) snprintf(cand[nc++], sizeof cand[0], "%s", env);
    else if (dir[0]) {
        snprintf(cand[nc++], sizeof cand[0], "%s/liblongctx_cuda.so", dir);
        snprintf(cand[nc++], sizeof cand[0], "%s/../%s/liblongctx_cuda.so", dir, LONGCTX_LIBDIR);
    }
    char why[1024] = "";
    for (int i = 0; i < nc && !pl; i++) {
        void *h = dlopen(cand[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            size_t u = strlen(why);
            snprintf(why + u, sizeof why - u, "%s%s", u ? "; " : "", dlerror());
            continue;
        }
        lc_cuda_plugin_fn get;
        *(void **)&get = dlsym(h, LC_CUDA_PLUGIN_SYMBOL);
        const lc_cuda_plugin *p = get ? get() : NULL;
        if (!p || p->abi != LC_CUDA_PLUGIN_ABI) {
            size_t u = strlen(why);
            snprintf(why + u, sizeof why - u, "%s%.400s: %s", u ? "; " : "", cand[i],
                     !get ? "no " LC_CUDA_PLUGIN_SYMBOL " in it" : "built for another plugin ABI (rebuild)");
            dlclose(h);
            continue;
        }
        pl = g_plugin = p;
    }
    pthread_mutex_unlock(&g_mu);
    if (!pl)
        snprintf(err, len,
                 "--device cuda needs the GPU plugin, which this build does not have or cannot load (%s). It is "
                 "built beside the binary where nvcc is found (cmake -DLONGCTX_CUDA=ON); LONGCTX_CUDA_PLUGIN names "
                 "another file",
                 why[0] ? why : "no candidate path");
    return pl;
}
