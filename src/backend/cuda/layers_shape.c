/* The CUDA backend's layout layers, compiled (layers.h): Transpose, Gather, Concat, the
 * copies (Reshape, Flatten, Squeeze, Unsqueeze), Expand, Slice, DepthToSpace. Most are one
 * strided read (dt_cu_transpose) whose strides come from the views at run. */
#include "backend/cuda/layers.h"
#include "core/dtype.h"
#include "core/status.h"
#include "ops/shape.h"

#include <cuda_runtime_api.h>

#include <string.h>

static int dt_esize(const dt_view *v) { return (int)ductile_dtype_size((ductile_dtype)v->dtype); }

/* ---- Transpose ---- */

/* 'perm' read once (its first DT_MAX_DIMS values: a longer one is refused at run by its
 * count, which no rank matches, as on the CPU). */
static ductile_status dt_transpose_prepare(const ductile_layer *L, void **out)
{
    dt_cu_transpose_params p = {.L = L, .n = -1};
    int64_t n;
    const int64_t *v = dt_attr_ints(L, "perm", &n);
    if (v) {
        p.n = n;
        for (int64_t i = 0; i < n && i < DT_MAX_DIMS; i++) p.perm[i] = v[i];
    }
    return dt_cuda_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_transpose_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_transpose_params *p = params;
    int r = in[0].rank, perm[DT_MAX_DIMS];
    DT_TRY(dt_transpose_perm_of(p->L, p->n < 0 ? NULL : p->perm, p->n, r, perm));
    int64_t st[DT_MAX_DIMS], pst[DT_MAX_DIMS];
    int64_t s = 1;
    for (int d = r - 1; d >= 0; d--) {
        st[d] = s;
        s *= in[0].dims[d];
    }
    for (int d = 0; d < r; d++) pst[d] = st[perm[d]];
    if (in[0].dtype != out[0].dtype) /* attribute `to` (supports() admits float types) */
        return dt_cuda_check(dt_cu_transpose_cast(in[0].data, in[0].dtype, out[0].data, out[0].dtype, r, out[0].dims, pst,
                                                  dt_cuda_count(&out[0]), ex->stream), p->L->op_type);
    return dt_cuda_check(dt_cu_transpose(in[0].data, out[0].data, dt_esize(&in[0]), r, out[0].dims, pst, 0,
                                         dt_cuda_count(&out[0]), ex->stream), p->L->op_type);
}

const dt_kernel dt_cuda_transpose_kernel = {.prepare = dt_transpose_prepare, .run = dt_transpose_run};

/* ---- Gather, Concat: an axis ---- */

static ductile_status dt_axis_prepare(const ductile_layer *L, void **out)
{
    dt_cu_axis_params p = {L, dt_attr_int(L, "axis", 0), L->n_in};
    return dt_cuda_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_gather_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_axis_params *p = params;
    int axis;
    DT_TRY(dt_norm_axis(p->axis, in[0].rank, &axis));
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < in[0].rank; d++) {
        if (d < axis) outer *= in[0].dims[d];
        else if (d > axis) inner *= in[0].dims[d];
    }
    return dt_cuda_check(dt_cu_gather(in[0].data, in[1].data, in[1].dtype == DUCTILE_INT64, out[0].data, outer,
                                      in[0].dims[axis], inner, dt_cuda_count(&in[1]), dt_esize(&in[0]), ex->stream),
                         p->L->op_type);
}

const dt_kernel dt_cuda_gather_kernel = {.prepare = dt_axis_prepare, .run = dt_gather_run};

/* Concat: per input one strided 2-D copy ([outer] rows of its slice of the axis). */
static ductile_status dt_concat_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_axis_params *p = params;
    int axis;
    DT_TRY(dt_norm_axis(p->axis, out[0].rank, &axis));
    size_t es = (size_t)dt_esize(&out[0]);
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < out[0].rank; d++) {
        if (d < axis) outer *= out[0].dims[d];
        else if (d > axis) inner *= out[0].dims[d];
    }
    size_t row = (size_t)(out[0].dims[axis] * inner) * es, at = 0;
    for (int k = 0; k < p->n_in; k++) {
        if (in[k].rank < 0) continue; /* omitted */
        size_t w = (size_t)(in[k].dims[axis] * inner) * es;
        if (w && outer)
            DT_TRY(dt_cuda_check(cudaMemcpy2DAsync((char *)out[0].data + at, row, in[k].data, w, w, (size_t)outer,
                                                   cudaMemcpyDeviceToDevice, (cudaStream_t)ex->stream), "Concat"));
        at += w;
    }
    return DUCTILE_OK;
}

