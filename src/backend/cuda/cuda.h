/* The CUDA backend's internals: its per-context state, the layer kernels (C, calling cuDNN,
 * cuBLASLt and the project's own kernels) and the launchers of those own kernels (kernels.cu).
 * Float layers take float32, float16 or bfloat16 (mixed precision: half tensors, float32
 * compute; builder/precision.c); TF32 only in layers the builder marked (attribute `tf32`). */
#ifndef DT_CUDA_H
#define DT_CUDA_H

#include "backend/backend.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- own kernels (kernels.cu): each returns a cudaError_t (0 = queued) ----
 * `dtype` (a ductile_dtype: FLOAT32, FLOAT16 or BFLOAT16) is the element type of every float
 * operand of the call; the kernels compute in float32. */

enum { DT_CU_MAX_RANK = 8 };

/* An elementwise broadcast: output dims and each operand's element strides per output dim
 * (0 where the operand broadcasts). */
typedef struct dt_cu_bcast {
    int rank;
    int64_t n;
    int64_t dims[DT_CU_MAX_RANK];
    int64_t sa[DT_CU_MAX_RANK], sb[DT_CU_MAX_RANK];
} dt_cu_bcast;

enum { DT_CU_ADD, DT_CU_SUB, DT_CU_MUL, DT_CU_DIV, DT_CU_POW, DT_CU_MAX, DT_CU_MIN, DT_CU_PRELU };
enum {
    DT_CU_IDENTITY, DT_CU_RELU, DT_CU_SIGMOID, DT_CU_TANH, DT_CU_ERF, DT_CU_SQRT, DT_CU_EXP, DT_CU_LOG,
    DT_CU_NEG, DT_CU_ABS, DT_CU_RECIPROCAL, DT_CU_HARDSIGMOID, DT_CU_HARDSWISH, DT_CU_CLIP,
    DT_CU_LEAKYRELU, DT_CU_ELU, DT_CU_SOFTPLUS, DT_CU_GELU, DT_CU_GELU_TANH, DT_CU_FLOOR, DT_CU_CEIL,
    DT_CU_SILU  /* x * sigmoid(x): a FusedConv's "Silu" (Mul(x, Sigmoid(x)) fused, builder/fuse.c) */
};

int dt_cu_binary(int op, int dtype, const void *a, const void *b, void *y, const dt_cu_bcast *g, void *stream);
/* p0, p1: HardSigmoid alpha/beta, Clip min/max, LeakyRelu/Elu alpha. */
int dt_cu_unary(int op, int dtype, const void *x, void *y, int64_t n, float p0, float p1, void *stream);
/* y[n, c, i] = act(y + bias[c] + res[n, c, i]) (bias, res optional), in place. */
int dt_cu_epilogue(int dtype, void *y, const void *bias, const void *res, int64_t n, int64_t c, int64_t hw, int act,
                   float p0, float p1, void *stream);
/* y[m, n] += beta * C[m * sm + n * sn] (Gemm's C, broadcast). */
int dt_cu_add_c(int dtype, void *y, const void *c, float beta, int64_t m, int64_t n, int64_t sm, int64_t sn, void *stream);
/* Softmax / LogSoftmax over the middle dim of [outer, axis, inner]. */
int dt_cu_softmax(int dtype, const void *x, void *y, int64_t outer, int64_t axis, int64_t inner, int log, void *stream);
/* FusedLayerNorm's addends (ops/fused.h), NULL where absent: X's row dims (the nd before the
 * normalized ones) and each addend's element strides along them (0: broadcast); ids (NULL:
 * none, else int64 or int32 as ids64): row i of X is row ids[i] of x, a table of vocab rows
 * (negatives wrap; out of range: a zero row, as the Gather kernel's). */
typedef struct dt_cu_ln_addends {
    const void *r[2];
    int nd;
    int64_t dims[DT_CU_MAX_RANK], st[2][DT_CU_MAX_RANK];
    const void *ids;
    int ids64;
    int64_t vocab;
} dt_cu_ln_addends;
/* LayerNormalization over the last `cols` elements of each of `rows` rows; FusedLayerNorm's
 * rows and addends (ra: NULL or none) first, (x + r1) + r2 in float32. */
