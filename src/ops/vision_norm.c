/* Local normalizations: LRN, GroupNormalization (opsets 18, 21), MeanVarianceNormalization. */
#include "ops/vision.h"
#include "core/status.h"

#include <stdio.h>

ductile_status dt_vision_check_lrn(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 1, 1, 1, 1, NULL));
    const dt_attr *a = dt_attr_find(L, "size");
    if (!a || a->type != DT_ATTR_INT)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'size' (int) is required");
    if (a->i < 1 || a->i > 4096)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'size' = %lld is not supported "
                       "(supported: 1..4096)", (long long)a->i);
    return DUCTILE_OK;
}

/* Y has X's shape (LRN, MeanVarianceNormalization). */
ductile_status dt_vision_infer_same(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_want_float32(in, 0, "X"));
    if (in[0].rank < 2 && L->op_type[0] == 'L')
        return dt_vision_bad_shape(0, "X", &in[0], "rank 2 or more (N, C, ...)");
    if (L->op_type[0] == 'M') {
        int64_t n;
        const int64_t *ax = dt_attr_ints(L, "axes", &n);
        for (int64_t i = 0; ax && i < n; i++)
            if (ax[i] < -in[0].rank || ax[i] >= in[0].rank)
                return dt_fail(DUCTILE_ERR_SHAPE,
                               "attribute 'axes'[%lld] = %lld is out of range for rank %d",
                               (long long)i, (long long)ax[i], in[0].rank);
        if (!ax && in[0].rank < 4)
            return dt_vision_bad_shape(0, "X", &in[0],
                                       "rank 4 or more for the default axes [0, 2, 3]");
    }
    out[0] = in[0];
    out[0].data = NULL;
    return DUCTILE_OK;
}

ductile_status dt_vision_check_mvn(const ductile_layer *L)
{
    return dt_check_arity(L, 1, 1, 1, 1, NULL);
}

ductile_status dt_vision_check_groupnorm(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 3, 3, 1, 1, DT_INPUT_NAMES("X", "scale", "bias")));
    const dt_attr *a = dt_attr_find(L, "num_groups");
    if (!a || a->type != DT_ATTR_INT)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'num_groups' (int) is required");
    if (a->i < 1)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'num_groups' = %lld must be >= 1",
                       (long long)a->i);
    int64_t st = dt_attr_int(L, "stash_type", 1);
    if (st != 1)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'stash_type' = %lld is not supported (supported: 1)",
                       (long long)st);
    return DUCTILE_OK;
}

/* scale and bias are [C] from opset 21, [num_groups] before. */
ductile_status dt_vision_infer_groupnorm(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_want_float32(in, 0, "X"));
    const dt_view *x = &in[0];
    if (x->rank < 2) return dt_vision_bad_shape(0, "X", x, "rank 2 or more (N, C, ...)");
    int64_t g = dt_attr_int(L, "num_groups", 1);
    if (g < 1 || x->dims[1] % g != 0)
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "attribute 'num_groups' = %lld does not divide the channels (%lld)",
                       (long long)g, (long long)x->dims[1]);
    int64_t want = L->opset >= 21 ? x->dims[1] : g;
    static const char *names[3] = {"X", "scale", "bias"};
    for (int i = 1; i < 3; i++) {
        DT_TRY(dt_want_float32(in, i, names[i]));
        if (in[i].rank != 1 || in[i].dims[0] != want) {
            char e[64];
            snprintf(e, sizeof e, "[%lld] (%s)", (long long)want,
                     L->opset >= 21 ? "the channels" : "num_groups");
            return dt_vision_bad_shape(i, names[i], &in[i], e);
        }
    }
    out[0] = *x;
    out[0].data = NULL;
    return DUCTILE_OK;
}
