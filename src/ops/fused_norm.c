/* FusedLayerNorm (ops/fused.h; made by builder/fuse_norm.c): LayerNormalization's checks on X
 * (the gathered rows where IDS is given), Scale and B, and the addends' dtype and row broadcast. */
#include "ops/fused.h"
#include "ops/nn.h"
#include "core/status.h"

#include <stdio.h>

bool dt_fused_layernorm_strides(const dt_view *x, int axis, const dt_view *r, int64_t *st)
{
    if (r->rank < 0 || r->rank > x->rank || r->rank < x->rank - axis) return false;
    int64_t s = 1;
    for (int d = x->rank - 1; d >= 0; d--) {
        int i = d - (x->rank - r->rank);   /* r's dim aligned with x's dim d (< 0: absent) */
        int64_t n = i >= 0 ? r->dims[i] : 1;
        if (d >= axis ? n != x->dims[d] : (n != x->dims[d] && n != 1)) return false;
        if (d < axis) st[d] = n == 1 ? 0 : s;
        s *= n;
    }
    return true;
}

int64_t dt_fused_layernorm_row_offset(const dt_view *x, int axis, const int64_t *st, int64_t row)
{
    int64_t off = 0;
    for (int d = axis - 1; d >= 0; d--) {
        off += row % x->dims[d] * st[d];
        row /= x->dims[d];
    }
    return off;
}

bool dt_fused_layernorm_gathers(const ductile_layer *L) { return L->n_in > DT_FLN_IDS && L->in[DT_FLN_IDS]; }

void dt_fused_layernorm_x(const dt_view *in, bool gathers, dt_view *x)
{
    *x = in[DT_FLN_X];
    if (!gathers) return;
    const dt_view *ids = &in[DT_FLN_IDS];
    x->rank = ids->rank + 1;
    for (int d = 0; d < ids->rank; d++) x->dims[d] = ids->dims[d];
    x->dims[ids->rank] = in[DT_FLN_X].rank == 2 ? in[DT_FLN_X].dims[1] : 0;
    x->data = NULL;
}

ductile_status dt_fln_check(const ductile_layer *L)
{
    /* B (input 2) may be omitted, R1 (input 3) may not. */
    DT_TRY(dt_check_arity(L, 2, 6, 1, 1, DT_INPUT_NAMES("X", "Scale")));
    if (L->n_in <= DT_FLN_R1 || !L->in[DT_FLN_R1])
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 3 (R1) is required but was omitted");
    if (dt_fused_layernorm_gathers(L)) {
        int64_t axis = dt_attr_int(L, "axis", -1);
        if (axis != -1)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'axis' = %lld: with input 5 (IDS) the norm is over the "
                           "table's rows (axis -1)", (long long)axis);
    }
    return DUCTILE_OK;
}

ductile_status dt_fln_infer(const ductile_layer *L, const dt_view *given, dt_view *out)
{
    /* With IDS: LayerNormalization's checks on the gathered X; the table is 2-D, the ids
     * integers, and the table's dims fall below DT_MAX_DIMS with them. */
    dt_view in[DT_FLN_IDS + 1];
    for (int i = 0; i < L->n_in && i <= DT_FLN_IDS; i++) in[i] = given[i];
    if (dt_fused_layernorm_gathers(L)) {
        const dt_view *ids = &given[DT_FLN_IDS];
        if (ids->dtype != DUCTILE_INT64 && ids->dtype != DUCTILE_INT32)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input 5 (IDS) has dtype %s; expected int32 or int64",
                           ductile_dtype_name((ductile_dtype)ids->dtype));
        if (given[DT_FLN_X].rank != 2 || ids->rank + 1 > DT_MAX_DIMS)
            return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (table) has rank %d and input 5 (IDS) rank %d; expected a 2-D "
                           "table and ids of rank < %d", given[DT_FLN_X].rank, ids->rank, DT_MAX_DIMS);
        dt_fused_layernorm_x(given, true, &in[DT_FLN_X]);
    }
    DT_TRY(dt_nn_infer_layernorm(L, in, out));
    int axis;
    int64_t block;
    DT_TRY(dt_layernorm_layout(L, &in[0], &axis, &block));
    for (int i = DT_FLN_R1; i <= DT_FLN_R2 && i < L->n_in; i++) {
        if (!L->in[i]) continue;
        const char *name = i == DT_FLN_R1 ? "R1" : "R2";
        DT_TRY(dt_want_float(in, i, name, DT_FLN_X));
        int64_t st[DT_MAX_DIMS];
        if (!dt_fused_layernorm_strides(&in[0], axis, &in[i], st)) {
            char sr[160], sx[160];
            dt_format_dims(sr, sizeof sr, in[i].dims, in[i].rank, NULL);
            dt_format_dims(sx, sizeof sx, in[0].dims, in[0].rank, NULL);
            return dt_fail(DUCTILE_ERR_SHAPE,
                           "input %d (%s) has shape %s; expected one that broadcasts to X's %s with the normalized "
                           "dims (axis %d on) equal",
                           i, name, sr, sx, axis);
        }
    }
    return DUCTILE_OK;
}
