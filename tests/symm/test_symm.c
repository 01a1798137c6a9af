/* Runtime tests, run under `longctx launch -n P`:
 * test_symm rma|permute|coll|collbig|teams|stress|heap|teamheap.
 * Every PE regenerates every other PE's data from a seed, so each PE checks against a serial
 * reference without extra communication. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/check.h"
#include "longctx/symm.h"

int lc_test_pe = -1;
#define LC_TEST_MAXPES 64
static uint64_t g_seed;

/* Eight bytes per generator call: the large collective cases regenerate hundreds of MiB. */
static void fill(void *buf, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    uint8_t *b = buf;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = lc_test_rng(&s);
        memcpy(b + i, &v, 8);
    }
    for (uint64_t v = lc_test_rng(&s); i < n; i++, v >>= 8) b[i] = (uint8_t)v;
}

static uint64_t seed_of(int pe, int k) { return g_seed * 1000003ULL + (unsigned)pe * 7919ULL + (unsigned)k; }

/* Sizes that catch edge cases: empty, one byte, odd, unaligned ends, bigger than a FIFO slot
 * (128 KiB) and bigger than the whole two-sided FIFO (1 MiB). */
static const size_t SIZES[] = {0, 1, 7, 64, 1000, 4097, 131073, 1048576 + 13, 3 * 1048576 + 5};
#define NSIZES (sizeof SIZES / sizeof *SIZES)

static void test_rma(lc_world *w)
{
    int me = lc_my_pe(w), n = lc_n_pes(w);
    size_t maxb = SIZES[NSIZES - 1] + 64;
    uint8_t *dst = lc_symm_alloc(w, maxb * (size_t)n);
    uint64_t *sig = lc_symm_alloc(w, 8 * 8);
    CHECK(dst && sig, "alloc: %s", lc_last_error(w));
    uint8_t *src = malloc(maxb), *exp = malloc(maxb);
    for (int k = 0; k < (int)NSIZES; k++) {
        size_t b = SIZES[k];
        for (int unalign = 0; unalign < 2; unalign++) {
            size_t off = unalign ? 3 : 0; /* unaligned source and destination */
            memset(dst, 0xEE, maxb * (size_t)n);
            memset(sig, 0, 64);
            CHECK_OK(w, lc_barrier(lc_team_world(w)));
            fill(src + off, b, seed_of(me, k));
            /* Every PE puts its block into slot [me] of every PE; odd PEs use nbi + quiet. */
            for (int p = 0; p < n; p++) {
                uint8_t *d = dst + (size_t)me * maxb + off;
                if (me & 1) CHECK_OK(w, lc_put_nbi(w, d, src + off, b, p));
                else CHECK_OK(w, lc_put(w, d, src + off, b, p));
            }
            CHECK_OK(w, lc_quiet(w));
            CHECK_OK(w, lc_barrier(lc_team_world(w)));
            for (int p = 0; p < n; p++) {
                fill(exp, b, seed_of(p, k));
                CHECK(!memcmp(dst + (size_t)p * maxb + off, exp, b), "put of %zu bytes from PE %d wrong", b, p);
                CHECK(dst[(size_t)p * maxb + off + b] == 0xEE, "put of %zu bytes from PE %d overran", b, p);
            }
            /* get: read the right neighbour's slot [right] and compare */
            int right = (me + 1) % n;
            memset(exp, 0, maxb);
            CHECK_OK(w, lc_get(w, exp, dst + (size_t)right * maxb + off, b, right));
            fill(src + off, b, seed_of(right, k));
            CHECK(!memcmp(exp, src + off, b), "get of %zu bytes wrong", b);
            CHECK_OK(w, lc_barrier(lc_team_world(w)));
            /* put-with-signal SET: data must be visible once the signal is. */
            fill(src + off, b, seed_of(me, k + 100));
            int to = (me + 1) % n, from = (me + n - 1) % n;
            CHECK_OK(w, lc_put_signal_nbi(w, dst + off, src + off, b, &sig[0], (uint64_t)k + 1, LC_SIGNAL_SET, to));
            uint64_t obs = 0;
            CHECK_OK(w, lc_signal_wait_until(w, &sig[0], LC_CMP_EQ, (uint64_t)k + 1, &obs));
            CHECK(obs == (uint64_t)k + 1, "observed %llu", (unsigned long long)obs);
            fill(exp, b, seed_of(from, k + 100));
            CHECK(!memcmp(dst + off, exp, b), "put_signal data of %zu bytes wrong", b);
            CHECK_OK(w, lc_quiet(w));
        }
    }
    /* ADD signals from everyone and every comparison operator. */
    memset(sig, 0, 64);
    CHECK_OK(w, lc_barrier(lc_team_world(w)));
    for (int p = 0; p < n; p++) CHECK_OK(w, lc_signal_op(w, &sig[1], (uint64_t)(me + 1), LC_SIGNAL_ADD, p));
    uint64_t want = 0;
    for (int p = 0; p < n; p++) want += (uint64_t)(p + 1);
    CHECK_OK(w, lc_signal_wait_until(w, &sig[1], LC_CMP_GE, want, NULL));
    CHECK_OK(w, lc_signal_wait_until(w, &sig[1], LC_CMP_EQ, want, NULL));
    CHECK_OK(w, lc_signal_wait_until(w, &sig[1], LC_CMP_NE, want + 1, NULL));
    CHECK_OK(w, lc_signal_wait_until(w, &sig[1], LC_CMP_GT, want - 1, NULL));
    CHECK_OK(w, lc_signal_wait_until(w, &sig[1], LC_CMP_LT, want + 1, NULL));
    CHECK_OK(w, lc_signal_wait_until(w, &sig[1], LC_CMP_LE, want, NULL));
    CHECK(lc_signal_fetch(w, &sig[1]) == want, "fetch");
    /* lc_symm_ptr: every peer reachable on shm (on mpi, those on my host), and it names the
     * same object; a peer it cannot reach is read with lc_get. */
    CHECK_OK(w, lc_barrier(lc_team_world(w)));
    for (int p = 0; p < n; p++) {
        uint64_t *pp = lc_symm_ptr(w, &sig[1], p), got = 0;
        CHECK(pp != NULL || (p != me && strcmp(lc_world_backend(w), "shm")), "peer %d unreachable", p);
        if (pp) got = *pp;
        else CHECK_OK(w, lc_get(w, &got, &sig[1], 8, p));
        CHECK(got == want, "peer %d value %llu via lc_symm_ptr/lc_get", p, (unsigned long long)got);
    }
    CHECK(lc_symm_ptr(w, src, 0) == NULL, "a private pointer must not translate");
    /* bad arguments: clear errors, not crashes */
    CHECK(lc_put(w, src, src, 8, 0) == LC_ERR_ARG, "put to a non-symmetric dst must fail");
    CHECK(strstr(lc_last_error(w), "symmetric heap"), "message: %s", lc_last_error(w));
    CHECK(lc_put(w, dst, src, 8, n) == LC_ERR_ARG, "put to PE n must fail");
    CHECK(strstr(lc_last_error(w), "out of range"), "message: %s", lc_last_error(w));
    CHECK(lc_signal_wait_until(w, (uint64_t *)src, LC_CMP_EQ, 0, NULL) == LC_ERR_ARG, "private signal");
    CHECK_OK(w, lc_barrier(lc_team_world(w)));
    free(src);
    free(exp);
    CHECK_OK(w, lc_symm_free(w, sig));
    CHECK_OK(w, lc_symm_free(w, dst));
}

