/* Resize: per-axis source indices and weights are computed once per call. Nearest and linear:
 * the common case (only the last two axes resized) runs a 2-D kernel over output rows, any
 * other pattern a generic N-linear loop over the resized axes' taps. Cubic, antialias and
 * tf_crop_and_resize: one pass per resized axis with that axis' taps, as the ONNX reference
 * computes them (the taps widen with the downscale under antialias). */
#include "backend/cpu/nn_kernels.h"
#include "backend/cpu/nn_resize.h"
#include "core/alloc.h"
#include "ops/nn.h"
#include "core/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Where output coordinate i of axis a samples the input: i0 with weight 1 - w, i1 with w. */
typedef struct {
    int64_t *i0, *i1;
    float *w;
} dt_resize_axis;

/* The coordinate transforms of axis a in float, as ONNX defines them: align_corners,
 * pytorch_half_pixel (and tf_crop_and_resize, below) divide by length_resized = scale * in,
 * which is fractional when the scale does not divide the dim. onnxruntime divides by the
 * rounded output dim instead; ONNX's reference and its node tests (resize_downsample_scales_
 * *_align_corners) follow the definition, and onnx/onnx#2462 confirms it as intended. */
static float dt_resize_source(const dt_resize_params *p, int a, int64_t x, int64_t in)
{
    float xf = (float)x, scale = p->scale[a], len = p->len[a];
    switch (p->ctm) {
    case DT_CTM_ASYMMETRIC: return xf / scale;
    case DT_CTM_ALIGN_CORNERS: return len == 1.0f ? 0.0f : xf * (float)(in - 1) / (len - 1.0f);
    case DT_CTM_PYTORCH_HALF_PIXEL: return len > 1.0f ? (xf + 0.5f) / scale - 0.5f : 0.0f;
    case DT_CTM_TF_HALF_PIXEL_FOR_NN: return (xf + 0.5f) / scale;
    case DT_CTM_HALF_PIXEL_SYMMETRIC: {
        /* Centres the output when in * scale is not whole. */
        float adj = (float)p->out[a] / len;
        return (float)in / 2.0f * (1.0f - adj) + (xf + 0.5f) / scale - 0.5f;
    }
    default: return (xf + 0.5f) / scale - 0.5f;
    }
}

static int64_t dt_resize_nearest(int mode, float x, bool down)
{
    float f = floorf(x);
    switch (mode) {
    case DT_NEAREST_ROUND_PREFER_FLOOR: return (int64_t)(x - f == 0.5f ? f : roundf(x));
    case DT_NEAREST_ROUND_PREFER_CEIL: return (int64_t)(x - f == 0.5f ? f + 1.0f : roundf(x));
    case DT_NEAREST_FLOOR: return (int64_t)f;
    case DT_NEAREST_CEIL: return (int64_t)ceilf(x);
    default: return down ? (int64_t)ceilf(x) : (int64_t)x;
    }
}

static void dt_resize_axis_fill(const dt_resize_params *p, int a, int64_t in, dt_resize_axis *t)
{
    int64_t out = p->out[a];
    for (int64_t x = 0; x < out; x++) {
        float s = dt_resize_source(p, a, x, in);
        int64_t i0, i1;
        float w = 0.0f;
        if (p->mode == DT_RESIZE_NEAREST) {
            i0 = dt_resize_nearest(p->nearest, s, p->scale[a] < 1.0f);
            i0 = i0 < 0 ? 0 : i0 > in - 1 ? in - 1 : i0;
            i1 = i0;
        } else {
            /* Clamping the source is what edge padding of the input would give. */
            s = s < 0.0f ? 0.0f : s > (float)(in - 1) ? (float)(in - 1) : s;
            i0 = (int64_t)s;
            i1 = i0 + 1 < in ? i0 + 1 : in - 1;
            w = i1 == i0 ? 0.0f : s - (float)i0;
        }
        t->i0[x] = i0;
        t->i1[x] = i1;
        t->w[x] = w;
    }
}

static bool dt_resize_axis_identity(const dt_resize_axis *t, int64_t in, int64_t out)
{
    if (in != out) return false;
    for (int64_t x = 0; x < out; x++)
        if (t->i0[x] != x || t->w[x] != 0.0f) return false;
    return true;
}

