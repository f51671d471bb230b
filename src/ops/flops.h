/* The arithmetic of a layer at concrete shapes, for profiles and benchmarks (achieved
 * GFLOP/s): one home for the count, so the CLI, the Python binding and the bench agree. */
#ifndef DT_OPS_FLOPS_H
#define DT_OPS_FLOPS_H

#include "ops/op.h"

/* Floating-point operations of a convolution (Conv, FusedConv, the three of a
 * FusedInvertedResidual) or matrix product (MatMul, Gemm, FusedMatMul, FusedAttention's two) with these input and output views (dims set; a packed weight is read through the
 * layer's w_shape): 2 per multiply-add of the product, bias, residual and activation not
 * counted. 0 for other layers and for views it cannot read. */
double dt_layer_flops(const ductile_layer *L, const dt_view *in, const dt_view *out);

#endif
