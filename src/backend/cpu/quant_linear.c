/* QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear on the CPU, with the reference's
 * rounding: x / scale in x's type, round half to even, add the zero point, saturate. */
#include "backend/cpu/families.h"
#include "backend/cpu/nn_kernels.h"
#include "backend/cpu/quant_kernels.h"
#include "core/status.h"
#include "ops/quant.h"

typedef struct {
    const dt_view *x, *s, *z;
    dt_view *y;
    dt_qmap q;
    int64_t lo, hi;
    int div_dtype;      /* the type x / scale is rounded to (float32 when they differ) */
    bool minifloat;     /* y is float8 or float4 (dt_quant_is_minifloat) */
    bool saturate;      /* QuantizeLinear's 'saturate' (float8: out-of-range values clamp) */
} dt_qlin_job;

/* One item is one (outer, axis) row of inner elements. */
static void dt_quantize_range(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_qlin_job *j = arg;
    bool wide = j->x->dtype == DUCTILE_FLOAT64 || j->x->dtype == DUCTILE_INT32 ||
                j->s->dtype == DUCTILE_FLOAT64;
    for (int64_t it = b; it < e; it++) {
        int64_t o = it / j->q.n, a = it % j->q.n;
        for (int64_t i = 0; i < j->q.inner; i++) {
            int64_t idx = it * j->q.inner + i, si = dt_qmap_index(&j->q, o, a, i);
            double xv = dt_ew_get_f64(j->x, idx), sv = dt_ew_get_f64(j->s, si);
            double r = wide ? xv / sv : (double)dt_q_round_to(j->div_dtype, (float)xv / (float)sv);
            if (j->minifloat) { /* the cast of x / scale (float4: plus the zero point), saturated */
                double v = r + (j->z && j->y->dtype == DUCTILE_FLOAT4E2M1 ? dt_ew_get_f64(j->z, si) : 0.0);
                ((uint8_t *)j->y->data)[idx] = dt_f64_to_lowp(j->y->dtype, (float)v, j->saturate, 0);
                continue;
            }
            double v = nearbyint(r) + (j->z ? (double)dt_ew_get_i64(j->z, si) : 0.0);
            int64_t q = v < (double)j->lo ? j->lo : v > (double)j->hi ? j->hi : (int64_t)v;
            if (v != v) q = j->lo;  /* NaN */
            dt_q_store_int(j->y, idx, q);
        }
    }
}

/* QuantizeLinear and DequantizeLinear compiled: the map's attributes and 'precision', read
 * once; L for which optional inputs exist and the map's messages. */
typedef struct dt_qlin_params {
    const ductile_layer *L;
    dt_qmap_attrs qa;
    bool precision;
    bool saturate;
} dt_qlin_params;

static ductile_status dt_qlin_prepare(const ductile_layer *L, void **out)
{
    dt_qlin_params p = {.L = L, .precision = dt_attr_int(L, "precision", 0) != 0,
                        .saturate = dt_attr_int(L, "saturate", 1) != 0};
    dt_qmap_attrs_read(L, &p.qa);
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_quantize_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_qlin_params *p = params;
    dt_qlin_job j = {.x = &in[0], .s = &in[1], .z = dt_quant_present(p->L, in, 2) ? &in[2] : NULL,
                     .y = &out[0]};
    DT_TRY(dt_qmap_of(&p->qa, p->L, in, &j.q));
    j.minifloat = dt_quant_is_minifloat(out[0].dtype);
    j.saturate = p->saturate;
    if (!j.minifloat && !dt_quant_int_range(out[0].dtype, &j.lo, &j.hi))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "quantizing to %s is not supported",
                       ductile_dtype_name((ductile_dtype)out[0].dtype));
    j.div_dtype = !p->precision && in[0].dtype == in[1].dtype ? in[0].dtype : DUCTILE_FLOAT32;
    int64_t rows = j.q.outer * j.q.n;
    if (rows == 0 || j.q.inner == 0) return DUCTILE_OK;
    dt_parallel_for(ex->pool, rows, dt_cpu_grain(j.q.inner * 4), dt_quantize_range, &j);
    return DUCTILE_OK;
}

