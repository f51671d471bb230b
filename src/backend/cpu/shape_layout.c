/* Transpose, Slice, Expand, Tile, DepthToSpace, SpaceToDepth: each is an index map handed to
 * the strided-copy engine. */
#include "backend/cpu/elementwise_impl.h"
#include "backend/cpu/shape_copy.h"
#include "backend/cpu/shape_kernels.h"
#include "ops/shape.h"
#include "core/alloc.h"
#include "core/status.h"
#include "ops/shape.h"

#include <stdbool.h>
#include <string.h>

static size_t dt_esize(const dt_view *v) { return ductile_dtype_size((ductile_dtype)v->dtype); }

static ductile_status dt_transpose_exec(const int perm[DT_MAX_DIMS], const dt_view *in, dt_view *out, dt_exec *ex)
{
    int64_t st[DT_MAX_DIMS];
    dt_cpu_dense_strides(&in[0], st);
    dt_strided s = {.rank = in[0].rank};
    for (int k = 0; k < s.rank; k++) {
        s.dims[k] = in[0].dims[perm[k]];
        s.stride[k] = st[perm[k]];
    }
    dt_cpu_strided_copy(ex, out[0].data, in[0].data, dt_esize(&in[0]), &s);
    return DUCTILE_OK;
}

/* Transpose compiled: 'perm' read once (its first DT_MAX_DIMS values: a longer one is
 * refused by its count, which no rank matches). */
typedef struct dt_transpose_params {
    const ductile_layer *L;     /* names input 0 in messages */
    int64_t n;                  /* -1: no 'perm' */
    int64_t perm[DT_MAX_DIMS];
} dt_transpose_params;

static ductile_status dt_transpose_prepare(const ductile_layer *L, void **out)
{
    dt_transpose_params p = {.L = L, .n = -1};
    int64_t n;
    const int64_t *v = dt_attr_ints(L, "perm", &n);
    if (v) {
        p.n = n;
        for (int64_t i = 0; i < n && i < DT_MAX_DIMS; i++) p.perm[i] = v[i];
    }
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

/* A Transpose or DepthToSpace with `to` (ops/shape_layout.c) converts: the rearranged input's
 * bytes in scratch. */
static ductile_status dt_convert_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                           size_t *bytes)
{
    (void)params;
    (void)threads;
    *bytes = in[0].dtype == out[0].dtype ? 0 : dt_cpu_view_bytes(&in[0]);
    return DUCTILE_OK;
}

/* A converting layer's rearranged input, in the input's type: out's shape in the scratch
 * dt_convert_scratch sized (or, run without it, a block of its own). */
static ductile_status dt_convert_mid(const dt_view *in, const dt_view *out, dt_exec *ex, const char *name, dt_view *mid)
{
    size_t bytes = dt_cpu_view_bytes(&in[0]);
    *mid = out[0];
    mid->dtype = in[0].dtype;
    mid->data = ex->scratch && ex->scratch_bytes >= bytes ? ex->scratch : dt_malloc(bytes ? bytes : 1);
    if (!mid->data)
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) rearranging '%s' before its conversion", bytes,
                       name);
    return DUCTILE_OK;
}

/* Cast's conversion of mid into out (where the rearrangement, status s, worked), then mid's
 * block released. */
static ductile_status dt_convert_from_mid(dt_view *mid, dt_view *out, dt_exec *ex, ductile_status s)
{
    if (!s) s = dt_ew_cast_view(mid, &out[0], ex);
    if (mid->data != ex->scratch) dt_free(mid->data);
    return s;
}

static ductile_status dt_transpose_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_transpose_params *p = params;
    int perm[DT_MAX_DIMS];
    DT_TRY(dt_transpose_perm_of(p->L, p->n < 0 ? NULL : p->perm, p->n, in[0].rank, perm));
    if (in[0].dtype == out[0].dtype) return dt_transpose_exec(perm, in, out, ex);
    /* The reference of the device's one-pass kernel: transpose, then Cast's conversion. */
    dt_view mid;
    DT_TRY(dt_convert_mid(in, out, ex, p->L->name, &mid));
    return dt_convert_from_mid(&mid, out, ex, dt_transpose_exec(perm, in, &mid, ex));
}

const dt_kernel dt_cpu_transpose_kernel = {.prepare = dt_transpose_prepare, .scratch = dt_convert_scratch,
                                           .run = dt_transpose_run};

/* Slice compiled: starts/ends/axes read once before opset 10 (later they are inputs, whose
 * values the shape pass knows); the layer kept for naming inputs in messages. */
typedef struct dt_slice_params {
    const ductile_layer *L;
    dt_slice_attrs a;
} dt_slice_params;

