/* DFT, STFT, windows and MelWeightMatrix on the CPU. The transforms are direct O(N^2) sums in
 * double with exact twiddle indices (k * n mod N), which keeps them accurate for any length;
 * the ONNX ops are used on short frames where this is not the bottleneck. */
#include "backend/cpu/seq_kernels.h"
#include "core/alloc.h"
#include "ops/seq.h"
#include "core/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* out[k] = sum_n x[n] e^{sign 2 pi i k n / N}, n < nx (x zero past nx), for k < nk. */
static void dft_line(const double *xr, const double *xi, int64_t nx, int64_t N, int64_t nk,
                     double sign, const double *cs, const double *sn, double *yr, double *yi)
{
    for (int64_t k = 0; k < nk; k++) {
        double ar = 0, ai = 0;
        int64_t idx = 0;
        for (int64_t n = 0; n < nx && n < N; n++) {
            double c = cs[idx], s = sign * sn[idx];
            ar += xr[n] * c - xi[n] * s;
            ai += xr[n] * s + xi[n] * c;
            idx += k;
            if (idx >= N) idx %= N;
        }
        yr[k] = ar, yi[k] = ai;
    }
}

static bool twiddles(int64_t N, double **cs, double **sn)
{
    *cs = dt_malloc((size_t)N * sizeof(double));
    *sn = dt_malloc((size_t)N * sizeof(double));
    if (!*cs || !*sn) return false;
    for (int64_t i = 0; i < N; i++) {
        (*cs)[i] = cos(2 * M_PI * (double)i / (double)N);
        (*sn)[i] = sin(2 * M_PI * (double)i / (double)N);
    }
    return true;
}

ductile_status dt_cpu_seq_dft(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    dt_dft_params p;
    DT_TRY(dt_dft_params_get(L, in, &p));
    const dt_view *x = &in[0];
    int64_t outer = 1, inner = 1, N = p.length;
    for (int i = 0; i < p.axis; i++) outer *= x->dims[i];
    for (int i = p.axis + 1; i < x->rank - 1; i++) inner *= x->dims[i];
    int64_t line = p.n_in > N ? p.n_in : N;
    double *xv = dt_seq_load(x), *cs = NULL, *sn = NULL;
    double *buf = dt_malloc((size_t)(4 * line + 4) * sizeof(double));
    double *y = dt_malloc((size_t)(outer * p.n_out * inner * p.out_c + 1) * sizeof(double));
    ductile_status st = DUCTILE_OK;
    if (!xv || !buf || !y || !twiddles(N, &cs, &sn)) {
        st = dt_seq_oom("DFT");
        goto done;
    }
    double *xr = buf, *xi = buf + line, *yr = xi + line, *yi = yr + line;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t q = 0; q < inner; q++) {
            for (int64_t n = 0; n < p.n_in; n++) {
                const double *e = xv + ((o * p.n_in + n) * inner + q) * p.in_c;
                xr[n] = e[0], xi[n] = p.in_c == 2 ? e[1] : 0;
            }
            if (!p.inverse) {
                dft_line(xr, xi, p.n_in, N, p.n_out, -1, cs, sn, yr, yi);
            } else if (!p.onesided) {
                dft_line(xr, xi, p.n_in, N, N, 1, cs, sn, yr, yi);
                for (int64_t k = 0; k < N; k++) yr[k] /= (double)N, yi[k] /= (double)N;
            } else {
                /* irfft: the one-sided spectrum X[0..N/2] stands for the Hermitian whole;
                 * the imaginary parts of X[0] and (N even) X[N/2] are dropped. */
                int64_t half = N / 2 + 1;
                for (int64_t n = 0; n < N; n++) {
                    double acc = 0;
                    for (int64_t k = 0; k < half && k < p.n_in; k++) {
                        int64_t idx = (k * n) % N;
                        double term = xr[k] * cs[idx] - xi[k] * sn[idx];
                        if (k == 0 || (N % 2 == 0 && k == N / 2)) acc += k == 0 ? xr[0] : xr[k] * cs[idx];
                        else acc += 2 * term;
                    }
                    yr[n] = acc / (double)N;
                }
            }
            for (int64_t k = 0; k < p.n_out; k++) {
                double *e = y + ((o * p.n_out + k) * inner + q) * p.out_c;
                e[0] = yr[k];
                if (p.out_c == 2) e[1] = yi[k];
            }
        }
    dt_seq_store(&out[0], y, outer * p.n_out * inner * p.out_c);
done:
    dt_free(xv), dt_free(buf), dt_free(y), dt_free(cs), dt_free(sn);
    return st;
}

