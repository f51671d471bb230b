/* Private to the nn op family (src/ops/nn*.c) and its kernels (src/backend/<name>/nn*.c):
 * the attribute parsing that both shape inference and the kernels depend on lives here once,
 * so a kernel can never disagree with infer about padding, scales or axes. */
#ifndef DT_OPS_NN_H
#define DT_OPS_NN_H

#include "ops/op.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- shared checks (nn.c) ---- */

/* An INT attribute restricted to [lo, hi]; DUCTILE_ERR_UNSUPPORTED naming it otherwise. */
ductile_status dt_nn_check_int_range(const ductile_layer *L, const char *name, int64_t dflt,
                                     int64_t lo, int64_t hi);
/* Input i was given (not an omitted optional input) and is non-empty. */
bool dt_nn_present(const ductile_layer *L, const dt_view *in, int i);

/* ---- pooling (nn_pool.c) ---- */

/* Geometry of a pooling window over up to 3 spatial dims, right-aligned: lower-rank pools
 * get leading unit dims (kernel 1, stride 1, no pad) so kernels need only one 3-D loop nest
 * and index [2] is always the innermost (contiguous) dim. */
typedef struct dt_pool_geom {
    int spatial;                        /* 1..3 spatial dims of the real input */
    int64_t in[3], out[3];
    int64_t k[3], s[3], d[3], pb[3], pe[3]; /* kernel, stride, dilation, pad begin/end */
    bool count_include_pad;
} dt_pool_geom;

/* From the layer's attributes and input dims; DUCTILE_ERR_SHAPE naming the dim at fault. */
ductile_status dt_pool_geometry(const ductile_layer *L, const dt_view *x, dt_pool_geom *g);

/* A pooling layer's attributes as read once (compiled kernels); reading refuses what the
 * attributes alone get wrong (kernel_shape missing, a count that disagrees with it). */
typedef struct dt_pool_attrs {
    int nk;
    int64_t k[3], s[3], d[3], p[6];
    bool has_s, has_d, has_p, ceil_mode, count_include_pad;
    /* ductile's attribute `layout` = "NHWC" (builder/layout.c): a 2-D pool over channels-last
     * X [N, H, W, C] and Y [N, OH, OW, C]; the geometry is the channels-first pool's. */
    bool nhwc;
    dt_auto_pad_kind auto_pad;
} dt_pool_attrs;

ductile_status dt_pool_attrs_read(const ductile_layer *L, dt_pool_attrs *a);
ductile_status dt_pool_geometry_of(const dt_pool_attrs *a, const dt_view *x, dt_pool_geom *g);

/* ---- Resize (nn_resize.c) ---- */

enum { DT_RESIZE_NEAREST, DT_RESIZE_LINEAR, DT_RESIZE_CUBIC };
enum {
    DT_CTM_HALF_PIXEL, DT_CTM_ASYMMETRIC, DT_CTM_ALIGN_CORNERS, DT_CTM_PYTORCH_HALF_PIXEL,
    DT_CTM_TF_HALF_PIXEL_FOR_NN, DT_CTM_HALF_PIXEL_SYMMETRIC, DT_CTM_TF_CROP_AND_RESIZE
};
enum {
    DT_NEAREST_ROUND_PREFER_FLOOR, DT_NEAREST_ROUND_PREFER_CEIL, DT_NEAREST_FLOOR,
    DT_NEAREST_CEIL,
    DT_NEAREST_OPSET10 /* Resize-10: truncate when upsampling, ceil when downsampling */
};

typedef struct dt_resize_params {
    int mode, ctm, nearest;
    /* Per axis: the scale used by the coordinate transform (from scales, or out/in when
     * sizes are given) and the output dim. */
    float scale[DT_MAX_DIMS];
    int64_t out[DT_MAX_DIMS];
    float cubic_a, extrapolation;
    bool exclude_outside, antialias;
    /* tf_crop_and_resize: the region of X per axis, as fractions (default 0 to 1); has_roi
     * is false while the roi's value is unknown (infer does not need it). */
    bool has_roi;
    float roi_start[DT_MAX_DIMS], roi_end[DT_MAX_DIMS];
    /* Per axis: ONNX's length_resized, scale * the input dim. It is fractional when a scale
     * does not divide the dim (the output dim is then its floor); align_corners,
     * pytorch_half_pixel and tf_crop_and_resize divide by it, not by the output dim. */
    float len[DT_MAX_DIMS];
} dt_resize_params;

/* Reads attributes and the scales/sizes inputs (their data must be known), mapped to every
 * axis of X through the attribute 'axes' (opset 18). */
