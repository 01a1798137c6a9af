/* One-sided API: argument checks, then the backend. */
#include <string.h>

#include "symm/internal.h"

static int check_rma(lc_world *w, const char *op, const void *sym, size_t bytes, const void *local,
                     int pe)
{
    if (!w) return LC_ERR_ARG;
    if (pe < 0 || pe >= w->n) return lc__err(w, LC_ERR_ARG, "%s: PE %d out of range [0, %d)", op, pe, w->n);
    if (bytes && (!sym || !local)) return lc__err(w, LC_ERR_ARG, "%s: NULL buffer", op);
    if (bytes && !lc_symm_contains(w, sym, bytes))
        return lc__err(w, LC_ERR_ARG,
                       "%s: %zu bytes at %p are not inside the symmetric heap (allocate them with "
                       "lc_symm_alloc)", op, bytes, sym);
    if (lc__aborted(w)) return lc__abort_error(w, op);
    return LC_OK;
}

static int check_sig(lc_world *w, const char *op, const uint64_t *sig)
{
    if (!sig || ((uintptr_t)sig & 7) || !lc_symm_contains(w, sig, 8))
        return lc__err(w, LC_ERR_ARG, "%s: signal %p is not an aligned 64-bit word in the symmetric heap",
                       op, (const void *)sig);
    return LC_OK;
}

int lc_put(lc_world *w, void *dst, const void *src, size_t bytes, int pe)
{
    int rc = check_rma(w, "lc_put", dst, bytes, src, pe);
    if (rc) return rc;
    rc = w->be->put(w, dst, src, bytes, pe);
    w->be->quiet(w);
    return rc;
}

int lc_put_nbi(lc_world *w, void *dst, const void *src, size_t bytes, int pe)
{
    int rc = check_rma(w, "lc_put_nbi", dst, bytes, src, pe);
    return rc ? rc : w->be->put(w, dst, src, bytes, pe);
}

int lc_get(lc_world *w, void *dst, const void *src, size_t bytes, int pe)
{
    int rc = check_rma(w, "lc_get", src, bytes, dst, pe);
    return rc ? rc : w->be->get(w, dst, src, bytes, pe);
}

static int put_signal(lc_world *w, const char *op, void *dst, const void *src, size_t bytes,
                      uint64_t *sig, uint64_t value, lc_sig_op sop, int pe)
{
    int rc = check_rma(w, op, dst, bytes, src, pe);
    if (!rc) rc = check_sig(w, op, sig);
    if (!rc && sop != LC_SIGNAL_SET && sop != LC_SIGNAL_ADD)
        rc = lc__err(w, LC_ERR_ARG, "%s: signal op %d is neither SET nor ADD", op, (int)sop);
    if (rc) return rc;
    return bytes ? w->be->put_signal(w, dst, src, bytes, (_Atomic uint64_t *)sig, value, sop, pe)
                 : w->be->signal_op(w, (_Atomic uint64_t *)sig, value, sop, pe);
}

int lc_put_signal(lc_world *w, void *dst, const void *src, size_t bytes, uint64_t *sig,
                  uint64_t value, lc_sig_op op, int pe)
{
    int rc = put_signal(w, "lc_put_signal", dst, src, bytes, sig, value, op, pe);
    if (!rc) w->be->quiet(w);
    return rc;
}

int lc_put_signal_nbi(lc_world *w, void *dst, const void *src, size_t bytes, uint64_t *sig,
                      uint64_t value, lc_sig_op op, int pe)
{
    return put_signal(w, "lc_put_signal_nbi", dst, src, bytes, sig, value, op, pe);
}

int lc_signal_op(lc_world *w, uint64_t *sig, uint64_t value, lc_sig_op op, int pe)
{
    return put_signal(w, "lc_signal_op", sig, sig, 0, sig, value, op, pe);
}

uint64_t lc_signal_fetch(lc_world *w, const uint64_t *sig)
{
    (void)w;
    return atomic_load_explicit((_Atomic uint64_t *)sig, memory_order_acquire);
}

int lc_signal_wait_until(lc_world *w, uint64_t *sig, lc_cmp cmp, uint64_t value, uint64_t *observed)
{
    if (!w) return LC_ERR_ARG;
    int rc = check_sig(w, "lc_signal_wait_until", sig);
    if (!rc && (unsigned)cmp > LC_CMP_LE)
        rc = lc__err(w, LC_ERR_ARG, "lc_signal_wait_until: comparison %d unknown", (int)cmp);
    if (rc) return rc;
    return w->be->wait(w, (_Atomic uint64_t *)sig, cmp, value, "lc_signal_wait_until", "user signal",
                       observed);
}

int lc_fence(lc_world *w)
{
    if (!w) return LC_ERR_ARG;
    w->be->fence(w);
    return LC_OK;
}

int lc_quiet(lc_world *w)
{
    if (!w) return LC_ERR_ARG;
    w->be->quiet(w);
    return LC_OK;
}
