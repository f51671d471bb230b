/* Private to the quant op family (src/ops/quant*.c) and its kernels (src/backend/<name>/quant*.c):
 * how a scale or zero point maps onto the elements it quantizes (per tensor, per axis or in
 * blocks), parsed once so a kernel never disagrees with infer. */
#ifndef DT_OPS_QUANT_H
#define DT_OPS_QUANT_H

#include "ops/op.h"

#include <stdbool.h>
#include <stdint.h>

enum { DT_QUANT_TENSOR, DT_QUANT_AXIS, DT_QUANT_BLOCKED };

/* x seen as [outer, n, inner] around the quantization axis. The scale (and zero point) of
 * element (o, a, i) is entry dt_qmap_index(). */
typedef struct dt_qmap {
    int mode;                   /* DT_QUANT_* */
    int64_t outer, n, inner;
    int64_t block, nblocks;     /* DT_QUANT_BLOCKED */
} dt_qmap;

static inline int64_t dt_qmap_index(const dt_qmap *q, int64_t o, int64_t a, int64_t i)
{
    switch (q->mode) {
    case DT_QUANT_AXIS: return a;
    case DT_QUANT_BLOCKED: return (o * q->nblocks + a / q->block) * q->inner + i;
    default: return 0;
    }
}

/* The map of QuantizeLinear / DequantizeLinear from attributes 'axis' and 'block_size' and
 * the shapes of x (input 0), the scale (input 1) and the zero point (input 2, may be
 * omitted: rank -1). DUCTILE_ERR_SHAPE naming the input at fault. */
ductile_status dt_qmap_get(const ductile_layer *L, const dt_view *in, dt_qmap *q);
/* The two halves of it (compiled kernels): the attributes, read once, then the map for the
 * shapes at hand (same checks and messages). */
typedef struct dt_qmap_attrs {
    int64_t axis, block;
} dt_qmap_attrs;
void dt_qmap_attrs_read(const ductile_layer *L, dt_qmap_attrs *a);
ductile_status dt_qmap_of(const dt_qmap_attrs *a, const ductile_layer *L, const dt_view *in, dt_qmap *q);

/* Integer types a quantized tensor may have: the range of values; false for others. */
bool dt_quant_int_range(int dtype, int64_t *lo, int64_t *hi);
/* float32, float16, bfloat16 (and float64 where allowed): the scale / real-valued types. */
/* float8 (all four) and float4e2m1: quantized types that are floats (no zero point for the
 * float8 ones; ONNX casts x / scale to them, saturating unless saturate = 0). */
bool dt_quant_is_minifloat(int dtype);
/* What QuantizeLinear makes and DequantizeLinear reads (int32 aside): 8-, 16-, 4- and 2-bit
 * integers and the minifloats. */
bool dt_quant_is_quantized(int dtype);
bool dt_quant_is_float(int dtype);

/* The output type of QuantizeLinear: the zero point's, else 'output_dtype', else uint8. */
ductile_status dt_quantize_out_dtype(const ductile_layer *L, const dt_view *in, int *dtype);
/* The output type of DequantizeLinear: 'output_dtype', else the scale's. */
int dt_dequantize_out_dtype(const ductile_layer *L, const dt_view *in);

/* Zero point / scale of a QLinear or Integer op: a single value (size 1) or one per channel
 * (rank 1 of size n); *per_channel tells which. DUCTILE_ERR_SHAPE naming input i otherwise. */
ductile_status dt_quant_vec(const ductile_layer *L, const dt_view *in, int i, const char *what,
                            int64_t n, const char *nwhat, bool *per_channel);

/* Input i was given (not an omitted optional input). */
bool dt_quant_present(const ductile_layer *L, const dt_view *in, int i);

/* ---- check and infer of each op ---- */

ductile_status dt_quantize_check(const ductile_layer *L);
ductile_status dt_quantize_infer(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_dequantize_check(const ductile_layer *L);
ductile_status dt_dequantize_infer(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_dynquant_check(const ductile_layer *L);
ductile_status dt_dynquant_infer(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_matmulint_check(const ductile_layer *L);
ductile_status dt_matmulint_infer(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_qlmatmul_check(const ductile_layer *L);
ductile_status dt_qlmatmul_infer(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_convint_check(const ductile_layer *L);
ductile_status dt_convint_infer(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_qlconv_check(const ductile_layer *L);
ductile_status dt_qlconv_infer(const ductile_layer *L, const dt_view *in, dt_view *out);

#endif
