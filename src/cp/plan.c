/* The parallel plan: defaults, the one shape rule (lc_plan_fits) and the one validation.
 * The trainer, the model and lc_cp all ask lc_plan_fits, so "does this sequence fit this
 * layout" has one answer everywhere. */
#include <stdio.h>
#include <string.h>

#include "cp/internal.h"

void lc_plan_init(lc_plan *p)
{
    memset(p, 0, sizeof *p);
    p->dp = p->cp = p->tp = 1;
    p->order[0] = 0, p->order[1] = 1, p->order[2] = 2;
    p->layout = LC_CP_ZIGZAG;
    p->algo = LC_CP_RING;
    p->lowering = LC_LOWER_AUTO;
}

int lc_plan_fits(lc_cp_layout layout, int64_t seq_len, int cp, char *why, size_t len)
{
    char dummy[8];
    if (!why) why = dummy, len = sizeof dummy;
    if (seq_len < 1) return snprintf(why, len, "seq_len = %lld must be >= 1", (long long)seq_len), LC_ERR_ARG;
    if ((unsigned)layout > LC_CP_STRIPED) return snprintf(why, len, "unknown layout %d", (int)layout), LC_ERR_ARG;
    if (cp < 1) return snprintf(why, len, "a CP team of %d PEs", cp), LC_ERR_ARG;
    /* Positions are int32 (attn.h); the layout pads S up to its chunking. */
    int n_pad = 0;
    if (seq_len > INT32_MAX || lc_cp_layout_positions(layout, seq_len, cp, 0, NULL, &n_pad) < 0)
        return snprintf(why, len,
                        "seq_len = %lld is too long: the %s layout over %d PEs pads it to positions "
                        "that must fit in int32 (at most %d tokens)",
                        (long long)seq_len, lc_cp_layout_name(layout), cp, INT32_MAX), LC_ERR_ARG;
    /* Every PE owns a token: zigzag's 2 x cp chunks each get one, the others cp. */
    int need = layout == LC_CP_ZIGZAG ? 2 * cp : cp;
    if (seq_len < need)
        return snprintf(why, len, "sequence too short for the layout: --seq %lld over CP %d with %s needs at least %d tokens",
                        (long long)seq_len, cp, lc_cp_layout_name(layout), need), 1;
    /* Contiguous rounds its blocks up: the last PEs may still get only padding. */
    for (int pe = 0; pe < cp; pe++)
        if (lc_cp_layout_positions(layout, seq_len, cp, pe, NULL, &n_pad) < 1)
            return snprintf(why, len, "seq_len = %lld is too short for the %s layout over %d PEs (PE %d would hold no token)",
                            (long long)seq_len, lc_cp_layout_name(layout), cp, pe), 1;
    return 0;
}

int lc_plan_check_mesh(int n_pes, int dp, int cp, int tp, char *err, size_t len)
{
    if (dp < 1 || cp < 1 || tp < 1)
        return snprintf(err, len, "mesh: --dp %d, --cp %d and --tp %d must all be >= 1", dp, cp, tp), LC_ERR_ARG;
    if (n_pes > 0 && (long long)dp * cp * tp != n_pes)
        return snprintf(err, len, "mesh: %d PEs cannot form DP %d x CP %d%s%.0d (needs %lld PEs)", n_pes, dp, cp,
                        tp > 1 ? " x TP " : "", tp > 1 ? tp : 0, (long long)dp * cp * tp), LC_ERR_ARG;
    return LC_OK;
}

static const char *const AXIS[3] = {"tp", "cp", "dp"};

int lc_plan_parse_order(const char *s, int order[3], char *err, size_t len)
{
    if (!s) s = "tp,cp,dp";
    int seen = 0, n = 0;
    const char *p = s;
    while (*p && n < 4) {
        int k;
        for (k = 0; k < 3 && strncmp(p, AXIS[k], 2); k++) {}
        if (k == 3 || (p[2] && p[2] != ',') || (seen >> k & 1)) break;
        seen |= 1 << k;
        if (n < 3) order[n] = k;
        n++;
        p += p[2] ? 3 : 2;
    }
    if (*p || n != 3 || seen != 7)
        return snprintf(err, len, "mesh: --mesh-order '%s' must name tp, cp and dp once each, innermost first "
                        "(e.g. tp,cp,dp)", s), LC_ERR_ARG;
    return LC_OK;
}

int lc_plan_validate(const lc_plan *p, int n_pes, char *err, size_t len)
{
    if (!p) return snprintf(err, len, "the plan is NULL"), LC_ERR_ARG;
    int rc = lc_plan_check_mesh(n_pes, p->dp, p->cp, p->tp, err, len);
    if (rc) return rc;
    int seen = 0;
    for (int k = 0; k < 3; k++) seen |= (unsigned)p->order[k] < 3 ? 1 << p->order[k] : 8;
    if (seen != 7)
        return snprintf(err, len, "mesh: order {%d, %d, %d} must name tp (0), cp (1) and dp (2) once each",
                        p->order[0], p->order[1], p->order[2]), LC_ERR_ARG;
    if (p->sp && p->tp < 2)
        return snprintf(err, len, "--sp (sequence parallelism) needs --tp 2 or more (now --tp %d)", p->tp), LC_ERR_ARG;
    if ((unsigned)p->algo > LC_CP_HYBRID) return snprintf(err, len, "unknown algorithm %d", (int)p->algo), LC_ERR_ARG;
    if ((unsigned)p->lowering > LC_LOWER_COMPUTE_ONLY)
        return snprintf(err, len, "unknown lowering %d", (int)p->lowering), LC_ERR_ARG;
    if ((rc = lc_plan__check_ulysses(p->algo, p->ulysses, p->cp, err, len))) return rc;
    if ((rc = lc_plan__check_balance(p->balance, p->algo, p->seq_len, p->cp, err, len))) return rc;
    return lc_plan_fits(p->layout, p->seq_len, p->cp, err, len) ? LC_ERR_ARG : LC_OK;
}

