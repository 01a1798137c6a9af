/* AMX detection. No AMX kernel exists yet: it will be written when a machine with AMX is
 * available to test it, so this only tells the bench (and users) what the CPU offers. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>

#include "attn/internal.h"

#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_GET_XCOMP_PERM 0x1022
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static unsigned long long xcr0(void)
{
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif

int lc_attn_amx_status(char *why, size_t len)
{
#if defined(__x86_64__) && defined(__linux__)
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        snprintf(why, len, "cpuid leaf 7 absent: no AMX");
        return 0;
    }
    int tile = (d >> 24) & 1, bf16 = (d >> 22) & 1, int8 = (d >> 25) & 1;
    if (!tile) {
        snprintf(why, len, "no AMX on this CPU (cpuid.7.0:edx amx-tile/bf16/int8 = %d/%d/%d)",
                 tile, bf16, int8);
        return 0;
    }
    __get_cpuid(1, &a, &b, &c, &d);
    /* Tile state must be enabled in XCR0 (bits 17, 18) by the OS ... */
    if (!((c >> 27) & 1) || (xcr0() & (3ULL << 17)) != (3ULL << 17)) {
        snprintf(why, len, "CPU has AMX (bf16 %d, int8 %d) but the OS does not enable tile "
                 "state in XCR0", bf16, int8);
        return 0;
    }
    /* ... and Linux (5.16+) hands it to a process only on request. */
    unsigned long feat = 0;
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0 ||
        syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &feat) != 0 ||
        !(feat & (1UL << XFEATURE_XTILEDATA))) {
        snprintf(why, len, "CPU has AMX (bf16 %d, int8 %d) but Linux refused the tile-data "
                 "permission (arch_prctl ARCH_REQ_XCOMP_PERM)", bf16, int8);
        return 0;
    }
    snprintf(why, len, "AMX usable (bf16 %d, int8 %d, tile-data permission granted)", bf16,
             int8);
    return 1;
#else
    snprintf(why, len, "not an x86-64 Linux build: no AMX");
    return 0;
#endif
}
