/* CPU kernels of the linalg family: Conv, Gemm and MatMul on top of dt_sgemm. */
#include "backend/cpu/families.h"
#include "core/alloc.h"
#include "backend/cpu/conv.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/widen.h"
#include "core/checked.h"
#include "core/status.h"
#include "ops/linalg.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The GEMM on the context's scratch when it planned enough (compiled kernels), else on
 * buffers of its own (a caller that planned none). */
static ductile_status dt_la_sgemm(const dt_gemm *g, dt_exec *ex)
{
    if (ex->scratch && ex->scratch_bytes >= dt_sgemm_scratch_bytes(g, dt_pool_threads(ex->pool)))
        return dt_sgemm_in(g, ex->pool, ex->scratch);
    return dt_sgemm(g, ex->pool);
}

/* A layout of B the kernels read, refused at load (prepare) otherwise. */
ductile_status dt_cpu_gemm_layout_check(int64_t layout)
{
    if (layout != 0 && layout != DT_CPU_PACK_GEMM_B && layout != DT_CPU_PACK_GEMM_B_BF16 &&
        layout != DT_CPU_PACK_GEMM_B_FP16)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'packed' = %lld is not a CPU layout of B",
                       (long long)layout);
    return layout == DT_CPU_PACK_GEMM_B_BF16 ? dt_cpu_bf16_check()
         : layout == DT_CPU_PACK_GEMM_B_FP16 ? dt_cpu_fp16_check() : DUCTILE_OK;
}

void dt_cpu_gemm_use_b(dt_gemm *g, int64_t layout, const float *packed)
{
    g->B_packed = layout == DT_CPU_PACK_GEMM_B ? packed : NULL;
    bool half = layout == DT_CPU_PACK_GEMM_B_BF16 || layout == DT_CPU_PACK_GEMM_B_FP16;
    g->B_bf16 = half ? (const uint16_t *)(const void *)packed : NULL;
    g->fp16 = layout == DT_CPU_PACK_GEMM_B_FP16;
}

/* B of MatMul or Gemm as the GEMM reads it: in place (*packed NULL), or (layout, the layer's
 * `packed` attribute read once) the blob the builder packed, checked against the size its
 * layout has for K x N. */
ductile_status dt_cpu_gemm_b(int64_t layout, const dt_view *b, int64_t K, int64_t N, const float **packed)
{
    *packed = NULL;
    DT_TRY(dt_cpu_gemm_layout_check(layout));
    if (layout == 0) return DUCTILE_OK;
    /* N and K come from the layer's w_shape: checked, as for any size read from a file. */
    bool half = layout == DT_CPU_PACK_GEMM_B_BF16 || layout == DT_CPU_PACK_GEMM_B_FP16;
    int64_t n16, want, k2 = half ? K + 1 : K, f32 = 0;
    /* bfloat16 or float16: N rounded up to 16 times K rounded up to even, two to a float;
     * bfloat16 then the float32 packing (N rounded up to 16 times K) */
    if (!dt_add_i64(N, 15, &n16) || !dt_mul_i64(n16 / 16 * 16, half ? k2 / 2 : K, &want) ||
        (layout == DT_CPU_PACK_GEMM_B_BF16 && !dt_mul_i64(n16 / 16 * 16, K, &f32)) || !dt_add_i64(want, f32, &want))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'w_shape' = [%lld,%lld] overflows the packed size of B",
                       (long long)K, (long long)N);
    if (b->rank != 1 || dt_view_count(b) != want)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "input 1 (B) holds %lld packed floats; layout %lld of a %lldx%lld B needs %lld",
                       (long long)dt_view_count(b), (long long)layout, (long long)K, (long long)N,
                       (long long)want);
    *packed = b->data;
    return DUCTILE_OK;
}

void dt_cpu_gemm_b_tactic(int64_t *layout, const float **packed, int64_t K, int64_t N, int64_t tactic)
{
    if (*layout != DT_CPU_PACK_GEMM_B_BF16 || !*packed || tactic != DT_GEMM_ON_F32) return;
    *packed += dt_gemm_packed_b_bf16_elems(N, K) / 2;
    *layout = DT_CPU_PACK_GEMM_B;
}

