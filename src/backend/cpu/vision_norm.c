/* LRN, GroupNormalization, MeanVarianceNormalization. Statistics accumulate in double,
 * two passes (mean, then squared deviations). */
#include "backend/cpu/vision_kernels.h"
#include "core/alloc.h"
#include "ops/vision.h"
#include "core/status.h"
#include "core/threadpool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

ductile_status dt_cpu_lrn(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    int64_t size = dt_attr_int(L, "size", 1);
    float alpha = dt_attr_float(L, "alpha", 1e-4f), beta = dt_attr_float(L, "beta", 0.75f);
    float bias = dt_attr_float(L, "bias", 1.0f);
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

ductile_status dt_cpu_groupnorm(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    int64_t G = dt_attr_int(L, "num_groups", 1);
    float eps = dt_attr_float(L, "epsilon", 1e-5f);
    int64_t N = in[0].dims[0], C = in[0].dims[1], S = 1;
    for (int i = 2; i < in[0].rank; i++) S *= in[0].dims[i];
    int64_t cg = C / G, block = cg * S;
    bool per_channel = L->opset >= 21;
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

/* (X - E[X]) / (sqrt(E[(X - E[X])^2]) + 1e-9) over the attribute 'axes' (ONNX's function
 * body adds 1e-9 to the deviation). */
ductile_status dt_cpu_mvn(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    static const int64_t dflt[3] = {0, 2, 3};
    int64_t na;
    const int64_t *ax = dt_attr_ints(L, "axes", &na);
    if (!ax) ax = dflt, na = 3;
    int r = in[0].rank;
    bool red[DT_MAX_DIMS] = {false};
    for (int64_t i = 0; i < na; i++) red[ax[i] < 0 ? ax[i] + r : ax[i]] = true;
    /* Group index of each element: its coordinates along the kept dims, flattened. */
    int64_t groups = 1, n = dt_view_count(&in[0]);
    for (int i = 0; i < r; i++)
        if (!red[i]) groups *= in[0].dims[i];
    if (n == 0) return DUCTILE_OK;
    double *sum = dt_calloc((size_t)groups * 2, sizeof *sum);
    int64_t *gi = dt_malloc((size_t)n * sizeof *gi);
    if (!sum || !gi) {
        dt_free(sum);
        dt_free(gi);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for %lld elements", (long long)n);
    }
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
    dt_free(sum);
    dt_free(gi);
    return DUCTILE_OK;
}
