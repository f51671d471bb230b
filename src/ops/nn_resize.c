/* Resize (opsets 10, 11, 13, 18, 19): checks, the scales/sizes reading shared with kernels, shapes. */
#include "ops/nn.h"
#include "core/status.h"

#include <stdio.h>
#include <string.h>

typedef struct { const char *name; int value; } dt_name_value;

static const dt_name_value dt_resize_modes[] = {
    {"nearest", DT_RESIZE_NEAREST}, {"linear", DT_RESIZE_LINEAR}, {"cubic", DT_RESIZE_CUBIC},
    {NULL, 0}};
static const dt_name_value dt_resize_ctms[] = {
    {"half_pixel", DT_CTM_HALF_PIXEL},
    {"asymmetric", DT_CTM_ASYMMETRIC},
    {"align_corners", DT_CTM_ALIGN_CORNERS},
    {"pytorch_half_pixel", DT_CTM_PYTORCH_HALF_PIXEL},
    {"tf_half_pixel_for_nn", DT_CTM_TF_HALF_PIXEL_FOR_NN},
    {"half_pixel_symmetric", DT_CTM_HALF_PIXEL_SYMMETRIC},
    {"tf_crop_and_resize", DT_CTM_TF_CROP_AND_RESIZE},
    {NULL, 0}};
static const dt_name_value dt_resize_nearest_modes[] = {
    {"round_prefer_floor", DT_NEAREST_ROUND_PREFER_FLOOR},
    {"round_prefer_ceil", DT_NEAREST_ROUND_PREFER_CEIL},
    {"floor", DT_NEAREST_FLOOR},
    {"ceil", DT_NEAREST_CEIL},
    {NULL, 0}};

/* Looks a STRING attribute up in a table; UNSUPPORTED listing the table otherwise. */
static ductile_status dt_resize_enum(const ductile_layer *L, const char *attr, const char *dflt,
                                     const dt_name_value *tab, int *out)
{
    const char *v = dt_attr_string(L, attr, dflt);
    for (const dt_name_value *e = tab; e->name; e++)
        if (strcmp(e->name, v) == 0) {
            *out = e->value;
            return DUCTILE_OK;
        }
    char list[256] = "";
    size_t len = 0;
    for (const dt_name_value *e = tab; e->name && len + strlen(e->name) + 3 < sizeof list; e++) {
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", e == tab ? "" : ", ", e->name);
    }
    return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute '%s' = '%s' is not supported (supported: %s)",
                   attr, v, list);
}

static ductile_status dt_resize_attrs(const ductile_layer *L, dt_resize_params *p)
{
    DT_TRY(dt_resize_enum(L, "mode", "nearest", dt_resize_modes, &p->mode));
    p->cubic_a = dt_attr_float(L, "cubic_coeff_a", -0.75f);
    p->extrapolation = dt_attr_float(L, "extrapolation_value", 0.0f);
    p->exclude_outside = dt_attr_int(L, "exclude_outside", 0) != 0;
    p->antialias = dt_attr_int(L, "antialias", 0) != 0;
    p->has_roi = false;
    if (L->opset < 11) {
        /* Resize-10 has Upsample's asymmetric transform and its own nearest rounding. */
        p->ctm = DT_CTM_ASYMMETRIC;
        p->nearest = DT_NEAREST_OPSET10;
        return DUCTILE_OK;
    }
    DT_TRY(dt_resize_enum(L, "coordinate_transformation_mode", "half_pixel", dt_resize_ctms,
                          &p->ctm));
    DT_TRY(dt_resize_enum(L, "nearest_mode", "round_prefer_floor", dt_resize_nearest_modes,
                          &p->nearest));
    return DUCTILE_OK;
}

