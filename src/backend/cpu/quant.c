/* Quantization and integer ops: QuantizeLinear, DequantizeLinear, QLinear*, *Integer: CPU kernels. */
#include "backend/cpu/families.h"
#include "backend/cpu/quant_kernels.h"

const dt_cpu_kernel dt_cpu_quant[] = {
    {"QuantizeLinear", dt_cpu_quantize_linear, NULL},
    {"DequantizeLinear", dt_cpu_dequantize_linear, NULL},
    {"DynamicQuantizeLinear", dt_cpu_dynamic_quantize_linear, NULL},
    {"MatMulInteger", dt_cpu_matmul_integer, NULL},
    {"QLinearMatMul", dt_cpu_qlinear_matmul, NULL},
    {"ConvInteger", dt_cpu_conv_integer, NULL},
    {"QLinearConv", dt_cpu_qlinear_conv, NULL},
    {NULL, NULL, NULL},
};
