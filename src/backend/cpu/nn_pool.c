/* Pooling kernels: global average/max over each (n, c) plane, windowed average/max over 1-3
 * spatial dims through one 3-D loop nest (geometry from ops/nn.h, shared with infer), its
 * interior windows 16 outputs at a time on AVX-512 CPUs (nn_pool_avx512.c: resnet50's 3x3
 * stride-2 MaxPool was a scalar loop of 2-2.4 ms in 44). */
#include "backend/cpu/cpu_isa.h"
#include "backend/cpu/nn_kernels.h"
#include "backend/cpu/nn_pool.h"
#include "ops/nn.h"
#include "backend/cpu/widen.h"
#include "core/status.h"

#include <math.h>

typedef struct {
    const float *x;
    float *y;
    int64_t plane;
    int is_max;
} dt_gpool_job;

static void dt_gpool_range(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_gpool_job *j = arg;
    for (int64_t p = b; p < e; p++) {
        const float *x = j->x + p * j->plane;
        j->y[p] = j->is_max ? dt_cpu_max_f32(x, j->plane)
                            : dt_cpu_plane_sum_f32(x, j->plane) / (float)j->plane;
    }
}

static ductile_status dt_cpu_global_pool(const dt_view *in, dt_view *out, dt_exec *ex, int is_max)
{
    dt_gpool_job j = {in[0].data, out[0].data, 1, is_max};
    for (int i = 2; i < in[0].rank; i++) j.plane *= in[0].dims[i];
    int64_t planes = in[0].dims[0] * in[0].dims[1];
    if (j.plane == 0) return DUCTILE_OK;
    dt_parallel_for(ex->pool, planes, dt_cpu_grain(j.plane), dt_gpool_range, &j);
    return DUCTILE_OK;
}

static ductile_status dt_gpool_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    return dt_cpu_global_pool(in, out, ex, *(const int *)params);
}

static ductile_status dt_gavg_prepare(const ductile_layer *L, void **out)
{
    DT_TRY(dt_cpu_want_f32(L));
    int is_max = 0;
    return dt_cpu_params_copy(&is_max, sizeof is_max, L, out);
}

static ductile_status dt_gmax_prepare(const ductile_layer *L, void **out)
{
    int is_max = 1;
    return dt_cpu_params_copy(&is_max, sizeof is_max, L, out);
}

const dt_kernel dt_cpu_global_avg_pool_kernel = {.prepare = dt_gavg_prepare, .run = dt_gpool_run};
const dt_kernel dt_cpu_global_max_pool_kernel = {.prepare = dt_gmax_prepare, .run = dt_gpool_run};

/* 2-D MaxPools done plane by plane (each input row's maxima computed once and reused by the
 * output rows whose windows share it). */
typedef enum {
    DT_POOL_BY_ROWS,   /* the row loop below */
    DT_POOL_MAX3S2,    /* 3x3 stride 2 (resnet50's): dt_pool_max3s2_plane */
    DT_POOL_MAXS1,     /* stride 1, windows up to DT_POOL_S1_MAX_K (yolo's SPPF): dt_pool_maxs1_plane */
} dt_pool_planes;

typedef struct {
    const float *x;
    float *y;
    dt_pool_geom g;
    int is_max;
    int64_t *idx;           /* MaxPool's Indices output, or NULL */
    bool col_major;         /* its storage_order */
    bool vec;               /* interior windows through dt_pool_row_avx512 */
    dt_pool_planes planes_by; /* 2-D MaxPools whose rows go plane by plane */
    int64_t planes, bands;  /* dt_pool_band_range */
    bool avx2;              /* vec: through dt_pool_row_avx2 (no AVX-512) */
} dt_pool_job;

/* MaxPool's index of input element (plane p; z, y, x): flat over [N, C, spatial dims] in row
 * or column order (ONNX: padding not counted). The geometry's unused leading dims are 1. */
static int64_t dt_pool_index(const dt_pool_geom *g, int64_t p, int64_t z, int64_t y, int64_t x, bool col_major)
{
    int64_t plane = g->in[0] * g->in[1] * g->in[2];
    return p * plane + (col_major ? (x * g->in[1] + y) * g->in[0] + z : (z * g->in[1] + y) * g->in[2] + x);
}

