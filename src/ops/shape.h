/* Private to the shape op family (src/ops/shape*.c) and its kernels
 * (src/backend/<name>/shape*.c): parameters that both shape inference and the kernels derive
 * from attributes and value inputs are computed here once, so a kernel can never disagree with
 * infer about a slice's start, a pad's width or a split's sizes. */
#ifndef DT_OPS_SHAPE_H
#define DT_OPS_SHAPE_H

#include "ops/op.h"

#include <stdbool.h>
#include <stdint.h>

/* Most outputs a Split may have (the shape pass handles 64 per layer). */
#define DT_SHAPE_MAX_OUTPUTS 64

/* ---- shared helpers (shape.c) ---- */

/* The name of input i, or "" when omitted. */
const char *dt_shape_name(const ductile_layer *L, int i);
/* Input i was given (not an omitted optional input). */
bool dt_shape_has(const ductile_layer *L, const dt_view *in, int i);
/* Input i's value is known; DUCTILE_ERR_UNSUPPORTED "the output shape depends on ..." if not. */
ductile_status dt_shape_need_value(const ductile_layer *L, const dt_view *in, int i);
/* Input i has a dtype with a fixed element size (any but string/undefined). */
ductile_status dt_shape_want_sized(const ductile_layer *L, const dt_view *in, int i);
/* Input i is int32 or int64. */
ductile_status dt_shape_want_int(const ductile_layer *L, const dt_view *in, int i);
/* Reads the known value of an int32/int64 input i of rank 0 or 1 with at most cap values. */
ductile_status dt_shape_read_ints(const ductile_layer *L, const dt_view *in, int i,
                                  int64_t *vals, int cap, int *n);
/* "[-1,1,3]": values as written, unlike dt_format_dims which prints negatives as "?". */
char *dt_shape_format_values(char *buf, size_t cap, const int64_t *v, int n);
/* Copies the input's dtype and shape to out (Reshape-like ops set dims afterwards). */
void dt_shape_same(const dt_view *in, dt_view *out);

/* ---- Slice (shape_slice.c) ---- */

typedef struct dt_slice_plan {
    /* Per input axis: first element, step (non-zero) and output length; unsliced axes have
     * start 0, step 1, len = dim. */
    int64_t start[DT_MAX_DIMS], step[DT_MAX_DIMS], len[DT_MAX_DIMS];
} dt_slice_plan;

/* From attributes (opset < 10) or inputs 1..4 (their values must be known). */
ductile_status dt_slice_plan_get(const ductile_layer *L, const dt_view *in, dt_slice_plan *p);

/* Slice's attributes, read once (compiled kernels): before opset 10, n[k] values of starts,
 * ends, axes (k = 0..2; -1: absent); from opset 10 the lists are inputs (from_inputs). */
typedef struct dt_slice_attrs {
    bool from_inputs;
    int n[3];
    int64_t v[3][DT_MAX_DIMS];
} dt_slice_attrs;

ductile_status dt_slice_attrs_read(const ductile_layer *L, dt_slice_attrs *a);
/* dt_slice_plan_get over attributes already read; L names inputs in messages. */
ductile_status dt_slice_plan_of(const ductile_layer *L, const dt_slice_attrs *a, const dt_view *in,
                                dt_slice_plan *p);

/* ---- Pad (shape_pad.c) ---- */

enum { DT_PAD_CONSTANT, DT_PAD_REFLECT, DT_PAD_EDGE, DT_PAD_WRAP };

typedef struct dt_pad_plan {
    int mode;
    int64_t begin[DT_MAX_DIMS], end[DT_MAX_DIMS]; /* per axis; negative crops */
} dt_pad_plan;

ductile_status dt_pad_plan_get(const ductile_layer *L, const dt_view *in, dt_pad_plan *p);
/* CenterCropPad as a Pad (constant zero) of the input; needs the value of input 1. */
ductile_status dt_center_crop_pad_plan(const ductile_layer *L, const dt_view *in, dt_pad_plan *p);

/* Pad's attributes, read once (compiled kernels): mode; before opset 11 also 'pads' and
 * 'value' (from opset 11 they are inputs: from_inputs). */
typedef struct dt_pad_attrs {
    int mode;
    bool from_inputs;
    int n_pads;
    int64_t pads[2 * DT_MAX_DIMS];
    float value;
} dt_pad_attrs;

ductile_status dt_pad_attrs_read(const ductile_layer *L, dt_pad_attrs *a);
/* dt_pad_plan_get over attributes already read; L names inputs in messages. */
ductile_status dt_pad_plan_of(const ductile_layer *L, const dt_pad_attrs *a, const dt_view *in, dt_pad_plan *p);

/* CenterCropPad's attribute 'axes' (n_axes -1: absent), read once. */
typedef struct dt_crop_attrs {
    int n_axes;
    int64_t axes[DT_MAX_DIMS];
} dt_crop_attrs;

