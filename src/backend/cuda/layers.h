/* The CUDA backend's compiled layers (backend.h, "compiled layers"): what each kernel's
 * prepare reads from its layer once, at load, so that its run reads only these params and the
 * views: no attribute lookups, no string compares (op names become codes in prepare), no
 * allocation. Conv, MatMul and Gemm have a plan_shapes (backend.h): the cuDNN / cuBLASLt
 * descriptors and algorithm for a set of shapes are made when the context plans those shapes
 * (dt_cuda_plan_slot's cache in the context's state), and the workspace they report (cuDNN's
 * is known only once its algorithm is chosen) is reserved in the context's scratch with the
 * own convs' split-K sums; the runs find both.
 *
 * prepare runs when the engine is loaded, before supports() decides which layers fall back to
 * the host (runtime/engine.c): it must accept every layer the host runs, so it refuses only
 * what every backend refuses (the shared attribute readers of ops/). What the CUDA kernels
 * cannot do is refused by dt_cuda_supports (a host fallback, not a failed load); what depends
 * on run-time shapes or values is still checked at run.
 *
 * Every params struct starts with the layer: for messages (its op type names a failed
 * launch) and as the key of the context's plan cache, never for its attributes. */
#ifndef DT_CUDA_LAYERS_H
#define DT_CUDA_LAYERS_H

#include "backend/cuda/conv_own.h"
#include "backend/cuda/cuda.h"
#include "backend/tactic.h"
#include "ops/fused.h"
#include "ops/linalg.h"
#include "ops/nn.h"
#include "ops/shape.h"

#include <stdbool.h>
#include <stdint.h>

/* Kernels that need nothing but the views (Cast, Where, IsNaN, Not, Reshape...). */
typedef struct dt_cu_layer_params {
    const ductile_layer *L;
} dt_cu_layer_params;

/* Binary elementwise (DT_CU_ADD...), unary (DT_CU_RELU...; p0, p1 as dt_cu_unary takes
 * them), logic (0 And, 1 Or, 2 Xor) and reductions (DT_CU_RED_...). */
typedef struct dt_cu_op_params {
    const ductile_layer *L;
    int code;
} dt_cu_op_params;

typedef struct dt_cu_unary_params {
    const ductile_layer *L;
    int code;           /* Gelu with approximate=tanh: DT_CU_GELU_TANH */
    float p0, p1;       /* HardSigmoid alpha, beta; Clip min, max; LeakyRelu, Elu alpha */
} dt_cu_unary_params;

typedef struct dt_cu_softmax_params {
    const ductile_layer *L;
    int64_t axis;       /* the attribute or its opset's default */
    bool coerce;        /* opset < 13: the trailing dims flattened into the axis */
    int log;            /* LogSoftmax */
} dt_cu_softmax_params;

typedef struct dt_cu_layernorm_params {
    const ductile_layer *L;
    int64_t axis;
    float eps;
    bool has_bias;      /* input 2 given */
    bool has_r[2];      /* FusedLayerNorm's addends (inputs 3, 4) given */
    bool gathers;       /* ... and IDS (input 5): X's rows picked from a table */
} dt_cu_layernorm_params;

/* FusedSqueezeExcite: both activations, the layout, which biases are given. */
typedef struct dt_cu_se_params {
    const ductile_layer *L;
    dt_cu_se_acts acts;
    bool nhwc, has_b1, has_b2;
} dt_cu_se_params;

typedef struct dt_cu_pool_params {
    const ductile_layer *L;
    dt_pool_attrs a;
    bool avg;           /* AveragePool (else MaxPool) */
} dt_cu_pool_params;

typedef struct dt_cu_transpose_params {
    const ductile_layer *L;
    int64_t n;          /* -1: no 'perm' (the reversed default) */
    int64_t perm[DT_MAX_DIMS];
} dt_cu_transpose_params;

