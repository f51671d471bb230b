/* FusedSqueezeExcite's check and infer (fused.h): squeeze-excite's channel scale of X. */
#include "core/status.h"
#include "ops/families.h"
#include "ops/fused.h"

#include <string.h>

bool dt_fused_se_nhwc(const ductile_layer *L) { return !strcmp(dt_attr_string(L, "layout", ""), "NHWC"); }

void dt_fused_se_sizes(const ductile_layer *L, const dt_view *in, int64_t *n, int64_t *c, int64_t *cr, int64_t *hw)
{
    const int64_t *d = in[DT_FSE_X].dims;
    bool nhwc = dt_fused_se_nhwc(L);
    *n = d[0];
    *c = nhwc ? d[3] : d[1];
    *hw = nhwc ? d[1] * d[2] : d[2] * d[3];
    *cr = in[DT_FSE_W1].dims[0];
}

ductile_status dt_fse_check(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 5, 1, 1, DT_INPUT_NAMES("X", "W1")));
    if (L->n_in <= DT_FSE_W2 || !L->in[DT_FSE_W2])
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 3 (W2) is required but was omitted");
    DT_TRY(dt_fused_act_known(L, "hidden_activation"));
    DT_TRY(dt_fused_act_known(L, "scale_activation"));
    const char *layout = dt_attr_string(L, "layout", "");
    if (strcmp(layout, "") && strcmp(layout, "NHWC"))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'layout' = '%s' is not supported (supported: '', NHWC)",
                       layout);
    return DUCTILE_OK;
}

/* Input i is [m, k, 1, 1]. */
static ductile_status dt_fse_want_1x1(const dt_view *in, int i, const char *name, int64_t m, int64_t k)
{
    const dt_view *w = &in[i];
    if (w->rank == 4 && w->dims[0] == m && w->dims[1] == k && w->dims[2] == 1 && w->dims[3] == 1) return DUCTILE_OK;
    char sw[160];
    dt_format_dims(sw, sizeof sw, w->dims, w->rank, NULL);
    return dt_fail(DUCTILE_ERR_SHAPE, "input %d (%s) has shape %s; expected [%lld, %lld, 1, 1]", i, name, sw,
                   (long long)m, (long long)k);
}

static ductile_status dt_fse_want_bias(const ductile_layer *L, const dt_view *in, int i, const char *name, int64_t m)
{
    if (L->n_in <= i || !L->in[i] || (in[i].rank == 1 && in[i].dims[0] == m)) return DUCTILE_OK;
    return dt_fail(DUCTILE_ERR_SHAPE, "input %d (%s) must be [%lld], one bias per output channel", i, name,
                   (long long)m);
}

ductile_status dt_fse_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    static const char *const names[] = {"X", "W1", "B1", "W2", "B2"};
    for (int i = 0; i < L->n_in && i < 5; i++)
        if (L->in[i]) DT_TRY(dt_want_float(in, i, names[i], i ? 0 : -1));
    if (in[DT_FSE_X].rank != 4)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (X) has rank %d; expected 4", in[DT_FSE_X].rank);
    if (in[DT_FSE_W1].rank != 4 || in[DT_FSE_W1].dims[0] < 1)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (W1) has rank %d; expected [Cr, C, 1, 1] with Cr >= 1",
                       in[DT_FSE_W1].rank);
    int64_t n, c, cr, hw;
    dt_fused_se_sizes(L, in, &n, &c, &cr, &hw);
    DT_TRY(dt_fse_want_1x1(in, DT_FSE_W1, "W1", cr, c));
    DT_TRY(dt_fse_want_1x1(in, DT_FSE_W2, "W2", c, cr));
    DT_TRY(dt_fse_want_bias(L, in, DT_FSE_B1, "B1", cr));
    DT_TRY(dt_fse_want_bias(L, in, DT_FSE_B2, "B2", c));
    bool nhwc = dt_fused_se_nhwc(L);
    out[0].dtype = in[DT_FSE_X].dtype;
    out[0].rank = 4;
    int64_t d[4] = {n, nhwc ? 1 : c, 1, nhwc ? c : 1};
    memcpy(out[0].dims, d, sizeof d);
    return DUCTILE_OK;
}
