/* ReduceSum, Mean, Max, Min, L1, L2, SumSquare, LogSum, LogSumExp, Prod over any set of axes. Adjacent axes that are
 * all kept or all reduced merge into one group and unit axes drop out, so the usual cases
 * (trailing axes, H and W of NCHW) become one contiguous run per output element. */
#include "backend/cpu/nn_kernels.h"
#include "ops/nn.h"
#include "backend/cpu/widen.h"
#include "core/status.h"

#include <math.h>
#include <string.h>

enum {
    DT_RED_SUM, DT_RED_MEAN, DT_RED_MAX, DT_RED_MIN, DT_RED_L1, DT_RED_L2, DT_RED_SUMSQ,
    DT_RED_LOGSUM, DT_RED_PROD, DT_RED_LSE
};

typedef struct {
    const float *x;
    float *y;
    int op;
    int nk, nr;                       /* kept and reduced groups, outermost first */
    int64_t ksize[DT_MAX_DIMS], kstride[DT_MAX_DIMS];
    int64_t rsize[DT_MAX_DIMS], rstride[DT_MAX_DIMS];
    int64_t inner;                    /* contiguous run: the last group if reduced, else 1 */
    int64_t runs, count;              /* runs per output element; elements reduced */
} dt_reduce_job;

/* The reduction of one contiguous run; m is LogSumExp's shift. */
static float dt_reduce_run(int op, const float *x, int64_t n, float m)
{
    float acc = 0.0f;
    switch (op) {
    case DT_RED_MAX: return dt_cpu_max_f32(x, n);
    case DT_RED_MIN:
        acc = INFINITY;
        for (int64_t i = 0; i < n; i++) acc = dt_min_keep_nan(x[i], acc);
        return acc;
    case DT_RED_L1:
        for (int64_t i = 0; i < n; i++) acc += fabsf(x[i]);
        return acc;
    case DT_RED_L2:
    case DT_RED_SUMSQ:
        for (int64_t i = 0; i < n; i++) acc += x[i] * x[i];
        return acc;
    case DT_RED_PROD:
        acc = 1.0f;
        for (int64_t i = 0; i < n; i++) acc *= x[i];
        return acc;
    case DT_RED_LSE:
        for (int64_t i = 0; i < n; i++) acc += expf(x[i] - m);
        return acc;
    /* LogSumExp's shift: the largest finite element (infinities would make x - m NaN). */
    case -DT_RED_LSE:
        acc = -INFINITY;
        for (int64_t i = 0; i < n; i++)
            if (isfinite(x[i]) && x[i] > acc) acc = x[i];
        return acc;
    default: return dt_cpu_sum_f32(x, n);
    }
}

static float dt_reduce_init(int op)
{
    return op == DT_RED_MAX || op == -DT_RED_LSE ? -INFINITY
           : op == DT_RED_MIN                    ? INFINITY
           : op == DT_RED_PROD                   ? 1.0f
                                                 : 0.0f;
}

/* Folds the runs of output element (base) with op. */
static float dt_reduce_fold(const dt_reduce_job *j, int op, int64_t base, float m)
{
    int nr_outer = j->inner > 1 ? j->nr - 1 : j->nr;
    float acc = dt_reduce_init(op);
    for (int64_t q = 0; q < j->runs; q++) {
        int64_t off = base, rq = q;
        for (int g = nr_outer - 1; g >= 0; g--) {
            off += (rq % j->rsize[g]) * j->rstride[g];
            rq /= j->rsize[g];
        }
        float v = dt_reduce_run(op, j->x + off, j->inner, m);
        if (op == DT_RED_MAX || op == -DT_RED_LSE) acc = dt_max_keep_nan(v, acc);
        else if (op == DT_RED_MIN) acc = dt_min_keep_nan(v, acc);
        else if (op == DT_RED_PROD) acc *= v;
        else acc += v;
    }
    return acc;
}

static float dt_reduce_finish(int op, float acc, int64_t count, float m)
{
    switch (op) {
    case DT_RED_MEAN: return acc / (float)count;
    case DT_RED_L2: return sqrtf(acc);
    case DT_RED_LOGSUM: return logf(acc);
    case DT_RED_LSE: return logf(acc) + m;
    default: return acc;
    }
}

static void dt_reduce_range(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_reduce_job *j = arg;
    for (int64_t o = b; o < e; o++) {
        int64_t base = 0, rem = o;
        for (int g = j->nk - 1; g >= 0; g--) {
            base += (rem % j->ksize[g]) * j->kstride[g];
            rem /= j->ksize[g];
        }
        float m = 0.0f;
        if (j->op == DT_RED_LSE) {
            m = dt_reduce_fold(j, -DT_RED_LSE, base, 0.0f);
            if (m == -INFINITY) m = 0.0f;
        }
        j->y[o] = dt_reduce_finish(j->op, dt_reduce_fold(j, j->op, base, m), j->count, m);
    }
}