static void test_heap(lc_world *w)
{
    int me = lc_my_pe(w);
    /* same offsets everywhere, reuse after free, exhaustion and mismatch are clear errors */
    void *a = lc_symm_alloc(w, 1000), *b = lc_symm_alloc(w, 3 << 20), *c = lc_symm_alloc(w, 1);
    CHECK(a && b && c, "%s", lc_last_error(w));
    CHECK(((uintptr_t)b & 4095) == 0, "large blocks are page aligned");
    uint64_t offs[3] = {(uint64_t)((uint8_t *)a - (uint8_t *)a), (uint64_t)((uint8_t *)b - (uint8_t *)a),
                        (uint64_t)((uint8_t *)c - (uint8_t *)a)};
    uint64_t *all = malloc(sizeof offs * (size_t)lc_n_pes(w));
    CHECK_OK(w, lc_allgather(lc_team_world(w), all, offs, sizeof offs));
    for (int p = 0; p < lc_n_pes(w); p++) CHECK(!memcmp(all + 3 * p, offs, sizeof offs), "offsets differ on PE %d", p);
    free(all);
    CHECK_OK(w, lc_symm_free(w, b));
    void *d = lc_symm_alloc(w, 2 << 20);
    CHECK(d == b, "freed space is reused first-fit");
    void *big = lc_symm_alloc(w, lc_symm_heap_size(w) * 2);
    CHECK(!big && strstr(lc_last_error(w), "exhausted"), "exhaustion: %s", lc_last_error(w));
    void *mis = lc_symm_alloc(w, me == 0 ? 64 : 128);
    if (lc_n_pes(w) > 1) CHECK(!mis && strstr(lc_last_error(w), "disagree"), "mismatch: %s", lc_last_error(w));
    else CHECK(mis, "one PE agrees with itself");
    CHECK(lc_symm_free(w, (uint8_t *)a + 8) == LC_ERR_ARG, "free of a non-block");
    CHECK_OK(w, lc_barrier(lc_team_world(w)));
}

/* Offsets relative to a world anchor allocated first, so members can compare them. */
static uint64_t rel(const void *p, const void *anchor) { return (uint64_t)((const uint8_t *)p - (const uint8_t *)anchor); }

