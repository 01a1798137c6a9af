/* lc_ckpt_save: every PE joins the per-tensor gathers its TP team needs; one PE writes the
 * folder under a temporary name, fsyncs, renames; everybody learns the outcome. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/dir.h"
#include "ckpt/internal.h"

#define N_META 34
#define N_META_V1 19 /* the fields before "dtype" */
#define META_LEN 1100 /* the longest value: a data path (1024) */

static int begin_file(const char *path, lc_model *m, const char *const *prefixes, int n_prefix,
                      const char *const *keys, const char *const *vals, int n_meta, lc_st_writer **w)
{
    int nt = lc_model_n_tensors(m), n = nt * n_prefix;
    lc_st_desc *d = calloc((size_t)n, sizeof *d);
    char **names = calloc((size_t)n, sizeof *names);
    int rc = LC_OK;
    if (!d || !names) rc = lc_ckpt__fail(LC_ERR_SYS, "out of memory");
    for (int p = 0; p < n_prefix && !rc; p++)
        for (int i = 0; i < nt && !rc; i++) {
            lc_st_desc *x = &d[p * nt + i];
            const char *nm = lc_model_tensor_at(m, i)->name;
            size_t l = strlen(prefixes[p]) + strlen(nm) + 1;
            if (!(names[p * nt + i] = malloc(l))) {
                rc = lc_ckpt__fail(LC_ERR_SYS, "out of memory");
                break;
            }
            snprintf(names[p * nt + i], l, "%s%s", prefixes[p], nm);
            x->name = names[p * nt + i];
            x->dtype = LC_ST_F32;
            int64_t sh[2];
            lc_model_tensor_full_shape(m, i, sh);
            x->ndim = sh[1] ? 2 : 1;
            x->shape[0] = sh[0];
            x->shape[1] = sh[1];
        }
    if (!rc) rc = lc_st_write_begin(path, d, n, keys, vals, n_meta, w);
    for (int i = 0; names && i < n; i++) free(names[i]);
    free(names);
    free(d);
    return rc;
}

