/* The CPU backend's convolution: depthwise convolutions run a direct kernel (conv_dw.c), the
 * rest run as GEMMs whose B packing reads the image directly: over a padded copy for stride 1
 * (conv_padded.c), else through an im2col done panel by panel (conv.c). No column buffer is
 * ever materialized. */
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

/* Stride-1 convs over images wide enough that computing the padded width wastes little
 * (conv_padded.c). */
bool dt_cpu_conv_padded_applies(const dt_conv_geom *g);
ductile_status dt_cpu_conv_padded(const dt_conv_geom *g, const float *x, const float *w,
                                  const float *bias, float *y, dt_pool *pool);

#endif
