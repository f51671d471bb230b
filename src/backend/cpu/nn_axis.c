/* ArgMax, ArgMin, Hardmax, CumSum, CumProd, LpNormalization, TopK: each line of n elements
 * at stride inner ([outer, n, inner] around the axis) is one parallel item. Element types
 * other than float32 go through double (integers through int64 for CumSum and CumProd, so
 * they wrap like the reference's fixed-width arithmetic only where int64 does). */
#include "backend/cpu/nn_kernels.h"
#include "ops/nn.h"
#include "core/sort.h"
#include "core/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double dt_ax_get(int t, const void *p, int64_t i)
{
    switch (t) {
    case DUCTILE_FLOAT32: return ((const float *)p)[i];
    case DUCTILE_FLOAT64: return ((const double *)p)[i];
    case DUCTILE_INT8: return ((const int8_t *)p)[i];
    case DUCTILE_UINT8: return ((const uint8_t *)p)[i];
    case DUCTILE_INT16: return ((const int16_t *)p)[i];
    case DUCTILE_UINT16: return ((const uint16_t *)p)[i];
    case DUCTILE_INT32: return ((const int32_t *)p)[i];
    case DUCTILE_UINT32: return ((const uint32_t *)p)[i];
    case DUCTILE_UINT64: return (double)((const uint64_t *)p)[i];
    default: return (double)((const int64_t *)p)[i];
    }
}

static bool dt_ax_is_int(int t) { return t != DUCTILE_FLOAT32 && t != DUCTILE_FLOAT64; }

static int64_t dt_ax_geti(int t, const void *p, int64_t i)
{
    if (t == DUCTILE_INT64) return ((const int64_t *)p)[i];
    if (t == DUCTILE_UINT64) return (int64_t)((const uint64_t *)p)[i];
    return (int64_t)dt_ax_get(t, p, i);
}

static void dt_ax_seti(int t, void *p, int64_t i, int64_t v)
{
    switch (t) {
    case DUCTILE_INT8: ((int8_t *)p)[i] = (int8_t)v; break;
    case DUCTILE_UINT8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case DUCTILE_INT16: ((int16_t *)p)[i] = (int16_t)v; break;
    case DUCTILE_UINT16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case DUCTILE_INT32: ((int32_t *)p)[i] = (int32_t)v; break;
    case DUCTILE_UINT32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    default: ((int64_t *)p)[i] = v; break;
    }
}

static void dt_ax_setf(int t, void *p, int64_t i, double v)
{
    if (t == DUCTILE_FLOAT32) ((float *)p)[i] = (float)v;
    else ((double *)p)[i] = v;
}

/* Copies element src[i] to dst[j] of the same type. */
static void dt_ax_copy(int t, void *dst, int64_t j, const void *src, int64_t i)
{
    if (dt_ax_is_int(t)) dt_ax_seti(t, dst, j, dt_ax_geti(t, src, i));
    else dt_ax_setf(t, dst, j, dt_ax_get(t, src, i));
}

typedef struct {
    const dt_view *x;
    dt_view *y, *y2;
    int64_t n, inner;
    int flag1, flag2;           /* per op: see each range function */
    int64_t k;
} dt_ax_job;

static int64_t dt_ax_base(const dt_ax_job *j, int64_t it)
{
    return (it / j->inner) * j->n * j->inner + it % j->inner;
}

/* ArgMax (flag1 = 0) / ArgMin (flag1 = 1); flag2: select_last_index. */
static void dt_argmax_range(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_ax_job *j = arg;
    int t = j->x->dtype;
    for (int64_t it = b; it < e; it++) {
        int64_t base = dt_ax_base(j, it), best = 0;
        double bv = dt_ax_get(t, j->x->data, base);
        for (int64_t c = 1; c < j->n; c++) {
            double v = dt_ax_get(t, j->x->data, base + c * j->inner);
            bool better = j->flag1 ? (v < bv || (j->flag2 && v == bv))
                                   : (v > bv || (j->flag2 && v == bv));
            if (better) {
                bv = v;
                best = c;
            }
        }
        ((int64_t *)j->y->data)[it] = best;
    }
}

/* What the ops along an axis read from their layer, once (compiled kernels). */
typedef struct dt_ax_params {
    int64_t axis;               /* the attribute or its default (not for CumSum, CumProd) */
    int flag1, flag2;           /* as dt_ax_job's, per op */
    int64_t k;                  /* CumProd: 1; LpNormalization: p; TopK: the attribute 'k' */
    bool coerce;                /* Hardmax before opset 13 */
    bool k_input;               /* TopK: k is input 1 */
    const char *k_name;         /* TopK: input 1's tensor, for messages */
} dt_ax_params;