bool dt_cpu_gemm_b_packable(const ductile_layer *L, int64_t *K, int64_t *N)
{
    if (strcmp(L->op_type, "MatMul") && strcmp(L->op_type, "Gemm") && strcmp(L->op_type, "FusedMatMul")) return false;
    if (dt_attr_int(L, "packed", 0) != 0 || L->n_in < 2 || !L->in[0] || L->in[0]->data) return false;
    const ductile_tensor *w = L->in[1];
    if (!w || !w->data || w->dtype != DUCTILE_FLOAT32 || w->rank != 2) return false;
    if ((size_t)dt_tensor_count(w) * sizeof(float) != w->nbytes || w->dims[0] < 1 || w->dims[1] < 1) return false;
    bool tb = !strcmp(L->op_type, "Gemm") && dt_attr_int(L, "transB", 0) != 0;
    if (K) *K = w->dims[tb ? 1 : 0];
    if (N) *N = w->dims[tb ? 0 : 1];
    return true;
}

ductile_status dt_cpu_prepack_gemm_b(const ductile_layer *L, dt_prepacked *out)
{
    memset(out, 0, sizeof *out);
    int64_t K, N;
    if (!dt_cpu_gemm_b_packable(L, &K, &N)) return DUCTILE_OK;
    const ductile_tensor *w = L->in[1];
    bool tb = !strcmp(L->op_type, "Gemm") && dt_attr_int(L, "transB", 0) != 0;
    /* A layer marked `bf16` / `fp16` (dt_cpu_bf16_in_kernel) gets B in bfloat16 / float16. */
    bool fp16 = dt_attr_int(L, "fp16", 0) != 0, bf16 = !fp16 && dt_attr_int(L, "bf16", 0) != 0;
    /* bfloat16: the float32 packing too, after (dt_cpu_gemm_b_tactic) */
    int64_t nh = bf16 || fp16 ? dt_gemm_packed_b_bf16_elems(N, K) / 2 : 0;
    int64_t n = nh + (fp16 ? 0 : dt_gemm_packed_b_floats(N, K));
    size_t bytes;
    if (!dt_mul_size((size_t)n, sizeof(float), &bytes)) return DUCTILE_OK;
    void *buf = dt_aligned_alloc(64, bytes);
    if (!buf)
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory packing the weights of node '%s' (%lld floats)",
                       L->name, (long long)n);
    if (bf16 || fp16) dt_gemm_pack_b_half(w->data, w->dims[1], tb, K, N, fp16 ? dt_fp16_round : dt_bf16_round, buf);
    if (!fp16) dt_gemm_pack_b_full(w->data, w->dims[1], tb, K, N, (float *)buf + nh);
    *out = (dt_prepacked){.input = 1, .data = buf, .nbytes = bytes,
                          .layout = fp16 ? DT_CPU_PACK_GEMM_B_FP16 : bf16 ? DT_CPU_PACK_GEMM_B_BF16 : DT_CPU_PACK_GEMM_B};
    return DUCTILE_OK;
}

/* ---- Conv ---- */

typedef struct dt_la_conv {
    const ductile_layer *L;     /* for dtypes other than float32 (dt_cpu_via_f32) */
    dt_conv_attrs attrs;
    bool has_bias;
} dt_la_conv;

static void dt_la_conv_read(const ductile_layer *L, dt_la_conv *p)
{
    p->L = L;
    dt_conv_attrs_read(L, &p->attrs);
    p->has_bias = L->n_in > 2 && L->in[2];
}

static ductile_status dt_la_conv_exec(const dt_la_conv *p, const dt_view *in, dt_view *out, dt_exec *ex)
{
    dt_conv_geom g;
    DT_TRY(dt_conv_geometry_of(&p->attrs, &in[0], &in[1], &g));
    dt_conv_args a = {.x = in[0].data, .w = in[1].data, .bias = p->has_bias && in[2].rank >= 0 ? in[2].data : NULL,
                      .y = out[0].data};
    size_t need;
    DT_TRY(dt_cpu_conv_scratch(&g, &a, DT_CONV_AUTO, dt_pool_threads(ex->pool), &need));
    if (ex->scratch && ex->scratch_bytes >= need) a.scratch = ex->scratch;
    return dt_cpu_conv_run_algo(&g, &a, DT_CONV_AUTO, ex->pool);
}

