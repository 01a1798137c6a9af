/* Argument rules of the GPU attention entry points, as plain C that the CUDA API, the CPU
 * stand-in of the GPU tests (tests/gpu/emu/gpu_attn_standin.c) and the ring's emulation all
 * use, so a call sequence the device would refuse is refused on every machine.
 *
 * Each entry point checks only what it reads: the state calls (fwd_init, fwd_finish,
 * bwd_prep) touch the Q-side rows of o/lse/delta and never the K side or the document ids,
 * so a caller may set k_doc, sk and k_pos per block, after init. The block calls read both
 * sides and need both document arrays under LC_MASK_DOC. */
#ifndef LONGCTX_ATTN_CHECK_H
#define LONGCTX_ATTN_CHECK_H

#include <math.h>

#include "longctx/gpu_attn.h"

enum {
    LCG_USES_STATE = 0, /* sq, hq, d, dtype: the fp32 state and the Q-side rows */
    LCG_USES_BLOCK = 1  /* + sk, both position and document arrays, the mask */
};

/* NULL when a passes the rules for an entry point with these uses, else why not. */
static inline const char *lcg_attn_invalid(const lc_gpu_attn_desc *a, int uses) {
    if (!a) return "descriptor is NULL";
    if (a->sq < 0) return "sq must be >= 0";
    if (a->hq <= 0 || a->hkv <= 0 || a->hq % a->hkv) return "hq must be a positive multiple of hkv";
    if (a->dtype != LC_DT_BF16 && a->dtype != LC_DT_F16 && a->dtype != LC_DT_F32)
        return "dtype must be bf16, f16 or f32 (f32: the plain reference kernels)";
    if (a->dtype == LC_DT_F32 ? (a->d < 1 || a->d > 128) : (a->d != 64 && a->d != 128))
        return a->dtype == LC_DT_F32 ? "head dim must be 1..128 for the f32 reference kernels"
                                     : "head dim must be 64 or 128 for the bf16/f16 kernels on the GPU";
    if (a->mask.kind & ~(unsigned)(LC_MASK_CAUSAL | LC_MASK_WINDOW | LC_MASK_DOC)) return "unknown mask bits";
    if ((a->mask.kind & LC_MASK_WINDOW) && a->mask.window < 1) return "window must be >= 1";
    if (a->scale < 0.f || !isfinite(a->scale)) return "scale must be finite and >= 0";
    if (uses == LCG_USES_STATE) return NULL;
    if (a->sk < 0) return "sk must be >= 0";
    if ((a->mask.kind & LC_MASK_DOC) && !a->mask.q_doc) return "document mask needs q_doc";
    if ((a->mask.kind & LC_MASK_DOC) && !a->mask.k_doc) return "document mask needs k_doc";
    return NULL;
}

#endif
