#include "ops/op.h"
#include "ops/families.h"

#include <string.h>

static const dt_opdef *const dt_families[] = {
    dt_ops_elementwise,
    dt_ops_shape,
    dt_ops_linalg,
    dt_ops_nn,
    dt_ops_fused,
    dt_ops_quant,
    dt_ops_seq,
    dt_ops_vision,
    dt_ops_strings,
    dt_ops_sequence,
    dt_ops_ml,
    dt_ops_random,
    dt_ops_ctrl,
};

const dt_opdef *dt_opdef_find(const char *op_type)
{
    for (size_t f = 0; f < sizeof dt_families / sizeof dt_families[0]; f++)
        for (const dt_opdef *d = dt_families[f]; d->op_type; d++)
            if (strcmp(d->op_type, op_type) == 0) return d;
    return NULL;
}
