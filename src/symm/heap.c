/* Symmetric heap allocator, collective over a team (the world is one team among others).
 * Every PE keeps its own free list; members of a team first check that they make the same
 * request, then agree on the lowest offset free on all of them, so a team's object sits at
 * the same offset in every member's heap while disjoint teams allocate independently. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "symm/internal.h"

static size_t align_for(size_t bytes) { return bytes >= (1u << 20) ? 4096 : LC_CACHELINE; }

int lc__heap_init(lc_world *w)
{
    w->free_list = calloc(1, sizeof(lc_heap_block));
    if (!w->free_list) return lc__err(w, LC_ERR_SYS, "out of host memory");
    w->free_list->off = 0;
    w->free_list->size = w->heap_bytes;
    return LC_OK;
}

static void free_all(lc_heap_block *b)
{
    while (b) {
        lc_heap_block *n = b->next;
        free(b);
        b = n;
    }
}

void lc__heap_release(lc_world *w)
{
    free_all(w->free_list);
    free_all(w->used_list);
    w->free_list = w->used_list = NULL;
}

size_t lc_symm_heap_size(const lc_world *w) { return w->heap_bytes; }

int lc_symm_contains(const lc_world *w, const void *ptr, size_t bytes)
{
    const uint8_t *p = ptr, *mine = w->heap0 + (size_t)w->me * w->heap_stride;
    return p >= mine && bytes <= w->heap_bytes && (size_t)(p - mine) <= w->heap_bytes - bytes;
}

void *lc_symm_ptr(lc_world *w, const void *ptr, int pe)
{
    if (!w || !ptr || !lc_symm_contains(w, ptr, 1)) return NULL; /* heap objects only */
    return w->be->ptr(w, ptr, pe);
}

/* Members compare their requests (call number on the team, bytes) before any offset is
 * chosen, so a PE that asks for something else is named on every member. */
static int check_request(lc_team *t, const char *op, uint64_t seq, size_t bytes, uint64_t *all)
{
    lc_world *w = t->w;
    uint64_t mine[2] = {seq, bytes};
    int rc = lc_allgather(t, all, mine, sizeof mine);
    if (rc) return rc;
    for (int r = 0; r < t->size; r++)
        if (all[2 * r] != seq || all[2 * r + 1] != bytes)
            return lc__err(w, LC_ERR_MISMATCH,
                           "%s #%llu on a team of %d: PEs disagree: PE %d asked for %zu bytes, PE %d "
                           "for %llu (call #%llu) — every member must make the same collective calls",
                           op, (unsigned long long)seq, t->size, w->me, bytes, lc__team_pe(t, r),
                           (unsigned long long)all[2 * r + 1], (unsigned long long)all[2 * r]);
    return LC_OK;
}

/* The lowest offset >= from, aligned to a, where need bytes are free on this PE. */
static size_t first_fit(const lc_world *w, size_t from, size_t need, size_t a)
{
    for (const lc_heap_block *b = w->free_list; b; b = b->next) {
        size_t lo = b->off > from ? b->off : from;
        if (lo > b->off + b->size) continue;
        size_t start = (lo + a - 1) & ~(a - 1);
        if (start >= lo && start <= b->off + b->size && b->off + b->size - start >= need) return start;
    }
    return SIZE_MAX;
}

static size_t free_bytes(const lc_world *w)
{
    size_t f = 0;
    for (const lc_heap_block *b = w->free_list; b; b = b->next) f += b->size;
    return f;
}

/* Takes [off, off + need) out of the free block holding it (first_fit said one does). */
static int carve(lc_world *w, const lc_team *t, size_t off, size_t need)
{
    lc_heap_block **pp = &w->free_list;
    while (*pp && !((*pp)->off <= off && off + need <= (*pp)->off + (*pp)->size)) pp = &(*pp)->next;
    lc_heap_block *b = *pp, *u = malloc(sizeof *u), *g = off > b->off ? malloc(sizeof *g) : NULL;
    if (!u || (off > b->off && !g)) {
        free(u);
        free(g);
        return lc__err(w, LC_ERR_SYS, "out of host memory");
    }
    *u = (lc_heap_block){off, need, t->start, t->stride, t->size, w->used_list};
    w->used_list = u;
    if (g) { /* the gap before stays free as its own block */
        *g = (lc_heap_block){b->off, off - b->off, 0, 0, 0, b};
        *pp = g;
        pp = &g->next;
    }
    b->size = b->off + b->size - (off + need);
    b->off = off + need;
    if (!b->size) {
        *pp = b->next;
        free(b);
    }
    return LC_OK;
}