/* ---- Gemm ---- */

typedef struct dt_la_gemm {
    const ductile_layer *L;
    bool ta, tb, has_c;
    float alpha, beta;
    int64_t packed;         /* B's layout: 0 in place, else packed at build (dt_cpu_gemm_b) */
} dt_la_gemm;

static void dt_la_gemm_read(const ductile_layer *L, dt_la_gemm *p)
{
    p->L = L;
    p->ta = dt_attr_int(L, "transA", 0) != 0;
    p->tb = dt_attr_int(L, "transB", 0) != 0;
    p->alpha = dt_attr_float(L, "alpha", 1.0f);
    p->beta = dt_attr_float(L, "beta", 1.0f);
    p->has_c = L->n_in > 2 && L->in[2];
    p->packed = dt_attr_int(L, "packed", 0);
}

static ductile_status dt_la_gemm_of(const dt_la_gemm *p, const dt_view *in, const dt_view *out, dt_gemm *g)
{
    int64_t M = out[0].dims[0], N = out[0].dims[1], K = in[0].dims[p->ta ? 0 : 1];
    const float *bp;
    DT_TRY(dt_cpu_gemm_b(p->packed, &in[1], K, N, &bp));
    *g = (dt_gemm){
        .M = M, .N = N, .K = K, .alpha = p->alpha, .beta = 0.0f,
        .A = in[0].data, .lda = in[0].dims[1], .trans_a = p->ta,
        .B = in[1].data, .ldb = bp ? 0 : in[1].dims[1], .trans_b = p->tb,
        .C = out[0].data, .ldc = out[0].dims[1],
    };
    dt_cpu_gemm_use_b(g, p->packed, bp);
    return DUCTILE_OK;
}

static ductile_status dt_la_gemm_exec(const dt_la_gemm *p, const dt_view *in, dt_view *out, dt_exec *ex)
{
    dt_gemm g;
    DT_TRY(dt_la_gemm_of(p, in, out, &g));
    int64_t M = g.M, N = g.N;
    float *y = out[0].data;
    const dt_view *c = p->has_c && in[2].rank >= 0 ? &in[2] : NULL;
    if (c && p->beta != 0.0f) {
        /* beta*C broadcast into Y first; the GEMM then accumulates onto it. */
        const float *cd = c->data;
        int64_t cm = c->rank == 2 ? c->dims[0] : 1;
        int64_t cn = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++)
                y[i * N + j] = p->beta * cd[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
        g.beta = 1.0f;
    }
    return dt_la_sgemm(&g, ex);
}

/* ---- MatMul ---- */

typedef struct dt_mm_job {
    const dt_matmul_geom *g;
    const float *a, *b;
    const float *b_packed;  /* a constant 2-D B packed at build time (then b is unused) */
    int64_t layout;         /* b_packed's (dt_cpu_gemm_use_b) */
    float *y;
    char *scratch;          /* per thread: per_thread bytes; NULL: each product allocates */
    size_t per_thread;
    volatile int failed;
} dt_mm_job;

static void dt_mm_batch_gemm(const dt_mm_job *j, int64_t bi, dt_gemm *gm)
{
    const dt_matmul_geom *g = j->g;
    int64_t ao = 0, bo = 0, rest = bi;
    for (int i = g->batch_rank - 1; i >= 0; i--) {
        int64_t idx = rest % g->batch[i];
        rest /= g->batch[i];
        ao += idx * g->a_stride[i];
        bo += idx * g->b_stride[i];
    }
    *gm = (dt_gemm){
        .M = g->M, .N = g->N, .K = g->K, .alpha = 1.0f, .beta = 0.0f,
        .A = j->a + ao, .lda = g->K, .B = j->b + bo, .ldb = g->N,
        .C = j->y + bi * g->M * g->N, .ldc = g->N,
    };
    dt_cpu_gemm_use_b(gm, j->layout, j->b_packed);
}