typedef struct {
    const float *x;
    float *y;
    int rank;
    int64_t in_dims[DT_MAX_DIMS], out_dims[DT_MAX_DIMS];
    dt_resize_axis ax[DT_MAX_DIMS];
    bool identity[DT_MAX_DIMS];
    bool linear;
    bool dup2;          /* nearest, output column ox reads input column ox / 2 (dt_resize_dup2) */
    /* AVX-512: the last axis' plan (nn_resize.h), else NULL */
    const int32_t *rel;
    const int64_t *base;
} dt_resize_job;

/* Linear, rows of at most this many outputs: each input row's horizontal lerps computed once
 * (kept while the next output rows read it) instead of once per output row that reads it. */
enum { DT_RESIZE_LINE = 2048 };

/* Input row r's values at the output columns: r[i0] + (r[i1] - r[i0]) * w, the 2-D kernel's
 * `top` and `bot`. */
static void dt_resize_hline(const float *r, const dt_resize_axis *tx, int64_t ow, float *restrict h)
{
    for (int64_t ox = 0; ox < ow; ox++) {
        int64_t a = tx->i0[ox], c = tx->i1[ox];
        h[ox] = r[a] + (r[c] - r[a]) * tx->w[ox];
    }
}

/* y[2i] = y[2i + 1] = r[i] for the ow outputs of a row: nearest at an exact x2 along it (each
 * output column ox reads ox / 2), 16 inputs to 32 outputs a step where AVX-512 is. */
__attribute__((target_clones("arch=x86-64-v4", "default"))) static void dt_resize_dup2(float *restrict y,
                                                                                    const float *restrict r,
                                                                                    int64_t ow)
{
    int64_t i = 0;
    for (; 2 * i + 1 < ow; i++) {
        y[2 * i] = r[i];
        y[2 * i + 1] = r[i];
    }
    if (2 * i < ow) y[2 * i] = r[i];
}

/* 2-D kernel: one item is one output row of one plane (all leading axes are identity). Each
 * output is top + (bot - top) * wy with top and bot the lerps along the row: with rows of at
 * most DT_RESIZE_LINE, those lerps are computed once per input row and part (an upscale by 2
 * reads each input row from 2 to 4 output rows: seg_lraspp's classifier Resize 1.03 ms, 1
 * thread), the same float operations, so the same bits. */
static void dt_resize_rows(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_resize_job *j = arg;
    int r = j->rank;
    int64_t ih = j->in_dims[r - 2], iw = j->in_dims[r - 1];
    int64_t oh = j->out_dims[r - 2], ow = j->out_dims[r - 1];
    const dt_resize_axis *ty = &j->ax[r - 2], *tx = &j->ax[r - 1];
    float lines[2][j->linear && ow <= DT_RESIZE_LINE ? DT_RESIZE_LINE : 1];
    int64_t held[2] = {-1, -1};   /* the input row (plane * ih + row) each line holds */
    for (int64_t it = b; it < e; it++) {
        int64_t p = it / oh, oy = it % oh;
        const float *plane = j->x + p * ih * iw;
        const float *r0 = plane + ty->i0[oy] * iw, *r1 = plane + ty->i1[oy] * iw;
        float *y = j->y + it * ow;
        if (!j->linear) {
            /* the same source row as the output row before it (an upscale along the rows,
             * YOLO's x2: every other row): a copy of that row, which this thread wrote */
            if (it > b && oy > 0 && ty->i0[oy] == ty->i0[oy - 1])
                memcpy(y, y - ow, sizeof(float) * (size_t)ow);
            else if (j->dup2)
                dt_resize_dup2(y, r0, ow);
            else if (j->rel)
                dt_resize_gather_avx512(r0, iw, tx->i0, j->rel, j->base, ow, y);
            else
                for (int64_t ox = 0; ox < ow; ox++) y[ox] = r0[tx->i0[ox]];
            continue;
        }
        float wy = ty->w[oy];
        if (ow <= DT_RESIZE_LINE) {
            int64_t want[2] = {p * ih + ty->i0[oy], p * ih + ty->i1[oy]};
            const float *h[2];
            for (int k = 0; k < 2; k++) {
                int s = held[0] == want[k] ? 0 : held[1] == want[k] ? 1 : -1;
                if (s < 0) {
                    /* a line neither this output row's other input row holds nor needs */
                    s = k == 0 ? (held[0] == want[1] ? 1 : 0) : (h[0] == lines[0] ? 1 : 0);
                    if (j->rel)
                        dt_resize_hline_avx512(k ? r1 : r0, iw, tx->i0, tx->i1, tx->w, j->rel, j->base, ow, lines[s]);
                    else
                        dt_resize_hline(k ? r1 : r0, tx, ow, lines[s]);
                    held[s] = want[k];
                }
                h[k] = lines[s];
            }
            const float *restrict top = h[0], *restrict bot = h[1];
            if (j->rel)
                dt_resize_vlerp_avx512(top, bot, wy, ow, y);
            else
                for (int64_t ox = 0; ox < ow; ox++) y[ox] = top[ox] + (bot[ox] - top[ox]) * wy;
            continue;
        }
        for (int64_t ox = 0; ox < ow; ox++) {
            int64_t a = tx->i0[ox], c = tx->i1[ox];
            float wx = tx->w[ox];
            float top = r0[a] + (r0[c] - r0[a]) * wx;
            float bot = r1[a] + (r1[c] - r1[a]) * wx;
            y[ox] = top + (bot - top) * wy;
        }
    }
}

