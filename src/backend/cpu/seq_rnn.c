/* RNN, GRU, LSTM on the CPU: each direction and batch row runs its recurrence step by step
 * (ONNX's gate orders: GRU z, r, h; LSTM i, o, f, c; peepholes i, o, f). */
#include "backend/cpu/seq_kernels.h"
#include "core/alloc.h"
#include "ops/seq.h"
#include "core/checked.h"
#include "core/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double act(const dt_rnn_act *a, double x)
{
    double al = a->alpha, be = a->beta;
    switch (a->kind) {
    case DT_ACT_RELU: return x < 0 ? 0 : x;   /* a NaN stays NaN */
    case DT_ACT_TANH: return tanh(x);
    case DT_ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case DT_ACT_AFFINE: return al * x + be;
    case DT_ACT_LEAKYRELU: return x >= 0 ? x : al * x;
    case DT_ACT_THRESHOLDEDRELU: return x > al ? x : 0;
    case DT_ACT_SCALEDTANH: return al * tanh(be * x);
    case DT_ACT_HARDSIGMOID: { double y = al * x + be; return y < 0 ? 0 : y > 1 ? 1 : y; }
    case DT_ACT_ELU: return x >= 0 ? x : al * (exp(x) - 1);
    case DT_ACT_SOFTSIGN: return x / (1 + fabs(x));
    case DT_ACT_SOFTPLUS: return log1p(exp(x));
    default: return x;
    }
}

static double clipv(const dt_rnn_params *p, double x)
{
    if (p->clip > 0) {
        if (x > p->clip) return p->clip;
        if (x < -p->clip) return -p->clip;
    }
    return x;
}

/* An RNN, GRU or LSTM compiled: its attributes, and its constant weights (W, R, B, P)
 * converted to double once. Offsets are into data[], -1 where the input is not a constant
 * (the run converts it into scratch) or absent. */
enum { DT_RNN_W = 1, DT_RNN_R = 2, DT_RNN_B = 3, DT_RNN_P = 7 };
static const int dt_rnn_weights[] = {DT_RNN_W, DT_RNN_R, DT_RNN_B, DT_RNN_P};
enum { DT_RNN_NW = sizeof dt_rnn_weights / sizeof dt_rnn_weights[0] };

typedef struct dt_rnn_compiled {
    const ductile_layer *L;     /* which optional inputs exist (dt_seq_given), messages */
    dt_rnn_params attrs;
    int64_t off[DT_RNN_NW];
    double data[];
} dt_rnn_compiled;

static ductile_status dt_rnn_prepare(const ductile_layer *L, void **out)
{
    dt_rnn_params attrs;
    DT_TRY(dt_rnn_attrs_read(L, &attrs));
    int64_t off[DT_RNN_NW], total = 0;
    for (int k = 0; k < DT_RNN_NW; k++) {
        const ductile_tensor *t = dt_rnn_weights[k] < L->n_in ? L->in[dt_rnn_weights[k]] : NULL;
        bool conv = t && t->data && (t->dtype == DUCTILE_FLOAT32 || t->dtype == DUCTILE_FLOAT64) &&
                    (size_t)dt_tensor_count(t) * ductile_dtype_size((ductile_dtype)t->dtype) == t->nbytes;
        off[k] = conv ? total : -1;
        if (conv && !dt_add_i64(total, dt_tensor_count(t), &total))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input %d ('%s') is too large", dt_rnn_weights[k], t->name);
    }
    size_t bytes;
    if (!dt_mul_size((size_t)total, sizeof(double), &bytes) || !dt_add_size(bytes, sizeof(dt_rnn_compiled), &bytes))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "the weights of node '%s' are too large", L->name);
    dt_rnn_compiled *c = dt_malloc(bytes);
    if (!c) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory converting the weights of node '%s'", L->name);
    c->L = L;
    c->attrs = attrs;
    for (int k = 0; k < DT_RNN_NW; k++) {
        c->off[k] = off[k];
        if (off[k] < 0) continue;
        const ductile_tensor *t = L->in[dt_rnn_weights[k]];
        dt_view v = {.dtype = t->dtype, .rank = t->rank, .data = (void *)t->data};
        for (int i = 0; i < t->rank && i < DT_MAX_DIMS; i++) v.dims[i] = t->dims[i];
        dt_seq_load_into(&v, c->data + off[k]);
    }
    *out = c;
    return DUCTILE_OK;
}

/* Doubles of the run's arrays: x, then W, R, B, P where not converted at prepare, then
 * h0, c0, y, yh, yc and the gate rows gx. */