int lc_plan__check_ulysses(lc_cp_algo algo, int u, int cp, char *err, size_t len)
{
    if (algo == LC_CP_HYBRID) {
        if (u < 1 || cp % u)
            return snprintf(err, len, "--ulysses %d must divide --cp %d (hybrid: Ulysses over --ulysses PEs, the ring "
                            "over the --cp / --ulysses groups)", u, cp), LC_ERR_ARG;
    } else if (algo == LC_CP_ULYSSES) {
        if (u && u != cp)
            return snprintf(err, len, "--ulysses %d: --cp-algo ulysses spans the whole CP team (--cp %d); use "
                            "--cp-algo hybrid for a smaller Ulysses degree", u, cp), LC_ERR_ARG;
    } else if (u > 1) {
        return snprintf(err, len, "--ulysses %d needs --cp-algo hybrid (now %s)", u, lc_cp_algo_name(algo)), LC_ERR_ARG;
    }
    return LC_OK;
}

int lc_plan__check_balance(lc_cp_balance b, lc_cp_algo algo, int64_t seq_len, int cp, char *err, size_t len)
{
    if ((unsigned)b > LC_CP_BALANCE_MASK) return snprintf(err, len, "unknown balance %d", (int)b), LC_ERR_ARG;
    if (b != LC_CP_BALANCE_MASK) return LC_OK;
    if (algo != LC_CP_RING && algo != LC_CP_ALLGATHER)
        return snprintf(err, len, "--balance mask deals chunks to the ring's PEs: --cp-algo ring or allgather (with "
                        "%s every PE of a Ulysses group attends over the same rows)", lc_cp_algo_name(algo)), LC_ERR_ARG;
    if (seq_len % (64 * (int64_t)cp))
        return snprintf(err, len, "--balance mask needs --seq %lld to be a multiple of 64 x --cp %d = %lld (whole "
                        "64-token chunks, the same count on every PE)", (long long)seq_len, cp, 64 * (long long)cp), LC_ERR_ARG;
    return LC_OK;
}

int lc_plan_ulysses_degree(const lc_plan *p)
{
    if (!p) return 1;
    return p->algo == LC_CP_ULYSSES ? p->cp : p->algo == LC_CP_HYBRID && p->ulysses > 0 ? p->ulysses : 1;
}

int lc_plan_heads_split(int hq, int hkv, int u, char *err, size_t len)
{
    if (u < 1 || hq < 1 || hkv < 1) return snprintf(err, len, "a Ulysses group of %d PEs for %d/%d heads", u, hq, hkv), LC_ERR_ARG;
    if (hq % u)
        return snprintf(err, len, "%d query heads (per TP rank) do not split over a Ulysses group of %d PEs "
                        "(the Ulysses degree must divide the query heads)", hq, u), LC_ERR_ARG;
    if (hkv % u && u % hkv)
        return snprintf(err, len, "%d KV heads (per TP rank) neither split over nor replicate evenly onto a Ulysses "
                        "group of %d PEs (one of the two must divide the other)", hkv, u), LC_ERR_ARG;
    return LC_OK;
}

/* ---- the set-up record's text (cp/core.h), for both rings' disagreement messages ---- */

void lc_cp_setup_value(const lc_cp_setup *s, int i, char *buf, size_t len)
{
    const int64_t v = i >= 0 && i < LC_CP_SETUP_N ? s->f[i] : 0;
    double sc;
    switch (i) {
    case LC_CP_SETUP_DTYPE: snprintf(buf, len, "%s", lc_dtype_name((lc_dtype)v)); break;
    case LC_CP_SETUP_LAYOUT: snprintf(buf, len, "%s", lc_cp_layout_name((lc_cp_layout)v)); break;
    case LC_CP_SETUP_MASK: snprintf(buf, len, "0x%llx", (long long)v); break;
    case LC_CP_SETUP_SCALE: memcpy(&sc, &v, sizeof sc); snprintf(buf, len, "%g", sc); break;
    case LC_CP_SETUP_LOWERING: snprintf(buf, len, "%s", lc_lowering_name((lc_lowering)v)); break;
    case LC_CP_SETUP_ALGO: snprintf(buf, len, "%s", lc_cp_algo_name((lc_cp_algo)v)); break;
    default: snprintf(buf, len, "%lld", (long long)v);
    }
}

void lc_cp_setup_str(const lc_cp_setup *s, char *buf, size_t len)
{
    size_t at = 0;
    if (len) buf[0] = 0;
    for (int i = 0; i < LC_CP_SETUP_N && at < len; i++) {
        char v[48];
        lc_cp_setup_value(s, i, v, sizeof v);
        int n = snprintf(buf + at, len - at, "%s%s %s", i ? ", " : "", lc_cp_setup_name(i), v);
        if (n < 0) break;
        at += (size_t)n;
    }
}