ductile_status dt_center_crop_pad_attrs_read(const ductile_layer *L, dt_crop_attrs *a);
ductile_status dt_center_crop_pad_plan_of(const ductile_layer *L, const dt_crop_attrs *a, const dt_view *in,
                                          dt_pad_plan *p);

/* ---- Split (shape_concat.c) ---- */

/* Normalized axis and the size of each of the L->n_out outputs along it. */
ductile_status dt_split_sizes(const ductile_layer *L, const dt_view *in, int *axis,
                              int64_t sizes[DT_SHAPE_MAX_OUTPUTS]);

/* Split's attributes, read once (compiled kernels): 'axis' and, before opset 13, 'split'
 * (n_split values; 0: absent). From opset 13 the sizes are input 1 (from_input). */
typedef struct dt_split_attrs {
    int64_t axis;
    bool from_input;
    int n_split;
    int64_t split[DT_SHAPE_MAX_OUTPUTS];
} dt_split_attrs;

ductile_status dt_split_attrs_read(const ductile_layer *L, dt_split_attrs *a);
/* dt_split_sizes over attributes already read; L gives the outputs' count and names inputs. */
ductile_status dt_split_sizes_of(const ductile_layer *L, const dt_split_attrs *a, const dt_view *in, int *axis,
                                 int64_t sizes[DT_SHAPE_MAX_OUTPUTS]);

/* ---- Shape, Range (shape_generate.c) ---- */

/* The dims [*start, *end) that Shape outputs for an input of rank r (opset 15 start/end). */
void dt_shape_bounds(const ductile_layer *L, int r, int *start, int *end);
/* The same from the attributes already read (end: INT64_MAX when absent). */
void dt_shape_bounds_of(int64_t start, int64_t end, int r, int *s, int *e);

/* Scalar i of Range as double (float types) or int64 (integer types). */
double dt_range_f(const dt_view *v);
int64_t dt_range_i(const dt_view *v);

/* ---- GatherND, ScatterElements, ScatterND (shape_scatter.c) ---- */

enum { DT_SCATTER_NONE, DT_SCATTER_ADD, DT_SCATTER_MUL, DT_SCATTER_MAX, DT_SCATTER_MIN };

/* The 'reduction' attribute as DT_SCATTER_*. */
ductile_status dt_scatter_reduction(const ductile_layer *L, int *red);
/* GatherND's batch_dims and index depth (the last dim of indices), checked against shapes. */
ductile_status dt_gather_nd_plan(const ductile_layer *L, const dt_view *in, int *batch, int *depth);
/* The same with batch_dims already read (compiled kernels). */
ductile_status dt_gather_nd_plan_of(const ductile_layer *L, int64_t batch_dims, const dt_view *in, int *batch,
                                    int *depth);

/* ---- ConvTranspose, Col2Im (shape_convtranspose.c) ---- */

/* How columns [channels * prod(kernel), prod(in)] fold into images [channels, out...]:
 * column (k, i) adds to image position i * stride - pad + k * dilation, per spatial axis. */
typedef struct dt_col2im_geom {
    int nsp;                       /* spatial axes */
    int64_t in[DT_MAX_DIMS];       /* input positions per axis (ConvTranspose: input dims;
                                      Col2Im: sliding blocks) */
    int64_t out[DT_MAX_DIMS];      /* image dims */
    int64_t kernel[DT_MAX_DIMS], stride[DT_MAX_DIMS], dil[DT_MAX_DIMS], pad[DT_MAX_DIMS];
} dt_col2im_geom;

typedef struct dt_convt_plan {
    dt_col2im_geom g;
    int64_t group, batch, in_ch, out_ch; /* out_ch: all groups */
} dt_convt_plan;

/* ConvTranspose's geometry from attributes and the shapes of X (input 0) and W (input 1). */
ductile_status dt_convt_plan_get(const ductile_layer *L, const dt_view *in, dt_convt_plan *p);
/* Col2Im's geometry; needs the values of image_shape (input 1) and block_shape (input 2). */
ductile_status dt_col2im_plan_get(const ductile_layer *L, const dt_view *in, dt_col2im_geom *g,
                                  int64_t *channels);

/* The attributes of ConvTranspose and Col2Im as given, read once (compiled kernels): n_* is
 * the count (-1: absent), of which at most the arrays' size is kept; the checks against the
 * spatial rank happen in the plans below. */
typedef struct dt_fold_attrs {
    int64_t n_strides, n_dil, n_pads, n_out_pad, n_kernel, n_out_shape;
    int64_t strides[DT_MAX_DIMS], dil[DT_MAX_DIMS], pads[2 * DT_MAX_DIMS], out_pad[DT_MAX_DIMS],
        kernel[DT_MAX_DIMS], out_shape[DT_MAX_DIMS];
    int64_t group;
    dt_auto_pad_kind auto_pad;
} dt_fold_attrs;

ductile_status dt_fold_attrs_read(const ductile_layer *L, dt_fold_attrs *a);
/* The plans above over attributes already read; L names inputs in messages. */
ductile_status dt_convt_plan_of(const ductile_layer *L, const dt_fold_attrs *a, const dt_view *in, dt_convt_plan *p);
ductile_status dt_col2im_plan_of(const ductile_layer *L, const dt_fold_attrs *a, const dt_view *in,
                                 dt_col2im_geom *g, int64_t *channels);

