/* Sharding layouts of the GPU ring, as pure host functions the CPU tests can check.
 * contiguous: PE r holds rows [r*S/P, (r+1)*S/P). zigzag: the sequence is cut into 2P
 * chunks and PE r holds chunks r and 2P-1-r, which balances causal work over the ring. */
#ifndef LONGCTX_RING_GPU_LAYOUT_H
#define LONGCTX_RING_GPU_LAYOUT_H

#include <stdint.h>

static inline int lc_ring_layout_positions(int zigzag, int s_global, int n_pes, int pe,
                                           int32_t *pos) {
    if (n_pes < 1 || pe < 0 || pe >= n_pes || s_global < 0) return -1;
    if (!zigzag) {
        if (s_global % n_pes) return -1;
        int s_local = s_global / n_pes;
        for (int i = 0; i < s_local; i++) pos[i] = (int32_t)(pe * s_local + i);
        return 0;
    }
    if (s_global % (2 * n_pes)) return -1;
    int c = s_global / (2 * n_pes);
    for (int i = 0; i < c; i++) {
        pos[i] = (int32_t)(pe * c + i);
        pos[c + i] = (int32_t)((2 * n_pes - 1 - pe) * c + i);
    }
    return 0;
}

#endif
