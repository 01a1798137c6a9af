/* A first longctx program: causal ring attention over 4 PEs, from the public headers only.
 *
 *   longctx launch -n 4 -- ./ring_attention [S]
 *
 * Every PE builds the same random Q, K, V for the whole sequence, keeps its zigzag shard,
 * runs lc_cp_forward (the K/V blocks travel around the ring), and checks its rows against
 * a plain float64 softmax(QK^T)V computed here, so the program says whether it worked. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <longctx/cp.h>

enum { HQ = 4, HKV = 2, D = 64 };

static float rnd(uint64_t *s) /* splitmix64 -> [-1, 1) */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (float)((double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0 * 2 - 1);
}

int main(int argc, char **argv)
{
    long long S = argc > 1 ? atoll(argv[1]) : 1000; /* any S: the layout pads internally */
    lc_world *w;
    if (lc_world_init(NULL, &w) != LC_OK) return 1;
    int me = lc_my_pe(w), P = lc_n_pes(w);
    if (S < 1) {
        if (me == 0) fprintf(stderr, "S must be >= 1\n");
        lc_world_finalize(w);
        return 2;
    }
    lc_cp_config cfg = {.plan.seq_len = S, .hq = HQ, .hkv = HKV, .d = D, .dtype = LC_DT_F32,
                        .plan.layout = LC_CP_ZIGZAG, .mask = LC_MASK_CAUSAL,
                        .threads = lc_cores_per_pe(w)}; /* the cores the launcher gave this PE */
    lc_cp *cp;
    if (lc_cp_create(lc_team_world(w), &cfg, &cp) != LC_OK) {
        fprintf(stderr, "PE %d: lc_cp_create: %s\n", me, lc_last_error(w));
        lc_world_finalize(w);
        return 1;
    }
    /* The whole sequence (the same on every PE), then my shard of it. */
    size_t qrow = (size_t)HQ * D, krow = (size_t)HKV * D, rows = (size_t)lc_cp_local_rows(cp, me);
    float *Q = malloc(S * qrow * 4), *K = malloc(S * krow * 4), *V = malloc(S * krow * 4);
    float *q = malloc((rows + 1) * qrow * 4), *k = malloc((rows + 1) * krow * 4), *v = malloc((rows + 1) * krow * 4);
    float *out = malloc((rows + 1) * qrow * 4), *lse = malloc((rows + 1) * HQ * 4);
    uint64_t seed = 42;
    for (size_t i = 0; i < S * qrow; i++) Q[i] = rnd(&seed);
    for (size_t i = 0; i < S * krow; i++) K[i] = rnd(&seed), V[i] = rnd(&seed);
    lc_cp_shard(cp, me, Q, qrow * 4, q);
    lc_cp_shard(cp, me, K, krow * 4, k);
    lc_cp_shard(cp, me, V, krow * 4, v);

    int rc = lc_cp_forward(cp, q, k, v, NULL, out, lse);
    if (rc != LC_OK) fprintf(stderr, "PE %d: lc_cp_forward: %s\n", me, lc_cp_last_error(cp));

    /* Check my rows: out = softmax(q k^T / sqrt(D)) v over keys at positions <= mine. */
    double num = 0, den = 0, *p = malloc(S * sizeof(double));
    for (size_t i = 0; i < rows && rc == LC_OK; i++) {
        int32_t g = lc_cp_global_pos(cp, me, (int)i);
        for (int h = 0; h < HQ; h++) {
            const float *qi = Q + (size_t)g * qrow + (size_t)h * D;
            int kh = h / (HQ / HKV);
            double mx = -INFINITY, sum = 0;
            for (int32_t j = 0; j <= g; j++) {
                double s = 0;
                for (int c = 0; c < D; c++) s += (double)qi[c] * K[(size_t)j * krow + (size_t)kh * D + c];
                p[j] = s / sqrt((double)D);
                mx = p[j] > mx ? p[j] : mx;
            }
            for (int32_t j = 0; j <= g; j++) sum += (p[j] = exp(p[j] - mx));
            for (int c = 0; c < D; c++) {
                double ref = 0;
                for (int32_t j = 0; j <= g; j++) ref += p[j] * V[(size_t)j * krow + (size_t)kh * D + c];
                ref /= sum;
                double got = out[i * qrow + (size_t)h * D + c];
                num += (got - ref) * (got - ref);
                den += ref * ref;
            }
        }
    }
    double err = den > 0 ? sqrt(num / den) : (rc == LC_OK ? 0 : 1), worst;
    /* NaN must fail: compare with !(err < bound). */
    if (lc_allreduce_max_f64(lc_team_world(w), &worst, &err, 1) != LC_OK) rc = LC_ERR_ABORT;
    int ok = rc == LC_OK && worst < 1e-5;
    if (me == 0)
        printf("ring attention: S=%lld over %d PEs (zigzag, causal, hq %d hkv %d d %d): relative error %.2e -> %s\n",
               S, P, HQ, HKV, D, worst, ok ? "ok" : "FAILED");
    free(p), free(Q), free(K), free(V), free(q), free(k), free(v), free(out), free(lse);
    lc_cp_destroy(cp);
    if (lc_world_finalize(w) != LC_OK) ok = 0;
    return ok ? 0 : 1;
}