ductile_status dt_nn_check_resize(const ductile_layer *L)
{
    if (L->opset < 11)
        DT_TRY(dt_check_arity(L, 2, 2, 1, 1, NULL));
    else
        DT_TRY(dt_check_arity(L, 1, 4, 1, 1, NULL));
    dt_resize_params p;
    DT_TRY(dt_resize_attrs(L, &p));
    DT_TRY(dt_nn_check_int_range(L, "antialias", 0, 0, 1));
    DT_TRY(dt_nn_check_int_range(L, "exclude_outside", 0, 0, 1));
    if (p.antialias && p.mode == DT_RESIZE_NEAREST)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'antialias' = 1 is not supported with mode 'nearest'");
    const char *kar = dt_attr_string(L, "keep_aspect_ratio_policy", "stretch");
    if (strcmp(kar, "stretch") != 0 && strcmp(kar, "not_larger") != 0 &&
        strcmp(kar, "not_smaller") != 0)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'keep_aspect_ratio_policy' = '%s' is not supported (supported: "
                       "stretch, not_larger, not_smaller)", kar);
    return DUCTILE_OK;
}

static ductile_status dt_resize_need_data(const ductile_layer *L, const dt_view *in, int i,
                                          const char *what, int rank, int dtype)
{
    if (in[i].rank != 1 || in[i].dims[0] != rank) {
        char s[160];
        dt_format_dims(s, sizeof s, in[i].dims, in[i].rank, NULL);
        return dt_fail(DUCTILE_ERR_SHAPE, "input %d (%s) has shape %s; expected [%d] (one value "
                       "per dim of X)", i, what, s, rank);
    }
    if (in[i].dtype != dtype && !(dtype == DUCTILE_INT64 && in[i].dtype == DUCTILE_INT32))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input %d (%s) has dtype %s; expected %s", i,
                       what, ductile_dtype_name((ductile_dtype)in[i].dtype),
                       ductile_dtype_name((ductile_dtype)dtype));
    if (!in[i].data)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the output shape depends on the data of input %d (%s)",
                       i, L->in[i] ? L->in[i]->name : what);
    return DUCTILE_OK;
}

ductile_status dt_resize_layer_read(const ductile_layer *L, dt_resize_layer *r)
{
    memset(r, 0, sizeof *r);
    r->L = L;
    DT_TRY(dt_resize_attrs(L, &r->attrs));
    int64_t nax;
    const int64_t *ax = dt_attr_ints(L, "axes", &nax);
    r->n_axes = -1;
    if (ax) {
        /* A count outside 1..rank is refused with the rank, by dt_resize_params_of. */
        r->n_axes = nax;
        for (int64_t k = 0; k < nax && k < DT_MAX_DIMS; k++) r->axes[k] = ax[k];
    }
    const char *kar = dt_attr_string(L, "keep_aspect_ratio_policy", "stretch");
    r->keep_aspect = strcmp(kar, "not_larger") == 0 ? 1 : strcmp(kar, "not_smaller") == 0 ? 2 : 0;
    return DUCTILE_OK;
}

ductile_status dt_resize_params_get(const ductile_layer *L, const dt_view *in, dt_resize_params *p)
{
    dt_resize_layer r;
    DT_TRY(dt_resize_layer_read(L, &r));
    return dt_resize_params_of(&r, in, p);
}

