/* FlexAttention (domain ai.onnx.preview, opset 1): softmax(Q K^T * scale) V over rank-4
 * inputs with grouped KV heads. The optional GRAPH attributes score_mod and prob_mod each take
 * one tensor, the whole scores (after the scale) or probabilities (after the softmax), of
 * shape [B, Hq, L, S] and the softmax dtype, and give one tensor of the same shape and dtype
 * back, as ONNX's schema (onnx/defs/preview/defs.cc) and reference define them; the kernel
 * calls them through dt_exec.subgraph (backend/backend.h). A subgraph may read tensors of the
 * enclosing graph (captures, graph/subgraph.h): the node lists them after Q, K, V. */
#ifndef DT_OPS_NN_FLEX_H
#define DT_OPS_NN_FLEX_H

#include "ops/op.h"

/* Geometry: Q [B, Hq, L, E], K [B, Hkv, S, E], V [B, Hkv, S, Ev]; Y [B, Hq, L, Ev]. */
typedef struct dt_flex_params {
    int64_t B, Hq, Hkv, L, S, E, Ev;
    double sqrt_scale;    /* applied to Q and to K, as ONNX's reference does */
} dt_flex_params;

/* The dtype the scores, probabilities and modifiers use: softmax_precision when given
 * (sp > 0), else float64 for float64 inputs and float32 for the others. */
static inline int dt_flex_softmax_dtype(int64_t sp, int q_dtype)
{
    return sp > 0 ? (int)sp : q_dtype == DUCTILE_FLOAT64 ? DUCTILE_FLOAT64 : DUCTILE_FLOAT32;
}

ductile_status dt_nn_check_flex(const ductile_layer *L);
ductile_status dt_nn_infer_flex(const ductile_layer *L, const dt_view *in, dt_view *out);
/* has_scale/scale: the attribute read once (compiled kernels). */
ductile_status dt_flex_params_of(bool has_scale, float scale, const dt_view *in, dt_flex_params *p);

#endif
