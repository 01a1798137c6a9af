/* Writes the CPU attention kernels' outputs (fwd out/lse, bwd dq/dk/dv) for a fixed set of
 * shapes, masks, dtypes and impls to stdout, so two builds can be compared byte for byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include "longctx/attn.h"

static uint64_t s = 88172645463325252ull;
static float rnd(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return (float)((s >> 11) * (1.0 / 9007199254740992.0)) * 2 - 1; }

static void fill(void *p, size_t n, lc_dtype dt)
{
    for (size_t i = 0; i < n; i++) {
        float x = rnd();
        if (dt == LC_DT_BF16) ((lc_bf16 *)p)[i] = lc_f32_to_bf16(x); else ((float *)p)[i] = x;
    }
}

int main(void)
{
    int shapes[][6] = {{192, 256, 4, 2, 64, 0}, {130, 200, 8, 2, 128, 0}, {64, 64, 2, 1, 96, 0}, {100, 300, 4, 4, 80, 0}};
    unsigned masks[] = {0, LC_MASK_CAUSAL, LC_MASK_CAUSAL | LC_MASK_WINDOW, LC_MASK_CAUSAL | LC_MASK_DOC};
    for (int impl = LC_ATTN_SCALAR; impl <= LC_ATTN_AVX512; impl++) {
        if (!lc_attn_impl_supported((lc_attn_impl)impl)) continue;
        for (int dt = 0; dt < 2; dt++)
            for (unsigned si = 0; si < sizeof shapes / sizeof *shapes; si++)
                for (unsigned mi = 0; mi < 4; mi++)
                    for (int th = 1; th <= 2; th++) {
                        int sq = shapes[si][0], sk = shapes[si][1], hq = shapes[si][2], hkv = shapes[si][3], d = shapes[si][4];
                        size_t es = lc_dtype_size((lc_dtype)dt);
                        void *q = malloc((size_t)sq * hq * d * es), *k = malloc((size_t)sk * hkv * d * es),
                             *v = malloc((size_t)sk * hkv * d * es), *dout = malloc((size_t)sq * hq * d * es);
                        float *o = malloc((size_t)sq * hq * d * 4), *lse = malloc((size_t)sq * hq * 4),
                              *delta = malloc((size_t)sq * hq * 4);
                        float *dq = calloc((size_t)sq * hq * d, 4), *dk = calloc((size_t)sk * hkv * d, 4),
                              *dv = calloc((size_t)sk * hkv * d, 4);
                        int32_t *qp = malloc(sq * 4), *kp = malloc(sk * 4), *qd = malloc(sq * 4), *kd = malloc(sk * 4);
                        for (int i = 0; i < sq; i++) { qp[i] = sk - sq + i + 7; qd[i] = qp[i] / 90; }
                        for (int j = 0; j < sk; j++) { kp[j] = j; kd[j] = j / 90; }
                        fill(q, (size_t)sq * hq * d, dt); fill(k, (size_t)sk * hkv * d, dt);
                        fill(v, (size_t)sk * hkv * d, dt); fill(dout, (size_t)sq * hq * d, dt);
                        lc_attn_desc a = {0};
                        a.sq = sq; a.sk = sk; a.hq = hq; a.hkv = hkv; a.d = d; a.qkv_dtype = (lc_dtype)dt;
                        a.q_pos = qp; a.k_pos = kp; a.mask.kind = masks[mi]; a.mask.window = 77;
                        a.mask.q_doc = qd; a.mask.k_doc = kd; a.threads = th; a.impl = (lc_attn_impl)impl;
                        lc_attn_fwd_init(&a, o, lse);
                        /* two KV blocks, as the ring feeds them */
                        lc_attn_desc a1 = a, a2 = a;
                        int h = sk / 2;
                        a1.sk = h; a2.sk = sk - h; a2.k_pos = kp + h; a2.mask.k_doc = kd + h;
                        if (lc_attn_fwd_block(&a1, q, k, v, o, lse) || lc_attn_fwd_block(&a2, q, (char *)k + (size_t)h * hkv * d * es, (char *)v + (size_t)h * hkv * d * es, o, lse)) {
                            fprintf(stderr, "fwd: %s\n", lc_attn_last_error()); return 1;
                        }
                        if (lc_attn_bwd_prep(&a, o, dout, delta) ||
                            lc_attn_bwd_block(&a, q, k, v, dout, lse, delta, dq, dk, dv)) {
                            fprintf(stderr, "bwd: %s\n", lc_attn_last_error()); return 1;
                        }
                        printf("impl %d dt %d shape %u mask %u th %d\n", impl, dt, si, mi, th);
                        fwrite(o, 4, (size_t)sq * hq * d, stdout); fwrite(lse, 4, (size_t)sq * hq, stdout);
                        fwrite(dq, 4, (size_t)sq * hq * d, stdout); fwrite(dk, 4, (size_t)sk * hkv * d, stdout);
                        fwrite(dv, 4, (size_t)sk * hkv * d, stdout);
                        free(q); free(k); free(v); free(dout); free(o); free(lse); free(delta); free(dq); free(dk); free(dv);
                        free(qp); free(kp); free(qd); free(kd);
                    }
    }
    return 0;
}
