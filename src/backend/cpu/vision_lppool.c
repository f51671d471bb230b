/* LpPool and GlobalLpPool: (sum over the window's inputs of |x|^p)^(1/p); padding adds
 * nothing (as the ONNX test generator computes it). */
#include "backend/cpu/vision_kernels.h"
#include "ops/nn.h"
#include "core/status.h"
#include "core/threadpool.h"

#include <math.h>

static float dt_lp_pow(float v, int64_t p)
{
    v = fabsf(v);
    return p == 1 ? v : p == 2 ? v * v : powf(v, (float)p);
}

static float dt_lp_root(float s, int64_t p)
{
    return p == 1 ? s : p == 2 ? sqrtf(s) : powf(s, 1.0f / (float)p);
}

typedef struct {
    const float *x;
    float *y;
    dt_pool_geom g;
    int64_t p;
} dt_lp_job;

/* One item is one output plane position (n, c, z, y, x) flattened. */
static void dt_lp_range(void *arg, int64_t b, int64_t e, int tid)
{
    (void)tid;
    const dt_lp_job *j = arg;
    const dt_pool_geom *g = &j->g;
    int64_t plane_out = g->out[0] * g->out[1] * g->out[2];
    int64_t plane_in = g->in[0] * g->in[1] * g->in[2];
    for (int64_t it = b; it < e; it++) {
        int64_t q = it % plane_out, pl = it / plane_out;
        int64_t o[3] = {q / (g->out[1] * g->out[2]), (q / g->out[2]) % g->out[1], q % g->out[2]};
        const float *x = j->x + pl * plane_in;
        float s = 0.0f;
        int64_t st[3];
        for (int k = 0; k < 3; k++) st[k] = o[k] * g->s[k] - g->pb[k];
        for (int64_t a = 0; a < g->k[0]; a++) {
            int64_t iz = st[0] + a * g->d[0];
            if (iz < 0 || iz >= g->in[0]) continue;
            for (int64_t bb = 0; bb < g->k[1]; bb++) {
                int64_t iy = st[1] + bb * g->d[1];
                if (iy < 0 || iy >= g->in[1]) continue;
                const float *row = x + (iz * g->in[1] + iy) * g->in[2];
                for (int64_t c = 0; c < g->k[2]; c++) {
                    int64_t ix = st[2] + c * g->d[2];
                    if (ix >= 0 && ix < g->in[2]) s += dt_lp_pow(row[ix], j->p);
                }
            }
        }
        j->y[it] = dt_lp_root(s, j->p);
    }
}

/* LpPool's window and p, read (and refused) once. */
typedef struct dt_lp_params {
    dt_pool_attrs attrs;
    int64_t p;
} dt_lp_params;

static ductile_status dt_lppool_prepare(const ductile_layer *L, void **out)
{
    dt_lp_params p = {.p = dt_attr_int(L, "p", 2)};
    DT_TRY(dt_pool_attrs_read(L, &p.attrs));
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_lppool_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_lp_params *p = params;
    dt_lp_job j = {.x = in[0].data, .y = out[0].data, .p = p->p};
    DT_TRY(dt_pool_geometry_of(&p->attrs, &in[0], &j.g));
    int64_t n = dt_view_count(&out[0]);
    dt_parallel_for(ex->pool, n, dt_cpu_grain(j.g.k[0] * j.g.k[1] * j.g.k[2]), dt_lp_range, &j);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_lppool_kernel = {.prepare = dt_lppool_prepare, .run = dt_lppool_run};

static ductile_status dt_global_lppool_prepare(const ductile_layer *L, void **out)
{
    int64_t p = dt_attr_int(L, "p", 2);
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_global_lppool_run(const void *params, const dt_view *in, dt_view *out,
                                           dt_exec *ex)
{
    (void)ex;
    int64_t p = *(const int64_t *)params, planes = in[0].dims[0] * in[0].dims[1];
    int64_t sz = planes ? dt_view_count(&in[0]) / planes : 0;
    const float *x = in[0].data;
    float *y = out[0].data;
    for (int64_t pl = 0; pl < planes; pl++) {
        float s = 0.0f;
        for (int64_t i = 0; i < sz; i++) s += dt_lp_pow(x[pl * sz + i], p);
        y[pl] = dt_lp_root(s, p);
    }
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_global_lppool_kernel = {.prepare = dt_global_lppool_prepare, .run = dt_global_lppool_run};
