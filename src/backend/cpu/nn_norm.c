/* LayerNormalization, BatchNormalization (inference), InstanceNormalization. Mean and
 * variance take two passes (mean, then squared deviations) in float: one-pass E[x^2]-E[x]^2
 * cancels badly when the mean is large against the spread. */
#include "backend/cpu/nn_kernels.h"
#include "core/alloc.h"
#include "core/checked.h"
#include "ops/fused.h"
#include "ops/nn.h"
#include "core/status.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

/* Sum of (x - m)^2 with independent accumulators, like dt_cpu_sum_f32 (and cloned like it:
 * the accumulators fix the order of the additions, so every clone gives the same sum). */
__attribute__((target_clones("avx512f", "avx2", "default")))
static float dt_sq_dev_sum(const float *x, int64_t n, float m)
{
    float acc[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) {
            float d = x[i + k] - m;
            acc[k] += d * d;
        }
    float s = 0.0f;
    for (int k = 0; k < 16; k++) s += acc[k];
    for (; i < n; i++) s += (x[i] - m) * (x[i] - m);
    return s;
}

typedef struct {
    const float *x, *scale, *bias;
    const float *in_mean, *in_var; /* BatchNormalization's inputs */
    float *y, *mean, *inv_std;     /* LayerNormalization's outputs (may be NULL) */
    int64_t block, n_scale, n_bias, channels;
    float eps;
    bool rms;                      /* RMSNormalization: no mean subtracted */
    const int64_t *ids;            /* FusedLayerNorm with IDS: row r is x's row ids[r] (checked) */
    const float *r[2];             /* FusedLayerNorm's addends (NULL: none), y = (x + r0) + r1 */
    const dt_view *xv;             /* ... X, whose row dims (before axis) index them */
    int axis;
    int64_t r_st[2][DT_MAX_DIMS];  /* ... their strides along those dims (0: broadcast) */
} dt_norm_job;

/* A transformer runs it after every residual: AVX-512 and AVX2 clones of the scaling loops
 * (elementwise, so the same values). */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void dt_layernorm_range(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_norm_job *j = arg;
    int64_t d = j->block;
    for (int64_t r = b; r < e; r++) {
        const float *x = j->x + (j->ids ? j->ids[r] : r) * d;
        float *y = j->y + r * d;
        /* FusedLayerNorm: the row's sums first, into y, which is then normalized in place (each
         * element is read before it is written). */
        for (int a = 0; a < 2 && j->r[a]; a++) {
            const float *ra = j->r[a] + dt_fused_layernorm_row_offset(j->xv, j->axis, j->r_st[a], r);
            for (int64_t k = 0; k < d; k++) y[k] = x[k] + ra[k];
            x = y;
        }
        float m = j->rms ? 0.0f : dt_cpu_sum_f32(x, d) / (float)d;
        float inv = 1.0f / sqrtf(dt_sq_dev_sum(x, d, m) / (float)d + j->eps);
        if (j->mean) j->mean[r] = m;
        if (j->inv_std) j->inv_std[r] = inv;
        /* Scale and B repeat with their own period (a suffix of the normalized dims). */
        for (int64_t k0 = 0; k0 < d; k0 += j->n_scale) {
            int64_t len = d - k0 < j->n_scale ? d - k0 : j->n_scale;
            for (int64_t k = 0; k < len; k++)
                y[k0 + k] = (x[k0 + k] - m) * inv * j->scale[k];
        }
        if (j->bias)
            for (int64_t k0 = 0; k0 < d; k0 += j->n_bias) {
                int64_t len = d - k0 < j->n_bias ? d - k0 : j->n_bias;
                for (int64_t k = 0; k < len; k++) y[k0 + k] += j->bias[k];
            }
    }
}

/* A normalization compiled: epsilon (and LayerNormalization's axis) read once; which
 * optional inputs and outputs exist is fixed by the layer. */
typedef struct dt_norm_params {
    float eps;
    int64_t axis;
    bool rms, has_b;
    int n_out, n_in;
    bool training;          /* BatchNormalization: training_mode = 1 */
    bool run_stats[2];      /* ... and outputs 1, 2 (running mean, variance) wanted */
    float momentum;
} dt_norm_params;

