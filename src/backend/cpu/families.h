/* The CPU kernel families, mirroring src/ops/families.h; each table ends with op_type NULL. */
#ifndef DT_CPU_FAMILIES_H
#define DT_CPU_FAMILIES_H

#include "backend/cpu/kernels.h"

/* An op's kernel: compiled (`kernel`, run = NULL) or, until migrated, through the adapter
 * (`run`, the old signature, kernel = NULL). */
typedef struct dt_cpu_kernel {
    const char *op_type;
    dt_cpu_run_fn run;
    const dt_kernel *kernel;
} dt_cpu_kernel;

extern const dt_cpu_kernel dt_cpu_elementwise[]; /* elementwise.c */
extern const dt_cpu_kernel dt_cpu_shape[];       /* shape.c */
extern const dt_cpu_kernel dt_cpu_linalg[];      /* linalg.c (+ gemm_*.c, conv_*.c) */
extern const dt_cpu_kernel dt_cpu_nn[];          /* nn.c (+ nn_*.c) */
extern const dt_cpu_kernel dt_cpu_fused[];       /* fused_conv.c */
extern const dt_cpu_kernel dt_cpu_quant[];     /* quant.c (+ quant_*.c) */
extern const dt_cpu_kernel dt_cpu_seq[];       /* seq.c (+ seq_*.c) */
extern const dt_cpu_kernel dt_cpu_vision[];    /* vision.c (+ vision_*.c) */
extern const dt_cpu_kernel dt_cpu_strings[];   /* strings.c */
extern const dt_kernel dt_cpu_equal_kernel;    /* strings.c: Equal, strings included */
extern const dt_kernel dt_cpu_str_cast_kernel; /* strings_cast.c: Cast, CastLike, strings included */
extern const dt_cpu_kernel dt_cpu_ml[];        /* ml.c (domain ai.onnx.ml) */
extern const dt_cpu_kernel dt_cpu_random[];    /* random_ops.c */

#endif