/* Taps [*t0, *t1) of a window starting at `start` that fall inside [0, in). */
static void dt_pool_taps(int64_t start, int64_t k, int64_t d, int64_t in, int64_t *t0, int64_t *t1)
{
    int64_t a = start < 0 ? (-start + d - 1) / d : 0;
    int64_t b = start >= in ? 0 : (in - 1 - start) / d + 1;
    *t0 = a;
    *t1 = b < k ? b : k;
    if (*t1 < *t0) *t1 = *t0;
}

/* Taps of an average window counted with count_include_pad: those inside the padded input
 * (every d-th position from start, below in + pe). */
static int64_t dt_pool_padded_taps(int64_t start, int64_t k, int64_t d, int64_t in, int64_t pe)
{
    int64_t n = (in + pe - start + d - 1) / d;
    return n < k ? n : k;
}

/* Output ox of the row (plane p; window start sz, sy; taps [z0, z1) x [y0, y1)) at `it`: the
 * scalar loop, every case (borders, dilation, any stride, MaxPool's indices). */
static float dt_pool_one(const dt_pool_job *j, const float *x, int64_t p, int64_t it, int64_t sz, int64_t sy,
                         int64_t z0, int64_t z1, int64_t y0, int64_t y1, int64_t ox)
{
    const dt_pool_geom *g = &j->g;
    int64_t sx = ox * g->s[2] - g->pb[2], x0, x1;
    dt_pool_taps(sx, g->k[2], g->d[2], g->in[2], &x0, &x1);
    float acc = j->is_max ? -INFINITY : 0.0f;
    if (j->idx) { /* the first maximum's position, as onnxruntime */
        int64_t bz = sz + z0 * g->d[0], by = sy + y0 * g->d[1], bx = sx + x0 * g->d[2];
        for (int64_t tz = z0; tz < z1; tz++)
            for (int64_t ty = y0; ty < y1; ty++)
                for (int64_t tx = x0; tx < x1; tx++) {
                    int64_t iz = sz + tz * g->d[0], iy = sy + ty * g->d[1], ix = sx + tx * g->d[2];
                    float v = x[(iz * g->in[1] + iy) * g->in[2] + ix];
                    if (v > acc || (v != v && acc == acc)) {   /* the first NaN's, else the first maximum's */
                        acc = v;
                        bz = iz, by = iy, bx = ix;
                    }
                }
        j->idx[it * g->out[2] + ox] = dt_pool_index(g, p, bz, by, bx, j->col_major);
        return acc;
    }
    for (int64_t tz = z0; tz < z1; tz++) {
        for (int64_t ty = y0; ty < y1; ty++) {
            const float *row = x + ((sz + tz * g->d[0]) * g->in[1] + sy + ty * g->d[1]) * g->in[2] + sx;
            if (j->is_max)
                for (int64_t tx = x0; tx < x1; tx++) acc = dt_max_keep_nan(row[tx * g->d[2]], acc);
            else
                for (int64_t tx = x0; tx < x1; tx++) acc += row[tx * g->d[2]];
        }
    }
    if (!j->is_max) {
        int64_t n = g->count_include_pad
            ? dt_pool_padded_taps(sz, g->k[0], g->d[0], g->in[0], g->pe[0]) *
              dt_pool_padded_taps(sy, g->k[1], g->d[1], g->in[1], g->pe[1]) *
              dt_pool_padded_taps(sx, g->k[2], g->d[2], g->in[2], g->pe[2])
            : (z1 - z0) * (y1 - y0) * (x1 - x0);
        acc /= (float)n;
    }
    return acc;
}

/* The outputs of a row whose windows lie inside the input along x: [*lo, *hi). */
static void dt_pool_interior(const dt_pool_geom *g, int64_t *lo, int64_t *hi)
{
    int64_t s = g->s[2], last = g->in[2] - g->k[2] + g->pb[2];   /* largest start + pb */
    *lo = (g->pb[2] + s - 1) / s;
    *hi = last >= 0 ? last / s + 1 : 0;
    if (*hi > g->out[2]) *hi = g->out[2];
    if (*lo > *hi) *lo = *hi;
}

/* One item is one output row (n, c, z, y) of out[2] values: the interior windows through the
 * vectorized row where j->vec, the rest (all of it otherwise) through dt_pool_one. */
