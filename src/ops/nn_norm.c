/* LayerNormalization, BatchNormalization (inference), InstanceNormalization. */
#include "ops/nn.h"
#include "core/status.h"

#include <stdio.h>

static ductile_status dt_norm_bad_shape(int i, const char *what, const dt_view *v,
                                        const char *expected)
{
    char s[160];
    dt_format_dims(s, sizeof s, v->dims, v->rank, NULL);
    return dt_fail(DUCTILE_ERR_SHAPE, "input %d (%s) has shape %s; expected %s", i, what, s,
                   expected);
}

/* A per-channel parameter: shape [C] where C is dim 1 of X. */
static ductile_status dt_norm_channel_param(const dt_view *in, int i, const char *what)
{
    DT_TRY(dt_want_float32(in, i, what));
    if (in[i].rank != 1 || in[i].dims[0] != in[0].dims[1]) {
        char e[64];
        snprintf(e, sizeof e, "[%lld] (dim 1 of X)", (long long)in[0].dims[1]);
        return dt_norm_bad_shape(i, what, &in[i], e);
    }
    return DUCTILE_OK;
}

ductile_status dt_nn_check_layernorm(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 3, 1, 3, DT_INPUT_NAMES("X", "Scale")));
    return dt_nn_check_int_range(L, "stash_type", 1, 1, 1);
}

/* RMSNormalization (opset 23) is LayerNormalization without the mean and the bias. */
ductile_status dt_nn_check_rmsnorm(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 2, 1, 1, DT_INPUT_NAMES("X", "scale")));
    return dt_nn_check_int_range(L, "stash_type", 1, 1, 1);
}

ductile_status dt_layernorm_layout(const ductile_layer *L, const dt_view *x, int *axis,
                                   int64_t *block)
{
    return dt_layernorm_layout_of(dt_attr_int(L, "axis", -1), x, axis, block);
}

ductile_status dt_layernorm_layout_of(int64_t axis_attr, const dt_view *x, int *axis, int64_t *block)
{
    ductile_status st = dt_norm_axis(axis_attr, x->rank, axis);
    if (st != DUCTILE_OK) return dt_fail_prefix(st, "attribute 'axis'");
    *block = 1;
    for (int i = *axis; i < x->rank; i++) *block *= x->dims[i];
    return DUCTILE_OK;
}

/* Scale and B broadcast to the normalized dims; ductile takes the shapes whose broadcast
 * repeats the parameter with a period of its size: a suffix of the normalized dims. */
static ductile_status dt_layernorm_param(const dt_view *in, int i, const char *what, int axis)
{
    DT_TRY(dt_want_float(in, i, what, 0));
    const dt_view *x = &in[0], *p = &in[i];
    int lead = 0;
    while (lead < p->rank && p->dims[lead] == 1) lead++;
    int n = p->rank - lead;
    bool ok = n <= x->rank - axis;
    for (int k = 0; ok && k < n; k++) ok = p->dims[lead + k] == x->dims[x->rank - n + k];
    if (!ok) {
        char sx[160], e[220];
        dt_format_dims(sx, sizeof sx, x->dims + axis, x->rank - axis, NULL);
        snprintf(e, sizeof e, "the normalized dims %s of X or a suffix of them", sx);
        return dt_norm_bad_shape(i, what, p, e);
    }
    return DUCTILE_OK;
}

ductile_status dt_nn_infer_layernorm(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_want_float(in, 0, "X", -1));
    int axis;
    int64_t block;
    DT_TRY(dt_layernorm_layout(L, &in[0], &axis, &block));
    DT_TRY(dt_layernorm_param(in, 1, "Scale", axis));
    if (L->n_in > 2 && in[2].rank >= 0) DT_TRY(dt_layernorm_param(in, 2, "B", axis));
    out[0] = in[0];
    out[0].data = NULL;
    for (int o = 1; o < L->n_out; o++) {
        out[o] = in[0];
        out[o].data = NULL;
        out[o].dtype = DUCTILE_FLOAT32;
        for (int i = axis; i < in[0].rank; i++) out[o].dims[i] = 1;
    }
    return DUCTILE_OK;
}

ductile_status dt_nn_check_batchnorm(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 5, 5, 1, 5, DT_INPUT_NAMES("X", "scale", "B", "input_mean", "input_var")));
    /* Opset 14 on: training_mode = 1 normalizes with the batch's statistics and may output the
     * running mean and variance. Earlier opsets' training outputs (saved statistics) are not
     * computed. */
    int64_t training = L->opset >= 14 ? dt_attr_int(L, "training_mode", 0) : 0;
    if (L->opset >= 14) DT_TRY(dt_nn_check_int_range(L, "training_mode", 0, 0, 1));
    for (int o = 1; o < L->n_out; o++)
        if (L->out[o] && (!training || o > 2))
            return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                           "output %d of BatchNormalization is only produced in training mode, "
                           "which is supported from opset 14 (training_mode = 1, outputs running_mean and "
                           "running_var)", o);
    return dt_nn_check_int_range(L, "spatial", 1, 1, 1);
}

ductile_status dt_nn_infer_batchnorm(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    static const char *names[5] = {"X", "scale", "B", "input_mean", "input_var"};
    DT_TRY(dt_want_float32(in, 0, "X"));
    if (in[0].rank < 2) return dt_norm_bad_shape(0, "X", &in[0], "rank 2 or more (N, C, ...)");
    for (int i = 1; i < 5; i++) DT_TRY(dt_norm_channel_param(in, i, names[i]));
    out[0] = in[0];
    out[0].data = NULL;
    for (int o = 1; o < L->n_out; o++) { /* running_mean, running_var: one per channel */
        out[o] = in[3];
        out[o].data = NULL;
    }
    return DUCTILE_OK;
}

ductile_status dt_nn_check_instancenorm(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 3, 3, 1, 1, DT_INPUT_NAMES("input", "scale", "B")));
    return DUCTILE_OK;
}

ductile_status dt_nn_infer_instancenorm(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_want_float32(in, 0, "input"));
    if (in[0].rank < 3)
        return dt_norm_bad_shape(0, "input", &in[0], "rank 3 or more (N, C, spatial dims)");
    DT_TRY(dt_norm_channel_param(in, 1, "scale"));
    DT_TRY(dt_norm_channel_param(in, 2, "B"));
    out[0] = in[0];
    out[0].data = NULL;
    return DUCTILE_OK;
}
