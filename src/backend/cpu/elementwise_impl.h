/* Private to the CPU elementwise kernels (src/backend/cpu/elementwise*.c): the broadcast
 * walker they share and each file's entry points. */
#ifndef DT_CPU_ELEMENTWISE_IMPL_H
#define DT_CPU_ELEMENTWISE_IMPL_H

#include "backend/cpu/kernels.h"

#include <stddef.h>
#include <stdint.h>

/* Elements per parallel task: large enough that thread hand-off costs little next to the
 * work, small enough that a [1,64,128,128] tensor still uses every core. */
#define DT_EW_GRAIN 16384

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

/* Entry points, one per file, dispatching on L->op_type. */
ductile_status dt_cpu_ew_unary(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex);
ductile_status dt_cpu_ew_clip(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex);
ductile_status dt_cpu_ew_binary(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex);
ductile_status dt_cpu_ew_variadic(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex);
ductile_status dt_cpu_ew_where(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex);
ductile_status dt_cpu_ew_cast(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex);

/* The binary op codes shared by the binary and variadic kernels. */
enum {
    DT_BIN_ADD, DT_BIN_SUB, DT_BIN_MUL, DT_BIN_DIV, DT_BIN_POW, DT_BIN_MAX, DT_BIN_MIN,
    DT_BIN_EQ, DT_BIN_LT, DT_BIN_LE, DT_BIN_GT, DT_BIN_GE, DT_BIN_AND, DT_BIN_OR, DT_BIN_XOR
};
/* out = a <op> b with broadcasting; a and b share a dtype (Pow: see elementwise_binary.c).
 * a may be out itself (same dims), which the variadic ops use to accumulate. */
ductile_status dt_cpu_ew_apply_binary(int op, const dt_view *a, const dt_view *b, dt_view *out,
                                      dt_exec *ex);

/* IEEE half <-> float, round to nearest even (elementwise_cast.c). */
float dt_half_to_float(uint16_t h);
uint16_t dt_float_to_half(float f);

#endif
