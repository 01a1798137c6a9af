/* Profiles: the built-in GPU machines (datasheet numbers, docs/PLANNER.md cites each), and the
 * JSON file `longctx plan --calibrate` writes for this host. */
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "common/settings.h"
#include "planner/planner.h"

/* A GPU from its datasheet: dense bf16 peak (GFLOP/s), HBM (bytes, bytes/s), NVLink per
 * direction (GB/s). What every GPU profile assumes is here once (docs/PLANNER.md marks it):
 * cuBLAS at 70% of peak, memory-bound kernels at 70% of HBM, 80% of a link reached, the
 * attention rate our H200 measured (cuDNN fwd+bwd, 16K causal: 551.3 TFLOP/s in
 * FlashAttention's count, x 6/7 into ours) scaled by the bf16 peaks, NCCL p2p holding about 4
 * SMs of 132, a permute's latency as measured on the H200 (one-sided 5.0 us, NCCL 6.1 us),
 * 400 Gb/s of network per GPU, and 1 GB of CUDA context and workspaces. */
static void gpu_profile(lc_profile *p, const char *name, const char *device, int per_node, double mem, double peak,
                        double hbm, double nvlink)
{
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    snprintf(p->device, sizeof p->device, "%s", device);
    p->gpu = 1, p->cores = 1, p->overlap = 1, p->thread_eff = 1;
    p->per_node = per_node;
    p->mem_bytes = mem;
    p->base_bytes = 1.0e9;
    p->fma_gflops = peak;
    p->gemm[1] = 0.70 * peak;
    p->gemm[0] = 0.70 * peak / 2; /* tf32 */
    p->attn[1][0] = p->attn[1][1] = 551.3e3 * 6 / 7 * peak / 989.4e3;
    p->attn[0][0] = p->attn[0][1] = p->attn[1][1] / 2;
    p->attn_len = 16384;
    p->attn_long = 1.0; /* 16K and 32K rows measured alike on the H200 */
    p->other_ns = 4.0 / (0.7 * hbm) * 1e9;   /* a float through HBM */
    p->adamw_ns = 28.0 / (0.7 * hbm) * 1e9;  /* p, g, m, v read; p, m, v written */
    p->two_sided_tax = 4.0 / 132;
    double nv = 0.8 * nvlink, ib = 0.8 * 50;
    p->gbs[0][0] = p->gbs[0][1] = nv, p->lat_us[0][0] = 5.0, p->lat_us[0][1] = 6.1;
    p->gbs[1][0] = p->gbs[1][1] = ib, p->lat_us[1][0] = 10.0, p->lat_us[1][1] = 12.0;
    p->ar_gbs[0] = nv, p->ar_lat_us[0] = 15, p->ar_gbs[1] = ib, p->ar_lat_us[1] = 30;
    snprintf(p->source, sizeof p->source, "datasheets and assumptions (docs/PLANNER.md); attention from "
             "bench/results/h200-20261201-run2%s", peak == 989.4e3 ? "" : ", scaled by the bf16 peak");
}

int lc_profile_builtin(const char *name, lc_profile *p)
{
    if (!strcmp(name, "h100-dgx"))
        gpu_profile(p, name, "NVIDIA H100 SXM5 80 GB, DGX H100 (8 per NVLink domain)", 8, 80e9, 989.4e3, 3.35e12, 450);
    else if (!strcmp(name, "gb200-nvl72"))
        gpu_profile(p, name, "NVIDIA GB200 (B200 186 GB), NVL72 (72 per NVLink domain, 4 per tray)", 72, 186e9, 2.5e6,
                    8e12, 900);
    else
        return memset(p, 0, sizeof *p), -1;
    return 0;
}


/* The numeric fields, by key: one table for save and load. */
typedef struct { const char *key; size_t off; int must_pos; } field;
#define F(k, m, pos) {k, offsetof(lc_profile, m), pos}
static const field k_fields[] = {
    F("mem_bytes", mem_bytes, 1), F("base_bytes", base_bytes, 0), F("fma_gflops", fma_gflops, 1),
    F("gemm_f32", gemm[0], 1), F("gemm_bf16", gemm[1], 1), F("attn_f32_hd64", attn[0][0], 1),
    F("attn_f32_hd128", attn[0][1], 1), F("attn_bf16_hd64", attn[1][0], 1), F("attn_bf16_hd128", attn[1][1], 1),
    F("attn_len", attn_len, 1), F("attn_long", attn_long, 1), F("thread_eff", thread_eff, 1),
    F("other_ns", other_ns, 1), F("adamw_ns", adamw_ns, 1),
    F("lat_us_one_sided", lat_us[0][0], 0), F("lat_us_two_sided", lat_us[0][1], 0), F("lat_us_zero_copy", lat_us[0][2], 0),
    F("gbs_one_sided", gbs[0][0], 0), F("gbs_two_sided", gbs[0][1], 0), F("gbs_zero_copy", gbs[0][2], 0),
    F("net_lat_us_one_sided", lat_us[1][0], 0), F("net_lat_us_two_sided", lat_us[1][1], 0),
    F("net_lat_us_zero_copy", lat_us[1][2], 0), F("net_gbs_one_sided", gbs[1][0], 0),
    F("net_gbs_two_sided", gbs[1][1], 0), F("net_gbs_zero_copy", gbs[1][2], 0),
    F("allreduce_lat_us", ar_lat_us[0], 0), F("allreduce_gbs", ar_gbs[0], 1),
    F("net_allreduce_lat_us", ar_lat_us[1], 0), F("net_allreduce_gbs", ar_gbs[1], 1),
    F("two_sided_tax", two_sided_tax, 0)};