/* Generic kernel: one item is one output element; sums the 2^k taps of the k resized axes. */
static void dt_resize_any(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_resize_job *j = arg;
    int r = j->rank, moving[DT_MAX_DIMS], k = 0;
    int64_t in_stride[DT_MAX_DIMS];
    int64_t st = 1;
    for (int a = r - 1; a >= 0; a--) {
        in_stride[a] = st;
        st *= j->in_dims[a];
    }
    for (int a = 0; a < r; a++)
        if (!j->identity[a]) moving[k++] = a;
    for (int64_t it = b; it < e; it++) {
        int64_t coord[DT_MAX_DIMS], rem = it, base = 0;
        for (int a = r - 1; a >= 0; a--) {
            coord[a] = rem % j->out_dims[a];
            rem /= j->out_dims[a];
            if (j->identity[a]) base += coord[a] * in_stride[a];
        }
        float acc = 0.0f;
        for (int m = 0; m < (1 << k); m++) {
            float w = 1.0f;
            int64_t off = base;
            for (int q = 0; q < k; q++) {
                const dt_resize_axis *t = &j->ax[moving[q]];
                int64_t c = coord[moving[q]];
                bool hi = (m >> q) & 1;
                if (!j->linear && hi) { w = 0.0f; break; }
                w *= hi ? t->w[c] : 1.0f - t->w[c];
                off += (hi ? t->i1[c] : t->i0[c]) * in_stride[moving[q]];
            }
            if (w != 0.0f) acc += w * j->x[off];
        }
        j->y[it] = acc;
    }
}

/* ---- one pass per axis: cubic, antialias, tf_crop_and_resize ---- */

/* The reference's coefficients at fractional position ratio in (0, 1] (1: on a sample);
 * returns how many (at most cap). */