static ductile_status dt_argmax_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_ax_params *p = params;
    int axis;
    DT_TRY(dt_axis_of(p->axis, false, in, &axis));
    int64_t outer;
    dt_ax_job j = {.x = &in[0], .y = &out[0], .flag1 = p->flag1, .flag2 = p->flag2};
    dt_axis_layout(&in[0], axis, &outer, &j.n, &j.inner);
    dt_parallel_for(ex->pool, outer * j.inner, dt_cpu_grain(j.n), dt_argmax_range, &j);
    return DUCTILE_OK;
}

static ductile_status dt_argmax_prepare(const ductile_layer *L, void **out)
{
    dt_ax_params p = {.axis = dt_attr_int(L, "axis", 0), .flag1 = strcmp(L->op_type, "ArgMin") == 0,
                      .flag2 = dt_attr_int(L, "select_last_index", 0) != 0};
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

const dt_kernel dt_cpu_argmax_kernel = {.prepare = dt_argmax_prepare, .run = dt_argmax_run};

/* Hardmax: 1 at the first maximum of each line, 0 elsewhere. */
static void dt_hardmax_range(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_ax_job *j = arg;
    const float *x = j->x->data;
    float *y = j->y->data;
    for (int64_t it = b; it < e; it++) {
        int64_t base = dt_ax_base(j, it), best = 0;
        for (int64_t c = 0; c < j->n; c++) {
            y[base + c * j->inner] = 0.0f;
            if (x[base + c * j->inner] > x[base + best * j->inner]) best = c;
        }
        if (j->n > 0) y[base + best * j->inner] = 1.0f;
    }
}

static ductile_status dt_hardmax_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_ax_params *p = params;
    int64_t outer;
    dt_ax_job j = {.x = &in[0], .y = &out[0]};
    DT_TRY(dt_softmax_layout_of(p->axis, p->coerce, &in[0], &outer, &j.n, &j.inner));
    dt_parallel_for(ex->pool, outer * j.inner, dt_cpu_grain(j.n), dt_hardmax_range, &j);
    return DUCTILE_OK;
}

static ductile_status dt_hardmax_prepare(const ductile_layer *L, void **out)
{
    dt_ax_params p = {.axis = dt_softmax_axis_attr(L), .coerce = L->opset < 13};
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

const dt_kernel dt_cpu_hardmax_kernel = {.prepare = dt_hardmax_prepare, .run = dt_hardmax_run};

/* CumSum (k = 0) / CumProd (k = 1); flag1: exclusive, flag2: reverse. */
static void dt_cum_range(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_ax_job *j = arg;
    int t = j->x->dtype;
    bool prod = j->k != 0, is_int = dt_ax_is_int(t);
    for (int64_t it = b; it < e; it++) {
        int64_t base = dt_ax_base(j, it);
        double acc = prod ? 1.0 : 0.0;
        int64_t iacc = prod ? 1 : 0;
        for (int64_t c0 = 0; c0 < j->n; c0++) {
            int64_t c = j->flag2 ? j->n - 1 - c0 : c0, at = base + c * j->inner;
            if (j->flag1) {
                if (is_int) dt_ax_seti(t, j->y->data, at, iacc);
                else dt_ax_setf(t, j->y->data, at, acc);
            }
            if (is_int) {
                /* Wrap-around like fixed-width integers instead of undefined overflow. */
                uint64_t v = (uint64_t)dt_ax_geti(t, j->x->data, at), a = (uint64_t)iacc;
                iacc = (int64_t)(prod ? a * v : a + v);
            } else {
                double v = dt_ax_get(t, j->x->data, at);
                acc = prod ? acc * v : acc + v;
            }
            if (!j->flag1) {
                if (is_int) dt_ax_seti(t, j->y->data, at, iacc);
                else dt_ax_setf(t, j->y->data, at, acc);
            }
        }
    }
}

static ductile_status dt_cum_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_ax_params *p = params;
    int axis;
    DT_TRY(dt_axis_of(0, true, in, &axis));
    int64_t outer;
    dt_ax_job j = {.x = &in[0], .y = &out[0], .flag1 = p->flag1, .flag2 = p->flag2, .k = p->k};
    if (in[0].rank == 0) {
        dt_ax_copy(in[0].dtype, out[0].data, 0, in[0].data, 0);
        return DUCTILE_OK;
    }
    dt_axis_layout(&in[0], axis, &outer, &j.n, &j.inner);
    dt_parallel_for(ex->pool, outer * j.inner, dt_cpu_grain(j.n), dt_cum_range, &j);
    return DUCTILE_OK;
}

