/* DeformConv (opsets 19, 22): a 2-D convolution whose taps move by learned offsets (and are
 * scaled by an optional mask), sampled bilinearly with zeros outside the image, as
 * torchvision's deform_conv2d. The geometry (strides, pads, dilations, groups, output size)
 * is Conv's, so it is Conv's code that computes it. */
#include "ops/vision.h"
#include "ops/linalg.h"
#include "core/status.h"

#include <stdio.h>
#include <string.h>

ductile_status dt_vision_check_deformconv(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 3, 5, 1, 1, DT_INPUT_NAMES("X", "W", "offset", "B", "mask")));
    int64_t og = dt_attr_int(L, "offset_group", 1);
    if (og < 1)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'offset_group' = %lld; expected >= 1", (long long)og);
    int64_t nk;
    if (dt_attr_ints(L, "kernel_shape", &nk) && nk != 2)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'kernel_shape' has %lld values; DeformConv is supported "
                       "in 2-D only", (long long)nk);
    return DUCTILE_OK;
}

static bool dt_present(const ductile_layer *L, const dt_view *in, int i)
{
    return i < L->n_in && L->in[i] && in[i].rank >= 0;
}

ductile_status dt_deformconv_geometry(const ductile_layer *L, const dt_view *in, dt_conv_geom *g, int64_t *offset_group)
{
    dt_conv_attrs a;
    dt_conv_attrs_read(L, &a);
    *offset_group = dt_attr_int(L, "offset_group", 1);
    return dt_deformconv_geometry_of(&a, *offset_group, dt_present(L, in, 3), dt_present(L, in, 4), in, g);
}

ductile_status dt_deformconv_geometry_of(const dt_conv_attrs *a, int64_t og, bool has_b, bool has_mask,
                                         const dt_view *in, dt_conv_geom *g)
{
    if (in[0].rank != 4) return dt_vision_bad_shape(0, "X", &in[0], "rank 4 (N, C, H, W): DeformConv is 2-D");
    DT_TRY(dt_conv_geometry_of(a, &in[0], &in[1], g));
    if (g->c % og != 0) {
        char e[96];
        snprintf(e, sizeof e, "a channel count divisible by attribute 'offset_group' = %lld", (long long)og);
        return dt_vision_bad_shape(0, "X", &in[0], e);
    }
    int64_t taps = g->k[0] * g->k[1];
    char want[160];
    snprintf(want, sizeof want, "[%lld, %lld, %lld, %lld] (N, offset_group*2*kH*kW, output height, width)",
             (long long)g->batch, (long long)(og * 2 * taps), (long long)g->out[0], (long long)g->out[1]);
    const dt_view *o = &in[2];
    if (o->rank != 4 || o->dims[0] != g->batch || o->dims[1] != og * 2 * taps || o->dims[2] != g->out[0] ||
        o->dims[3] != g->out[1])
        return dt_vision_bad_shape(2, "offset", o, want);
    if (has_b && (in[3].rank != 1 || in[3].dims[0] != g->m)) {
        snprintf(want, sizeof want, "[%lld] (one bias per output channel)", (long long)g->m);
        return dt_vision_bad_shape(3, "B", &in[3], want);
    }
    if (has_mask) {
        const dt_view *m = &in[4];
        snprintf(want, sizeof want, "[%lld, %lld, %lld, %lld] (N, offset_group*kH*kW, output height, width)",
                 (long long)g->batch, (long long)(og * taps), (long long)g->out[0], (long long)g->out[1]);
        if (m->rank != 4 || m->dims[0] != g->batch || m->dims[1] != og * taps || m->dims[2] != g->out[0] ||
            m->dims[3] != g->out[1])
            return dt_vision_bad_shape(4, "mask", m, want);
    }
    return DUCTILE_OK;
}

ductile_status dt_vision_infer_deformconv(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    static const char *names[] = {"X", "W", "offset", "B", "mask"};
    for (int i = 0; i < 5; i++)
        if (i < 3 || dt_present(L, in, i)) DT_TRY(dt_want_float32(in, i, names[i]));
    dt_conv_geom g;
    int64_t og;
    DT_TRY(dt_deformconv_geometry(L, in, &g, &og));
    memset(&out[0], 0, sizeof out[0]);
    out[0].dtype = DUCTILE_FLOAT32;
    out[0].rank = 4;
    out[0].dims[0] = g.batch;
    out[0].dims[1] = g.m;
    out[0].dims[2] = g.out[0];
    out[0].dims[3] = g.out[1];
    return DUCTILE_OK;
}
