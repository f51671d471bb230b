/* Op definitions: for each ONNX op type, what the graph needs to know independent of any
 * backend: which attributes and opsets are supported (check) and how output dtypes and
 * shapes follow from the inputs (infer). Kernels live in the backends (src/backend/<name>/).
 *
 * Errors: check and infer return a status and set the thread's message with dt_fail. They
 * describe the problem in terms of the op ("input 1 (shape) ..."); the caller prefixes the
 * node: "node '<name>' (<OpType>, opset <N>): ". */
#ifndef DT_OP_H
#define DT_OP_H

#include "ductile.h"
#include "graph/network.h"

#include <stdint.h>

/* A tensor as ops see it at run time: concrete dims and (maybe) a buffer. */
typedef struct dt_view {
    int dtype;                  /* ductile_dtype */
    int rank;
    int64_t dims[DT_MAX_DIMS];
    void *data;                 /* infer: non-NULL only if the value is known (a constant or a
                                   value computed from shapes); run: always set (for an
                                   omitted optional input, the view has rank -1 and NULL) */
} dt_view;

typedef struct dt_opdef {
    const char *op_type;
    /* Optional. Build-time validation of the layer: number of inputs/outputs, supported
     * attributes and values, opset. DUCTILE_ERR_UNSUPPORTED naming the attribute and value
     * for what ductile does not implement. */
    ductile_status (*check)(const ductile_layer *L);
    /* Sets dtype, rank and dims of out[0..L->n_out). in[i] for an omitted optional input has
     * rank -1 and data NULL. Reads in[i].data only for inputs in value_inputs; if such an
     * input's value is not known (data == NULL), returns DUCTILE_ERR_UNSUPPORTED with
     * "the output shape depends on the data of input <i> (<name>)". */
    ductile_status (*infer)(const ductile_layer *L, const dt_view *in, dt_view *out);
    /* Bit i set: infer reads the value of input i (Reshape's shape, Slice's starts, ...). */
    uint32_t value_inputs;
} dt_opdef;

/* The definition for an op type in the default ONNX domain, or NULL. */
const dt_opdef *dt_opdef_find(const char *op_type);

/* Element count of a view (product of dims), as int64; views always hold inferred, checked
 * dims, so this cannot overflow. */
int64_t dt_view_count(const dt_view *v);
/* Weights a backend packed at build time (builder/prepack.c): when the layer's `packed`
 * attribute is nonzero, input `input` is a flat blob and `w_shape` holds the original dims,
 * which is what the op's geometry reads; *out is then a view of those dims with data NULL.
 * Otherwise *out = *w. DUCTILE_ERR_INVALID_ARGUMENT when w_shape is malformed (rank outside
 * [rmin, rmax] or a dim < 1). */
ductile_status dt_packed_weight_view(const ductile_layer *L, int input, const dt_view *w, int rmin,
                                     int rmax, dt_view *out);

/* Helpers for infer functions. */
/* Numpy broadcasting of a and b into out dims; DUCTILE_ERR_SHAPE naming both shapes. */
ductile_status dt_broadcast(const dt_view *a, const dt_view *b, dt_view *out);
/* Reads element i of an integer (int32/int64) view as int64. */
int64_t dt_view_int(const dt_view *v, int64_t i);
/* DUCTILE_ERR_INVALID_ARGUMENT: dilation d of spatial dim i makes the kernel of k taps,
 * (k - 1)*d + 1, overflow int64 (the message Conv and the pools share). */
ductile_status dt_fail_dilated_extent(int64_t i, int64_t k, int64_t d);
/* Attribute auto_pad (default NOTSET) into *ap; DUCTILE_ERR_UNSUPPORTED for a value other
 * than NOTSET, SAME_UPPER, SAME_LOWER and VALID (Conv, the pools, ConvTranspose, ConvInteger). */
ductile_status dt_auto_pad(const ductile_layer *L, const char **ap);
/* The one split of a total padding for auto_pad SAME_UPPER (the odd pixel at the end) and
 * SAME_LOWER (at the beginning), as ONNX defines it; total may be negative (ConvTranspose). */