static ductile_status dt_cum_prepare(const ductile_layer *L, void **out)
{
    dt_ax_params p = {.flag1 = dt_attr_int(L, "exclusive", 0) != 0,
                      .flag2 = dt_attr_int(L, "reverse", 0) != 0,
                      .k = strcmp(L->op_type, "CumProd") == 0};
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

const dt_kernel dt_cpu_cum_kernel = {.prepare = dt_cum_prepare, .run = dt_cum_run};

/* LpNormalization; k = p (1 or 2). A zero norm gives 0, not 0/0. */
static void dt_lpnorm_range(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_ax_job *j = arg;
    const float *x = j->x->data;
    float *y = j->y->data;
    for (int64_t it = b; it < e; it++) {
        int64_t base = dt_ax_base(j, it);
        double s = 0.0;
        for (int64_t c = 0; c < j->n; c++) {
            double v = x[base + c * j->inner];
            s += j->k == 1 ? fabs(v) : v * v;
        }
        float norm = (float)(j->k == 1 ? s : sqrt(s));
        for (int64_t c = 0; c < j->n; c++) {
            int64_t at = base + c * j->inner;
            y[at] = norm == 0.0f ? 0.0f : x[at] / norm;
        }
    }
}

static ductile_status dt_lpnorm_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_ax_params *p = params;
    int axis;
    DT_TRY(dt_axis_of(p->axis, false, in, &axis));
    int64_t outer;
    dt_ax_job j = {.x = &in[0], .y = &out[0], .k = p->k};
    dt_axis_layout(&in[0], axis, &outer, &j.n, &j.inner);
    dt_parallel_for(ex->pool, outer * j.inner, dt_cpu_grain(j.n * 2), dt_lpnorm_range, &j);
    return DUCTILE_OK;
}

static ductile_status dt_lpnorm_prepare(const ductile_layer *L, void **out)
{
    dt_ax_params p = {.axis = dt_attr_int(L, "axis", -1), .k = dt_attr_int(L, "p", 2)};
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

const dt_kernel dt_cpu_lpnorm_kernel = {.prepare = dt_lpnorm_prepare, .run = dt_lpnorm_run};

/* TopK: flag1 = largest, flag2 = sorted (ductile always sorts: an unsorted order is any
 * order). Ties go to the lower index, as the reference's stable sort does. */
typedef struct { double v; int64_t i; } dt_topk_item;

static int dt_topk_desc(const void *a, const void *b)
{
    const dt_topk_item *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static int dt_topk_asc(const void *a, const void *b)
{
    const dt_topk_item *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* TopK sorts one line at a time in the scratch: n items and dt_sort's n more. */
static ductile_status dt_topk_scratch(const void *params, const dt_view *in, const dt_view *out,
                                      int threads, size_t *bytes)
{
    const dt_ax_params *p = params;
    int axis;
    *bytes = 0;
    if (dt_axis_of(p->axis, false, in, &axis) != DUCTILE_OK) return DUCTILE_OK; /* the run names it */
    int64_t outer, n, inner;
    dt_axis_layout(&in[0], axis, &outer, &n, &inner);
    if (__builtin_mul_overflow((size_t)n, 2 * sizeof(dt_topk_item), bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "TopK: a line of %lld elements overflows", (long long)n);
    return DUCTILE_OK;
}

static ductile_status dt_topk_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_ax_params *p = params;
    int axis;
    DT_TRY(dt_axis_of(p->axis, false, in, &axis));
    int64_t k, outer, n, inner;
    DT_TRY(dt_topk_k_of(p->k_input, p->k, p->k_name, in, axis, &k));
    dt_axis_layout(&in[0], axis, &outer, &n, &inner);
    if (k == 0 || outer * inner == 0) return DUCTILE_OK;
    dt_topk_item *items = ex->scratch;
    if (!items || ex->scratch_bytes / (2 * sizeof *items) < (size_t)n)
        return dt_fail(DUCTILE_ERR_INTERNAL, "TopK: %zu bytes of scratch given for a line of %lld",
                       ex->scratch_bytes, (long long)n);
    int t = in[0].dtype;
    for (int64_t it = 0; it < outer * inner; it++) {
        int64_t base = (it / inner) * n * inner + it % inner;
        int64_t obase = (it / inner) * k * inner + it % inner;
        for (int64_t c = 0; c < n; c++)
            items[c] = (dt_topk_item){dt_ax_get(t, in[0].data, base + c * inner), c};
        dt_sort(items, (size_t)n, sizeof *items, p->flag1 ? dt_topk_desc : dt_topk_asc, items + n);
        for (int64_t c = 0; c < k; c++) {
            dt_ax_copy(t, out[0].data, obase + c * inner, in[0].data, base + items[c].i * inner);
            ((int64_t *)out[1].data)[obase + c * inner] = items[c].i;
        }
    }
    return DUCTILE_OK;
}

static ductile_status dt_topk_prepare(const ductile_layer *L, void **out)
{
    bool from_input = L->opset >= 10;
    dt_ax_params p = {.axis = dt_attr_int(L, "axis", -1), .flag1 = dt_attr_int(L, "largest", 1) != 0,
                      .k = from_input ? -1 : dt_attr_int(L, "k", -1), .k_input = from_input,
                      .k_name = from_input && L->n_in > 1 && L->in[1] ? L->in[1]->name : "K"};
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

const dt_kernel dt_cpu_topk_kernel = {.prepare = dt_topk_prepare, .scratch = dt_topk_scratch, .run = dt_topk_run};