ductile_status dt_resize_params_of(const dt_resize_layer *rl, const dt_view *in, dt_resize_params *p)
{
    const ductile_layer *L = rl->L;
    *p = rl->attrs;
    const dt_view *x = &in[0];
    int r = x->rank;
    int is = L->opset < 11 ? 1 : 2, iz = L->opset < 11 ? -1 : 3;
    /* axes[k]: the axis of X that value k of scales, sizes and roi is for. */
    int axes[DT_MAX_DIMS], na = r;
    bool seen[DT_MAX_DIMS] = {false};
    int64_t nax = rl->n_axes;
    const int64_t *ax = nax < 0 ? NULL : rl->axes;
    if (ax) {
        if (nax < 1 || nax > r)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "attribute 'axes' has %lld values; expected 1 to %d (the rank of X)",
                           (long long)nax, r);
        na = (int)nax;
        for (int k = 0; k < na; k++) {
            int a;
            if (dt_norm_axis(ax[k], r, &a) != DUCTILE_OK || seen[a])
                return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                               "attribute 'axes'[%d] = %lld is out of range or repeated", k,
                               (long long)ax[k]);
            seen[a] = true;
            axes[k] = a;
        }
    } else {
        for (int k = 0; k < r; k++) axes[k] = k;
    }
    for (int i = 0; i < r; i++) {
        p->out[i] = x->dims[i];
        p->scale[i] = 1.0f;
        p->roi_start[i] = 0.0f;
        p->roi_end[i] = 1.0f;
        p->len[i] = (float)x->dims[i];
    }
    /* roi (opset 11+): [starts..., ends...] over the axes; only tf_crop_and_resize reads it. */
    if (L->opset >= 11 && p->ctm == DT_CTM_TF_CROP_AND_RESIZE && dt_nn_present(L, in, 1)) {
        if (in[1].rank != 1 || in[1].dims[0] != 2 * na || in[1].dtype != DUCTILE_FLOAT32)
            return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (roi) must be float32 [%d] (starts and "
                           "ends of the resized axes)", 2 * na);
        if (in[1].data) {
            const float *roi = in[1].data;
            for (int k = 0; k < na; k++) {
                p->roi_start[axes[k]] = roi[k];
                p->roi_end[axes[k]] = roi[na + k];
            }
            p->has_roi = true;
        }
    } else if (p->ctm == DT_CTM_TF_CROP_AND_RESIZE) {
        p->has_roi = true; /* no roi: the whole axis */
    }
    bool has_scales = dt_nn_present(L, in, is);
    bool has_sizes = iz > 0 && dt_nn_present(L, in, iz);
    if (has_scales && has_sizes)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "inputs 2 (scales) and 3 (sizes) are both given; expected only one");
    if (has_sizes) {
        DT_TRY(dt_resize_need_data(L, in, iz, "sizes", na, DUCTILE_INT64));
        for (int k = 0; k < na; k++) {
            int i = axes[k];
            int64_t o = dt_view_int(&in[iz], k);
            if (o < 0)
                return dt_fail(DUCTILE_ERR_SHAPE, "input 3 (sizes)[%d] = %lld; expected >= 0", i,
                               (long long)o);
            if (x->dims[i] == 0 && o != 0)
                return dt_fail(DUCTILE_ERR_SHAPE,
                               "input 0 (X) dim %d is 0 and cannot be resized to %lld", i,
                               (long long)o);
            p->out[i] = o;
            p->len[i] = (float)o;
            p->scale[i] = x->dims[i] ? (float)o / (float)x->dims[i] : 1.0f;
        }
        if (rl->keep_aspect != 0) {
            /* One scale for the resized axes: the smallest (not_larger) or the largest. */
            bool larger = rl->keep_aspect == 2;
            float s = p->scale[axes[0]];
            for (int k = 1; k < na; k++)
                s = larger ? (p->scale[axes[k]] > s ? p->scale[axes[k]] : s)
                           : (p->scale[axes[k]] < s ? p->scale[axes[k]] : s);
            for (int k = 0; k < na; k++) {
                int i = axes[k];
                p->scale[i] = s;
                p->len[i] = s * (float)x->dims[i];
                p->out[i] = (int64_t)(p->len[i] + 0.5f);
            }
        }
        return DUCTILE_OK;
    }
    if (!has_scales)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, L->opset < 11
                       ? "input 1 (scales) is empty; expected one scale per dim of X"
                       : "neither input 2 (scales) nor input 3 (sizes) is given; expected one");
    DT_TRY(dt_resize_need_data(L, in, is, "scales", na, DUCTILE_FLOAT32));
    const float *sc = in[is].data;
    for (int k = 0; k < na; k++) {
        int i = axes[k];
        if (!(sc[k] > 0.0f) || sc[k] > 1e6f)
            return dt_fail(DUCTILE_ERR_SHAPE, "input %d (scales)[%d] = %g; expected > 0 and "
                           "at most 1e6", is, k, (double)sc[k]);
        p->scale[i] = sc[k];
        /* The product in float, as onnxruntime computes it, so both agree on the size. */
        p->len[i] = sc[k] * (float)x->dims[i];
        p->out[i] = (int64_t)p->len[i];
    }
    return DUCTILE_OK;
}

ductile_status dt_nn_infer_resize(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_want_float(in, 0, "X", -1));
    dt_resize_params p;
    DT_TRY(dt_resize_params_get(L, in, &p));
    out[0].dtype = in[0].dtype;
    out[0].rank = in[0].rank;
    for (int i = 0; i < in[0].rank; i++) out[0].dims[i] = p.out[i];
    return DUCTILE_OK;
}