ductile_status dt_resize_params_get(const ductile_layer *L, const dt_view *in,
                                    dt_resize_params *p);

/* A Resize layer's attributes as read once (compiled kernels); the scales/sizes/roi inputs
 * are read per set of shapes by dt_resize_params_of. */
typedef struct dt_resize_layer {
    const ductile_layer *L;     /* its inputs' names, for messages */
    dt_resize_params attrs;     /* mode, transforms, coefficients */
    int64_t n_axes;             /* -1: no 'axes' attribute */
    int64_t axes[DT_MAX_DIMS];
    int keep_aspect;            /* 0 stretch, 1 not_larger, 2 not_smaller */
} dt_resize_layer;

ductile_status dt_resize_layer_read(const ductile_layer *L, dt_resize_layer *r);
ductile_status dt_resize_params_of(const dt_resize_layer *r, const dt_view *in, dt_resize_params *p);

/* ---- Softmax, LogSoftmax (nn_softmax.c) ---- */

/* The input seen as [outer, n, inner], normalized over n. */
ductile_status dt_softmax_layout(const ductile_layer *L, const dt_view *x, int64_t *outer,
                                 int64_t *n, int64_t *inner);
/* The same from the axis attribute already read (compiled kernels): `coerce` is opset < 13,
 * `axis_attr` the attribute or its default for that opset (dt_softmax_axis_attr). */
int64_t dt_softmax_axis_attr(const ductile_layer *L);
ductile_status dt_softmax_layout_of(int64_t axis_attr, bool coerce, const dt_view *x, int64_t *outer,
                                    int64_t *n, int64_t *inner);

/* ---- LayerNormalization (nn_norm.c) ---- */

/* First normalized axis and the element count of the normalized block. */
ductile_status dt_layernorm_layout(const ductile_layer *L, const dt_view *x, int *axis,
                                   int64_t *block);
/* The same from the axis attribute already read (compiled kernels). */
ductile_status dt_layernorm_layout_of(int64_t axis_attr, const dt_view *x, int *axis, int64_t *block);

/* ---- Reductions (nn_reduce.c) ---- */

/* reduced[i] for each axis of x; *identity when the op copies its input (empty axes with
 * noop_with_empty_axes). Axes come from the attribute or from input 1 by opset. */
ductile_status dt_reduce_axes(const ductile_layer *L, const dt_view *in, bool reduced[DT_MAX_DIMS],
                              bool *identity);
/* The same in two steps for compiled kernels: the attributes read once (refusing an 'axes'
 * longer than a tensor's rank), then the axes of these inputs. */
typedef struct dt_reduce_attrs {
    bool from_input;            /* axes are input 1 (opset 18+; ReduceSum from 13) */
    bool noop;                  /* noop_with_empty_axes */
    int n_axes;                 /* the attribute's (from_input false) */
    int64_t axes[DT_MAX_DIMS];
    const char *axes_name;      /* input 1's tensor, for messages */
} dt_reduce_attrs;

ductile_status dt_reduce_attrs_read(const ductile_layer *L, dt_reduce_attrs *a);
ductile_status dt_reduce_axes_of(const dt_reduce_attrs *a, int n_in, const dt_view *in,
                                 bool reduced[DT_MAX_DIMS], bool *identity);

/* ---- Attention (nn_attention.c) ---- */

/* Attention (opsets 23-25) in the 4-D layout: Q [B, Hq, Sq, Dh], K [B, Hkv, Skv, Dh],
 * V [B, Hkv, Skv, Dv]; 3-D inputs [B, S, H * D] are read in place as the same heads. The
 * keys are past (Spast) then new (Skv), Stotal in all. */
typedef struct dt_attention_params {
    bool rank3;
    int64_t B, Hq, Hkv, Sq, Skv, Spast, Stotal, Dh, Dv;
    float sqrt_scale;              /* applied to Q and to K, as the reference does */
    float softcap;                 /* > 0: tanh soft-capping of the scores */
    bool causal;
    int mode;                      /* qk_matmul_output_mode */
    int64_t left, right;           /* sliding window; -1: unbounded */
    bool has_mask, mask_bool, has_nonpad;
    int64_t mask_stride[4];        /* element strides of the mask over (b, h, i, j); 0: broadcast */
    int64_t mask_len;              /* the mask's last dim; keys past it are masked */
} dt_attention_params;

ductile_status dt_attention_params_get(const ductile_layer *L, const dt_view *in,
                                       dt_attention_params *p);
/* The same in two steps for compiled kernels: the attributes read once, then the
 * geometry of these inputs (n_in: the layer's input count). */
