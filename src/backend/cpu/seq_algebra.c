/* OneHot, Det, TensorScatter, SwiGLU, RotaryEmbedding, LinearAttention, CausalConvWithState
 * on the CPU, compiled: attributes read once by each prepare, double copies of the operands in
 * the context's scratch. */
#include "backend/cpu/seq_kernels.h"
#include "ops/seq.h"
#include "core/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Scratch of the kernels whose run converts their inputs [0, n) and stores their output 0
 * from doubles: one dt_seq_n1 per input plus one for the output. */
static int64_t dt_seq_io_doubles(const dt_view *in, int n, const dt_view *out)
{
    int64_t d = dt_seq_n1(&out[0]);
    for (int i = 0; i < n; i++) d += dt_seq_n1(&in[i]);
    return d;
}

/* ---- OneHot ---- */

typedef struct dt_seq_onehot {
    const ductile_layer *L;     /* the depth scalar's messages */
    int64_t axis;
} dt_seq_onehot;

static ductile_status dt_onehot_prepare(const ductile_layer *L, void **out)
{
    dt_seq_onehot p = {L, dt_attr_int(L, "axis", -1)};
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_onehot_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                        size_t *bytes)
{
    return dt_seq_scratch_bytes("OneHot", dt_seq_n1(&in[0]), bytes);
}

static ductile_status dt_onehot_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_seq_onehot *c = params;
    int64_t depth;
    DT_TRY(dt_seq_scalar(c->L, in, 1, "depth", &depth));
    int axis = 0;
    DT_TRY(dt_norm_axis(c->axis, out[0].rank, &axis));
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= out[0].dims[i];
    for (int i = axis + 1; i < out[0].rank; i++) inner *= out[0].dims[i];
    double *cur;
    DT_TRY(dt_seq_scratch("OneHot", ex, dt_seq_n1(&in[0]), &cur));
    double *idx = dt_seq_take_load(&cur, &in[0]);
    size_t es = ductile_dtype_size((ductile_dtype)out[0].dtype);
    const char *off = in[2].data, *on = off + es;
    char *y = out[0].data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t d = 0; d < depth; d++)
            for (int64_t q = 0; q < inner; q++) {
                double v = idx[o * inner + q];
                int64_t k = isfinite(v) && fabs(v) < 9e18 ? (int64_t)v : -depth - 1;
                if (k < 0) k += depth;
                memcpy(y + (size_t)((o * depth + d) * inner + q) * es, k == d ? on : off, es);
            }
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_seq_onehot_kernel = {
    .prepare = dt_onehot_prepare, .scratch = dt_onehot_scratch, .run = dt_onehot_run,
};

/* ---- Det (no attributes) ---- */

static ductile_status dt_det_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                     size_t *bytes)
{
    return dt_seq_scratch_bytes("Det", dt_seq_io_doubles(in, 1, out), bytes);
}

static ductile_status dt_det_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    int64_t M = in[0].dims[in[0].rank - 1], n = dt_view_count(&out[0]);
    double *cur;
    DT_TRY(dt_seq_scratch("Det", ex, dt_seq_io_doubles(in, 1, out), &cur));
    double *x = dt_seq_take_load(&cur, &in[0]), *y = dt_seq_take(&cur, dt_seq_n1(&out[0]));
    for (int64_t b = 0; b < n; b++) {
        double *a = x + b * M * M, det = 1;
        for (int64_t c = 0; c < M; c++) {
            int64_t piv = c;
            for (int64_t r = c + 1; r < M; r++)
                if (fabs(a[r * M + c]) > fabs(a[piv * M + c])) piv = r;
            if (a[piv * M + c] == 0) {
                det = 0;
                break;
            }
            if (piv != c) {
                for (int64_t k = 0; k < M; k++) {
                    double t = a[c * M + k];
                    a[c * M + k] = a[piv * M + k], a[piv * M + k] = t;
                }
                det = -det;
            }
            det *= a[c * M + c];
            for (int64_t r = c + 1; r < M; r++) {
                double f = a[r * M + c] / a[c * M + c];
                for (int64_t k = c; k < M; k++) a[r * M + k] -= f * a[c * M + k];
            }
        }
        y[b] = det;
    }
    dt_seq_store(&out[0], y, n);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_seq_det_kernel = {.scratch = dt_det_scratch, .run = dt_det_run};