/* Gather (axis) and Concat (axis, n_in: its inputs, omitted ones have rank -1). */
typedef struct dt_cu_axis_params {
    const ductile_layer *L;
    int64_t axis;
    int n_in;
} dt_cu_axis_params;

typedef struct dt_cu_slice_params {
    const ductile_layer *L;     /* names inputs in messages */
    dt_slice_attrs a;
} dt_cu_slice_params;

typedef struct dt_cu_d2s_params {
    const ductile_layer *L;
    int64_t block;
    bool crd;           /* mode CRD (else DCR) */
    bool nhwc;          /* input channels last (attribute layout "NHWC") */
} dt_cu_d2s_params;

typedef struct dt_cu_resize_params {
    dt_resize_layer r;  /* r.L: the layer */
} dt_cu_resize_params;

typedef struct dt_cu_reduce_params {
    const ductile_layer *L;
    int code;
    int n_in;
    dt_reduce_attrs a;
} dt_cu_reduce_params;

/* MatMul, Gemm and FusedMatMul (matmul.c). The tactic per profile as the builder stored it. */
typedef struct dt_cu_matmul_params {
    const ductile_layer *L;     /* the plan cache's key */
    bool tf32;                  /* float32 computed in TF32 (the builder's mark) */
    bool ta, tb, has_c;         /* Gemm: transA, transB, input 2 given; FusedMatMul: has_c the bias */
    bool has_res, gelu, silu;   /* FusedMatMul: the residual given; the erf Gelu; SiLU */
    int64_t packed;             /* FusedMatMul: B's packed layout (the CUDA builder packs none) */
    bool norm, has_lb;          /* FusedMatMul norm = 1: the LayerNorm after, its B given */
    float eps;                  /* ... its epsilon */
    int forced;                 /* DUCTILE_CUDA_MATMUL_NORM's tactic at compile time, else 0 */
    float alpha, beta;          /* Gemm; MatMul: 1, 0 */
    int tactic_points;          /* ids per profile (backend/tactic.h) */
    int64_t n_tactic;
    int64_t tactic[];           /* the layer's `tactic`, per profile and point */
} dt_cu_matmul_params;

/* Conv and FusedConv (conv.c): the attributes through the reader the CPU's conv uses (the
 * geometry, auto_pad's pads included, is computed from them per set of shapes), the epilogue
 * (activation code and parameters; bias and residual given), the TF32 mark and the tactic per
 * profile (conv_own.h's ids), as the builder stored them. */
typedef struct dt_cu_conv_params {
    const ductile_layer *L;     /* the plan cache's key */
    dt_conv_attrs conv;
    dt_cu_conv_epi epi;         /* act, p0, p1; bias and res NULL (set per run) */
    bool has_bias, has_res;     /* input 2 given; FusedConv's input 3 given */
    bool tf32;                  /* float32 computed in TF32 (the builder's mark) */
    int tactic_points;          /* ids per profile (backend/tactic.h) */
    bool nhwc;                  /* FusedConv layout "NHWC" */
    int forced;                 /* DUCTILE_CUDA_CONV's tactic at compile time (conv_tc_nhwc.h), else 0 */
    int d2s;                    /* FusedConv's folded DepthToSpace: blocksize (0: none) ... */
    bool d2s_crd;               /* ... and mode CRD */
    int64_t n_tactic;
    int64_t tactic[];           /* the layer's `tactic`, per profile and point */
} dt_cu_conv_params;

/* FusedAttention (attention.c): the attributes through ops/fused.h's reader, the tactic per
 * profile (DT_CUDA_ATTENTION_TC / _CORES / _MMA / _MMA_SPLIT where the tensor-core kernels apply: cuda.h's
 * DT_CU_ATTN_* ids). */
enum { DT_CUDA_ATTENTION_TC = DT_CU_ATTN_WMMA, DT_CUDA_ATTENTION_CORES = DT_CU_ATTN_CORES,
       DT_CUDA_ATTENTION_MMA = DT_CU_ATTN_MMA, DT_CUDA_ATTENTION_MMA_SPLIT = DT_CU_ATTN_MMA_SPLIT };