typedef struct dt_attention_attrs {
    int64_t q_heads, kv_heads;     /* q_num_heads, kv_num_heads (0: absent) */
    bool has_scale;
    float scale, softcap;
    bool causal;
    int mode;
    int64_t left, right;
} dt_attention_attrs;

void dt_attention_attrs_read(const ductile_layer *L, dt_attention_attrs *a);
ductile_status dt_attention_params_of(const dt_attention_attrs *a, int n_in, const dt_view *in,
                                      dt_attention_params *p);

/* ---- NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss (nn_loss.c) ---- */

enum { DT_LOSS_NONE, DT_LOSS_SUM, DT_LOSS_MEAN };

/* The input [N, C, d1, ...] seen as [N, C, D]; the target [N, d1, ...] as [N, D]. */
typedef struct dt_loss_params {
    int64_t N, C, D;
    int reduction;
    bool has_ignore, has_weight;
    int64_t ignore_index;
} dt_loss_params;

ductile_status dt_loss_params_get(const ductile_layer *L, const dt_view *in, dt_loss_params *p);
/* The same in two steps for compiled kernels: reduction and ignore_index read once (a
 * reduction outside none, sum, mean refused), then the geometry of these inputs. */
typedef struct dt_loss_attrs {
    int reduction;
    bool has_ignore;
    int64_t ignore_index;
} dt_loss_attrs;

ductile_status dt_loss_attrs_read(const ductile_layer *L, dt_loss_attrs *a);
ductile_status dt_loss_params_of(const dt_loss_attrs *a, int n_in, const dt_view *in, dt_loss_params *p);

/* ---- ArgMax, ArgMin, Hardmax, CumSum, CumProd, LpNormalization, TopK (nn_axis.c) ---- */

/* x seen as [outer, n, inner] around axis (normalized). */
void dt_axis_layout(const dt_view *x, int axis, int64_t *outer, int64_t *n, int64_t *inner);
/* The axis of the op: the attribute 'axis' (dflt) or, for CumSum and CumProd, input 1's
 * value; DUCTILE_ERR_SHAPE naming it when out of range. */
ductile_status dt_axis_get(const ductile_layer *L, const dt_view *in, int64_t dflt, int *axis);
/* The same from what the layer gives, read once (compiled kernels): `from_input` for CumSum
 * and CumProd, else `attr` (the attribute or its default). */
bool dt_axis_from_input(const ductile_layer *L);
ductile_status dt_axis_of(int64_t attr, bool from_input, const dt_view *in, int *axis);
/* TopK's k: input 1 (opset 10+) or attribute 'k'; in [0, dim of axis]. */
ductile_status dt_topk_k(const ductile_layer *L, const dt_view *in, int axis, int64_t *k);
/* The same from what the layer gives: k from input 1 (`from_input`, opset 10+; k_name its
 * tensor, for messages) or the attribute `attr`. */
ductile_status dt_topk_k_of(bool from_input, int64_t attr, const char *k_name, const dt_view *in,
                            int axis, int64_t *k);

/* ---- check and infer of each op ---- */

ductile_status dt_nn_check_global_pool(const ductile_layer *L);
ductile_status dt_nn_infer_global_pool(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_nn_check_pool(const ductile_layer *L);
ductile_status dt_nn_infer_pool(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_nn_check_resize(const ductile_layer *L);
ductile_status dt_nn_infer_resize(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_nn_check_softmax(const ductile_layer *L);
ductile_status dt_nn_infer_softmax(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_nn_check_layernorm(const ductile_layer *L);
ductile_status dt_nn_infer_layernorm(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_nn_check_rmsnorm(const ductile_layer *L);
ductile_status dt_nn_check_batchnorm(const ductile_layer *L);
ductile_status dt_nn_infer_batchnorm(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_nn_check_instancenorm(const ductile_layer *L);
ductile_status dt_nn_infer_instancenorm(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_nn_check_attention(const ductile_layer *L);
ductile_status dt_nn_infer_attention(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_nn_check_loss(const ductile_layer *L);
ductile_status dt_nn_infer_loss(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_nn_check_argmax(const ductile_layer *L);
ductile_status dt_nn_infer_argmax(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_nn_check_hardmax(const ductile_layer *L);
ductile_status dt_nn_infer_hardmax(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_nn_check_cum(const ductile_layer *L);
ductile_status dt_nn_infer_cum(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_nn_check_lpnorm(const ductile_layer *L);
ductile_status dt_nn_infer_lpnorm(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_nn_check_topk(const ductile_layer *L);
ductile_status dt_nn_infer_topk(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_nn_check_reduce(const ductile_layer *L);
ductile_status dt_nn_infer_reduce(const ductile_layer *L, const dt_view *in, dt_view *out);

#endif
