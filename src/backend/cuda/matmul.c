/* MatMul, Gemm and FusedMatMul on cuBLASLt: float32, float16 or bfloat16 tensors, always float32 compute
 * (CUBLAS_COMPUTE_32F; CUBLAS_COMPUTE_32F_FAST_TF32 for float32 layers the builder marked
 * `tf32`), alpha and beta float32.
 * Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, so B is cuBLASLt's first
 * operand and no data moves. Batched MatMul runs as one strided-batch call when the
 * broadcast batch offsets are evenly spaced, else one call per batch. Gemm's C is added by
 * cuBLASLt's BIAS epilogue where it is a bias (N values, beta 1), else by the project's kernel
 * (any broadcast, beta). FusedMatMul (ops/fused.h: B 2-D) is one
 * [rows of A, K] x [K, N] product with cuBLASLt's BIAS epilogue and the residual as its C
 * (beta 1); the erf Gelu follows as the own elementwise kernel (float32; half outputs: cuBLASLt's
 * GELU epilogue, dt_fm_call).
 * Compiled (layers.h): transposes, alpha, beta, the TF32 mark and the tactics are read once;
 * descriptors and the heuristic's algorithm are made by plan_shapes when the context plans a
 * set of shapes (the context's plan cache: they depend on the shapes and the device), and the
 * workspace is the context's scratch, so runs allocate nothing. */
#include "backend/cuda/layers.h"
#include "core/alloc.h"
#include "core/checked.h"
#include "core/dtype.h"
#include "core/env.h"
#include "core/status.h"
#include "ops/fused.h"
#include "ops/linalg.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <stdlib.h>
#include <string.h>

static ductile_status dt_lt(cublasStatus_t s, const char *what)
{
    if (s == CUBLAS_STATUS_SUCCESS) return DUCTILE_OK;
    return dt_fail(DUCTILE_ERR_INTERNAL, "cuBLASLt %s: status %d", what, (int)s);
}

_Static_assert(sizeof(cublasLtMatmulAlgo_t) <= sizeof(((dt_cuda_plan *)0)->lt_algo), "cuBLASLt algo fits the plan");

/* Descriptors and the heuristic's algorithm of that rank (1: its first choice; tactics) for
 * one problem, into an empty plan slot; `ws`: the workspace bytes the algorithm may use. */
static ductile_status dt_lt_plan(dt_cuda_state *st, dt_cuda_plan *p, int dtype, bool tf32, uint32_t align, int64_t M,
                                 int64_t N, int64_t K, bool ta, bool tb, int64_t batch, int64_t sa, int64_t sb, int64_t sy,
                                 int rank, uint64_t ws, bool bias, bool gelu, bool relu)
{
    cudaDataType_t dt = dtype == DUCTILE_FLOAT16 ? CUDA_R_16F : dtype == DUCTILE_BFLOAT16 ? CUDA_R_16BF : CUDA_R_32F;
    cublasComputeType_t ct = dtype == DUCTILE_FLOAT32 && tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    cublasOperation_t opa = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opb = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    p->kind = 2;
    ductile_status s = dt_lt(cublasLtMatmulDescCreate(&op, ct, CUDA_R_32F), "descriptor");
    p->desc[0] = op;
    if (!s) s = dt_lt(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa), "transa");
    if (!s) s = dt_lt(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb), "transb");
    /* The bias is per row of the column-major D (N rows): per output column of ours. Its
     * pointer is set per run (dt_lt_matmul_epi). ReLU applies to alpha A B + beta C + bias. */
    cublasLtEpilogue_t epi = gelu   ? (bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU)
                             : relu ? (bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU)
                             : bias ? CUBLASLT_EPILOGUE_BIAS
                                    : CUBLASLT_EPILOGUE_DEFAULT;
    if (!s && epi != CUBLASLT_EPILOGUE_DEFAULT)
        s = dt_lt(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi), "epilogue");
    /* First operand: b as stored (row-major [K,N], or [N,K] when transposed). */
    if (!s) s = dt_lt(tb ? cublasLtMatrixLayoutCreate(&la, dt, (uint64_t)K, (uint64_t)N, K)
                         : cublasLtMatrixLayoutCreate(&la, dt, (uint64_t)N, (uint64_t)K, N), "layout");
    p->desc[1] = la;
    if (!s) s = dt_lt(ta ? cublasLtMatrixLayoutCreate(&lb, dt, (uint64_t)M, (uint64_t)K, M)
                         : cublasLtMatrixLayoutCreate(&lb, dt, (uint64_t)K, (uint64_t)M, K), "layout");
    p->desc[2] = lb;
    if (!s) s = dt_lt(cublasLtMatrixLayoutCreate(&lc, dt, (uint64_t)N, (uint64_t)M, N), "layout");
    p->desc[3] = lc;
    if (!s && batch > 1) {
        int32_t bc = (int32_t)batch;
        cublasLtMatrixLayout_t ls[3] = {la, lb, lc};
        int64_t strides[3] = {sb, sa, sy};
        for (int i = 0; !s && i < 3; i++) {
            s = dt_lt(cublasLtMatrixLayoutSetAttribute(ls[i], CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof bc), "batch");
            if (!s) s = dt_lt(cublasLtMatrixLayoutSetAttribute(ls[i], CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &strides[i],
                                                               sizeof strides[i]), "batch stride");
        }
    }
    cublasLtMatmulHeuristicResult_t heur[DT_CUDA_LT_TACTICS];
    int got = 0;
    if (!s) s = dt_lt(cublasLtMatmulPreferenceCreate(&pref), "preference");
    if (!s) {
        s = dt_lt(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
                  "workspace");
    }
    /* Operands at offsets inside a buffer (batches, half elements) may be less aligned than
     * the 256 bytes the heuristic assumes: it must not pick a kernel that needs more. */
    const cublasLtMatmulPreferenceAttributes_t aligns[] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; !s && i < 4; i++)
        s = dt_lt(cublasLtMatmulPreferenceSetAttribute(pref, aligns[i], &align, sizeof align), "alignment");
    if (!s) s = dt_lt(cublasLtMatmulAlgoGetHeuristic(st->lt, op, la, lb, lc, lc, pref, rank, heur, &got), "heuristic");
    if (!s && got < 1) s = dt_fail(DUCTILE_ERR_UNSUPPORTED, "cuBLASLt has no algorithm for %lldx%lldx%lld", (long long)M,
                                   (long long)N, (long long)K);
    /* Fewer candidates than the rank (a profile's choice at other shapes): the last one. */
    if (!s) {
        int r = got < rank ? got : rank;
        memcpy(p->lt_algo, &heur[r - 1].algo, sizeof heur[r - 1].algo);
        p->ws = heur[r - 1].workspaceSize;
    }
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    return s;
}

