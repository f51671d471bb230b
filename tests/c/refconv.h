/* What the C kernel tests compare with: random data from a fixed seed, a relative error, and
 * the one reference convolution (double accumulation, every tap checked against the image
 * bounds) that Conv, FusedConv and Winograd are held to. */
#ifndef DT_REFCONV_H
#define DT_REFCONV_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static uint64_t refconv_rng = 0x9e3779b97f4a7c15ull;

/* Uniform in [-1, 1), from a fixed seed (a test sets refconv_rng for its own sequence). */
static inline float frand(void)
{
    refconv_rng = refconv_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((refconv_rng >> 40) & 0xffffff) / (float)0x800000 - 1.0f;
}

/* n values of frand(); the caller frees. */
static inline float *rand_buf(int64_t n)
{
    float *p = malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t i = 0; p && i < n; i++) p[i] = frand();
    return p;
}

/* max |got - want| relative to the largest |want| (at least 1e-3, so all-zero outputs work). */
static inline double rel_err(const float *got, const double *want, int64_t n)
{
    double maxd = 0, maxw = 1e-3;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= maxd)) maxd = d; /* NaN counts as a failure */
        if (fabs(want[i]) > maxw) maxw = fabs(want[i]);
    }
    return maxd / maxw;
}

/* A 2-D convolution's geometry as ONNX defines it (a 1-D one: h = oh = kh = 1). */
typedef struct ref_conv_geom {
    int64_t n, c, m, group;
    int64_t h, w, oh, ow;
    int64_t kh, kw, sh, sw, dh, dw;
    int64_t pt, pl;         /* leading pads; the trailing ones follow from oh, ow */
} ref_conv_geom;

/* The reference convolution, in double: y[n, m, oy, ox] = b[m] + sum over the group's channels
 * and the taps inside the image of x * w, + r[n, m, oy, ox]. x is [n, c, h, w], w is
 * [m, c / group, kh, kw]; b and r may be NULL. */
static inline void ref_conv(const ref_conv_geom *g, const float *x, const float *w, const float *b,
                     const float *r, double *y)
{
    int64_t cg = g->c / g->group, mg = g->m / g->group;
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t m = 0; m < g->m; m++)
            for (int64_t oy = 0; oy < g->oh; oy++)
                for (int64_t ox = 0; ox < g->ow; ox++) {
                    double s = b ? b[m] : 0.0;
                    int64_t gi = m / mg;
                    for (int64_t c = 0; c < cg; c++)
                        for (int64_t ky = 0; ky < g->kh; ky++)
                            for (int64_t kx = 0; kx < g->kw; kx++) {
                                int64_t iy = oy * g->sh - g->pt + ky * g->dh;
                                int64_t ix = ox * g->sw - g->pl + kx * g->dw;
                                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue;
                                s += (double)x[((n * g->c + gi * cg + c) * g->h + iy) * g->w + ix] *
                                     w[((m * cg + c) * g->kh + ky) * g->kw + kx];
                            }
                    int64_t o = ((n * g->m + m) * g->oh + oy) * g->ow + ox;
                    y[o] = r ? s + r[o] : s;
                }
}

#endif
