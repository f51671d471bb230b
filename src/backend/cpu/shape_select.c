/* Compress, NonZero, Unique: the shapes were computed by infer from the same data with the
 * same helpers (ops/shape.h), so the kernels only fill. */
#include "backend/cpu/shape_copy.h"
#include "backend/cpu/shape_kernels.h"
#include "core/status.h"
#include "ops/shape.h"

#include <stdint.h>
#include <string.h>

/* Compress and Unique compiled: the attributes read once; the layer kept for naming inputs
 * and outputs. They run eagerly (their shapes depend on data), where the context plans the
 * scratch of each layer just before running it. */
typedef struct dt_compress_params {
    const ductile_layer *L;
    bool has_axis;
    int64_t axis;
} dt_compress_params;

static ductile_status dt_compress_prepare(const ductile_layer *L, void **out)
{
    dt_compress_params p = {L, dt_attr_find(L, "axis") != NULL, dt_attr_int(L, "axis", 0)};
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_compress_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_compress_params *p = params;
    int axis;
    int64_t kept;
    DT_TRY(dt_compress_plan_of(p->L, p->has_axis, p->axis, in, &axis, &kept));
    size_t es = ductile_dtype_size((ductile_dtype)in[0].dtype);
    int64_t outer = 1, dim, inner = 1, n = in[1].dims[0];
    if (axis < 0) {
        dim = dt_view_count(&in[0]);
    } else {
        for (int i = 0; i < axis; i++) outer *= in[0].dims[i];
        for (int i = axis + 1; i < in[0].rank; i++) inner *= in[0].dims[i];
        dim = in[0].dims[axis];
    }
    if (n > dim) n = dim;
    size_t blk = (size_t)inner * es;
    char *o = out[0].data;
    const char *src = in[0].data;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t i = 0; i < n; i++)
            if (dt_select_nonzero(&in[1], i)) {
                memcpy(o, src + (size_t)(a * dim + i) * blk, blk);
                o += blk;
            }
    return DUCTILE_OK;
}

/* NonZero has no attributes; the layer names input 0 in the message. */
static ductile_status dt_non_zero_prepare(const ductile_layer *L, void **out)
{
    return dt_cpu_params_copy(&L, sizeof L, L, out);
}

static ductile_status dt_non_zero_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const ductile_layer *L = *(const ductile_layer *const *)params;
    int r = in[0].rank;
    int64_t n = dt_view_count(&in[0]), nnz = out[0].dims[1], k = 0, pos[DT_MAX_DIMS] = {0};
    int64_t *o = out[0].data;
    for (int64_t e = 0; e < n; e++) {
        if (dt_select_nonzero(&in[0], e)) {
            if (k >= nnz)
                return dt_fail(DUCTILE_ERR_STATE, "input 0 ('%s') changed between shape inference and the run",
                               dt_shape_name(L, 0));
            for (int d = 0; d < r; d++) o[d * nnz + k] = pos[d];
            k++;
        }
        for (int d = r - 1; d >= 0; d--) {
            if (++pos[d] < in[0].dims[d]) break;
            pos[d] = 0;
        }
    }
    return DUCTILE_OK;
}

typedef struct dt_unique_params {
    const ductile_layer *L;
    dt_unique_attrs a;
} dt_unique_params;

static ductile_status dt_unique_prepare(const ductile_layer *L, void **out)
{
    dt_unique_params p = {.L = L};
    dt_unique_attrs_read(L, &p.a);
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_unique_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                        size_t *bytes)
{
    const dt_unique_params *p = params;
    size_t words = dt_unique_work(&p->a, in);
    *bytes = words > SIZE_MAX / sizeof(int64_t) ? SIZE_MAX : words * sizeof(int64_t);
    return DUCTILE_OK;
}

static ductile_status dt_unique_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_unique_params *p = params;
    const ductile_layer *L = p->L;
    dt_unique_result r;
    DT_TRY(dt_unique_group(L, &p->a, in, ex->scratch, &r));
    if (r.n_unique != out[0].dims[r.axis < 0 ? 0 : r.axis])
        return dt_fail(DUCTILE_ERR_STATE, "input 0 ('%s') changed between shape inference and the run",
                       dt_shape_name(L, 0));
    size_t es = ductile_dtype_size((ductile_dtype)in[0].dtype);
    int64_t outer = 1, inner = 1;
    if (r.axis >= 0) {
        for (int i = 0; i < r.axis; i++) outer *= in[0].dims[i];
        for (int i = r.axis + 1; i < in[0].rank; i++) inner *= in[0].dims[i];
    }
    /* Y[o, u, i] = X[o, first[u], i]; without an axis outer = inner = 1. */
    size_t blk = (size_t)inner * es;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t u = 0; u < r.n_unique; u++)
            memcpy((char *)out[0].data + (size_t)(o * r.n_unique + u) * blk,
                   (const char *)in[0].data + (size_t)(o * r.n_items + r.first[u]) * blk, blk);
    const int64_t *src[4] = {NULL, r.first, r.inverse, r.counts};
    for (int k = 1; k < L->n_out && k < 4; k++)
        if (L->out[k] && out[k].data) memcpy(out[k].data, src[k], (size_t)out[k].dims[0] * sizeof(int64_t));
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_compress_kernel = {.prepare = dt_compress_prepare, .run = dt_compress_run};
const dt_kernel dt_cpu_non_zero_kernel = {.prepare = dt_non_zero_prepare, .run = dt_non_zero_run};
const dt_kernel dt_cpu_unique_kernel = {
    .prepare = dt_unique_prepare, .scratch = dt_unique_scratch, .run = dt_unique_run,
};