ductile_status dt_cpu_seq_stft(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    dt_stft_params p;
    DT_TRY(dt_stft_params_get(L, in, &p));
    int64_t N = p.length;
    double *x = dt_seq_load(&in[0]), *w = p.window ? dt_seq_load(&in[2]) : NULL, *cs = NULL, *sn = NULL;
    double *buf = dt_malloc((size_t)(4 * N) * sizeof(double));
    double *y = dt_malloc((size_t)(p.batch * p.frames * p.bins * 2) * sizeof(double) + 8);
    ductile_status st = DUCTILE_OK;
    if (!x || (p.window && !w) || !buf || !y || !twiddles(N, &cs, &sn)) {
        st = dt_seq_oom("STFT");
        goto done;
    }
    double *xr = buf, *xi = buf + N, *yr = xi + N, *yi = yr + N;
    for (int64_t b = 0; b < p.batch; b++)
        for (int64_t f = 0; f < p.frames; f++) {
            for (int64_t n = 0; n < N; n++) {
                const double *e = x + (b * p.signal + f * p.step + n) * p.in_c;
                double wn = w ? w[n] : 1.0;
                xr[n] = e[0] * wn, xi[n] = p.in_c == 2 ? e[1] * wn : 0;
            }
            dft_line(xr, xi, N, N, p.bins, -1, cs, sn, yr, yi);
            for (int64_t k = 0; k < p.bins; k++) {
                double *e = y + ((b * p.frames + f) * p.bins + k) * 2;
                e[0] = yr[k], e[1] = yi[k];
            }
        }
    dt_seq_store(&out[0], y, p.batch * p.frames * p.bins * 2);
done:
    dt_free(x), dt_free(w), dt_free(buf), dt_free(y), dt_free(cs), dt_free(sn);
    return st;
}

ductile_status dt_cpu_seq_window(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    int64_t n = out[0].dims[0];
    double N = (double)(dt_attr_int(L, "periodic", 1) ? n : n - 1);
    double *y = dt_malloc((size_t)(n + 1) * sizeof(double));
    if (!y) return dt_seq_oom(L->op_type);
    (void)in;
    for (int64_t i = 0; i < n; i++) {
        double t = 2 * M_PI * (double)i / N;
        if (L->op_type[1] == 'a' && L->op_type[2] == 'n') y[i] = 0.5 - 0.5 * cos(t);        /* Hann */
        else if (L->op_type[1] == 'a') y[i] = 25.0 / 46.0 - (21.0 / 46.0) * cos(t);     /* Hamming */
        else y[i] = 0.42 - 0.5 * cos(t) + 0.08 * cos(2 * t);                            /* Blackman */
    }
    dt_seq_store(&out[0], y, n);
    dt_free(y);
    return DUCTILE_OK;
}

ductile_status dt_cpu_seq_mel(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    int64_t bins, len, rate;
    DT_TRY(dt_seq_scalar(L, in, 0, "num_mel_bins", &bins));
    DT_TRY(dt_seq_scalar(L, in, 1, "dft_length", &len));
    DT_TRY(dt_seq_scalar(L, in, 2, "sample_rate", &rate));
    if (rate <= 0) return dt_fail(DUCTILE_ERR_SHAPE, "sample_rate = %lld must be positive", (long long)rate);
    double *lo = dt_seq_load(&in[3]), *hi = dt_seq_load(&in[4]);
    int64_t rows = len / 2 + 1;
    double *y = dt_calloc((size_t)(rows * bins), sizeof(double));
    int64_t *fb = dt_malloc((size_t)(bins + 2) * sizeof(int64_t));
    ductile_status st = DUCTILE_OK;
    if (!lo || !hi || !y || !fb) {
        st = dt_seq_oom("MelWeightMatrix");
        goto done;
    }
    double lm = 2595 * log1p(lo[0] / 700) / log(10), hm = 2595 * log1p(hi[0] / 700) / log(10);
    double step = (hm - lm) / (double)(bins + 2);
    for (int64_t i = 0; i < bins + 2; i++) {
        double hz = 700 * expm1(((double)i * step + lm) / 2595 * log(10));
        fb[i] = (int64_t)floor((double)(len + 1) * hz / (double)rate);
        if (fb[i] < 0 || fb[i] >= rows) {
            st = dt_fail(DUCTILE_ERR_SHAPE, "mel band edge %lld falls outside the %lld spectrogram bins",
                         (long long)fb[i], (long long)rows);
            goto done;
        }
    }
    for (int64_t i = 0; i < bins; i++) {
        int64_t l = fb[i], c = fb[i + 1], h = fb[i + 2];
        if (c == l) y[c * bins + i] = 1;
        else
            for (int64_t j = l; j <= c; j++) y[j * bins + i] = (double)(j - l) / (double)(c - l);
        if (h > c)
            for (int64_t j = c; j < h; j++) y[j * bins + i] = (double)(h - j) / (double)(h - c);
    }
    dt_seq_store(&out[0], y, rows * bins);
done:
    dt_free(lo), dt_free(hi), dt_free(y), dt_free(fb);
    return st;
}