/* The alignment a plan assumes of every operand's pointer: what a context guarantees each
 * buffer a layer reads or writes (the arena's tensors sit at 64-byte offsets,
 * runtime/memplan.h; the backend's own allocations at 256 bytes). plan_shapes sees no
 * pointers, so it plans for this; the offsets inside a buffer (batch strides, half elements)
 * come from the shapes. A caller's device buffer aligned to less gets a plan of its own, made
 * by the run. */
enum { DT_LT_ALIGN = 64 };

/* One product as cuBLASLt computes it: y[M,N] = alpha * op(a) op(b), `batch` times at the
 * given element strides (batch 1: strides 0). */
typedef struct dt_lt_call {
    int64_t M, N, K, batch, sa, sb, sy;
    bool ta, tb;
    bool bias;          /* cuBLASLt's BIAS epilogue: a vector [N] added to every row */
    bool gelu;          /* then cuBLASLt's GELU (the tanh approximation: half outputs only) */
    bool relu;          /* or its RELU epilogue (conv.c's 1x1 convs) */
    int dtype;          /* every operand's */
    int rank;           /* the tactic: the rank in cuBLASLt's heuristic (1: its first choice) */
    uint64_t bits;      /* byte offsets the operands take from their buffers' pointers */
    uint64_t ws;        /* the workspace bytes the algorithm may use */
} dt_lt_call;

static uint32_t dt_lt_align(uint64_t bits)
{
    bits |= DT_LT_ALIGN;
    return (uint32_t)(bits & (~bits + 1));
}

/* The context's plan for call c with operands aligned to `align`, made when missing. */
static ductile_status dt_lt_plan_get(const dt_cu_matmul_params *mp, dt_cuda_state *st, const dt_lt_call *c, uint32_t align,
                                     dt_cuda_plan **out)
{
    int64_t key[DT_CUDA_KEY] = {c->M, c->N, c->K, c->ta, c->tb, c->batch, c->sa, c->sb, c->sy, align, c->rank, (int64_t)c->ws,
                                c->bias | (int64_t)c->gelu << 1 | (int64_t)c->relu << 2};
    bool hit;
    dt_cuda_plan *p = dt_cuda_plan_slot(st, mp->L, key, &hit);
    if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for a cuBLASLt plan");
    *out = p;
    if (hit) return dt_cuda_plan_status(p);
    ductile_status s = dt_lt_plan(st, p, c->dtype, mp->tf32, align, c->M, c->N, c->K, c->ta, c->tb, c->batch, c->sa, c->sb,
                                  c->sy, c->rank, c->ws, c->bias, c->gelu, c->relu);
    return s ? dt_cuda_plan_failed(p, s) : DUCTILE_OK;
}

