/* Gradient (ai.onnx.preview.training): rewritten at import into ordinary ops (gradient.c). */
#ifndef DT_ONNX_GRADIENT_H
#define DT_ONNX_GRADIENT_H

#include "onnx/onnx_internal.h"

/* Appends to im->net the layers computing the node's outputs dy/dx_i (y non-scalar: the sum
 * of its elements) by reverse-mode differentiation over the layers imported so far; refuses a
 * layer on the path from xs to y it cannot differentiate, naming both nodes. n_in, n_out,
 * n_attr: the node's counts. */
ductile_status dt_onnx_gradient(dt_import *im, const pb_field *f, const char *name, int opset, int n_in,
                                int n_out, int n_attr);

#endif
