/* LRN, GroupNormalization, MeanVarianceNormalization. Statistics accumulate in double,
 * two passes (mean, then squared deviations). */
#include "backend/cpu/vision_kernels.h"
#include "ops/vision.h"
#include "core/status.h"
#include "core/threadpool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The attributes of LRN and GroupNormalization, read once. */
typedef struct dt_vnorm_params {
    int64_t size;               /* LRN */
    float alpha, beta, bias;    /* LRN */
    int64_t groups;             /* GroupNormalization */
    float eps;                  /* GroupNormalization */
    bool per_channel;           /* GroupNormalization: scale and bias per channel (opset 21) */
} dt_vnorm_params;

static ductile_status dt_lrn_prepare(const ductile_layer *L, void **out)
{
    dt_vnorm_params p = {.size = dt_attr_int(L, "size", 1), .alpha = dt_attr_float(L, "alpha", 1e-4f),
                         .beta = dt_attr_float(L, "beta", 0.75f), .bias = dt_attr_float(L, "bias", 1.0f)};
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_lrn_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    const dt_vnorm_params *p = params;
    int64_t size = p->size;
    float alpha = p->alpha, beta = p->beta, bias = p->bias;
    int64_t N = in[0].dims[0], C = in[0].dims[1], S = 1;
    for (int i = 2; i < in[0].rank; i++) S *= in[0].dims[i];
    int64_t c1 = (size - 1) / 2, c2 = size / 2 + 1; /* floor, ceil((size - 1) / 2) + 1 */
    const float *x = in[0].data;
    float *y = out[0].data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            int64_t b = c - c1 < 0 ? 0 : c - c1, e = c + c2 > C ? C : c + c2;
            for (int64_t s = 0; s < S; s++) {
                float sq = 0.0f;
                for (int64_t k = b; k < e; k++) {
                    float v = x[(n * C + k) * S + s];
                    sq += v * v;
                }
                y[(n * C + c) * S + s] =
                    x[(n * C + c) * S + s] / powf(bias + alpha / (float)size * sq, beta);
            }
        }
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_lrn_kernel = {.prepare = dt_lrn_prepare, .run = dt_lrn_run};

static ductile_status dt_groupnorm_prepare(const ductile_layer *L, void **out)
{
    dt_vnorm_params p = {.groups = dt_attr_int(L, "num_groups", 1), .eps = dt_attr_float(L, "epsilon", 1e-5f),
                         .per_channel = L->opset >= 21};
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_groupnorm_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    const dt_vnorm_params *pp = params;
    int64_t G = pp->groups;
    float eps = pp->eps;
    int64_t N = in[0].dims[0], C = in[0].dims[1], S = 1;
    for (int i = 2; i < in[0].rank; i++) S *= in[0].dims[i];
    int64_t cg = C / G, block = cg * S;
    bool per_channel = pp->per_channel;
    const float *x = in[0].data, *scale = in[1].data, *bias = in[2].data;
    float *y = out[0].data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < G; g++) {
            const float *xg = x + (n * C + g * cg) * S;
            float *yg = y + (n * C + g * cg) * S;
            double m = 0.0, v = 0.0;
            for (int64_t i = 0; i < block; i++) m += xg[i];
            m = block ? m / (double)block : 0.0;
            for (int64_t i = 0; i < block; i++) v += (xg[i] - m) * (xg[i] - m);
            v = block ? v / (double)block : 0.0;
            float inv = (float)(1.0 / sqrt(v + eps));
            for (int64_t c = 0; c < cg; c++) {
                int64_t p = per_channel ? g * cg + c : g;
                for (int64_t s = 0; s < S; s++) {
                    int64_t i = c * S + s;
                    yg[i] = scale[p] * (float)(xg[i] - m) * inv + bias[p];
                }
            }
        }
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_groupnorm_kernel = {.prepare = dt_groupnorm_prepare, .run = dt_groupnorm_run};

/* MeanVarianceNormalization's axes as a set: bit a + DT_MAX_DIMS for each axis a in
 * [-DT_MAX_DIMS, DT_MAX_DIMS) (infer refuses the others, whatever the rank). */
typedef struct dt_mvn_params {
    uint32_t axes;
} dt_mvn_params;

