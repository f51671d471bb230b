/* The CPU kernel of FusedRotary (src/ops/fused.h): per row of X's last dim D, with h = D / 2,
 * y[k] = x[k] c[k] + (-x[k + h]) s[k] and y[k + h] = x[k + h] c[k + h] + x[k] s[k + h], each
 * product and the sum rounded once (no contraction under -std=c11): the unfused Mul, Mul and
 * Add's bits. Both halves of a row come from the same two loads, so Y may be X's buffer. COS
 * and SIN rows are found through their broadcast strides (FusedLayerNorm's helpers). Rows
 * split over the pool. */
#include "backend/cpu/kernels.h"
#include "backend/cpu/nn_kernels.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "ops/fused.h"

typedef struct dt_frot_job {
    const float *x, *c, *s;
    float *y;
    int64_t d;
    const dt_view *xv;
    int64_t st[2][DT_MAX_DIMS];
} dt_frot_job;

__attribute__((target_clones("avx512f", "avx2", "default")))
static void dt_frot_range(void *arg, int64_t b, int64_t e, int tid)
{
    (void)tid;
    const dt_frot_job *j = arg;
    const int64_t d = j->d, h = d / 2;
    const int axis = j->xv->rank - 1;
    for (int64_t r = b; r < e; r++) {
        const float *restrict x = j->x + r * d;
        const float *restrict c = j->c + dt_fused_layernorm_row_offset(j->xv, axis, j->st[0], r);
        const float *restrict s = j->s + dt_fused_layernorm_row_offset(j->xv, axis, j->st[1], r);
        float *y = j->y + r * d;
        /* Y in X's buffer: the safe form (both halves from the same two loads); else the
         * restrict form, which vectorizes (the safe one for every row: 1.35 -> 2.66 ms a run,
         * Llama-style 4x512 on 1 thread). */
        if (y == x) {
            for (int64_t k = 0; k < h; k++) {
                float a = x[k], bb = x[k + h];
                y[k] = a * c[k] + -bb * s[k];
                y[k + h] = bb * c[k + h] + a * s[k + h];
            }
        } else {
            float *restrict yo = y;
            for (int64_t k = 0; k < h; k++) yo[k] = x[k] * c[k] + -x[k + h] * s[k];
            for (int64_t k = 0; k < h; k++) yo[k + h] = x[k + h] * c[k + h] + x[k] * s[k + h];
        }
    }
}

static ductile_status dt_frot_prepare(const ductile_layer *L, void **out)
{
    (void)out;
    return dt_cpu_want_f32(L);
}

static ductile_status dt_frot_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)params;
    const dt_view *x = &in[DT_FROT_X];
    dt_frot_job j = {x->data, in[DT_FROT_COS].data, in[DT_FROT_SIN].data, out[0].data, x->dims[x->rank - 1], x, {{0}}};
    for (int i = 0; i < 2; i++)
        if (!dt_fused_layernorm_strides(x, x->rank - 1, &in[DT_FROT_COS + i], j.st[i]))
            return dt_fail(DUCTILE_ERR_SHAPE, "FusedRotary: input %d does not broadcast to X", DT_FROT_COS + i);
    int64_t rows = j.d ? dt_view_count(x) / j.d : 0;
    if (rows == 0) return DUCTILE_OK;
    dt_parallel_for(ex->pool, rows, dt_cpu_grain(2 * j.d), dt_frot_range, &j);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_fused_rotary_kernel = {.prepare = dt_frot_prepare, .run = dt_frot_run};
