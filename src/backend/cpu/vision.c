/* Vision ops: GridSample, AffineGrid, NonMaxSuppression, MaxUnpool, Upsample, LpPool,
 * GlobalLpPool, LRN, GroupNormalization, MeanVarianceNormalization: CPU kernels. */
#include "backend/cpu/families.h"
#include "backend/cpu/vision_kernels.h"

const dt_cpu_kernel dt_cpu_vision[] = {
    {"GridSample", dt_cpu_gridsample},
    {"AffineGrid", dt_cpu_affinegrid},
    {"NonMaxSuppression", dt_cpu_nms},
    {"LRN", dt_cpu_lrn},
    {"GroupNormalization", dt_cpu_groupnorm},
    {"MeanVarianceNormalization", dt_cpu_mvn},
    {"MaxUnpool", dt_cpu_maxunpool},
    {"Upsample", dt_cpu_upsample},
    {"LpPool", dt_cpu_lppool},
    {"GlobalLpPool", dt_cpu_global_lppool},
    {NULL, NULL},
};