int lc_ckpt_save(lc_model *m, lc_adamw *opt, const lc_ckpt_state *st, const char *dir, const lc_ckpt_save_opts *so)
{
    const int nt = lc_model_n_tensors(m);
    size_t maxn = 1;
    for (int i = 0; i < nt; i++) {
        int64_t sh[2];
        size_t k = lc_model_tensor_full_shape(m, i, sh);
        if (k > maxn) maxn = k;
    }
    float *full = (so->writer || so->gather) ? malloc(maxn * sizeof *full) : NULL;
    char tmp[4096], final[4096], p[4200];
    snprintf(tmp, sizeof tmp, "%s/step-%08lld.tmp-%ld", dir, (long long)st->step, (long)getpid());
    snprintf(final, sizeof final, "%s/step-%08lld", dir, (long long)st->step);
    lc_st_writer *wm = NULL, *wo = NULL;
    int bad = 0, rc = LC_OK;
    float *host_params = NULL;
    char why[1024] = "";
#define WFAIL() do { if (!bad) { bad = 1; snprintf(why, sizeof why, "%s", lc_ckpt_last_error()); } } while (0)
    if ((so->writer || so->gather) && !full) {
        lc_ckpt__fail(LC_ERR_SYS, "out of memory for a %zu-float tensor", maxn);
        WFAIL();
    }
    if (so->writer && !bad) {
        lc_ckpt__test_fsize();
        if (lc_ckpt_mkdirs(dir)) { lc_ckpt__fail(LC_ERR_SYS, "cannot create %s: %m", dir); WFAIL(); }
        else {
            lc_ckpt_clean_tmp(dir);
            lc_ckpt__rm_dir(tmp);
            if (lc_ckpt_mkdirs(tmp)) { lc_ckpt__fail(LC_ERR_SYS, "cannot create %s: %m", tmp); WFAIL(); }
        }
        if (!bad) {
            snprintf(p, sizeof p, "%s/config.json", tmp);
            if (lc_ckpt_write_config(p, lc_model_get_config(m))) WFAIL();
        }
        lc_ckpt__pause();
        if (!bad) {
            static const char *const k1[1] = {"format"}, *const v1[1] = {"pt"};
            static const char *const pre[1] = {""};
            snprintf(p, sizeof p, "%s/model.safetensors", tmp);
            if (begin_file(p, m, pre, 1, k1, v1, 1, &wm)) WFAIL();
        }
        if (!bad) {
            char vals[N_META][META_LEN];
            static const char *const keys[N_META] = {
                "format", "longctx_version", "step", "data_position", "optimizer_steps", "seed", "total_steps",
                "warmup", "lr", "lr_min", "beta1", "beta2", "eps", "weight_decay", "seq_len", "layout",
                "model", "optimizer", "rng", "dtype", "doc_mask", "doc_sep", "cp_algo", "lowering", "accum",
                "global_batch", "clip", "train_data", "train_tokens", "train_fingerprint", "val_data", "attn_bf16_dot",
                "attn_window", "cp_ulysses"};
            int k = 0;
#define V(...) snprintf(vals[k++], META_LEN, __VA_ARGS__)
            V("longctx-train-state");
            V("%d", st->has_run ? 2 : 1); /* 1: no run settings follow */
            V("%lld", (long long)st->step);
            V("%lld", (long long)st->data_position);
            V("%lld", (long long)st->optimizer_steps);
            V("%llu", (unsigned long long)st->seed);
            V("%lld", (long long)st->total_steps);
            V("%lld", (long long)st->warmup);
            /* %.9g: every float reads back exactly */
            V("%.9g", (double)st->lr);
            V("%.9g", (double)st->lr_min);
            V("%.9g", (double)st->beta1);
            V("%.9g", (double)st->beta2);
            V("%.9g", (double)st->eps);
            V("%.9g", (double)st->weight_decay);
            V("%lld", (long long)st->seq_len);
            V("dp=%d cp=%d tp=%d %s", st->dp, st->cp, st->tp, st->layout);
            V("%s", st->model_name);
            V("adamw");
            /* the data order is (seed, position); the model has no dropout or other RNG */
            V("loader seed %llu position %lld", (unsigned long long)st->seed, (long long)st->data_position);
            V("%s", st->dtype);
            V("%d", st->doc_mask);
            V("%d", st->doc_sep);
            V("%s", st->cp_algo);
            V("%s", st->lowering);
            V("%d", st->accum);
            V("%lld", (long long)st->global_batch);
            V("%.9g", (double)st->clip);
            V("%s", st->train_path);
            V("%lld", (long long)st->train_tokens);
            V("%016llx", (unsigned long long)st->train_fingerprint);
            V("%s", st->val_path);
            V("%s", st->bf16_dot);
            V("%lld", (long long)st->window);
            V("%d", st->ulysses);
#undef V
            const char *vp[N_META];
            for (int i = 0; i < N_META; i++) vp[i] = vals[i];
            static const char *const pre[2] = {"exp_avg.", "exp_avg_sq."};
            snprintf(p, sizeof p, "%s/training_state.safetensors", tmp);
            if (begin_file(p, m, pre, 2, keys, vp, st->has_run ? N_META : N_META_V1, &wo)) WFAIL();
        }
    }
    /* The tensors: params to model.safetensors, then m and v to the training state. */
    /* a model on a device: its weights through a host copy (a device model has no TP, so
     * the gathers skipped after a failure here are local) */
    float *srcs[3] = {lc_model_params(m), lc_adamw_m(opt), lc_adamw_v(opt)};
    if (strcmp(lc_model_device_name(m), "cpu")) {
        host_params = malloc(sizeof(float) * lc_model_n_params(m));
        int r = host_params ? lc_model_read(m, lc_model_params(m), host_params) : LC_ERR_SYS;
        if (r) {
            lc_ckpt__fail(r, "reading the weights from the device: %s",
                          host_params ? lc_model_last_error(m) : "out of memory for their host copy");
            WFAIL();
            free(host_params);
            host_params = NULL;
        }
        srcs[0] = host_params;
    }
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < nt && srcs[s]; i++) {
            if (so->gather || so->writer) {
                if ((rc = lc_model_gather_tensor(m, i, srcs[s], full))) {
                    lc_ckpt__fail(rc, "gathering %s for the checkpoint: %s", lc_model_tensor_at(m, i)->name,
                                  lc_model_last_error(m));
                    goto out;
                }
            }
            if (so->writer && !bad) {
                int64_t sh[2];
                size_t k = lc_model_tensor_full_shape(m, i, sh);
                if (lc_st_write_data(s == 0 ? wm : wo, full, k * sizeof *full)) WFAIL();
            }
        }
    if (so->writer) {
        int r1 = lc_st_write_end(wm, bad), r2 = lc_st_write_end(wo, bad || r1);
        wm = wo = NULL;
        if (!bad && (r1 || r2)) WFAIL();
        lc_ckpt__pause();
        if (!bad && lc_ckpt__fsync_path(tmp)) { lc_ckpt__fail(LC_ERR_SYS, "cannot fsync %s: %m", tmp); WFAIL(); }
        if (!bad && lc_ckpt__publish(tmp, final, dir)) WFAIL();
        if (bad) lc_ckpt__rm_dir(tmp);
        else lc_ckpt__prune(dir, so->keep);
    }
    /* Everybody learns whether the writer succeeded. */
    {
        double mine = bad, any = 0;
        if ((rc = lc_allreduce_max_f64(so->world, &any, &mine, 1))) {
            lc_ckpt__fail(rc, "checkpoint status all-reduce failed");
            goto out;
        }
        if (any > 0)
            rc = bad ? lc_ckpt__fail(LC_ERR_SYS, "checkpoint %s not saved: %s", final, why)
                     : lc_ckpt__fail(LC_ERR_SYS, "checkpoint %s not saved: the writing PE failed (see its message)", final);
    }
out:
    if (wm) lc_st_write_end(wm, 1);
    if (wo) lc_st_write_end(wo, 1);
    free(full);
    free(host_params);
    return rc;
#undef WFAIL
}
