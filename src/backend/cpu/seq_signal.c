/* DFT, STFT, windows and MelWeightMatrix on the CPU. The transforms are direct O(N^2) sums in
 * double with exact twiddle indices (k * n mod N), which keeps them accurate for any length;
 * the ONNX ops are used on short frames where this is not the bottleneck. */
#include "backend/cpu/seq_kernels.h"
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

/* The twiddles cos and sin(2 pi i / N), i < N, into cs and sn. */
static void twiddles(int64_t N, double *cs, double *sn)
{
    for (int64_t i = 0; i < N; i++) {
        cs[i] = cos(2 * M_PI * (double)i / (double)N);
        sn[i] = sin(2 * M_PI * (double)i / (double)N);
    }
}

/* ---- DFT ---- */

/* DFT compiled: its attributes, read once; L for its optional inputs (dft_length, axis). */
typedef struct dt_seq_dft {
    const ductile_layer *L;
    dt_dft_attrs a;
} dt_seq_dft;

static ductile_status dt_dft_prepare(const ductile_layer *L, void **out)
{
    dt_seq_dft p = {.L = L};
    DT_TRY(dt_dft_attrs_read(L, &p.a));
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

/* Doubles of the run: x, the line buffers, y, the twiddles. */
static int64_t dt_dft_doubles(const dt_dft_params *p, const dt_view *in, const dt_view *out)
{
    int64_t line = p->n_in > p->length ? p->n_in : p->length;
    return dt_seq_n1(&in[0]) + 4 * line + 4 + dt_seq_n1(&out[0]) + 2 * (p->length + 1);
}

static ductile_status dt_dft_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                     size_t *bytes)
{
    const dt_seq_dft *c = params;
    dt_dft_params p;
    *bytes = 0;
    if (dt_dft_params_of(&c->a, c->L, in, &p) != DUCTILE_OK) {
        /* dft_length or axis not known here: a bound from the dims (length <= 2 n_out). */
        int64_t m = 1;
        for (int i = 0; i < in[0].rank; i++) m = in[0].dims[i] > m ? in[0].dims[i] : m;
        for (int i = 0; i < out[0].rank; i++) m = out[0].dims[i] > m ? out[0].dims[i] : m;
        p.n_in = m, p.length = 2 * m;
    }
    return dt_seq_scratch_bytes("DFT", dt_dft_doubles(&p, in, out), bytes);
}

static ductile_status dt_dft_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_seq_dft *c = params;
    dt_dft_params p;
    DT_TRY(dt_dft_params_of(&c->a, c->L, in, &p));
    const dt_view *x = &in[0];
    int64_t outer = 1, inner = 1, N = p.length;
    for (int i = 0; i < p.axis; i++) outer *= x->dims[i];
    for (int i = p.axis + 1; i < x->rank - 1; i++) inner *= x->dims[i];
    int64_t line = p.n_in > N ? p.n_in : N;
    double *cur;
    DT_TRY(dt_seq_scratch("DFT", ex, dt_dft_doubles(&p, in, out), &cur));
    double *xv = dt_seq_take_load(&cur, x), *buf = dt_seq_take(&cur, 4 * line + 4);
    double *y = dt_seq_take(&cur, dt_seq_n1(&out[0]));
    double *cs = dt_seq_take(&cur, N + 1), *sn = dt_seq_take(&cur, N + 1);
    twiddles(N, cs, sn);
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
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_seq_dft_kernel = {.prepare = dt_dft_prepare, .scratch = dt_dft_scratch, .run = dt_dft_run};

/* ---- STFT ---- */

typedef struct dt_seq_stft {
    const ductile_layer *L;
    bool onesided;
} dt_seq_stft;

static ductile_status dt_stft_prepare(const ductile_layer *L, void **out)
{
    dt_seq_stft p = {.L = L, .onesided = true};
    DT_TRY(dt_stft_onesided_read(L, &p.onesided));
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

/* Doubles of the run: signal, window, line buffers, y, twiddles; the frame length is at most
 * the signal's (dims[1]; checked by the params), so the count needs no input data. */
static int64_t dt_stft_doubles(const dt_view *in, const dt_view *out, bool window)
{
    int64_t N = in[0].rank == 3 ? in[0].dims[1] : 0;
    return dt_seq_n1(&in[0]) + (window ? dt_seq_n1(&in[2]) : 0) + 4 * N + 4 + dt_seq_n1(&out[0]) + 2 * (N + 1);
}

static ductile_status dt_stft_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                      size_t *bytes)
{
    const dt_seq_stft *c = params;
    return dt_seq_scratch_bytes("STFT", dt_stft_doubles(in, out, dt_seq_given(c->L, in, 2)), bytes);
}

static ductile_status dt_stft_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_seq_stft *c = params;
    dt_stft_params p;
    DT_TRY(dt_stft_params_of(c->onesided, c->L, in, &p));
    int64_t N = p.length;
    double *cur;
    DT_TRY(dt_seq_scratch("STFT", ex, dt_stft_doubles(in, out, p.window), &cur));
    double *x = dt_seq_take_load(&cur, &in[0]), *w = p.window ? dt_seq_take_load(&cur, &in[2]) : NULL;
    double *buf = dt_seq_take(&cur, 4 * N + 4), *y = dt_seq_take(&cur, dt_seq_n1(&out[0]));
    double *cs = dt_seq_take(&cur, N + 1), *sn = dt_seq_take(&cur, N + 1);
    twiddles(N, cs, sn);
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
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_seq_stft_kernel = {.prepare = dt_stft_prepare, .scratch = dt_stft_scratch, .run = dt_stft_run};

