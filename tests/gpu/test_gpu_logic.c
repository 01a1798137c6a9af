/* CPU test of the core the CUDA kernels and the GPU ring share with the CPU library
 * (src/attn/core.h, src/cp/core.h): runs on every machine, GPU or not. The element rule is
 * checked against the CPU library's lc_attn_allowed, the tile classification must be
 * conservative (SKIP: no pair allowed; FULL: every slot pair real and allowed), and the CPU
 * driver's summaries and verdicts (lc_attn_summarise, lc_attn_classify) must be the ones the
 * kernels compute (init + add per row, merged per warp) for the same rows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/core.h"
#include "attn/cuda/sm90_layout.h"
#include "cp/core.h"
#include "longctx/attn.h"
#include "longctx/cp.h"
#include "attn/internal.h" /* lc_attn_summarise, lc_attn_classify_sum: the CPU driver's side */

static int fails = 0;
#define EXPECT(c, ...)                                 \
    do {                                               \
        if (!(c)) {                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);              \
            fprintf(stderr, "\n");                     \
            if (++fails > 20) exit(1);                 \
        }                                              \
    } while (0)

static uint64_t rs = 12345;
static uint32_t rnd(void) {
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (uint32_t)rs;
}

static const unsigned kinds[] = {0, 1, 2, 3, 4, 5, 6, 7};

static void test_allowed(void) {
    for (int it = 0; it < 200000; it++) {
        unsigned kind = kinds[rnd() % 8];
        int64_t window = 1 + rnd() % 50;
        int32_t qp = (int32_t)(rnd() % 200) - 20, kp = (int32_t)(rnd() % 200) - 20;
        if (it % 1000 == 0) { qp = INT32_MAX; kp = (int32_t)(rnd() % 3); }
        int32_t qd = rnd() % 3, kd = rnd() % 3;
        lc_mask m = {kind, window, NULL, NULL};
        int a = lc_mask_allowed(kind, window, qp, kp, qd, kd);
        int b = lc_attn_allowed(&m, qp, kp, qd, kd);
        EXPECT(a == b, "allowed(kind %u, w %lld, q %d, k %d, qd %d, kd %d): gpu %d cpu %d", kind,
               (long long)window, qp, kp, qd, kd, a, b);
    }
}

static void test_classify(void) {
    enum { T = 16 };
    int32_t qp[T], kp[T], qd[T], kd[T];
    for (int it = 0; it < 100000; it++) {
        unsigned kind = kinds[rnd() % 8];
        int64_t window = 1 + rnd() % 40;
        int nq = 1 + rnd() % T, nk = 1 + rnd() % T; /* rows present; the rest is tail */
        int contiguous = rnd() % 2;
        int q0 = rnd() % 64, k0 = rnd() % 64;
        for (int i = 0; i < T; i++) {
            qp[i] = contiguous ? q0 + i : (int32_t)(rnd() % 80);
            kp[i] = contiguous ? k0 + i : (int32_t)(rnd() % 80);
            if (rnd() % 16 == 0) qp[i] = -1;
            if (rnd() % 16 == 0) kp[i] = -1;
            qd[i] = rnd() % 3 == 0 ? 1 : 0;
            kd[i] = rnd() % 3 == 0 ? 1 : 0;
        }
        lc_tile_sum qs, ks;
        lc_tile_sum_init(&qs, T);
        lc_tile_sum_init(&ks, T);
        for (int i = 0; i < nq; i++) lc_tile_sum_add(&qs, qp[i], qd[i]);
        for (int i = 0; i < nk; i++) lc_tile_sum_add(&ks, kp[i], kd[i]);
        int any = 0, all = 1;
        for (int i = 0; i < T; i++)
            for (int j = 0; j < T; j++) {
                int ok = i < nq && j < nk && lc_mask_allowed(kind, window, qp[i], kp[j], qd[i], kd[j]);
                any |= ok;
                all &= ok;
            }
        int c = lc_tile_classify(kind, window, &qs, &ks);
        if (c == LC_BLOCK_SKIP) EXPECT(!any, "SKIP with an allowed pair (kind %u)", kind);
        if (c == LC_BLOCK_FULL) EXPECT(all, "FULL with a masked pair (kind %u)", kind);
        /* precision: the plain causal diagonal-free case must not be PARTIAL */
        if (kind == LC_MASK_CAUSAL && contiguous && nq == T && nk == T) {
            int pad = 0;
            for (int i = 0; i < T; i++) pad |= qp[i] < 0 || kp[i] < 0;
            if (!pad && k0 + T - 1 <= q0) EXPECT(c == LC_BLOCK_FULL, "causal tile below diagonal not FULL");
            if (!pad && k0 > q0 + T - 1) EXPECT(c == LC_BLOCK_SKIP, "causal tile above diagonal not SKIP");
        }
    }
}

