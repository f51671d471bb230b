/* Pad in constant, edge, reflect and wrap modes, by output rows: each row's interior is one memcpy
 * and only its borders are computed element by element. */
#include "backend/cpu/shape_copy.h"
#include "backend/cpu/shape_kernels.h"
#include "core/status.h"
#include "ops/shape.h"

#include <string.h>

/* The attribute 'value' (opset < 11) is a float; converts it to the data's dtype. */
static ductile_status dt_pad_value_from_float(int dtype, double v, unsigned char out[8])
{
    switch (dtype) {
    case DUCTILE_FLOAT32: { float x = (float)v; memcpy(out, &x, 4); return DUCTILE_OK; }
    case DUCTILE_FLOAT64: memcpy(out, &v, 8); return DUCTILE_OK;
    case DUCTILE_INT8: case DUCTILE_UINT8: case DUCTILE_BOOL: out[0] = (unsigned char)(int64_t)v; return DUCTILE_OK;
    case DUCTILE_INT16: case DUCTILE_UINT16: { int16_t x = (int16_t)(int64_t)v; memcpy(out, &x, 2); return DUCTILE_OK; }
    case DUCTILE_INT32: case DUCTILE_UINT32: { int32_t x = (int32_t)(int64_t)v; memcpy(out, &x, 4); return DUCTILE_OK; }
    case DUCTILE_INT64: case DUCTILE_UINT64: { int64_t x = (int64_t)v; memcpy(out, &x, 8); return DUCTILE_OK; }
    default:
        if (v == 0) {
            memset(out, 0, 8);
            return DUCTILE_OK;
        }
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'value' = %g for %s data is not supported",
                       v, ductile_dtype_name((ductile_dtype)dtype));
    }
}

typedef struct dt_pad_job {
    dt_pad_plan p;
    const dt_view *in, *out;
    size_t es;
    unsigned char value[8];
    int64_t st[DT_MAX_DIMS];
    int64_t lo[DT_MAX_DIMS], hi[DT_MAX_DIMS]; /* the input extent left after negative pads */
} dt_pad_job;

/* The input index that output index o of axis k reads, or -1 for the constant. */
static int64_t dt_pad_map(const dt_pad_job *j, int k, int64_t o)
{
    int64_t i = o - j->p.begin[k], lo = j->lo[k], hi = j->hi[k];
    if (i >= lo && i < hi) return i;
    switch (j->p.mode) {
    case DT_PAD_EDGE: return i < lo ? lo : hi - 1;
    case DT_PAD_REFLECT: return i < lo ? 2 * lo - i : 2 * (hi - 1) - i;
    case DT_PAD_WRAP: {
        int64_t size = hi - lo, m = (i - lo) % size;
        return lo + (m < 0 ? m + size : m);
    }
    default: return -1;
    }
}

static void dt_pad_rows(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_pad_job *j = arg;
    int last = j->out->rank - 1;
    int64_t n = j->out->dims[last], b = j->p.begin[last];
    size_t es = j->es;
    /* Output span [x0, x1) copies input [x0 - b, x1 - b) of the last axis. */
    int64_t x0 = j->lo[last] + b, x1 = j->hi[last] + b;
    if (x0 < 0) x0 = 0;
    if (x1 > n) x1 = n;
    if (x1 < x0) x1 = x0;
    for (int64_t r = begin; r < end; r++) {
        char *o = (char *)j->out->data + (size_t)(r * n) * es;
        int64_t rem = r, off = 0;
        bool fill = false;
        for (int k = last - 1; k >= 0; k--) {
            int64_t i = dt_pad_map(j, k, rem % j->out->dims[k]);
            rem /= j->out->dims[k];
            if (i < 0) fill = true;
            off += i * j->st[k];
        }
        if (fill) {
            dt_cpu_fill(o, j->value, es, n);
            continue;
        }
        const char *src = (const char *)j->in->data + (size_t)off * es;
        memcpy(o + (size_t)x0 * es, src + (size_t)(x0 - b) * es, (size_t)(x1 - x0) * es);
        for (int64_t x = 0; x < n; x++) {
            if (x == x0) x = x1;
            if (x >= n) break;
            int64_t i = dt_pad_map(j, last, x);
            if (i < 0) memcpy(o + (size_t)x * es, j->value, es);
            else memcpy(o + (size_t)x * es, src + (size_t)i * es, es);
        }
    }
}