/* Team-collective allocation: the world as rows of 2 (DP replicas of a CP team of 2). */
static void test_team_heap(lc_world *w)
{
    lc_team *world = lc_team_world(w), *x, *y;
    int me = lc_my_pe(w), n = lc_n_pes(w);
    uint8_t *anchor = lc_symm_alloc(w, 64);
    CHECK(anchor, "%s", lc_last_error(w));
    CHECK_OK(w, lc_team_split_2d(world, n > 1 ? 2 : 1, &x, &y));
    int row = me / lc_team_n_pes(x), xn = lc_team_n_pes(x), xme = lc_team_my_pe(x);
    /* Rows allocate different sizes at the same time; nobody outside a row takes part (row 0
     * even allocates twice more than the others, so the heaps of different rows diverge). */
    size_t ab = 1000 + 4096 * (size_t)row, bb = ((size_t)row + 1) << 20;
    uint8_t *a = lc_symm_alloc_team(x, ab), *b = lc_symm_alloc_team(x, bb), *e1 = NULL, *e2 = NULL;
    CHECK(a && b, "row %d: %s", row, lc_last_error(w));
    if (row == 0) {
        e1 = lc_symm_alloc_team(x, 5000);
        e2 = lc_symm_alloc_team(x, 70000);
        CHECK(e1 && e2, "%s", lc_last_error(w));
        CHECK_OK(w, lc_symm_free_team(x, e1)); /* leaves a hole below e2 on row 0 only */
    }
    uint64_t offs[2] = {rel(a, anchor), rel(b, anchor)}, got[2 * LC_TEST_MAXPES];
    CHECK_OK(w, lc_allgather(x, got, offs, sizeof offs));
    for (int r = 0; r < xn; r++)
        CHECK(got[2 * r] == offs[0] && got[2 * r + 1] == offs[1], "row %d: team rank %d has other offsets", row, r);
    /* The object is the same on every member: my right neighbour in the row writes mine. */
    uint8_t *pat = malloc(bb), *exp = malloc(bb);
    int right = (xme + 1) % xn, left = (xme + xn - 1) % xn;
    fill(pat, bb, seed_of(me, 700));
    CHECK_OK(w, lc_put(w, b, pat, bb, lc_team_translate_pe(x, right, world)));
    CHECK_OK(w, lc_barrier(x));
    fill(exp, bb, seed_of(lc_team_translate_pe(x, left, world), 700));
    CHECK(!memcmp(b, exp, bb), "row %d: the team's object is not at the same place on its members", row);
    /* A world allocation on heaps that differ between rows: one offset for all, clear of
     * every live team object on every PE. */
    fill(a, ab, seed_of(me, 701));
    size_t cb = 3 << 20;
    uint8_t *c = lc_symm_alloc(w, cb);
    CHECK(c, "world alloc on diverged heaps: %s", lc_last_error(w));
    uint64_t co = rel(c, anchor), *allc = malloc(8 * (size_t)n);
    CHECK_OK(w, lc_allgather(world, allc, &co, 8));
    for (int p = 0; p < n; p++) CHECK(allc[p] == co, "world alloc: PE %d has offset %llu, I %llu", p,
                                      (unsigned long long)allc[p], (unsigned long long)co);
    free(allc);
    memset(c, 0x5A, cb);
    CHECK_OK(w, lc_barrier(world));
    fill(exp, ab, seed_of(me, 701));
    CHECK(!memcmp(a, exp, ab), "the world object overlaps a team object");
    fill(exp, bb, seed_of(lc_team_translate_pe(x, left, world), 700));
    CHECK(!memcmp(b, exp, bb), "the world object overlaps a team object");
    /* Errors: a free on another team, a member asking for other bytes (named everywhere). */
    if (n > 2) { /* at P <= 2 the row is the whole world */
        CHECK(lc_symm_free(w, b) == LC_ERR_ARG && strstr(lc_last_error(w), "allocated on the team"),
              "free of a team object on the world: %s", lc_last_error(w));
        CHECK(lc_symm_free_team(x, c) == LC_ERR_ARG, "free of a world object on a team");
    }
    if (xn > 1) {
        void *mis = lc_symm_alloc_team(x, xme == 0 ? 64 : 128);
        char want[64];
        snprintf(want, sizeof want, "PE %d for 64", lc_team_translate_pe(x, 0, world));
        CHECK(!mis && strstr(lc_last_error(w), "disagree"), "team mismatch: %s", lc_last_error(w));
        CHECK(xme == 0 || strstr(lc_last_error(w), want), "mismatch names the PE: %s", lc_last_error(w));
    }
    /* Too big for the heap: every member says so. */
    CHECK(!lc_symm_alloc_team(x, lc_symm_heap_size(w) + 1) && strstr(lc_last_error(w), "exhausted"),
          "team exhaustion: %s", lc_last_error(w));
    CHECK_OK(w, lc_symm_free(w, c));
    CHECK_OK(w, lc_symm_free_team(x, b));
    CHECK_OK(w, lc_symm_free_team(x, a));
    if (e2) CHECK_OK(w, lc_symm_free_team(x, e2));
    /* Everything freed: the heaps agree again and the next world allocation is at the anchor's end. */
    uint8_t *d = lc_symm_alloc(w, 100);
    CHECK(d == anchor + 64, "after freeing everything the next block follows the anchor (got +%lld)",
          (long long)(d - anchor));
    CHECK_OK(w, lc_symm_free(w, d));
    lc_team_destroy(x);
    lc_team_destroy(y);
    free(pat);
    free(exp);
    CHECK_OK(w, lc_symm_free(w, anchor));
    CHECK_OK(w, lc_barrier(world));
}

