/* ConvTranspose and Col2Im. ConvTranspose is, per image and group, one GEMM
 * (W_g^T [Cout*K x Cin] times X_g [Cin x S]) into a column buffer, then col2im: each column
 * entry is added to the output position it maps to. Col2Im is that second step alone. */
#include "backend/cpu/gemm.h"
#include "core/alloc.h"
#include "backend/cpu/shape_copy.h"
#include "backend/cpu/shape_kernels.h"
#include "core/checked.h"
#include "core/status.h"
#include "ops/shape.h"

#include <stdlib.h>
#include <string.h>

typedef struct dt_col2im_job {
    const dt_col2im_geom *g;
    const float *col;   /* [channels * K, S_in] */
    float *img;         /* [channels, S_out], already holding the bias (or zeros) */
    int64_t K, S_in, S_out;
} dt_col2im_job;

/* Items are channels: each writes only its own image plane. */
static void dt_col2im_part(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_col2im_job *j = arg;
    const dt_col2im_geom *g = j->g;
    int n = g->nsp, last = n - 1;
    int64_t in_last = g->in[last], rows = j->S_in / in_last;
    int64_t ost[DT_MAX_DIMS];
    ost[last] = 1;
    for (int i = last - 1; i >= 0; i--) ost[i] = ost[i + 1] * g->out[i + 1];
    for (int64_t c = begin; c < end; c++) {
        float *img = j->img + c * j->S_out;
        for (int64_t kk = 0; kk < j->K; kk++) {
            int64_t kpos[DT_MAX_DIMS], rem = kk;
            for (int i = last; i >= 0; i--) {
                kpos[i] = rem % g->kernel[i];
                rem /= g->kernel[i];
            }
            const float *src = j->col + (c * j->K + kk) * j->S_in;
            int64_t o_first = kpos[last] * g->dil[last] - g->pad[last], s = g->stride[last];
            /* Input positions i of the last axis whose output o_first + i*s lies in [0, out). */
            int64_t i0 = o_first >= 0 ? 0 : (-o_first + s - 1) / s;
            int64_t i1 = g->out[last] - o_first <= 0 ? 0 : (g->out[last] - o_first + s - 1) / s;
            if (i1 > in_last) i1 = in_last;
            for (int64_t r = 0; r < rows; r++) {
                int64_t base = 0, rr = r;
                bool inside = true;
                for (int i = last - 1; i >= 0; i--) {
                    int64_t ip = rr % g->in[i];
                    rr /= g->in[i];
                    int64_t o = ip * g->stride[i] - g->pad[i] + kpos[i] * g->dil[i];
                    if (o < 0 || o >= g->out[i]) {
                        inside = false;
                        break;
                    }
                    base += o * ost[i];
                }
                if (!inside) continue;
                const float *sr = src + r * in_last;
                for (int64_t i = i0; i < i1; i++) img[base + o_first + i * s] += sr[i];
            }
        }
    }
}

static void dt_col2im_run(dt_exec *ex, const dt_col2im_geom *g, const float *col, int64_t channels,
                          float *img)
{
    dt_col2im_job j = {.g = g, .col = col, .img = img, .K = 1, .S_in = 1, .S_out = 1};
    for (int i = 0; i < g->nsp; i++) {
        j.K *= g->kernel[i];
        j.S_in *= g->in[i];
        j.S_out *= g->out[i];
    }
    if (j.S_in == 0 || j.S_out == 0) return;
    int64_t grain = 65536 / (j.K * j.S_in) + 1;
    dt_parallel_for(ex ? ex->pool : NULL, channels, grain, dt_col2im_part, &j);
}

ductile_status dt_cpu_conv_transpose(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    dt_convt_plan p;
    DT_TRY(dt_convt_plan_get(L, in, &p));
    const dt_col2im_geom *g = &p.g;
    int64_t K = 1, S_in = 1, S_out = 1, Cg = p.in_ch / p.group, Mg = p.out_ch / p.group;
    for (int i = 0; i < g->nsp; i++) {
        K *= g->kernel[i];
        S_in *= g->in[i];
        S_out *= g->out[i];
    }
    const float *bias = dt_shape_has(L, in, 2) ? in[2].data : NULL;
    float *y = out[0].data;
    for (int64_t c = 0; c < p.batch * p.out_ch; c++) {
        float b = bias ? bias[c % p.out_ch] : 0.0f;
        for (int64_t e = 0; e < S_out; e++) y[c * S_out + e] = b;
    }
    if (Cg == 0 || S_in == 0 || Mg == 0 || p.batch == 0) return DUCTILE_OK;
    size_t n_col;
    if (!dt_mul_size((size_t)(Mg * K), (size_t)S_in, &n_col) || !dt_mul_size(n_col, sizeof(float), &n_col) ||
        n_col > ((size_t)1 << 32))
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "the column buffer of %lld x %lld floats is too large",
                       (long long)(Mg * K), (long long)S_in);
    float *col = dt_malloc(n_col);
    if (!col) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for a %zu-byte column buffer", n_col);
    const float *x = in[0].data, *w = in[1].data;
    for (int64_t n = 0; n < p.batch; n++)
        for (int64_t gi = 0; gi < p.group; gi++) {
            dt_gemm gm = {.M = Mg * K, .N = S_in, .K = Cg, .alpha = 1.0f, .beta = 0.0f,
                          .A = w + gi * Cg * Mg * K, .lda = Mg * K, .trans_a = true,
                          .B = x + (n * p.in_ch + gi * Cg) * S_in, .ldb = S_in,
                          .C = col, .ldc = S_in};
            ductile_status s = dt_sgemm(&gm, ex ? ex->pool : NULL);
            if (s) {
                dt_free(col);
                return s;
            }
            dt_col2im_run(ex, g, col, Mg, y + (n * p.out_ch + gi * Mg) * S_out);
        }
    dt_free(col);
    return DUCTILE_OK;
}

ductile_status dt_cpu_col2im(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    dt_col2im_geom g;
    int64_t c;
    DT_TRY(dt_col2im_plan_get(L, in, &g, &c));
    int64_t N = in[0].dims[0], per_in = in[0].dims[1] * in[0].dims[2], per_out = dt_view_count(&out[0]) / (N ? N : 1);
    memset(out[0].data, 0, dt_cpu_view_bytes(&out[0]));
    for (int64_t n = 0; n < N; n++)
        dt_col2im_run(ex, &g, (const float *)in[0].data + n * per_in, c, (float *)out[0].data + n * per_out);
    return DUCTILE_OK;
}