int dt_cu_layernorm(int dtype, const void *x, const void *scale, const void *bias, void *y, int64_t rows, int64_t cols,
                    float eps, const dt_cu_ln_addends *ra, void *stream);
/* FusedMatMul with norm = 1 on tensor cores (gemm_norm.cu), half types: Y[M, N] =
 * LayerNorm(act(A[M, K] B[K, N] + bias + R)) over each row with Scale (required) and lb (may be
 * NULL), bias and R may be NULL, act DT_CU_IDENTITY or DT_CU_GELU; blocks of `rows` (16 or 32)
 * whole rows (K split over the `split` blocks of a cluster, at most 8). Applies to N of 128,
 * 256 or 512, K % 8 == 0, operands below 2^31 elements; the split it would take to fill `sms`
 * multiprocessors (1: none). */
bool dt_cu_gemm_norm_applies(int dtype, int64_t M, int64_t N, int64_t K);
int dt_cu_gemm_norm_split(int64_t M, int64_t K, int rows, int sms);
int dt_cu_gemm_norm(int dtype, const void *a, const void *b, const void *bias, const void *res, const void *scale,
                    const void *lb, void *y, int64_t M, int64_t N, int64_t K, int op, float eps, int rows, int split,
                    void *stream);
/* Mean of each of `planes` planes of hw elements. */
int dt_cu_global_avgpool(int dtype, const void *x, void *y, int64_t planes, int64_t hw, void *stream);
/* y[o] = x[base + sum_d idx_d(o) * in_stride[d]], any element size: Transpose (permuted
 * strides), Expand (0 strides), Slice (base, step strides), DepthToSpace (a 6-D transpose). */
int dt_cu_transpose(const void *x, void *y, int esize, int rank, const int64_t *out_dims, const int64_t *in_strides,
                    int64_t base, int64_t n, void *stream);
/* The same from float type `from` to float type `to` (ductile_dtype codes; as dt_cu_cast
 * converts), base 0: a Transpose with attribute `to`. */
int dt_cu_transpose_cast(const void *x, int from, void *y, int to, int rank, const int64_t *out_dims,
                         const int64_t *in_strides, int64_t n, void *stream);

/* Resize of the last two dims of [planes, ih, iw] (nearest or linear), with the CPU's
 * coordinate transforms and rounding (nn_resize.c). */
enum {
    DT_CU_CTM_HALF_PIXEL, DT_CU_CTM_ASYMMETRIC, DT_CU_CTM_ALIGN_CORNERS, DT_CU_CTM_PYTORCH_HALF_PIXEL,
    DT_CU_CTM_TF_HALF_PIXEL_FOR_NN, DT_CU_CTM_HALF_PIXEL_SYMMETRIC
};
typedef struct dt_cu_resize_geom {
    int64_t planes, ih, iw, oh, ow;
    float scale[2];
    int ctm, nearest, linear;
    float len[2]; /* ONNX's length_resized (dt_resize_params.len) of the two axes */
} dt_cu_resize_geom;
int dt_cu_resize(int dtype, const void *x, void *y, const dt_cu_resize_geom *p, void *stream);
/* Cast among float32, float16, bfloat16, int64, int32 and bool (ductile_dtype codes); to a
 * half type rounds to nearest even. Float to integer truncates
 * toward zero like C; out-of-range floats are undefined there as here (the host's rules for
 * NaN/overflow are not reproduced: supports() sends float -> integer casts to the host). */
int dt_cu_cast(const void *x, int from, void *y, int to, int64_t n, void *stream);
/* Where(c, x, y) with float x, y; And (0), Or (1), Xor (2) on bools; IsNaN; Not. Strides per
 * output dim as in dt_cu_bcast. */
int dt_cu_where(int dtype, const uint8_t *c, const void *x, const void *y, void *out, int rank, int64_t n,
                const int64_t *dims, const int64_t *sc, const int64_t *sx, const int64_t *sy, void *stream);
