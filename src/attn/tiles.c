/* lc_attn_tile_rates: the kernels' tile operations alone, in cache, on one thread. The
 * kernels' own tile sizes and calls (driver.c), so a change to a micro-kernel shows here
 * without the masks, copies and scheduling around it. */
#include <stdlib.h>
#include <time.h>

#include "attn/internal.h"

#define BQ LC_ATTN_BQ
#define BK LC_ATTN_BK
#define KB (4 * BQ) /* k of the backward's dV / dK matmuls: 4 heads' Q tiles */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    const lc_attn_ops *ops;
    int d, vw;
    float *Q, *K, *V, *S, *O, *G, *m, *l;
} tiles;

static void run_op(const tiles *t, int op)
{
    const lc_attn_ops *o = t->ops;
    int d = t->d;
    switch (op) {
    case 0: /* S = Q K^T: K packed in column blocks [BK/kw][d][kw] */
        for (int jb = 0; jb < BK; jb += o->vblock)
            o->gemm(BQ, o->vblock, d, t->Q, d, 1, t->K + (size_t)jb * d, o->vblock, t->S + jb,
                    BK, 0);
        break;
    case 1: /* O += P V: V in [BK][vw] blocks */
        for (int jb = 0; jb < d; jb += t->vw)
            o->gemm(BQ, t->vw, BK, t->S, BK, 1, t->V + (size_t)jb * BK, t->vw, t->O + jb, d, 1);
        break;
    case 2: /* dQ += dS K: K rows [BK][d] */
        o->gemm(BQ, d, BK, t->S, BK, 1, t->K, d, t->O, d, 1);
        break;
    case 3: /* dV += P^T dO over 4 heads' tiles: A read by columns */
        o->gemm(BK, d, KB, t->G, 1, BK, t->Q, d, t->O, d, 1);
        break;
    default: /* the forward softmax in its common case, a running max the tile does not raise
              * (no rescale of O): the same vector work every call, whatever S now holds */
        for (int i = 0; i < BQ; i++) {
            t->m[i] = 1e30f;
            t->l[i] = 0.0f;
        }
        o->softmax_fwd(BQ, t->S, 0.125f, t->m, t->l, t->O, d, d);
        break;
    }
}

int lc_attn_tile_rates(lc_attn_impl impl, int d, int reps, int rounds, lc_attn_tile_rate *out, int max)
{
    static const char *const names[] = {"score QK^T", "P.V", "bwd dQ", "bwd dV/dK", "softmax fwd"};
    enum { NOPS = 5 };
    lc_attn_impl r;
    if (!out || max < 1 || reps < 1 || rounds < 1 || d < 16 || d > LC_ATTN_DMAX || d % 16)
        return lc_attn_fail("lc_attn_tile_rates: need out, max >= 1, reps and rounds >= 1, "
                            "d a multiple of 16 in [16, %d] (d = %d)", LC_ATTN_DMAX, d);
    if (lc_attn_resolve_impl(impl, &r) != 0)
        return -1;
    tiles t = {lc_attn_ops_for(r, LC_DT_F32), d, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    t.vw = d % t.ops->vblock == 0 ? t.ops->vblock : d;
    size_t fl[] = {(size_t)KB * d, (size_t)d * BK, (size_t)BK * d, (size_t)BQ * BK,
                   (size_t)BQ * d, (size_t)BK * KB, BQ, BQ};
    float **p[] = {&t.Q, &t.K, &t.V, &t.S, &t.O, &t.G, &t.m, &t.l};
    int rc = 0;
    for (int i = 0; i < 8; i++) {
        *p[i] = aligned_alloc(64, ((fl[i] * sizeof(float) + 63) / 64) * 64);
        if (!*p[i])
            rc = -1;
        else
            for (size_t j = 0; j < fl[i]; j++) /* small values: nothing grows to inf or denormal */
                (*p[i])[j] = (float)((j * 7919u) % 1000u) * 1e-6f - 5e-4f;
    }
    if (rc) {
        lc_attn_fail("lc_attn_tile_rates: out of memory");
    } else {
        double best[NOPS];
        for (int op = 0; op < NOPS; op++)
            best[op] = 1e30;
        for (int round = 0; round < rounds; round++) /* interleaved: each op sees every load */
            for (int op = 0; op < NOPS; op++) {
                double t0 = now();
                for (int k = 0; k < reps; k++)
                    run_op(&t, op);
                double dt = (now() - t0) / reps;
                if (dt < best[op])
                    best[op] = dt;
            }
        const double mm = 2.0 * BQ * BK * d;
        const double flops[NOPS] = {mm, mm, mm, 2.0 * BK * KB * d, 0.0};
        for (int op = 0; op < NOPS && op < max; op++)
            out[op] = (lc_attn_tile_rate){names[op], flops[op], best[op]};
        rc = NOPS < max ? NOPS : max;
    }
    for (int i = 0; i < 8; i++)
        free(*p[i]);
    return rc;
}
