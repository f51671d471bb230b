/* Resize (nearest, linear): per-axis source indices and weights are computed once per call;
 * the common case (only the last two axes resized) runs a 2-D kernel over output rows, any
 * other pattern a generic N-linear loop over the resized axes' taps. */
#include "backend/cpu/nn_kernels.h"
#include "ops/nn.h"
#include "core/status.h"

#include <math.h>
#include <stdlib.h>

/* Where output coordinate i of axis a samples the input: i0 with weight 1 - w, i1 with w. */
typedef struct {
    int64_t *i0, *i1;
    float *w;
} dt_resize_axis;

/* The coordinate transforms in float, as onnxruntime computes them. */
static float dt_resize_source(const dt_resize_params *p, int64_t x, float scale, int64_t in,
                              int64_t out)
{
    float xf = (float)x;
    switch (p->ctm) {
    case DT_CTM_ASYMMETRIC: return xf / scale;
    case DT_CTM_ALIGN_CORNERS:
        /* onnxruntime divides by the rounded output length; onnx's reference divides by
         * in * scale, so they differ when in * scale is not whole (ductile follows onnxruntime,
         * which is what exported models are checked against). */
        return out == 1 ? 0.0f : xf * (float)(in - 1) / (float)(out - 1);
    case DT_CTM_PYTORCH_HALF_PIXEL: return out > 1 ? (xf + 0.5f) / scale - 0.5f : 0.0f;
    case DT_CTM_TF_HALF_PIXEL_FOR_NN: return (xf + 0.5f) / scale;
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
        float s = dt_resize_source(p, x, p->scale[a], in, out);
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
} dt_resize_job;

/* 2-D kernel: one item is one output row of one plane (all leading axes are identity). */
static void dt_resize_rows(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_resize_job *j = arg;
    int r = j->rank;
    int64_t ih = j->in_dims[r - 2], iw = j->in_dims[r - 1];
    int64_t oh = j->out_dims[r - 2], ow = j->out_dims[r - 1];
    const dt_resize_axis *ty = &j->ax[r - 2], *tx = &j->ax[r - 1];
    for (int64_t it = b; it < e; it++) {
        int64_t p = it / oh, oy = it % oh;
        const float *plane = j->x + p * ih * iw;
        const float *r0 = plane + ty->i0[oy] * iw, *r1 = plane + ty->i1[oy] * iw;
        float *y = j->y + it * ow;
        if (!j->linear) {
            for (int64_t ox = 0; ox < ow; ox++) y[ox] = r0[tx->i0[ox]];
            continue;
        }
        float wy = ty->w[oy];
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

ductile_status dt_cpu_resize(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    dt_resize_params p;
    DT_TRY(dt_resize_params_get(L, in, &p));
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
    /* One block: per axis i0 and i1 (int64) then w (float), out[a] entries each. */
    char *mem = malloc((size_t)total * (2 * sizeof(int64_t) + sizeof(float)) + 1);
    if (!mem)
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for Resize tables (%lld entries)",
                       (long long)total);
    int64_t *ip = (int64_t *)mem;
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
        int64_t rows = count / j.out_dims[r - 1];
        dt_parallel_for(ex->pool, rows, dt_cpu_grain(j.out_dims[r - 1] * 4), dt_resize_rows, &j);
    } else {
        dt_parallel_for(ex->pool, count, 4096, dt_resize_any, &j);
    }
    free(mem);
    return DUCTILE_OK;
}