/* The workspace a run takes: the context's scratch, up to DT_CUDA_LT_WORKSPACE (what the
 * layer's scratch asked for). */
static uint64_t dt_lt_ws(const dt_exec *ex)
{
    return !ex->scratch ? 0 : ex->scratch_bytes < DT_CUDA_LT_WORKSPACE ? ex->scratch_bytes : DT_CUDA_LT_WORKSPACE;
}

/* Call c on a, b, y with the context's plan for operands aligned to `align`
 * (dt_lt_run_align: what every call of the layer's run shares); with c->bias, `bias` [N] is
 * added to every row; `res` (NULL: none), [M, N] as y (it may be y), is added with beta 1. */
static ductile_status dt_lt_matmul_epi(const dt_cu_matmul_params *mp, dt_exec *ex, const dt_lt_call *c, uint32_t align,
                                       float alpha, const void *a, const void *b, void *y, const void *bias, const void *res)
{
    dt_cuda_state *st = ex->state;
    dt_cuda_plan *p = NULL;
    DT_TRY(dt_lt_plan_get(mp, st, c, align, &p));
    const float beta = res ? 1.f : 0.f;
    if (c->bias)
        DT_TRY(dt_lt(cublasLtMatmulDescSetAttribute(p->desc[0], CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias),
                     "bias"));
    cublasLtMatmulAlgo_t algo;
    memcpy(&algo, p->lt_algo, sizeof algo);
    return dt_lt(cublasLtMatmul(st->lt, p->desc[0], &alpha, b, p->desc[1], a, p->desc[2], &beta, res ? res : y, p->desc[3], y,
                                p->desc[3], &algo, ex->scratch, (size_t)c->ws, (cudaStream_t)ex->stream),
                 "matmul");
}

static ductile_status dt_lt_matmul(const dt_cu_matmul_params *mp, dt_exec *ex, const dt_lt_call *c, uint32_t align,
                                   float alpha, const void *a, const void *b, void *y)
{
    return dt_lt_matmul_epi(mp, ex, c, align, alpha, a, b, y, NULL, NULL);
}

/* The alignment of a run's call: the shapes' offsets and the base pointers. */
static uint32_t dt_lt_run_align(const dt_lt_call *c, const void *a, const void *b, const void *y)
{
    return dt_lt_align(c->bits | (uint64_t)(uintptr_t)a | (uint64_t)(uintptr_t)b | (uint64_t)(uintptr_t)y);
}

/* conv.c's channels-last 1x1 convs: y[M, N] = a[M, K] b[N, K]^T, cuBLASLt's first choice. */
static dt_lt_call dt_lt_product_call(int dtype, int64_t M, int64_t N, int64_t K)
{
    return (dt_lt_call){.M = M, .N = N, .K = K, .batch = 1, .tb = true, .dtype = dtype, .rank = 1};
}

ductile_status dt_cuda_lt_product(const ductile_layer *L, dt_exec *ex, int dtype, const void *a, const void *b, void *y,
                                  const void *bias, const void *res, bool relu, int64_t M, int64_t N, int64_t K)
{
    dt_cu_matmul_params mp = {.L = L, .alpha = 1.f};
    dt_lt_call c = dt_lt_product_call(dtype, M, N, K);
    c.ws = dt_lt_ws(ex);
    c.bias = bias != NULL;
    c.relu = relu;
    uint32_t align = dt_lt_run_align(&c, a, b, y);
    if (res) align = dt_lt_align(align | (uint64_t)(uintptr_t)res);
    return dt_lt_matmul_epi(&mp, ex, &c, align, 1.f, a, b, y, bias, res);
}

ductile_status dt_cuda_lt_product_plan(const ductile_layer *L, const dt_exec *ex, int dtype, int64_t M, int64_t N,
                                       int64_t K, bool bias, bool relu)
{
    dt_cu_matmul_params mp = {.L = L, .alpha = 1.f};
    dt_lt_call c = dt_lt_product_call(dtype, M, N, K);
    c.bias = bias;
    c.relu = relu;
    c.ws = DT_CUDA_LT_WORKSPACE;
    dt_cuda_plan *p = NULL;
    return dt_lt_plan_get(&mp, ex->state, &c, dt_lt_align(c.bits), &p);
}

