#include "backend/cpu/kernels.h"
#include "backend/cpu/families.h"

#include <string.h>

static const dt_cpu_kernel *const dt_cpu_families[] = {
    dt_cpu_elementwise,
    dt_cpu_shape,
    dt_cpu_linalg,
    dt_cpu_nn,
    dt_cpu_fused,
    dt_cpu_quant,
    dt_cpu_seq,
    dt_cpu_vision,
};

dt_cpu_run_fn dt_cpu_kernel_find(const char *op_type)
{
    for (size_t f = 0; f < sizeof dt_cpu_families / sizeof dt_cpu_families[0]; f++)
        for (const dt_cpu_kernel *k = dt_cpu_families[f]; k->op_type; k++)
            if (strcmp(k->op_type, op_type) == 0) return k->run;
    return NULL;
}
