/* FlexAttention (domain ai.onnx.preview, opset 1): softmax(Q K^T * scale) V over rank-4
 * inputs with grouped KV heads. The score_mod / prob_mod subgraphs are refused. */
#ifndef DT_OPS_NN_FLEX_H
#define DT_OPS_NN_FLEX_H

#include "ops/op.h"

/* Geometry: Q [B, Hq, L, E], K [B, Hkv, S, E], V [B, Hkv, S, Ev]; Y [B, Hq, L, Ev]. */
typedef struct dt_flex_params {
    int64_t B, Hq, Hkv, L, S, E, Ev;
    double sqrt_scale;    /* applied to Q and to K, as ONNX's reference does */
} dt_flex_params;

ductile_status dt_nn_check_flex(const ductile_layer *L);
ductile_status dt_nn_infer_flex(const ductile_layer *L, const dt_view *in, dt_view *out);
/* has_scale/scale: the attribute read once (compiled kernels). */
ductile_status dt_flex_params_of(bool has_scale, float scale, const dt_view *in, dt_flex_params *p);

#endif