/* Team-collective allocation. Members' heaps differ when they belong to different teams, so
 * the offset is agreed on: each member proposes its first fit at or above a candidate, the
 * candidate rises to the largest proposal, and it ends when all proposals are equal (the
 * candidate only grows, so this ends; with equal heaps it is one round). */
static void *alloc_team(lc_team *t, size_t bytes, const char *op)
{
    lc_world *w = t->w;
    int n = t->size;
    uint64_t *all = malloc(sizeof(uint64_t) * 2 * (size_t)n);
    if (!all) {
        lc__err(w, LC_ERR_SYS, "out of host memory");
        return NULL;
    }
    void *res = NULL;
    uint64_t seq = ++t->alloc_seq;
    if (check_request(t, op, seq, bytes, all)) goto out;
    size_t a = align_for(bytes), need = bytes ? bytes : 1;
    if (need > w->heap_bytes) need = w->heap_bytes + 1; /* cannot fit; avoids the round-up wrap */
    need = (need + LC_CACHELINE - 1) & ~(size_t)(LC_CACHELINE - 1);
    size_t cand = 0;
    for (;;) {
        uint64_t mine = first_fit(w, cand, need, a);
        if (lc_allgather(t, all, &mine, sizeof mine)) goto out;
        uint64_t hi = 0, lo = UINT64_MAX;
        int full = -1;
        for (int r = 0; r < n; r++) {
            if (all[r] == SIZE_MAX && full < 0) full = r;
            hi = all[r] > hi ? all[r] : hi;
            lo = all[r] < lo ? all[r] : lo;
        }
        if (full >= 0) {
            lc__err(w, LC_ERR_NOMEM,
                    "%s of %zu bytes on a team of %d: symmetric heap exhausted on PE %d (this PE "
                    "has %zu of %zu bytes free, fragmented or too small); raise LONGCTX_HEAP_SIZE "
                    "or the launcher's --heap",
                    op, bytes, n, lc__team_pe(t, full), free_bytes(w), w->heap_bytes);
            goto out;
        }
        if (hi == lo) {
            if (carve(w, t, (size_t)hi, need) == LC_OK) res = w->heap0 + (size_t)w->me * w->heap_stride + hi;
            goto out;
        }
        cand = (size_t)hi;
    }
out:
    free(all);
    return res;
}

void *lc_symm_alloc_team(lc_team *t, size_t bytes)
{
    return t ? alloc_team(t, bytes, "lc_symm_alloc_team") : NULL;
}

void *lc_symm_alloc(lc_world *w, size_t bytes)
{
    return w ? alloc_team(w->world_team, bytes, "lc_symm_alloc") : NULL;
}

static int free_team(lc_team *t, void *ptr, const char *op)
{
    lc_world *w = t->w;
    if (!ptr) return LC_OK;
    uint8_t *mine = w->heap0 + (size_t)w->me * w->heap_stride;
    size_t off = (size_t)((uint8_t *)ptr - mine);
    lc_heap_block **pp = &w->used_list;
    while (*pp && (*pp)->off != off) pp = &(*pp)->next;
    if (!*pp || (uint8_t *)ptr < mine)
        return lc__err(w, LC_ERR_ARG, "%s: %p was not returned by lc_symm_alloc", op, ptr);
    lc_heap_block *b = *pp;
    if (b->t_start != t->start || b->t_stride != t->stride || b->t_size != t->size)
        return lc__err(w, LC_ERR_ARG,
                       "%s: %p was allocated on the team of world PEs %d + %d*i (%d PEs), not on "
                       "this one (%d + %d*i, %d PEs)",
                       op, ptr, b->t_start, b->t_stride, b->t_size, t->start, t->stride, t->size);
    *pp = b->next;
    /* Free is collective too: no member may reuse the space while a peer still writes to it. */
    int rc = lc__barrier(t, op);
    /* Insert sorted by offset and merge neighbours. */
    lc_heap_block **fp = &w->free_list;
    while (*fp && (*fp)->off < b->off) fp = &(*fp)->next;
    b->next = *fp;
    *fp = b;
    if (b->next && b->off + b->size == b->next->off) {
        lc_heap_block *n = b->next;
        b->size += n->size;
        b->next = n->next;
        free(n);
    }
    for (lc_heap_block *p = w->free_list; p && p->next; p = p->next) {
        if (p->next == b && p->off + p->size == b->off) {
            p->size += b->size;
            p->next = b->next;
            free(b);
            break;
        }
    }
    return rc;
}

int lc_symm_free_team(lc_team *t, void *ptr) { return t ? free_team(t, ptr, "lc_symm_free_team") : LC_ERR_ARG; }

int lc_symm_free(lc_world *w, void *ptr) { return w ? free_team(w->world_team, ptr, "lc_symm_free") : LC_ERR_ARG; }