static void dt_pool_rows(const dt_pool_job *j, int64_t b, int64_t e)
{
    const dt_pool_geom *g = &j->g;
    int64_t plane_in = g->in[0] * g->in[1] * g->in[2];
    if (j->planes_by != DT_POOL_BY_ROWS) {
        /* 2-D: the rows of each plane in [b, e) at once */
        int64_t oh = g->out[1];
        for (int64_t it = b; it < e;) {
            int64_t p = it / oh, oy0 = it % oh, oy1 = e - p * oh < oh ? e - p * oh : oh;
            const float *x = j->x + p * plane_in;
            float *y = j->y + p * oh * g->out[2];
            if (j->planes_by == DT_POOL_MAX3S2)
                dt_pool_max3s2_plane(x, g->in[1], g->in[2], g->pb[1], g->pb[2], g->out[2], oy0, oy1, y);
            else
                dt_pool_maxs1_plane(x, g->in[1], g->in[2], g->k[1], g->k[2], g->pb[1], g->pb[2], g->out[2], oy0,
                                    oy1, y);
            it += oy1 - oy0;
        }
        return;
    }
    int64_t lo = 0, hi = 0;
    bool borders = j->vec && !j->avx2 && dt_pool_row_borders(g->k[2], g->s[2], j->is_max);
    if (borders)
        hi = g->out[2];
    else if (j->vec)
        dt_pool_interior(g, &lo, &hi);
    for (int64_t it = b; it < e; it++) {
        int64_t oy = it % g->out[1], oz = (it / g->out[1]) % g->out[0];
        int64_t p = it / (g->out[1] * g->out[0]);
        const float *x = j->x + p * plane_in;
        float *y = j->y + it * g->out[2];
        int64_t sz = oz * g->s[0] - g->pb[0], sy = oy * g->s[1] - g->pb[1];
        int64_t z0, z1, y0, y1;
        dt_pool_taps(sz, g->k[0], g->d[0], g->in[0], &z0, &z1);
        dt_pool_taps(sy, g->k[1], g->d[1], g->in[1], &y0, &y1);
        if (DT_POOL_AHEAD && borders && g->in[0] == 1 && g->d[1] == 1) {
            /* The input rows that the output row DT_POOL_AHEAD rows on adds (2-D, undilated): a
             * row stream a plane apart per channel, which the prefetchers start late on. */
            int64_t first = sy + g->k[1] + (DT_POOL_AHEAD - 1) * g->s[1];
            for (int64_t r = first; r < first + g->s[1]; r++)
                if (r >= 0 && r < g->in[1])
                    for (int64_t c = 0; c < g->in[2]; c += 16) __builtin_prefetch(x + r * g->in[2] + c, 0, 3);
        }
        int64_t vlo = lo, vhi = hi;
        if (vhi > vlo) {
            const float *rows[DT_POOL_ROW_MAX_ROWS];
            int nrows = 0;
            for (int64_t tz = z0; tz < z1; tz++)
                for (int64_t ty = y0; ty < y1; ty++)
                    rows[nrows++] = x + ((sz + tz * g->d[0]) * g->in[1] + sy + ty * g->d[1]) * g->in[2];
            /* the interior count: x taps all k[2] inside, as dt_pool_one counts them */
            int64_t n = g->count_include_pad ? dt_pool_padded_taps(sz, g->k[0], g->d[0], g->in[0], g->pe[0]) *
                                                   dt_pool_padded_taps(sy, g->k[1], g->d[1], g->in[1], g->pe[1]) *
                                                   g->k[2]
                                             : (z1 - z0) * (y1 - y0) * g->k[2];
            if (j->avx2)
                dt_pool_row_avx2(rows, nrows, g->k[2], g->s[2], g->pb[2], j->is_max, (float)n, vlo, vhi, y);
            else
                dt_pool_row_avx512(rows, nrows, g->k[2], g->s[2], g->pb[2], g->in[2], j->is_max, (float)n, vlo, vhi,
                                   y);
        } else {
            vlo = vhi = g->out[2];
        }
        for (int64_t ox = 0; ox < vlo; ox++) y[ox] = dt_pool_one(j, x, p, it, sz, sy, z0, z1, y0, y1, ox);
        for (int64_t ox = vhi; ox < g->out[2]; ox++) y[ox] = dt_pool_one(j, x, p, it, sz, sy, z0, z1, y0, y1, ox);
    }
}