/* Element offset of batch i in an operand with per-dim batch strides. */
static int64_t dt_batch_offset(const dt_matmul_geom *g, const int64_t *stride, int64_t i)
{
    int64_t off = 0;
    for (int d = g->batch_rank - 1; d >= 0; d--) {
        off += (i % g->batch[d]) * stride[d];
        i /= g->batch[d];
    }
    return off;
}

/* What the three ops read once: the TF32 mark and the tactic per profile and point; Gemm's
 * transposes, alpha and beta; FusedMatMul's activation, inputs given and B's packing. */
static ductile_status dt_lt_prepare(const ductile_layer *L, bool gemm, void **out)
{
    dt_fm_act act = DT_FM_ACT_NONE;
    if (!strcmp(L->op_type, "FusedMatMul")) DT_TRY(dt_fused_matmul_act(L, &act));
    int64_t n = 0;
    const int64_t *t;
    int points;
    DT_TRY(dt_tactic_attr(L, &t, &n, &points));
    size_t bytes;
    if (!dt_mul_size((size_t)n, sizeof(int64_t), &bytes) || !dt_add_size(bytes, sizeof(dt_cu_matmul_params), &bytes))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'tactic' has %lld values", (long long)n);
    dt_cu_matmul_params *p = dt_malloc(bytes);
    if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory compiling node '%s'", L->name);
    *p = (dt_cu_matmul_params){.L = L, .tf32 = dt_attr_int(L, "tf32", 0) != 0, .alpha = 1.f, .tactic_points = points,
                               .n_tactic = n, .gelu = act == DT_FM_ACT_GELU, .silu = act == DT_FM_ACT_SILU};
    if (!strcmp(L->op_type, "FusedMatMul")) {
        p->has_c = L->n_in > DT_FM_BIAS && L->in[DT_FM_BIAS];   /* the bias */
        p->has_res = L->n_in > DT_FM_R && L->in[DT_FM_R];
        p->packed = dt_attr_int(L, "packed", 0);
        p->norm = dt_attr_int(L, "norm", 0) != 0;
        p->has_lb = L->n_in > DT_FM_LB && L->in[DT_FM_LB];
        p->eps = dt_attr_float(L, "epsilon", 1e-5f);
        /* DUCTILE_CUDA_MATMUL_NORM forces a norm layer's path (tests, A/B timing): own16,
         * own16_splitk, own32, own32_splitk, or lt (cuBLASLt's first choice + LayerNorm). */
        const char *force = p->norm ? getenv("DUCTILE_CUDA_MATMUL_NORM") : NULL;
        static const char *const names[] = {"own16", "own16_splitk", "own32", "own32_splitk"};
        for (int i = 0; force && i < 4; i++)
            if (!strcmp(force, names[i])) p->forced = DT_CUDA_MM_NORM16 + i;
        if (force && !strcmp(force, "lt")) p->forced = 1;
    }
    if (n) memcpy(p->tactic, t, (size_t)n * sizeof p->tactic[0]);
    if (gemm) {
        p->ta = dt_attr_int(L, "transA", 0) != 0;
        p->tb = dt_attr_int(L, "transB", 0) != 0;
        p->alpha = dt_attr_float(L, "alpha", 1.f);
        p->beta = dt_attr_float(L, "beta", 1.f);
        p->has_c = L->n_in > 2 && L->in[2];
    }
    *out = p;
    return DUCTILE_OK;
}

static ductile_status dt_matmul_prepare(const ductile_layer *L, void **out) { return dt_lt_prepare(L, false, out); }
static ductile_status dt_gemm_prepare(const ductile_layer *L, void **out) { return dt_lt_prepare(L, true, out); }

/* The workspace when there is a product to compute (shapes the run refuses: none). */
static ductile_status dt_matmul_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                        size_t *bytes)
{
    dt_matmul_geom g;
    *bytes = 0;
    if (dt_matmul_geometry(&in[0], &in[1], &g) == DUCTILE_OK && g.M && g.N && g.K && g.batch_count) *bytes = DT_CUDA_LT_WORKSPACE;
    return DUCTILE_OK;
}

/* MatMul at geometry g as cuBLASLt calls: one strided-batch call when the broadcast batch
 * offsets are evenly spaced (*even), else batch_count calls of one, which share one plan (the
 * alignment in c->bits holds for every batch's offsets). */
