/* The CPU kernel of FusedMatMul (src/ops/fused.h): MatMul with a constant 2-D B as one tall
 * GEMM (every row of A's batch against the one B, M = A's rows in all), with the bias,
 * residual and activation as the GEMM's epilogue, applied per strip of C right after its last
 * K block. B is usually packed at build time (layout DT_CPU_PACK_GEMM_B).
 *
 * The product is the one the unfused MatMul computes (same GEMM, same M, N and K, so the same
 * kernels and sums), and the epilogue does the unfused Add, Add and Gelu's (or Sigmoid's and
 * Mul's) float operations in their order: the fused layer's output equals the unfused chain's bit for bit. */
#include "backend/cpu/epilogue.h"
#include "backend/cpu/families.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/kernels.h"
#include "backend/tactic.h"
#include "core/alloc.h"
#include "core/checked.h"
#include "core/status.h"
#include "ops/fused.h"
#include "ops/linalg.h"

#include <string.h>

typedef struct dt_fm_params {
    dt_epilogue epi;        /* the activation; bias and residual set per run */
    int64_t packed;         /* B's layout: 0 in place, else DT_CPU_PACK_GEMM_B */
    dt_view b;              /* packed: B's dims (w_shape) */
    bool has_bias, has_res;
    bool norm, has_lb;      /* norm = 1: the LayerNorm (Scale, optional B, eps) after the GEMM */
    float eps;
    /* A bfloat16 B's tactics per profile and point (backend/tactic.h): DT_GEMM_AS_PACKED or
     * DT_GEMM_ON_F32 (its float32 copy, dt_cpu_gemm_b_tactic), 0 = as packed. */
    int tactic_points;
    int64_t n_tactic;
    int64_t tactic[];
} dt_fm_params;

static ductile_status dt_fm_prepare(const ductile_layer *L, void **out)
{
    DT_TRY(dt_cpu_want_f32(L));
    dt_fm_act act;
    DT_TRY(dt_fused_matmul_act(L, &act));
    dt_fm_params p = {.epi = {.act = act == DT_FM_ACT_GELU ? DT_ACT_GELU : act == DT_FM_ACT_SILU ? DT_ACT_SILU : DT_ACT_NONE}};
    dt_epilogue_lean(L, &p.epi);
    p.packed = dt_attr_int(L, "packed", 0);
    DT_TRY(dt_cpu_gemm_layout_check(p.packed));
    dt_view none = {.rank = -1};
    if (p.packed) DT_TRY(dt_fused_matmul_weight(L, &none, &p.b));
    p.has_bias = L->n_in > DT_FM_BIAS && L->in[DT_FM_BIAS];
    p.has_res = L->n_in > DT_FM_R && L->in[DT_FM_R];
    p.norm = dt_attr_int(L, "norm", 0) != 0;
    p.has_lb = L->n_in > DT_FM_LB && L->in[DT_FM_LB];
    p.eps = dt_attr_float(L, "epsilon", 1e-5f);
    const int64_t *tactic;
    DT_TRY(dt_tactic_attr(L, &tactic, &p.n_tactic, &p.tactic_points));
    for (int64_t i = 0; i < p.n_tactic; i++)
        if (tactic[i] != 0 && tactic[i] != DT_GEMM_AS_PACKED &&
            !(tactic[i] == DT_GEMM_ON_F32 && p.packed == DT_CPU_PACK_GEMM_B_BF16))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'tactic'[%lld] = %lld is not a FusedMatMul tactic",
                           (long long)i, (long long)tactic[i]);
    size_t bytes;
    if (!dt_mul_size((size_t)p.n_tactic, sizeof(int64_t), &bytes) || !dt_add_size(bytes, sizeof p, &bytes))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'tactic' has %lld values", (long long)p.n_tactic);
    dt_fm_params *q = dt_malloc(bytes);
    if (!q) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory compiling node '%s'", L->name);
    *q = p;
    if (p.n_tactic) memcpy(q->tactic, tactic, (size_t)p.n_tactic * sizeof *tactic);
    *out = q;
    return DUCTILE_OK;
}