/* ---- HannWindow, HammingWindow, BlackmanWindow ---- */

enum { DT_WIN_HANN, DT_WIN_HAMMING, DT_WIN_BLACKMAN };

typedef struct dt_seq_window {
    int kind;               /* DT_WIN_* */
    bool periodic;
} dt_seq_window;

static ductile_status dt_window_prepare(const ductile_layer *L, void **out)
{
    dt_seq_window p = {.periodic = dt_attr_int(L, "periodic", 1) != 0};
    p.kind = !strcmp(L->op_type, "HannWindow") ? DT_WIN_HANN : !strcmp(L->op_type, "HammingWindow") ? DT_WIN_HAMMING
                                                                                                       : DT_WIN_BLACKMAN;
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_window_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                        size_t *bytes)
{
    return dt_seq_scratch_bytes("window", dt_seq_n1(&out[0]), bytes);
}

static ductile_status dt_window_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_seq_window *p = params;
    int64_t n = out[0].dims[0];
    double N = (double)(p->periodic ? n : n - 1);
    double *y;
    DT_TRY(dt_seq_scratch("window", ex, dt_seq_n1(&out[0]), &y));
    for (int64_t i = 0; i < n; i++) {
        double t = 2 * M_PI * (double)i / N;
        switch (p->kind) {
        case DT_WIN_HANN: y[i] = 0.5 - 0.5 * cos(t); break;
        case DT_WIN_HAMMING: y[i] = 25.0 / 46.0 - (21.0 / 46.0) * cos(t); break;
        default: y[i] = 0.42 - 0.5 * cos(t) + 0.08 * cos(2 * t); break;
        }
    }
    dt_seq_store(&out[0], y, n);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_seq_window_kernel = {
    .prepare = dt_window_prepare, .scratch = dt_window_scratch, .run = dt_window_run,
};

/* ---- MelWeightMatrix (no attributes the run reads; L for the scalars' messages) ---- */

static ductile_status dt_mel_prepare(const ductile_layer *L, void **out)
{
    const ductile_layer *p = L;
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

/* Doubles of the run: the edges, the [rows, bins] matrix and the bins + 2 band edges. */
static int64_t dt_mel_doubles(const dt_view *in, const dt_view *out)
{
    int64_t bins = out[0].rank == 2 ? out[0].dims[1] : 0;
    return dt_seq_n1(&in[3]) + dt_seq_n1(&in[4]) + dt_seq_n1(&out[0]) + bins + 2;
}

static ductile_status dt_mel_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                     size_t *bytes)
{
    return dt_seq_scratch_bytes("MelWeightMatrix", dt_mel_doubles(in, out), bytes);
}

static ductile_status dt_mel_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const ductile_layer *L = *(const ductile_layer *const *)params;
    int64_t bins, len, rate;
    DT_TRY(dt_seq_scalar(L, in, 0, "num_mel_bins", &bins));
    DT_TRY(dt_seq_scalar(L, in, 1, "dft_length", &len));
    DT_TRY(dt_seq_scalar(L, in, 2, "sample_rate", &rate));
    if (rate <= 0) return dt_fail(DUCTILE_ERR_SHAPE, "sample_rate = %lld must be positive", (long long)rate);
    int64_t rows = len / 2 + 1;
    if (out[0].rank != 2 || out[0].dims[0] != rows || out[0].dims[1] != bins)
        return dt_fail(DUCTILE_ERR_SHAPE, "output 0 must be [%lld, %lld]", (long long)rows, (long long)bins);
    double *cur;
    DT_TRY(dt_seq_scratch("MelWeightMatrix", ex, dt_mel_doubles(in, out), &cur));
    double *lo = dt_seq_take_load(&cur, &in[3]), *hi = dt_seq_take_load(&cur, &in[4]);
    double *y = dt_seq_take(&cur, dt_seq_n1(&out[0]));
    int64_t *fb = (int64_t *)dt_seq_take(&cur, bins + 2);
    memset(y, 0, (size_t)(rows * bins) * sizeof *y);
    double lm = 2595 * log1p(lo[0] / 700) / log(10), hm = 2595 * log1p(hi[0] / 700) / log(10);
    double step = (hm - lm) / (double)(bins + 2);
    for (int64_t i = 0; i < bins + 2; i++) {
        double hz = 700 * expm1(((double)i * step + lm) / 2595 * log(10));
        fb[i] = (int64_t)floor((double)(len + 1) * hz / (double)rate);
        if (fb[i] < 0 || fb[i] >= rows)
            return dt_fail(DUCTILE_ERR_SHAPE, "mel band edge %lld falls outside the %lld spectrogram bins",
                           (long long)fb[i], (long long)rows);
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
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_seq_mel_kernel = {.prepare = dt_mel_prepare, .scratch = dt_mel_scratch, .run = dt_mel_run};
