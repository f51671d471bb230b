/* Private to the CPU elementwise kernels (src/backend/cpu/elementwise*.c): the broadcast
 * walker they share and each file's entry points. */
#ifndef DT_CPU_ELEMENTWISE_IMPL_H
#define DT_CPU_ELEMENTWISE_IMPL_H

#include "backend/cpu/kernels.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Elements per parallel task: large enough that thread hand-off costs little next to the
 * work, small enough that a [1,64,128,128] tensor still uses every core. */
#define DT_EW_GRAIN 16384
/* The same for the polynomial and libm activations (Gelu, Erf, Tanh, Sigmoid, Exp, Log and
 * the double-precision ones), which cost 20-50 times a copy per element: bert's Gelu over
 * [16, 1024] (~25 us) ran on one thread under the plain grain. */
#define DT_EW_GRAIN_COSTLY 2048

/* Up to three inputs broadcast against a contiguous output. Operand 0 is the output, 1..n the
 * inputs. Unit dims are dropped and dims that are contiguous in every operand are merged, so
 * [N,C,H,W] * [N,C,1,1] walks as [N*C, H*W] rows of "vector times scalar". */
#define DT_EW_MAX_OPS 4
typedef struct dt_ew_iter {
    int n_ops;
    int rank;                                    /* >= 1 after collapsing */
    int64_t dims[DT_MAX_DIMS];
    int64_t stride[DT_EW_MAX_OPS][DT_MAX_DIMS];  /* in elements; 0 on broadcast dims */
    size_t esize[DT_EW_MAX_OPS];
    char *base[DT_EW_MAX_OPS];
    int64_t count;                               /* output elements */
} dt_ew_iter;

/* Runs n elements of a contiguous stretch of the output. p[k] points at operand k's first
 * element; step[k] is 1 if operand k advances along the stretch and 0 if it is broadcast
 * (step[0], the output, is always 1). */
typedef void (*dt_ew_run_fn)(const void *ctx, char *const p[], const int step[], int64_t n);

/* out's dims must be the broadcast of the inputs' dims (as infer made them). */
void dt_ew_iter_init(dt_ew_iter *it, const dt_view *out, const dt_view *const in[], int n_in);
/* Walks every output element, in parallel over ex->pool for large outputs. */
void dt_ew_iter_run(const dt_ew_iter *it, dt_exec *ex, dt_ew_run_fn fn, const void *ctx);

/* Runs fn over [0, n) in parallel chunks of at least DT_EW_GRAIN items. */
void dt_ew_parallel(dt_exec *ex, int64_t n, dt_range_fn fn, void *arg);
/* The same with chunks of at least `grain` items. */
void dt_ew_parallel_grain(dt_exec *ex, int64_t n, int64_t grain, dt_range_fn fn, void *arg);

/* Entry points, one per file, dispatching on L->op_type. */
ductile_status dt_cpu_ew_unary(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex);
ductile_status dt_cpu_ew_clip(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex);
/* The same compiled (backend.h); the functions above are what float16/bfloat16 widen into. */
extern const dt_kernel dt_cpu_ew_unary_kernel, dt_cpu_ew_clip_kernel, dt_cpu_ew_binary_kernel,
    dt_cpu_ew_variadic_kernel, dt_cpu_ew_cast_kernel;
ductile_status dt_cpu_ew_binary(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex);
ductile_status dt_cpu_ew_variadic(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex);
/* Where (elementwise_where.c) and Dropout (elementwise_unary.c), compiled. */
extern const dt_kernel dt_cpu_ew_where_kernel, dt_cpu_ew_dropout_kernel;

/* The binary op codes shared by the binary and variadic kernels. */
enum {
    DT_BIN_ADD, DT_BIN_SUB, DT_BIN_MUL, DT_BIN_DIV, DT_BIN_POW, DT_BIN_MAX, DT_BIN_MIN,
    DT_BIN_EQ, DT_BIN_LT, DT_BIN_LE, DT_BIN_GT, DT_BIN_GE, DT_BIN_AND, DT_BIN_OR, DT_BIN_XOR,
    DT_BIN_MOD,      /* numpy's mod: the sign of the divisor */
    DT_BIN_FMOD,     /* C's fmod: the sign of the dividend */
    DT_BIN_SHL, DT_BIN_SHR, DT_BIN_BITAND, DT_BIN_BITOR, DT_BIN_BITXOR,
    DT_BIN_PRELU     /* x < 0 ? x * slope : x */
};
/* out = a <op> b with broadcasting; a and b share a dtype (Pow: see elementwise_binary.c).
 * a may be out itself (same dims), which the variadic ops use to accumulate. */
ductile_status dt_cpu_ew_apply_binary(int op, const dt_view *a, const dt_view *b, dt_view *out,
                                      dt_exec *ex);

/* IEEE half <-> float, round to nearest even (elementwise_cast.c). */
float dt_half_to_float(uint16_t h);
uint16_t dt_float_to_half(float f);
/* Casts src into dst (same dims, dst->dtype the target) with Cast's rules (elementwise_cast.c). */
ductile_status dt_ew_cast_view(const dt_view *src, dt_view *dst, dt_exec *ex);

/* elementwise_convert.c */
/* bfloat16 <-> float, round to nearest even. */
float dt_bf16_to_float(uint16_t h);
uint16_t dt_float_to_bf16(float f);
bool dt_ew_is_half(int dtype);   /* float16, bfloat16 */
bool dt_ew_is_float(int dtype);  /* float16, bfloat16, float32, float64 */
bool dt_ew_is_int(int dtype);    /* the eight integer types */
/* Element i of a numeric or bool view as int64 (uint64 keeps its bits) or as double. */
int64_t dt_ew_get_i64(const dt_view *v, int64_t i);
double dt_ew_get_f64(const dt_view *v, int64_t i);
/* *dst = src converted to dtype, in buf (the caller's: dt_view_count(src) elements of dtype). */
ductile_status dt_ew_convert(const dt_view *src, int dtype, dt_view *dst, void *buf, dt_exec *ex);
/* True when an input or output is float16/bfloat16: the kernel then runs through
 * dt_ew_via_f32, which widens those inputs to float32, runs fn on float32 outputs and rounds
 * them back. */
bool dt_ew_needs_f32(const ductile_layer *L, const dt_view *in, const dt_view *out);
ductile_status dt_ew_via_f32(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex,
                             dt_kernel_fn fn);
/* The same for a compiled kernel: run(params, ...) on the float32 views (dt_cpu_via_f32_run). */
ductile_status dt_ew_via_f32_run(const ductile_layer *L, const void *params, dt_kernel_run_fn run,
                                 const dt_view *in, dt_view *out, dt_exec *ex);
/* For the scratch function of a compiled kernel whose run may call dt_ew_via_f32: adds the
 * float32 copies it takes at these views to *bytes (dt_cpu_via_f32_scratch's rule). */
ductile_status dt_ew_via_f32_scratch(const ductile_layer *L, const dt_view *in, const dt_view *out, size_t *bytes);

#endif
