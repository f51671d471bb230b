/* The broadcast walker shared by the elementwise kernels. */
#include "backend/cpu/elementwise_impl.h"

#include <string.h>

void dt_ew_iter_init(dt_ew_iter *it, const dt_view *out, const dt_view *const in[], int n_in)
{
    memset(it, 0, sizeof *it);
    it->n_ops = n_in + 1;
    const dt_view *ops[DT_EW_MAX_OPS];
    ops[0] = out;
    for (int k = 0; k < n_in; k++) ops[k + 1] = in[k];

    /* Strides of each operand over the output's dims, right-aligned as numpy does. */
    int r = out->rank;
    int64_t dims[DT_MAX_DIMS], stride[DT_EW_MAX_OPS][DT_MAX_DIMS];
    for (int k = 0; k < it->n_ops; k++) {
        const dt_view *v = ops[k];
        int64_t s = 1;
        for (int i = r - 1; i >= 0; i--) {
            int iv = i - (r - v->rank);
            int64_t d = iv >= 0 ? v->dims[iv] : 1;
            stride[k][i] = d == 1 ? 0 : s;
            s *= d;
        }
        it->esize[k] = ductile_dtype_size((ductile_dtype)v->dtype);
        it->base[k] = v->data;
    }
    for (int i = 0; i < r; i++) dims[i] = out->dims[i];

    /* Drop unit dims, then merge a dim into the previous one where every operand steps
     * through both as one contiguous run (or is broadcast over both). */
    int R = 0;
    for (int i = 0; i < r; i++) {
        if (dims[i] == 1) continue;
        bool merge = R > 0;
        for (int k = 0; k < it->n_ops && merge; k++)
            if (it->stride[k][R - 1] != stride[k][i] * dims[i]) merge = false;
        if (merge) {
            it->dims[R - 1] *= dims[i];
            for (int k = 0; k < it->n_ops; k++) it->stride[k][R - 1] = stride[k][i];
        } else {
            it->dims[R] = dims[i];
            for (int k = 0; k < it->n_ops; k++) it->stride[k][R] = stride[k][i];
            R++;
        }
    }
    if (R == 0) {
        R = 1;
        it->dims[0] = 1;
        for (int k = 0; k < it->n_ops; k++) it->stride[k][0] = k == 0;
    }
    it->rank = R;
    it->count = 1;
    for (int i = 0; i < R; i++) it->count *= it->dims[i];
}

typedef struct {
    const dt_ew_iter *it;
    dt_ew_run_fn fn;
    const void *ctx;
} dt_ew_job;

static void dt_ew_range(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_ew_job *j = arg;
    const dt_ew_iter *it = j->it;
    int R = it->rank, n_ops = it->n_ops;
    int64_t idx[DT_MAX_DIMS];
    int64_t rem = begin;
    for (int d = R - 1; d >= 0; d--) {
        idx[d] = rem % it->dims[d];
        rem /= it->dims[d];
    }
    char *p[DT_EW_MAX_OPS];
    int step[DT_EW_MAX_OPS];
    for (int k = 0; k < n_ops; k++) {
        int64_t off = 0;
        for (int d = 0; d < R; d++) off += idx[d] * it->stride[k][d];
        p[k] = it->base[k] + off * (int64_t)it->esize[k];
        step[k] = it->stride[k][R - 1] != 0;
    }
    int64_t inner = it->dims[R - 1];
    int64_t pos = begin;
    while (pos < end) {
        int64_t n = inner - idx[R - 1];
        if (n > end - pos) n = end - pos;
        j->fn(j->ctx, p, step, n);
        pos += n;
        if (pos >= end) break;
        /* The row is done: back to its start, then carry into the outer dims. */
        for (int k = 0; k < n_ops; k++)
            p[k] -= idx[R - 1] * it->stride[k][R - 1] * (int64_t)it->esize[k];
        idx[R - 1] = 0;
        for (int d = R - 2; d >= 0; d--) {
            idx[d]++;
            for (int k = 0; k < n_ops; k++) p[k] += it->stride[k][d] * (int64_t)it->esize[k];
            if (idx[d] < it->dims[d]) break;
            for (int k = 0; k < n_ops; k++)
                p[k] -= it->dims[d] * it->stride[k][d] * (int64_t)it->esize[k];
            idx[d] = 0;
        }
    }
}

void dt_ew_iter_run(const dt_ew_iter *it, dt_exec *ex, dt_ew_run_fn fn, const void *ctx)
{
    dt_ew_job j = {it, fn, ctx};
    dt_ew_parallel(ex, it->count, dt_ew_range, &j);
}

void dt_ew_parallel(dt_exec *ex, int64_t n, dt_range_fn fn, void *arg)
{
    dt_ew_parallel_grain(ex, n, DT_EW_GRAIN, fn, arg);
}

void dt_ew_parallel_grain(dt_exec *ex, int64_t n, int64_t grain, dt_range_fn fn, void *arg)
{
    dt_parallel_for(ex ? ex->pool : NULL, n, grain, fn, arg);
}
