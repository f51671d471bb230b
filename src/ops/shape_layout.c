/* Ops that reorder or repeat elements: Transpose, DepthToSpace, SpaceToDepth, Tile. */
#include "ops/shape.h"
#include "core/checked.h"
#include "core/status.h"

#include <string.h>

static bool dt_is_float_type(int64_t t)
{
    return t == DUCTILE_FLOAT32 || t == DUCTILE_FLOAT16 || t == DUCTILE_BFLOAT16;
}

/* `to` (not ONNX's: the builder's precision pass sets it on a Transpose where it folds the Cast
 * of a network input into the layout Transpose after it, and on a Transpose or DepthToSpace
 * whose output is a network output: the Cast back to float32) converts the elements to that
 * float type. */
static ductile_status dt_check_to(const ductile_layer *L)
{
    const dt_attr *a = dt_attr_find(L, "to");
    if (a && (a->type != DT_ATTR_INT || !dt_is_float_type(a->i)))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'to': expected float, float16 or bfloat16 (an int)");
    return DUCTILE_OK;
}

/* The output's dtype under `to`: the input's must be a float type. */
static ductile_status dt_apply_to(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    const dt_attr *to = dt_attr_find(L, "to");
    if (to && to->type == DT_ATTR_INT) {
        DT_TRY(dt_want_float(in, 0, dt_shape_name(L, 0), -1));
        out[0].dtype = (int)to->i;
        out[0].data = NULL; /* other bytes than the input's (dt_shape_same may pass its data on) */
    }
    return DUCTILE_OK;
}

ductile_status dt_shape_check_transpose(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 1, 1, 1, 1, NULL));
    return dt_check_to(L);
}

ductile_status dt_transpose_perm(const ductile_layer *L, int r, int perm[DT_MAX_DIMS])
{
    int64_t n;
    const int64_t *p = dt_attr_ints(L, "perm", &n);
    return dt_transpose_perm_of(L, p, n, r, perm);
}

ductile_status dt_transpose_perm_of(const ductile_layer *L, const int64_t *p, int64_t n, int r,
                                    int perm[DT_MAX_DIMS])
{
    if (!p) {
        for (int i = 0; i < r; i++) perm[i] = r - 1 - i;
        return DUCTILE_OK;
    }
    if (n != r)
        return dt_fail(DUCTILE_ERR_SHAPE, "attribute 'perm' has %lld values but input 0 ('%s') has rank %d",
                       (long long)n, dt_shape_name(L, 0), r);
    bool seen[DT_MAX_DIMS] = {false};
    for (int i = 0; i < r; i++) {
        if (p[i] < 0 || p[i] >= r || seen[p[i]])
            return dt_fail(DUCTILE_ERR_SHAPE,
                           "attribute 'perm'[%d] = %lld: expected a permutation of 0..%d", i,
                           (long long)p[i], r - 1);
        seen[p[i]] = true;
        perm[i] = (int)p[i];
    }
    return DUCTILE_OK;
}

ductile_status dt_shape_infer_transpose(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_shape_want_sized(L, in, 0));
    int perm[DT_MAX_DIMS];
    DT_TRY(dt_transpose_perm(L, in[0].rank, perm));
    dt_shape_same(&in[0], &out[0]);
    for (int i = 0; i < in[0].rank; i++) out[0].dims[i] = in[0].dims[perm[i]];
    return dt_apply_to(L, in, out);
}

static ductile_status dt_check_blocksize(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 1, 1, 1, 1, NULL));
    const dt_attr *a = dt_attr_find(L, "blocksize");
    if (!a || a->type != DT_ATTR_INT)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'blocksize' is required");
    if (a->i < 1 || a->i > (1 << 20))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'blocksize' = %lld; expected 1..%d",
                       (long long)a->i, 1 << 20);
    return DUCTILE_OK;
}

ductile_status dt_shape_check_depth_to_space(const ductile_layer *L)
{
    DT_TRY(dt_check_blocksize(L));
    DT_TRY(dt_check_to(L));
    const char *mode = dt_attr_string(L, "mode", "DCR");
    if (strcmp(mode, "DCR") != 0 && strcmp(mode, "CRD") != 0)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'mode' = '%s' is not supported (supported: DCR, CRD)", mode);
    const char *layout = dt_attr_string(L, "layout", "");
    if (layout[0] && strcmp(layout, "NHWC") != 0)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'layout' = '%s' is not supported (supported: NHWC)", layout);
    return DUCTILE_OK;
}

bool dt_depth_to_space_nhwc(const ductile_layer *L) { return !strcmp(dt_attr_string(L, "layout", ""), "NHWC"); }

ductile_status dt_shape_check_space_to_depth(const ductile_layer *L)
{
    DT_TRY(dt_check_blocksize(L));
    const char *mode = dt_attr_string(L, "mode", "DCR");
    if (strcmp(mode, "DCR") != 0 && strcmp(mode, "CRD") != 0)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'mode' = '%s' is not supported (supported: DCR, CRD)", mode);
    return DUCTILE_OK;
}