static int dt_resize_coeffs(const dt_resize_params *p, double ratio, double scale, double *c,
                            int cap)
{
    double s = scale < 1.0 ? scale : 1.0, a = p->cubic_a;
    int n = 0;
    if (p->mode == DT_RESIZE_NEAREST) {
        bool hi;
        if (ratio == 1.0) hi = true;
        else if (p->nearest == DT_NEAREST_ROUND_PREFER_FLOOR) hi = ratio > 0.5;
        else if (p->nearest == DT_NEAREST_ROUND_PREFER_CEIL) hi = ratio >= 0.5;
        else hi = p->nearest == DT_NEAREST_CEIL;
        c[0] = hi ? 0.0 : 1.0;
        c[1] = hi ? 1.0 : 0.0;
        return 2;
    }
    if (p->mode == DT_RESIZE_LINEAR && !p->antialias) {
        c[0] = 1.0 - ratio;
        c[1] = ratio;
        return 2;
    }
    if (p->mode == DT_RESIZE_CUBIC && !p->antialias) {
        double r1 = ratio + 1, r2 = 1 - ratio, r3 = 2 - ratio;
        c[0] = ((a * r1 - 5 * a) * r1 + 8 * a) * r1 - 4 * a;
        c[1] = ((a + 2) * ratio - (a + 3)) * ratio * ratio + 1;
        c[2] = ((a + 2) * r2 - (a + 3)) * r2 * r2 + 1;
        c[3] = ((a * r3 - 5 * a) * r3 + 8 * a) * r3 - 4 * a;
        return 4;
    }
    double sum = 0.0;
    if (p->mode == DT_RESIZE_LINEAR) {
        int64_t start = (int64_t)floor(-1.0 / s) + 1, foot = 2 - 2 * start;
        for (int64_t i = 0; i < foot && n < cap; i++) {
            double v = 1.0 - fabs(((double)(start + i) - ratio) * s);
            c[n] = v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v;
            sum += c[n++];
        }
    } else {
        int64_t i0 = (int64_t)floor(-2.0 / s) + 1, i1 = 2 - i0;
        for (int64_t i = i0; i < i1 && n < cap; i++) {
            double x = fabs(s * ((double)i - ratio)), x2 = x * x, x3 = x2 * x;
            c[n] = x <= 1 ? (a + 2) * x3 - (a + 3) * x2 + 1
                 : x < 2  ? a * x3 - 5 * a * x2 + 8 * a * x - 4 * a : 0.0;
            sum += c[n++];
        }
    }
    for (int i = 0; i < n; i++) c[i] = sum != 0.0 ? c[i] / sum : 0.0;
    return n;
}

/* The most taps an axis may take: antialias at a downscale s uses about 4 / s. */
#define DT_RESIZE_MAX_TAPS 1024

typedef struct {
    const float *x;
    float *y;
    int64_t in, out, inner, taps;
    const int64_t *idx;   /* [out][taps], clamped into [0, in) */
    const float *w;       /* [out][taps] */
    const bool *ext;      /* [out]: the source lies outside the roi's input */
    float extrapolation;
} dt_resize_pass;

static void dt_resize_pass_range(void *arg, int64_t b, int64_t e, int tid)
{
    (void)tid;
    const dt_resize_pass *j = arg;
    for (int64_t it = b; it < e; it++) {
        int64_t o = it % j->out, outer = it / j->out;
        const float *src = j->x + outer * j->in * j->inner;
        float *dst = j->y + it * j->inner;
        if (j->ext[o]) {
            for (int64_t i = 0; i < j->inner; i++) dst[i] = j->extrapolation;
            continue;
        }
        for (int64_t i = 0; i < j->inner; i++) dst[i] = 0.0f;
        for (int64_t t = 0; t < j->taps; t++) {
            float w = j->w[o * j->taps + t];
            if (w == 0.0f) continue;
            const float *row = src + j->idx[o * j->taps + t] * j->inner;
            for (int64_t i = 0; i < j->inner; i++) dst[i] += w * row[i];
        }
    }
}

/* Taps per output of axis a (DT_RESIZE_MAX_TAPS or more: too many). */
static int dt_resize_tap_count(const dt_resize_params *p, int a)
{
    double c[DT_RESIZE_MAX_TAPS];
    return dt_resize_coeffs(p, 0.5, p->scale[a], c, DT_RESIZE_MAX_TAPS);
}