static void dt_pad_run(dt_pad_job *j, dt_exec *ex);

/* CenterCropPad compiled: 'axes' read once; the layer kept for naming inputs. */
typedef struct dt_crop_params {
    const ductile_layer *L;
    dt_crop_attrs a;
} dt_crop_params;

static ductile_status dt_crop_prepare(const ductile_layer *L, void **out)
{
    dt_crop_params p = {.L = L};
    DT_TRY(dt_center_crop_pad_attrs_read(L, &p.a));
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_crop_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_crop_params *p = params;
    dt_pad_job j = {.in = &in[0], .out = &out[0], .es = ductile_dtype_size((ductile_dtype)in[0].dtype)};
    DT_TRY(dt_center_crop_pad_plan_of(p->L, &p->a, in, &j.p));
    memset(j.value, 0, sizeof j.value);
    dt_pad_run(&j, ex);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_center_crop_pad_kernel = {.prepare = dt_crop_prepare, .run = dt_crop_run};

/* Pad compiled: mode and (before opset 11) 'pads' and 'value' read once; the layer kept for
 * naming inputs. */
typedef struct dt_pad_params {
    const ductile_layer *L;
    dt_pad_attrs a;
} dt_pad_params;

static ductile_status dt_pad_prepare(const ductile_layer *L, void **out)
{
    dt_pad_params p = {.L = L};
    DT_TRY(dt_pad_attrs_read(L, &p.a));
    /* A 'value' the data's dtype cannot hold is refused here when the dtype is settled. */
    unsigned char v[8];
    if (!p.a.from_inputs && L->n_in > 0 && L->in[0] && L->in[0]->dtype)
        DT_TRY(dt_pad_value_from_float(L->in[0]->dtype, p.a.value, v));
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_pad_kernel_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_pad_params *p = params;
    const ductile_layer *L = p->L;
    dt_pad_job j = {.in = &in[0], .out = &out[0], .es = ductile_dtype_size((ductile_dtype)in[0].dtype)};
    DT_TRY(dt_pad_plan_of(L, &p->a, in, &j.p));
    memset(j.value, 0, sizeof j.value);
    if (p->a.from_inputs) {
        if (dt_shape_has(L, in, 2) && dt_view_count(&in[2]) > 0) {
            if (in[2].dtype != in[0].dtype)
                return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                               "input 2 (constant_value, '%s') has dtype %s but the data has %s",
                               dt_shape_name(L, 2), ductile_dtype_name((ductile_dtype)in[2].dtype),
                               ductile_dtype_name((ductile_dtype)in[0].dtype));
            memcpy(j.value, in[2].data, j.es);
        }
    } else {
        DT_TRY(dt_pad_value_from_float(in[0].dtype, p->a.value, j.value));
    }
    dt_pad_run(&j, ex);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_pad_kernel = {.prepare = dt_pad_prepare, .run = dt_pad_kernel_run};

/* Runs a job whose plan, views, element size and value are set. */
static void dt_pad_run(dt_pad_job *j, dt_exec *ex)
{
    const dt_view *in = j->in, *out = j->out;
    int r = in->rank;
    if (r == 0) {
        memcpy(out->data, in->data, j->es);
        return;
    }
    dt_cpu_dense_strides(in, j->st);
    for (int k = 0; k < r; k++) {
        j->lo[k] = j->p.begin[k] < 0 ? -j->p.begin[k] : 0;
        j->hi[k] = in->dims[k] - (j->p.end[k] < 0 ? -j->p.end[k] : 0);
    }
    int64_t n = out->dims[r - 1];
    if (n == 0 || dt_view_count(out) == 0) return;
    int64_t rows = dt_view_count(out) / n, grain = 32768 / (n * (int64_t)j->es);
    dt_parallel_for(ex ? ex->pool : NULL, rows, grain < 1 ? 1 : grain, dt_pad_rows, j);
}
