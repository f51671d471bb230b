/* Quantization and integer ops: QuantizeLinear, DequantizeLinear, QLinear*, *Integer: CPU kernels. */
#include "backend/cpu/families.h"
#include "backend/cpu/quant_kernels.h"

const dt_cpu_kernel dt_cpu_quant[] = {
    {"QuantizeLinear", NULL, &dt_cpu_quantize_linear_kernel},
    {"DequantizeLinear", NULL, &dt_cpu_dequantize_linear_kernel},
    {"DynamicQuantizeLinear", NULL, &dt_cpu_dynamic_quantize_linear_kernel},
    {"MatMulInteger", NULL, &dt_cpu_matmul_integer_kernel},
    {"QLinearMatMul", NULL, &dt_cpu_qlinear_matmul_kernel},
    {"ConvInteger", NULL, &dt_cpu_conv_integer_kernel},
    {"QLinearConv", NULL, &dt_cpu_qlinear_conv_kernel},
    {NULL, NULL, NULL},
};
