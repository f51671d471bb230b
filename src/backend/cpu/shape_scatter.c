/* GatherND, ScatterElements / Scatter and ScatterND. Scatters run serially: with duplicate
 * indices the result depends on the order of the writes, and ONNX defines it as index order.
 * Every index is checked before it is used; a bad one is reported with its position. */
#include "backend/cpu/shape_copy.h"
#include "backend/cpu/shape_kernels.h"
#include "core/status.h"
#include "ops/shape.h"

#include <string.h>

/* Element i of indices as a position in [0, dim), or an error naming it. */
static ductile_status dt_index_at(const ductile_layer *L, const dt_view *idx, int64_t i, int64_t dim,
                                  int axis, int64_t *out)
{
    int64_t x = dt_view_int(idx, i);
    if (x < -dim || x >= dim)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "input 1 ('%s') holds the index %lld at position %lld, out of range for dimension %d "
                       "of input 0 ('%s'), which has size %lld (expected %lld..%lld)",
                       dt_shape_name(L, 1), (long long)x, (long long)i, axis, dt_shape_name(L, 0),
                       (long long)dim, (long long)-dim, (long long)dim - 1);
    *out = x < 0 ? x + dim : x;
    return DUCTILE_OK;
}

#define DT_RED(T)                                                                            \
    static void dt_red_##T(void *dst, const void *src, int red)                               \
    {                                                                                         \
        T a, b;                                                                               \
        memcpy(&a, dst, sizeof a);                                                            \
        memcpy(&b, src, sizeof b);                                                            \
        switch (red) {                                                                        \
        case DT_SCATTER_ADD: a = a + b; break;                                                \
        case DT_SCATTER_MUL: a = a * b; break;                                                \
        case DT_SCATTER_MAX: a = a > b ? a : b; break;                                        \
        case DT_SCATTER_MIN: a = a < b ? a : b; break;                                        \
        default: a = b;                                                                       \
        }                                                                                     \
        memcpy(dst, &a, sizeof a);                                                            \
    }
DT_RED(float)
DT_RED(double)
DT_RED(int32_t)
DT_RED(int64_t)
#undef DT_RED

typedef void (*dt_red_fn)(void *dst, const void *src, int red);

/* The combining function for dtype, or NULL for a plain copy (reduction none). */
static dt_red_fn dt_red_for(int dtype, int red)
{
    if (red == DT_SCATTER_NONE) return NULL;
    switch (dtype) {
    case DUCTILE_FLOAT32: return dt_red_float;
    case DUCTILE_FLOAT64: return dt_red_double;
    case DUCTILE_INT32: return dt_red_int32_t;
    case DUCTILE_INT64: return dt_red_int64_t;
    default: return NULL; /* infer rejected the others */
    }
}

static void dt_put(char *dst, const char *src, size_t es, dt_red_fn f, int red)
{
    if (f) f(dst, src, red);
    else memcpy(dst, src, es);
}

/* The three compiled: the attributes (batch_dims; axis and reduction) read once; the layer
 * kept for naming inputs in messages. */
typedef struct dt_scatter_params {
    const ductile_layer *L;
    int64_t axis;       /* ScatterElements: 'axis'; GatherND: 'batch_dims' */
    int red;            /* DT_SCATTER_* */
} dt_scatter_params;

