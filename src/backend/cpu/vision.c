/* Vision ops: GridSample, AffineGrid, NonMaxSuppression, MaxUnpool, Upsample, LpPool,
 * GlobalLpPool, LRN, GroupNormalization, MeanVarianceNormalization, ImageDecoder: CPU kernels. */
#include "backend/cpu/families.h"
#include "backend/cpu/vision_kernels.h"

const dt_cpu_kernel dt_cpu_vision[] = {
    {"GridSample", NULL, &dt_cpu_gridsample_kernel},
    {"AffineGrid", NULL, &dt_cpu_affinegrid_kernel},
    {"NonMaxSuppression", NULL, &dt_cpu_nms_kernel},
    {"LRN", NULL, &dt_cpu_lrn_kernel},
    {"GroupNormalization", NULL, &dt_cpu_groupnorm_kernel},
    {"MeanVarianceNormalization", NULL, &dt_cpu_mvn_kernel},
    {"MaxUnpool", NULL, &dt_cpu_maxunpool_kernel},
    {"Upsample", NULL, &dt_cpu_upsample_kernel},
    {"LpPool", NULL, &dt_cpu_lppool_kernel},
    {"GlobalLpPool", NULL, &dt_cpu_global_lppool_kernel},
    {"RoiAlign", NULL, &dt_cpu_roialign_kernel},
    {"DeformConv", NULL, &dt_cpu_deformconv_kernel},
    {"ImageDecoder", NULL, &dt_cpu_image_decoder_kernel},
    {NULL, NULL, NULL},
};