static void dt_pool_range(void *arg, int64_t b, int64_t e, int tid)
{
    (void)tid;
    dt_pool_rows(arg, b, e);
}

/* Bands [b, e) of j->bands: band t is output rows [t out[1] / bands, (t + 1) out[1] / bands)
 * of every plane (2-D), plane by plane. */
static void dt_pool_band_range(void *arg, int64_t b, int64_t e, int tid)
{
    (void)tid;
    const dt_pool_job *j = arg;
    int64_t oh = j->g.out[1];
    for (int64_t t = b; t < e; t++)
        for (int64_t p = 0; p < j->planes; p++)
            dt_pool_rows(j, p * oh + t * oh / j->bands, p * oh + (t + 1) * oh / j->bands);
}

/* Layout "NHWC" (2-D; the geometry's [0] dims are 1): one item is one output row (n, oy) of
 * out[2] pixels of c channels, each window summed channel by channel in the same order as
 * the channels-first loop, so results are the same bits. */
typedef struct {
    const float *x;
    float *y;
    dt_pool_geom g;
    int is_max;
    int64_t c;
} dt_pool_nhwc_job;

static void dt_pool_nhwc_range(void *arg, int64_t b, int64_t e, int tid)
{
    (void)tid;
    const dt_pool_nhwc_job *j = arg;
    const dt_pool_geom *g = &j->g;
    int64_t c = j->c;
    for (int64_t it = b; it < e; it++) {
        int64_t oy = it % g->out[1], n = it / g->out[1];
        const float *x = j->x + n * g->in[1] * g->in[2] * c;
        float *y = j->y + it * g->out[2] * c;
        int64_t sy = oy * g->s[1] - g->pb[1], y0, y1;
        dt_pool_taps(sy, g->k[1], g->d[1], g->in[1], &y0, &y1);
        for (int64_t ox = 0; ox < g->out[2]; ox++) {
            int64_t sx = ox * g->s[2] - g->pb[2], x0, x1;
            dt_pool_taps(sx, g->k[2], g->d[2], g->in[2], &x0, &x1);
            int64_t cnt = g->count_include_pad ? dt_pool_padded_taps(sy, g->k[1], g->d[1], g->in[1], g->pe[1]) *
                                                     dt_pool_padded_taps(sx, g->k[2], g->d[2], g->in[2], g->pe[2])
                                               : (y1 - y0) * (x1 - x0);
            for (int64_t ch = 0; ch < c; ch++) {
                float acc = j->is_max ? -INFINITY : 0.0f;
                for (int64_t ty = y0; ty < y1; ty++) {
                    const float *row = x + ((sy + ty * g->d[1]) * g->in[2] + sx) * c + ch;
                    for (int64_t tx = x0; tx < x1; tx++) {
                        float v = row[tx * g->d[2] * c];
                        acc = j->is_max ? dt_max_keep_nan(v, acc) : acc + v;
                    }
                }
                y[ox * c + ch] = j->is_max ? acc : acc / (float)cnt;
            }
        }
    }
}

/* A windowed pool compiled: its attributes read (and refused) once. L only for other
 * dtypes than float32 (widened through dt_cpu_via_f32). */
typedef struct dt_pool_params {
    const ductile_layer *L;
    dt_pool_attrs attrs;
    int is_max;
    bool indices, col_major;    /* MaxPool: output 1 wanted; its storage_order */
} dt_pool_params;

