/* Quantization and integer ops: QuantizeLinear, DequantizeLinear, QLinear*, *Integer: op definitions. */
#include "ops/families.h"
#include "ops/quant.h"

const dt_opdef dt_ops_quant[] = {
    {"QuantizeLinear", dt_quantize_check, dt_quantize_infer, 0},
    {"DequantizeLinear", dt_dequantize_check, dt_dequantize_infer, 0},
    {"DynamicQuantizeLinear", dt_dynquant_check, dt_dynquant_infer, 0},
    {"MatMulInteger", dt_matmulint_check, dt_matmulint_infer, 0},
    {"QLinearMatMul", dt_qlmatmul_check, dt_qlmatmul_infer, 0},
    {"ConvInteger", dt_convint_check, dt_convint_infer, 0},
    {"QLinearConv", dt_qlconv_check, dt_qlconv_infer, 0},
    {NULL, NULL, NULL, 0},
};