static void dt_matmul_call(const dt_cu_matmul_params *p, const dt_matmul_geom *g, int dtype, const dt_exec *ex, dt_lt_call *c,
                           bool *even)
{
    uint64_t es = ductile_dtype_size((ductile_dtype)dtype);
    int64_t n = g->batch_count, sa = n > 1 ? dt_batch_offset(g, g->a_stride, 1) : 0,
            sb = n > 1 ? dt_batch_offset(g, g->b_stride, 1) : 0;
    *even = true;
    for (int64_t i = 2; i < n && *even; i++)
        *even = dt_batch_offset(g, g->a_stride, i) == i * sa && dt_batch_offset(g, g->b_stride, i) == i * sb;
    int tactic = dt_cuda_params_tactic(p->tactic, p->n_tactic, p->tactic_points, ex);
    *c = (dt_lt_call){.M = g->M, .N = g->N, .K = g->K, .batch = 1, .dtype = dtype,
                      .rank = tactic > 0 && tactic <= DT_CUDA_LT_TACTICS ? tactic : 1};
    if (*even && n > 1) {
        c->batch = n;
        c->sa = sa;
        c->sb = sb;
        c->sy = g->M * g->N;
        c->bits = (uint64_t)sa * es | (uint64_t)sb * es | (uint64_t)c->sy * es;
    } else if (n > 1) {
        c->bits = (uint64_t)(g->M * g->N) * es;
        for (int64_t i = 1; i < n; i++)
            c->bits |= (uint64_t)dt_batch_offset(g, g->a_stride, i) * es | (uint64_t)dt_batch_offset(g, g->b_stride, i) * es;
    }
}

static ductile_status dt_matmul_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_matmul_params *p = params;
    dt_matmul_geom g;
    DT_TRY(dt_matmul_geometry(&in[0], &in[1], &g));
    if (g.M == 0 || g.N == 0 || g.batch_count == 0) return DUCTILE_OK;
    const char *a = in[0].data, *b = in[1].data;
    char *y = out[0].data;
    int dt = out[0].dtype;
    size_t es = ductile_dtype_size((ductile_dtype)dt);
    if (g.K == 0) return dt_cuda_check(cudaMemsetAsync(y, 0, (size_t)(g.batch_count * g.M * g.N) * es,
                                                       (cudaStream_t)ex->stream), "MatMul");
    dt_lt_call c;
    bool even;
    dt_matmul_call(p, &g, dt, ex, &c, &even);
    c.ws = dt_lt_ws(ex);
    uint32_t align = dt_lt_run_align(&c, a, b, y);
    if (even) return dt_lt_matmul(p, ex, &c, align, 1.f, a, b, y);
    for (int64_t i = 0; i < g.batch_count; i++)
        DT_TRY(dt_lt_matmul(p, ex, &c, align, 1.f, a + (size_t)dt_batch_offset(&g, g.a_stride, i) * es,
                            b + (size_t)dt_batch_offset(&g, g.b_stride, i) * es, y + (size_t)(i * g.M * g.N) * es));
    return DUCTILE_OK;
}

/* The plan the run at these shapes takes (with the context's scratch as its workspace, which
 * dt_matmul_scratch sized): made in the context's state. */
static ductile_status dt_matmul_plan_shapes(const void *params, const dt_view *in, const dt_view *out, const dt_exec *ex,
                                            size_t *bytes)
{
    dt_matmul_geom g;
    *bytes = 0;
    /* Shapes the run refuses, and empty products: nothing to plan. */
    if (dt_matmul_geometry(&in[0], &in[1], &g) != DUCTILE_OK || !g.M || !g.N || !g.K || !g.batch_count) return DUCTILE_OK;
    dt_lt_call c;
    bool even;
    dt_matmul_call(params, &g, out[0].dtype, ex, &c, &even);
    c.ws = DT_CUDA_LT_WORKSPACE;
    dt_cuda_plan *p = NULL;
    DT_TRY(dt_lt_plan_get(params, ex->state, &c, dt_lt_align(c.bits), &p));
    *bytes = DT_CUDA_LT_WORKSPACE;
    return DUCTILE_OK;
}

const dt_kernel dt_cuda_matmul_kernel = {
    .prepare = dt_matmul_prepare,
    .scratch = dt_matmul_scratch,
    .run = dt_matmul_run,
    .plan_shapes = dt_matmul_plan_shapes,
};

bool dt_cuda_gemm_supports(const ductile_layer *L)
{
    return L->n_in >= 2 && L->in[0] && L->in[1] && L->in[0]->rank == 2 && L->in[1]->rank == 2 &&
           (L->n_in < 3 || !L->in[2] || L->in[2]->rank <= 2);
}

/* Gemm's M, N, K from 2-D A and B; false for other ranks (supports() sends those to the
 * host). */
static bool dt_gemm_dims(const dt_cu_matmul_params *p, const dt_view *in, int64_t *M, int64_t *N, int64_t *K)
{
    if (in[0].rank != 2 || in[1].rank != 2) return false;
    *M = p->ta ? in[0].dims[1] : in[0].dims[0];
    *K = p->ta ? in[0].dims[0] : in[0].dims[1];
    *N = p->tb ? in[1].dims[0] : in[1].dims[1];
    return true;
}