static void check_permute(lc_world *w, lc_team *t, const int *map, int shift, size_t b, lc_lowering l,
                          uint8_t *dst, uint8_t *src, uint8_t *exp, int k)
{
    int me = lc_team_my_pe(t), n = lc_team_n_pes(t);
    fill(src, b, seed_of(me, k));
    memset(dst, 0xEE, b + 8);
    lc_permute_req r;
    if (map) CHECK_OK(w, lc_permute_start_map(t, map, src, dst, b, l, &r));
    else CHECK_OK(w, lc_permute_start(t, shift, src, dst, b, l, &r));
    CHECK_OK(w, lc_permute_done(&r));
    int from = -1;
    if (map) {
        for (int q = 0; q < n; q++)
            if (map[q] == me) from = q;
    } else {
        from = (((me - shift) % n) + n) % n;
    }
    if (from >= 0) {
        fill(exp, b, seed_of(from, k));
        CHECK(!memcmp(dst, exp, b), "permute %s shift %d of %zu bytes from rank %d wrong",
              lc_lowering_name(l), shift, b, from);
    } else {
        for (size_t i = 0; i < b; i++) CHECK(dst[i] == 0xEE, "rank with no source got data");
    }
    CHECK(dst[b] == 0xEE, "permute overran dst");
}

static void test_permute(lc_world *w, lc_team *t)
{
    int n = lc_team_n_pes(t);
    size_t maxb = SIZES[NSIZES - 1];
    uint8_t *dst = lc_symm_alloc(w, maxb + 8), *dst2 = lc_symm_alloc(w, maxb + 8);
    uint8_t *src = malloc(maxb + 8), *exp = malloc(maxb + 8), *keep = malloc(maxb + 8);
    CHECK(dst && dst2 && src && exp && keep, "alloc");
    const int shifts[] = {1, -1, 2, 0, n + 1};
    for (int k = 0; k < (int)NSIZES; k++)
        for (int s = 0; s < 5; s++) {
            check_permute(w, t, NULL, shifts[s], SIZES[k], LC_LOWER_ONE_SIDED, dst, src, exp, k);
            memcpy(keep, dst, SIZES[k]);
            check_permute(w, t, NULL, shifts[s], SIZES[k], LC_LOWER_TWO_SIDED, dst, src, exp, k);
            CHECK(!memcmp(keep, dst, SIZES[k]), "one_sided and two_sided bytes differ");
            check_permute(w, t, NULL, shifts[s], SIZES[k], LC_LOWER_AUTO, dst, src, exp, k);
        }
    /* An explicit map: reverse the team, with the middle rank (odd n) sending nowhere. */
    int *map = malloc(sizeof(int) * (size_t)n);
    for (int r = 0; r < n; r++) map[r] = n - 1 - r;
    if (n % 2) map[n / 2] = -1;
    for (int k = 0; k < (int)NSIZES; k += 2) {
        check_permute(w, t, map, 0, SIZES[k], LC_LOWER_ONE_SIDED, dst, src, exp, k);
        check_permute(w, t, map, 0, SIZES[k], LC_LOWER_TWO_SIDED, dst, src, exp, k);
    }
    /* Several outstanding at once, both directions, mixed lowerings (the ring backward). */
    int me = lc_team_my_pe(t);
    size_t b = 200000;
    uint8_t *src2 = malloc(b);
    fill(src, b, seed_of(me, 50));
    fill(src2, b, seed_of(me, 51));
    lc_permute_req r1, r2;
    CHECK_OK(w, lc_permute_start(t, 1, src, dst, b, LC_LOWER_ONE_SIDED, &r1));
    CHECK_OK(w, lc_permute_start(t, -1, src2, dst2, b, LC_LOWER_TWO_SIDED, &r2));
    CHECK_OK(w, lc_permute_done(&r2));
    CHECK_OK(w, lc_permute_done(&r1));
    fill(exp, b, seed_of((me + n - 1) % n, 50));
    CHECK(!memcmp(dst, exp, b), "outstanding permute 1");
    fill(exp, b, seed_of((me + 1) % n, 51));
    CHECK(!memcmp(dst2, exp, b), "outstanding permute 2");
    /* Two-sided transfers larger than the FIFO, completed in opposite orders on neighbours:
     * each done must drive the other request too, or the FIFOs fill and both sides stall. */
    {
        size_t bb = 3 * 1048576 + 5;
        uint8_t *s1 = malloc(bb), *s2 = malloc(bb);
        fill(s1, bb, seed_of(me, 60));
        fill(s2, bb, seed_of(me, 61));
        CHECK_OK(w, lc_permute_start(t, 1, s1, dst, bb, LC_LOWER_TWO_SIDED, &r1));
        CHECK_OK(w, lc_permute_start(t, -1, s2, dst2, bb, LC_LOWER_TWO_SIDED, &r2));
        if (me % 2) {
            CHECK_OK(w, lc_permute_done(&r1));
            CHECK_OK(w, lc_permute_done(&r2));
        } else {
            CHECK_OK(w, lc_permute_done(&r2));
            CHECK_OK(w, lc_permute_done(&r1));
        }
        uint8_t *e = malloc(bb);
        fill(e, bb, seed_of((me + n - 1) % n, 60));
        CHECK(!memcmp(dst, e, bb), "crossed two-sided permute 1");
        fill(e, bb, seed_of((me + 1) % n, 61));
        CHECK(!memcmp(dst2, e, bb), "crossed two-sided permute 2");
        free(e);
        free(s1);
        free(s2);
    }
    /* Bad input is an error, not a hang: a request never started, or completed twice. */
    lc_permute_req fresh;
    memset(&fresh, 0, sizeof fresh);
    CHECK(lc_permute_done(&fresh) == LC_ERR_ARG, "done of a request never started");
    CHECK(lc_permute_done(&r1) == LC_ERR_ARG, "second done of a request");
    /* Bad input (a bad map, a private dst for one_sided) aborts the world with its reason,
     * since it is an error inside a collective: tests/symm/test_fault.c checks that. */
    CHECK_OK(w, lc_barrier(t));
    free(map);
    free(src);
    free(src2);
    free(exp);
    free(keep);
    CHECK_OK(w, lc_symm_free(w, dst2));
    CHECK_OK(w, lc_symm_free(w, dst));
}