int dt_cu_logic(int op, const uint8_t *a, const uint8_t *b, uint8_t *out, int rank, int64_t n, const int64_t *dims,
                const int64_t *sa, const int64_t *sb, void *stream);
int dt_cu_isnan(int dtype, const void *x, uint8_t *y, int64_t n, void *stream);
int dt_cu_not(const uint8_t *x, uint8_t *y, int64_t n, void *stream);
/* Reduction over the middle dim of [outer, n, inner]. */
enum { DT_CU_RED_SUM, DT_CU_RED_MEAN, DT_CU_RED_MAX, DT_CU_RED_MIN, DT_CU_RED_SUMSQ, DT_CU_RED_L1, DT_CU_RED_L2 };
int dt_cu_reduce(int dtype, const void *x, void *y, int64_t outer, int64_t n, int64_t inner, int op, void *stream);
/* The same where outer * inner is small and n large (dt_cuda_reduce_split says when): blocks
 * read along inner (coalesced) and split n; split > 1: `split` slices summed by separate
 * blocks into part (split * outer * inner floats), then joined by a second kernel. Rows of
 * whole 16-byte vectors (inner > 1) take dt_cu_reduce_cluster instead where it applies and the
 * split kernels would split (split > 1: the cluster's 8 blocks a chunk of channels cost more
 * than they give where n is short or the grid is full already, mobilenet_v2's final pool). */
int dt_cu_reduce_split(int dtype, const void *x, void *y, int64_t outer, int64_t n, int64_t inner, int op, float *part,
                       int split, void *stream);
/* The same in one launch, a cluster of 8 blocks splitting n (reduce_cluster.cu), where inner *
 * element size is a multiple of 16 bytes, x 16-byte aligned and n at most 32768; -1: not
 * applicable (nothing launched), else a CUDA error code. */
int dt_cu_reduce_cluster(int dtype, const void *x, void *y, int64_t outer, int64_t n, int64_t inner, int op, void *stream);
/* DUCTILE_CUDA_REDUCE_CLUSTER=0: dt_cu_reduce_split never takes dt_cu_reduce_cluster (read once). */
int dt_cuda_reduce_cluster_off(void);
/* The raw sums of dt_cu_reduce_split's slices, always into part (split * outer * inner
 * floats: slice k's sums at k * outer * inner), one kernel (FusedSqueezeExcite's pool). */
int dt_cu_reduce_sums(int dtype, const void *x, float *part, int64_t outer, int64_t n, int64_t inner, int split,
                      void *stream);
/* FusedSqueezeExcite's scale: y[i, :] = act2(W2 act1(W1 mean_i + b1) + b2) for each image i
 * of n, W1 [cr, c], W2 [c, cr], biases optional (NULL), all of dtype; mean_i from x (channels
 * last [n, hw, c], where dt_cu_se_pools says the kernel pools it itself) or, x NULL, from
 * the pool's slices (dt_cu_reduce_sums of X as [n, hw, c] or [n * c, hw, 1]). A cluster of 8
 * blocks per image (squeeze_excite.cu). */
typedef struct dt_cu_se_acts {
    int hidden, scale;          /* DT_CU_* activations */
    float h0, h1, s0, s1;       /* their parameters (act.cuh's p0, p1) */
} dt_cu_se_acts;
int dt_cu_se_scale(int dtype, const void *x, const float *part, int split, int64_t n, int64_t c, int64_t cr, int64_t hw,
                   const void *w1, const void *b1, const void *w2, const void *b2, void *y, const dt_cu_se_acts *acts,
                   void *stream);
/* Whether dt_cu_se_scale takes c channels and cr hidden ones (its shared memory). */
int dt_cu_se_fits(int64_t c, int64_t cr);
/* Whether it pools channels-last x ([hw, c] an image) itself: aligned, and small. */
int dt_cu_se_pools(int dtype, const void *x, int64_t c, int64_t cr, int64_t hw);
/* The slices dt_cu_reduce_split takes for [outer, n, inner] on a GPU of `sms`
 * multiprocessors (enough blocks for two per multiprocessor, each slice at least 256 rows),
 * 1: unsplit, 0: not its shape (dt_cu_reduce's: enough outputs for a thread each). */
