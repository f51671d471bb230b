/* CPU kernels of the linalg family: Conv, Gemm and MatMul on top of dt_sgemm. */
#include "backend/cpu/families.h"
#include "backend/cpu/conv.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/widen.h"
#include "core/checked.h"
#include "core/status.h"
#include "ops/linalg.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static ductile_status dt_cpu_conv_f32(const ductile_layer *L, const dt_view *in, dt_view *out,
                                      dt_exec *ex)
{
    dt_conv_geom g;
    DT_TRY(dt_conv_geometry(L, &in[0], &in[1], &g));
    const float *bias = L->n_in > 2 && in[2].rank >= 0 ? in[2].data : NULL;
    return dt_cpu_conv(&g, in[0].data, in[1].data, bias, out[0].data, ex->pool);
}

/* B of MatMul or Gemm as the GEMM reads it: in place (*packed NULL), or (`packed`) the blob
 * the builder packed, checked against the size its layout has for K x N. */
static ductile_status dt_cpu_gemm_b(const ductile_layer *L, const dt_view *b, int64_t K, int64_t N,
                                    const float **packed)
{
    *packed = NULL;
    int64_t layout = dt_attr_int(L, "packed", 0);
    if (layout == 0) return DUCTILE_OK;
    if (layout != DT_CPU_PACK_GEMM_B)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'packed' = %lld is not a CPU layout of B",
                       (long long)layout);
    /* N and K come from the layer's w_shape: checked, as for any size read from a file. */
    int64_t n16, want;
    if (!dt_add_i64(N, 15, &n16) || !dt_mul_i64(n16 / 16 * 16, K, &want))
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

ductile_status dt_cpu_prepack_gemm_b(const ductile_layer *L, dt_prepacked *out)
{
    memset(out, 0, sizeof *out);
    if (dt_attr_int(L, "packed", 0) != 0 || L->n_in < 2 || !L->in[0] || L->in[0]->data) return DUCTILE_OK;
    const ductile_tensor *w = L->in[1];
    if (!w || !w->data || w->dtype != DUCTILE_FLOAT32 || w->rank != 2) return DUCTILE_OK;
    if ((size_t)dt_tensor_count(w) * sizeof(float) != w->nbytes || w->dims[0] < 1 || w->dims[1] < 1)
        return DUCTILE_OK;
    bool tb = !strcmp(L->op_type, "Gemm") && dt_attr_int(L, "transB", 0) != 0;
    int64_t K = w->dims[tb ? 1 : 0], N = w->dims[tb ? 0 : 1];
    int64_t n = dt_gemm_packed_b_floats(N, K);
    size_t bytes;
    if (!dt_mul_size((size_t)n, sizeof(float), &bytes)) return DUCTILE_OK;
    void *buf = NULL;
    if (posix_memalign(&buf, 64, bytes) != 0)
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory packing the weights of node '%s' (%lld floats)",
                       L->name, (long long)n);
    dt_gemm_pack_b_full(w->data, w->dims[1], tb, K, N, buf);
    *out = (dt_prepacked){.input = 1, .data = buf, .nbytes = bytes, .layout = DT_CPU_PACK_GEMM_B};
    return DUCTILE_OK;
}

static ductile_status dt_cpu_gemm_f32(const ductile_layer *L, const dt_view *in, dt_view *out,
                                      dt_exec *ex)
{
    bool ta = dt_attr_int(L, "transA", 0) != 0, tb = dt_attr_int(L, "transB", 0) != 0;
    float alpha = dt_attr_float(L, "alpha", 1.0f), beta = dt_attr_float(L, "beta", 1.0f);
    int64_t M = out[0].dims[0], N = out[0].dims[1];
    int64_t K = in[0].dims[ta ? 0 : 1];
    const float *bp;
    DT_TRY(dt_cpu_gemm_b(L, &in[1], K, N, &bp));
    float *y = out[0].data;
    const dt_view *c = L->n_in > 2 && in[2].rank >= 0 ? &in[2] : NULL;
    if (!c || beta == 0.0f) {
        beta = 0.0f;
    } else {
        /* beta*C broadcast into Y first; the GEMM then accumulates onto it. */
        const float *cd = c->data;
        int64_t cm = c->rank == 2 ? c->dims[0] : 1;
        int64_t cn = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++)
                y[i * N + j] = beta * cd[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
        beta = 1.0f;
    }
    dt_gemm g = {
        .M = M, .N = N, .K = K, .alpha = alpha, .beta = beta,
        .A = in[0].data, .lda = in[0].dims[1], .trans_a = ta,
        .B = in[1].data, .ldb = bp ? 0 : in[1].dims[1], .trans_b = tb, .B_packed = bp,
        .C = y, .ldc = N,
    };
    return dt_sgemm(&g, ex->pool);
}