static ductile_status dt_norm_prepare(const ductile_layer *L, void **out)
{
    DT_TRY(dt_cpu_want_f32(L));
    dt_norm_params p = {
        .eps = dt_attr_float(L, "epsilon", 1e-5f),
        .axis = dt_attr_int(L, "axis", -1),
        .rms = strcmp(L->op_type, "RMSNormalization") == 0,
        .has_b = L->n_in > 2 && L->in[2],
        .n_out = L->n_out,
        .n_in = L->n_in,
        .training = L->opset >= 14 && dt_attr_int(L, "training_mode", 0) == 1,
        .run_stats = {L->n_out > 1 && L->out[1], L->n_out > 2 && L->out[2]},
        .momentum = dt_attr_float(L, "momentum", 0.9f),
    };
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_layernorm_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_norm_params *p = params;
    int axis;
    int64_t block;
    DT_TRY(dt_layernorm_layout_of(p->axis, &in[0], &axis, &block));
    bool has_b = p->has_b && in[2].rank >= 0;
    dt_norm_job j = {
        .x = in[0].data, .scale = in[1].data, .bias = has_b ? in[2].data : NULL,
        .y = out[0].data,
        .mean = p->n_out > 1 ? out[1].data : NULL,
        .inv_std = p->n_out > 2 ? out[2].data : NULL,
        .block = block, .n_scale = dt_view_count(&in[1]),
        .n_bias = has_b ? dt_view_count(&in[2]) : 0,
        .eps = p->eps,
        .rms = p->rms,
    };
    if (block == 0 || j.n_scale == 0 || (has_b && j.n_bias == 0)) return DUCTILE_OK;
    int64_t rows = dt_view_count(&in[0]) / block;
    dt_parallel_for(ex->pool, rows, dt_cpu_grain(block * 3), dt_layernorm_range, &j);
    return DUCTILE_OK;
}

/* dt_layernorm_range's arithmetic for nr <= 8 plain rows (x + r d into y + r d, y may be x;
 * scale and bias of d), phase by phase over the rows: every row's sum, then every row's
 * squared deviations, then the scaling (with the bias in the same pass: the same two float
 * operations per element). One row at a time the two reductions (16 lanes, then the lanes
 * added in order, then a division, a square root) were chains the core waited out; over 8
 * rows they overlap. The sums in dt_cpu_sum_f32's and dt_sq_dev_sum's order: the same bits.
 * bert_small's 1024 x 256 LayerNorm after a FusedMatMul: 0.059 -> 0.033 ms (session 19). */
__attribute__((target("avx512f"))) static void dt_layernorm_rows8(const float *x, const float *scale,
                                                                   const float *bias, float *y, int nr, int64_t d,
                                                                   float eps)
{
    float m[8], inv[8], lane[16];
    const int64_t dv = d / 16 * 16;
    for (int r = 0; r < nr; r++) {
        const float *xr = x + r * d;
        __m512 acc = _mm512_setzero_ps();
        for (int64_t k = 0; k < dv; k += 16) acc = _mm512_add_ps(acc, _mm512_loadu_ps(xr + k));
        _mm512_storeu_ps(lane, acc);
        float s = 0.0f;
        for (int l = 0; l < 16; l++) s += lane[l];
        for (int64_t k = dv; k < d; k++) s += xr[k];
        m[r] = s / (float)d;
    }
    for (int r = 0; r < nr; r++) {
        const float *xr = x + r * d;
        __m512 vm = _mm512_set1_ps(m[r]), acc = _mm512_setzero_ps();
        for (int64_t k = 0; k < dv; k += 16) {
            __m512 t = _mm512_sub_ps(_mm512_loadu_ps(xr + k), vm);
            acc = _mm512_add_ps(acc, _mm512_mul_ps(t, t));
        }
        _mm512_storeu_ps(lane, acc);
        float s = 0.0f;
        for (int l = 0; l < 16; l++) s += lane[l];
        for (int64_t k = dv; k < d; k++) s += (xr[k] - m[r]) * (xr[k] - m[r]);
        inv[r] = 1.0f / sqrtf(s / (float)d + eps);
    }
    for (int r = 0; r < nr; r++) {
        const float *xr = x + r * d;
        float *yr = y + r * d;
        __m512 vm = _mm512_set1_ps(m[r]), vi = _mm512_set1_ps(inv[r]);
        int64_t k = 0;
        for (; k < dv; k += 16) {
            __m512 t = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + k), vm), vi),
                                     _mm512_loadu_ps(scale + k));
            if (bias) t = _mm512_add_ps(t, _mm512_loadu_ps(bias + k));
            _mm512_storeu_ps(yr + k, t);
        }
        for (; k < d; k++) {
            float t = (xr[k] - m[r]) * inv[r] * scale[k];
            yr[k] = bias ? t + bias[k] : t;
        }
    }
}

static void dt_layernorm_rows8_range(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_norm_job *j = arg;
    for (int64_t r = b; r < e; r += 8)
        dt_layernorm_rows8(j->x + r * j->block, j->scale, j->bias, j->y + r * j->block, e - r < 8 ? (int)(e - r) : 8,
                           j->block, j->eps);
}

