/* Quantization and integer ops: QuantizeLinear, DequantizeLinear, QLinear*, *Integer: op definitions. */
#include "ops/families.h"

const dt_opdef dt_ops_quant[] = {
    {NULL, NULL, NULL, 0},
};
