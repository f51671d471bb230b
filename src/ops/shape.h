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

/* Input count in [lo, hi], input 0 present, output count in [olo, ohi]. */
ductile_status dt_shape_arity(const ductile_layer *L, int lo, int hi, int olo, int ohi);
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

/* ---- Pad (shape_pad.c) ---- */

enum { DT_PAD_CONSTANT, DT_PAD_REFLECT, DT_PAD_EDGE, DT_PAD_WRAP };

typedef struct dt_pad_plan {
    int mode;
    int64_t begin[DT_MAX_DIMS], end[DT_MAX_DIMS]; /* per axis; negative crops */
} dt_pad_plan;

ductile_status dt_pad_plan_get(const ductile_layer *L, const dt_view *in, dt_pad_plan *p);

/* ---- Split (shape_concat.c) ---- */

/* Normalized axis and the size of each of the L->n_out outputs along it. */
ductile_status dt_split_sizes(const ductile_layer *L, const dt_view *in, int *axis,
                              int64_t sizes[DT_SHAPE_MAX_OUTPUTS]);

/* ---- Shape, Range (shape_generate.c) ---- */

/* The dims [*start, *end) that Shape outputs for an input of rank r (opset 15 start/end). */
void dt_shape_bounds(const ductile_layer *L, int r, int *start, int *end);

/* Scalar i of Range as double (float types) or int64 (integer types). */
double dt_range_f(const dt_view *v);
int64_t dt_range_i(const dt_view *v);

/* ---- GatherND, ScatterElements, ScatterND (shape_scatter.c) ---- */

enum { DT_SCATTER_NONE, DT_SCATTER_ADD, DT_SCATTER_MUL, DT_SCATTER_MAX, DT_SCATTER_MIN };

/* The 'reduction' attribute as DT_SCATTER_*. */
ductile_status dt_scatter_reduction(const ductile_layer *L, int *red);
/* GatherND's batch_dims and index depth (the last dim of indices), checked against shapes. */
ductile_status dt_gather_nd_plan(const ductile_layer *L, const dt_view *in, int *batch, int *depth);

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
#undef DT_SHAPE_OP

/* Transpose's permutation (attribute or the reversed default) for an input of rank r. */
ductile_status dt_transpose_perm(const ductile_layer *L, int r, int perm[DT_MAX_DIMS]);

#endif