/* ---- TensorScatter (no scratch: it copies elements as they are) ---- */

typedef struct dt_seq_tscatter {
    const ductile_layer *L;     /* whether write_indices is given */
    int64_t axis;
    bool circular;
} dt_seq_tscatter;

static ductile_status dt_tscatter_prepare(const ductile_layer *L, void **out)
{
    dt_seq_tscatter p = {L, dt_attr_int(L, "axis", -2), strcmp(dt_attr_string(L, "mode", "linear"), "circular") == 0};
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_tscatter_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_seq_tscatter *cp = params;
    const ductile_layer *L = cp->L;
    const dt_view *c = &in[0], *u = &in[1];
    int axis;
    DT_TRY(dt_norm_axis(cp->axis, c->rank, &axis));
    bool circular = cp->circular;
    size_t es = ductile_dtype_size((ductile_dtype)c->dtype);
    int64_t per_b = 1, inner = 1;
    for (int i = 1; i < axis; i++) per_b *= c->dims[i];
    for (int i = axis + 1; i < c->rank; i++) inner *= c->dims[i];
    int64_t maxs = c->dims[axis], seq = u->dims[axis];
    memcpy(out[0].data, c->data, (size_t)dt_view_count(c) * es);
    for (int64_t b = 0; b < c->dims[0]; b++) {
        int64_t w = dt_seq_given(L, in, 2) ? dt_view_int(&in[2], b) : 0;
        for (int64_t s = 0; s < seq; s++) {
            int64_t t = w + s;
            if (circular) t = ((t % maxs) + maxs) % maxs;
            if (t < 0 || t >= maxs)
                return dt_fail(DUCTILE_ERR_SHAPE, "write index %lld + %lld of batch %lld is outside 0..%lld",
                               (long long)w, (long long)s, (long long)b, (long long)maxs - 1);
            for (int64_t p = 0; p < per_b; p++)
                memcpy((char *)out[0].data + (size_t)(((b * per_b + p) * maxs + t) * inner) * es,
                       (const char *)u->data + (size_t)(((b * per_b + p) * seq + s) * inner) * es,
                       (size_t)inner * es);
        }
    }
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_seq_tscatter_kernel = {.prepare = dt_tscatter_prepare, .run = dt_tscatter_run};

/* ---- SwiGLU ---- */

static ductile_status dt_swiglu_prepare(const ductile_layer *L, void **out)
{
    double alpha = dt_attr_float(L, "alpha", 1.0f);
    return dt_cpu_params_copy(&alpha, sizeof alpha, L, out);
}

static ductile_status dt_swiglu_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                        size_t *bytes)
{
    return dt_seq_scratch_bytes("SwiGLU", dt_seq_n1(&in[0]) + dt_seq_n1(&in[1]), bytes);
}

static ductile_status dt_swiglu_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    double alpha = *(const double *)params;
    int64_t n = dt_view_count(&in[0]);
    double *cur;
    DT_TRY(dt_seq_scratch("SwiGLU", ex, dt_seq_n1(&in[0]) + dt_seq_n1(&in[1]), &cur));
    double *a = dt_seq_take_load(&cur, &in[0]), *b = dt_seq_take_load(&cur, &in[1]);
    for (int64_t i = 0; i < n; i++) a[i] = a[i] / (1 + exp(-alpha * a[i])) * b[i];
    dt_seq_store(&out[0], a, n);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_seq_swiglu_kernel = {
    .prepare = dt_swiglu_prepare, .scratch = dt_swiglu_scratch, .run = dt_swiglu_run,
};

