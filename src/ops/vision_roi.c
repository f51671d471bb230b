/* RoiAlign (opsets 10, 16, 22): bilinear samples averaged or maxed over each bin of each
 * region, as Mask R-CNN pools its regions. Opset 10 had no coordinate_transformation_mode and
 * behaved as 'output_half_pixel'; opset 16 added the attribute with 'half_pixel' as default. */
#include "ops/vision.h"
#include "core/status.h"

#include <math.h>
#include <string.h>

ductile_status dt_roialign_params_get(const ductile_layer *L, dt_roialign_params *p)
{
    memset(p, 0, sizeof *p);
    const char *mode = dt_attr_string(L, "mode", "avg");
    if (strcmp(mode, "avg") != 0 && strcmp(mode, "max") != 0)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'mode' = '%s' is not supported (supported: avg, max)", mode);
    p->max = strcmp(mode, "max") == 0;
    const char *ctm = dt_attr_string(L, "coordinate_transformation_mode", L->opset < 16 ? "output_half_pixel" : "half_pixel");
    if (strcmp(ctm, "half_pixel") != 0 && strcmp(ctm, "output_half_pixel") != 0)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'coordinate_transformation_mode' = '%s' is not supported (supported: half_pixel, "
                       "output_half_pixel)", ctm);
    p->half_pixel = strcmp(ctm, "half_pixel") == 0;
    p->out_h = dt_attr_int(L, "output_height", 1);
    p->out_w = dt_attr_int(L, "output_width", 1);
    p->sampling_ratio = dt_attr_int(L, "sampling_ratio", 0);
    p->spatial_scale = dt_attr_float(L, "spatial_scale", 1.0f);
    const char *names[] = {"output_height", "output_width"};
    int64_t v[] = {p->out_h, p->out_w};
    for (int i = 0; i < 2; i++)
        if (v[i] < 1 || v[i] > (1 << 20))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute '%s' = %lld; expected 1..%d", names[i],
                           (long long)v[i], 1 << 20);
    if (p->sampling_ratio < 0 || p->sampling_ratio > 1024)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'sampling_ratio' = %lld; expected 0 (adaptive) to 1024",
                       (long long)p->sampling_ratio);
    if (!isfinite(p->spatial_scale) || p->spatial_scale <= 0.0f)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'spatial_scale' = %g; expected a finite value > 0",
                       (double)p->spatial_scale);
    return DUCTILE_OK;
}

ductile_status dt_vision_check_roialign(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 3, 3, 1, 1, NULL));
    dt_roialign_params p;
    return dt_roialign_params_get(L, &p);
}

ductile_status dt_vision_infer_roialign(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    dt_roialign_params p;
    DT_TRY(dt_roialign_params_get(L, &p));
    DT_TRY(dt_want_float32(in, 0, "X"));
    DT_TRY(dt_want_float32(in, 1, "rois"));
    if (in[2].dtype != DUCTILE_INT64)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input 2 (batch_indices) has dtype %s; expected int64",
                       ductile_dtype_name((ductile_dtype)in[2].dtype));
    if (in[0].rank != 4) return dt_vision_bad_shape(0, "X", &in[0], "rank 4 (N, C, H, W)");
    if (in[1].rank != 2 || in[1].dims[1] != 4) return dt_vision_bad_shape(1, "rois", &in[1], "[num_rois, 4]");
    if (in[2].rank != 1 || in[2].dims[0] != in[1].dims[0])
        return dt_vision_bad_shape(2, "batch_indices", &in[2], "[num_rois], one per row of input 1 (rois)");
    if (in[0].dims[2] < 1 || in[0].dims[3] < 1)
        return dt_vision_bad_shape(0, "X", &in[0], "a height and width of at least 1");
    memset(&out[0], 0, sizeof out[0]);
    out[0].dtype = DUCTILE_FLOAT32;
    out[0].rank = 4;
    out[0].dims[0] = in[1].dims[0];
    out[0].dims[1] = in[0].dims[1];
    out[0].dims[2] = p.out_h;
    out[0].dims[3] = p.out_w;
    return DUCTILE_OK;
}
