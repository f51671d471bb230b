/* GridSample (opsets 16, 20, 22) and AffineGrid (opset 20). */
#include "ops/vision.h"
#include "core/status.h"

#include <stdio.h>
#include <string.h>

ductile_status dt_gridsample_params_get(const ductile_layer *L, dt_gridsample_params *p)
{
    /* Opset 16 spells the modes bilinear and bicubic; opset 20 renamed them. */
    const char *mode = dt_attr_string(L, "mode", L->opset < 20 ? "bilinear" : "linear");
    if (strcmp(mode, "nearest") == 0) p->mode = DT_GS_NEAREST;
    else if (strcmp(mode, "linear") == 0 || strcmp(mode, "bilinear") == 0) p->mode = DT_GS_LINEAR;
    else if (strcmp(mode, "cubic") == 0 || strcmp(mode, "bicubic") == 0) p->mode = DT_GS_CUBIC;
    else
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'mode' = '%s' is not supported (supported: nearest, linear, "
                       "cubic, bilinear, bicubic)", mode);
    const char *pad = dt_attr_string(L, "padding_mode", "zeros");
    if (strcmp(pad, "zeros") == 0) p->padding = DT_GS_ZEROS;
    else if (strcmp(pad, "border") == 0) p->padding = DT_GS_BORDER;
    else if (strcmp(pad, "reflection") == 0) p->padding = DT_GS_REFLECTION;
    else
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'padding_mode' = '%s' is not supported (supported: zeros, "
                       "border, reflection)", pad);
    int64_t ac = dt_attr_int(L, "align_corners", 0);
    if (ac != 0 && ac != 1)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'align_corners' = %lld is not supported (supported: 0, 1)",
                       (long long)ac);
    p->align_corners = ac == 1;
    p->spatial = 0;
    return DUCTILE_OK;
}

ductile_status dt_vision_check_gridsample(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 2, 1, 1, DT_INPUT_NAMES("X", "grid")));
    dt_gridsample_params p;
    return dt_gridsample_params_get(L, &p);
}

ductile_status dt_vision_infer_gridsample(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    (void)L;
    DT_TRY(dt_want_float32(in, 0, "X"));
    DT_TRY(dt_want_float32(in, 1, "grid"));
    const dt_view *x = &in[0], *g = &in[1];
    if (x->rank < 3 || x->rank > 5)
        return dt_vision_bad_shape(0, "X", x, "rank 3 to 5 (N, C, 1 to 3 spatial dims)");
    int sp = x->rank - 2;
    char e[96];
    bool ok = g->rank == x->rank && g->dims[0] == x->dims[0] && g->dims[g->rank - 1] == sp;
    if (!ok) {
        snprintf(e, sizeof e, "rank %d with dim 0 = %lld (N of X) and last dim = %d", x->rank,
                 (long long)x->dims[0], sp);
        return dt_vision_bad_shape(1, "grid", g, e);
    }
    out[0] = *x;
    out[0].data = NULL;
    for (int i = 0; i < sp; i++) out[0].dims[2 + i] = g->dims[1 + i];
    return DUCTILE_OK;
}

ductile_status dt_vision_check_affinegrid(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 2, 1, 1, DT_INPUT_NAMES("theta", "size")));
    int64_t ac = dt_attr_int(L, "align_corners", 0);
    if (ac != 0 && ac != 1)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'align_corners' = %lld is not supported (supported: 0, 1)",
                       (long long)ac);
    return DUCTILE_OK;
}

/* theta [N, 2, 3] with size (N, C, H, W) gives a grid [N, H, W, 2]; theta [N, 3, 4] with
 * size (N, C, D, H, W) gives [N, D, H, W, 3]. */
ductile_status dt_vision_infer_affinegrid(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_want_float32(in, 0, "theta"));
    const dt_view *t = &in[0], *s = &in[1];
    if (s->dtype != DUCTILE_INT64 || s->rank != 1 || (s->dims[0] != 4 && s->dims[0] != 5))
        return dt_vision_bad_shape(1, "size", s, "an int64 [4] (N, C, H, W) or [5] (N, C, D, H, W)");
    if (!s->data)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "the output shape depends on the data of input 1 ('%s')",
                       L->in[1] ? L->in[1]->name : "size");
    int sp = (int)s->dims[0] - 2;
    char e[96];
    snprintf(e, sizeof e, "[N, %d, %d]", sp, sp + 1);
    if (t->rank != 3 || t->dims[1] != sp || t->dims[2] != sp + 1)
        return dt_vision_bad_shape(0, "theta", t, e);
    const int64_t *sz = s->data;
    if (sz[0] != t->dims[0]) {
        snprintf(e, sizeof e, "dim 0 = %lld (size[0])", (long long)sz[0]);
        return dt_vision_bad_shape(0, "theta", t, e);
    }
    out[0].dtype = DUCTILE_FLOAT32;
    out[0].rank = sp + 2;
    out[0].data = NULL;
    out[0].dims[0] = sz[0];
    int64_t n = 1;
    for (int i = 0; i < sp; i++) {
        if (sz[2 + i] < 0 || sz[2 + i] > ((int64_t)1 << 31) ||
            __builtin_mul_overflow(n, sz[2 + i], &n) || n > ((int64_t)1 << 40))
            return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (size): dim %d = %lld is out of range",
                           2 + i, (long long)sz[2 + i]);
        out[0].dims[1 + i] = sz[2 + i];
    }
    out[0].dims[sp + 1] = sp;
    return DUCTILE_OK;
}
