/* The PE mesh: DP x CP x TP. The axis order (innermost first; Megatron's default tp,cp,dp)
 * sets the strides: with tp,cp,dp world rank r = (dp_rank * cp + cp_rank) * tp + tp_rank, so
 * a TP team is a run of consecutive PEs (the launcher binds PE i to the i-th core: the axis
 * that talks most gets neighbouring cores). */
#include <stdio.h>
#include <string.h>

#include "train/internal.h"

enum { AX_TP = 0, AX_CP = 1, AX_DP = 2 };

/* The plan (cp.h) owns the mesh rules; these names stay for the mesh's own callers. */
int lc_mesh_parse_order(const char *s, int order[3], char *err, size_t errlen)
{
    return lc_plan_parse_order(s, order, err, errlen);
}

int lc_mesh_check(int n_pes, int dp, int cp, int tp, char *err, size_t errlen)
{
    return lc_plan_check_mesh(n_pes, dp, cp, tp, err, errlen);
}

/* The teams of a dp x cp x tp mesh whose axes, innermost first, are ord. */
static int create(lc_team *world, int dp, int cp, int tp, const int ord[3], lc_mesh *out)
{
    memset(out, 0, sizeof *out);
    char err[256];
    int n = lc_team_n_pes(world), rc = lc_mesh_check(n, dp, cp, tp, err, sizeof err);
    if (rc) return lc_train__fail(rc, "%s", err);
    int size[3] = {tp, cp, dp}, stride[3], s = 1, me = lc_team_my_pe(world);
    for (int k = 0; k < 3; k++) {
        stride[ord[k]] = s;
        s *= size[ord[k]];
    }
    out->dp = dp;
    out->cp = cp;
    out->tp = tp;
    out->tp_rank = (me / stride[AX_TP]) % tp;
    out->cp_rank = (me / stride[AX_CP]) % cp;
    out->dp_rank = (me / stride[AX_DP]) % dp;
    for (int k = 0; k < 3; k++) out->order[k] = ord[k];
    out->world = world;
    /* Two 2-D splits give the three axis teams and one two-axis team in four team slots
     * (a split per group would take a slot per group): with TP innermost the two outer axes
     * together (the PEs at my TP rank: the gradient team), else the two inner ones. */
    lc_team *ax[3] = {NULL, NULL, NULL}, *pair = NULL, *x = NULL, *y = NULL;
    int s0 = size[ord[0]], s1 = size[ord[1]];
    if (ord[0] == AX_TP) {
        rc = lc_team_split_2d(world, s0, &x, &pair);
        if (!rc) {
            ax[ord[0]] = x;
            rc = lc_team_split_2d(pair, s1, &ax[ord[1]], &ax[ord[2]]);
        }
    } else {
        rc = lc_team_split_2d(world, s0 * s1, &pair, &y);
        if (!rc) {
            ax[ord[2]] = y;
            rc = lc_team_split_2d(pair, s0, &ax[ord[0]], &ax[ord[1]]);
        }
    }
    if (rc)
        return lc_train__fail(rc, "mesh: splitting %d PEs into DP %d x CP %d x TP %d failed: %s", n, dp, cp, tp,
                              lc_last_error(lc_team_get_world(world)));
    out->tp_team = ax[AX_TP];
    out->cp_team = ax[AX_CP];
    out->dp_team = ax[AX_DP];
    out->pair_team = pair;
    /* The gradient team: the PEs holding my slices (my TP rank); NULL when they are not one
     * strided team (TP in the middle of the order, CP and DP both > 1): CP, then DP. */
    if (tp == 1) out->grad_team = world;
    else if (dp == 1) out->grad_team = out->cp_team;
    else if (cp == 1) out->grad_team = out->dp_team;
    else if (ord[0] == AX_TP || ord[2] == AX_TP) out->grad_team = pair;
    return LC_OK;
}

int lc_mesh_create_ordered(lc_team *world, int dp, int cp, int tp, const char *order, lc_mesh *out)
{
    char err[256];
    int ord[3];
    memset(out, 0, sizeof *out);
    if (lc_mesh_parse_order(order, ord, err, sizeof err)) return lc_train__fail(LC_ERR_ARG, "%s", err);
    return create(world, dp, cp, tp, ord, out);
}

int lc_mesh_create_plan(lc_team *world, const lc_plan *p, lc_mesh *out)
{
    return create(world, p->dp, p->cp, p->tp, p->order, out);
}

int lc_mesh_create(lc_team *world, int dp, int cp, int tp, lc_mesh *out)
{
    return lc_mesh_create_ordered(world, dp, cp, tp, NULL, out);
}

int lc_mesh_allreduce_grads(const lc_mesh *m, float *grads, size_t n)
{
    if (m->grad_team) return lc_allreduce_sum_f32(m->grad_team, grads, grads, n);
    int rc = lc_allreduce_sum_f32(m->cp_team, grads, grads, n);
    return rc ? rc : lc_allreduce_sum_f32(m->dp_team, grads, grads, n);
}

void lc_mesh_destroy(lc_mesh *m)
{
    /* Every PE destroys in the same order (the destroys barrier): the axis teams, then the
     * two-axis team they were split from. */
    lc_team_destroy(m->tp_team);
    lc_team_destroy(m->dp_team);
    lc_team_destroy(m->cp_team);
    lc_team_destroy(m->pair_team);
    memset(m, 0, sizeof *m);
}