/* Padded rows per PE (the GPU ring's s_local) through the core's map, -1 when refused. */
static int rows_of(int l, int64_t S, int p) {
    int np = -1;
    return lc_layout_positions((lc_cp_layout)l, S, p, 0, NULL, &np) < 0 ? -1 : np;
}

/* The GPU ring's layouts are the CPU plan's (one map, cp/core.h): every layout, any S
 * (padding at the end of each PE's rows, position -1), every real token exactly once, and
 * the same positions as lc_cp_layout_positions. */
static void test_layout(void) {
    for (int p = 1; p <= 8; p++)
        for (int l = 0; l < 3; l++)
            for (int extra = 0; extra < 4; extra++) {
                const int S = 2 * p * 24 - (extra ? 2 * extra + 1 : 0); /* divisible, then odd */
                const int sl = rows_of(l, S, p);
                EXPECT(sl >= (S + p - 1) / p, "layout %d S=%d p=%d: %d rows", l, S, p, sl);
                if (sl < 1) continue;
                char *seen = calloc((size_t)S, 1);
                int32_t *pos = malloc(sizeof(int32_t) * (size_t)sl), *cpu = malloc(sizeof(int32_t) * (size_t)sl);
                for (int r = 0; r < p; r++) {
                    const int real = lc_layout_positions((lc_cp_layout)l, S, p, r, pos, NULL);
                    int cpu_pad = -1;
                    EXPECT(real >= 0, "layout %d rejected S=%d p=%d", l, S, p);
                    EXPECT(lc_cp_layout_positions((lc_cp_layout)l, S, p, r, cpu, &cpu_pad) == real && cpu_pad == sl &&
                               !memcmp(pos, cpu, sizeof(int32_t) * (size_t)sl),
                           "layout %d S=%d p=%d PE %d differs from lc_cp's", l, S, p, r);
                    for (int i = 0; i < sl; i++) {
                        EXPECT((i < real) == (pos[i] >= 0), "layout %d: padding not at the end of PE %d", l, r);
                        EXPECT(pos[i] < S, "position out of range");
                        if (pos[i] >= 0 && pos[i] < S) seen[pos[i]]++;
                        if (i > 0 && pos[i] >= 0) EXPECT(pos[i] > pos[i - 1], "positions must grow with the row");
                    }
                    if (l == 1 && !extra)
                        EXPECT(pos[0] == r * (S / (2 * p)) && pos[sl - 1] == S - 1 - r * (S / (2 * p)),
                               "zigzag chunks of PE %d", r);
                    if (l == 2) EXPECT(pos[0] == r && (sl < 2 || pos[1] < 0 || pos[1] == r + p), "striped PE %d", r);
                }
                for (int i = 0; i < S; i++) EXPECT(seen[i] == 1, "position %d covered %d times", i, seen[i]);
                free(seen);
                free(pos);
                free(cpu);
            }
    int32_t pos[8];
    EXPECT(lc_layout_positions((lc_cp_layout)3, 6, 2, 0, pos, NULL) < 0, "unknown layout must be refused");
    EXPECT(lc_layout_positions(LC_CP_ZIGZAG, 0, 2, 0, pos, NULL) < 0, "S = 0 must be refused");
    EXPECT(lc_layout_positions(LC_CP_CONTIGUOUS, 6, 2, 2, pos, NULL) < 0, "PE out of range must be refused");
    EXPECT(rows_of(1, (int64_t)1 << 40, 2) < 0, "S beyond int32 positions must be refused");
    EXPECT(lc_ring_owner(0, 1, 4) == 3 && lc_ring_owner(2, 3, 4) == 3 && lc_ring_next(3, 4) == 0 &&
               lc_ring_prev(0, 4) == 3, "ring schedule");
    /* the visitor of a block at step j is the PE whose owner at step j it is */
    for (int p = 1; p <= 9; p++)
        for (int me = 0; me < p; me++)
            for (int j = 0; j < p; j++) {
                const int o = lc_ring_owner(me, j, p);
                EXPECT(o >= 0 && o < p && lc_ring_visitor(o, j, p) == me, "owner/visitor p %d me %d j %d", p, me, j);
                EXPECT(lc_ring_owner(lc_ring_next(me, p), j + 1, p) == o, "a block moves one hop per step");
            }
}