static ductile_status dt_pool_exec(const dt_pool_params *p, const dt_view *in, dt_view *out, dt_exec *ex)
{
    dt_pool_job j = {in[0].data, out[0].data, {0}, p->is_max, p->indices ? out[1].data : NULL, p->col_major,
                     false, DT_POOL_BY_ROWS, 0, 0, false};
    DT_TRY(dt_pool_geometry_of(&p->attrs, &in[0], &j.g));
    /* The vectorized row: no indices, x stride 1 or 2 and dilation 1, few window rows. */
    j.avx2 = !dt_pool_row_avx512_ok() && dt_cpu_has_avx2_fma();
    j.vec = !j.idx && (j.g.s[2] == 1 || j.g.s[2] == 2) && j.g.d[2] == 1 &&
            j.g.k[0] * j.g.k[1] <= DT_POOL_ROW_MAX_ROWS && (dt_pool_row_avx512_ok() || j.avx2);
    const dt_pool_geom *g = &j.g;
    bool plane_2d = j.is_max && !j.idx && dt_pool_row_avx512_ok() && g->in[0] == 1 && g->out[0] == 1 &&
                    g->d[1] == 1 && g->d[2] == 1;
    if (plane_2d && g->k[1] == 3 && g->k[2] == 3 && g->s[1] == 2 && g->s[2] == 2 && g->out[2] <= DT_POOL_MAX3S2_WIDTH)
        j.planes_by = DT_POOL_MAX3S2;
    else if (plane_2d && g->s[1] == 1 && g->s[2] == 1 && g->k[1] <= DT_POOL_S1_MAX_K && g->k[2] <= DT_POOL_S1_MAX_K &&
             g->out[2] <= DT_POOL_S1_WIDTH)
        j.planes_by = DT_POOL_MAXS1;
    if (p->attrs.nhwc) {
        dt_pool_nhwc_job jn = {in[0].data, out[0].data, j.g, p->is_max, in[0].dims[3]};
        dt_parallel_for(ex->pool, in[0].dims[0] * j.g.out[1], dt_cpu_grain(j.g.out[2] * jn.c * j.g.k[1] * j.g.k[2]),
                        dt_pool_nhwc_range, &jn);
        return DUCTILE_OK;
    }
    int64_t rows = in[0].dims[0] * in[0].dims[1] * j.g.out[0] * j.g.out[1];
    int64_t work = j.g.out[2] * j.g.k[0] * j.g.k[1] * j.g.k[2];
    int threads = dt_pool_threads(ex->pool);
    if (threads > in[0].dims[0] && j.planes_by != DT_POOL_MAXS1 && j.g.out[0] == 1 && j.g.out[1] >= threads &&
        rows * work >= (int64_t)threads * 65536) {
        /* Fewer images than threads: each thread a band of rows of every plane (the layout
         * of the few-channel conv before resnet50's MaxPool and of the Winograd blocks after
         * it), not a share of the planes. Not for stride 1 by planes, whose bands would each
         * compute the ky - 1 row maxima above them again (yolo's SPPF: 20-row planes). */
        j.planes = in[0].dims[0] * in[0].dims[1];
        j.bands = threads;
        dt_parallel_for(ex->pool, threads, 1, dt_pool_band_range, &j);
        return DUCTILE_OK;
    }
    dt_parallel_for(ex->pool, rows, dt_cpu_grain(work), dt_pool_range, &j);
    return DUCTILE_OK;
}

static ductile_status dt_pool_read(const ductile_layer *L, int is_max, dt_pool_params *p)
{
    p->L = L;
    p->is_max = is_max;
    p->indices = is_max && L->n_out == 2 && L->out[1];
    p->col_major = is_max && dt_attr_int(L, "storage_order", 0) == 1;
    return dt_pool_attrs_read(L, &p->attrs);
}

static ductile_status dt_avg_pool_prepare(const ductile_layer *L, void **out)
{
    dt_pool_params p;
    DT_TRY(dt_pool_read(L, 0, &p));
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_max_pool_prepare(const ductile_layer *L, void **out)
{
    dt_pool_params p;
    DT_TRY(dt_pool_read(L, 1, &p));
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

/* Other dtypes pool in float32 (see widen.h). */
static ductile_status dt_pool_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_pool_params *p = params;
    if (in[0].dtype == DUCTILE_FLOAT32) return dt_pool_exec(p, in, out, ex);
    return dt_cpu_via_f32_run(p->L, p, dt_pool_run, in, out, ex, 0x1);
}

static ductile_status dt_pool_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                      size_t *bytes)
{
    *bytes = 0;
    return dt_cpu_via_f32_scratch(((const dt_pool_params *)params)->L, in, out, 0x1, bytes);
}

const dt_kernel dt_cpu_avg_pool_kernel = {
    .prepare = dt_avg_pool_prepare, .scratch = dt_pool_scratch, .run = dt_pool_run,
};
const dt_kernel dt_cpu_max_pool_kernel = {
    .prepare = dt_max_pool_prepare, .scratch = dt_pool_scratch, .run = dt_pool_run,
};