typedef struct dt_cu_attention_params {
    const ductile_layer *L;
    dt_fa_attrs a;
    int forced;                 /* DUCTILE_CUDA_ATTENTION's kernel at compile time, else 0 */
    int tactic_points;          /* ids per profile (backend/tactic.h) */
    int64_t n_tactic;
    int64_t tactic[];           /* the layer's `tactic`, per profile and point */
} dt_cu_attention_params;
/* The kernel (DT_CU_ATTN_*) a run at these shapes takes (the mma kernel's fallback to WMMA
 * for unaligned tensors aside). */
int dt_cuda_attention_kernel(const dt_cu_attention_params *p, const dt_view *in, int dtype, const dt_exec *ex);
/* The geometry of a compiled conv at these views, whatever its layout. */
ductile_status dt_cuda_conv_geometry(const dt_cu_conv_params *p, const dt_view *in, dt_conv_geom *g);
/* A channels-last conv that is one product (1x1, stride 1, no pads, one group: tactic
 * DT_CUDA_CONV_LT_NHWC). */
bool dt_cuda_conv_lt_applies(const dt_conv_geom *g);

/* An activation as the own kernels take it (DT_CU_*) from attribute `attr` (FusedConv's names;
 * DUCTILE_ERR_UNSUPPORTED naming it otherwise) and its parameters: params[0], [1] Clip's min
 * and max, params[2], [3] HardSigmoid's / HardSwish's alpha and beta, ONNX's defaults where
 * absent (conv.c). */
ductile_status dt_cuda_act_read(const ductile_layer *L, const char *attr, const char *const params[4], int *act,
                                float *p0, float *p1);

/* cuBLASLt's workspace: the kernel scratch of every layer that calls it. */
enum { DT_CUDA_LT_WORKSPACE = 32 << 20 };
/* y[M, N] = a[M, K] b[N, K]^T + bias + res, row-major, every operand of `dtype`, on cuBLASLt
 * (float32 compute, one rounding) with its heuristic's first algorithm, the plan cached under
 * layer L; bias [N] (NULL: none; 16-byte aligned) by its BIAS epilogue, res [M, N] (NULL:
 * none; it may be y) as its C with beta 1, relu: ReLU of the whole sum (its RELU epilogues);
 * workspace: ex->scratch (DT_CUDA_LT_WORKSPACE bytes asked). DUCTILE_ERR_UNSUPPORTED when cuBLASLt has no algorithm for it. (matmul.c; conv.c's
 * channels-last 1x1 convs.) */
ductile_status dt_cuda_lt_product(const ductile_layer *L, dt_exec *ex, int dtype, const void *a, const void *b, void *y,
                                  const void *bias, const void *res, bool relu, int64_t M, int64_t N, int64_t K);
/* Makes the plan dt_cuda_lt_product takes at these sizes, with or without a bias and ReLU
 * (plan_shapes; workspace: DT_CUDA_LT_WORKSPACE bytes of kernel scratch). */
ductile_status dt_cuda_lt_product_plan(const ductile_layer *L, const dt_exec *ex, int dtype, int64_t M, int64_t N,
                                       int64_t K, bool bias, bool relu);

/* The compiled kernels (their op types: dt_cuda_kernel in layers.c). */
extern const dt_kernel dt_cuda_binary_kernel, dt_cuda_unary_kernel, dt_cuda_where_kernel, dt_cuda_logic_kernel,
    dt_cuda_isnan_kernel, dt_cuda_not_kernel, dt_cuda_cast_kernel;
extern const dt_kernel dt_cuda_transpose_kernel, dt_cuda_gather_kernel, dt_cuda_concat_kernel, dt_cuda_copy_kernel,
    dt_cuda_expand_kernel, dt_cuda_slice_kernel, dt_cuda_d2s_kernel;
