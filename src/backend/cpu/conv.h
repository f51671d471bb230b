/* The CPU backend's convolution: depthwise convolutions run a direct kernel (conv_dw.c), the
 * rest run as GEMMs over an im2col of the input done inside B's packing (conv.c), so no
 * column buffer is ever materialized. */
#ifndef DT_CPU_CONV_H
#define DT_CPU_CONV_H

#include "ductile.h"
#include "core/threadpool.h"
#include "ops/linalg.h"

#include <stdbool.h>

/* y = conv(x, w) + bias over NCHW float tensors of the geometry's dims; bias may be NULL. */
ductile_status dt_cpu_conv(const dt_conv_geom *g, const float *x, const float *w,
                           const float *bias, float *y, dt_pool *pool);

/* True when the direct depthwise kernel applies: one input and one output channel per group. */
bool dt_cpu_conv_is_depthwise(const dt_conv_geom *g);
ductile_status dt_cpu_conv_depthwise(const dt_conv_geom *g, const float *x, const float *w,
                                     const float *bias, float *y, dt_pool *pool);

#endif