static double frand(uint64_t *s) { return (double)(lc_test_rng(s) >> 11) / 9007199254740992.0 - 0.5; }

/* One check per collective and size; k keeps the data of different calls apart. */
static void check_allreduce(lc_world *w, lc_team *t, size_t c, int k)
{
    int me = lc_team_my_pe(t), n = lc_team_n_pes(t);
    float *x = malloc(sizeof(float) * (c + 1)), *y = malloc(sizeof(float) * (c + 1));
    double *xd = malloc(sizeof(double) * (c + 1)), *yd = malloc(sizeof(double) * (c + 1));
    double *ref = calloc(c + 1, sizeof(double)), *refmax = malloc(sizeof(double) * (c + 1));
    CHECK(x && y && xd && yd && ref && refmax, "host memory for %zu elements", c);
    for (int p = 0; p < n; p++) {
        uint64_t s = seed_of(p, k);
        for (size_t i = 0; i < c; i++) {
            double v = frand(&s);
            if (p == me) {
                x[i] = (float)v;
                xd[i] = v;
            }
            ref[i] += v;
            refmax[i] = p == 0 || v > refmax[i] ? v : refmax[i];
        }
    }
    for (size_t i = 0; i < c; i++) y[i] = NAN; /* poisoned: a piece never written fails */
    y[c] = 42.0f;
    CHECK_OK(w, lc_allreduce_sum_f32(t, y, x, c));
    CHECK(y[c] == 42.0f, "allreduce of %zu overran", c);
    double err = 0, nrm = 0;
    for (size_t i = 0; i < c; i++) {
        err += (y[i] - ref[i]) * (y[i] - ref[i]);
        nrm += ref[i] * ref[i];
    }
    CHECK(err <= 1e-10 * nrm + 1e-30 && !isnan(err), "allreduce f32 of %zu: rel err %g", c,
          sqrt(err / (nrm + 1e-300)));
    /* Results must be bit-identical across members: gather a checksum. */
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < c; i++) {
        uint32_t u;
        memcpy(&u, &y[i], 4);
        h = (h ^ u) * 1099511628211ULL;
    }
    uint64_t *hs = malloc(8 * (size_t)n);
    CHECK_OK(w, lc_allgather(t, hs, &h, 8));
    for (int p = 0; p < n; p++) CHECK(hs[p] == h, "allreduce of %zu: result differs on rank %d", c, p);
    free(hs);
    for (size_t i = 0; i < c; i++) yd[i] = NAN;
    yd[c] = 42.0;
    CHECK_OK(w, lc_allreduce_sum_f64(t, yd, xd, c));
    CHECK(yd[c] == 42.0, "allreduce f64 of %zu overran", c);
    for (size_t i = 0; i < c; i++) CHECK(fabs(yd[i] - ref[i]) <= 1e-12, "allreduce f64 of %zu [%zu]", c, i);
    memcpy(yd, xd, sizeof(double) * c); /* in place */
    CHECK_OK(w, lc_allreduce_max_f64(t, yd, yd, c));
    for (size_t i = 0; i < c; i++) CHECK(yd[i] == refmax[i], "allreduce max of %zu [%zu]", c, i);
    free(x);
    free(y);
    free(xd);
    free(yd);
    free(ref);
    free(refmax);
}

/* inplace: the root passes dst == src. */
static void check_broadcast(lc_world *w, lc_team *t, size_t b, int root, int inplace, int k)
{
    int me = lc_team_my_pe(t);
    uint8_t *src = malloc(b + 1), *dst = malloc(b + 1), *exp = malloc(b + 1);
    CHECK(src && dst && exp, "host memory for %zu bytes", b);
    fill(exp, b, seed_of(root, k));
    memcpy(src, exp, b);
    memset(dst, 0xEE, b + 1);
    if (inplace && me == root) memcpy(dst, src, b);
    CHECK_OK(w, lc_broadcast(t, dst, me == root && !inplace ? src : dst, b, root));
    if (memcmp(dst, exp, b)) {
        size_t bad = 0, first = b;
        for (size_t i = 0; i < b; i++)
            if (dst[i] != exp[i]) {
                bad++;
                if (first == b) first = i;
            }
        CHECK(0, "broadcast of %zu bytes from rank %d%s: %zu wrong bytes from offset %zu", b, root,
              inplace ? " (in place)" : "", bad, first);
    }
    CHECK(dst[b] == 0xEE, "broadcast of %zu bytes overran", b);
    free(src);
    free(dst);
    free(exp);
}

