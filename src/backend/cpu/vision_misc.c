/* MaxUnpool and Upsample. */
#include "backend/cpu/vision_kernels.h"
#include "ops/vision.h"
#include "core/status.h"

#include <math.h>
#include <string.h>

/* Scatters X into zeros at the flat indices I, which index the unpooled shape (the one
 * inferred from the attributes); a larger output_shape pads that shape at the end. */
/* MaxUnpool's window, read once: kernel, strides (default 1) and pads (begin then end,
 * default 0) of its 1 to 3 spatial dims. */
typedef struct dt_unpool_params {
    int nk;
    int64_t k[3], s[3], p[6];
} dt_unpool_params;

static ductile_status dt_unpool_prepare(const ductile_layer *L, void **out)
{
    int64_t nk, ns, np;
    const int64_t *k = dt_attr_ints(L, "kernel_shape", &nk);
    const int64_t *s = dt_attr_ints(L, "strides", &ns);
    const int64_t *p = dt_attr_ints(L, "pads", &np);
    if (!k || nk < 1 || nk > 3)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'kernel_shape' with 1 to 3 values is required");
    if ((s && ns != nk) || (p && np != 2 * nk))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "attributes 'strides' and 'pads' need %lld and %lld values", (long long)nk,
                       (long long)(2 * nk));
    dt_unpool_params u = {.nk = (int)nk};
    for (int i = 0; i < u.nk; i++) {
        u.k[i] = k[i];
        u.s[i] = s ? s[i] : 1;
        u.p[i] = p ? p[i] : 0;
        u.p[u.nk + i] = p ? p[nk + i] : 0;
    }
    return dt_cpu_params_copy(&u, sizeof u, L, out);
}

static ductile_status dt_unpool_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    const dt_unpool_params *u = params;
    int r = in[0].rank;
    if (r != u->nk + 2)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (X) has rank %d; expected %d (N, C and the kernel's dims)", r,
                       u->nk + 2);
    int64_t inf[DT_MAX_DIMS], total = 1;
    for (int i = 0; i < r; i++) {
        inf[i] = i < 2 ? in[0].dims[i]
                       : (in[0].dims[i] - 1) * u->s[i - 2] - (u->p[i - 2] + u->p[u->nk + i - 2]) + u->k[i - 2];
        total *= inf[i];
    }
    float *y = out[0].data;
    memset(y, 0, (size_t)dt_view_count(&out[0]) * sizeof *y);
    const float *x = in[0].data;
    const int64_t *idx = in[1].data;
    for (int64_t e = 0, n = dt_view_count(&in[0]); e < n; e++) {
        int64_t f = idx[e];
        if (f < 0 || f >= total)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "input 1 (I): index %lld at element %lld is outside the unpooled "
                           "tensor of %lld elements", (long long)f, (long long)e,
                           (long long)total);
        int64_t o = 0, stride = 1;
        for (int i = r - 1; i >= 0; i--) {
            o += (f % inf[i]) * stride;
            f /= inf[i];
            stride *= out[0].dims[i];
        }
        y[o] = x[e];
    }
    return DUCTILE_OK;
}

/* Nearest: source index floor(o / scale); linear: asymmetric coordinates o / scale with the
 * upper neighbour clamped to the last index (Upsample-7/9, as onnxruntime computes them). */
const dt_kernel dt_cpu_maxunpool_kernel = {.prepare = dt_unpool_prepare, .run = dt_unpool_run};

/* Upsample's scales (the attribute's, opset 7) and mode, read once. */
typedef struct dt_upsample_params {
    dt_upsample_attrs a;
    bool linear;
} dt_upsample_params;

static ductile_status dt_upsample_prepare(const ductile_layer *L, void **out)
{
    dt_upsample_params p = {.linear = strcmp(dt_attr_string(L, "mode", "nearest"), "nearest") != 0};
    dt_vision_upsample_attrs_read(L, &p.a);
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_upsample_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    const dt_upsample_params *p = params;
    float sc[DT_MAX_DIMS];
    DT_TRY(dt_vision_upsample_scales_of(&p->a, in, sc));
    bool linear = p->linear;
    int r = in[0].rank;
    int64_t istr[DT_MAX_DIMS], coord[DT_MAX_DIMS] = {0};
    int64_t acc = 1;
    for (int i = r - 1; i >= 0; i--) istr[i] = acc, acc *= in[0].dims[i];
    const float *x = in[0].data;
    float *y = out[0].data;
    int64_t n = dt_view_count(&out[0]);
    if (dt_view_count(&in[0]) == 0) {
        memset(y, 0, (size_t)n * sizeof *y);
        return DUCTILE_OK;
    }
    for (int64_t e = 0; e < n; e++) {
        if (!linear) {
            int64_t off = 0;
            for (int i = 0; i < r; i++) {
                int64_t si = (int64_t)floorf((float)coord[i] / sc[i]);
                if (si >= in[0].dims[i]) si = in[0].dims[i] - 1;
                off += si * istr[i];
            }
            y[e] = x[off];
        } else {
            int ax[4], na = 0;
            int64_t base = 0, lo[DT_MAX_DIMS], hi[DT_MAX_DIMS];
            float fr[DT_MAX_DIMS];
            for (int i = 0; i < r; i++) {
                float c = (float)coord[i] / sc[i];
                int64_t c0 = (int64_t)floorf(c);
                if (c0 >= in[0].dims[i]) c0 = in[0].dims[i] - 1;
                lo[i] = c0;
                hi[i] = c0 + 1 < in[0].dims[i] ? c0 + 1 : c0;
                fr[i] = c - (float)c0;
                if (sc[i] != 1.0f) ax[na++] = i;
                else base += c0 * istr[i];
            }
            float v = 0.0f;
            for (int m = 0; m < (1 << na); m++) {
                int64_t off = base;
                float w = 1.0f;
                for (int t = 0; t < na; t++) {
                    int i = ax[t];
                    bool up = (m >> t) & 1;
                    off += (up ? hi[i] : lo[i]) * istr[i];
                    w *= up ? fr[i] : 1.0f - fr[i];
                }
                v += w * x[off];
            }
            y[e] = v;
        }
        for (int i = r - 1; i >= 0; i--) {
            if (++coord[i] < out[0].dims[i]) break;
            coord[i] = 0;
        }
    }
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_upsample_kernel = {.prepare = dt_upsample_prepare, .run = dt_upsample_run};