/* The GEMM of these shapes (C, bias and residual from the views; epi receives them). */
static ductile_status dt_fm_gemm(const dt_fm_params *p, const dt_view *in, const dt_view *out, int64_t tactic,
                                 dt_gemm *g, dt_epilogue *epi)
{
    dt_matmul_geom mg;
    DT_TRY(dt_matmul_geometry(&in[DT_FM_A], p->packed ? &p->b : &in[DT_FM_B], &mg));
    const float *bp;
    int64_t layout = p->packed;
    DT_TRY(dt_cpu_gemm_b(layout, &in[DT_FM_B], mg.K, mg.N, &bp));
    dt_cpu_gemm_b_tactic(&layout, &bp, mg.K, mg.N, tactic);
    *epi = p->epi;
    if (layout != p->packed) epi->act = dt_act_exact(epi->act);   /* the float32 copy: float32's bits */
    epi->col_bias = p->has_bias ? in[DT_FM_BIAS].data : NULL;
    epi->res = p->has_res ? in[DT_FM_R].data : NULL;
    /* B is 2-D, so every batch index of A meets the same B: A's rows stacked are one product. */
    *g = (dt_gemm){
        .M = mg.batch_count * mg.M, .N = mg.N, .K = mg.K, .alpha = 1.0f, .beta = 0.0f,
        .A = in[DT_FM_A].data, .lda = mg.K, .B = in[DT_FM_B].data, .ldb = mg.N,
        .C = out ? out[0].data : NULL, .ldc = mg.N, .epi = epi,
    };
    dt_cpu_gemm_use_b(g, layout, bp);
    return DUCTILE_OK;
}

static ductile_status dt_fm_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                    size_t *bytes)
{
    dt_gemm g;
    dt_epilogue epi;
    *bytes = 0;
    /* Shapes the run will refuse need nothing; the run names the fault. Either B of a
     * bfloat16 one (the builder times both). */
    for (int t = 0; t < 2; t++) {
        if (dt_fm_gemm(params, in, out, t ? DT_GEMM_ON_F32 : 0, &g, &epi)) return DUCTILE_OK;
        size_t b = dt_sgemm_scratch_bytes(&g, threads);
        if (b > *bytes) *bytes = b;
    }
    return DUCTILE_OK;
}

static ductile_status dt_fm_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_fm_params *p = params;
    dt_gemm g;
    dt_epilogue epi;
    int64_t t = ex->tactic > 0 ? ex->tactic : dt_tactic_at(p->tactic, p->n_tactic, p->tactic_points, ex->profile, ex->point);
    DT_TRY(dt_fm_gemm(p, in, out, t, &g, &epi));
    if (ex->scratch && ex->scratch_bytes >= dt_sgemm_scratch_bytes(&g, dt_pool_threads(ex->pool)))
        DT_TRY(dt_sgemm_in(&g, ex->pool, ex->scratch));
    else
        DT_TRY(dt_sgemm(&g, ex->pool));   /* a caller that planned no scratch (dt_cpu_run_once) */
    /* norm = 1: the LayerNorm's rows in place, as the LayerNormalization layer computes them. */
    if (p->norm)
        dt_cpu_layernorm_rows(g.C, in[DT_FM_SCALE].data, p->has_lb ? in[DT_FM_LB].data : NULL, g.C, g.M, g.N, p->eps,
                              ex->pool);
    return DUCTILE_OK;
}

const char *dt_cpu_fused_matmul_path(const void *params, const dt_view *in, const dt_view *out, int profile,
                                     int threads)
{
    (void)in, (void)out, (void)threads;
    const dt_fm_params *p = params;
    int64_t t = dt_tactic_at(p->tactic, p->n_tactic, p->tactic_points, profile, DUCTILE_PROFILE_OPT);
    return dt_cpu_gemm_b_path(p->packed == DT_CPU_PACK_GEMM_B_BF16 && t == DT_GEMM_ON_F32 ? DT_CPU_PACK_GEMM_B : p->packed);
}

int dt_cpu_fused_matmul_tactics(const ductile_layer *L, int *ids, int cap)
{
    /* A bfloat16 B: as packed, or its float32 copy; the timer keeps the faster. */
    if (cap < 2 || dt_attr_int(L, "packed", 0) != DT_CPU_PACK_GEMM_B_BF16) return 0;
    ids[0] = DT_GEMM_AS_PACKED;
    ids[1] = DT_GEMM_ON_F32;
    return 2;
}

const dt_kernel dt_cpu_fused_matmul_kernel = {.prepare = dt_fm_prepare, .scratch = dt_fm_scratch, .run = dt_fm_run};
