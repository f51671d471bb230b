/* Resize (opsets 10, 11, 13): checks, the scales/sizes reading shared with kernels, shapes. */
#include "ops/nn.h"
#include "core/status.h"

#include <stdio.h>
#include <string.h>

typedef struct { const char *name; int value; } dt_name_value;

static const dt_name_value dt_resize_modes[] = {
    {"nearest", DT_RESIZE_NEAREST}, {"linear", DT_RESIZE_LINEAR}, {NULL, 0}};
static const dt_name_value dt_resize_ctms[] = {
    {"half_pixel", DT_CTM_HALF_PIXEL},
    {"asymmetric", DT_CTM_ASYMMETRIC},
    {"align_corners", DT_CTM_ALIGN_CORNERS},
    {"pytorch_half_pixel", DT_CTM_PYTORCH_HALF_PIXEL},
    {"tf_half_pixel_for_nn", DT_CTM_TF_HALF_PIXEL_FOR_NN},
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
        DT_TRY(dt_nn_check_arity(L, 2, 2, 1, 1));
    else
        DT_TRY(dt_nn_check_arity(L, 1, 4, 1, 1));
    dt_resize_params p;
    DT_TRY(dt_resize_attrs(L, &p));
    /* Opset 18 attributes, refused rather than ignored if a model carries them early. */
    DT_TRY(dt_nn_check_int_range(L, "antialias", 0, 0, 0));
    if (dt_attr_find(L, "axes"))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'axes' is not supported");
    const char *kar = dt_attr_string(L, "keep_aspect_ratio_policy", "stretch");
    if (strcmp(kar, "stretch") != 0)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'keep_aspect_ratio_policy' = '%s' is not supported (supported: "
                       "stretch)", kar);
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

ductile_status dt_resize_params_get(const ductile_layer *L, const dt_view *in, dt_resize_params *p)
{
    DT_TRY(dt_resize_attrs(L, p));
    const dt_view *x = &in[0];
    int r = x->rank;
    int is = L->opset < 11 ? 1 : 2, iz = L->opset < 11 ? -1 : 3;
    bool has_scales = dt_nn_present(L, in, is);
    bool has_sizes = iz > 0 && dt_nn_present(L, in, iz);
    if (has_scales && has_sizes)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "inputs 2 (scales) and 3 (sizes) are both given; expected only one");
    if (has_sizes) {
        DT_TRY(dt_resize_need_data(L, in, iz, "sizes", r, DUCTILE_INT64));
        for (int i = 0; i < r; i++) {
            int64_t o = dt_view_int(&in[iz], i);
            if (o < 0)
                return dt_fail(DUCTILE_ERR_SHAPE, "input 3 (sizes)[%d] = %lld; expected >= 0", i,
                               (long long)o);
            if (x->dims[i] == 0 && o != 0)
                return dt_fail(DUCTILE_ERR_SHAPE,
                               "input 0 (X) dim %d is 0 and cannot be resized to %lld", i,
                               (long long)o);
            p->out[i] = o;
            p->scale[i] = x->dims[i] ? (float)o / (float)x->dims[i] : 1.0f;
        }
        return DUCTILE_OK;
    }
    if (!has_scales)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, L->opset < 11
                       ? "input 1 (scales) is empty; expected one scale per dim of X"
                       : "neither input 2 (scales) nor input 3 (sizes) is given; expected one");
    DT_TRY(dt_resize_need_data(L, in, is, "scales", r, DUCTILE_FLOAT32));
    const float *sc = in[is].data;
    for (int i = 0; i < r; i++) {
        if (!(sc[i] > 0.0f))
            return dt_fail(DUCTILE_ERR_SHAPE, "input %d (scales)[%d] = %g; expected > 0", is, i,
                           (double)sc[i]);
        p->scale[i] = sc[i];
        /* The product in float, as onnxruntime computes it, so both agree on the size. */
        p->out[i] = (int64_t)(sc[i] * (float)x->dims[i]);
    }
    return DUCTILE_OK;
}

ductile_status dt_nn_infer_resize(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_nn_want_float(in, 0, "X"));
    dt_resize_params p;
    DT_TRY(dt_resize_params_get(L, in, &p));
    out[0].dtype = in[0].dtype;
    out[0].rank = in[0].rank;
    for (int i = 0; i < in[0].rank; i++) out[0].dims[i] = p.out[i];
    return DUCTILE_OK;
}