static ductile_status dt_gemm_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                      size_t *bytes)
{
    int64_t M, N, K;
    *bytes = dt_gemm_dims(params, in, &M, &N, &K) && M && N && K ? DT_CUDA_LT_WORKSPACE : 0;
    return DUCTILE_OK;
}

/* Whether Gemm's C is a bias cuBLASLt's BIAS epilogue adds (a vector of N, or [1, N], with
 * beta 1; its pointer 16-byte aligned, which plan_shapes assumes of constants): the
 * classifier's Gemm is then one kernel, not a product and the own add_c kernel. */
static bool dt_gemm_lt_bias(const dt_cu_matmul_params *p, const dt_view *in, int64_t N)
{
    if (!p->has_c || p->beta != 1.f || in[2].rank < 1) return false;
    const dt_view *c = &in[2];
    return (c->rank == 1 && c->dims[0] == N) || (c->rank == 2 && c->dims[0] == 1 && c->dims[1] == N);
}

/* Gemm's one call (no batch). */
static dt_lt_call dt_gemm_call(const dt_cu_matmul_params *p, int64_t M, int64_t N, int64_t K, int dtype, bool bias,
                               const dt_exec *ex)
{
    int tactic = dt_cuda_params_tactic(p->tactic, p->n_tactic, p->tactic_points, ex);
    return (dt_lt_call){.M = M, .N = N, .K = K, .batch = 1, .ta = p->ta, .tb = p->tb, .dtype = dtype, .bias = bias,
                        .rank = tactic > 0 && tactic <= DT_CUDA_LT_TACTICS ? tactic : 1};
}

static ductile_status dt_gemm_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_matmul_params *p = params;
    int64_t M, N, K;
    if (!dt_gemm_dims(p, in, &M, &N, &K))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the cuda Gemm takes 2-D A and B (got ranks %d and %d)", in[0].rank,
                       in[1].rank);
    void *y = out[0].data;
    int dt = out[0].dtype;
    if (M == 0 || N == 0) return DUCTILE_OK;
    if (K == 0) {
        DT_TRY(dt_cuda_check(cudaMemsetAsync(y, 0, (size_t)(M * N) * ductile_dtype_size((ductile_dtype)dt),
                                             (cudaStream_t)ex->stream), "Gemm"));
    } else {
        bool bias = dt_gemm_lt_bias(p, in, N) && (uintptr_t)in[2].data % 16 == 0;
        dt_lt_call c = dt_gemm_call(p, M, N, K, dt, bias, ex);
        c.ws = dt_lt_ws(ex);
        DT_TRY(dt_lt_matmul_epi(p, ex, &c, dt_lt_run_align(&c, in[0].data, in[1].data, y), p->alpha, in[0].data, in[1].data,
                                y, bias ? in[2].data : NULL, NULL));
        if (bias) return DUCTILE_OK;
    }
    if (!p->has_c || in[2].rank < 0 || p->beta == 0.f) return DUCTILE_OK;
    const dt_view *c = &in[2];
    int64_t sm = 0, sn = 0;
    if (c->rank == 2) {
        sm = c->dims[0] == 1 ? 0 : c->dims[1];
        sn = c->dims[1] == 1 ? 0 : 1;
    } else if (c->rank == 1) {
        sn = c->dims[0] == 1 ? 0 : 1;
    }
    return dt_cuda_check(dt_cu_add_c(dt, y, c->data, p->beta, M, N, sm, sn, ex->stream), "Gemm C");
}

static ductile_status dt_gemm_plan_shapes(const void *params, const dt_view *in, const dt_view *out, const dt_exec *ex,
                                          size_t *bytes)
{
    int64_t M, N, K;
    *bytes = 0;
    if (!dt_gemm_dims(params, in, &M, &N, &K) || !M || !N || !K) return DUCTILE_OK;
    dt_lt_call c = dt_gemm_call(params, M, N, K, out[0].dtype, dt_gemm_lt_bias(params, in, N), ex);
    c.ws = DT_CUDA_LT_WORKSPACE;
    dt_cuda_plan *p = NULL;
    DT_TRY(dt_lt_plan_get(params, ex->state, &c, dt_lt_align(c.bits), &p));
    *bytes = DT_CUDA_LT_WORKSPACE;
    return DUCTILE_OK;
}

const dt_kernel dt_cuda_gemm_kernel = {
    .prepare = dt_gemm_prepare, .scratch = dt_gemm_scratch, .run = dt_gemm_run, .plan_shapes = dt_gemm_plan_shapes,
};