int dt_cuda_reduce_split(int64_t outer, int64_t n, int64_t inner, int sms);
/* The GPU's multiprocessors (0: unknown), read once. */
int dt_cuda_sm_count(void);
/* Gather on [outer, axis_n, inner] with nidx indices (int64 or int32), esize-byte elements.
 * Out-of-range indices (after adding axis_n to negatives) write zeros and set *bad (device). */
int dt_cu_gather(const void *data, const void *idx, int idx64, void *y, int64_t outer, int64_t axis_n,
                 int64_t inner, int64_t nidx, int esize, void *stream);
/* 2-D pooling, NCHW (nhwc_c 0) or NHWC of nhwc_c channels (planes = N * C either way); one
 * thread per output. kind 0 max, 1 average (count_include_pad). */
int dt_cu_pool2d(int dtype, const void *x, void *y, int64_t planes, int64_t ih, int64_t iw, int64_t oh, int64_t ow,
                 int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int kind, int count_pad,
                 int64_t nhwc_c, void *stream);

/* FusedAttention (attention_kernels.cu): `count` items of Y [S, Dv] = softmax((Q q_scale)(Kt k_scale)
 * + M) V, with ops/fused.h's layouts (bshd: items (b, h) of [B, S, H, D] rows, K given as
 * [B, L, H, D]; else [count, S, D], Kt [count, D, L], V [count, L, Dv]). The mask's element
 * strides: per batch dim of the scores (nbatch of them, sizes in batch), mi per query row,
 * mj per key (0 where it broadcasts). Two kernels: float32 on CUDA cores (any dtype and head
 * dims), and for half types with head dims multiples of 16 up to 128 two on tensor cores:
 * WMMA with 64 query rows a block (the default where it applies), and mma.sync with 16 rows a
 * warp and 1 to 4 warps a block for short sequences (kernel DT_CU_ATTN_MMA; where Q, K, V or
 * Y is not 16-byte aligned: WMMA), and (attention_split.cu, DT_CU_ATTN_MMA_SPLIT, head dims up
 * to 64, else the mma kernel) mma.sync with the keys split over 2 or 4 warps of a block whose
 * states merge at the end. kernel DT_CU_ATTN_CORES: the float32 one even where a
 * tensor-core one applies. Grid limits: count * ceil(S / 16)
 * < 2^31 blocks and Dv < 65535 * 128 (else cudaErrorInvalidConfiguration; the layer checks
 * first). L must be > 0 (no keys: the layer writes zeros). */
enum { DT_CU_ATTN_WMMA = 1, DT_CU_ATTN_CORES = 2, DT_CU_ATTN_MMA = 3, DT_CU_ATTN_MMA_SPLIT = 4 };
typedef struct dt_cu_attn {
    int64_t count, S, D, L, Dv, H;
    int64_t ldq, ldk, ldv;  /* bshd: row strides of Q, K, V (ops/fused.h's dt_fa_geom) */
    int bshd, nan_to_zero;
    int krows;              /* not bshd: input 1 is K [.., L, D] (layout "krows"), not Kt */
    int kernel;             /* 0 the default, else DT_CU_ATTN_* (the layer's tactic ids) */
    float q_scale, k_scale;
    int nbatch;
    int64_t batch[DT_CU_MAX_RANK], mstride[DT_CU_MAX_RANK];
    int64_t mi, mj;
} dt_cu_attn;
int dt_cu_attention(int dtype, const void *q, const void *k, const void *v, const void *mask, void *y,
                    const dt_cu_attn *g, void *stream);
/* The tensor-core kernel applies: float16 or bfloat16, D and Dv multiples of 16 up to 128. */
int dt_cu_attention_tc(int dtype, int64_t D, int64_t Dv);
/* The split-key kernel applies: the tensor-core kernels do and D, Dv <= 64. */
int dt_cu_attention_split_applies(int dtype, int64_t D, int64_t Dv);
/* Its warps a block (keys split that many ways) for these sizes: 1, 2 or 4. */
int dt_cu_attention_split_warps(int64_t count, int64_t S, int64_t L);
/* The split-key kernel alone (dt_cu_attention calls it; 16-byte aligned Q, K, V, Y). */
int dt_cu_attention_split(int dtype, const void *q, const void *k, const void *v, const void *mask, void *y,
                          const dt_cu_attn *g, void *stream);

