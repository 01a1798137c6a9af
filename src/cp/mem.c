/* The memory a CP plan will hold, before any PE exists: the planner (longctx plan) has no
 * world, yet must say what lc_cp_mem_bytes will report once the plan is made. The sizes come
 * from the same formulas as lc_cp__create_mapped and lc_cp__uly_create (the slot format, the
 * kernel workspace the attention driver asks for, the Ulysses pieces), so test_cp can hold
 * the two equal on real plans. */
#include <stdlib.h>

#include "cp/internal.h"

/* A ring plan of P PEs over n_pad padded rows, this PE holding nreal real rows: what
 * lc_cp_mem_bytes adds up (o32 unless a Ulysses inner plan, delta, dK/dV, workspace, slots). */
size_t lc_cp__ring_mem_estimate(const lc_cp_config *c, int P, int n_pad, int nreal, int with_o32)
{
    size_t es = lc_dtype_size(c->dtype), kv_elems = (size_t)n_pad * c->hkv * c->d;
    size_t acc = 2 * kv_elems * sizeof(float);
    lc_cp_slot_fmt f = lc_cp_slot_format(kv_elems * es, (size_t)n_pad);
    size_t mem = (size_t)nreal * c->hq * ((with_o32 ? c->d : 0) + 1) * sizeof(float);
    /* the kernel workspace depends on the call's shape, not on the positions: any valid ones */
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)(n_pad > 0 ? n_pad : 1));
    size_t work = 0;
    if (pos) {
        for (int i = 0; i < n_pad; i++) pos[i] = i;
        lc_attn_desc a = {.sq = nreal, .sk = n_pad, .hq = c->hq, .hkv = c->hkv, .d = c->d,
                          .qkv_dtype = c->dtype, .scale = c->scale, .q_pos = pos, .k_pos = pos,
                          .mask = {c->mask & ~(unsigned)LC_MASK_DOC, c->window, NULL, NULL},
                          .threads = c->threads, .impl = c->impl};
        if (lc_attn_cpu.workspace_size(&a, LC_ATTN_PASS_FWD | LC_ATTN_PASS_BWD, &work)) work = 0;
        free(pos);
    }
    int slots = P == 1 ? 1 : 3;
    mem += acc + work + slots * f.bytes + (P == 1 ? 0 : 2 * acc);
    if (c->plan.algo == LC_CP_ALLGATHER) mem += f.bytes * P + 2 * (size_t)P * acc;
    return mem;
}

size_t lc_cp_mem_estimate(const lc_cp_config *cfg, int P)
{
    if (!cfg || P < 1) return 0;
    int n_pad = 0;
    if (lc_cp_layout_positions(cfg->plan.layout, cfg->plan.seq_len, P, 0, NULL, &n_pad) < 0) return 0;
    int *nreal = malloc(sizeof(int) * (size_t)P);
    if (!nreal) return 0;
    for (int r = 0; r < P; r++) nreal[r] = lc_cp_layout_positions(cfg->plan.layout, cfg->plan.seq_len, P, r, NULL, NULL);
    size_t most = 0;
    if (cfg->plan.algo == LC_CP_ULYSSES || cfg->plan.algo == LC_CP_HYBRID) {
        most = lc_cp__uly_mem_estimate(cfg, P, n_pad, nreal);
    } else {
        for (int r = 0; r < P; r++) {
            size_t m = lc_cp__ring_mem_estimate(cfg, P, n_pad, nreal[r], 1);
            if (m > most) most = m;
        }
    }
    free(nreal);
    return most;
}