void dt_cpu_layernorm_rows(const float *x, const float *scale, const float *bias, float *y, int64_t rows, int64_t d,
                           float eps, dt_pool *pool)
{
    dt_norm_job j = {.x = x, .scale = scale, .bias = bias, .y = y, .block = d, .n_scale = d, .n_bias = bias ? d : 0,
                     .eps = eps};
    __builtin_cpu_init();
    if (rows > 0 && d > 0)
        dt_parallel_for(pool, rows, dt_cpu_grain(d * 3),
                        __builtin_cpu_supports("avx512f") ? dt_layernorm_rows8_range : dt_layernorm_range, &j);
}

/* FusedLayerNorm (ops/fused.h): LayerNormalization of (X + R1) + R2, the addends broadcast by rows. */
static ductile_status dt_fused_layernorm_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_norm_params *p = params;
    bool gathers = p->n_in > DT_FLN_IDS && in[DT_FLN_IDS].rank >= 0;
    dt_view x;
    dt_fused_layernorm_x(in, gathers, &x);
    int axis;
    int64_t block;
    DT_TRY(dt_layernorm_layout_of(p->axis, &x, &axis, &block));
    bool has_b = p->has_b && in[DT_FLN_B].rank >= 0;
    dt_norm_job j = {
        .x = in[DT_FLN_X].data, .scale = in[DT_FLN_SCALE].data, .bias = has_b ? in[DT_FLN_B].data : NULL,
        .y = out[0].data, .block = block, .n_scale = dt_view_count(&in[DT_FLN_SCALE]),
        .n_bias = has_b ? dt_view_count(&in[DT_FLN_B]) : 0, .eps = p->eps, .xv = &x, .axis = axis,
    };
    int64_t rows = block ? dt_view_count(&x) / block : 0;
    if (rows == 0 || block == 0 || j.n_scale == 0 || (has_b && j.n_bias == 0)) return DUCTILE_OK;
    for (int a = 0; a < 2 && DT_FLN_R1 + a < p->n_in && in[DT_FLN_R1 + a].rank >= 0; a++) {
        j.r[a] = in[DT_FLN_R1 + a].data;
        if (!dt_fused_layernorm_strides(&x, axis, &in[DT_FLN_R1 + a], j.r_st[a]))
            return dt_fail(DUCTILE_ERR_SHAPE, "input %d does not broadcast to X by rows", DT_FLN_R1 + a);
    }
    if (gathers) {   /* Gather's check: every id in range (negatives wrap), before any row is written */
        int64_t v = in[DT_FLN_X].dims[0];
        int64_t *ids = ex->scratch;   /* the run allocates nothing (dt_fused_layernorm_scratch) */
        if (!ids || ex->scratch_bytes < (size_t)rows * sizeof *ids)
            return dt_fail(DUCTILE_ERR_INTERNAL, "the scratch of %zu bytes is smaller than the %lld ids of this layer",
                           ex->scratch_bytes, (long long)rows);
        for (int64_t i = 0; i < rows; i++) {
            int64_t id = dt_view_int(&in[DT_FLN_IDS], i);
            if (id < -v || id >= v) {
                return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                               "input 5 (IDS) holds the index %lld at position %lld, out of range for the table's %lld "
                               "rows (expected %lld..%lld)", (long long)id, (long long)i, (long long)v, (long long)-v,
                               (long long)v - 1);
            }
            ids[i] = id < 0 ? id + v : id;
        }
        j.ids = ids;
    }
    dt_parallel_for(ex->pool, rows, dt_cpu_grain(block * 4), dt_layernorm_range, &j);
    return DUCTILE_OK;
}