const dt_kernel dt_cuda_concat_kernel = {.prepare = dt_axis_prepare, .run = dt_concat_run};

/* ---- copies ---- */

/* Reshape, Flatten, Squeeze, Unsqueeze: the same bytes in a new buffer (outputs never alias
 * inputs in this runtime). */
static ductile_status dt_copy_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_layer_params *p = params;
    size_t bytes = (size_t)dt_cuda_count(&out[0]) * (size_t)dt_esize(&out[0]);
    if (!bytes) return DUCTILE_OK;
    return dt_cuda_check(cudaMemcpyAsync(out[0].data, in[0].data, bytes, cudaMemcpyDeviceToDevice, (cudaStream_t)ex->stream),
                         p->L->op_type);
}

const dt_kernel dt_cuda_copy_kernel = {.prepare = dt_cuda_layer_prepare, .run = dt_copy_run};

/* Expand: a strided read with 0 strides on the broadcast dims. */
static ductile_status dt_expand_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_layer_params *p = params;
    int64_t st[DT_MAX_DIMS];
    dt_cuda_bcast_strides(&in[0], &out[0], st);
    return dt_cuda_check(dt_cu_transpose(in[0].data, out[0].data, dt_esize(&out[0]), out[0].rank, out[0].dims, st, 0,
                                         dt_cuda_count(&out[0]), ex->stream), p->L->op_type);
}

const dt_kernel dt_cuda_expand_kernel = {.prepare = dt_cuda_layer_prepare, .run = dt_expand_run};

/* ---- Slice ---- */

/* Before opset 10 starts, ends and axes are attributes, read here; from 10 they are inputs
 * whose values the host knows (constants or shape-pass values: ex->host_in). */
static ductile_status dt_slice_prepare(const ductile_layer *L, void **out)
{
    dt_cu_slice_params p = {.L = L};
    DT_TRY(dt_slice_attrs_read(L, &p.a));
    return dt_cuda_params_copy(&p, sizeof p, L, out);
}

/* Start offset and step strides from the plan the op computes. */
static ductile_status dt_slice_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_slice_params *p = params;
    dt_slice_plan sp;
    DT_TRY(dt_slice_plan_of(p->L, &p->a, ex->host_in, &sp));
    int r = in[0].rank;
    int64_t st[DT_MAX_DIMS], s = 1, base = 0;
    for (int d = r - 1; d >= 0; d--) {
        base += sp.start[d] * s;
        st[d] = sp.step[d] * s;
        s *= in[0].dims[d];
    }
    return dt_cuda_check(dt_cu_transpose(in[0].data, out[0].data, dt_esize(&out[0]), r, out[0].dims, st, base,
                                         dt_cuda_count(&out[0]), ex->stream), p->L->op_type);
}

const dt_kernel dt_cuda_slice_kernel = {.prepare = dt_slice_prepare, .run = dt_slice_run};

/* ---- DepthToSpace ---- */

static ductile_status dt_d2s_prepare(const ductile_layer *L, void **out)
{
    dt_cu_d2s_params p = {L, dt_attr_int(L, "blocksize", 0), !strcmp(dt_attr_string(L, "mode", "DCR"), "CRD"),
                          dt_depth_to_space_nhwc(L)};
    return dt_cuda_params_copy(&p, sizeof p, L, out);
}

/* A 6-D transpose (ops/shape.h dt_depth_to_space_source): the input channels first or last.
 * The op's check and infer hold blocksize > 0 and C divisible by its square. */
static ductile_status dt_d2s_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_cu_d2s_params *p = params;
    int64_t dims[6], st[6];
    dt_depth_to_space_source(p->nhwc, p->crd, in[0].dims, p->block, dims, st);
    if (in[0].dtype != out[0].dtype) /* attribute `to` (supports() admits float types) */
        return dt_cuda_check(dt_cu_transpose_cast(in[0].data, in[0].dtype, out[0].data, out[0].dtype, 6, dims, st,
                                                  dt_cuda_count(&out[0]), ex->stream), p->L->op_type);
    return dt_cuda_check(dt_cu_transpose(in[0].data, out[0].data, dt_esize(&out[0]), 6, dims, st, 0,
                                         dt_cuda_count(&out[0]), ex->stream), p->L->op_type);
}

const dt_kernel dt_cuda_d2s_kernel = {.prepare = dt_d2s_prepare, .run = dt_d2s_run};
