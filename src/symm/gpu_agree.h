/* The reading of an agreement (lc_gpu_agree, lc_gpu_nccl_agree): from every PE's (status,
 * key) pair, gathered in PE order, the lowest failing PE and the lowest PE whose key differs
 * from PE 0's. Host code shared by the NVSHMEM and NCCL builds and the CPU emulation. */
#ifndef LONGCTX_SYMM_GPU_AGREE_H
#define LONGCTX_SYMM_GPU_AGREE_H

#include <stdint.h>

#include "longctx/gpu_symm.h"

static inline void lcg_agree_read(const int64_t *pairs, int n, lc_gpu_agreement *out)
{
    out->n_pes = n;
    out->bad_pe = out->key_pe = -1;
    out->bad_status = 0;
    out->key0 = n > 0 ? (uint32_t)pairs[1] : 0;
    out->key_bad = out->key0;
    for (int pe = 0; pe < n; pe++) {
        if (out->bad_pe < 0 && pairs[2 * pe] != 0) {
            out->bad_pe = pe;
            out->bad_status = (int)pairs[2 * pe];
        }
        if (out->key_pe < 0 && (uint32_t)pairs[2 * pe + 1] != out->key0) {
            out->key_pe = pe;
            out->key_bad = (uint32_t)pairs[2 * pe + 1];
        }
    }
}

#endif
