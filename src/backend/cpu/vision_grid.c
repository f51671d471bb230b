/* GridSample and AffineGrid. GridSample follows the ONNX reference (and PyTorch's
 * GridSampler.h): each output point maps to source coordinates per spatial dim; the
 * interpolation is separable, so each dim contributes 1, 2 or 4 taps (index and weight) and
 * the value is the sum over the tap products. Padding decides the taps that fall outside. */
#include "backend/cpu/families.h"
#include "backend/cpu/vision_kernels.h"
#include "ops/vision.h"
#include "core/status.h"
#include "core/threadpool.h"

#include <math.h>
#include <stdlib.h>

/* Reflects x into [lo, hi] by the near border, repeatedly (the reference's _gs_reflect). */
static double dt_gs_reflect(double x, double lo, double hi)
{
    double rng = hi - lo;
    if (rng <= 0.0) return lo;
    if (x < lo) {
        double dx = lo - x;
        double n = floor(dx / rng), r = dx - n * rng;
        return fmod(n, 2.0) == 0.0 ? lo + r : hi - r;
    }
    if (x > hi) {
        double dx = x - hi;
        double n = floor(dx / rng), r = dx - n * rng;
        return fmod(n, 2.0) == 0.0 ? hi - r : lo + r;
    }
    return x;
}

static void dt_gs_cubic(double x, float c[4])
{
    const double a = -0.75;
    x = fabs(x);
    double x1 = x + 1, x2 = 1 - x, x3 = 2 - x;
    c[0] = (float)(((a * x1 - 5 * a) * x1 + 8 * a) * x1 - 4 * a);
    c[1] = (float)(((a + 2) * x - (a + 3)) * x * x + 1);
    c[2] = (float)(((a + 2) * x2 - (a + 3)) * x2 * x2 + 1);
    c[3] = (float)(((a * x3 - 5 * a) * x3 + 8 * a) * x3 - 4 * a);
}

typedef struct {
    const float *x, *grid;
    float *y;
    dt_gridsample_params p;
    int64_t N, C, in[3], out_pts, in_pts;
} dt_gs_job;

/* Source index of tap i along a dim of size d, or -1 for a zero (padding) tap. */
static int64_t dt_gs_index(const dt_gs_job *j, int64_t i, int64_t d, double lo, double hi)
{
    if (i >= 0 && i < d) return i;
    if (j->p.padding == DT_GS_ZEROS) return -1;
    if (j->p.padding == DT_GS_BORDER) return i < 0 ? 0 : d - 1;
    int64_t r = (int64_t)dt_gs_reflect((double)i, lo, hi);
    return r < 0 ? 0 : r >= d ? d - 1 : r;
}

static void dt_gs_range(void *arg, int64_t b, int64_t e, int tid)
{
    (void)tid;
    const dt_gs_job *j = arg;
    int sp = j->p.spatial;
    for (int64_t r = b; r < e; r++) {
        int64_t n = r / j->out_pts;
        const float *g = j->grid + r * sp;
        int64_t idx[3][4];
        float w[3][4];
        int taps = j->p.mode == DT_GS_NEAREST ? 1 : j->p.mode == DT_GS_LINEAR ? 2 : 4;
        /* Dim k of X (0 outermost) reads grid component sp - 1 - k. */
        for (int k = 0; k < 3; k++) {
            if (k < 3 - sp) {
                idx[k][0] = 0;
                w[k][0] = 1.0f;
                for (int t = 1; t < taps; t++) idx[k][t] = -1, w[k][t] = 0.0f;
                continue;
            }
            int kd = k - (3 - sp);
            int64_t d = j->in[k];
            double nx = g[sp - 1 - kd];
            double lo = j->p.align_corners ? 0.0 : -0.5;
            double hi = j->p.align_corners ? (double)d - 1.0 : (double)d - 0.5;
            double x = j->p.align_corners ? (nx + 1) / 2.0 * (double)(d - 1)
                                          : ((nx + 1) * (double)d - 1) / 2.0;
            x = (double)(float)x;
            if (j->p.mode == DT_GS_NEAREST) x = nearbyint(x);
            if (x < lo || x > hi) {
                if (j->p.padding == DT_GS_BORDER) x = x < 0 ? 0 : x > (double)(d - 1) ? (double)(d - 1) : x;
                else if (j->p.padding == DT_GS_REFLECTION) x = dt_gs_reflect(x, lo, hi);
            }
            if (!isfinite(x)) x = -2.0 * (double)d - 4.0;
            if (x > 4.0 * (double)d + 8.0) x = 4.0 * (double)d + 8.0;
            if (x < -4.0 * (double)d - 8.0) x = -4.0 * (double)d - 8.0;
            if (j->p.mode == DT_GS_NEAREST) {
                idx[k][0] = dt_gs_index(j, (int64_t)x, d, lo, hi);
                w[k][0] = 1.0f;
            } else {
                double x0 = floor(x), f = x - x0;
                if (j->p.mode == DT_GS_LINEAR) {
                    w[k][0] = (float)(1.0 - f);
                    w[k][1] = (float)f;
                    for (int t = 0; t < 2; t++) idx[k][t] = dt_gs_index(j, (int64_t)x0 + t, d, lo, hi);
                } else {
                    dt_gs_cubic(f, w[k]);
                    for (int t = 0; t < 4; t++) idx[k][t] = dt_gs_index(j, (int64_t)x0 - 1 + t, d, lo, hi);
                }
            }
        }
        int64_t o = r % j->out_pts;
        for (int64_t c = 0; c < j->C; c++) {
            const float *xc = j->x + (n * j->C + c) * j->in_pts;
            float acc = 0.0f;
            for (int a = 0; a < taps; a++) {
                if (idx[0][a] < 0) continue;
                float s1 = 0.0f;
                for (int bb = 0; bb < taps; bb++) {
                    if (idx[1][bb] < 0) continue;
                    const float *row = xc + (idx[0][a] * j->in[1] + idx[1][bb]) * j->in[2];
                    float s2 = 0.0f;
                    for (int t = 0; t < taps; t++)
                        if (idx[2][t] >= 0) s2 += w[2][t] * row[idx[2][t]];
                    s1 += w[1][bb] * s2;
                }
                acc += w[0][a] * s1;
            }
            j->y[(n * j->C + c) * j->out_pts + o] = acc;
        }
    }
}