static void check_allgather(lc_world *w, lc_team *t, size_t b, int k)
{
    int me = lc_team_my_pe(t), n = lc_team_n_pes(t);
    uint8_t *src = malloc(b + 1), *dst = malloc(b * (size_t)n + 1), *exp = malloc(b + 1);
    CHECK(src && dst && exp, "host memory for %zu bytes", b);
    fill(src, b, seed_of(me, k));
    memset(dst, 0xEE, b * (size_t)n + 1);
    CHECK_OK(w, lc_allgather(t, dst, src, b));
    for (int p = 0; p < n; p++) {
        fill(exp, b, seed_of(p, k));
        CHECK(!memcmp(dst + (size_t)p * b, exp, b), "allgather block %d of %zu bytes", p, b);
    }
    CHECK(dst[b * (size_t)n] == 0xEE, "allgather of %zu overran", b);
    free(src);
    free(dst);
    free(exp);
}

/* block p of my src goes to p */
static void check_alltoall(lc_world *w, lc_team *t, size_t b, int k)
{
    int me = lc_team_my_pe(t), n = lc_team_n_pes(t);
    uint8_t *src = malloc(b * (size_t)n + 1), *dst = malloc(b * (size_t)n + 1), *exp = malloc(b + 1);
    CHECK(src && dst && exp, "host memory for %zu bytes", b);
    for (int p = 0; p < n; p++) fill(src + (size_t)p * b, b, seed_of(me * 64 + p, k));
    memset(dst, 0xEE, b * (size_t)n + 1);
    CHECK_OK(w, lc_alltoall(t, dst, src, b));
    for (int p = 0; p < n; p++) {
        fill(exp, b, seed_of(p * 64 + me, k));
        CHECK(!memcmp(dst + (size_t)p * b, exp, b), "alltoall block from %d of %zu bytes", p, b);
    }
    CHECK(dst[b * (size_t)n] == 0xEE, "alltoall of %zu overran", b);
    free(src);
    free(dst);
    free(exp);
}

static void check_reduce_scatter(lc_world *w, lc_team *t, size_t cpp, int k)
{
    int me = lc_team_my_pe(t), n = lc_team_n_pes(t);
    float *src = malloc(sizeof(float) * (cpp * (size_t)n + 1)), *dst = malloc(sizeof(float) * (cpp + 1));
    double *ref = calloc(cpp + 1, sizeof(double));
    CHECK(src && dst && ref, "host memory for %zu elements", cpp);
    for (int p = 0; p < n; p++) {
        uint64_t s = seed_of(p, k);
        for (size_t i = 0; i < cpp * (size_t)n; i++) {
            float v = (float)frand(&s);
            if (p == me) src[i] = v;
            if (i / cpp == (size_t)me) ref[i % cpp] += v;
        }
    }
    for (size_t i = 0; i < cpp; i++) dst[i] = NAN;
    dst[cpp] = 42.0f;
    CHECK_OK(w, lc_reduce_scatter_sum_f32(t, dst, src, cpp));
    for (size_t i = 0; i < cpp; i++)
        CHECK(fabs(dst[i] - ref[i]) < 1e-5, "reduce_scatter of %zu [%zu] %g vs %g", cpp, i, dst[i], ref[i]);
    CHECK(dst[cpp] == 42.0f, "reduce_scatter of %zu overran", cpp);
    free(src);
    free(dst);
    free(ref);
}

static void test_coll(lc_world *w, lc_team *t)
{
    int n = lc_team_n_pes(t);
    CHECK_OK(w, lc_barrier(t));
    const size_t counts[] = {0, 1, 7, 1000, 3 * 1024 * 1024 + 3}; /* last: many scratch rounds */
    for (int ci = 0; ci < 5; ci++) check_allreduce(w, t, counts[ci], ci);
    const size_t bsz[] = {0, 1, 13, 4096, 5 * 1048576 + 1};
    for (int bi = 0; bi < 5; bi++) {
        check_allgather(w, t, bsz[bi], 200 + bi);
        for (int root = 0; root < n; root++) check_broadcast(w, t, bsz[bi], root, root == 1, 300 + bi);
        check_alltoall(w, t, bsz[bi], 400 + bi);
    }
    check_reduce_scatter(w, t, 300001, 500);
    /* A bad root aborts the world (an error inside a collective): tests/symm/test_fault.c. */
}

/* Large odd sizes: the landing zone has two 4 MiB areas per PE (split n ways for the
 * exchanges), so these sizes reuse each area at least three times on any team size; a
 * sender that overtakes a slow reader shows up as wrong bytes. Sized to the team so that
 * every PE moves about the same volume at P = 2, 3 or 4. */
static int g_quick; /* LONGCTX_TEST_QUICK (the sanitizer pass): fewer roots, no 64 MiB */