static void dt_mm_part(void *arg, int64_t begin, int64_t end, int tid)
{
    dt_mm_job *j = arg;
    for (int64_t bi = begin; bi < end; bi++) {
        dt_gemm gm;
        dt_mm_batch_gemm(j, bi, &gm);
        if (j->scratch)
            dt_sgemm_serial_in(&gm, j->scratch + (size_t)tid * j->per_thread);
        else if (dt_sgemm_serial(&gm) != DUCTILE_OK)
            j->failed = 1;
    }
}

/* How a MatMul of g runs: one tall GEMM, one whole product per thread, or product after
 * product over the pool; and the GEMM its scratch is sized by. */
typedef enum { DT_MM_TALL, DT_MM_PER_THREAD, DT_MM_LOOP } dt_mm_way;

static dt_mm_way dt_mm_plan(const dt_matmul_geom *g, int threads, dt_gemm *shape)
{
    /* A stacked A against a shared B ([B,S,K] x [K,N]) is one tall GEMM. */
    bool a_full = true, b_shared = true;
    for (int i = 0; i < g->batch_rank; i++) {
        if (g->batch[i] == 1) continue;
        a_full &= g->a_stride[i] != 0;
        b_shared &= g->b_stride[i] == 0;
    }
    *shape = (dt_gemm){.M = g->M, .N = g->N, .K = g->K};
    if (a_full && b_shared) {
        shape->M = g->batch_count * g->M;
        return DT_MM_TALL;
    }
    double per = (double)g->M * g->N * g->K;
    /* Many small products (attention heads): one whole product per thread at a time, once
     * they add up to ~1M multiply-adds (~20 us on one core, several times what waking the
     * workers costs); fewer, as at short sequences (4 heads of 16x16x64 = 65K), run here. */
    if (threads > 1 && g->batch_count >= threads && per < 8e6 && per * (double)g->batch_count >= 1e6)
        return DT_MM_PER_THREAD;
    return DT_MM_LOOP;
}

/* MatMul's params: the layer (for the widening path only) and B's layout, read once. */
typedef struct dt_la_matmul {
    const ductile_layer *L;
    int64_t packed;         /* 0: B in place; else packed at build (dt_cpu_gemm_b) */
    dt_view b;              /* packed: B's dims (w_shape) */
} dt_la_matmul;

static void dt_la_matmul_read(const ductile_layer *L, dt_la_matmul *p)
{
    memset(p, 0, sizeof *p);
    p->L = L;
    p->packed = dt_attr_int(L, "packed", 0);
}

/* B as MatMul's geometry sees it: its logical dims when packed. */
static const dt_view *dt_mm_b(const dt_la_matmul *p, const dt_view *in) { return p->packed ? &p->b : &in[1]; }

/* The GEMM of one product of a MatMul, and B's packed blob (NULL: in place). */
static ductile_status dt_mm_geometry(const dt_la_matmul *p, const dt_view *in, dt_matmul_geom *g, const float **bp)
{
    DT_TRY(dt_matmul_geometry(&in[0], dt_mm_b(p, in), g));
    return dt_cpu_gemm_b(p->packed, &in[1], g->K, g->N, bp);
}

