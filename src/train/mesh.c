/* The PE mesh: DP x CP today, with TP as the innermost axis reserved. World rank
 * r = (dp_rank * cp + cp_rank) * tp + tp_rank, so a CP team is a run of consecutive PEs
 * (the launcher binds PE i to the i-th core: ring neighbours are core neighbours). */
#include <stdio.h>
#include <string.h>

#include "train/internal.h"

int lc_mesh_check(int n_pes, int dp, int cp, int tp, char *err, size_t errlen)
{
    if (dp < 1 || cp < 1 || tp < 1) {
        snprintf(err, errlen, "mesh: --dp %d, --cp %d and --tp %d must all be >= 1", dp, cp, tp);
        return LC_ERR_ARG;
    }
    if (tp != 1) {
        snprintf(err, errlen, "mesh: tensor parallelism (--tp %d) is not built yet; use --tp 1", tp);
        return LC_ERR_UNSUPPORTED;
    }
    if ((long long)dp * cp * tp != n_pes) {
        snprintf(err, errlen, "mesh: %d PEs cannot form DP %d x CP %d%s (needs %lld PEs)", n_pes, dp, cp,
                 tp > 1 ? " x TP" : "", (long long)dp * cp * tp);
        return LC_ERR_ARG;
    }
    return LC_OK;
}

int lc_mesh_create(lc_team *world, int dp, int cp, int tp, lc_mesh *out)
{
    memset(out, 0, sizeof *out);
    char err[256];
    int n = lc_team_n_pes(world), rc = lc_mesh_check(n, dp, cp, tp, err, sizeof err);
    if (rc) return lc_train__fail(rc, "%s", err);
    lc_team *row = NULL, *col = NULL;
    rc = lc_team_split_2d(world, cp, &row, &col);
    if (rc)
        return lc_train__fail(rc, "mesh: splitting %d PEs into DP %d x CP %d failed: %s", n, dp, cp,
                              lc_last_error(lc_team_get_world(world)));
    int me = lc_team_my_pe(world);
    out->dp = dp;
    out->cp = cp;
    out->tp = tp;
    out->dp_rank = me / cp;
    out->cp_rank = me % cp;
    out->tp_rank = 0;
    out->world = world;
    out->cp_team = row;
    out->dp_team = col;
    return LC_OK;
}

void lc_mesh_destroy(lc_mesh *m)
{
    /* Columns first, then rows: every PE destroys in the same order (the destroys barrier). */
    lc_team_destroy(m->dp_team);
    lc_team_destroy(m->cp_team);
    memset(m, 0, sizeof *m);
}
