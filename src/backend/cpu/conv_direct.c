/* Direct convolution over any geometry the conv ops accept: 1-D, 2-D and 3-D, groups,
 * strides, dilations and asymmetric pads. It is the path of 3-D convolutions (video and
 * volumetric models, rare at inference) until a GEMM path reads a depth axis: correct at every
 * size, not fast. One output plane (image, output channel) per task; taps that fall in the
 * padding are skipped, so nothing is copied. */
#include "backend/cpu/conv.h"
#include "core/threadpool.h"

typedef struct dt_direct_job {
    const dt_conv_geom *g;
    const dt_conv_args *a;
    int64_t plane_out;      /* output elements per (image, channel) */
} dt_direct_job;

/* First tap index t >= 0 with 0 <= o * s - pb + t * d < in, and one past the last. */
static void dt_tap_range(int64_t o, const dt_conv_axis *ax, int64_t *t0, int64_t *t1)
{
    int64_t base = o * ax->s - ax->pb;
    int64_t lo = 0, hi = ax->k;
    while (lo < hi && base + lo * ax->d < 0) lo++;
    while (hi > lo && base + (hi - 1) * ax->d >= ax->in) hi--;
    *t0 = lo;
    *t1 = hi;
}

static void dt_direct_range(void *arg, int64_t p0, int64_t p1, int tid)
{
    (void)tid;
    const dt_direct_job *j = arg;
    const dt_conv_geom *g = j->g;
    const dt_conv_args *a = j->a;
    dt_conv_axis rows = {g->in[0], g->out[0], g->k[0], g->s[0], g->d[0], g->pb[0], g->pe[0]};
    dt_conv_axis cols = {g->in[1], g->out[1], g->k[1], g->s[1], g->d[1], g->pb[1], g->pe[1]};
    const dt_conv_axis *dep = &g->depth;
    int64_t cpg = g->c / g->group, mpg = g->m / g->group;
    int64_t in_plane = dep->in * rows.in * cols.in, ksz = dep->k * rows.k * cols.k;
    for (int64_t p = p0; p < p1; p++) {
        int64_t n = p / g->m, m = p % g->m, grp = m / mpg;
        const float *x = a->x + (n * g->c + grp * cpg) * in_plane;
        const float *w = a->w + m * cpg * ksz;
        float b = a->bias ? a->bias[m] : 0.0f;
        float *y = a->y + p * j->plane_out;
        for (int64_t oz = 0; oz < dep->out; oz++) {
            int64_t z0, z1;
            dt_tap_range(oz, dep, &z0, &z1);
            for (int64_t oy = 0; oy < rows.out; oy++) {
                int64_t y0, y1;
                dt_tap_range(oy, &rows, &y0, &y1);
                for (int64_t ox = 0; ox < cols.out; ox++) {
                    int64_t x0, x1;
                    dt_tap_range(ox, &cols, &x0, &x1);
                    float acc = b;
                    for (int64_t c = 0; c < cpg; c++)
                        for (int64_t kz = z0; kz < z1; kz++) {
                            int64_t iz = oz * dep->s - dep->pb + kz * dep->d;
                            for (int64_t ky = y0; ky < y1; ky++) {
                                int64_t iy = oy * rows.s - rows.pb + ky * rows.d;
                                const float *xr = x + (c * dep->in + iz) * rows.in * cols.in + iy * cols.in;
                                const float *wr = w + ((c * dep->k + kz) * rows.k + ky) * cols.k;
                                for (int64_t kx = x0; kx < x1; kx++)
                                    acc += wr[kx] * xr[ox * cols.s - cols.pb + kx * cols.d];
                            }
                        }
                    y[(oz * rows.out + oy) * cols.out + ox] = acc;
                }
            }
        }
        if (a->epi)
            dt_epilogue_apply(a->epi, y, a->epi->res ? a->epi->res + p * j->plane_out : NULL, j->plane_out);
    }
}

ductile_status dt_cpu_conv_direct(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool)
{
    dt_direct_job j = {g, a, g->depth.out * g->out[0] * g->out[1]};
    int64_t work = (g->c / g->group) * g->depth.k * g->k[0] * g->k[1] * j.plane_out;
    dt_parallel_for(pool, g->batch * g->m, work > 4096 ? 1 : 4096 / (work ? work : 1), dt_direct_range, &j);
    return DUCTILE_OK;
}
