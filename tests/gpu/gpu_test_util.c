#include "gpu_test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double gt_relerr(const float *g, const double *ref, size_t n) {
    double big = 0, m = 0;
    for (size_t i = 0; i < n; i++) big = fmax(big, fabs(ref[i]));
    const double s = fmax(1e-3, big);
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)g[i] - ref[i]);
        if (isnan(g[i])) e = INFINITY;
        m = fmax(m, e);
    }
    return m / s;
}

/* GT_CPU_STANDIN: the CPU stand-in of the GPU tests (tests/gpu/emu/gpu_attn_standin.c)
 * provides the device-memory helpers and gt_require_gpu; the rest is shared. */
#ifndef GT_CPU_STANDIN
#include <cuda_runtime_api.h>

void gt_require_gpu(const char *test) {
    char why[256] = "";
    if (lc_gpu_device_count(why, sizeof why) < 1) {
        printf("SKIP: %s: %s\n", test, why);
        fflush(stdout);
        exit(LC_SKIP);
    }
}

#endif

static uint32_t bits_of(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}
static float float_of(uint32_t u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

uint16_t gt_f32_to_bf16(float x) {
    uint32_t u = bits_of(x);
    if (isnan(x)) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
float gt_bf16_to_f32(uint16_t x) { return float_of((uint32_t)x << 16); }

/* Round-to-nearest-even float -> IEEE half (inputs here are small and finite). */
uint16_t gt_f32_to_f16(float f) {
    uint32_t x = bits_of(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t mant = x & 0x7fffffu;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00u);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        mant |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t h = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1u))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)exp << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
    return (uint16_t)(sign | h);
}

float gt_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ffu;
    if (exp == 0) {
        float v = ldexpf((float)mant, -24);
        return sign ? -v : v;
    }
    if (exp == 31) return float_of(sign | 0x7f800000u | (mant << 13));
    return float_of(sign | ((exp - 15 + 127) << 23) | (mant << 13));
}

float gt_round(lc_dtype t, float x, uint16_t *bits) {
    if (t == LC_DT_F16) {
        *bits = gt_f32_to_f16(x);
        return gt_f16_to_f32(*bits);
    }
    *bits = gt_f32_to_bf16(x);
    return gt_bf16_to_f32(*bits);
}

uint64_t gt_rng(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
float gt_uniform(uint64_t *s) { return (float)((gt_rng(s) >> 40) * (1.0 / 8388608.0)) - 1.0f; }

#ifndef GT_CPU_STANDIN
static void cuda_ok(cudaError_t e, const char *what) {
    if (e != cudaSuccess) {
        fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
        exit(1);
    }
}

void *gt_dev_alloc(size_t bytes) {
    void *p = NULL;
    cuda_ok(cudaMalloc(&p, bytes ? bytes : 16), "cudaMalloc");
    return p;
}
void gt_dev_free(void *p) { cudaFree(p); }
void gt_h2d(void *dst, const void *src, size_t bytes) {
    if (bytes) cuda_ok(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy H2D");
}
void gt_d2h(void *dst, const void *src, size_t bytes) {
    if (bytes) cuda_ok(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
}
void gt_sync(void) { cuda_ok(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }
#endif
double gt_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

void gt_nvshmem_env(void) {
    setenv("NVSHMEM_BOOTSTRAP_UID_SOCK_IFNAME", "lo", 0);
    setenv("NVSHMEM_REMOTE_TRANSPORT", "none", 0);
    setenv("NVSHMEM_DISABLE_NCCL", "1", 0);
}

/* fork-based PE spawning and its device probe: the real GPU tests only */
#ifndef GT_CPU_STANDIN
typedef struct {
    volatile int state; /* 0 waiting, 1 uid ready, -1 failed */
    lc_gpu_uid uid;
} shared_boot;

int gt_spawn(int n, gt_pe_fn fn, void *arg, double timeout_s) {
    gt_nvshmem_env();
    shared_boot *sb = mmap(NULL, sizeof *sb, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sb == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    memset((void *)sb, 0, sizeof *sb);
    pid_t *pids = calloc((size_t)n, sizeof *pids);
    fflush(stdout);
    fflush(stderr);
    for (int pe = 0; pe < n; pe++) {
        pid_t p = fork();
        if (p < 0) {
            perror("fork");
            return 1;
        }
        if (p == 0) {
            if (pe == 0) {
                int rc = lc_gpu_uid_create(&sb->uid);
                __sync_synchronize();
                sb->state = rc ? -1 : 1;
                if (rc) {
                    fprintf(stderr, "PE 0: %s\n", lc_gpu_last_error());
                    _exit(1);
                }
            } else {
                double t0 = gt_now();
                while (sb->state == 0) {
                    if (gt_now() - t0 > 60) {
                        fprintf(stderr, "PE %d: no unique id from PE 0 after 60 s\n", pe);
                        _exit(1);
                    }
                    usleep(1000);
                }
                if (sb->state < 0) _exit(1);
            }
            lc_gpu_uid uid = sb->uid;
            int rc = fn(pe, n, &uid, arg);
            fflush(stdout);
            fflush(stderr);
            _exit(rc);
        }
        pids[pe] = p;
    }
    int failed = 0, skipped = 0, left = n;
    double t0 = gt_now();
    while (left > 0) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p == 0) {
            if (gt_now() - t0 > timeout_s) {
                fprintf(stderr, "gt_spawn: PEs still running after %.0f s; killing them\n", timeout_s);
                for (int i = 0; i < n; i++)
                    if (pids[i] > 0) kill(pids[i], SIGKILL);
                failed = 1;
                t0 = gt_now() + 1e9;
            }
            usleep(10000);
            continue;
        }
        if (p < 0) break;
        for (int i = 0; i < n; i++)
            if (pids[i] == p) {
                pids[i] = -1;
                int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                if (code == LC_SKIP) skipped++;
                else if (code) {
                    fprintf(stderr, "PE %d exited with %d\n", i, code);
                    failed = 1;
                    /* the others would only wait for it until their deadline */
                    for (int j = 0; j < n; j++)
                        if (pids[j] > 0) kill(pids[j], SIGTERM);
                }
            }
        left--;
    }
    free(pids);
    munmap(sb, sizeof *sb);
    if (failed) return 1;
    return skipped == n ? LC_SKIP : 0;
}

void gt_require_gpu_nofork_parent(const char *test) {
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        char why[256] = "";
        int n = lc_gpu_device_count(why, sizeof why);
        if (n < 1) {
            printf("SKIP: %s: %s\n", test, why);
            fflush(stdout);
            _exit(LC_SKIP);
        }
        _exit(0);
    }
    int st = 0;
    if (p < 0 || waitpid(p, &st, 0) < 0) exit(1);
    if (!WIFEXITED(st)) exit(1);
    if (WEXITSTATUS(st) == LC_SKIP) exit(LC_SKIP);
    if (WEXITSTATUS(st) != 0) exit(1);
}
#endif