void dt_same_pads(int64_t total, const char *auto_pad, int64_t *pb, int64_t *pe);
/* The same with auto_pad already read (upper: SAME_UPPER), for compiled kernels. */
void dt_same_split(int64_t total, bool upper, int64_t *pb, int64_t *pe);
/* Spatial dim i of n of a sliding window (Conv, pooling). in >= 1, taps k >= 1, stride s >= 1,
 * dilation d >= 1 (callers check these first). Sets the pads *pb, *pe: pads[i] and pads[n + i]
 * (attribute 'pads', may be NULL: zero, values >= 0) for auto_pad NOTSET, split as ONNX does for
 * SAME_UPPER/SAME_LOWER (dt_same_pads), zero for VALID. Sets *ek (the dilated kernel) and *out,
 * the number of windows (ceil_mode as in pooling). *out < 1 when the kernel does not fit in the
 * padded input; the caller words that refusal. Refuses with DUCTILE_ERR_INVALID_ARGUMENT, naming
 * the attribute and spatial dim i, a size that overflows int64 (a dilation or pad of
 * INT64_MAX). */
ductile_status dt_window_dim(int i, int n, int64_t in, int64_t k, int64_t s, int64_t d,
                             const char *auto_pad, const int64_t *pads, bool ceil_mode,
                             int64_t *pb, int64_t *pe, int64_t *ek, int64_t *out);
/* auto_pad as a value, read once from the attribute (compiled kernels; dt_auto_pad has
 * refused other strings when the layer was checked): any other string pads as NOTSET. */
typedef enum dt_auto_pad_kind { DT_PAD_NOTSET, DT_PAD_SAME_UPPER, DT_PAD_SAME_LOWER, DT_PAD_VALID } dt_auto_pad_kind;
dt_auto_pad_kind dt_auto_pad_of(const char *auto_pad);
/* dt_window_dim with auto_pad already read: *pb, *pe hold the explicit pads (>= 0) on entry
 * and are replaced for SAME_UPPER/SAME_LOWER and VALID. */
ductile_status dt_window_dim_pad(int i, int64_t in, int64_t k, int64_t s, int64_t d, dt_auto_pad_kind auto_pad,
                                 bool ceil_mode, int64_t *pb, int64_t *pe, int64_t *ek, int64_t *out);
/* The one arity check of every op: the node has lo..hi inputs and olo..ohi outputs and inputs
 * 0..lo-1 (the required ones) are present. Any mismatch is DUCTILE_ERR_INVALID_ARGUMENT:
 * "expected 2 inputs, got 1", "expected 1 to 3 outputs, got 4", "input 1 (W) is required but
 * was omitted" (names, may be NULL, holds the op's names of inputs 0..lo-1). Limits of ductile
 * below what ONNX allows are refused by the op, before this, as DUCTILE_ERR_UNSUPPORTED. */
ductile_status dt_check_arity(const ductile_layer *L, int lo, int hi, int olo, int ohi,
                              const char *const *names);
#define DT_INPUT_NAMES(...) ((const char *const[]){__VA_ARGS__})
/* DUCTILE_ERR_UNSUPPORTED unless input i (`what`) is float32, the one dtype of the kernels of
 * the nn and vision ops that use it. */
ductile_status dt_want_float32(const dt_view *in, int i, const char *what);
/* Input i is float32, float16 or bfloat16 and, with same >= 0, of input same's dtype (ops a
 * backend computes in half: mixed precision, builder/precision.c; the CPU's kernels refuse
 * half when they are compiled). */
ductile_status dt_want_float(const dt_view *in, int i, const char *what, int same);
/* Normalizes axis into [0, rank); DUCTILE_ERR_SHAPE if out of [-rank, rank). */
ductile_status dt_norm_axis(int64_t axis, int rank, int *out);

/* PRelu before opset 7 took a slope of one value per channel (caffe2's semantics, as PyTorch
 * exported it): a rank-1 slope of x's dim 1 applies along that dim, not the last. True when
 * a PRelu of this opset reads its slope so, and then fills *as with the slope's view shaped
 * [C, 1, ..., 1] (rank of x minus 1), which numpy broadcasting applies along dim 1. */
bool dt_prelu_channel_slope(int opset, const dt_view *x, const dt_view *slope, dt_view *as);

#endif
