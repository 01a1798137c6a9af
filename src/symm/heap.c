/* Symmetric heap allocator. Every PE runs the same deterministic first-fit over the same
 * sequence of requests, so offsets agree without exchanging them; a collective check
 * catches PEs whose requests differ before any offset is handed out. */
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
    if (!w || !ptr) return NULL;
    return w->be->ptr(w, ptr, pe);
}

/* Every PE publishes (seq, bytes) and compares with the others after a barrier; the parity
 * double-buffer lets a fast PE publish the next request while a slow one still compares. */
static int check_agreement(lc_world *w, uint64_t check[2][2], uint64_t seq, uint64_t bytes,
                           const char *what, size_t off_in_ctrl)
{
    check[seq & 1][0] = seq;
    check[seq & 1][1] = bytes;
    int rc = lc__barrier(w->world_team, what);
    if (rc) return rc;
    for (int p = 0; p < w->n; p++) {
        const uint64_t(*pc)[2] = (const void *)((const uint8_t *)lc__ctrl(w, p) + off_in_ctrl);
        if (pc[seq & 1][0] != seq || pc[seq & 1][1] != bytes)
            return lc__err(w, LC_ERR_MISMATCH,
                           "%s #%llu: PEs disagree: PE %d asked for %llu bytes, PE %d for %llu "
                           "(call #%llu) — every PE must make the same collective calls",
                           what, (unsigned long long)seq, w->me, (unsigned long long)bytes, p,
                           (unsigned long long)pc[seq & 1][1], (unsigned long long)pc[seq & 1][0]);
    }
    return LC_OK;
}

void *lc_symm_alloc(lc_world *w, size_t bytes)
{
    if (!w) return NULL;
    uint64_t seq = ++w->alloc_seq;
    lc_pe_ctrl *me = lc__ctrl(w, w->me);
    if (check_agreement(w, me->alloc_check, seq, bytes, "lc_symm_alloc",
                        offsetof(lc_pe_ctrl, alloc_check)))
        return NULL;
    size_t a = align_for(bytes), need = bytes ? bytes : 1;
    need = (need + LC_CACHELINE - 1) & ~(size_t)(LC_CACHELINE - 1);
    size_t free_total = 0;
    for (lc_heap_block **pp = &w->free_list; *pp; pp = &(*pp)->next) {
        lc_heap_block *b = *pp;
        free_total += b->size;
        size_t start = (b->off + a - 1) & ~(a - 1), pad = start - b->off;
        if (pad > b->size || b->size - pad < need) continue;
        lc_heap_block *u = malloc(sizeof *u);
        if (!u) {
            lc__err(w, LC_ERR_SYS, "out of host memory");
            return NULL;
        }
        u->off = start;
        u->size = need;
        u->next = w->used_list;
        w->used_list = u;
        if (pad) { /* keep the alignment gap as its own free block */
            lc_heap_block *g = malloc(sizeof *g);
            if (!g) {
                lc__err(w, LC_ERR_SYS, "out of host memory");
                return NULL;
            }
            g->off = b->off;
            g->size = pad;
            g->next = b;
            *pp = g;
            pp = &g->next;
        }
        b->off = start + need;
        b->size -= pad + need;
        if (!b->size) {
            *pp = b->next;
            free(b);
        }
        return w->heap0 + (size_t)w->me * w->heap_stride + start;
    }
    lc__err(w, LC_ERR_NOMEM,
            "lc_symm_alloc of %zu bytes: symmetric heap exhausted (%zu of %zu bytes free, "
            "fragmented or too small); raise LONGCTX_HEAP_SIZE or the launcher's --heap",
            bytes, free_total, w->heap_bytes);
    return NULL;
}

int lc_symm_free(lc_world *w, void *ptr)
{
    if (!w) return LC_ERR_ARG;
    if (!ptr) return LC_OK;
    uint8_t *mine = w->heap0 + (size_t)w->me * w->heap_stride;
    size_t off = (size_t)((uint8_t *)ptr - mine);
    lc_heap_block **pp = &w->used_list;
    while (*pp && (*pp)->off != off) pp = &(*pp)->next;
    if (!*pp || (uint8_t *)ptr < mine)
        return lc__err(w, LC_ERR_ARG, "lc_symm_free: %p was not returned by lc_symm_alloc", ptr);
    lc_heap_block *b = *pp;
    *pp = b->next;
    /* Free is collective too: no PE may reuse the space while a peer still writes to it. */
    int rc = lc__barrier(w->world_team, "lc_symm_free");
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