/* Fills the taps of axis a into idx/w/ext (out * n entries, n = dt_resize_tap_count). */
static int64_t dt_resize_axis_taps(const dt_resize_params *p, int a, int64_t in, int64_t **idx,
                                   float **w, bool **ext)
{
    int64_t out = p->out[a];
    double c[DT_RESIZE_MAX_TAPS];
    int n = dt_resize_tap_count(p, a);
    for (int64_t o = 0; o < out; o++) {
        double xo;
        (*ext)[o] = false;
        if (p->ctm == DT_CTM_TF_CROP_AND_RESIZE) {
            double s0 = p->roi_start[a], s1 = p->roi_end[a], span = (double)(in - 1);
            double len = p->len[a];
            xo = len > 1.0 ? s0 * span + (double)o * (s1 - s0) * span / (len - 1.0)
                           : 0.5 * (s0 + s1) * span;
            (*ext)[o] = xo < 0.0 || xo > span;
        } else {
            xo = dt_resize_source(p, a, o, in);
        }
        if (!isfinite(xo) || fabs(xo) > 4e15) xo = 0.0, (*ext)[o] = true;
        double fl = floor(xo), ratio = xo == fl ? 1.0 : xo - fl;
        int m = dt_resize_coeffs(p, ratio, p->scale[a], c, n);
        for (int t = m; t < n; t++) c[t] = 0.0;
        int64_t pad = (n + 1) / 2;
        double xp = xo + (double)pad, pp = floor(xp), frac = xp - pp;
        int64_t off = n % 2 == 0 ? (frac == 0.0 ? -(n / 2) : -(n / 2) + 1)
                                 : (frac <= 0.5 ? -((n - 1) / 2) : -((n - 1) / 2) + 1);
        int64_t start = (int64_t)pp + off - pad;
        if (p->exclude_outside) {
            double sum = 0.0;
            for (int t = 0; t < n; t++) {
                if (start + t < 0 || start + t >= in) c[t] = 0.0;
                sum += c[t];
            }
            for (int t = 0; t < n; t++) c[t] = sum != 0.0 ? c[t] / sum : c[t];
        }
        for (int t = 0; t < n; t++) {
            int64_t i = start + t;
            (*idx)[o * n + t] = i < 0 ? 0 : i >= in ? in - 1 : i;
            (*w)[o * n + t] = (float)c[t];
        }
    }
    return n;
}

/* The axes a separable resize passes over (those it changes); -1 in *last when none. */
static void dt_resize_moving(const dt_resize_params *p, const dt_view *x, bool *moving, int *last)
{
    *last = -1;
    for (int a = 0; a < x->rank; a++) {
        moving[a] = !(fabsf(p->scale[a] - 1.0f) <= 1e-9f && p->out[a] == x->dims[a] &&
                      (p->ctm != DT_CTM_TF_CROP_AND_RESIZE ||
                       (p->roi_start[a] == 0.0f && p->roi_end[a] == 1.0f)));
        if (moving[a]) *last = a;
    }
}

static size_t dt_align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Scratch of the separable passes: two intermediates of `inter` floats, then the taps of
 * one axis (`taps` entries of index and weight, `outs` flags). */
typedef struct dt_resize_sep_sizes {
    size_t inter, taps, outs, bytes;
} dt_resize_sep_sizes;

static ductile_status dt_resize_sep_size(const dt_resize_params *p, const dt_view *x, dt_resize_sep_sizes *z)
{
    bool moving[DT_MAX_DIMS];
    int last;
    dt_resize_moving(p, x, moving, &last);
    memset(z, 0, sizeof *z);
    int64_t dims[DT_MAX_DIMS];
    for (int a = 0; a < x->rank; a++) dims[a] = x->dims[a];
    for (int a = 0; a <= last; a++) {
        if (!moving[a]) continue;
        int n = dt_resize_tap_count(p, a);
        if (n >= DT_RESIZE_MAX_TAPS)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "Resize: axis %d needs more than %d taps "
                           "(antialias at scale %g)", a, DT_RESIZE_MAX_TAPS, (double)p->scale[a]);
        int64_t outer = 1, inner = 1, next;
        for (int k = 0; k < a; k++) outer *= dims[k];
        for (int k = a + 1; k < x->rank; k++) inner *= dims[k];
        if (a != last) {
            if (__builtin_mul_overflow(outer, p->out[a], &next) ||
                __builtin_mul_overflow(next, inner, &next) || next > ((int64_t)1 << 40))
                return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "Resize: intermediate of axis %d is too "
                               "large", a);
            if ((size_t)next + 1 > z->inter) z->inter = (size_t)next + 1;
        }
        if ((size_t)(p->out[a] * n) + 1 > z->taps) z->taps = (size_t)(p->out[a] * n) + 1;
        if ((size_t)p->out[a] + 1 > z->outs) z->outs = (size_t)p->out[a] + 1;
        dims[a] = p->out[a];
    }
    /* Each part is below 2^40 entries, so the sum cannot overflow a 64-bit size. */
    z->bytes = 2 * dt_align64(z->inter * sizeof(float)) + dt_align64(z->taps * sizeof(int64_t)) +
               dt_align64(z->taps * sizeof(float)) + dt_align64(z->outs);
    return DUCTILE_OK;
}

