/* RoiAlign on the CPU: per (region, channel) plane, each output bin averages (or maxes) a
 * grid of bilinear samples, with onnxruntime's rules (ONNX's reference follows them): samples
 * more than one pixel outside the map count as zero, coordinates are clamped at 0 and at the
 * last row/column, and 'max' takes the largest weighted corner of each sample. The grid and
 * its weights depend only on the region, so they are computed once per output bin per
 * channel loop without storing them (no scratch). */
#include "backend/cpu/vision_kernels.h"
#include "core/alloc.h"
#include "core/status.h"
#include "ops/vision.h"

#include <math.h>

typedef struct dt_roi_job {
    const dt_roialign_params *p;
    const float *x, *rois;
    const int64_t *batch;
    float *y;
    int64_t c, h, w;
} dt_roi_job;

/* The four corners and weights of a sample at (y, x); false when it lies outside. */
static bool dt_roi_sample(float y, float x, int64_t h, int64_t w, int64_t pos[4], float wt[4])
{
    if (!(y >= -1.0f && y <= (float)h && x >= -1.0f && x <= (float)w)) return false; /* NaN too */
    if (y < 0) y = 0;
    if (x < 0) x = 0;
    int64_t y0 = (int64_t)y, x0 = (int64_t)x, y1, x1;
    if (y0 >= h - 1) {
        y1 = y0 = h - 1;
        y = (float)y0;
    } else {
        y1 = y0 + 1;
    }
    if (x0 >= w - 1) {
        x1 = x0 = w - 1;
        x = (float)x0;
    } else {
        x1 = x0 + 1;
    }
    float ly = y - (float)y0, lx = x - (float)x0, hy = 1.0f - ly, hx = 1.0f - lx;
    pos[0] = y0 * w + x0, pos[1] = y0 * w + x1, pos[2] = y1 * w + x0, pos[3] = y1 * w + x1;
    wt[0] = hy * hx, wt[1] = hy * lx, wt[2] = ly * hx, wt[3] = ly * lx;
    return true;
}

/* A region's start, bin size and sample grid (onnxruntime's arithmetic, in float). */
typedef struct dt_roi_geom {
    float sh, sw, bh, bw;
    int64_t gh, gw;         /* samples per bin; -1 when the region's size is not finite or
                               the grid would exceed DT_ROI_MAX_SAMPLES */
} dt_roi_geom;

enum { DT_ROI_MAX_SAMPLES = 1 << 20 };

static void dt_roi_geometry(const dt_roialign_params *p, const float *roi, dt_roi_geom *g)
{
    float off = p->half_pixel ? 0.5f : 0.0f;
    g->sw = roi[0] * p->spatial_scale - off, g->sh = roi[1] * p->spatial_scale - off;
    float rw = roi[2] * p->spatial_scale - off - g->sw, rh = roi[3] * p->spatial_scale - off - g->sh;
    if (!p->half_pixel) { /* malformed regions become 1x1 */
        if (rw < 1.0f) rw = 1.0f;
        if (rh < 1.0f) rh = 1.0f;
    }
    g->bh = rh / (float)p->out_h, g->bw = rw / (float)p->out_w;
    g->gh = g->gw = -1;
    if (!isfinite(rh) || !isfinite(rw) || !isfinite(g->sh) || !isfinite(g->sw)) return;
    double fh = p->sampling_ratio > 0 ? (double)p->sampling_ratio : ceil((double)g->bh);
    double fw = p->sampling_ratio > 0 ? (double)p->sampling_ratio : ceil((double)g->bw);
    fh = fh < 0 ? 0 : fh, fw = fw < 0 ? 0 : fw;
    if (fh * fw > DT_ROI_MAX_SAMPLES) return;
    g->gh = (int64_t)fh, g->gw = (int64_t)fw;
}

static void dt_roi_range(void *arg, int64_t b, int64_t e, int tid)
{
    (void)tid;
    const dt_roi_job *j = arg;
    const dt_roialign_params *p = j->p;
    for (int64_t it = b; it < e; it++) {
        int64_t r = it / j->c, ch = it % j->c;
        const float *roi = j->rois + r * 4;
        const float *plane = j->x + (j->batch[r] * j->c + ch) * j->h * j->w;
        float *out = j->y + it * p->out_h * p->out_w;
        dt_roi_geom g;
        dt_roi_geometry(p, roi, &g);
        float sh = g.sh, sw = g.sw, bh = g.bh, bw = g.bw;
        int64_t gh = g.gh, gw = g.gw;
        float count = (float)(gh * gw > 1 ? gh * gw : 1);
        for (int64_t ph = 0; ph < p->out_h; ph++)
            for (int64_t pw = 0; pw < p->out_w; pw++) {
                float acc = 0.0f;
                bool first = true;
                for (int64_t iy = 0; iy < gh; iy++) {
                    float yy = sh + (float)ph * bh + ((float)iy + 0.5f) * bh / (float)gh;
                    for (int64_t ix = 0; ix < gw; ix++) {
                        float xx = sw + (float)pw * bw + ((float)ix + 0.5f) * bw / (float)gw;
                        int64_t pos[4] = {0, 0, 0, 0};
                        float wt[4] = {0, 0, 0, 0};
                        dt_roi_sample(yy, xx, j->h, j->w, pos, wt);
                        if (p->max) {
                            float v = wt[0] * plane[pos[0]];
                            for (int k = 1; k < 4; k++) v = fmaxf(v, wt[k] * plane[pos[k]]);
                            acc = first ? v : fmaxf(acc, v);
                            first = false;
                        } else {
                            acc += wt[0] * plane[pos[0]] + wt[1] * plane[pos[1]] + wt[2] * plane[pos[2]] +
                                   wt[3] * plane[pos[3]];
                        }
                    }
                }
                out[ph * p->out_w + pw] = p->max ? acc : acc / count;
            }
    }
}

static ductile_status dt_roi_prepare(const ductile_layer *L, void **params)
{
    dt_roialign_params p;
    DT_TRY(dt_roialign_params_get(L, &p));
    return dt_cpu_params_copy(&p, sizeof p, L, params);
}

static ductile_status dt_roi_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_roialign_params *p = params;
    int64_t n = in[0].dims[0], r = in[1].dims[0];
    const int64_t *batch = in[2].data;
    const float *rois = in[1].data;
    for (int64_t i = 0; i < r; i++) {
        if (batch[i] < 0 || batch[i] >= n)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "input 2 (batch_indices)[%lld] = %lld; expected 0..%lld (the batch of input 0 (X))",
                           (long long)i, (long long)batch[i], (long long)n - 1);
        dt_roi_geom g;
        dt_roi_geometry(p, rois + i * 4, &g);
        if (g.gh < 0)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "input 1 (rois) row %lld = [%g, %g, %g, %g]: the region is not finite or needs over %d "
                           "samples per bin", (long long)i, (double)rois[i * 4], (double)rois[i * 4 + 1],
                           (double)rois[i * 4 + 2], (double)rois[i * 4 + 3], DT_ROI_MAX_SAMPLES);
    }
    dt_roi_job j = {p, in[0].data, in[1].data, batch, out[0].data, in[0].dims[1], in[0].dims[2], in[0].dims[3]};
    int64_t work = p->out_h * p->out_w * 16;
    dt_parallel_for(ex->pool, r * j.c, dt_cpu_grain(work), dt_roi_range, &j);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_roialign_kernel = {.prepare = dt_roi_prepare, .run = dt_roi_run};
