/* Vision ops: GridSample, AffineGrid, RoiAlign, NonMaxSuppression, DeformConv: CPU kernels. */
#include "backend/cpu/families.h"

const dt_cpu_kernel dt_cpu_vision[] = {
    {NULL, NULL},
};
