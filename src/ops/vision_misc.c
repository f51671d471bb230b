/* MaxUnpool and Upsample (opsets 7 to 9; deprecated for Resize since 10). */
#include "ops/vision.h"
#include "core/checked.h"
#include "core/status.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

ductile_status dt_vision_check_maxunpool(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 3, 1, 1, DT_INPUT_NAMES("X", "I")));
    int64_t nk;
    if (!dt_attr_ints(L, "kernel_shape", &nk) || nk < 1 || nk > 3)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "attribute 'kernel_shape' with 1 to 3 values is required");
    return DUCTILE_OK;
}

ductile_status dt_vision_infer_maxunpool(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_want_float32(in, 0, "X"));
    const dt_view *x = &in[0];
    int64_t nk, ns, np;
    const int64_t *k = dt_attr_ints(L, "kernel_shape", &nk);
    const int64_t *s = dt_attr_ints(L, "strides", &ns);
    const int64_t *p = dt_attr_ints(L, "pads", &np);
    if (x->rank != nk + 2) {
        char e[64];
        snprintf(e, sizeof e, "rank %lld (N, C and the kernel's dims)", (long long)nk + 2);
        return dt_vision_bad_shape(0, "X", x, e);
    }
    if ((s && ns != nk) || (p && np != 2 * nk))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "attributes 'strides' and 'pads' need %lld and %lld values", (long long)nk,
                       (long long)(2 * nk));
    if (in[1].dtype != DUCTILE_INT64 || in[1].rank != x->rank ||
        memcmp(in[1].dims, x->dims, sizeof(int64_t) * (size_t)x->rank) != 0)
        return dt_vision_bad_shape(1, "I", &in[1], "int64 of X's shape");
    out[0] = *x;
    out[0].data = NULL;
    for (int i = 0; i < nk; i++) {
        int64_t st = s ? s[i] : 1, pb = p ? p[i] : 0, pe = p ? p[nk + i] : 0, d, pads;
        /* (in - 1)*stride - (pads) + kernel, each step checked: the attributes are the file's. */
        if (st < 1 || k[i] < 1 || pb < 0 || pe < 0)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "attributes at spatial dim %d: strides %lld, kernel_shape %lld, pads %lld, "
                           "%lld; expected strides and kernel_shape >= 1, pads >= 0", i,
                           (long long)st, (long long)k[i], (long long)pb, (long long)pe);
        if (!dt_mul_i64(x->dims[2 + i] - 1, st, &d) || !dt_add_i64(pb, pe, &pads) ||
            !dt_add_i64(d, k[i] - pads, &d))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "attributes at spatial dim %d: the output size (%lld - 1)*%lld (strides) - "
                           "%lld - %lld (pads) + %lld (kernel_shape) overflows int64", i,
                           (long long)x->dims[2 + i], (long long)st, (long long)pb, (long long)pe,
                           (long long)k[i]);
        if (d < 0)
            return dt_fail(DUCTILE_ERR_SHAPE, "spatial dim %d: the output size %lld is invalid "
                           "(pads %lld + %lld exceed the unpooled size)", i, (long long)d,
                           (long long)pb, (long long)pe);
        out[0].dims[2 + i] = d;
    }
    if (L->n_in > 2 && in[2].rank >= 0) {
        const dt_view *os = &in[2];
        if (!os->data)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                           "the output shape depends on the data of input 2 ('%s')",
                           L->in[2] ? L->in[2]->name : "output_shape");
        if (os->dtype != DUCTILE_INT64 || os->rank != 1 || os->dims[0] != x->rank)
            return dt_vision_bad_shape(2, "output_shape", os, "int64 [rank of X]");
        const int64_t *v = os->data;
        for (int i = 0; i < x->rank; i++)
            if (v[i] < out[0].dims[i] || (i < 2 && v[i] != x->dims[i]) || v[i] > ((int64_t)1 << 31))
                return dt_fail(DUCTILE_ERR_SHAPE,
                               "input 2 (output_shape): dim %d = %lld is smaller than the "
                               "unpooled size %lld (or changes N or C)", i, (long long)v[i],
                               (long long)out[0].dims[i]);
        for (int i = 0; i < x->rank; i++) out[0].dims[i] = v[i];
    }
    return DUCTILE_OK;
}

/* Upsample's scales: attribute (opset 7) or input 1 (opset 9). */
ductile_status dt_vision_upsample_scales(const ductile_layer *L, const dt_view *in, float *sc)
{
    dt_upsample_attrs a;
    dt_vision_upsample_attrs_read(L, &a);
    return dt_vision_upsample_scales_of(&a, in, sc);
}

void dt_vision_upsample_attrs_read(const ductile_layer *L, dt_upsample_attrs *a)
{
    *a = (dt_upsample_attrs){.from_input = L->opset >= 9, .n_in = L->n_in,
                             .name = L->n_in > 1 && L->in[1] ? L->in[1]->name : "scales"};
    if (a->from_input) return;
    int64_t n;
    const float *f = dt_attr_floats(L, "scales", &n);
    a->n = !f || n > DT_MAX_DIMS ? -1 : (int)n;
    for (int i = 0; i < a->n; i++) a->sc[i] = f[i];
}

ductile_status dt_vision_upsample_scales_of(const dt_upsample_attrs *a, const dt_view *in, float *sc)
{
    int r = in[0].rank;
    if (a->from_input) {
        if (a->n_in < 2 || in[1].rank < 0)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 1 (scales) is required");
        if (!in[1].data)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                           "the output shape depends on the data of input 1 ('%s')", a->name);
        if (in[1].dtype != DUCTILE_FLOAT32 || in[1].rank != 1 || in[1].dims[0] != r)
            return dt_vision_bad_shape(1, "scales", &in[1], "float32 [rank of X]");
        memcpy(sc, in[1].data, sizeof(float) * (size_t)r);
    } else {
        if (a->n != r)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "attribute 'scales' needs %d values (the rank of X)", r);
        memcpy(sc, a->sc, sizeof(float) * (size_t)r);
    }
    for (int i = 0; i < r; i++)
        if (!(sc[i] >= 1.0f) || sc[i] > 65536.0f)
            return dt_fail(DUCTILE_ERR_SHAPE, "scales[%d] = %g must be in [1, 65536]", i,
                           (double)sc[i]);
    return DUCTILE_OK;
}

ductile_status dt_vision_check_upsample(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 1, 2, 1, 1, NULL));
    const char *m = dt_attr_string(L, "mode", "nearest");
    if (strcmp(m, "nearest") != 0 && strcmp(m, "linear") != 0 && strcmp(m, "bilinear") != 0)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'mode' = '%s' is not supported (supported: nearest, linear)", m);
    return DUCTILE_OK;
}

ductile_status dt_vision_infer_upsample(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_want_float32(in, 0, "X"));
    float sc[DT_MAX_DIMS];
    DT_TRY(dt_vision_upsample_scales(L, in, sc));
    int resized = 0;
    out[0] = in[0];
    out[0].data = NULL;
    for (int i = 0; i < in[0].rank; i++) {
        out[0].dims[i] = (int64_t)floor((double)in[0].dims[i] * (double)sc[i]);
        resized += sc[i] != 1.0f;
    }
    if (resized > 4 && strcmp(dt_attr_string(L, "mode", "nearest"), "nearest") != 0)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "linear Upsample over %d axes is not supported "
                       "(supported: up to 4)", resized);
    return DUCTILE_OK;
}
