/* OneHot, Det, TensorScatter, SwiGLU, RotaryEmbedding, LinearAttention, CausalConvWithState
 * on the CPU. */
#include "backend/cpu/seq_kernels.h"
#include "core/alloc.h"
#include "ops/seq.h"
#include "core/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

ductile_status dt_cpu_seq_onehot(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    int64_t depth;
    DT_TRY(dt_seq_scalar(L, in, 1, "depth", &depth));
    int axis = 0;
    DT_TRY(dt_norm_axis(dt_attr_int(L, "axis", -1), out[0].rank, &axis));
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= out[0].dims[i];
    for (int i = axis + 1; i < out[0].rank; i++) inner *= out[0].dims[i];
    double *idx = dt_seq_load(&in[0]);
    if (!idx) return dt_seq_oom("OneHot");
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
    dt_free(idx);
    return DUCTILE_OK;
}

ductile_status dt_cpu_seq_det(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)L, (void)ex;
    int64_t M = in[0].dims[in[0].rank - 1], n = dt_view_count(&out[0]);
    double *x = dt_seq_load(&in[0]), *y = dt_malloc((size_t)(n + 1) * sizeof *y);
    if (!x || !y) {
        dt_free(x), dt_free(y);
        return dt_seq_oom("Det");
    }
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
    dt_free(x), dt_free(y);
    return DUCTILE_OK;
}

ductile_status dt_cpu_seq_tscatter(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    const dt_view *c = &in[0], *u = &in[1];
    int axis;
    DT_TRY(dt_norm_axis(dt_attr_int(L, "axis", -2), c->rank, &axis));
    bool circular = strcmp(dt_attr_string(L, "mode", "linear"), "circular") == 0;
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

ductile_status dt_cpu_seq_swiglu(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    double alpha = dt_attr_float(L, "alpha", 1.0f);
    int64_t n = dt_view_count(&in[0]);
    double *a = dt_seq_load(&in[0]), *b = dt_seq_load(&in[1]);
    if (!a || !b) {
        dt_free(a), dt_free(b);
        return dt_seq_oom("SwiGLU");
    }
    for (int64_t i = 0; i < n; i++) a[i] = a[i] / (1 + exp(-alpha * a[i])) * b[i];
    dt_seq_store(&out[0], a, n);
    dt_free(a), dt_free(b);
    return DUCTILE_OK;
}

ductile_status dt_cpu_seq_rope(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    dt_rope_params p;
    DT_TRY(dt_rope_params_get(L, in, &p));
    int64_t n = dt_view_count(&in[0]), half = p.rot / 2;
    double *x = dt_seq_load(&in[0]), *cs = dt_seq_load(&in[1]), *sn = dt_seq_load(&in[2]);
    ductile_status st = DUCTILE_OK;
    if (!x || !cs || !sn) {
        st = dt_seq_oom("RotaryEmbedding");
        goto done;
    }
    for (int64_t b = 0; b < p.B; b++)
        for (int64_t s = 0; s < p.S; s++) {
            int64_t row = b * p.S + s;
            if (p.pos_ids) {
                row = dt_view_int(&in[3], b * p.S + s);
                if (row < 0 || row >= p.max_pos) {
                    st = dt_fail(DUCTILE_ERR_SHAPE, "position_ids[%lld, %lld] = %lld is outside 0..%lld", (long long)b,
                                 (long long)s, (long long)row, (long long)p.max_pos - 1);
                    goto done;
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
done:
    dt_free(x), dt_free(cs), dt_free(sn);
    return st;
}

ductile_status dt_cpu_seq_linattn(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    dt_linattn_params p;
    DT_TRY(dt_linattn_params_get(L, in, &p));
    const int64_t B = p.B, T = p.T, Hq = p.Hq, Hkv = p.Hkv, dk = p.dk, dv = p.dv, grp = Hq / Hkv;
    double *q = dt_seq_load(&in[0]), *k = dt_seq_load(&in[1]), *v = dt_seq_load(&in[2]);
    double *state = dt_seq_given(L, in, 3) ? dt_seq_load(&in[3])
                                           : dt_calloc((size_t)(B * Hkv * dk * dv + 1), sizeof(double));
    double *decay = p.gating ? dt_seq_load(&in[4]) : NULL, *beta = p.delta ? dt_seq_load(&in[5]) : NULL;
    double *y = dt_calloc((size_t)(B * T * Hq * dv + 1), sizeof(double)), *vt = dt_malloc((size_t)(dv + 1) * sizeof(double));
    ductile_status st = DUCTILE_OK;
    if (!q || !k || !v || !state || (p.gating && !decay) || (p.delta && !beta) || !y || !vt) {
        st = dt_seq_oom("LinearAttention");
        goto done;
    }
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
done:
    dt_free(q), dt_free(k), dt_free(v), dt_free(state), dt_free(decay), dt_free(beta), dt_free(y), dt_free(vt);
    return st;
}

ductile_status dt_cpu_seq_cconv(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    const int64_t B = in[0].dims[0], C = in[0].dims[1], N = in[0].dims[2], K = in[1].dims[2];
    bool silu = strcmp(dt_attr_string(L, "activation", "none"), "none") != 0;
    double *x = dt_seq_load(&in[0]), *w = dt_seq_load(&in[1]);
    bool has_bias = dt_seq_given(L, in, 2), has_past = dt_seq_given(L, in, 3);
    double *bias = has_bias ? dt_seq_load(&in[2]) : dt_calloc(1, sizeof(double));
    double *past = has_past ? dt_seq_load(&in[3]) : dt_calloc(1, sizeof(double));
    double *pad = dt_malloc((size_t)(B * C * (N + K - 1) + 1) * sizeof(double));
    double *y = dt_malloc((size_t)(B * C * N + 1) * sizeof(double));
    double *st_out = dt_malloc((size_t)(B * C * (K - 1) + 1) * sizeof(double));
    ductile_status st = DUCTILE_OK;
    if (!x || !w || !bias || !past || !pad || !y || !st_out) {
        st = dt_seq_oom("CausalConvWithState");
        goto done;
    }
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
done:
    dt_free(x), dt_free(w), dt_free(bias), dt_free(past), dt_free(pad), dt_free(y), dt_free(st_out);
    return st;
}