static ductile_status dt_mvn_prepare(const ductile_layer *L, void **out)
{
    static const int64_t dflt[3] = {0, 2, 3};
    int64_t na;
    const int64_t *ax = dt_attr_ints(L, "axes", &na);
    if (!ax) ax = dflt, na = 3;
    dt_mvn_params p = {0};
    for (int64_t i = 0; i < na; i++) {
        if (ax[i] < -DT_MAX_DIMS || ax[i] >= DT_MAX_DIMS)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'axes': axes[%lld] = %lld is outside -%d..%d",
                           (long long)i, (long long)ax[i], DT_MAX_DIMS, DT_MAX_DIMS - 1);
        p.axes |= 1u << (ax[i] + DT_MAX_DIMS);
    }
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

/* The group sums (2 x groups doubles), then each element's group (n int64). */
static bool dt_mvn_bytes(const dt_mvn_params *p, const dt_view *x, int64_t *groups, size_t *bytes)
{
    int r = x->rank;
    int64_t n = dt_view_count(x), g = 1;
    for (int i = 0; i < r; i++)
        if (!(p->axes >> (i + DT_MAX_DIMS) & 1) && !(p->axes >> (i - r + DT_MAX_DIMS) & 1)) g *= x->dims[i];
    *groups = g;
    size_t a, b;
    return !__builtin_mul_overflow((size_t)g, 2 * sizeof(double), &a) &&
           !__builtin_mul_overflow((size_t)n, sizeof(int64_t), &b) && !__builtin_add_overflow(a, b, bytes);
}

static ductile_status dt_mvn_scratch(const void *params, const dt_view *in, const dt_view *out,
                                     int threads, size_t *bytes)
{
    int64_t groups;
    *bytes = 0;
    if (dt_view_count(&in[0]) == 0) return DUCTILE_OK;
    if (!dt_mvn_bytes(params, &in[0], &groups, bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "MeanVarianceNormalization: the statistics of %lld elements overflow",
                       (long long)dt_view_count(&in[0]));
    return DUCTILE_OK;
}

/* (X - E[X]) / (sqrt(E[(X - E[X])^2]) + 1e-9) over the attribute 'axes' (ONNX's function
 * body adds 1e-9 to the deviation). */
static ductile_status dt_mvn_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_mvn_params *p = params;
    int r = in[0].rank;
    bool red[DT_MAX_DIMS] = {false};
    for (int i = 0; i < r; i++)
        red[i] = (p->axes >> (i + DT_MAX_DIMS) & 1) || (p->axes >> (i - r + DT_MAX_DIMS) & 1);
    /* Group index of each element: its coordinates along the kept dims, flattened. */
    int64_t groups, n = dt_view_count(&in[0]);
    if (n == 0) return DUCTILE_OK;
    size_t need = 0;
    if (!dt_mvn_bytes(p, &in[0], &groups, &need) || !ex->scratch || ex->scratch_bytes < need)
        return dt_fail(DUCTILE_ERR_INTERNAL, "MeanVarianceNormalization: %zu bytes of scratch given, %zu needed",
                       ex->scratch_bytes, need);
    double *sum = ex->scratch;
    int64_t *gi = (int64_t *)(sum + 2 * groups);
    memset(sum, 0, (size_t)groups * 2 * sizeof *sum);
    int64_t coord[DT_MAX_DIMS] = {0};
    for (int64_t e = 0; e < n; e++) {
        int64_t g = 0;
        for (int i = 0; i < r; i++)
            if (!red[i]) g = g * in[0].dims[i] + coord[i];
        gi[e] = g;
        for (int i = r - 1; i >= 0; i--) {
            if (++coord[i] < in[0].dims[i]) break;
            coord[i] = 0;
        }
    }
    const float *x = in[0].data;
    float *y = out[0].data;
    int64_t per = n / groups;
    for (int64_t e = 0; e < n; e++) sum[gi[e]] += x[e];
    for (int64_t g = 0; g < groups; g++) sum[g] /= (double)per;
    for (int64_t e = 0; e < n; e++) {
        double d = x[e] - sum[gi[e]];
        sum[groups + gi[e]] += d * d;
    }
    for (int64_t g = 0; g < groups; g++) sum[groups + g] = sqrt(sum[groups + g] / (double)per) + 1e-9;
    for (int64_t e = 0; e < n; e++)
        y[e] = (float)((x[e] - sum[gi[e]]) / sum[groups + gi[e]]);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_mvn_kernel = {.prepare = dt_mvn_prepare, .scratch = dt_mvn_scratch, .run = dt_mvn_run};