/* One slot format for both rings: every part starts on the alignment both devices need (the
 * GPU's 16-byte loads, the CPU's 64-byte lines) and holds its bytes. */
static void test_slot_format(void) {
    EXPECT(LC_CP_SLOT_ALIGN % 64 == 0 && LC_CP_SLOT_ALIGN % 16 == 0, "slot alignment");
    for (int it = 0; it < 1000; it++) {
        const size_t rows = 1 + rnd() % 700, kv = rows * (1 + rnd() % 8) * 16 * (1 + rnd() % 2);
        const lc_cp_slot_fmt f = lc_cp_slot_format(kv, rows);
        EXPECT(f.k == 0 && f.v % LC_CP_SLOT_ALIGN == 0 && f.pos % LC_CP_SLOT_ALIGN == 0 &&
                   f.doc % LC_CP_SLOT_ALIGN == 0 && f.bytes % LC_CP_SLOT_ALIGN == 0,
               "slot parts aligned");
        EXPECT(f.v >= kv && f.pos - f.v >= kv && f.doc - f.pos >= 4 * rows && f.bytes - f.doc >= 4 * rows &&
                   f.bytes - f.doc < 4 * rows + LC_CP_SLOT_ALIGN,
               "slot parts hold their rows");
    }
    EXPECT(lc_dkv_add(1.5f, 2.25f) == 3.75f, "dK/dV add");
}

/* The CPU driver and the kernels summarise and classify a tile through the one core: the
 * CPU's lc_attn_summarise of a whole tile equals the kernels' summary (init at the tile size,
 * one add per row, warp pieces merged as attn_small.cuh does), and the CPU's verdict
 * (lc_attn_classify_sum, lc_attn_classify) is the kernels' lc_tile_classify on it. */
