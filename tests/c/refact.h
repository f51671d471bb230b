/* The fused epilogues' activations in double (dt_act, backend/cpu/epilogue.h), applied to the
 * reference convolution's sums (refconv.h) by the CPU conv kernels' tests. */
#ifndef DT_REFACT_H
#define DT_REFACT_H

#include "backend/cpu/epilogue.h"

#include <math.h>

static inline double ref_act(dt_act act, double v, double p0, double p1)
{
    switch (act) {
    case DT_ACT_RELU: return v > 0 ? v : 0;
    case DT_ACT_CLIP: return v < p0 ? p0 : v > p1 ? p1 : v;
    case DT_ACT_HARDSIGMOID: return fmin(1.0, fmax(0.0, p0 * v + p1));
    case DT_ACT_HARDSWISH: return v * fmin(1.0, fmax(0.0, p0 * v + p1));
    case DT_ACT_SIGMOID:
    case DT_ACT_SIGMOID_LEAN: return 1.0 / (1.0 + exp(-v));
    case DT_ACT_SILU:
    case DT_ACT_SILU_LEAN: return v / (1.0 + exp(-v));
    default: return v;
    }
}

#endif