static void test_coll_big(lc_world *w, lc_team *t)
{
    int n = lc_team_n_pes(t);
    const size_t area = 4u << 20, reuse = 6; /* >= 6 chunks: each area used >= 3 times */
    CHECK_OK(w, lc_barrier(t));
    check_broadcast(w, t, 16 * 1048576 + 3, 0, 1, 600);
    for (int root = g_quick ? n - 1 : 1; root < n; root++)
        check_broadcast(w, t, 16 * 1048576 + 3, root, 0, 601 + root);
    if (!g_quick) check_broadcast(w, t, 64 * 1048576 + 5, n - 1, 0, 620);
    check_allreduce(w, t, reuse * area / 4 + 7, 630);           /* f32: 6 rounds; f64: 12 */
    check_allgather(w, t, reuse * area / (size_t)n + 4097, 640);  /* >= 6 chunks per slot */
    check_alltoall(w, t, reuse * area / (size_t)n + 4099, 650);
    check_reduce_scatter(w, t, reuse * area / 4 / (size_t)n + 3, 660);
    /* several big collectives back to back with different roots and no barrier of mine */
    check_broadcast(w, t, 9 * 1048576 + 1, n / 2, 0, 670);
    check_broadcast(w, t, 9 * 1048576 + 1, 0, 0, 671);
}

/* The big collectives on the world, then on teams that are not the world: a team of P-1
 * PEs that leaves PE 0 out (P >= 3), and at P = 4 two 2-PE teams at once. */
static void test_coll_big_all(lc_world *w)
{
    lc_team *world = lc_team_world(w);
    int n = lc_n_pes(w);
    test_coll_big(w, world);
    if (n >= 3) {
        lc_team *rest;
        CHECK_OK(w, lc_team_split_strided(world, 1, 1, n - 1, &rest));
        if (rest) {
            test_coll_big(w, rest);
            lc_team_destroy(rest);
        }
    }
    if (n == 4 && !g_quick) {
        lc_team *x, *y;
        CHECK_OK(w, lc_team_split_2d(world, 2, &x, &y));
        test_coll_big(w, x);
        lc_team_destroy(x);
        lc_team_destroy(y);
    }
    CHECK_OK(w, lc_barrier(world));
}

static void test_teams(lc_world *w)
{
    lc_team *world = lc_team_world(w);
    int n = lc_n_pes(w), me = lc_my_pe(w);
    /* 2-D mesh: columns of xrange 2 (a 2x2 mesh at 4 PEs, 2x4 at 8) */
    for (int xr = 1; xr <= n; xr *= 2) {
        if (n % xr) continue;
        lc_team *x, *y;
        CHECK_OK(w, lc_team_split_2d(world, xr, &x, &y));
        CHECK(lc_team_n_pes(x) == xr && lc_team_n_pes(y) == n / xr, "2d sizes %d %d", lc_team_n_pes(x), lc_team_n_pes(y));
        CHECK(lc_team_my_pe(x) == me % xr && lc_team_my_pe(y) == me / xr, "2d ranks");
        CHECK(lc_team_translate_pe(x, 0, world) == me - me % xr, "translate x");
        CHECK(lc_team_translate_pe(y, 0, world) == me % xr, "translate y");
        CHECK(lc_team_translate_pe(world, (me + 1) % n, x) ==
                  ((me + 1) % n / xr == me / xr ? (me + 1) % n % xr : -1), "translate world->x");
        /* collectives and permutes inside each team, both at once (nested teams) */
        double v = me, sx, sy;
        CHECK_OK(w, lc_allreduce_sum_f64(x, &sx, &v, 1));
        CHECK_OK(w, lc_allreduce_sum_f64(y, &sy, &v, 1));
        double ex = 0, ey = 0;
        for (int p = 0; p < n; p++) {
            if (p / xr == me / xr) ex += p;
            if (p % xr == me % xr) ey += p;
        }
        CHECK(sx == ex && sy == ey, "team sums %g/%g vs %g/%g", sx, sy, ex, ey);
        if (xr == 2) { /* the 2x2 mesh at 4 PEs, 2x4 at 8: the full checks inside teams */
            test_permute(w, x);
            test_coll(w, y);
        }
        lc_team_destroy(x);
        lc_team_destroy(y);
    }
    /* strided: the even PEs; repeated create/destroy reuses slots safely */
    for (int it = 0; it < 20; it++) {
        lc_team *ev;
        CHECK_OK(w, lc_team_split_strided(world, 0, 2, (n + 1) / 2, &ev));
        CHECK((ev != NULL) == (me % 2 == 0), "membership");
        if (ev) {
            CHECK(lc_team_my_pe(ev) == me / 2, "strided rank");
            int v = me, got[LC_TEST_MAXPES];
            CHECK_OK(w, lc_allgather(ev, got, &v, sizeof v));
            for (int r = 0; r < lc_team_n_pes(ev); r++) CHECK(got[r] == 2 * r, "strided gather %d", got[r]);
            CHECK_OK(w, lc_barrier(ev));
            double one = 1, cnt;
            CHECK_OK(w, lc_allreduce_sum_f64(ev, &cnt, &one, 1));
            CHECK(cnt == (n + 1) / 2, "strided count %g", cnt);
            lc_team_destroy(ev);
        }
    }
    lc_team *bad;
    CHECK(lc_team_split_strided(world, 0, 1, n + 1, &bad) == LC_ERR_ARG && !bad, "oversized team");
    CHECK_OK(w, lc_barrier(world));
}