/* ---- RotaryEmbedding ---- */

typedef struct dt_seq_rope {
    const ductile_layer *L;     /* whether position_ids is given */
    dt_rope_attrs a;
} dt_seq_rope;

static ductile_status dt_rope_prepare(const ductile_layer *L, void **out)
{
    dt_seq_rope p = {.L = L};
    dt_rope_attrs_read(L, &p.a);
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static int64_t dt_rope_doubles(const dt_view *in)
{
    return dt_seq_n1(&in[0]) + dt_seq_n1(&in[1]) + dt_seq_n1(&in[2]);
}

static ductile_status dt_rope_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                      size_t *bytes)
{
    return dt_seq_scratch_bytes("RotaryEmbedding", dt_rope_doubles(in), bytes);
}

static ductile_status dt_rope_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_seq_rope *c = params;
    dt_rope_params p;
    DT_TRY(dt_rope_params_of(&c->a, c->L, in, &p));
    int64_t n = dt_view_count(&in[0]), half = p.rot / 2;
    double *cur;
    DT_TRY(dt_seq_scratch("RotaryEmbedding", ex, dt_rope_doubles(in), &cur));
    double *x = dt_seq_take_load(&cur, &in[0]), *cs = dt_seq_take_load(&cur, &in[1]);
    double *sn = dt_seq_take_load(&cur, &in[2]);
    for (int64_t b = 0; b < p.B; b++)
        for (int64_t s = 0; s < p.S; s++) {
            int64_t row = b * p.S + s;
            if (p.pos_ids) {
                row = dt_view_int(&in[3], b * p.S + s);
                if (row < 0 || row >= p.max_pos) {
                    return dt_fail(DUCTILE_ERR_SHAPE, "position_ids[%lld, %lld] = %lld is outside 0..%lld", (long long)b,
                                   (long long)s, (long long)row, (long long)p.max_pos - 1);
                }
            }
            const double *c = cs + row * half, *si = sn + row * half;
            for (int64_t h = 0; h < p.H; h++) {
                double *v = x + (p.four_d ? ((b * p.H + h) * p.S + s) : ((b * p.S + s) * p.H + h)) * p.D;
                for (int64_t k = 0; k < half; k++) {
                    int64_t i1 = p.interleaved ? 2 * k : k, i2 = p.interleaved ? 2 * k + 1 : k + half;
                    double x1 = v[i1], x2 = v[i2];
                    v[i1] = c[k] * x1 - si[k] * x2;
                    v[i2] = si[k] * x1 + c[k] * x2;
                }
            }
        }
    dt_seq_store(&out[0], x, n);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_seq_rope_kernel = {.prepare = dt_rope_prepare, .scratch = dt_rope_scratch, .run = dt_rope_run};

/* ---- LinearAttention ---- */

typedef struct dt_seq_linattn {
    const ductile_layer *L;     /* which optional inputs and outputs exist */
    dt_linattn_attrs a;
} dt_seq_linattn;

static ductile_status dt_linattn_prepare(const ductile_layer *L, void **out)
{
    dt_seq_linattn p = {.L = L};
    dt_linattn_attrs_read(L, &p.a);
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

/* Doubles of the run: q, k, v, the state, decay, beta, y and one value row. */
static int64_t dt_linattn_doubles(const dt_seq_linattn *c, const dt_linattn_params *p, const dt_view *in)
{
    int64_t d = dt_seq_n1(&in[0]) + dt_seq_n1(&in[1]) + dt_seq_n1(&in[2]);
    d += dt_seq_given(c->L, in, 3) ? dt_seq_n1(&in[3]) : p->B * p->Hkv * p->dk * p->dv + 1;
    if (p->gating) d += dt_seq_n1(&in[4]);
    if (p->delta) d += dt_seq_n1(&in[5]);
    return d + p->B * p->T * p->Hq * p->dv + 1 + p->dv + 1;
}

static ductile_status dt_linattn_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                         size_t *bytes)
{
    const dt_seq_linattn *c = params;
    dt_linattn_params p;
    *bytes = 0;
    if (dt_linattn_params_of(&c->a, c->L, in, &p) != DUCTILE_OK) return DUCTILE_OK; /* the run names it */
    return dt_seq_scratch_bytes("LinearAttention", dt_linattn_doubles(c, &p, in), bytes);
}

