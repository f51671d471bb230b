/* Gather and GatherElements. Indices are validated in one pass before any copying, so a bad
 * index is reported with its position and the output is never half-written by workers. */
#include "backend/cpu/shape_copy.h"
#include "core/alloc.h"
#include "backend/cpu/shape_kernels.h"
#include "core/status.h"
#include "ops/shape.h"

#include <stdlib.h>
#include <string.h>

/* Reads indices as int64 into v (dt_view_count(idx) of them), wrapping negatives. */
static ductile_status dt_read_indices_into(const ductile_layer *L, const dt_view *idx, int64_t dim,
                                           int axis, int64_t *v)
{
    int64_t n = dt_view_count(idx);
    for (int64_t i = 0; i < n; i++) {
        int64_t x = dt_view_int(idx, i);
        if (x < -dim || x >= dim) {
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "input 1 ('%s') holds the index %lld at position %lld, out of range for "
                           "dimension %d of input 0 ('%s'), which has size %lld (expected %lld..%lld)",
                           dt_shape_name(L, 1), (long long)x, (long long)i, axis,
                           dt_shape_name(L, 0), (long long)dim, (long long)-dim, (long long)dim - 1);
        }
        v[i] = x < 0 ? x + dim : x;
    }
    return DUCTILE_OK;
}

/* The same into a dt_malloc'd array (caller frees). */
static ductile_status dt_read_indices(const ductile_layer *L, const dt_view *idx, int64_t dim,
                                      int axis, int64_t **out)
{
    int64_t n = dt_view_count(idx);
    int64_t *v = dt_malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v)
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for %lld indices of input 1 ('%s')",
                       (long long)n, dt_shape_name(L, 1));
    ductile_status s = dt_read_indices_into(L, idx, dim, axis, v);
    if (s) {
        dt_free(v);
        return s;
    }
    *out = v;
    return DUCTILE_OK;
}

typedef struct dt_gather_job {
    char *out;
    const char *in;
    const int64_t *idx;
    int64_t n_idx, dim;
    size_t es, inner;   /* inner: bytes of one gathered slice */
} dt_gather_job;

static void dt_gather_part(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_gather_job *j = arg;
    for (int64_t u = begin; u < end; u++) {
        int64_t o = u / j->n_idx, k = u % j->n_idx;
        char *dst = j->out + (size_t)u * j->inner;
        const char *src = j->in + ((size_t)o * (size_t)j->dim + (size_t)j->idx[k]) * j->inner;
        /* Single elements (Gather on the last axis, embedding ids into a 1-D table) are
         * common enough to skip memcpy's call. */
        switch (j->inner) {
        case 4: memcpy(dst, src, 4); break;
        case 8: memcpy(dst, src, 8); break;
        default: memcpy(dst, src, j->inner);
        }
    }
}

/* Gather over indices already read (idx NULL: read into `scratch`, or allocate when NULL). */
static ductile_status dt_gather_exec(const ductile_layer *L, int64_t axis_attr, const dt_view *in, dt_view *out,
                                     dt_exec *ex, int64_t *scratch)
{
    int axis;
    DT_TRY(dt_norm_axis(axis_attr, in[0].rank, &axis));
    dt_gather_job j = {.out = out[0].data, .in = in[0].data, .n_idx = dt_view_count(&in[1]),
                       .dim = in[0].dims[axis],
                       .es = ductile_dtype_size((ductile_dtype)in[0].dtype)};
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= in[0].dims[i];
    for (int i = axis + 1; i < in[0].rank; i++) inner *= in[0].dims[i];
    j.inner = (size_t)inner * j.es;
    int64_t *idx = scratch;
    if (idx)
        DT_TRY(dt_read_indices_into(L, &in[1], j.dim, axis, idx));
    else
        DT_TRY(dt_read_indices(L, &in[1], j.dim, axis, &idx));
    j.idx = idx;
    int64_t units = outer * j.n_idx, grain = 32768 / (int64_t)(j.inner ? j.inner : 1);
    if (j.inner) dt_parallel_for(ex ? ex->pool : NULL, units, grain < 1 ? 1 : grain, dt_gather_part, &j);
    if (idx != scratch) dt_free(idx);
    return DUCTILE_OK;
}

/* Gather compiled: the axis read once; the layer kept for naming inputs in messages. */
typedef struct dt_gather_params {
    const ductile_layer *L;
    int64_t axis;
} dt_gather_params;

static ductile_status dt_gather_prepare(const ductile_layer *L, void **out)
{
    dt_gather_params p = {L, dt_attr_int(L, "axis", 0)};
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_gather_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                        size_t *bytes)
{
    (void)params, (void)out, (void)threads;
    int64_t n = dt_view_count(&in[1]);
    *bytes = (size_t)(n > 0 ? n : 1) * sizeof(int64_t);
    return DUCTILE_OK;
}

static ductile_status dt_gather_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_gather_params *p = params;
    return dt_gather_exec(p->L, p->axis, in, out, ex, ex->scratch);
}

const dt_kernel dt_cpu_gather_kernel = {
    .prepare = dt_gather_prepare, .scratch = dt_gather_scratch, .run = dt_gather_run,
};

/* GatherElements compiled: the axis read once (as Gather); the indices, read and checked
 * before any copy, go into the scratch. */
static ductile_status dt_gather_elements_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_gather_params *p = params;
    int axis, r = in[0].rank;
    DT_TRY(dt_norm_axis(p->axis, r, &axis));
    int64_t *idx = ex->scratch;
    DT_TRY(dt_read_indices_into(p->L, &in[1], in[0].dims[axis], axis, idx));
    int64_t n = dt_view_count(&in[1]), st[DT_MAX_DIMS], pos[DT_MAX_DIMS] = {0};
    dt_cpu_dense_strides(&in[0], st);
    size_t es = ductile_dtype_size((ductile_dtype)in[0].dtype);
    char *o = out[0].data;
    const char *src = in[0].data;
    for (int64_t e = 0; e < n; e++) {
        int64_t off = idx[e] * st[axis];
        for (int k = 0; k < r; k++)
            if (k != axis) off += pos[k] * st[k];
        memcpy(o + (size_t)e * es, src + (size_t)off * es, es);
        for (int k = r - 1; k >= 0; k--) {
            if (++pos[k] < in[1].dims[k]) break;
            pos[k] = 0;
        }
    }
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_gather_elements_kernel = {
    .prepare = dt_gather_prepare, .scratch = dt_gather_scratch, .run = dt_gather_elements_run,
};