static ductile_status dt_resize_separable(const dt_resize_params *p, const dt_view *in,
                                          dt_view *out, dt_exec *ex)
{
    int r = in[0].rank, last;
    bool moving[DT_MAX_DIMS];
    dt_resize_moving(p, &in[0], moving, &last);
    int64_t n_out = dt_view_count(&out[0]);
    if (last < 0) {
        memcpy(out[0].data, in[0].data, (size_t)n_out * sizeof(float));
        return DUCTILE_OK;
    }
    dt_resize_sep_sizes z;
    DT_TRY(dt_resize_sep_size(p, &in[0], &z));
    if (!ex->scratch || ex->scratch_bytes < z.bytes)
        return dt_fail(DUCTILE_ERR_INTERNAL, "Resize: %zu bytes of scratch given, %zu needed", ex->scratch_bytes, z.bytes);
    char *m = ex->scratch;
    float *bufs[2] = {(float *)m, (float *)(m + dt_align64(z.inter * sizeof(float)))};
    m += 2 * dt_align64(z.inter * sizeof(float));
    int64_t *idx = (int64_t *)m;
    m += dt_align64(z.taps * sizeof(int64_t));
    float *w = (float *)m;
    m += dt_align64(z.taps * sizeof(float));
    bool *ext = (bool *)m;
    int64_t dims[DT_MAX_DIMS];
    for (int a = 0; a < r; a++) dims[a] = in[0].dims[a];
    const float *cur = in[0].data;
    for (int a = 0; a < r; a++) {
        if (!moving[a]) continue;
        int64_t outer = 1, inner = 1;
        for (int k = 0; k < a; k++) outer *= dims[k];
        for (int k = a + 1; k < r; k++) inner *= dims[k];
        float *dst = a == last ? out[0].data : bufs[cur == bufs[0] ? 1 : 0];
        int64_t taps = dt_resize_axis_taps(p, a, dims[a], &idx, &w, &ext);
        if (outer * p->out[a] * inner > 0) {
            dt_resize_pass j = {.x = cur, .y = dst, .in = dims[a], .out = p->out[a],
                                .inner = inner, .taps = taps, .idx = idx, .w = w, .ext = ext,
                                .extrapolation = p->extrapolation};
            dt_parallel_for(ex->pool, outer * p->out[a], dt_cpu_grain(inner * taps),
                            dt_resize_pass_range, &j);
        }
        dims[a] = p->out[a];
        cur = dst;
    }
    return DUCTILE_OK;
}

/* The separable passes serve cubic, antialias and tf_crop_and_resize. */
static bool dt_resize_is_separable(const dt_resize_params *p)
{
    return p->mode == DT_RESIZE_CUBIC || p->antialias || p->ctm == DT_CTM_TF_CROP_AND_RESIZE;
}

/* Bytes of the nearest/linear tables: per axis i0 and i1 (int64) then w (float); then the
 * last axis' plan (nn_resize.h): its vectors' bases (int64, 8-byte aligned) and two int32
 * columns per output of a whole number of vectors. */
static size_t dt_resize_table_bytes(const dt_view *out)
{
    int64_t total = 0, ow = out->rank ? out->dims[out->rank - 1] : 0, vecs = dt_resize_vecs(ow);
    for (int a = 0; a < out->rank; a++) total += out->dims[a];
    return (size_t)total * (2 * sizeof(int64_t) + sizeof(float)) + sizeof(int64_t) +
           (size_t)vecs * (sizeof(int64_t) + 32 * sizeof(int32_t)) + 1;
}