static ductile_status dt_linattn_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_seq_linattn *c = params;
    const ductile_layer *L = c->L;
    dt_linattn_params p;
    DT_TRY(dt_linattn_params_of(&c->a, L, in, &p));
    const int64_t B = p.B, T = p.T, Hq = p.Hq, Hkv = p.Hkv, dk = p.dk, dv = p.dv, grp = Hq / Hkv;
    double *cur;
    DT_TRY(dt_seq_scratch("LinearAttention", ex, dt_linattn_doubles(c, &p, in), &cur));
    double *q = dt_seq_take_load(&cur, &in[0]), *k = dt_seq_take_load(&cur, &in[1]);
    double *v = dt_seq_take_load(&cur, &in[2]), *state;
    if (dt_seq_given(L, in, 3)) {
        state = dt_seq_take_load(&cur, &in[3]);
    } else {
        state = dt_seq_take(&cur, B * Hkv * dk * dv + 1);
        memset(state, 0, (size_t)(B * Hkv * dk * dv + 1) * sizeof *state);
    }
    double *decay = p.gating ? dt_seq_take_load(&cur, &in[4]) : NULL;
    double *beta = p.delta ? dt_seq_take_load(&cur, &in[5]) : NULL;
    double *y = dt_seq_take(&cur, B * T * Hq * dv + 1), *vt = dt_seq_take(&cur, dv + 1);
    memset(y, 0, (size_t)(B * T * Hq * dv + 1) * sizeof *y);
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t h = 0; h < Hkv; h++) {
                double *S = state + (b * Hkv + h) * dk * dv;
                const double *kt = k + ((b * T + t) * Hkv + h) * dk, *vv = v + ((b * T + t) * Hkv + h) * dv;
                if (p.gating) {
                    const double *g = decay + (b * T + t) * p.decay_last;
                    for (int64_t d = 0; d < dk; d++) {
                        double e = exp(p.decay_last == Hkv ? g[h] : g[h * dk + d]);
                        for (int64_t m = 0; m < dv; m++) S[d * dv + m] *= e;
                    }
                }
                for (int64_t m = 0; m < dv; m++) vt[m] = vv[m];
                if (p.delta) {
                    double bt = beta[(b * T + t) * p.beta_last + (p.beta_last == 1 ? 0 : h)];
                    for (int64_t m = 0; m < dv; m++) {
                        double r = 0;
                        for (int64_t d = 0; d < dk; d++) r += S[d * dv + m] * kt[d];
                        vt[m] = bt * (vv[m] - r);
                    }
                }
                for (int64_t d = 0; d < dk; d++)
                    for (int64_t m = 0; m < dv; m++) S[d * dv + m] += kt[d] * vt[m];
                for (int64_t g = 0; g < grp; g++) {
                    int64_t hq = h * grp + g;
                    const double *qt = q + ((b * T + t) * Hq + hq) * dk;
                    double *yt = y + ((b * T + t) * Hq + hq) * dv;
                    for (int64_t m = 0; m < dv; m++) {
                        double acc = 0;
                        for (int64_t d = 0; d < dk; d++) acc += qt[d] * S[d * dv + m];
                        yt[m] = p.scale * acc;
                    }
                }
            }
    dt_seq_store(&out[0], y, B * T * Hq * dv);
    if (L->n_out > 1) dt_seq_store(&out[1], state, B * Hkv * dk * dv);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_seq_linattn_kernel = {
    .prepare = dt_linattn_prepare, .scratch = dt_linattn_scratch, .run = dt_linattn_run,
};

