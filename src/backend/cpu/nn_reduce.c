/* ReduceMean, ReduceSum, ReduceMax, ReduceMin over any set of axes. Adjacent axes that are
 * all kept or all reduced merge into one group and unit axes drop out, so the usual cases
 * (trailing axes, H and W of NCHW) become one contiguous run per output element. */
#include "backend/cpu/nn_kernels.h"
#include "ops/nn.h"
#include "core/status.h"

#include <math.h>
#include <string.h>

enum { DT_RED_SUM, DT_RED_MEAN, DT_RED_MAX, DT_RED_MIN };

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

static float dt_reduce_run(int op, const float *x, int64_t n)
{
    if (op == DT_RED_MAX) return dt_cpu_max_f32(x, n);
    if (op == DT_RED_MIN) {
        float m = INFINITY;
        for (int64_t i = 0; i < n; i++) m = x[i] < m ? x[i] : m;
        return m;
    }
    return dt_cpu_sum_f32(x, n);
}

static void dt_reduce_range(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_reduce_job *j = arg;
    int nr_outer = j->inner > 1 ? j->nr - 1 : j->nr;
    for (int64_t o = b; o < e; o++) {
        int64_t base = 0, rem = o;
        for (int g = j->nk - 1; g >= 0; g--) {
            base += (rem % j->ksize[g]) * j->kstride[g];
            rem /= j->ksize[g];
        }
        float acc = j->op == DT_RED_MAX ? -INFINITY : j->op == DT_RED_MIN ? INFINITY : 0.0f;
        for (int64_t q = 0; q < j->runs; q++) {
            int64_t off = base, rq = q;
            for (int g = nr_outer - 1; g >= 0; g--) {
                off += (rq % j->rsize[g]) * j->rstride[g];
                rq /= j->rsize[g];
            }
            float v = dt_reduce_run(j->op, j->x + off, j->inner);
            if (j->op == DT_RED_MAX) acc = v > acc ? v : acc;
            else if (j->op == DT_RED_MIN) acc = v < acc ? v : acc;
            else acc += v;
        }
        j->y[o] = j->op == DT_RED_MEAN ? acc / (float)j->count : acc;
    }
}

ductile_status dt_cpu_reduce(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    bool red[DT_MAX_DIMS], identity;
    DT_TRY(dt_reduce_axes(L, in, red, &identity));
    int64_t n_out = dt_view_count(&out[0]);
    if (identity) {
        memcpy(out[0].data, in[0].data, (size_t)n_out * sizeof(float));
        return DUCTILE_OK;
    }
    const char *t = L->op_type;
    dt_reduce_job j = {.x = in[0].data, .y = out[0].data, .inner = 1, .runs = 1, .count = 1,
                       .op = strcmp(t, "ReduceSum") == 0    ? DT_RED_SUM
                             : strcmp(t, "ReduceMean") == 0 ? DT_RED_MEAN
                             : strcmp(t, "ReduceMax") == 0  ? DT_RED_MAX
                                                            : DT_RED_MIN};
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
        /* An empty sum is 0 and an empty mean 0/0 (infer refuses empty max and min). */
        for (int64_t o = 0; o < n_out; o++) j.y[o] = j.op == DT_RED_MEAN ? NAN : 0.0f;
        return DUCTILE_OK;
    }
    j.runs = j.count / j.inner;
    dt_parallel_for(ex->pool, n_out, dt_cpu_grain(j.count), dt_reduce_range, &j);
    return DUCTILE_OK;
}