static void test_cpu_gpu_same_class(void) {
    enum { T = 64 };
    int32_t qp[T], kp[T], qd[T], kd[T];
    for (int it = 0; it < 20000; it++) {
        unsigned kind = kinds[rnd() % 8];
        int64_t window = 1 + rnd() % 100;
        int q0 = rnd() % 200, k0 = rnd() % 200, contiguous = rnd() % 2;
        for (int i = 0; i < T; i++) {
            qp[i] = contiguous ? q0 + i : (int32_t)(rnd() % 300);
            kp[i] = contiguous ? k0 + i : (int32_t)(rnd() % 300);
            if (rnd() % 24 == 0) qp[i] = -1;
            if (rnd() % 24 == 0) kp[i] = -1;
            qd[i] = (i + (int)(rnd() % 8)) / 40;
            kd[i] = (i + (int)(rnd() % 8)) / 40;
        }
        lc_tile_sum cq, ck, gq, gk, half;
        lc_attn_summarise(qp, qd, 0, T, &cq);
        lc_attn_summarise(kp, kd, 0, T, &ck);
        /* the kernels: two 32-row pieces, each init + add, merged into the first */
        lc_tile_sum_init(&gq, T);
        lc_tile_sum_init(&half, T);
        lc_tile_sum_init(&gk, T);
        for (int i = 0; i < T; i++) lc_tile_sum_add(i < T / 2 ? &gq : &half, qp[i], qd[i]);
        lc_tile_sum_merge(&gq, &half);
        lc_tile_sum_init(&half, T);
        for (int i = 0; i < T; i++) lc_tile_sum_add(i < T / 2 ? &gk : &half, kp[i], kd[i]);
        lc_tile_sum_merge(&gk, &half);
        EXPECT(!memcmp(&cq, &gq, sizeof cq) && !memcmp(&ck, &gk, sizeof ck), "CPU and GPU tile summaries differ");
        lc_mask m = {kind, window, qd, kd};
        const int cpu = lc_attn_classify_sum(&m, &cq, &ck);
        const int cpu_rows = lc_attn_classify(&m, qp, 0, T, kp, 0, T);
        const int gpu = lc_tile_classify(kind, window, &gq, &gk);
        EXPECT(cpu == gpu && cpu_rows == gpu, "kind %u window %lld: CPU says %d (%d from rows), GPU %d", kind,
               (long long)window, cpu, cpu_rows, gpu);
    }
}

static void test_lse_merge(void) {
    float a = logf(3.0f), b = logf(5.0f);
    EXPECT(fabsf(lc_lse_merge(a, b) - logf(8.0f)) < 1e-6f, "lse merge");
    EXPECT(lc_lse_merge(-INFINITY, b) == b, "lse merge with empty");
    EXPECT(lc_lse_merge(-INFINITY, -INFINITY) == -INFINITY, "lse merge of two empties");
    EXPECT(fabsf(lc_lse_merge(1000.f, 1000.f) - (1000.f + logf(2.f))) < 1e-3f, "lse merge large");
}

/* The Hopper kernel's shared-memory tiles and wgmma descriptors (sm90_layout.h) against a
 * brute-force model: TMA's 128-byte swizzle as address-bit arithmetic, and every element
 * each descriptor the kernel builds makes wgmma read must be the element the product needs. */
