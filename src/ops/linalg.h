/* Private to the linalg op family (src/ops/linalg.c) and its kernels: the conv geometry and
 * the MatMul shape rules live here once, so a kernel never disagrees with infer about padding
 * or broadcasting. */
#ifndef DT_OPS_LINALG_H
#define DT_OPS_LINALG_H

#include "ops/op.h"

#include <stdint.h>

/* A convolution over one spatial axis of the geometry. */
typedef struct dt_conv_axis {
    int64_t in, out, k, s, d, pb, pe;
} dt_conv_axis;

/* A 1-D, 2-D or 3-D convolution as a 2-D one (rows [0], columns [1]) with an optional depth
 * axis in front: a 1-D conv gets a leading unit row dim, and 1-D and 2-D convs a unit depth
 * (in, out, kernel 1, stride 1, no pad). The 2-D kernels read only the 2-D part and never
 * see spatial == 3 (dt_cpu_conv_algo_applies). */
typedef struct dt_conv_geom {
    int spatial;            /* 1, 2 or 3: spatial dims of the real input */
    int64_t batch, c, m, group;
    int64_t in[2], out[2], k[2], s[2], d[2], pb[2], pe[2];
    dt_conv_axis depth;     /* the first spatial dim of a 3-D conv */
} dt_conv_geom;

/* Writes the output's spatial dims (g->spatial of them) to dims[0..). */
void dt_conv_out_dims(const dt_conv_geom *g, int64_t *dims);

/* From the layer's attributes and the dims of X (in[0]) and W (in[1]); DUCTILE_ERR_SHAPE
 * naming the input and dim at fault. */
ductile_status dt_conv_geometry(const ductile_layer *L, const dt_view *x, const dt_view *w,
                                dt_conv_geom *g);

/* A conv's attributes as read once (compiled kernels): counts are -1 where absent; values
 * past the sixth are not kept (no conv of up to 3 spatial dims has more, and the count alone
 * refuses). */
typedef struct dt_conv_attrs {
    int64_t group;
    dt_auto_pad_kind auto_pad;
    int64_t n_kernel, n_strides, n_dilations, n_pads;
    int64_t kernel[6], strides[6], dilations[6], pads[6];
} dt_conv_attrs;

void dt_conv_attrs_read(const ductile_layer *L, dt_conv_attrs *a);
/* dt_conv_geometry over attributes already read: the same checks and messages. */
ductile_status dt_conv_geometry_of(const dt_conv_attrs *a, const dt_view *x, const dt_view *w,
                                   dt_conv_geom *g);

/* MatMul with numpy rules: 1-D operands promoted (A to [1,K], B to [K,1]) and batch dims
 * broadcast. Batch strides are 0 where an operand's batch dim is 1. */
typedef struct dt_matmul_geom {
    int64_t M, N, K;
    int batch_rank;
    int64_t batch[DT_MAX_DIMS];                 /* broadcast batch dims */
    int64_t a_stride[DT_MAX_DIMS], b_stride[DT_MAX_DIMS];  /* elements per batch index */
    int64_t batch_count;
    int out_rank;
    int64_t out[DT_MAX_DIMS];
} dt_matmul_geom;

ductile_status dt_matmul_geometry(const dt_view *a, const dt_view *b, dt_matmul_geom *g);

#endif