typedef struct dt_mm_job {
    const dt_matmul_geom *g;
    const float *a, *b;
    const float *b_packed;  /* a constant 2-D B packed at build time (then b is unused) */
    float *y;
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
        .A = j->a + ao, .lda = g->K, .B = j->b + bo, .ldb = g->N, .B_packed = j->b_packed,
        .C = j->y + bi * g->M * g->N, .ldc = g->N,
    };
}

static void dt_mm_part(void *arg, int64_t begin, int64_t end, int tid)
{
    dt_mm_job *j = arg;
    for (int64_t bi = begin; bi < end; bi++) {
        dt_gemm gm;
        dt_mm_batch_gemm(j, bi, &gm);
        if (dt_sgemm_serial(&gm) != DUCTILE_OK) j->failed = 1;
    }
}

static ductile_status dt_cpu_matmul_f32(const ductile_layer *L, const dt_view *in, dt_view *out,
                                        dt_exec *ex)
{
    dt_view b;
    DT_TRY(dt_packed_weight_view(L, 1, &in[1], 2, 2, &b));
    dt_matmul_geom g;
    DT_TRY(dt_matmul_geometry(&in[0], &b, &g));
    const float *bp;
    DT_TRY(dt_cpu_gemm_b(L, &in[1], g.K, g.N, &bp));
    dt_mm_job j = {&g, in[0].data, in[1].data, bp, out[0].data, 0};
    if (g.batch_count == 0 || g.M == 0 || g.N == 0) return DUCTILE_OK;
    /* A stacked A against a shared B ([B,S,K] x [K,N]) is one tall GEMM. */
    bool a_full = true, b_shared = true;
    for (int i = 0; i < g.batch_rank; i++) {
        if (g.batch[i] == 1) continue;
        a_full &= g.a_stride[i] != 0;
        b_shared &= g.b_stride[i] == 0;
    }
    if (a_full && b_shared) {
        dt_gemm gm = {
            .M = g.batch_count * g.M, .N = g.N, .K = g.K, .alpha = 1.0f, .beta = 0.0f,
            .A = j.a, .lda = g.K, .B = j.b, .ldb = g.N, .B_packed = bp, .C = j.y, .ldc = g.N,
        };
        return dt_sgemm(&gm, ex->pool);
    }
    int threads = dt_pool_threads(ex->pool);
    double per = (double)g.M * g.N * g.K;
    /* Many small products (attention heads): one whole product per thread at a time, once
     * they add up to ~1M multiply-adds (~20 us on one core, several times what waking the
     * workers costs); fewer, as at short sequences (4 heads of 16x16x64 = 65K), run here. */
    if (threads > 1 && g.batch_count >= threads && per < 8e6 && per * (double)g.batch_count >= 1e6) {
        dt_parallel_for(ex->pool, g.batch_count, 1, dt_mm_part, &j);
        if (j.failed)
            return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for MatMul packing buffers");
        return DUCTILE_OK;
    }
    for (int64_t bi = 0; bi < g.batch_count; bi++) {
        dt_gemm gm;
        dt_mm_batch_gemm(&j, bi, &gm);
        DT_TRY(dt_sgemm(&gm, ex->pool));
    }
    return DUCTILE_OK;
}

/* float16, bfloat16 and float64 run in float32 (see widen.h). */
#define DT_LA_ENTRY(name)                                                                      \
    static ductile_status dt_cpu_##name##_run(const ductile_layer *L, const dt_view *in,       \
                                              dt_view *out, dt_exec *ex)                       \
    {                                                                                          \
        if (in[0].dtype == DUCTILE_FLOAT32) return dt_cpu_##name##_f32(L, in, out, ex);        \
        return dt_cpu_via_f32(L, in, out, ex, 0x7, dt_cpu_##name##_f32);                       \
    }
DT_LA_ENTRY(conv)
DT_LA_ENTRY(gemm)
DT_LA_ENTRY(matmul)

const dt_cpu_kernel dt_cpu_linalg[] = {
    {"Conv", dt_cpu_conv_run},
    {"Gemm", dt_cpu_gemm_run},
    {"MatMul", dt_cpu_matmul_run},
    {NULL, NULL},
};