/* ---- state and layer kernels (C) ---- */

/* What a layer's library call needs for one set of shapes and tactic (descriptors, the chosen
 * algorithm, the workspace it takes), made by the kernel's plan_shapes when the context plans
 * those shapes (backend.h) and reused by every run at them: cuDNN's heuristics cost about a
 * millisecond a call, and making descriptors allocates. A run that finds no plan (the
 * builder's tactic timing, a layer run at more shapes than its ways) makes one itself. Each
 * layer has its own DT_CUDA_WAYS plans (found by the layer in a growing hash table), so
 * layers never evict each other; a layer has at most two plans per set of shapes (a conv's
 * stored algorithm refused there, and the heuristic's), so a context that goes back and
 * forth between two sets of shapes keeps all of them; more replace the oldest round-robin. */
enum { DT_CUDA_WAYS = 4, DT_CUDA_KEY = 13 };
typedef struct dt_cuda_plan {
    bool used;
    /* The library refused the key's problem (DUCTILE_ERR_UNSUPPORTED, e.g. a stored cuDNN
     * algorithm at other shapes than it was timed at): kept with its message so that runs
     * at the key get the refusal again without asking the library. */
    bool refused;
    char why[160];
    int64_t key[DT_CUDA_KEY];
    void *desc[6];                  /* cuDNN: x, y, w, conv, and for conv-bias-activation
                                       bias and activation; cuBLASLt: op, a, b, c */
    int kind;                       /* 1 conv, 2 matmul */
    int algo;                       /* cuDNN: cudnnConvolutionFwdAlgo_t */
    size_t ws;
    unsigned char lt_algo[64];      /* cuBLASLt: cublasLtMatmulAlgo_t */
} dt_cuda_plan;

typedef struct dt_cuda_layer_plans {
    const ductile_layer *layer;     /* NULL: empty entry of the table */
    unsigned next;                  /* the way to replace next */
    dt_cuda_plan way[DT_CUDA_WAYS];
} dt_cuda_layer_plans;

typedef struct dt_cuda_state {
    void *cudnn;            /* cudnnHandle_t */
    void *lt;               /* cublasLtHandle_t */
    void *ws;               /* device workspace for cuDNN and cuBLASLt */
    size_t ws_cap;
    dt_cuda_layer_plans *plans; /* open addressing on the layer, cap a power of two */
    size_t plans_cap, plans_used;
    void *capture;          /* cudaStream_t for graph capture (graph.c), made on first use */
    void *marks[DT_TIMER_MARKS]; /* cudaEvent_t of dt_backend.timer_mark (timer.c), made on
                                    first use; NULL: never marked */
} dt_cuda_state;

/* The plan for (layer, key): *hit tells whether it holds that plan; otherwise the slot was
 * emptied (its old descriptors released) for the caller to fill. NULL: out of host memory
 * (the table grows when half full). The pointer is valid until the next call. */
dt_cuda_plan *dt_cuda_plan_slot(dt_cuda_state *st, const ductile_layer *L, const int64_t *key, bool *hit);
void dt_cuda_plan_release(dt_cuda_plan *p);
/* After filling slot p failed with status s (returned): DUCTILE_ERR_UNSUPPORTED keeps the key
 * as a refusal (descriptors released, the message kept); other failures empty the slot. */
ductile_status dt_cuda_plan_failed(dt_cuda_plan *p, ductile_status s);
/* A plan found (*hit): DUCTILE_OK, or its refusal again (DUCTILE_ERR_UNSUPPORTED, the message
 * the library's refusal had). */
ductile_status dt_cuda_plan_status(const dt_cuda_plan *p);