/* ---- FusedMatMul: MatMul(A, 2-D B) [+ bias] [+ R] [-> Gelu or SiLU] ---- */

static ductile_status dt_fused_matmul_prepare(const ductile_layer *L, void **out) { return dt_lt_prepare(L, false, out); }

/* B is 2-D, so A's batch stacked is one [M, K] x [K, N] product (as the CPU's kernel runs it). */
static ductile_status dt_fm_dims(const dt_view *in, int64_t *M, int64_t *N, int64_t *K)
{
    dt_matmul_geom g;
    DT_TRY(dt_matmul_geometry(&in[DT_FM_A], &in[DT_FM_B], &g));
    *M = g.batch_count * g.M;
    *N = g.N;
    *K = g.K;
    return DUCTILE_OK;
}

static ductile_status dt_fused_matmul_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                              size_t *bytes)
{
    int64_t M, N, K;
    *bytes = 0;
    if (dt_fm_dims(in, &M, &N, &K) == DUCTILE_OK && M && N && K) *bytes = DT_CUDA_LT_WORKSPACE;
    return DUCTILE_OK;
}

/* FusedMatMul's one call (A's rows stacked; no batch). The Gelu goes into cuBLASLt's epilogue
 * for half outputs without a residual, where the epilogue also adds the bias (or there is
 * none): its tanh approximation differs from the erf Gelu by at most 4.7e-4 (at x = 2.7, a
 * quarter of float16's spacing there), and it saves the Gelu's own pass over
 * [M, N] and its launch (bert_small: one per encoder layer). float32 keeps the erf Gelu: its
 * results stay the CPU's to 1e-5. DUCTILE_CUDA_LT_GELU=0: the Gelu kernel after instead (an A/B
 * switch, test_cuda_nonfinite.py's NaN check runs both). */
static bool dt_fm_lt_gelu(void)
{
    static int on = -1;
    return dt_env_switch(&on, "DUCTILE_CUDA_LT_GELU", true);
}

static dt_lt_call dt_fm_call(const dt_cu_matmul_params *p, int64_t M, int64_t N, int64_t K, int dtype, bool bias,
                             const dt_exec *ex)
{
    int tactic = dt_cuda_params_tactic(p->tactic, p->n_tactic, p->tactic_points, ex);
    bool gelu = p->gelu && dtype != DUCTILE_FLOAT32 && !p->has_res && (bias || !p->has_c) && dt_fm_lt_gelu();
    return (dt_lt_call){.M = M, .N = N, .K = K, .batch = 1, .dtype = dtype, .bias = bias, .gelu = gelu,
                        .rank = tactic > 0 && tactic <= DT_CUDA_LT_TACTICS ? tactic : 1};
}

/* norm = 1 after a product written to y: the LayerNorm kernel over y's rows in place (a warp
 * holds its row before writing it; the block kernel of rows past 1024 reads its row three
 * times, so such rows are refused: the fusion makes none, builder/fuse_matmul_norm.c). */
static ductile_status dt_fm_norm_in_place(const dt_cu_matmul_params *p, const dt_view *in, void *y, int64_t M, int64_t N,
                                          int dt, cudaStream_t s)
{
    return dt_cuda_check(dt_cu_layernorm(dt, y, in[DT_FM_SCALE].data, p->has_lb ? in[DT_FM_LB].data : NULL, y, M, N,
                                         p->eps, NULL, s),
                         "FusedMatMul");
}

/* The bias through cuBLASLt's BIAS epilogue (it reads the vector with vector loads: a pointer
 * off 16 bytes goes to the own epilogue kernel), the residual as cuBLASLt's C with beta 1
 * (D = A B + R + bias, one rounding), the erf Gelu (or SiLU) by the own elementwise kernel in place
 * (cuBLASLt's GELU epilogues are the tanh approximation, which ONNX's default Gelu is not),
 * except in half where dt_fm_call gives it to cuBLASLt. norm = 1: the own product-and-
 * LayerNorm kernel where the tactic names it, else the LayerNorm in place after. */