static void test_sm90_layout(void) {
    EXPECT(lc_sm90_desc(0x12340u, 0x4000u, 1024u) == (0x1234ull | (0x400ull << 16) | (64ull << 32) | (1ull << 62)),
           "descriptor fields");
    const uint32_t base = 0x2400u; /* 1024-aligned and not zero, so a dropped term shows */
    for (int rows = 64; rows <= 128; rows += 64)
        for (int d = 64; d <= 128; d += 64) {
            const int bytes = rows * d * 2;
            unsigned char *seen = calloc((size_t)bytes, 1);
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < d; c++) {
                    const uint32_t off = lc_sm90_tile_off(rows, r, c);
                    const uint32_t lin = (uint32_t)r * 128u + (uint32_t)(c & 63) * 2u;
                    const uint32_t model = (uint32_t)(c >> 6) * (uint32_t)rows * 128u + (lin ^ (((lin >> 7) & 7u) << 4));
                    EXPECT(off == model, "tile offset rows %d d %d (%d,%d): %u, model %u", rows, d, r, c, off, model);
                    EXPECT(off + 1 < (uint32_t)bytes && !seen[off], "tile offset not a bijection at (%d,%d)", r, c);
                    if (off + 1 < (uint32_t)bytes) seen[off] = 1;
                }
            free(seen);
            /* S = Q K^T: Q rows r0 + [0, 64) of the 128-row Q tile and all `rows` keys of K,
             * both K-major, k-step kk covering columns 16 kk .. 16 kk + 15 */
            for (int kk = 0; kk < d / 16; kk++) {
                for (int r0 = 0; r0 < 128; r0 += 64) {
                    const uint64_t dq = lc_sm90_desc_kmajor(base, 128, r0, kk);
                    for (int mn = 0; mn < 64; mn++)
                        for (int k = 0; k < 16; k++)
                            EXPECT(lc_sm90_desc_read(dq, 1, mn, k) == base + lc_sm90_tile_off(128, r0 + mn, 16 * kk + k),
                                   "Q descriptor d %d r0 %d kk %d (%d,%d)", d, r0, kk, mn, k);
                }
                const uint64_t dk = lc_sm90_desc_kmajor(base, rows, 0, kk);
                for (int mn = 0; mn < rows; mn++)
                    for (int k = 0; k < 16; k++)
                        EXPECT(lc_sm90_desc_read(dk, 1, mn, k) == base + lc_sm90_tile_off(rows, mn, 16 * kk + k),
                               "K descriptor rows %d d %d kk %d (%d,%d)", rows, d, kk, mn, k);
            }
            /* O += P V: V read N-major, n = column of D, k = key 16 kk + k */
            for (int kk = 0; kk < rows / 16; kk++) {
                const uint64_t dv = lc_sm90_desc_nmajor(base, rows, kk);
                for (int mn = 0; mn < d; mn++)
                    for (int k = 0; k < 16; k++)
                        EXPECT(lc_sm90_desc_read(dv, 0, mn, k) == base + lc_sm90_tile_off(rows, 16 * kk + k, mn),
                               "V descriptor rows %d d %d kk %d (%d,%d)", rows, d, kk, mn, k);
            }
        }
}

/* The set-up record both rings agree on: equal records give equal fingerprints, a change in
 * any one field changes the fingerprint and is named by the text, and the window counts only
 * under a window mask. */
static void test_setup_record(void) {
    lc_cp_setup a, b;
    lc_cp_setup_init(&a, 4096, 8, 2, 128, LC_DT_BF16, LC_CP_ZIGZAG, LC_MASK_CAUSAL, 77, 0.125f, LC_CP_RING,
                     LC_LOWER_ONE_SIDED);
    lc_cp_setup_init(&b, 4096, 8, 2, 128, LC_DT_BF16, LC_CP_ZIGZAG, LC_MASK_CAUSAL, 99, 0.125f, LC_CP_RING,
                     LC_LOWER_ONE_SIDED);
    EXPECT(lc_cp_setup_fingerprint(&a) == lc_cp_setup_fingerprint(&b), "window counted without a window mask\n");
    for (int i = 0; i < LC_CP_SETUP_N; i++) {
        b = a;
        b.f[i] += 1;
        EXPECT(lc_cp_setup_fingerprint(&a) != lc_cp_setup_fingerprint(&b), "field %s not in the fingerprint\n",
               lc_cp_setup_name(i));
    }
    char text[512];
    lc_cp_setup_str(&a, text, sizeof text);
    EXPECT(strstr(text, "seq_len 4096, hq 8, hkv 2, d 128, dtype bf16, layout zigzag") != NULL &&
               strstr(text, "scale 0.125") && strstr(text, "lowering one_sided") && strstr(text, "graph 0"),
           "record text: %s\n", text);
}

int main(void) {
    test_setup_record();
    test_sm90_layout();
    test_allowed();
    test_classify();
    test_layout();
    test_slot_format();
    test_cpu_gpu_same_class();
    test_lse_merge();
    if (fails) {
        fprintf(stderr, "test_gpu_logic: %d failures\n", fails);
        return 1;
    }
    printf("test_gpu_logic: ok\n");
    return 0;
}