static ductile_status dt_mm_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                    size_t *bytes)
{
    (void)out;
    *bytes = 0;
    dt_matmul_geom g;
    const float *bp;
    if (dt_mm_geometry(params, in, &g, &bp) != DUCTILE_OK) return DUCTILE_OK; /* the run names it */
    if (g.batch_count == 0 || g.M == 0 || g.N == 0) return DUCTILE_OK;
    dt_gemm shape;
    dt_mm_way way = dt_mm_plan(&g, threads, &shape);
    dt_cpu_gemm_use_b(&shape, ((const dt_la_matmul *)params)->packed, bp);
    if (way != DT_MM_PER_THREAD) {
        *bytes = dt_sgemm_scratch_bytes(&shape, threads);
        return DUCTILE_OK;
    }
    size_t per = (dt_gemm_serial_scratch_bytes(&shape) + 63) & ~(size_t)63;
    if (!dt_mul_size(per, (size_t)threads, bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "MatMul scratch of %d x %zu bytes is too large", threads, per);
    return DUCTILE_OK;
}

static ductile_status dt_la_matmul_exec(const dt_la_matmul *p, const dt_view *in, dt_view *out, dt_exec *ex)
{
    dt_matmul_geom g;
    const float *bp;
    DT_TRY(dt_mm_geometry(p, in, &g, &bp));
    dt_mm_job j = {&g, in[0].data, in[1].data, bp, p->packed, out[0].data, NULL, 0, 0};
    if (g.batch_count == 0 || g.M == 0 || g.N == 0) return DUCTILE_OK;
    int threads = dt_pool_threads(ex->pool);
    dt_gemm shape;
    dt_mm_way way = dt_mm_plan(&g, threads, &shape);
    if (way == DT_MM_TALL) {
        dt_gemm gm = {
            .M = g.batch_count * g.M, .N = g.N, .K = g.K, .alpha = 1.0f, .beta = 0.0f,
            .A = j.a, .lda = g.K, .B = j.b, .ldb = g.N, .C = j.y, .ldc = g.N,
        };
        dt_cpu_gemm_use_b(&gm, p->packed, bp);
        return dt_la_sgemm(&gm, ex);
    }
    if (way == DT_MM_PER_THREAD) {
        size_t need;
        DT_TRY(dt_mm_scratch(p, in, out, threads, &need));
        if (ex->scratch && ex->scratch_bytes >= need) {
            j.scratch = ex->scratch;
            j.per_thread = need / (size_t)threads;
        }
        dt_parallel_for(ex->pool, g.batch_count, 1, dt_mm_part, &j);
        if (j.failed)
            return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for MatMul packing buffers");
        return DUCTILE_OK;
    }
    for (int64_t bi = 0; bi < g.batch_count; bi++) {
        dt_gemm gm;
        dt_mm_batch_gemm(&j, bi, &gm);
        DT_TRY(dt_la_sgemm(&gm, ex));
    }
    return DUCTILE_OK;
}

/* ---- compiled (backend.h) ----
 * float16, bfloat16 and float64 run in float32 (see widen.h): the run calls itself on the
 * float32 copies, which its scratch function reserved next to the GEMM's scratch. */

static ductile_status dt_la_conv_prepare(const ductile_layer *L, void **out)
{
    dt_la_conv *p = dt_malloc(sizeof *p);
    if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory compiling a Conv");
    dt_la_conv_read(L, p);
    *out = p;
    return DUCTILE_OK;
}

static ductile_status dt_la_conv_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                         size_t *bytes)
{
    const dt_la_conv *p = params;
    dt_conv_geom g;
    *bytes = 0;
    if (dt_conv_geometry_of(&p->attrs, &in[0], &in[1], &g)) return DUCTILE_OK;
    dt_conv_args a = {0};
    DT_TRY(dt_cpu_conv_scratch(&g, &a, DT_CONV_AUTO, threads, bytes));
    return dt_cpu_via_f32_scratch(p->L, in, out, 0x7, bytes);
}

static ductile_status dt_la_conv_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_la_conv *p = params;
    if (in[0].dtype != DUCTILE_FLOAT32) return dt_cpu_via_f32_run(p->L, p, dt_la_conv_run, in, out, ex, 0x7);
    return dt_la_conv_exec(p, in, out, ex);
}

static ductile_status dt_la_gemm_prepare(const ductile_layer *L, void **out)
{
    dt_la_gemm *p = dt_malloc(sizeof *p);
    if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory compiling a Gemm");
    dt_la_gemm_read(L, p);
    ductile_status s = dt_cpu_gemm_layout_check(p->packed);
    if (s) {
        dt_free(p);
        return s;
    }
    *out = p;
    return DUCTILE_OK;
}

static ductile_status dt_la_gemm_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                         size_t *bytes)
{
    dt_gemm g;
    *bytes = 0;
    if (out[0].rank != 2 || dt_la_gemm_of(params, in, out, &g)) return DUCTILE_OK;
    *bytes = dt_sgemm_scratch_bytes(&g, threads);
    return dt_cpu_via_f32_scratch(((const dt_la_gemm *)params)->L, in, out, 0x7, bytes);
}

static ductile_status dt_la_gemm_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_la_gemm *p = params;
    if (in[0].dtype != DUCTILE_FLOAT32) return dt_cpu_via_f32_run(p->L, p, dt_la_gemm_run, in, out, ex, 0x7);
    return dt_la_gemm_exec(p, in, out, ex);
}

