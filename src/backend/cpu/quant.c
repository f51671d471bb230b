/* Quantization and integer ops: QuantizeLinear, DequantizeLinear, QLinear*, *Integer: CPU kernels. */
#include "backend/cpu/families.h"

const dt_cpu_kernel dt_cpu_quant[] = {
    {NULL, NULL},
};
