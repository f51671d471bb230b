/* ConvTranspose and Col2Im. ConvTranspose is, per image and group, one GEMM
 * (W_g^T [Cout*K x Cin] times X_g [Cin x S]) into a column buffer, then col2im: each column
 * entry is added to the output position it maps to. Col2Im is that second step alone. */
#include "backend/cpu/gemm.h"
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

/* ConvTranspose and Col2Im compiled: their attributes read once; the layer kept for naming
 * inputs in messages. */
typedef struct dt_fold_params {
    const ductile_layer *L;
    dt_fold_attrs a;
} dt_fold_params;

static ductile_status dt_fold_prepare(const ductile_layer *L, void **out)
{
    dt_fold_params p = {.L = L};
    DT_TRY(dt_fold_attrs_read(L, &p.a));
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

/* One group's product W_g^T [Mg*K x Cg] times X_g [Cg x S_in] into the column buffer. */
static dt_gemm dt_convt_gemm(const dt_convt_plan *p, int64_t K, int64_t S_in)
{
    int64_t Cg = p->in_ch / p->group, Mg = p->out_ch / p->group;
    dt_gemm gm = {.M = Mg * K, .N = S_in, .K = Cg, .alpha = 1.0f, .beta = 0.0f, .lda = Mg * K,
                  .trans_a = true, .ldb = S_in, .ldc = S_in};
    return gm;
}

/* Bytes of the column buffer, 64-byte aligned so the GEMM's buffers follow it; false when
 * it exceeds 4 GiB (refused by the run). */
static bool dt_convt_col_bytes(const dt_convt_plan *p, int64_t K, int64_t S_in, size_t *bytes)
{
    int64_t Mg = p->out_ch / p->group;
    size_t n;
    if (!dt_mul_size((size_t)(Mg * K), (size_t)S_in, &n) || !dt_mul_size(n, sizeof(float), &n) ||
        n > ((size_t)1 << 32))
        return false;
    *bytes = (n + 63) & ~(size_t)63;
    return true;
}

static void dt_convt_sizes(const dt_convt_plan *p, int64_t *K, int64_t *S_in, int64_t *S_out)
{
    *K = *S_in = *S_out = 1;
    for (int i = 0; i < p->g.nsp; i++) {
        *K *= p->g.kernel[i];
        *S_in *= p->g.in[i];
        *S_out *= p->g.out[i];
    }
}

static ductile_status dt_convt_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                       size_t *bytes)
{
    const dt_fold_params *prm = params;
    dt_convt_plan p;
    int64_t K, S_in, S_out;
    size_t col;
    *bytes = 0;
    /* Shapes the run refuses need nothing: the run names the fault. */
    if (dt_convt_plan_of(prm->L, &prm->a, in, &p) != DUCTILE_OK) return DUCTILE_OK;
    dt_convt_sizes(&p, &K, &S_in, &S_out);
    if (p.in_ch / p.group == 0 || S_in == 0 || p.out_ch / p.group == 0 || p.batch == 0) return DUCTILE_OK;
    if (!dt_convt_col_bytes(&p, K, S_in, &col)) return DUCTILE_OK;
    dt_gemm gm = dt_convt_gemm(&p, K, S_in);
    *bytes = col + dt_sgemm_scratch_bytes(&gm, threads);
    return DUCTILE_OK;
}

static ductile_status dt_convt_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_fold_params *prm = params;
    dt_convt_plan p;
    DT_TRY(dt_convt_plan_of(prm->L, &prm->a, in, &p));
    const dt_col2im_geom *g = &p.g;
    int64_t K, S_in, S_out, Cg = p.in_ch / p.group, Mg = p.out_ch / p.group;
    dt_convt_sizes(&p, &K, &S_in, &S_out);
    const float *bias = dt_shape_has(prm->L, in, 2) ? in[2].data : NULL;
    float *y = out[0].data;
    for (int64_t c = 0; c < p.batch * p.out_ch; c++) {
        float b = bias ? bias[c % p.out_ch] : 0.0f;
        for (int64_t e = 0; e < S_out; e++) y[c * S_out + e] = b;
    }
    if (Cg == 0 || S_in == 0 || Mg == 0 || p.batch == 0) return DUCTILE_OK;
    size_t n_col;
    if (!dt_convt_col_bytes(&p, K, S_in, &n_col))
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "the column buffer of %lld x %lld floats is too large",
                       (long long)(Mg * K), (long long)S_in);
    dt_gemm gm = dt_convt_gemm(&p, K, S_in);
    size_t need = n_col + dt_sgemm_scratch_bytes(&gm, dt_pool_threads(ex->pool));
    if (!ex->scratch || ex->scratch_bytes < need)
        return dt_fail(DUCTILE_ERR_INTERNAL, "the scratch of %zu bytes is smaller than the %zu this layer needs",
                       ex->scratch_bytes, need);
    float *col = ex->scratch;
    void *gemm_scratch = (char *)ex->scratch + n_col;
    const float *x = in[0].data, *w = in[1].data;
    gm.C = col;
    for (int64_t n = 0; n < p.batch; n++)
        for (int64_t gi = 0; gi < p.group; gi++) {
            gm.A = w + gi * Cg * Mg * K;
            gm.B = x + (n * p.in_ch + gi * Cg) * S_in;
            DT_TRY(dt_sgemm_in(&gm, ex->pool, gemm_scratch));
            dt_col2im_run(ex, g, col, Mg, y + (n * p.out_ch + gi * Mg) * S_out);
        }
    return DUCTILE_OK;
}

static ductile_status dt_col2im_kernel_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_fold_params *prm = params;
    dt_col2im_geom g;
    int64_t c;
    DT_TRY(dt_col2im_plan_of(prm->L, &prm->a, in, &g, &c));
    int64_t N = in[0].dims[0], per_in = in[0].dims[1] * in[0].dims[2], per_out = dt_view_count(&out[0]) / (N ? N : 1);
    memset(out[0].data, 0, dt_cpu_view_bytes(&out[0]));
    for (int64_t n = 0; n < N; n++)
        dt_col2im_run(ex, &g, (const float *)in[0].data + n * per_in, c, (float *)out[0].data + n * per_out);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_conv_transpose_kernel = {
    .prepare = dt_fold_prepare, .scratch = dt_convt_scratch, .run = dt_convt_run,
};
const dt_kernel dt_cpu_col2im_kernel = {.prepare = dt_fold_prepare, .run = dt_col2im_kernel_run};
