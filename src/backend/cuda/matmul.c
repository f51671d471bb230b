/* MatMul and Gemm on cuBLASLt: float32, float16 or bfloat16 tensors, always float32 compute
 * (CUBLAS_COMPUTE_32F; CUBLAS_COMPUTE_32F_FAST_TF32 for float32 layers the builder marked
 * `tf32`), alpha and beta float32.
 * Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, so B is cuBLASLt's first
 * operand and no data moves. Batched MatMul runs as one strided-batch call when the
 * broadcast batch offsets are evenly spaced, else one call per batch. Gemm's C is added by
 * the project's kernel (any broadcast, beta).
 * Compiled (layers.h): transposes, alpha, beta, the TF32 mark and the tactics are read once;
 * descriptors and the heuristic's algorithm are made on the first run at a set of shapes (the
 * context's plan cache: they depend on the shapes and the device) and the workspace is the
 * context's scratch, so runs allocate no device memory. */
#include "backend/cuda/layers.h"
#include "core/alloc.h"
#include "core/dtype.h"
#include "core/status.h"
#include "ops/linalg.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>

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
                                 int rank, uint64_t ws)
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

/* y[M,N] = alpha * op(a) op(b), `batch` times at the given element strides; dtype: every
 * operand's; tactic: the rank in cuBLASLt's heuristic (0: its first choice). The workspace is
 * ex->scratch (dt_lt_scratch asked for DT_CUDA_LT_WORKSPACE bytes). */
static ductile_status dt_lt_matmul(const dt_cu_matmul_params *mp, dt_exec *ex, int dtype, const void *a, const void *b,
                                   void *y, int64_t M, int64_t N, int64_t K, bool ta, bool tb, float alpha, int64_t batch,
                                   int64_t sa, int64_t sb, int64_t sy, int tactic)
{
    dt_cuda_state *st = ex->state;
    int rank = tactic > 0 && tactic <= DT_CUDA_LT_TACTICS ? tactic : 1;
    uint64_t ws = !ex->scratch ? 0 : ex->scratch_bytes < DT_CUDA_LT_WORKSPACE ? ex->scratch_bytes : DT_CUDA_LT_WORKSPACE;
    /* The alignment every operand (pointers and batch strides, in bytes) has, up to 256. */
    size_t es = ductile_dtype_size((ductile_dtype)dtype);
    uint64_t bits = (uint64_t)(uintptr_t)a | (uint64_t)(uintptr_t)b | (uint64_t)(uintptr_t)y | 256u;
    if (batch > 1) bits |= (uint64_t)sa * es | (uint64_t)sb * es | (uint64_t)sy * es;
    uint32_t align = (uint32_t)(bits & (~bits + 1));
    int64_t key[DT_CUDA_KEY] = {M, N, K, ta, tb, batch, sa, sb, sy, align, rank, (int64_t)ws};
    bool hit;
    dt_cuda_plan *p = dt_cuda_plan_slot(st, mp->L, key, &hit);
    if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for a cuBLASLt plan");
    ductile_status s = hit ? DUCTILE_OK
                           : dt_lt_plan(st, p, dtype, mp->tf32, align, M, N, K, ta, tb, batch, sa, sb, sy, rank, ws);
    if (s) {
        dt_cuda_plan_release(p);
        return s;
    }
    const float beta = 0.f;
    cublasLtMatmulAlgo_t algo;
    memcpy(&algo, p->lt_algo, sizeof algo);
    return dt_lt(cublasLtMatmul(st->lt, p->desc[0], &alpha, b, p->desc[1], a, p->desc[2], &beta, y, p->desc[3], y, p->desc[3],
                                &algo, ex->scratch, (size_t)ws, (cudaStream_t)ex->stream), "matmul");
}

ductile_status dt_cuda_lt_product(const ductile_layer *L, dt_exec *ex, int dtype, const void *a, const void *b, void *y,
                                  int64_t M, int64_t N, int64_t K)
{
    dt_cu_matmul_params mp = {.L = L, .alpha = 1.f};
    return dt_lt_matmul(&mp, ex, dtype, a, b, y, M, N, K, false, true, 1.f, 1, 0, 0, 0, 0);
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

/* What both ops read once: the TF32 mark and the tactic per profile. */
static ductile_status dt_lt_prepare(const ductile_layer *L, bool gemm, void **out)
{
    int64_t n = 0;
    const int64_t *t = dt_attr_ints(L, "tactic", &n);
    if (!t) n = 0;
    dt_cu_matmul_params *p = dt_malloc(sizeof *p + (size_t)n * sizeof p->tactic[0]);
    if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory compiling node '%s'", L->name);
    *p = (dt_cu_matmul_params){.L = L, .tf32 = dt_attr_int(L, "tf32", 0) != 0, .alpha = 1.f, .n_tactic = n};
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
    int64_t n = g.batch_count, sa = n > 1 ? dt_batch_offset(&g, g.a_stride, 1) : 0,
            sb = n > 1 ? dt_batch_offset(&g, g.b_stride, 1) : 0;
    bool even = true;
    for (int64_t i = 2; i < n && even; i++)
        even = dt_batch_offset(&g, g.a_stride, i) == i * sa && dt_batch_offset(&g, g.b_stride, i) == i * sb;
    int tactic = dt_cuda_params_tactic(p->tactic, p->n_tactic, ex);
    if (even)
        return dt_lt_matmul(p, ex, dt, a, b, y, g.M, g.N, g.K, false, false, 1.f, n, sa, sb, g.M * g.N, tactic);
    for (int64_t i = 0; i < n; i++)
        DT_TRY(dt_lt_matmul(p, ex, dt, a + (size_t)dt_batch_offset(&g, g.a_stride, i) * es,
                            b + (size_t)dt_batch_offset(&g, g.b_stride, i) * es, y + (size_t)(i * g.M * g.N) * es, g.M, g.N,
                            g.K, false, false, 1.f, 1, 0, 0, 0, tactic));
    return DUCTILE_OK;
}

const dt_kernel dt_cuda_matmul_kernel = {dt_matmul_prepare, dt_matmul_scratch, dt_matmul_run};

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
    if (K == 0)
        DT_TRY(dt_cuda_check(cudaMemsetAsync(y, 0, (size_t)(M * N) * ductile_dtype_size((ductile_dtype)dt),
                                             (cudaStream_t)ex->stream), "Gemm"));
    else
        DT_TRY(dt_lt_matmul(p, ex, dt, in[0].data, in[1].data, y, M, N, K, p->ta, p->tb, p->alpha, 1, 0, 0, 0,
                            dt_cuda_params_tactic(p->tactic, p->n_tactic, ex)));
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

const dt_kernel dt_cuda_gemm_kernel = {dt_gemm_prepare, dt_gemm_scratch, dt_gemm_run};