#undef F
#define NF (sizeof k_fields / sizeof k_fields[0])

int lc_profile_save(const char *path, const lc_profile *p, char *err, size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno)), -1;
    fprintf(f, "{\"profile\":\"longctx-host-1\",\"name\":\"%s\",\"device\":\"%s\",\"source\":\"%s\",\"gpu\":%d,"
               "\"cores\":%d,\"per_node\":%d,\"overlap\":%d",
            p->name, p->device, p->source, p->gpu, p->cores, p->per_node, p->overlap);
    for (size_t i = 0; i < NF; i++)
        fprintf(f, ",\"%s\":%.9g", k_fields[i].key, *(const double *)((const char *)p + k_fields[i].off));
    fprintf(f, "}\n");
    int bad = ferror(f) | (fclose(f) != 0);
    if (bad || rename(tmp, path)) {
        unlink(tmp);
        return snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno)), -1;
    }
    return 0;
}

int lc_profile_load(const char *path, lc_profile *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    FILE *f = fopen(path, "r");
    if (!f) return snprintf(err, errlen, "cannot read the profile %s: %s", path, strerror(errno)), -1;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char kind[64];
    lc_json_str(buf, "profile", kind, sizeof kind);
    if (strcmp(kind, "longctx-host-1"))
        return snprintf(err, errlen, "%s is not a longctx profile (no \"profile\":\"longctx-host-1\")", path), -1;
    lc_json_str(buf, "name", p->name, sizeof p->name);
    lc_json_str(buf, "device", p->device, sizeof p->device);
    lc_json_str(buf, "source", p->source, sizeof p->source);
    double gpu = lc_json_num(buf, "gpu"), cores = lc_json_num(buf, "cores"), pn = lc_json_num(buf, "per_node"),
           ov = lc_json_num(buf, "overlap");
    if (!(cores >= 1) || !(pn >= 1) || !(gpu == 0 || gpu == 1) || !(ov == 0 || ov == 1))
        return snprintf(err, errlen, "%s: gpu, cores, per_node or overlap is missing or out of range", path), -1;
    p->gpu = (int)gpu, p->cores = (int)cores, p->per_node = (int)pn, p->overlap = (int)ov;
    for (size_t i = 0; i < NF; i++) {
        double v = lc_json_num(buf, k_fields[i].key);
        if (!isfinite(v) || v < 0 || (k_fields[i].must_pos && !(v > 0)))
            return snprintf(err, errlen, "%s: \"%s\" is missing or not a %s number", path, k_fields[i].key,
                            k_fields[i].must_pos ? "positive" : "non-negative"), -1;
        *(double *)((char *)p + k_fields[i].off) = v;
    }
    if (!(p->gbs[0][0] > 0)) return snprintf(err, errlen, "%s: gbs_one_sided must be positive", path), -1;
    return 0;
}

int lc_profile_host_path(char *buf, size_t len)
{
    char cpu[128] = "unknown-cpu", line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                int k = 0;
                for (c++; *c && *c != '\n' && k < (int)sizeof cpu - 1; c++)
                    if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')) cpu[k++] = *c;
                    else if (k && cpu[k - 1] != '-') cpu[k++] = '-';
                while (k && cpu[k - 1] == '-') k--;
                cpu[k] = 0;
            }
            break;
        }
    if (f) fclose(f);
    cpu_set_t s;
    int cores = sched_getaffinity(0, sizeof s, &s) ? (int)sysconf(_SC_NPROCESSORS_ONLN) : CPU_COUNT(&s);
    const char *xdg = lc__env_str("XDG_CACHE_HOME"), *home = lc__env_str("HOME");
    char dir[2048];
    if (xdg && *xdg) snprintf(dir, sizeof dir, "%s/longctx", xdg);
    else snprintf(dir, sizeof dir, "%s/.cache/longctx", home && *home ? home : "/tmp");
    /* make the folder (and .cache) when missing */
    char up[2048];
    snprintf(up, sizeof up, "%s", dir);
    char *sl = strrchr(up, '/');
    if (sl) *sl = 0, mkdir(up, 0755);
    mkdir(dir, 0755);
    return snprintf(buf, len, "%s/host-%s-%dc.json", dir, cpu, cores) >= (int)len ? -1 : 0;
}
