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

/* Helpers for infer functions. */
/* Numpy broadcasting of a and b into out dims; DUCTILE_ERR_SHAPE naming both shapes. */
ductile_status dt_broadcast(const dt_view *a, const dt_view *b, dt_view *out);
/* Reads element i of an integer (int32/int64) view as int64. */
int64_t dt_view_int(const dt_view *v, int64_t i);
/* DUCTILE_ERR_INVALID_ARGUMENT: dilation d of spatial dim i makes the kernel of k taps,
 * (k - 1)*d + 1, overflow int64 (the message Conv and the pools share). */
ductile_status dt_fail_dilated_extent(int64_t i, int64_t k, int64_t d);
/* One spatial dim of a sliding window (Conv, pooling). in >= 1, taps k >= 1, stride s >= 1,
 * dilation d >= 1 (callers check these first); *pb, *pe hold the pads (>= 0) and are replaced
 * for auto_pad SAME_UPPER/SAME_LOWER (split as ONNX does) and VALID (zero). Sets *ek (the dilated
 * kernel) and *out, the number of windows (ceil_mode as in pooling). *out < 1 when the kernel
 * does not fit in the padded input; the caller words that refusal. Refuses with
 * DUCTILE_ERR_INVALID_ARGUMENT, naming the attribute and spatial dim i, a size that
 * overflows int64 (a dilation or pad of INT64_MAX). */
ductile_status dt_window_dim(int i, int64_t in, int64_t k, int64_t s, int64_t d,
                             const char *auto_pad, bool ceil_mode, int64_t *pb, int64_t *pe,
                             int64_t *ek, int64_t *out);
/* auto_pad as a value, read once from the attribute (compiled kernels): any other string
 * pads as NOTSET does, as dt_window_dim treats it. */
typedef enum dt_auto_pad { DT_PAD_NOTSET, DT_PAD_SAME_UPPER, DT_PAD_SAME_LOWER, DT_PAD_VALID } dt_auto_pad;
dt_auto_pad dt_auto_pad_of(const char *auto_pad);
/* dt_window_dim with auto_pad already read. */
ductile_status dt_window_dim_pad(int i, int64_t in, int64_t k, int64_t s, int64_t d, dt_auto_pad auto_pad,
                                 bool ceil_mode, int64_t *pb, int64_t *pe, int64_t *ek, int64_t *out);
/* Normalizes axis into [0, rank); DUCTILE_ERR_SHAPE if out of [-rank, rank). */
ductile_status dt_norm_axis(int64_t axis, int rank, int *out);

#endif
