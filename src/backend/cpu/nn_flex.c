/* FlexAttention on the CPU (ops/nn_flex.h): every dtype computed in double, one output row
 * (batch, head, query) per item; the scores of a row live in the thread's scratch. Half
 * types take sqrt(scale) rounded to their precision, as the reference multiplies Q and K by it
 * in their dtype. */
#include "backend/cpu/elementwise_impl.h"
#include "backend/cpu/nn_kernels.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "ops/nn_flex.h"

#include <math.h>

typedef struct {
    bool has_scale;
    float scale;
} dt_flex_attrs;

typedef struct {
    const dt_flex_params *p;
    const dt_view *q, *k, *v;
    dt_view *y;
    double *scratch;   /* S doubles per thread */
    double ss;
} dt_flex_job;

static void dt_flex_store(dt_view *y, int64_t i, double x)
{
    switch (y->dtype) {
    case DUCTILE_FLOAT64: ((double *)y->data)[i] = x; break;
    case DUCTILE_FLOAT16: ((uint16_t *)y->data)[i] = dt_float_to_half((float)x); break;
    case DUCTILE_BFLOAT16: ((uint16_t *)y->data)[i] = dt_float_to_bf16((float)x); break;
    default: ((float *)y->data)[i] = (float)x; break;
    }
}

static void dt_flex_range(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_flex_job *j = arg;
    const dt_flex_params *p = j->p;
    double *s = j->scratch + (size_t)tid * (size_t)p->S;
    int64_t group = p->Hq / p->Hkv;
    for (int64_t r = begin; r < end; r++) {
        int64_t h = (r / p->L) % p->Hq, b = r / (p->L * p->Hq), hk = h / group;
        int64_t q0 = r * p->E, kv = b * p->Hkv + hk;
        double m = -INFINITY;
        for (int64_t t = 0; t < p->S; t++) {
            int64_t k0 = (kv * p->S + t) * p->E;
            double acc = 0.0;
            for (int64_t d = 0; d < p->E; d++)
                acc += (dt_ew_get_f64(j->q, q0 + d) * j->ss) * (dt_ew_get_f64(j->k, k0 + d) * j->ss);
            s[t] = acc;
            m = acc > m ? acc : m;
        }
        double sum = 0.0;
        for (int64_t t = 0; t < p->S; t++) sum += s[t] = exp(s[t] - m);
        for (int64_t d = 0; d < p->Ev; d++) {
            double acc = 0.0;
            for (int64_t t = 0; t < p->S; t++) acc += s[t] * dt_ew_get_f64(j->v, (kv * p->S + t) * p->Ev + d);
            dt_flex_store(j->y, r * p->Ev + d, acc / sum);
        }
    }
}

static ductile_status dt_flex_prepare(const ductile_layer *L, void **out)
{
    dt_flex_attrs a = {dt_attr_find(L, "scale") != NULL, dt_attr_float(L, "scale", 0.0f)};
    return dt_cpu_params_copy(&a, sizeof a, L, out);
}

static ductile_status dt_flex_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                      size_t *bytes)
{
    (void)params, (void)out;
    /* S is a checked dim of K; threads is small. */
    *bytes = in[1].rank == 4 ? (size_t)(threads > 0 ? threads : 1) * (size_t)(in[1].dims[2] + 1) * sizeof(double) : 0;
    return DUCTILE_OK;
}

static ductile_status dt_flex_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_flex_attrs *a = params;
    dt_flex_params p;
    DT_TRY(dt_flex_params_of(a->has_scale, a->scale, in, &p));
    int64_t rows = p.B * p.Hq * p.L;
    if (rows == 0 || p.Ev == 0) return DUCTILE_OK;
    size_t need = (size_t)dt_pool_threads(ex->pool) * (size_t)(p.S + 1) * sizeof(double);
    if (!ex->scratch || ex->scratch_bytes < need)
        return dt_fail(DUCTILE_ERR_INTERNAL, "FlexAttention: %zu bytes of scratch given, %zu needed", ex->scratch_bytes,
                       need);
    double ss = p.sqrt_scale;
    if (in[0].dtype == DUCTILE_FLOAT16) ss = dt_half_to_float(dt_float_to_half((float)ss));
    if (in[0].dtype == DUCTILE_BFLOAT16) ss = dt_bf16_to_float(dt_float_to_bf16((float)ss));
    dt_flex_job j = {&p, &in[0], &in[1], &in[2], &out[0], ex->scratch, ss};
    dt_parallel_for(ex->pool, rows, dt_cpu_grain(p.S * (p.E + p.Ev)), dt_flex_range, &j);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_flex_attention_kernel = {dt_flex_prepare, dt_flex_scratch, dt_flex_run};