/* Thousands of reuses of the same signals and buffers: ordering races show up here. */
static void test_stress(lc_world *w, int iters)
{
    lc_team *t = lc_team_world(w);
    int me = lc_my_pe(w), n = lc_n_pes(w);
    size_t b = 4096 + 3;
    uint64_t *buf = lc_symm_alloc(w, b * 8), *sig = lc_symm_alloc(w, 8);
    uint8_t *dst = lc_symm_alloc(w, 300000), *src = malloc(300000), *exp = malloc(300000);
    CHECK(buf && sig && dst, "alloc");
    *sig = 0;
    CHECK_OK(w, lc_barrier(t));
    uint64_t *val = malloc(b * 8);
    for (int it = 1; it <= iters; it++) {
        /* ring of put-with-signal ADD: the signal must never be seen before its data */
        for (size_t i = 0; i < b; i++) val[i] = (uint64_t)it * 1000003u + (uint64_t)me;
        CHECK_OK(w, lc_put_signal_nbi(w, buf, val, b * 8, sig, 1, LC_SIGNAL_ADD, (me + 1) % n));
        CHECK_OK(w, lc_signal_wait_until(w, sig, LC_CMP_GE, (uint64_t)it, NULL));
        uint64_t want = (uint64_t)it * 1000003u + (uint64_t)((me + n - 1) % n);
        CHECK(buf[0] == want && buf[b - 1] == want, "iteration %d: data behind its signal", it);
        /* the sender may overwrite buf next iteration only after I read it */
        CHECK_OK(w, lc_barrier(t));
        if (it % 10 == 0) {
            size_t pb = (size_t)(it * 7919) % 300000;
            lc_lowering l = (it / 10) % 2 ? LC_LOWER_TWO_SIDED : LC_LOWER_ONE_SIDED;
            fill(src, pb, seed_of(me, it));
            lc_permute_req r;
            CHECK_OK(w, lc_permute_start(t, 1, src, dst, pb, l, &r));
            CHECK_OK(w, lc_permute_done(&r));
            fill(exp, pb, seed_of((me + n - 1) % n, it));
            CHECK(!memcmp(dst, exp, pb), "stress permute %d", it);
        }
    }
    /* back-to-back permutes with no barrier between them: the credits alone must keep order */
    for (int it = 0; it < iters; it++) {
        size_t pb = 64 + (size_t)(it % 5) * 40000;
        memset(src, (uint8_t)(it * 31 + me), pb);
        lc_permute_req r;
        CHECK_OK(w, lc_permute_start(t, 1, src, dst, pb, it % 3 == 2 ? LC_LOWER_TWO_SIDED : LC_LOWER_ONE_SIDED, &r));
        CHECK_OK(w, lc_permute_done(&r));
        uint8_t e = (uint8_t)(it * 31 + (me + n - 1) % n);
        CHECK(dst[0] == e && dst[pb - 1] == e, "back-to-back permute %d", it);
    }
    free(val);
    free(src);
    free(exp);
    CHECK_OK(w, lc_barrier(t));
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_symm rma|heap|teamheap|permute|coll|collbig|teams|stress [iters]\n");
        return 2;
    }
    g_quick = getenv("LONGCTX_TEST_QUICK") != NULL;
    const char *s = getenv("LONGCTX_SEED");
    g_seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL);
    lc_world *w;
    if (lc_world_init(NULL, &w)) return 1;
    lc_test_pe = lc_my_pe(w);
    /* everyone must use PE 0's seed so that they can regenerate each other's data */
    CHECK_OK(w, lc_broadcast(lc_team_world(w), &g_seed, &g_seed, sizeof g_seed, 0));
    if (lc_my_pe(w) == 0) printf("test_symm %s: %d PEs, seed %llu (LONGCTX_SEED)\n", argv[1], lc_n_pes(w), (unsigned long long)g_seed);
    if (!strcmp(argv[1], "rma")) test_rma(w);
    else if (!strcmp(argv[1], "heap")) test_heap(w);
    else if (!strcmp(argv[1], "teamheap")) test_team_heap(w);
    else if (!strcmp(argv[1], "permute")) test_permute(w, lc_team_world(w));
    else if (!strcmp(argv[1], "coll")) test_coll(w, lc_team_world(w));
    else if (!strcmp(argv[1], "collbig")) test_coll_big_all(w);
    else if (!strcmp(argv[1], "teams")) test_teams(w);
    else if (!strcmp(argv[1], "policy")) { /* the lowering decision is logged (LONGCTX_DEBUG) */
        uint8_t *d = lc_symm_alloc(w, 64), s8[64] = {0};
        lc_permute_req r;
        CHECK_OK(w, lc_permute_start(lc_team_world(w), 1, s8, d, 64, LC_LOWER_AUTO, &r));
        CHECK_OK(w, lc_permute_done(&r));
    } else if (!strcmp(argv[1], "stress")) test_stress(w, argc > 2 ? atoi(argv[2]) : 3000);
    else {
        fprintf(stderr, "unknown test %s\n", argv[1]);
        return 2;
    }
    int rc = lc_world_finalize(w);
    CHECK(rc == 0, "finalize returned %d", rc);
    if (lc_test_pe == 0) printf("ok\n");
    return 0;
}
