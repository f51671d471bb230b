/* Defaults of ONNX attributes that more than one part of ductile reads: the CPU kernels, the
 * builder's fusion pass (which copies an activation's attributes into FusedConv's act_*, and
 * FusedConv's kernel, which falls back on them) and the recurrent ops' activation_alpha/beta
 * (which default to the op's own). One home each: a default written in two files drifts
 * unnoticed (HardSigmoid's alpha could be changed in one of them and no test failed).
 * Values from the ONNX operator specification. */
#ifndef DT_OP_DEFAULTS_H
#define DT_OP_DEFAULTS_H

#include <float.h>
#include <math.h>

/* HardSigmoid: max(0, min(1, alpha*x + beta)). */
#define DT_HARDSIGMOID_ALPHA 0.2f
#define DT_HARDSIGMOID_BETA 0.5f
/* HardSwish (no attributes): x * HardSigmoid(x) with these. */
#define DT_HARDSWISH_ALPHA (1.0f / 6.0f)
#define DT_HARDSWISH_BETA 0.5f
/* Clip before opset 11: attributes min and max. */
#define DT_CLIP6_MIN (-FLT_MAX)
#define DT_CLIP6_MAX FLT_MAX
/* Clip from opset 11: an omitted min or max input does not bound. */
#define DT_CLIP_NO_MIN (-INFINITY)
#define DT_CLIP_NO_MAX INFINITY
/* LeakyRelu: x < 0 ? alpha*x : x. */
#define DT_LEAKYRELU_ALPHA 0.01f

#endif
