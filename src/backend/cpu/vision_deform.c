/* DeformConv on the CPU: per image and group, the deformed im2col (each input channel's
 * kernel taps sampled bilinearly at their shifted positions, zero outside the image, times
 * the mask) fills a [C/group*kH*kW, oH*oW] matrix in scratch, and one GEMM with the group's
 * weights (bias in its epilogue) writes the output. */
#include "backend/cpu/gemm.h"
#include "backend/cpu/vision_kernels.h"
#include "core/status.h"
#include "ops/linalg.h"
#include "ops/vision.h"

#include <math.h>

typedef struct dt_dc_job {
    const dt_conv_geom *g;
    const float *x, *offset, *mask;   /* this image's */
    float *col;
    int64_t c0, og_channels, og;       /* first channel of the group; channels per offset group */
} dt_dc_job;

/* X at (y, x) of one plane, bilinear, each corner outside the image counting as zero. */
static float dt_dc_sample(const float *p, int64_t h, int64_t w, float y, float x)
{
    if (!(y > -1.0f && y < (float)h && x > -1.0f && x < (float)w)) return 0.0f; /* NaN too */
    float fy = floorf(y), fx = floorf(x);
    int64_t y0 = (int64_t)fy, x0 = (int64_t)fx;
    float ly = y - fy, lx = x - fx;
    float v00 = y0 >= 0 && x0 >= 0 ? p[y0 * w + x0] : 0.0f;
    float v01 = y0 >= 0 && x0 + 1 < w ? p[y0 * w + x0 + 1] : 0.0f;
    float v10 = y0 + 1 < h && x0 >= 0 ? p[(y0 + 1) * w + x0] : 0.0f;
    float v11 = y0 + 1 < h && x0 + 1 < w ? p[(y0 + 1) * w + x0 + 1] : 0.0f;
    return (1.0f - ly) * ((1.0f - lx) * v00 + lx * v01) + ly * ((1.0f - lx) * v10 + lx * v11);
}

/* One item is one row of col: (channel of the group, tap). */
static void dt_dc_fill(void *arg, int64_t b, int64_t e, int tid)
{
    (void)tid;
    const dt_dc_job *j = arg;
    const dt_conv_geom *g = j->g;
    int64_t taps = g->k[0] * g->k[1], npx = g->out[0] * g->out[1];
    for (int64_t r = b; r < e; r++) {
        int64_t c = j->c0 + r / taps, t = r % taps, ki = t / g->k[1], kj = t % g->k[1];
        int64_t og = c / j->og_channels;
        const float *plane = j->x + c * g->in[0] * g->in[1];
        const float *dy = j->offset + ((og * taps + t) * 2) * npx, *dx = dy + npx;
        const float *m = j->mask ? j->mask + (og * taps + t) * npx : NULL;
        float *row = j->col + r * npx;
        for (int64_t oy = 0; oy < g->out[0]; oy++)
            for (int64_t ox = 0; ox < g->out[1]; ox++) {
                int64_t i = oy * g->out[1] + ox;
                float y = (float)(oy * g->s[0] - g->pb[0] + ki * g->d[0]) + dy[i];
                float x = (float)(ox * g->s[1] - g->pb[1] + kj * g->d[1]) + dx[i];
                float v = dt_dc_sample(plane, g->in[0], g->in[1], y, x);
                row[i] = m ? v * m[i] : v;
            }
    }
}

typedef struct dt_dc_params {
    dt_conv_attrs conv;
    int64_t offset_group;
    bool has_b, has_mask;
} dt_dc_params;

static ductile_status dt_dc_prepare(const ductile_layer *L, void **params)
{
    dt_dc_params p = {.offset_group = dt_attr_int(L, "offset_group", 1), .has_b = L->n_in > 3 && L->in[3],
                      .has_mask = L->n_in > 4 && L->in[4]};
    dt_conv_attrs_read(L, &p.conv);
    return dt_cpu_params_copy(&p, sizeof p, L, params);
}

/* The group's product: C[M/group, oH*oW] = W[M/group, K] x col[K, oH*oW] (+ bias). */
static dt_gemm dt_dc_gemm(const dt_conv_geom *g, const float *w, const float *col, const float *bias, float *y)
{
    int64_t k = g->c / g->group * g->k[0] * g->k[1], npx = g->out[0] * g->out[1];
    return (dt_gemm){.M = g->m / g->group, .N = npx, .K = k, .alpha = 1.0f, .beta = 0.0f, .A = w, .lda = k,
                     .B = col, .ldb = npx, .C = y, .ldc = npx, .bias = bias};
}

static ductile_status dt_dc_layout(const void *params, const dt_view *in, dt_conv_geom *g, int64_t *og)
{
    const dt_dc_params *p = params;
    *og = p->offset_group;
    return dt_deformconv_geometry_of(&p->conv, p->offset_group, p->has_b, p->has_mask, in, g);
}

static ductile_status dt_dc_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                    size_t *bytes)
{
    (void)out;
    *bytes = 0;
    dt_conv_geom g;
    int64_t og;
    if (dt_dc_layout(params, in, &g, &og)) return DUCTILE_OK; /* the run names the fault */
    int64_t k = g.c / g.group * g.k[0] * g.k[1], npx = g.out[0] * g.out[1];
    dt_gemm gm = dt_dc_gemm(&g, NULL, NULL, NULL, NULL);
    size_t col = ((size_t)(k * npx) * sizeof(float) + 63) & ~(size_t)63;
    *bytes = col + dt_sgemm_scratch_bytes(&gm, threads);
    return DUCTILE_OK;
}

static ductile_status dt_dc_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_dc_params *p = params;
    dt_conv_geom g;
    int64_t og;
    DT_TRY(dt_dc_layout(params, in, &g, &og));
    int64_t cpg = g.c / g.group, taps = g.k[0] * g.k[1], k = cpg * taps, npx = g.out[0] * g.out[1];
    size_t need;
    DT_TRY(dt_dc_scratch(params, in, out, dt_pool_threads(ex->pool), &need));
    if (!ex->scratch || ex->scratch_bytes < need)
        return dt_fail(DUCTILE_ERR_INTERNAL, "DeformConv: %zu bytes of scratch planned, %zu needed", ex->scratch_bytes, need);
    float *col = ex->scratch;
    void *gemm_scratch = (char *)ex->scratch + (((size_t)(k * npx) * sizeof(float) + 63) & ~(size_t)63);
    const float *x = in[0].data, *w = in[1].data, *off = in[2].data;
    const float *bias = p->has_b ? in[3].data : NULL, *mask = p->has_mask ? in[4].data : NULL;
    float *y = out[0].data;
    int64_t chw = g.c * g.in[0] * g.in[1];
    for (int64_t n = 0; n < g.batch; n++)
        for (int64_t gr = 0; gr < g.group; gr++) {
            dt_dc_job j = {&g, x + n * chw, off + n * og * 2 * taps * npx, mask ? mask + n * og * taps * npx : NULL,
                           col, gr * cpg, g.c / og, og};
            dt_parallel_for(ex->pool, k, dt_cpu_grain(npx * 8), dt_dc_fill, &j);
            int64_t mg = g.m / g.group;
            dt_gemm gm = dt_dc_gemm(&g, w + gr * mg * k, col, bias ? bias + gr * mg : NULL,
                                    y + (n * g.m + gr * mg) * npx);
            DT_TRY(dt_sgemm_in(&gm, ex->pool, gemm_scratch));
        }
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_deformconv_kernel = {.prepare = dt_dc_prepare, .scratch = dt_dc_scratch, .run = dt_dc_run};
