/* Definitions of the private layers of domain "ductile" (see fused.h). */
#include "ops/fused.h"
#include "ops/families.h"
#include "ops/linalg.h"
#include "core/status.h"

#include <string.h>

static const char *const dt_fc_acts[] = {"", "Relu", "Clip", "HardSigmoid", "HardSwish", "Sigmoid"};

ductile_status dt_fused_conv_weight(const ductile_layer *L, const dt_view *w, dt_view *out)
{
    return dt_packed_weight_view(L, DT_FC_W, w, 3, 4, out);
}

static ductile_status dt_fc_check(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 4, 1, 1, DT_INPUT_NAMES("X", "W")));
    const char *act = dt_attr_string(L, "activation", "");
    bool known = false;
    for (size_t i = 0; i < sizeof dt_fc_acts / sizeof dt_fc_acts[0]; i++) known |= strcmp(act, dt_fc_acts[i]) == 0;
    if (!known)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'activation' = '%s' is not supported (supported: '', Relu, Clip, "
                       "HardSigmoid, HardSwish, Sigmoid)", act);
    if (dt_attr_int(L, "group", 1) < 1)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'group' = %lld; expected >= 1",
                       (long long)dt_attr_int(L, "group", 1));
    return DUCTILE_OK;
}

static ductile_status dt_fc_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    /* float32, or half where a backend lowered the layer (builder/precision.c); one dtype. */
    static const char *const names[] = {"X", "W", "B", "residual"};
    for (int i = 0; i < L->n_in; i++)
        if (L->in[i] && in[i].rank >= 0) DT_TRY(dt_want_float(in, i, i < 4 ? names[i] : "input", i ? 0 : -1));
    dt_view w;
    DT_TRY(dt_fused_conv_weight(L, &in[DT_FC_W], &w));
    dt_conv_geom g;
    DT_TRY(dt_conv_geometry(L, &in[DT_FC_X], &w, &g));
    if (L->n_in > DT_FC_B && L->in[DT_FC_B] && (in[DT_FC_B].rank != 1 || in[DT_FC_B].dims[0] != g.m))
        return dt_fail(DUCTILE_ERR_SHAPE, "input 2 (B) must be [%lld], one bias per output channel",
                       (long long)g.m);
    out[0].dtype = in[DT_FC_X].dtype;
    out[0].rank = in[DT_FC_X].rank;
    out[0].dims[0] = g.batch;
    out[0].dims[1] = g.m;
    dt_conv_out_dims(&g, out[0].dims + 2);
    if (L->n_in > DT_FC_R && L->in[DT_FC_R]) {
        const dt_view *r = &in[DT_FC_R];
        bool same = r->rank == out[0].rank;
        for (int i = 0; same && i < r->rank; i++) same = r->dims[i] == out[0].dims[i];
        if (!same) {
            char sr[160], so[160];
            dt_format_dims(sr, sizeof sr, r->dims, r->rank, NULL);
            dt_format_dims(so, sizeof so, out[0].dims, out[0].rank, NULL);
            return dt_fail(DUCTILE_ERR_SHAPE,
                           "input 3 (R) has shape %s; the residual must have the output's shape %s",
                           sr, so);
        }
    }
    return DUCTILE_OK;
}

const dt_opdef dt_ops_fused[] = {
    {"FusedConv", dt_fc_check, dt_fc_infer, 0},
    {NULL, NULL, NULL, 0},
};