static ductile_status dt_want_rank4(const ductile_layer *L, const dt_view *in)
{
    DT_TRY(dt_shape_want_sized(L, in, 0));
    if (in[0].rank != 4) {
        char s[160];
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 ('%s') has shape %s; expected rank 4 (N, C, H, W)",
                       dt_shape_name(L, 0), dt_format_dims(s, sizeof s, in[0].dims, in[0].rank, NULL));
    }
    return DUCTILE_OK;
}

/* With attribute layout "NHWC" (the layout pass's, builder/layout.c) the input is channels
 * last, [N, H, W, C]; the output is [N, C / b^2, H * b, W * b] either way. */
ductile_status dt_shape_infer_depth_to_space(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_want_rank4(L, in));
    int64_t b = dt_attr_int(L, "blocksize", 1);
    const int64_t *d = in[0].dims;
    bool nhwc = dt_depth_to_space_nhwc(L);
    int64_t c = d[nhwc ? 3 : 1], h = d[nhwc ? 1 : 2], w = d[nhwc ? 2 : 3];
    if (c % (b * b) != 0) {
        char s[160];
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "input 0 ('%s') has shape %s: channels (%lld) are not a multiple of blocksize^2 (%lld)",
                       dt_shape_name(L, 0), dt_format_dims(s, sizeof s, d, 4, NULL),
                       (long long)c, (long long)(b * b));
    }
    dt_shape_same(&in[0], &out[0]);
    out[0].dims[1] = c / (b * b);
    if (!dt_mul_i64(h, b, &out[0].dims[2]) || !dt_mul_i64(w, b, &out[0].dims[3]))
        return dt_fail(DUCTILE_ERR_SHAPE, "the output dims overflow int64");
    return dt_apply_to(L, in, out);
}

void dt_depth_to_space_source(bool nhwc, bool crd, const int64_t *d, int64_t b, int64_t dims[6], int64_t stride[6])
{
    int64_t c = d[nhwc ? 3 : 1], h = d[nhwc ? 1 : 2], w = d[nhwc ? 2 : 3], c2 = c / (b * b);
    /* element (n, ch, y, x) of the input: channel stride, row stride, column stride */
    int64_t sc = nhwc ? 1 : h * w, sh = nhwc ? w * c : w, sw = nhwc ? c : 1;
    int64_t out_dims[6] = {d[0], c2, h, b, w, b};
    memcpy(dims, out_dims, sizeof out_dims);
    stride[0] = c * h * w;
    stride[2] = sh;
    stride[4] = sw;
    if (crd) { /* channel = (c', b1, b2) */
        stride[1] = b * b * sc, stride[3] = b * sc, stride[5] = sc;
    } else {   /* channel = (b1, b2, c') */
        stride[1] = sc, stride[3] = b * c2 * sc, stride[5] = c2 * sc;
    }
}

ductile_status dt_shape_infer_space_to_depth(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_want_rank4(L, in));
    int64_t b = dt_attr_int(L, "blocksize", 1);
    const int64_t *d = in[0].dims;
    if (d[2] % b != 0 || d[3] % b != 0) {
        char s[160];
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "input 0 ('%s') has shape %s: height and width must be multiples of blocksize (%lld)",
                       dt_shape_name(L, 0), dt_format_dims(s, sizeof s, d, 4, NULL), (long long)b);
    }
    dt_shape_same(&in[0], &out[0]);
    out[0].dims[1] = d[1] * b * b;
    out[0].dims[2] = d[2] / b;
    out[0].dims[3] = d[3] / b;
    return DUCTILE_OK;
}

ductile_status dt_shape_check_tile(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 2, 1, 1, DT_INPUT_NAMES("input", "repeats")));
    return DUCTILE_OK;
}

ductile_status dt_shape_infer_tile(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_shape_want_sized(L, in, 0));
    int64_t rep[DT_MAX_DIMS];
    int n, r = in[0].rank;
    DT_TRY(dt_shape_read_ints(L, in, 1, rep, DT_MAX_DIMS, &n));
    char sv[200];
    if (n != r)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 1 ('%s') = %s has %d values but input 0 ('%s') has rank %d",
                       dt_shape_name(L, 1), dt_shape_format_values(sv, sizeof sv, rep, n), n,
                       dt_shape_name(L, 0), r);
    dt_shape_same(&in[0], &out[0]);
    for (int i = 0; i < r; i++) {
        if (rep[i] < 0)
            return dt_fail(DUCTILE_ERR_SHAPE, "input 1 ('%s') = %s has the negative repeat %lld at position %d",
                           dt_shape_name(L, 1), dt_shape_format_values(sv, sizeof sv, rep, n),
                           (long long)rep[i], i);
        if (!dt_mul_i64(in[0].dims[i], rep[i], &out[0].dims[i]))
            return dt_fail(DUCTILE_ERR_SHAPE, "input 1 ('%s') = %s: dimension %d of the output, %lld*%lld, overflows int64",
                           dt_shape_name(L, 1), dt_shape_format_values(sv, sizeof sv, rep, n), i,
                           (long long)in[0].dims[i], (long long)rep[i]);
    }
    return DUCTILE_OK;
}