extern const dt_kernel dt_cuda_softmax_kernel, dt_cuda_layernorm_kernel, dt_cuda_gap_kernel, dt_cuda_se_kernel, dt_cuda_pool_kernel,
    dt_cuda_resize_kernel, dt_cuda_reduce_kernel;
extern const dt_kernel dt_cuda_matmul_kernel, dt_cuda_gemm_kernel, dt_cuda_conv_kernel, dt_cuda_fused_matmul_kernel,
    dt_cuda_fused_attention_kernel;

/* Op type -> code (-1: not of the family); prepare and supports() use them, runs never. */
int dt_cuda_binary_code(const char *op);
int dt_cuda_unary_code(const char *op);
int dt_cuda_reduce_code(const char *op);
int dt_cuda_logic_code(const char *op);

/* A params blob of `bytes` copied from src, for the plan to free with dt_free. */
ductile_status dt_cuda_params_copy(const void *src, size_t bytes, const ductile_layer *L, void **out);
/* prepare of the kernels in dt_cu_layer_params. */
ductile_status dt_cuda_layer_prepare(const ductile_layer *L, void **out);

/* The tactic a run uses from what prepare stored (`points` ids per profile): the builder's
 * (ex->tactic), else the one stored for the profile and shape point (ex->profile,
 * ex->point), else 0 (none: the kernel's own choice). */
static inline int dt_cuda_params_tactic(const int64_t *tactic, int64_t n, int points, const dt_exec *ex)
{
    if (ex->tactic > 0) return ex->tactic;
    int64_t t = dt_tactic_at(tactic, n, points, ex->profile, ex->point);
    return t < 0 || t > 1024 ? 0 : (int)t;
}

/* Whether cuDNN algorithm `algo` runs conv layer L with dtype's tensors as conv-bias-activation
 * (the bias and activation in the call; else the convolution, then the epilogue kernel): where
 * it does, the plain form is a tactic of its own for half data (conv.c, tactics.c). */
bool dt_cuda_conv_fuses_cudnn(const ductile_layer *L, int dtype, int algo);
/* Whether cuDNN's forward algorithm `algo` may run a conv: not FFT, FFT_TILING nor WINOGRAD,
 * which mix many inputs into each output (a plane's or a tile's transform), so that one NaN or
 * infinite input spoils outputs whose windows lack it (NaN, or an infinity a fused Relu makes
 * 0), unless DUCTILE_CUDA_CONV_MIXING=1 (session 44, test_cuda_nonfinite.py). Neither the
 * builder's timer nor cuDNN's heuristic (a conv without a stored choice) takes them. */
bool dt_cudnn_algo_allowed(int algo);

/* What a conv runs at geometry g with tensors of dtype (conv.c; kernel_path names the same):
 * an own kernel's id (one that applies), DT_CUDA_CONV_CUDNN + a cuDNN algorithm, or 0 for
 * cuDNN's heuristic; -1 when the builder's tactic (ex->tactic) does not apply here. Without a
 * tactic the own depthwise kernel where it applies; a profile's own tactic that does not
 * apply at these shapes (chosen at its opt shapes): the heuristic. */
int dt_cuda_conv_choose(const dt_cu_conv_params *p, const dt_conv_geom *g, int dtype, const dt_exec *ex);

static inline int64_t dt_cuda_count(const dt_view *v)
{
    int64_t n = 1;
    for (int d = 0; d < v->rank; d++) n *= v->dims[d];
    return n;
}

/* Element strides of x broadcast (numpy, right-aligned) to y's dims: 0 where x broadcasts.
 * From the views at run: a dynamic dim decides whether an operand broadcasts. */
static inline void dt_cuda_bcast_strides(const dt_view *x, const dt_view *y, int64_t *st)
{
    int64_t s = 1;
    for (int d = y->rank - 1; d >= 0; d--) {
        int dx = d - (y->rank - x->rank);
        if (dx < 0) {
            st[d] = 0;
            continue;
        }
        st[d] = x->dims[dx] == 1 ? 0 : s;
        s *= x->dims[dx];
    }
}

#endif