static ductile_status dt_fused_matmul_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_matmul_params *p = params;
    if (p->packed)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the cuda FusedMatMul takes B unpacked (packed layout %lld)",
                       (long long)p->packed);
    int64_t M, N, K;
    DT_TRY(dt_fm_dims(in, &M, &N, &K));
    if (p->norm && N > 1024)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the cuda FusedMatMul normalizes rows of at most 1024 columns (N = %lld)",
                       (long long)N);
    if (M == 0 || N == 0) return DUCTILE_OK;
    int dt = out[0].dtype, act = p->gelu ? DT_CU_GELU : p->silu ? DT_CU_SILU : DT_CU_IDENTITY;
    void *y = out[0].data;
    const void *bias = p->has_c ? in[DT_FM_BIAS].data : NULL, *res = p->has_res ? in[DT_FM_R].data : NULL;
    bool lt_bias = bias && (uintptr_t)bias % 16 == 0;
    cudaStream_t s = (cudaStream_t)ex->stream;
    if (K == 0) {   /* the product is 0: y = act(bias + R) */
        DT_TRY(dt_cuda_check(cudaMemsetAsync(y, 0, (size_t)(M * N) * ductile_dtype_size((ductile_dtype)dt), s),
                             "FusedMatMul"));
        DT_TRY(dt_cuda_check(dt_cu_epilogue(dt, y, bias, res, M, N, 1, act, 0.f, 0.f, s), "FusedMatMul"));
        return p->norm ? dt_fm_norm_in_place(p, in, y, M, N, dt, s) : DUCTILE_OK;
    }
    int rows, split, t = p->forced ? p->forced : dt_cuda_params_tactic(p->tactic, p->n_tactic, p->tactic_points, ex);
    if (p->norm && dt_cuda_mm_norm_choice(t, dt, M, N, K, &rows, &split))
        return dt_cuda_check(dt_cu_gemm_norm(dt, in[DT_FM_A].data, in[DT_FM_B].data, bias, res, in[DT_FM_SCALE].data,
                                             p->has_lb ? in[DT_FM_LB].data : NULL, y, M, N, K, act, p->eps, rows, split,
                                             s),
                             "FusedMatMul");
    dt_lt_call c = dt_fm_call(p, M, N, K, dt, lt_bias, ex);
    c.ws = dt_lt_ws(ex);
    uint32_t align = dt_lt_run_align(&c, in[DT_FM_A].data, in[DT_FM_B].data, y);
    if (res) align = dt_lt_align(align | (uint64_t)(uintptr_t)res);
    DT_TRY(dt_lt_matmul_epi(p, ex, &c, align, 1.f, in[DT_FM_A].data, in[DT_FM_B].data, y, bias, res));
    if (bias && !lt_bias)
        DT_TRY(dt_cuda_check(dt_cu_epilogue(dt, y, bias, NULL, M, N, 1, act, 0.f, 0.f, s), "FusedMatMul"));
    else if (act != DT_CU_IDENTITY && !c.gelu)
        DT_TRY(dt_cuda_check(dt_cu_unary(act, dt, y, y, M * N, 0.f, 0.f, s), "FusedMatMul"));
    return p->norm ? dt_fm_norm_in_place(p, in, y, M, N, dt, s) : DUCTILE_OK;
}

bool dt_cuda_mm_norm_choice(int t, int dtype, int64_t M, int64_t N, int64_t K, int *rows, int *split)
{
    if (t < DT_CUDA_MM_NORM16 || t > DT_CUDA_MM_NORM32_SPLITK || !dt_cu_gemm_norm_applies(dtype, M, N, K)) return false;
    *rows = t <= DT_CUDA_MM_NORM16_SPLITK ? 16 : 32;
    bool splits = t == DT_CUDA_MM_NORM16_SPLITK || t == DT_CUDA_MM_NORM32_SPLITK;
    *split = splits ? dt_cu_gemm_norm_split(M, K, *rows, dt_cuda_sm_count()) : 1;
    return true;
}

/* The plan of the run at these shapes (a bias on a 16-byte boundary, as the context's
 * constants are: the run plans its own for one that is not). */
static ductile_status dt_fused_matmul_plan_shapes(const void *params, const dt_view *in, const dt_view *out,
                                                  const dt_exec *ex, size_t *bytes)
{
    const dt_cu_matmul_params *p = params;
    int64_t M, N, K;
    *bytes = 0;
    if (p->packed || dt_fm_dims(in, &M, &N, &K) != DUCTILE_OK || !M || !N || !K) return DUCTILE_OK;
    dt_lt_call c = dt_fm_call(p, M, N, K, out[0].dtype, p->has_c, ex);
    c.ws = DT_CUDA_LT_WORKSPACE;
    dt_cuda_plan *plan = NULL;
    DT_TRY(dt_lt_plan_get(p, ex->state, &c, dt_lt_align(c.bits), &plan));
    *bytes = DT_CUDA_LT_WORKSPACE;
    return DUCTILE_OK;
}

const dt_kernel dt_cuda_fused_matmul_kernel = {
    .prepare = dt_fused_matmul_prepare,
    .scratch = dt_fused_matmul_scratch,
    .run = dt_fused_matmul_run,
    .plan_shapes = dt_fused_matmul_plan_shapes,
};