/* The gathered rows' ids, checked and wrapped before any row is written. */
static ductile_status dt_fused_layernorm_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                                 size_t *bytes)
{
    (void)out;
    (void)threads;
    const dt_norm_params *p = params;
    bool gathers = p->n_in > DT_FLN_IDS && in[DT_FLN_IDS].rank >= 0;
    *bytes = 0;
    if (gathers && !dt_mul_size((size_t)dt_view_count(&in[DT_FLN_IDS]), sizeof(int64_t), bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "%lld ids overflow size_t", (long long)dt_view_count(&in[DT_FLN_IDS]));
    return DUCTILE_OK;
}

/* BatchNormalization: one item is one (n, c) plane; y = x * a + b with per-channel a, b. */
static void dt_batchnorm_range(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_norm_job *j = arg;
    for (int64_t p = b; p < e; p++) {
        int64_t c = p % j->channels;
        float a = j->scale[c] / sqrtf(j->in_var[c] + j->eps);
        float off = j->bias[c] - j->in_mean[c] * a;
        const float *x = j->x + p * j->block;
        float *y = j->y + p * j->block;
        for (int64_t k = 0; k < j->block; k++) y[k] = x[k] * a + off;
    }
}

/* Training mode: one item is one channel; its mean and (population) variance over the batch
 * and spatial dims normalize it, and blend into the running statistics (outputs 1, 2). */
typedef struct {
    const float *x, *scale, *bias, *in_mean, *in_var;
    float *y, *run_mean, *run_var;
    int64_t n, channels, plane;
    float eps, momentum;
} dt_bn_train_job;

static void dt_bn_train_range(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_bn_train_job *j = arg;
    for (int64_t c = b; c < e; c++) {
        double sum = 0.0, sq = 0.0;
        for (int64_t n = 0; n < j->n; n++) sum += dt_cpu_sum_f32(j->x + (n * j->channels + c) * j->plane, j->plane);
        int64_t count = j->n * j->plane;
        float m = count ? (float)(sum / (double)count) : 0.0f;
        for (int64_t n = 0; n < j->n; n++) sq += dt_sq_dev_sum(j->x + (n * j->channels + c) * j->plane, j->plane, m);
        float v = count ? (float)(sq / (double)count) : 0.0f;
        float a = j->scale[c] / sqrtf(v + j->eps), off = j->bias[c] - m * a;
        for (int64_t n = 0; n < j->n; n++) {
            const float *x = j->x + (n * j->channels + c) * j->plane;
            float *y = j->y + (n * j->channels + c) * j->plane;
            for (int64_t k = 0; k < j->plane; k++) y[k] = x[k] * a + off;
        }
        if (j->run_mean) j->run_mean[c] = j->in_mean[c] * j->momentum + m * (1.0f - j->momentum);
        if (j->run_var) j->run_var[c] = j->in_var[c] * j->momentum + v * (1.0f - j->momentum);
    }
}

static ductile_status dt_batchnorm_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_norm_params *p = params;
    if (p->training) {
        int64_t plane = 1;
        for (int i = 2; i < in[0].rank; i++) plane *= in[0].dims[i];
        dt_bn_train_job t = {in[0].data, in[1].data, in[2].data, in[3].data, in[4].data, out[0].data,
                             p->run_stats[0] ? out[1].data : NULL, p->run_stats[1] ? out[2].data : NULL,
                             in[0].dims[0], in[0].dims[1], plane, p->eps, p->momentum};
        dt_parallel_for(ex->pool, t.channels, dt_cpu_grain(t.n * plane * 3), dt_bn_train_range, &t);
        return DUCTILE_OK;
    }
    int64_t plane = 1;
    for (int i = 2; i < in[0].rank; i++) plane *= in[0].dims[i];
    dt_norm_job j = {
        .x = in[0].data, .scale = in[1].data, .bias = in[2].data,
        .in_mean = in[3].data, .in_var = in[4].data,
        .y = out[0].data, .block = plane, .channels = in[0].dims[1],
        .eps = p->eps,
    };
    int64_t planes = in[0].dims[0] * in[0].dims[1];
    dt_parallel_for(ex->pool, planes, dt_cpu_grain(plane), dt_batchnorm_range, &j);
    return DUCTILE_OK;
}

static void dt_instancenorm_range(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_norm_job *j = arg;
    int64_t d = j->block;
    for (int64_t p = b; p < e; p++) {
        int64_t c = p % j->channels;
        const float *x = j->x + p * d;
        float *y = j->y + p * d;
        float m = dt_cpu_sum_f32(x, d) / (float)d;
        float a = j->scale[c] / sqrtf(dt_sq_dev_sum(x, d, m) / (float)d + j->eps);
        float off = j->bias[c] - m * a;
        for (int64_t k = 0; k < d; k++) y[k] = x[k] * a + off;
    }
}

static ductile_status dt_instancenorm_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_norm_params *p = params;
    int64_t plane = 1;
    for (int i = 2; i < in[0].rank; i++) plane *= in[0].dims[i];
    dt_norm_job j = {
        .x = in[0].data, .scale = in[1].data, .bias = in[2].data, .y = out[0].data,
        .block = plane, .channels = in[0].dims[1], .eps = p->eps,
    };
    if (plane == 0) return DUCTILE_OK;
    int64_t planes = in[0].dims[0] * in[0].dims[1];
    dt_parallel_for(ex->pool, planes, dt_cpu_grain(plane * 3), dt_instancenorm_range, &j);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_layernorm_kernel = {.prepare = dt_norm_prepare, .run = dt_layernorm_run};
const dt_kernel dt_cpu_fused_layernorm_kernel = {.prepare = dt_norm_prepare, .scratch = dt_fused_layernorm_scratch,
                                                  .run = dt_fused_layernorm_run};
const dt_kernel dt_cpu_batchnorm_kernel = {.prepare = dt_norm_prepare, .run = dt_batchnorm_run};
const dt_kernel dt_cpu_instancenorm_kernel = {.prepare = dt_norm_prepare, .run = dt_instancenorm_run};