static const struct { const char *name; int op; } dt_reduce_ops[] = {
    {"ReduceSum", DT_RED_SUM}, {"ReduceMean", DT_RED_MEAN}, {"ReduceMax", DT_RED_MAX},
    {"ReduceMin", DT_RED_MIN}, {"ReduceL1", DT_RED_L1}, {"ReduceL2", DT_RED_L2},
    {"ReduceSumSquare", DT_RED_SUMSQ}, {"ReduceLogSum", DT_RED_LOGSUM},
    {"ReduceProd", DT_RED_PROD}, {"ReduceLogSumExp", DT_RED_LSE},
};

/* A reduction compiled: its fold and its axes attributes, read once. */
typedef struct dt_reduce_params {
    const ductile_layer *L;     /* operand counts and names when widening (widen.h) */
    dt_reduce_attrs a;
    int op;
    int n_in;
} dt_reduce_params;

static ductile_status dt_reduce_exec(const dt_reduce_params *p, const dt_view *in, dt_view *out,
                                     dt_exec *ex)
{
    bool red[DT_MAX_DIMS], identity;
    DT_TRY(dt_reduce_axes_of(&p->a, p->n_in, in, red, &identity));
    int64_t n_out = dt_view_count(&out[0]);
    if (identity) {
        memcpy(out[0].data, in[0].data, (size_t)n_out * sizeof(float));
        return DUCTILE_OK;
    }
    dt_reduce_job j = {.x = in[0].data, .y = out[0].data, .op = p->op, .inner = 1, .runs = 1, .count = 1};
    /* Group sizes, outermost first; group strides follow from the sizes. */
    int64_t gsize[DT_MAX_DIMS];
    bool gred[DT_MAX_DIMS];
    int ng = 0;
    for (int a = 0; a < in[0].rank; a++) {
        int64_t d = in[0].dims[a];
        if (red[a]) j.count *= d;
        if (d == 1) continue;
        if (ng > 0 && gred[ng - 1] == red[a]) {
            gsize[ng - 1] *= d;
        } else {
            gsize[ng] = d;
            gred[ng++] = red[a];
        }
    }
    int64_t stride = 1, gstride[DT_MAX_DIMS];
    for (int g = ng - 1; g >= 0; g--) {
        gstride[g] = stride;
        stride *= gsize[g];
    }
    for (int g = 0; g < ng; g++) {
        if (gred[g]) {
            j.rsize[j.nr] = gsize[g];
            j.rstride[j.nr++] = gstride[g];
        } else {
            j.ksize[j.nk] = gsize[g];
            j.kstride[j.nk++] = gstride[g];
        }
    }
    if (ng > 0 && gred[ng - 1]) j.inner = gsize[ng - 1];
    if (n_out == 0) return DUCTILE_OK;
    if (j.count == 0) {
        /* Over no elements: the fold's identity, finished (a mean is 0/0, a log-sum -inf). */
        float v = j.op == DT_RED_LSE ? -INFINITY : dt_reduce_finish(j.op, dt_reduce_init(j.op), 0, 0.0f);
        for (int64_t o = 0; o < n_out; o++) j.y[o] = v;
        return DUCTILE_OK;
    }
    j.runs = j.count / j.inner;
    dt_parallel_for(ex->pool, n_out, dt_cpu_grain(j.count), dt_reduce_range, &j);
    return DUCTILE_OK;
}

static ductile_status dt_reduce_prepare(const ductile_layer *L, void **out)
{
    dt_reduce_params p = {.L = L, .n_in = L->n_in, .op = -1};
    for (size_t k = 0; k < sizeof dt_reduce_ops / sizeof dt_reduce_ops[0]; k++)
        if (strcmp(L->op_type, dt_reduce_ops[k].name) == 0) p.op = dt_reduce_ops[k].op;
    if (p.op < 0) return dt_fail(DUCTILE_ERR_INTERNAL, "'%s' is not a reduction", L->op_type);
    DT_TRY(dt_reduce_attrs_read(L, &p.a));
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

/* Other dtypes reduce in float32 copies of data and output, taken from the scratch (widen.h). */
static ductile_status dt_reduce_scratch(const void *params, const dt_view *in, const dt_view *out,
                                        int threads, size_t *bytes)
{
    const dt_reduce_params *p = params;
    (void)threads;
    *bytes = 0;
    if (in[0].dtype == DUCTILE_FLOAT32) return DUCTILE_OK;
    return dt_cpu_via_f32_scratch(p->L, in, out, 0x1, bytes);
}

static ductile_status dt_reduce_f32_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    return dt_reduce_exec(params, in, out, ex);
}

static ductile_status dt_reduce_layer_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_reduce_params *p = params;
    if (in[0].dtype == DUCTILE_FLOAT32) return dt_reduce_exec(p, in, out, ex);
    DT_TRY(dt_cpu_via_f32_run(p->L, params, dt_reduce_f32_run, in, out, ex, 0x1));
    /* An empty bool Max is false and Min true (float32's -inf and +inf would cast to true). */
    int64_t n_out = dt_view_count(&out[0]);
    if (in[0].dtype == DUCTILE_BOOL && dt_view_count(&in[0]) == 0 && n_out > 0)
        memset(out[0].data, p->op == DT_RED_MIN, (size_t)n_out);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_reduce_kernel = {
    .prepare = dt_reduce_prepare, .scratch = dt_reduce_scratch, .run = dt_reduce_layer_run,
};