typedef struct dt_rnn_sizes {
    int64_t x, w[DT_RNN_NW], h0, c0, y, yh, yc, gx, total;
} dt_rnn_sizes;

static void dt_rnn_sizes_of(const dt_rnn_compiled *c, const dt_rnn_params *p, dt_rnn_sizes *z)
{
    const int64_t S = p->S, B = p->B, I = p->I, H = p->H, D = p->dirs, G = p->gates * H;
    int64_t full[DT_RNN_NW] = {D * G * I, D * G * H, D * 2 * G, D * 3 * H + 1};
    z->x = S * B * I + 1;
    z->total = z->x;
    for (int k = 0; k < DT_RNN_NW; k++) {
        z->w[k] = c->off[k] >= 0 ? 0 : full[k] + 1;
        z->total += z->w[k];
    }
    z->h0 = z->c0 = z->yh = z->yc = D * B * H + 1;
    z->y = S * D * B * H + 1;
    z->gx = 2 * G + 4 * H + 1;
    z->total += z->h0 + z->c0 + z->y + z->yh + z->yc + z->gx;
}

static ductile_status dt_rnn_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                     size_t *bytes)
{
    (void)out, (void)threads;
    const dt_rnn_compiled *c = params;
    dt_rnn_params p = c->attrs;
    dt_rnn_sizes z;
    *bytes = 0;
    if (dt_rnn_params_shapes(c->L, in, &p) != DUCTILE_OK) return DUCTILE_OK; /* the run names it */
    dt_rnn_sizes_of(c, &p, &z);
    if (!dt_mul_size((size_t)z.total, sizeof(double), bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "%s scratch of %lld doubles is too large", c->L->op_type, (long long)z.total);
    return DUCTILE_OK;
}

/* The next n doubles of the scratch. */
static double *dt_rnn_take(double **cur, int64_t n)
{
    double *p = *cur;
    *cur += n;
    return p;
}

static ductile_status dt_rnn_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_rnn_compiled *cp = params;
    const ductile_layer *L = cp->L;
    dt_rnn_params p = cp->attrs;
    DT_TRY(dt_rnn_params_shapes(L, in, &p));
    const int64_t S = p.S, B = p.B, I = p.I, H = p.H, D = p.dirs, G = p.gates * H;
    const bool lstm = p.kind == DT_RNN_LSTM;
    dt_rnn_sizes z;
    dt_rnn_sizes_of(cp, &p, &z);
    if (!ex->scratch || ex->scratch_bytes < (size_t)z.total * sizeof(double))
        return dt_fail(DUCTILE_ERR_INTERNAL, "%s: %zu bytes of scratch given, %zu needed", L->op_type,
                       ex->scratch_bytes, (size_t)z.total * sizeof(double));
    double *cur = ex->scratch;
    double *x = dt_rnn_take(&cur, z.x);
    dt_seq_load_into(&in[0], x);
    const double *wts[DT_RNN_NW];
    for (int k = 0; k < DT_RNN_NW; k++) {
        int i = dt_rnn_weights[k];
        if (cp->off[k] >= 0) {
            wts[k] = cp->data + cp->off[k];
            continue;
        }
        double *d = dt_rnn_take(&cur, z.w[k]);
        /* Absent B and P are zeros; P only counts for an LSTM. */
        memset(d, 0, (size_t)z.w[k] * sizeof *d);
        if (dt_seq_given(L, in, i) && (i != DT_RNN_P || lstm)) dt_seq_load_into(&in[i], d);
        wts[k] = d;
    }
    const double *w = wts[0], *r = wts[1], *bias = wts[2], *peep = wts[3];
    double *h0 = dt_rnn_take(&cur, z.h0), *c0 = dt_rnn_take(&cur, z.c0);
    memset(h0, 0, (size_t)z.h0 * sizeof *h0);
    memset(c0, 0, (size_t)z.c0 * sizeof *c0);
    if (dt_seq_given(L, in, 5)) dt_seq_load_into(&in[5], h0);
    if (lstm && dt_seq_given(L, in, 6)) dt_seq_load_into(&in[6], c0);
    double *y = dt_rnn_take(&cur, z.y), *yh = dt_rnn_take(&cur, z.yh), *yc = dt_rnn_take(&cur, z.yc);
    memset(y, 0, (size_t)z.y * sizeof *y);
    memset(yh, 0, (size_t)z.yh * sizeof *yh);
    memset(yc, 0, (size_t)z.yc * sizeof *yc);
    double *gx = dt_rnn_take(&cur, z.gx);
    ductile_status st = DUCTILE_OK;
    double *gh = gx + G, *h = gh + G, *c = h + H, *hn = c + H, *cn = hn + H;
    for (int64_t d = 0; d < D; d++) {
        const double *W = w + d * G * I, *R = r + d * G * H, *Wb = bias + d * 2 * G, *Rb = Wb + G;
        const double *P = peep + d * 3 * H;
        const dt_rnn_act *f = &p.act[d * p.n_act], *g = f + (p.n_act > 1), *hf = f + (p.n_act > 2 ? 2 : 0);
        bool rev = p.reverse || d == 1;
        for (int64_t b = 0; b < B; b++) {
            int64_t len = S;
            if (dt_seq_given(L, in, 4)) {
                len = dt_view_int(&in[4], b);
                if (len < 0 || len > S) {
                    st = dt_fail(DUCTILE_ERR_SHAPE, "sequence_lens[%lld] = %lld is outside 0..%lld",
                                 (long long)b, (long long)len, (long long)S);
                    goto done;
                }
            }
            int64_t si = p.layout ? (b * D + d) * H : (d * B + b) * H;
            memcpy(h, h0 + si, (size_t)H * sizeof *h);
            memcpy(c, c0 + si, (size_t)H * sizeof *c);
            for (int64_t s = 0; s < len; s++) {
                int64_t t = rev ? len - 1 - s : s;
                const double *xt = x + (p.layout ? b * S + t : t * B + b) * I;
                for (int64_t j = 0; j < G; j++) {
                    double a = Wb[j], e = Rb[j];
                    for (int64_t k = 0; k < I; k++) a += W[j * I + k] * xt[k];
                    for (int64_t k = 0; k < H; k++) e += R[j * H + k] * h[k];
                    gx[j] = a, gh[j] = e;
                }
                if (p.kind == DT_RNN_PLAIN) {
                    for (int64_t j = 0; j < H; j++) hn[j] = act(f, clipv(&p, gx[j] + gh[j]));
                } else if (p.kind == DT_RNN_GRU) {
                    for (int64_t j = 0; j < H; j++) {
                        double z = act(f, clipv(&p, gx[j] + gh[j]));
                        double rr = act(f, clipv(&p, gx[H + j] + gh[H + j]));
                        double hh;
                        if (p.linear_before_reset) {
                            hh = gx[2 * H + j] + rr * gh[2 * H + j];
                        } else {
                            /* (r * h) R_h^T + Rb_h, recomputed with the reset applied. */
                            hh = gx[2 * H + j] + Rb[2 * H + j];
                            for (int64_t k = 0; k < H; k++) {
                                double rk = act(f, clipv(&p, gx[H + k] + gh[H + k]));
                                hh += R[(2 * H + j) * H + k] * rk * h[k];
                            }
                        }
                        hh = act(g, clipv(&p, hh));
                        hn[j] = (1 - z) * hh + z * h[j];
                    }
                } else {
                    for (int64_t j = 0; j < H; j++) {
                        double gi = clipv(&p, gx[j] + gh[j] + P[j] * c[j]);
                        double gf = clipv(&p, gx[2 * H + j] + gh[2 * H + j] + P[2 * H + j] * c[j]);
                        double gc = clipv(&p, gx[3 * H + j] + gh[3 * H + j]);
                        double ig = act(f, gi), fg = act(f, gf), cc = act(g, gc);
                        cn[j] = fg * c[j] + ig * cc;
                        double og = act(f, clipv(&p, gx[H + j] + gh[H + j] + P[H + j] * cn[j]));
                        hn[j] = og * act(hf, cn[j]);
                    }
                    memcpy(c, cn, (size_t)H * sizeof *c);
                }
                memcpy(h, hn, (size_t)H * sizeof *h);
                double *yt = y + (p.layout ? ((b * S + t) * D + d) : ((t * D + d) * B + b)) * H;
                memcpy(yt, h, (size_t)H * sizeof *h);
            }
            memcpy(yh + si, h, (size_t)H * sizeof *h);
            memcpy(yc + si, c, (size_t)H * sizeof *c);
        }
    }
    if (L->n_out > 0) dt_seq_store(&out[0], y, S * D * B * H);
    if (L->n_out > 1) dt_seq_store(&out[1], yh, D * B * H);
    if (L->n_out > 2) dt_seq_store(&out[2], yc, D * B * H);
done:
    return st;
}

const dt_kernel dt_cpu_seq_rnn_kernel = {.prepare = dt_rnn_prepare, .scratch = dt_rnn_scratch, .run = dt_rnn_run};
