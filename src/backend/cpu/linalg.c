/* CPU kernels of the linalg family: Conv, Gemm and MatMul on top of dt_sgemm. */
#include "backend/cpu/families.h"
#include "backend/cpu/conv.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/widen.h"
#include "core/status.h"
#include "ops/linalg.h"

#include <stdbool.h>

static ductile_status dt_cpu_conv_f32(const ductile_layer *L, const dt_view *in, dt_view *out,
                                      dt_exec *ex)
{
    dt_conv_geom g;
    DT_TRY(dt_conv_geometry(L, &in[0], &in[1], &g));
    const float *bias = L->n_in > 2 && in[2].rank >= 0 ? in[2].data : NULL;
    return dt_cpu_conv(&g, in[0].data, in[1].data, bias, out[0].data, ex->pool);
}

static ductile_status dt_cpu_gemm_f32(const ductile_layer *L, const dt_view *in, dt_view *out,
                                      dt_exec *ex)
{
    bool ta = dt_attr_int(L, "transA", 0) != 0, tb = dt_attr_int(L, "transB", 0) != 0;
    float alpha = dt_attr_float(L, "alpha", 1.0f), beta = dt_attr_float(L, "beta", 1.0f);
    int64_t M = out[0].dims[0], N = out[0].dims[1];
    int64_t K = in[0].dims[ta ? 0 : 1];
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
        .B = in[1].data, .ldb = in[1].dims[1], .trans_b = tb,
        .C = y, .ldc = N,
    };
    return dt_sgemm(&g, ex->pool);
}

typedef struct dt_mm_job {
    const dt_matmul_geom *g;
    const float *a, *b;
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
        .A = j->a + ao, .lda = g->K, .B = j->b + bo, .ldb = g->N,
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
    dt_matmul_geom g;
    DT_TRY(dt_matmul_geometry(&in[0], &in[1], &g));
    dt_mm_job j = {&g, in[0].data, in[1].data, out[0].data, 0};
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
            .A = j.a, .lda = g.K, .B = j.b, .ldb = g.N, .C = j.y, .ldc = g.N,
        };
        return dt_sgemm(&gm, ex->pool);
    }
    int threads = dt_pool_threads(ex->pool);
    double per = (double)g.M * g.N * g.K;
    /* Many small products (attention heads): one whole product per thread at a time. */
    if (threads > 1 && g.batch_count >= threads && per < 8e6) {
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
    {"Conv", dt_cpu_conv_run, NULL},
    {"Gemm", dt_cpu_gemm_run, NULL},
    {"MatMul", dt_cpu_matmul_run, NULL},
    {NULL, NULL, NULL},
};
