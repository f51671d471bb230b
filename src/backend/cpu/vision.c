/* Vision ops: GridSample, AffineGrid, NonMaxSuppression, MaxUnpool, Upsample, LpPool,
 * GlobalLpPool, LRN, GroupNormalization, MeanVarianceNormalization: CPU kernels. */
#include "backend/cpu/families.h"
#include "backend/cpu/vision_kernels.h"

const dt_cpu_kernel dt_cpu_vision[] = {
    {"GridSample", dt_cpu_gridsample, NULL},
    {"AffineGrid", dt_cpu_affinegrid, NULL},
    {"NonMaxSuppression", dt_cpu_nms, NULL},
    {"LRN", dt_cpu_lrn, NULL},
    {"GroupNormalization", dt_cpu_groupnorm, NULL},
    {"MeanVarianceNormalization", dt_cpu_mvn, NULL},
    {"MaxUnpool", dt_cpu_maxunpool, NULL},
    {"Upsample", dt_cpu_upsample, NULL},
    {"LpPool", dt_cpu_lppool, NULL},
    {"GlobalLpPool", dt_cpu_global_lppool, NULL},
    {"RoiAlign", NULL, &dt_cpu_roialign_kernel},
    {"DeformConv", NULL, &dt_cpu_deformconv_kernel},
    {NULL, NULL, NULL},
};
