/* NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss: shapes and the attribute reading
 * shared with the kernels. */
#include "ops/nn.h"
#include "core/status.h"

#include <stdio.h>
#include <string.h>

static bool dt_loss_is_sce(const ductile_layer *L)
{
    return strcmp(L->op_type, "SoftmaxCrossEntropyLoss") == 0;
}

static ductile_status dt_loss_reduction(const ductile_layer *L, int *out)
{
    const char *r = dt_attr_string(L, "reduction", "mean");
    if (strcmp(r, "none") == 0) *out = DT_LOSS_NONE;
    else if (strcmp(r, "sum") == 0) *out = DT_LOSS_SUM;
    else if (strcmp(r, "mean") == 0) *out = DT_LOSS_MEAN;
    else
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "attribute 'reduction' = '%s' is not one of none, sum, mean", r);
    return DUCTILE_OK;
}

ductile_status dt_nn_check_loss(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 3, 1, dt_loss_is_sce(L) ? 2 : 1, DT_INPUT_NAMES("input", "target")));
    int r;
    return dt_loss_reduction(L, &r);
}

ductile_status dt_loss_attrs_read(const ductile_layer *L, dt_loss_attrs *a)
{
    *a = (dt_loss_attrs){.has_ignore = dt_attr_find(L, "ignore_index") != NULL,
                         .ignore_index = dt_attr_int(L, "ignore_index", 0)};
    return dt_loss_reduction(L, &a->reduction);
}

ductile_status dt_loss_params_get(const ductile_layer *L, const dt_view *in, dt_loss_params *p)
{
    dt_loss_attrs a;
    *p = (dt_loss_params){0};
    DT_TRY(dt_loss_attrs_read(L, &a));
    return dt_loss_params_of(&a, L->n_in, in, p);
}

ductile_status dt_loss_params_of(const dt_loss_attrs *a, int n_in, const dt_view *in, dt_loss_params *p)
{
    *p = (dt_loss_params){0};
    p->reduction = a->reduction;
    DT_TRY(dt_want_float32(in, 0, "input"));
    const dt_view *x = &in[0], *t = &in[1];
    char sx[160], st[160];
    dt_format_dims(sx, sizeof sx, x->dims, x->rank, NULL);
    dt_format_dims(st, sizeof st, t->dims, t->rank, NULL);
    if (x->rank < 2)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (input) has shape %s; expected [N, C, ...]", sx);
    if (t->dtype != DUCTILE_INT64 && t->dtype != DUCTILE_INT32)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (target) has dtype %s; expected int32 or int64",
                       ductile_dtype_name((ductile_dtype)t->dtype));
    bool ok = t->rank == x->rank - 1 && t->dims[0] == x->dims[0];
    for (int i = 1; ok && i < t->rank; i++) ok = t->dims[i] == x->dims[i + 1];
    if (!ok)
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "input 1 (target) has shape %s; expected input's shape %s without dim 1", st, sx);
    p->N = x->dims[0];
    p->C = x->dims[1];
    p->D = 1;
    for (int i = 2; i < x->rank; i++) p->D *= x->dims[i];
    if (n_in > 2 && in[2].rank >= 0) {
        DT_TRY(dt_want_float32(in, 2, "weight"));
        if (in[2].rank != 1 || in[2].dims[0] != p->C) {
            char sw[160];
            dt_format_dims(sw, sizeof sw, in[2].dims, in[2].rank, NULL);
            return dt_fail(DUCTILE_ERR_SHAPE, "input 2 (weight) has shape %s; expected [%lld] (C)", sw,
                           (long long)p->C);
        }
        p->has_weight = true;
    }
    p->has_ignore = a->has_ignore;
    p->ignore_index = a->ignore_index;
    return DUCTILE_OK;
}

ductile_status dt_nn_infer_loss(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    dt_loss_params p;
    DT_TRY(dt_loss_params_get(L, in, &p));
    if (p.reduction == DT_LOSS_NONE) {
        out[0] = in[1];
        out[0].dtype = in[0].dtype;
    } else {
        out[0] = (dt_view){.dtype = in[0].dtype, .rank = 0};
    }
    out[0].data = NULL;
    if (L->n_out > 1) {
        out[1] = in[0];
        out[1].data = NULL;
    }
    return DUCTILE_OK;
}
