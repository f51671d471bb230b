/* Vision ops: GridSample, AffineGrid, NonMaxSuppression, RoiAlign, MaxUnpool, Upsample, LpPool,
 * GlobalLpPool, ImageDecoder and the local normalizations (LRN, GroupNormalization, MeanVarianceNormalization):
 * the family's table and the checks its ops share. */
#include "ops/vision.h"
#include "ops/families.h"
#include "ops/image.h"
#include "core/status.h"

ductile_status dt_vision_bad_shape(int i, const char *what, const dt_view *v,
                                   const char *expected)
{
    char s[160];
    dt_format_dims(s, sizeof s, v->dims, v->rank, NULL);
    return dt_fail(DUCTILE_ERR_SHAPE, "input %d (%s) has shape %s; expected %s", i, what, s,
                   expected);
}

const dt_opdef dt_ops_vision[] = {
    {"GridSample", dt_vision_check_gridsample, dt_vision_infer_gridsample, 0},
    {"AffineGrid", dt_vision_check_affinegrid, dt_vision_infer_affinegrid, 1u << 1},
    /* Eager: the number of selected boxes depends on every input's data. */
    {"NonMaxSuppression", dt_vision_check_nms, dt_vision_infer_nms, 0x1fu},
    {"LRN", dt_vision_check_lrn, dt_vision_infer_same, 0},
    {"GroupNormalization", dt_vision_check_groupnorm, dt_vision_infer_groupnorm, 0},
    {"MeanVarianceNormalization", dt_vision_check_mvn, dt_vision_infer_same, 0},
    {"MaxUnpool", dt_vision_check_maxunpool, dt_vision_infer_maxunpool, 1u << 2},
    /* Opset 9: the scales (input 1) set the output shape. */
    {"Upsample", dt_vision_check_upsample, dt_vision_infer_upsample, 1u << 1},
    {"LpPool", dt_vision_check_lppool, dt_vision_infer_lppool, 0},
    {"GlobalLpPool", dt_vision_check_global_lppool, dt_vision_infer_lppool, 0},
    {"RoiAlign", dt_vision_check_roialign, dt_vision_infer_roialign, 0},
    {"DeformConv", dt_vision_check_deformconv, dt_vision_infer_deformconv, 0},
    /* Eager unless the bytes are a constant: the output's size is in the image's header. */
    {"ImageDecoder", dt_image_check, dt_image_infer, 1u << 0},
    {NULL, NULL, NULL, 0},
};
