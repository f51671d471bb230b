/* Vision ops: GridSample, AffineGrid, RoiAlign, NonMaxSuppression, DeformConv: op definitions. */
#include "ops/families.h"

const dt_opdef dt_ops_vision[] = {
    {NULL, NULL, NULL, 0},
};
