/* The op families; each table ends with an entry whose op_type is NULL. */
#ifndef DT_OP_FAMILIES_H
#define DT_OP_FAMILIES_H

#include "ops/op.h"

/* Unary and binary elementwise ops, Where, Cast, Clip, activations (elementwise.c). */
extern const dt_opdef dt_ops_elementwise[];
/* Shape and data-movement ops: Shape, Gather, Concat, Reshape, Slice, ... (shape.c). */
extern const dt_opdef dt_ops_shape[];
/* Matrix ops: Conv, Gemm, MatMul (linalg.c). */
extern const dt_opdef dt_ops_linalg[];
/* Other neural-network ops: pooling, Resize, Softmax, normalizations, reductions (nn.c). */
extern const dt_opdef dt_ops_nn[];
/* Private layers of domain "ductile" made by builder passes: FusedConv, ... (fused.c), whose
 * table holds FusedLayerNorm's check and infer too (fused_norm.c), and FusedSqueezeExcite's
 * (fused_se.c). */
extern const dt_opdef dt_ops_fused[];
ductile_status dt_fln_check(const ductile_layer *L);
ductile_status dt_fln_infer(const ductile_layer *L, const dt_view *in, dt_view *out);
/* DUCTILE_ERR_UNSUPPORTED naming attribute `attr` unless it names an activation FusedConv
 * computes (fused.c). */
ductile_status dt_fused_act_known(const ductile_layer *L, const char *attr);
/* FusedRotary's (fused_rotary.c). */
ductile_status dt_frot_check(const ductile_layer *L);
ductile_status dt_frot_infer(const ductile_layer *L, const dt_view *in, dt_view *out);
/* FusedSqueezeExcite's (fused_se.c). */
ductile_status dt_fse_check(const ductile_layer *L);
ductile_status dt_fse_infer(const ductile_layer *L, const dt_view *in, dt_view *out);
/* Quantization and integer ops: QuantizeLinear, DequantizeLinear, QLinear*, *Integer (quant.c) */
extern const dt_opdef dt_ops_quant[];
/* Recurrent, signal and tensor-algebra ops: RNN, GRU, LSTM, DFT, STFT, windows, Einsum, OneHot (seq.c) */
extern const dt_opdef dt_ops_seq[];
/* Vision ops: GridSample, AffineGrid, RoiAlign, NonMaxSuppression, DeformConv (vision.c) */
extern const dt_opdef dt_ops_vision[];
/* String ops: StringNormalizer, StringConcat, StringSplit, RegexFullMatch, LabelEncoder (strings.c) */
extern const dt_opdef dt_ops_strings[];

/* Sequences and optionals: SequenceConstruct, SequenceAt, SplitToSequence, Optional* (sequence.c) */
extern const dt_opdef dt_ops_sequence[];
/* Domain ai.onnx.ml: Binarizer, ArrayFeatureExtractor, TreeEnsemble (ml.c) */
extern const dt_opdef dt_ops_ml[];
/* Random generators shaped like their input: RandomUniformLike, Bernoulli (random.c) */
extern const dt_opdef dt_ops_random[];
/* Control flow: If, Loop, Scan (ctrl.c; run by runtime/ctrl.c). */
extern const dt_opdef dt_ops_ctrl[];

#endif