static ductile_status dt_gather_nd_prepare(const ductile_layer *L, void **out)
{
    dt_scatter_params p = {.L = L, .axis = dt_attr_int(L, "batch_dims", 0)};
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_scatter_prepare(const ductile_layer *L, void **out)
{
    dt_scatter_params p = {.L = L, .axis = dt_attr_int(L, "axis", 0)};
    DT_TRY(dt_scatter_reduction(L, &p.red));
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_gather_nd_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_scatter_params *prm = params;
    const ductile_layer *L = prm->L;
    int b, k, r = in[0].rank, q = in[1].rank;
    DT_TRY(dt_gather_nd_plan_of(L, prm->axis, in, &b, &k));
    int64_t st[DT_MAX_DIMS], batches = 1, per = 1, slice = 1, x = 0;
    dt_cpu_dense_strides(&in[0], st);
    for (int i = 0; i < b; i++) batches *= in[0].dims[i];
    for (int i = b; i < q - 1; i++) per *= in[1].dims[i];
    for (int i = b + k; i < r; i++) slice *= in[0].dims[i];
    int64_t batch_stride = b > 0 ? st[b - 1] : 0;
    size_t es = ductile_dtype_size((ductile_dtype)in[0].dtype), bytes = (size_t)slice * es;
    char *o = out[0].data;
    const char *src = in[0].data;
    for (int64_t bi = 0; bi < batches; bi++)
        for (int64_t n = 0; n < per; n++) {
            int64_t row = bi * per + n, off = bi * batch_stride;
            for (int j = 0; j < k; j++) {
                DT_TRY(dt_index_at(L, &in[1], row * k + j, in[0].dims[b + j], b + j, &x));
                off += x * st[b + j];
            }
            memcpy(o + (size_t)row * bytes, src + (size_t)off * es, bytes);
        }
    return DUCTILE_OK;
}

static ductile_status dt_scatter_elements_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_scatter_params *prm = params;
    const ductile_layer *L = prm->L;
    int red = prm->red, axis, r = in[0].rank;
    DT_TRY(dt_norm_axis(prm->axis, r, &axis));
    size_t es = ductile_dtype_size((ductile_dtype)in[0].dtype);
    /* Check every index first so that a failure leaves no half-scattered output behind. */
    int64_t n = dt_view_count(&in[1]), st[DT_MAX_DIMS], pos[DT_MAX_DIMS] = {0}, x = 0;
    for (int64_t e = 0; e < n; e++) DT_TRY(dt_index_at(L, &in[1], e, in[0].dims[axis], axis, &x));
    dt_cpu_copy_bytes(ex, out[0].data, in[0].data, dt_cpu_view_bytes(&in[0]));
    dt_cpu_dense_strides(&in[0], st);
    dt_red_fn f = dt_red_for(in[0].dtype, red);
    char *o = out[0].data;
    const char *u = in[2].data;
    for (int64_t e = 0; e < n; e++) {
        dt_index_at(L, &in[1], e, in[0].dims[axis], axis, &x);
        int64_t off = x * st[axis];
        for (int k = 0; k < r; k++)
            if (k != axis) off += pos[k] * st[k];
        dt_put(o + (size_t)off * es, u + (size_t)e * es, es, f, red);
        for (int k = r - 1; k >= 0; k--) {
            if (++pos[k] < in[1].dims[k]) break;
            pos[k] = 0;
        }
    }
    return DUCTILE_OK;
}

static ductile_status dt_scatter_nd_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_scatter_params *prm = params;
    const ductile_layer *L = prm->L;
    int red = prm->red, r = in[0].rank, q = in[1].rank, k = (int)in[1].dims[q - 1];
    int64_t st[DT_MAX_DIMS], rows = 1, slice = 1, x = 0;
    dt_cpu_dense_strides(&in[0], st);
    for (int i = 0; i < q - 1; i++) rows *= in[1].dims[i];
    for (int i = k; i < r; i++) slice *= in[0].dims[i];
    for (int64_t e = 0; e < rows * k; e++)
        DT_TRY(dt_index_at(L, &in[1], e, in[0].dims[e % k], (int)(e % k), &x));
    dt_cpu_copy_bytes(ex, out[0].data, in[0].data, dt_cpu_view_bytes(&in[0]));
    size_t es = ductile_dtype_size((ductile_dtype)in[0].dtype);
    dt_red_fn f = dt_red_for(in[0].dtype, red);
    char *o = out[0].data;
    const char *u = in[2].data;
    for (int64_t row = 0; row < rows; row++) {
        int64_t off = 0;
        for (int j = 0; j < k; j++) {
            dt_index_at(L, &in[1], row * k + j, in[0].dims[j], j, &x);
            off += x * st[j];
        }
        char *dst = o + (size_t)off * es;
        const char *src = u + (size_t)(row * slice) * es;
        if (!f) {
            memcpy(dst, src, (size_t)slice * es);
            continue;
        }
        for (int64_t s = 0; s < slice; s++) f(dst + (size_t)s * es, src + (size_t)s * es, red);
    }
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_gather_nd_kernel = {.prepare = dt_gather_nd_prepare, .run = dt_gather_nd_run};
const dt_kernel dt_cpu_scatter_elements_kernel = {.prepare = dt_scatter_prepare, .run = dt_scatter_elements_run};
const dt_kernel dt_cpu_scatter_nd_kernel = {.prepare = dt_scatter_prepare, .run = dt_scatter_nd_run};