static ductile_status dt_slice_prepare(const ductile_layer *L, void **out)
{
    dt_slice_params p = {.L = L};
    DT_TRY(dt_slice_attrs_read(L, &p.a));
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_slice_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_slice_params *prm = params;
    dt_slice_plan p;
    DT_TRY(dt_slice_plan_of(prm->L, &prm->a, in, &p));
    if (dt_view_count(&out[0]) == 0) return DUCTILE_OK;
    int64_t st[DT_MAX_DIMS], base = 0;
    dt_cpu_dense_strides(&in[0], st);
    dt_strided s = {.rank = in[0].rank};
    for (int k = 0; k < s.rank; k++) {
        s.dims[k] = p.len[k];
        /* A single element needs no stride (and a huge step would overflow it). */
        s.stride[k] = p.len[k] > 1 ? st[k] * p.step[k] : 0;
        base += p.start[k] * st[k];
    }
    size_t es = dt_esize(&in[0]);
    dt_cpu_strided_copy(ex, out[0].data, (const char *)in[0].data + (size_t)base * es, es, &s);
    return DUCTILE_OK;
}

static ductile_status dt_expand_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    int64_t st[DT_MAX_DIMS];
    dt_cpu_dense_strides(&in[0], st);
    int R = out[0].rank, lead = R - in[0].rank;
    dt_strided s = {.rank = R};
    for (int k = 0; k < R; k++) {
        int i = k - lead;
        s.dims[k] = out[0].dims[k];
        /* A unit (or missing) input dim is read again for every output index: stride 0. */
        s.stride[k] = i >= 0 && in[0].dims[i] != 1 ? st[i] : 0;
    }
    dt_cpu_strided_copy(ex, out[0].data, in[0].data, dt_esize(&in[0]), &s);
    return DUCTILE_OK;
}

static ductile_status dt_tile_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    int64_t st[DT_MAX_DIMS];
    dt_cpu_dense_strides(&in[0], st);
    /* Output dim k of size rep*d is seen as (rep, d): the repeat index reads nothing new. */
    dt_strided s = {.rank = 2 * in[0].rank};
    for (int k = 0; k < in[0].rank; k++) {
        int64_t d = in[0].dims[k];
        s.dims[2 * k] = d ? out[0].dims[k] / d : 0;
        s.stride[2 * k] = 0;
        s.dims[2 * k + 1] = d;
        s.stride[2 * k + 1] = st[k];
    }
    dt_cpu_strided_copy(ex, out[0].data, in[0].data, dt_esize(&in[0]), &s);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_slice_kernel = {.prepare = dt_slice_prepare, .run = dt_slice_run};
const dt_kernel dt_cpu_expand_kernel = {.run = dt_expand_run};
const dt_kernel dt_cpu_tile_kernel = {.run = dt_tile_run};

/* The output of DepthToSpace and the input of SpaceToDepth are [N, C', H, b, W, b] with
 * C' the small channel count; the other side has channels made of (b, b, C') or (C', b, b). */
/* DepthToSpace and SpaceToDepth compiled: blocksize and mode read once. */
typedef struct dt_block_params {
    const ductile_layer *L;
    int64_t b;
    bool crd, nhwc;
} dt_block_params;

static ductile_status dt_block_prepare(const ductile_layer *L, void **out)
{
    dt_block_params p = {L, dt_attr_int(L, "blocksize", 1), strcmp(dt_attr_string(L, "mode", "DCR"), "CRD") == 0,
                         dt_depth_to_space_nhwc(L)};
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

/* With `to` (ops/shape_layout.c) the reference of the device's one-pass kernel: the copy in
 * the input's type into scratch, then Cast's conversion. */
static ductile_status dt_depth_to_space_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_block_params *p = params;
    dt_strided s = {.rank = 6};
    dt_depth_to_space_source(p->nhwc, p->crd, in[0].dims, p->b, s.dims, s.stride);
    if (in[0].dtype == out[0].dtype) {
        dt_cpu_strided_copy(ex, out[0].data, in[0].data, dt_esize(&in[0]), &s);
        return DUCTILE_OK;
    }
    dt_view mid;
    DT_TRY(dt_convert_mid(in, out, ex, p->L->name, &mid));
    dt_cpu_strided_copy(ex, mid.data, in[0].data, dt_esize(&in[0]), &s);
    return dt_convert_from_mid(&mid, out, ex, DUCTILE_OK);
}

static ductile_status dt_space_to_depth_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_block_params *p = params;
    const int64_t *d = in[0].dims;
    int64_t b = p->b, C = d[1], H = d[2], W = d[3];
    /* Output channels are (b, b, C) in DCR mode, (C, b, b) in CRD mode. */
    dt_strided s = {.rank = 6,
                    .dims = {d[0], b, b, C, H / b, W / b},
                    .stride = {C * H * W, W, 1, H * W, b * W, b}};
    if (p->crd) {
        s.dims[1] = C, s.dims[2] = b, s.dims[3] = b;
        s.stride[1] = H * W, s.stride[2] = W, s.stride[3] = 1;
    }
    dt_cpu_strided_copy(ex, out[0].data, in[0].data, dt_esize(&in[0]), &s);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_depth_to_space_kernel = {.prepare = dt_block_prepare, .scratch = dt_convert_scratch,
                                                .run = dt_depth_to_space_run};
const dt_kernel dt_cpu_space_to_depth_kernel = {.prepare = dt_block_prepare, .run = dt_space_to_depth_run};