static ductile_status dt_la_matmul_prepare(const ductile_layer *L, void **out)
{
    dt_la_matmul *p = dt_malloc(sizeof *p);
    if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory compiling a MatMul");
    dt_la_matmul_read(L, p);
    /* A packed B's dims come from w_shape: read (and checked) here, once. */
    dt_view none = {.rank = -1};
    ductile_status s = dt_cpu_gemm_layout_check(p->packed);
    if (!s && p->packed) s = dt_packed_weight_view(L, 1, &none, 2, 2, &p->b);
    if (s) {
        dt_free(p);
        return s;
    }
    *out = p;
    return DUCTILE_OK;
}

static ductile_status dt_la_matmul_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_la_matmul *p = params;
    if (in[0].dtype != DUCTILE_FLOAT32) return dt_cpu_via_f32_run(p->L, p, dt_la_matmul_run, in, out, ex, 0x7);
    return dt_la_matmul_exec(p, in, out, ex);
}

const char *dt_cpu_gemm_b_path(int64_t packed)
{
    return packed == DT_CPU_PACK_GEMM_B_FP16 ? "packed_b.fp16"
         : packed == DT_CPU_PACK_GEMM_B_BF16 ? "packed_b.bf16" : packed ? "packed_b" : NULL;
}

/* Profiles' names for the paths (backend.h: dt_backend.kernel_path). */
const char *dt_cpu_gemm_path(const void *params, const dt_view *in, const dt_view *out, int profile, int threads)
{
    (void)in, (void)out, (void)profile, (void)threads;
    int64_t packed = ((const dt_la_gemm *)params)->packed;
    return dt_cpu_gemm_b_path(packed);
}

const char *dt_cpu_matmul_path(const void *params, const dt_view *in, const dt_view *out, int profile,
                               int threads)
{
    (void)out, (void)profile;
    const dt_la_matmul *p = params;
    dt_matmul_geom g;
    const float *bp;
    if (in[0].dtype != DUCTILE_FLOAT32) return "widened";
    if (dt_mm_geometry(p, in, &g, &bp) != DUCTILE_OK) return NULL;
    dt_gemm shape;
    bool bf16 = p->packed == DT_CPU_PACK_GEMM_B_BF16, fp16 = p->packed == DT_CPU_PACK_GEMM_B_FP16;
    switch (dt_mm_plan(&g, threads, &shape)) {
    case DT_MM_TALL: return fp16 ? "tall.packed_b.fp16" : bf16 ? "tall.packed_b.bf16" : bp ? "tall.packed_b" : "tall";
    case DT_MM_PER_THREAD: return fp16 ? "per_thread.fp16" : bf16 ? "per_thread.bf16" : "per_thread";
    default: return fp16 ? "loop.packed_b.fp16" : bf16 ? "loop.packed_b.bf16" : bp ? "loop.packed_b" : "loop";
    }
}

static const dt_kernel dt_la_conv_kernel = {
    .prepare = dt_la_conv_prepare, .scratch = dt_la_conv_scratch, .run = dt_la_conv_run,
};
static const dt_kernel dt_la_gemm_kernel = {
    .prepare = dt_la_gemm_prepare, .scratch = dt_la_gemm_scratch, .run = dt_la_gemm_run,
};
/* The GEMM's scratch, and the widening's for other dtypes than float32 (widen.h). */
static ductile_status dt_la_matmul_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                           size_t *bytes)
{
    DT_TRY(dt_mm_scratch(params, in, out, threads, bytes));
    return dt_cpu_via_f32_scratch(((const dt_la_matmul *)params)->L, in, out, 0x7, bytes);
}

static const dt_kernel dt_la_matmul_kernel = {
    .prepare = dt_la_matmul_prepare, .scratch = dt_la_matmul_scratch, .run = dt_la_matmul_run,
};

const dt_cpu_kernel dt_cpu_linalg[] = {
    {"Conv", NULL, &dt_la_conv_kernel},
    {"Gemm", NULL, &dt_la_gemm_kernel},
    {"MatMul", NULL, &dt_la_matmul_kernel},
    {NULL, NULL, NULL},
};