static void dt_dequantize_range(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_qlin_job *j = arg;
    bool x32 = j->x->dtype == DUCTILE_INT32;
    for (int64_t it = b; it < e; it++) {
        int64_t o = it / j->q.n, a = it % j->q.n;
        for (int64_t i = 0; i < j->q.inner; i++) {
            int64_t idx = it * j->q.inner + i, si = dt_qmap_index(&j->q, o, a, i);
            double dx;
            if (j->minifloat) { /* float8 / float4 values, exact in float32 */
                dx = (float)(dt_ew_get_f64(j->x, idx) - (j->z ? dt_ew_get_f64(j->z, si) : 0.0));
            } else {
                int64_t xv = dt_ew_get_i64(j->x, idx), zv = j->z ? dt_ew_get_i64(j->z, si) : 0;
                /* The reference widens x to float32 first (exact below 2^24) and then subtracts. */
                dx = (x32 ? (double)(float)xv : (double)xv) - (double)zv;
                if (!x32) dx = (float)dx;
            }
            double y = dx * dt_ew_get_f64(j->s, si);
            if (j->y->dtype != DUCTILE_FLOAT64 && j->s->dtype != DUCTILE_FLOAT64 && !x32)
                y = (float)y;
            dt_q_store_float(j->y, idx, y);
        }
    }
}

static ductile_status dt_dequantize_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_qlin_params *p = params;
    dt_qlin_job j = {.x = &in[0], .s = &in[1], .z = dt_quant_present(p->L, in, 2) ? &in[2] : NULL,
                     .y = &out[0], .minifloat = dt_quant_is_minifloat(in[0].dtype)};
    DT_TRY(dt_qmap_of(&p->qa, p->L, in, &j.q));
    int64_t rows = j.q.outer * j.q.n;
    if (rows == 0 || j.q.inner == 0) return DUCTILE_OK;
    dt_parallel_for(ex->pool, rows, dt_cpu_grain(j.q.inner * 4), dt_dequantize_range, &j);
    return DUCTILE_OK;
}

typedef struct {
    const float *x;
    uint8_t *y;
    float scale, zp;
} dt_dynq_job;

static void dt_dynq_range(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_dynq_job *j = arg;
    for (int64_t i = b; i < e; i++) {
        float v = nearbyintf(j->x[i] / j->scale) + j->zp;
        j->y[i] = (uint8_t)(v > 255.0f ? 255.0f : v >= 0.0f ? v : 0.0f);
    }
}

static ductile_status dt_dynquant_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const float *x = in[0].data;
    int64_t n = dt_view_count(&in[0]);
    /* The range always includes 0 so that 0 is exactly representable. */
    float mx = 0.0f, mn = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        mx = x[i] > mx ? x[i] : mx;
        mn = x[i] < mn ? x[i] : mn;
    }
    float scale = (mx == mn ? 1.0f : mx - mn) / 255.0f;
    float zp0 = 0.0f - mn / scale;
    float zp = nearbyintf(zp0 < 0.0f ? 0.0f : zp0 > 255.0f ? 255.0f : zp0);
    *(float *)out[1].data = scale;
    *(uint8_t *)out[2].data = (uint8_t)zp;
    dt_dynq_job j = {x, out[0].data, scale, zp};
    if (n > 0) dt_parallel_for(ex->pool, n, 16384, dt_dynq_range, &j);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_quantize_linear_kernel = {.prepare = dt_qlin_prepare, .run = dt_quantize_run};
const dt_kernel dt_cpu_dequantize_linear_kernel = {.prepare = dt_qlin_prepare, .run = dt_dequantize_run};
const dt_kernel dt_cpu_dynamic_quantize_linear_kernel = {.run = dt_dynquant_run};
