/* libFuzzer target: the safetensors reader (and the JSON parser under it) on arbitrary bytes.
 * Accepted files have every tensor's bytes read and converted, so that an offset the
 * validation let through would show up as an out-of-bounds read under ASan. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/json.h"
#include "longctx/ckpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the plain JSON parser on the same bytes (config.json, the shard index) */
    lc_jdoc *d = lc_json_parse((const char *)data, size, NULL, 0);
    lc_json_free(d);
    /* an exact-size copy: reading one byte past it is an ASan error */
    uint8_t *img = malloc(size ? size : 1);
    if (!img) return 0;
    memcpy(img, data, size);
    lc_st_file *f;
    if (lc_st_parse(img, size, "fuzz", &f) == 0) {
        volatile unsigned sum = 0;
        for (int i = 0; i < lc_st_n_tensors(f); i++) {
            const lc_st_tensor *t = lc_st_tensor_at(f, i);
            const uint8_t *p = lc_st_data(f, i);
            for (uint64_t k = 0; k < t->end - t->begin; k++) sum += p[k];
            if (t->numel <= (1u << 16) && (t->dtype == LC_ST_F32 || t->dtype == LC_ST_BF16 || t->dtype == LC_ST_F16)) {
                float *buf = malloc((size_t)t->numel * sizeof *buf + 1);
                if (buf && lc_st_read_f32(f, i, buf, (size_t)t->numel)) abort(); /* valid dtype: must convert */
                free(buf);
            }
            sum += (unsigned)strlen(t->name);
        }
        for (int i = 0; i < lc_st_n_meta(f); i++) {
            const char *k, *v;
            lc_st_meta_at(f, i, &k, &v);
            sum += (unsigned)(strlen(k) + strlen(v));
        }
        (void)sum;
        lc_st_close(f);
    }
    free(img);
    return 0;
}