/* ---- Compress, NonZero, Unique (shape_select.c): shapes that depend on data ---- */

/* Element i of v is not zero (any fixed-size dtype; -0.0 is zero). */
bool dt_select_nonzero(const dt_view *v, int64_t i);
/* Compress's axis (-1: flattened) and how many positions the condition (input 1) keeps. */
ductile_status dt_compress_plan(const ductile_layer *L, const dt_view *in, int *axis, int64_t *kept);
/* The same with the attribute already read (has_axis false: flattened). */
ductile_status dt_compress_plan_of(const ductile_layer *L, bool has_axis, int64_t axis_attr, const dt_view *in,
                                   int *axis, int64_t *kept);

typedef struct dt_unique_result {
    int axis;                   /* -1: over the flattened elements */
    int64_t n_items, n_unique;  /* items: elements, or slices along the axis */
    int64_t item;               /* elements per item */
    int64_t *first;             /* [n_unique] item index of each unique item, in output order */
    int64_t *inverse;           /* [n_items] output position of each item */
    int64_t *counts;            /* [n_unique] */
    int64_t *work;              /* what the three point into when dt_unique_get allocated it */
} dt_unique_result;

/* Groups input 0's items (its value must be known); free with dt_unique_free. */
ductile_status dt_unique_get(const ductile_layer *L, const dt_view *in, dt_unique_result *r);
void dt_unique_free(dt_unique_result *r);

/* Unique's attributes, read once (compiled kernels). */
typedef struct dt_unique_attrs {
    bool has_axis, sorted;
    int64_t axis;
} dt_unique_attrs;

void dt_unique_attrs_read(const ductile_layer *L, dt_unique_attrs *a);
/* int64s of work dt_unique_group needs for input 0 of these dims (7 per item). */
size_t dt_unique_work(const dt_unique_attrs *a, const dt_view *in);
/* dt_unique_get over attributes already read, in the caller's work (dt_unique_work of them):
 * r's arrays point into it, so there is nothing to free. */
ductile_status dt_unique_group(const ductile_layer *L, const dt_unique_attrs *a, const dt_view *in, int64_t *work,
                               dt_unique_result *r);

/* ---- check and infer of each op ---- */

#define DT_SHAPE_OP(name)                                                                   \
    ductile_status dt_shape_check_##name(const ductile_layer *L);                          \
    ductile_status dt_shape_infer_##name(const ductile_layer *L, const dt_view *in,        \
                                         dt_view *out)
DT_SHAPE_OP(shape);
DT_SHAPE_OP(size);
DT_SHAPE_OP(constant_of_shape);
DT_SHAPE_OP(range);
DT_SHAPE_OP(reshape);
DT_SHAPE_OP(flatten);
DT_SHAPE_OP(squeeze);
DT_SHAPE_OP(unsqueeze);
DT_SHAPE_OP(expand);
DT_SHAPE_OP(gather);
DT_SHAPE_OP(gather_elements);
DT_SHAPE_OP(concat);
DT_SHAPE_OP(split);
DT_SHAPE_OP(slice);
DT_SHAPE_OP(transpose);
DT_SHAPE_OP(depth_to_space);
DT_SHAPE_OP(space_to_depth);
DT_SHAPE_OP(tile);
DT_SHAPE_OP(pad);
DT_SHAPE_OP(gather_nd);
DT_SHAPE_OP(scatter_elements);
DT_SHAPE_OP(scatter_nd);
DT_SHAPE_OP(trilu);
DT_SHAPE_OP(eye_like);
DT_SHAPE_OP(reverse_sequence);
DT_SHAPE_OP(conv_transpose);
DT_SHAPE_OP(col2im);
DT_SHAPE_OP(center_crop_pad);
DT_SHAPE_OP(compress);
DT_SHAPE_OP(non_zero);
DT_SHAPE_OP(unique);
#undef DT_SHAPE_OP

/* Transpose's permutation (attribute or the reversed default) for an input of rank r. */
/* DepthToSpace with attribute layout "NHWC" (the layout pass's): input [N, H, W, C]. */
bool dt_depth_to_space_nhwc(const ductile_layer *L);
/* DepthToSpace as a strided copy: the output's elements in order [N, C', H, b, W, b] read from
 * the input (dims d, channels first or last) at these strides. */
void dt_depth_to_space_source(bool nhwc, bool crd, const int64_t *d, int64_t b, int64_t dims[6], int64_t stride[6]);
ductile_status dt_transpose_perm(const ductile_layer *L, int r, int perm[DT_MAX_DIMS]);
/* The same over the attribute already read (p NULL: absent; n its count); L names input 0. */
ductile_status dt_transpose_perm_of(const ductile_layer *L, const int64_t *p, int64_t n, int r,
                                    int perm[DT_MAX_DIMS]);

#endif