/* ---- CausalConvWithState ---- */

typedef struct dt_seq_cconv {
    const ductile_layer *L;     /* which optional inputs and outputs exist */
    bool silu;
} dt_seq_cconv;

static ductile_status dt_cconv_prepare(const ductile_layer *L, void **out)
{
    dt_seq_cconv p = {L, strcmp(dt_attr_string(L, "activation", "none"), "none") != 0};
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

/* Doubles of the run: x, w, bias, past (each at least one), the padded rows, y and the state. */
static int64_t dt_cconv_doubles(const dt_seq_cconv *c, const dt_view *in)
{
    if (in[0].rank != 3 || in[1].rank != 3) return 0;
    const int64_t B = in[0].dims[0], C = in[0].dims[1], N = in[0].dims[2], K = in[1].dims[2];
    int64_t d = dt_seq_n1(&in[0]) + dt_seq_n1(&in[1]);
    d += dt_seq_given(c->L, in, 2) ? dt_seq_n1(&in[2]) : 1;
    d += dt_seq_given(c->L, in, 3) ? dt_seq_n1(&in[3]) : 1;
    return d + B * C * (N + K - 1) + 1 + B * C * N + 1 + B * C * (K - 1) + 1;
}

static ductile_status dt_cconv_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                       size_t *bytes)
{
    return dt_seq_scratch_bytes("CausalConvWithState", dt_cconv_doubles(params, in), bytes);
}

static ductile_status dt_cconv_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_seq_cconv *c = params;
    const ductile_layer *L = c->L;
    const int64_t B = in[0].dims[0], C = in[0].dims[1], N = in[0].dims[2], K = in[1].dims[2];
    bool silu = c->silu;
    bool has_bias = dt_seq_given(L, in, 2), has_past = dt_seq_given(L, in, 3);
    double *cur;
    DT_TRY(dt_seq_scratch("CausalConvWithState", ex, dt_cconv_doubles(c, in), &cur));
    double *x = dt_seq_take_load(&cur, &in[0]), *w = dt_seq_take_load(&cur, &in[1]);
    double *bias = has_bias ? dt_seq_take_load(&cur, &in[2]) : dt_seq_take(&cur, 1);
    double *past = has_past ? dt_seq_take_load(&cur, &in[3]) : dt_seq_take(&cur, 1);
    double *pad = dt_seq_take(&cur, B * C * (N + K - 1) + 1), *y = dt_seq_take(&cur, B * C * N + 1);
    double *st_out = dt_seq_take(&cur, B * C * (K - 1) + 1);
    for (int64_t bc = 0; bc < B * C; bc++) {
        double *row = pad + bc * (N + K - 1);
        for (int64_t j = 0; j < K - 1; j++) row[j] = has_past ? past[bc * (K - 1) + j] : 0;
        memcpy(row + K - 1, x + bc * N, (size_t)N * sizeof(double));
        const double *wc = w + (bc % C) * K;
        for (int64_t t = 0; t < N; t++) {
            double acc = has_bias ? bias[bc % C] : 0;
            for (int64_t j = 0; j < K; j++) acc += wc[j] * row[t + j];
            y[bc * N + t] = silu ? acc / (1 + exp(-acc)) : acc;
        }
        memcpy(st_out + bc * (K - 1), row + N, (size_t)(K - 1) * sizeof(double));
    }
    dt_seq_store(&out[0], y, B * C * N);
    if (L->n_out > 1) dt_seq_store(&out[1], st_out, B * C * (K - 1));
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_seq_cconv_kernel = {
    .prepare = dt_cconv_prepare, .scratch = dt_cconv_scratch, .run = dt_cconv_run,
};