static ductile_status dt_gs_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    dt_gs_job j = {.x = in[0].data, .grid = in[1].data, .y = out[0].data,
                   .p = *(const dt_gridsample_params *)params};
    int sp = in[0].rank - 2;
    j.p.spatial = sp;
    j.N = in[0].dims[0];
    j.C = in[0].dims[1];
    j.in_pts = 1;
    j.out_pts = 1;
    for (int k = 0; k < 3; k++) j.in[k] = 1;
    for (int k = 0; k < sp; k++) {
        j.in[3 - sp + k] = in[0].dims[2 + k];
        j.in_pts *= in[0].dims[2 + k];
        j.out_pts *= out[0].dims[2 + k];
    }
    if (j.N == 0 || j.C == 0 || j.out_pts == 0) return DUCTILE_OK;
    if (j.in_pts == 0) {
        for (int64_t i = 0, n = dt_view_count(&out[0]); i < n; i++) j.y[i] = 0.0f;
        return DUCTILE_OK;
    }
    dt_parallel_for(ex->pool, j.N * j.out_pts, dt_cpu_grain(j.C * 16), dt_gs_range, &j);
    return DUCTILE_OK;
}

/* Mode, padding and align_corners read (and refused) once. */
static ductile_status dt_gs_prepare(const ductile_layer *L, void **out)
{
    dt_gridsample_params p;
    DT_TRY(dt_gridsample_params_get(L, &p));
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

const dt_kernel dt_cpu_gridsample_kernel = {.prepare = dt_gs_prepare, .run = dt_gs_run};

static ductile_status dt_ag_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    bool ac = *(const bool *)params;
    int sp = out[0].rank - 2;
    int64_t N = out[0].dims[0], d[3] = {1, 1, 1};
    for (int k = 0; k < sp; k++) d[3 - sp + k] = out[0].dims[1 + k];
    const float *theta = in[0].data;
    float *y = out[0].data;
    /* Normalized coordinate of index i along a dim of n (the reference's arange). */
#define DT_AG_COORD(i, n) \
    (ac ? ((n) == 1 ? -1.0f : -1.0f + (float)(i) * (2.0f / (float)((n) - 1))) \
        : -1.0f + ((float)(2 * (i) + 1)) / (float)(n))
    for (int64_t n = 0; n < N; n++) {
        const float *t = theta + n * sp * (sp + 1);
        for (int64_t a = 0; a < d[0]; a++)
            for (int64_t b = 0; b < d[1]; b++)
                for (int64_t c = 0; c < d[2]; c++) {
                    /* Homogeneous point (x, y[, z], 1), x along the innermost dim. */
                    float h[4];
                    h[0] = DT_AG_COORD(c, d[2]);
                    h[1] = DT_AG_COORD(b, d[1]);
                    if (sp == 3) h[2] = DT_AG_COORD(a, d[0]);
                    h[sp] = 1.0f;
                    for (int k = 0; k < sp; k++) {
                        float s = 0.0f;
                        for (int m = 0; m <= sp; m++) s += t[k * (sp + 1) + m] * h[m];
                        *y++ = s;
                    }
                }
    }
#undef DT_AG_COORD
    return DUCTILE_OK;
}

static ductile_status dt_ag_prepare(const ductile_layer *L, void **out)
{
    bool ac = dt_attr_int(L, "align_corners", 0) == 1;
    return dt_cpu_params_copy(&ac, sizeof ac, L, out);
}

const dt_kernel dt_cpu_affinegrid_kernel = {.prepare = dt_ag_prepare, .run = dt_ag_run};