static ductile_status dt_resize_exec(const dt_resize_layer *rl, const dt_view *in, dt_view *out, dt_exec *ex)
{
    dt_resize_params p;
    DT_TRY(dt_resize_params_of(rl, in, &p));
    if (dt_resize_is_separable(&p)) {
        if (dt_view_count(&out[0]) == 0) return DUCTILE_OK;
        if (dt_view_count(&in[0]) == 0)
            return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (X) is empty but the output is not");
        if (p.ctm == DT_CTM_TF_CROP_AND_RESIZE && !p.has_roi)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 1 (roi) has no value");
        return dt_resize_separable(&p, in, out, ex);
    }
    dt_resize_job j = {.x = in[0].data, .y = out[0].data, .rank = in[0].rank,
                       .linear = p.mode == DT_RESIZE_LINEAR};
    int r = j.rank;
    int64_t total = 0, count = dt_view_count(&out[0]);
    if (count == 0) return DUCTILE_OK;
    for (int a = 0; a < r; a++) {
        j.in_dims[a] = in[0].dims[a];
        j.out_dims[a] = out[0].dims[a];
        total += out[0].dims[a];
    }
    size_t need = dt_resize_table_bytes(&out[0]);
    if (!ex->scratch || ex->scratch_bytes < need)
        return dt_fail(DUCTILE_ERR_INTERNAL, "Resize: %zu bytes of scratch given, %zu needed", ex->scratch_bytes, need);
    int64_t *ip = ex->scratch;
    float *wp = (float *)(ip + 2 * total);
    bool leading_identity = r >= 2;
    for (int a = 0; a < r; a++) {
        j.ax[a].i0 = ip;
        j.ax[a].i1 = ip + j.out_dims[a];
        j.ax[a].w = wp;
        ip += 2 * j.out_dims[a];
        wp += j.out_dims[a];
        dt_resize_axis_fill(&p, a, j.in_dims[a], &j.ax[a]);
        j.identity[a] = dt_resize_axis_identity(&j.ax[a], j.in_dims[a], j.out_dims[a]);
        if (a < r - 2 && !j.identity[a]) leading_identity = false;
    }
    if (leading_identity) {
        int64_t rows = count / j.out_dims[r - 1], ow = j.out_dims[r - 1];
        j.dup2 = !j.linear;
        for (int64_t ox = 0; ox < ow && j.dup2; ox++) j.dup2 = j.ax[r - 1].i0[ox] == ox / 2;
        /* the plan only where a row loop takes it: rows kept as lines (linear) or gathered */
        if (dt_resize_avx512_ok() && (j.linear ? ow <= DT_RESIZE_LINE : !j.dup2)) {
            int64_t *base = (int64_t *)(((uintptr_t)wp + 7) & ~(uintptr_t)7);
            int32_t *rel = (int32_t *)(base + dt_resize_vecs(ow));
            dt_resize_plan_row(j.ax[r - 1].i0, j.linear ? j.ax[r - 1].i1 : NULL, ow, rel, base);
            j.rel = rel, j.base = base;
        }
        dt_parallel_for(ex->pool, rows, dt_cpu_grain(j.out_dims[r - 1] * 4), dt_resize_rows, &j);
    } else {
        dt_parallel_for(ex->pool, count, 4096, dt_resize_any, &j);
    }
    return DUCTILE_OK;
}

static ductile_status dt_resize_prepare(const ductile_layer *L, void **out)
{
    DT_TRY(dt_cpu_want_f32(L));
    dt_resize_layer r;
    DT_TRY(dt_resize_layer_read(L, &r));
    return dt_cpu_params_copy(&r, sizeof r, L, out);
}

/* Shapes the run refuses need nothing; the run names the fault. */
static ductile_status dt_resize_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                        size_t *bytes)
{
    (void)threads;
    *bytes = 0;
    dt_resize_params p;
    if (dt_resize_params_of(params, in, &p) != DUCTILE_OK) return DUCTILE_OK;
    if (!dt_resize_is_separable(&p)) {
        *bytes = dt_resize_table_bytes(&out[0]);
        return DUCTILE_OK;
    }
    dt_resize_sep_sizes z;
    if (dt_resize_sep_size(&p, &in[0], &z) == DUCTILE_OK) *bytes = z.bytes;
    return DUCTILE_OK;
}

static ductile_status dt_resize_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    return dt_resize_exec(params, in, out, ex);
}

const dt_kernel dt_cpu_resize_kernel = {
    .prepare = dt_resize_prepare, .scratch = dt_resize_scratch, .run = dt_resize_run,
};