/* Loads cuBLASLt and cuDNN (dynload.c) once per process: DUCTILE_OK, or DUCTILE_ERR_UNSUPPORTED
 * naming the library and dlerror()'s words ("CUDA backend: cannot load libcudnn.so.9: ..."),
 * the same answer on every later call. $DUCTILE_CUBLASLT_LIBRARY / $DUCTILE_CUDNN_LIBRARY, where
 * set, name the file to open instead of the soname (read on the first call). */
ductile_status dt_cuda_libs_load(void);
/* A status for a CUDA runtime error code (0: DUCTILE_OK). */
ductile_status dt_cuda_check(int err, const char *what);
/* Ensures the state's workspace holds `bytes`: for runs whose plan needs more workspace than
 * the context's scratch holds, which are runs the context did not plan (the builder's tactic
 * timing); a context's execute takes the workspace from its scratch (plan_shapes). */
ductile_status dt_cuda_workspace(dt_cuda_state *st, size_t bytes);

/* Tactics (tactics.c): the backend's list for the builder (the id a run uses comes from its
 * compiled params: dt_cuda_params_tactic, layers.h). MatMul, Gemm: the rank in cuBLASLt's
 * heuristic (1..DT_CUDA_LT_TACTICS). */
enum { DT_CUDA_LT_TACTICS = 4 };
/* FusedMatMul with norm = 1: the own tensor-core kernel (dt_cu_gemm_norm) in blocks of 16 or 32
 * rows, K unsplit or split (dt_cu_gemm_norm_split); any other id: cuBLASLt's product (that
 * rank), then the LayerNorm kernel in place. */
enum { DT_CUDA_MM_NORM16 = 101, DT_CUDA_MM_NORM16_SPLITK = 102, DT_CUDA_MM_NORM32 = 103, DT_CUDA_MM_NORM32_SPLITK = 104 };
/* The own kernel's rows a block and split for tactic t at these dims on this device's
 * multiprocessors (matmul.c): false where t is not an own id or the kernel does not apply. */
bool dt_cuda_mm_norm_choice(int t, int dtype, int64_t M, int64_t N, int64_t K, int *rows, int *split);
int dt_cuda_tactics(const ductile_layer *L, const dt_view *in, int *ids, int cap);

bool dt_cuda_conv_supports(const ductile_layer *L);
/* dt_backend.prefers_nhwc (conv.c): 2-D FusedConv layers cuDNN runs, built with FP16 or BF16
 * (its half tensor-core kernels are channels last; float32 ones gain nothing from NHWC). */
bool dt_cuda_prefers_nhwc(const ductile_layer *L, unsigned flags);
bool dt_cuda_gemm_supports(const ductile_layer *L);

/* CUDA graphs and the state's memory (graph.c; backend.h says what each does). */
/* Whether work on `stream` is being recorded into a graph (any capture status but none);
 * `unknown` where CUDA cannot tell. */
bool dt_cuda_stream_capturing(void *stream, bool unknown);
ductile_status dt_cuda_capture_begin(void *state, void *stream, void **cap);
ductile_status dt_cuda_capture_end(void *state, void **graph);
ductile_status dt_cuda_graph_launch(void *graph, void *stream);
void dt_cuda_graph_free(void *graph);
void dt_cuda_state_memory(const void *state, size_t *bytes, uint64_t *stamp);
/* Device time for the builder's tactic timing (timer.c; backend.h: timer_mark). */
ductile_status dt_cuda_timer_mark(void *state, void *stream, int i);
ductile_status dt_cuda_timer_seconds(void *state, int i, int j, double *seconds);
void dt_cuda_timer_free(dt_cuda_state *st);

/* The kernel table (layers.c): the compiled kernel of an op type (dt_backend.kernel; the
 * kernels: layers.h). Every CUDA kernel is compiled: the backend has no adapter
 * (dt_backend.find_kernel NULL). Data: needs no device. */
const dt_kernel *dt_cuda_kernel(const char *op_type);
bool dt_cuda_supports(const ductile_layer *L, const dt_view *in, const dt_view *out);

#ifdef __cplusplus
}
#endif

#endif
