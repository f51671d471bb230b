/* RNN, GRU, LSTM on the CPU: each direction and batch row runs its recurrence step by step
 * (ONNX's gate orders: GRU z, r, h; LSTM i, o, f, c; peepholes i, o, f). */
#include "backend/cpu/seq_kernels.h"
#include "core/alloc.h"
#include "ops/seq.h"
#include "core/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double act(const dt_rnn_act *a, double x)
{
    double al = a->alpha, be = a->beta;
    switch (a->kind) {
    case DT_ACT_RELU: return x > 0 ? x : 0;
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

ductile_status dt_cpu_seq_rnn(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    dt_rnn_params p;
    DT_TRY(dt_rnn_params_get(L, in, &p));
    const int64_t S = p.S, B = p.B, I = p.I, H = p.H, D = p.dirs, G = p.gates * H;
    const bool lstm = p.kind == DT_RNN_LSTM;
    double *x = dt_seq_load(&in[0]), *w = dt_seq_load(&in[1]), *r = dt_seq_load(&in[2]);
    double *bias = dt_seq_given(L, in, 3) ? dt_seq_load(&in[3]) : dt_calloc((size_t)(D * 2 * G), sizeof(double));
    double *h0 = dt_seq_given(L, in, 5) ? dt_seq_load(&in[5]) : dt_calloc((size_t)(D * B * H + 1), sizeof(double));
    double *c0 = lstm && dt_seq_given(L, in, 6) ? dt_seq_load(&in[6]) : dt_calloc((size_t)(D * B * H + 1), sizeof(double));
    double *peep = lstm && dt_seq_given(L, in, 7) ? dt_seq_load(&in[7]) : dt_calloc((size_t)(D * 3 * H + 1), sizeof(double));
    double *y = dt_calloc((size_t)(S * D * B * H + 1), sizeof(double));
    double *yh = dt_calloc((size_t)(D * B * H + 1), sizeof(double));
    double *yc = dt_calloc((size_t)(D * B * H + 1), sizeof(double));
    double *gx = dt_malloc((size_t)(2 * G + 4 * H + 1) * sizeof(double));
    ductile_status st = DUCTILE_OK;
    if (!x || !w || !r || !bias || !h0 || !c0 || !peep || !y || !yh || !yc || !gx) {
        st = dt_seq_oom(L->op_type);
        goto done;
    }
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
    dt_free(x), dt_free(w), dt_free(r), dt_free(bias), dt_free(h0), dt_free(c0), dt_free(peep);
    dt_free(y), dt_free(yh), dt_free(yc), dt_free(gx);
    return st;
}
