/* The CPU kernel of FusedMatMul (src/ops/fused.h): MatMul with a constant 2-D B as one tall
 * GEMM (every row of A's batch against the one B, M = A's rows in all), with the bias,
 * residual and activation as the GEMM's epilogue, applied per strip of C right after its last
 * K block. B is usually packed at build time (layout DT_CPU_PACK_GEMM_B).
 *
 * The product is the one the unfused MatMul computes (same GEMM, same M, N and K, so the same
 * kernels and sums), and the epilogue does the unfused Add, Add and Gelu's float operations in
 * their order: the fused layer's output equals the unfused chain's bit for bit. */
#include "backend/cpu/epilogue.h"
#include "backend/cpu/families.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/kernels.h"
#include "core/alloc.h"
#include "core/status.h"
#include "ops/fused.h"
#include "ops/linalg.h"

typedef struct dt_fm_params {
    dt_epilogue epi;        /* the activation; bias and residual set per run */
    int64_t packed;         /* B's layout: 0 in place, else DT_CPU_PACK_GEMM_B */
    dt_view b;              /* packed: B's dims (w_shape) */
    bool has_bias, has_res;
} dt_fm_params;

static ductile_status dt_fm_prepare(const ductile_layer *L, void **out)
{
    DT_TRY(dt_cpu_want_f32(L));
    bool gelu;
    DT_TRY(dt_fused_matmul_act(L, &gelu));
    dt_fm_params p = {.epi = {.act = gelu ? DT_ACT_GELU : DT_ACT_NONE}};
    p.packed = dt_attr_int(L, "packed", 0);
    DT_TRY(dt_cpu_gemm_layout_check(p.packed));
    dt_view none = {.rank = -1};
    if (p.packed) DT_TRY(dt_fused_matmul_weight(L, &none, &p.b));
    p.has_bias = L->n_in > DT_FM_BIAS && L->in[DT_FM_BIAS];
    p.has_res = L->n_in > DT_FM_R && L->in[DT_FM_R];
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

/* The GEMM of these shapes (C, bias and residual from the views; epi receives them). */
static ductile_status dt_fm_gemm(const dt_fm_params *p, const dt_view *in, const dt_view *out, dt_gemm *g,
                                 dt_epilogue *epi)
{
    dt_matmul_geom mg;
    DT_TRY(dt_matmul_geometry(&in[DT_FM_A], p->packed ? &p->b : &in[DT_FM_B], &mg));
    const float *bp;
    DT_TRY(dt_cpu_gemm_b(p->packed, &in[DT_FM_B], mg.K, mg.N, &bp));
    *epi = p->epi;
    epi->col_bias = p->has_bias ? in[DT_FM_BIAS].data : NULL;
    epi->res = p->has_res ? in[DT_FM_R].data : NULL;
    /* B is 2-D, so every batch index of A meets the same B: A's rows stacked are one product. */
    *g = (dt_gemm){
        .M = mg.batch_count * mg.M, .N = mg.N, .K = mg.K, .alpha = 1.0f, .beta = 0.0f,
        .A = in[DT_FM_A].data, .lda = mg.K, .B = in[DT_FM_B].data, .ldb = mg.N,
        .C = out ? out[0].data : NULL, .ldc = mg.N, .epi = epi,
    };
    dt_cpu_gemm_use_b(g, p->packed, bp);
    return DUCTILE_OK;
}

static ductile_status dt_fm_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                    size_t *bytes)
{
    dt_gemm g;
    dt_epilogue epi;
    *bytes = 0;
    /* Shapes the run will refuse need nothing; the run names the fault. */
    if (dt_fm_gemm(params, in, out, &g, &epi)) return DUCTILE_OK;
    *bytes = dt_sgemm_scratch_bytes(&g, threads);
    return DUCTILE_OK;
}

static ductile_status dt_fm_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    dt_gemm g;
    dt_epilogue epi;
    DT_TRY(dt_fm_gemm(params, in, out, &g, &epi));
    if (ex->scratch && ex->scratch_bytes >= dt_sgemm_scratch_bytes(&g, dt_pool_threads(ex->pool)))
        return dt_sgemm_in(&g, ex->pool, ex->scratch);
    return dt_sgemm(&g, ex->pool);   /* a caller that planned no scratch (dt_cpu_run_once) */
}

const char *dt_cpu_fused_matmul_path(const void *params, const dt_view *in, const dt_view *out, int profile,
                                     int threads)
{
    (void)in, (void)out, (void)profile, (void)threads;
    int64_t packed = ((const dt_fm_params *)params)->packed;
    return dt_cpu_gemm_b_path(packed);
}

const dt_kernel dt_cpu_fused_matmul_kernel = {.prepare = dt_fm_prepare, .scratch = dt_fm_scratch, .run = dt_fm_run};
