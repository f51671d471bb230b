/* Convolution over a zero-padded copy of the image, computed over the padded width.
 *
 * Stride 1: with the image padded to Hp x Wp and outputs taken at every padded column, row
 * (c, ky, kx) of im2col is one contiguous run of the padded image starting at
 * c*Hp*Wp + ky*dh*Wp + kx*dw. Packing B is then a straight copy of 48-float runs, with none
 * of the per-segment clipping of the general im2col, which costs more than the GEMM itself
 * when M (output channels) is small. The price: Wp - OW garbage columns per output row
 * (computed, then dropped when the rows are copied out) and one copy of the image.
 *
 * Stride s > 1: the padded image is split into s x s phases (phase (py, px) holds padded
 * pixels (r*s + py, q*s + px), Hq x Wq of them, Hq = ceil(Hp / s), Wq = ceil(Wp / s)). Tap
 * (ky, kx) of output (oy, ox) reads padded pixel (oy*s + ky*dh, ox*s + kx*dw), which is pixel
 * (oy + ky*dh / s, ox + kx*dw / s) of phase (ky*dh % s, kx*dw % s): over the phase's width
 * the im2col row is again one contiguous run, now Wq - OW garbage columns a row (1 of 29 for
 * a 3x3 stride-2 conv at 56x56). Only the phases some tap reads are stored (a 1x1 stride-2
 * conv: one, the subsampled image). Stride 1 is the case s = 1 of the same code (one phase).
 *
 * Row k of B starts at off[k] in the phases (one table, dt_padded_offsets). With float32
 * weights packed at build time and AVX-512 the product reads B in place through that table
 * (conv_indirect.c); else the GEMM packs B from it. The im2col GEMM's gather of stride 2 (a
 * masked permute per 16 values and a scatter per output row) and then any packing of B cost
 * resnet50's stride-2 3x3s 0.3-0.4 ms each of ~1.9; here the image is deinterleaved once. */
#include "backend/cpu/conv.h"
#include "core/alloc.h"
#include "backend/cpu/gemm.h"
#include "core/checked.h"
#include "core/status.h"
#include "backend/cpu/simd_load.h"

#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Output rows per GEMM: enough columns for both threads to get whole cache blocks, few
 * enough that the staging buffer stays a couple of MB. */
enum { DT_PADDED_COLS = 6 * DT_GEMM_NC };

/* True when some tap of an axis (stride s, k taps, dilation d) reads its phase p. */
static bool dt_padded_used(int64_t p, int64_t k, int64_t s, int64_t d)
{
    for (int64_t t = 0; t < k && t < s; t++)
        if (t * d % s == p) return true;
    return false;
}

/* The rank of phase p among the used phases of an axis: how many are below it (all of them:
 * rank(s)). */
static int64_t dt_padded_rank(int64_t p, int64_t k, int64_t s, int64_t d)
{
    int64_t r = 0;
    for (int64_t q = 0; q < p; q++) r += dt_padded_used(q, k, s, d);
    return r;
}

/* The phase grid of g: nph stored phases a channel, each of hq x wq padded pixels. */
static void dt_padded_phases(const dt_conv_geom *g, int64_t *hq, int64_t *wq, int64_t *nph)
{
    int64_t hp = g->in[0] + g->pb[0] + g->pe[0], wp = g->in[1] + g->pb[1] + g->pe[1];
    *hq = (hp + g->s[0] - 1) / g->s[0];
    *wq = (wp + g->s[1] - 1) / g->s[1];
    *nph = dt_padded_rank(g->s[0], g->k[0], g->s[0], g->d[0]) * dt_padded_rank(g->s[1], g->k[1], g->s[1], g->d[1]);
}

bool dt_cpu_conv_padded_strides_fit(const dt_conv_geom *g)
{
    return g->s[0] >= 1 && g->s[0] <= DT_CONV_PADDED_MAX_STRIDE && g->s[1] >= 1 && g->s[1] <= DT_CONV_PADDED_MAX_STRIDE;
}

bool dt_cpu_conv_padded_applies(const dt_conv_geom *g)
{
    int64_t wp = g->in[1] + g->pb[1] + g->pe[1];
    int64_t K = g->c / g->group * g->k[0] * g->k[1], M = g->m / g->group;
    /* The rows copied out cost ~M per pixel, the im2col clipping saved ~K per pixel. */
    return g->s[0] == 1 && g->s[1] == 1 && g->out[1] >= 32 && wp * 8 <= g->out[1] * 9 &&
           2 * K >= M;
}

/* Columns the product's tiles compute for n columns: 48-column panels, the last rounded up
 * to 16, or (4 columns or fewer) the narrow kernel's few. */
static int64_t dt_padded_lanes(int64_t n)
{
    int64_t r = n % DT_GEMM_NR;
    return n - r + (r <= DT_GEMM_NARROW ? r : (r + 15) & ~(int64_t)15);
}

/* True when the product runs over the padded width (its tiles compute at most 6/5 of the
 * columns im2col's would, per band of rows; 9/8 for strides above 1), else over the
 * output's pixels, B gathered. Resnet50's 3x3 stride 2 28x28 -> 14x14 (210 columns in 224
 * lanes over the padded width, 196 over the pixels: 8/7), 1 thread (layer minima over
 * alternating processes): batch 8 9.41-9.46 -> 9.24-9.35 ms, batch 1 1.247 -> 1.155-1.158. */
static bool dt_padded_wide(const dt_conv_geom *g)
{
    int64_t hq, wq, nph;
    dt_padded_phases(g, &hq, &wq, &nph);
    int64_t rows = (DT_PADDED_COLS + wq - 1) / wq;
    if (rows > g->out[0]) rows = g->out[0];
    /* the gather's indices are int32 offsets within a phase */
    if (hq > INT32_MAX / wq) return true;
    int64_t num = g->s[0] > 1 || g->s[1] > 1 ? 8 : 5;
    return num * dt_padded_lanes(rows * wq) <= (num + 1) * dt_padded_lanes(rows * g->out[1]);
}

bool dt_cpu_conv_padded_offered(const dt_conv_geom *g, bool winograd)
{
    if (winograd && g->out[0] * g->out[1] >= 64) return false;
    return !(g->k[0] == 1 && g->k[1] == 1) && !dt_cpu_conv_smallc_applies(g);
}

/* off[k] = where row k = (c, ky, kx) of B (column 0) starts in the phases, then
 * DT_CONV_INDIRECT_OFF_PAD copies of the last. Channel c's phase (py, px) is plane
 * (c * ny + rank(py)) * nx + rank(px), ny and nx the used phases of each axis. */
static void dt_padded_offsets(const dt_conv_geom *g, int64_t hq, int64_t wq, int64_t K, int64_t *off)
{
    int64_t sh = g->s[0], sw = g->s[1], ksz = g->k[0] * g->k[1];
    int64_t ny = dt_padded_rank(sh, g->k[0], sh, g->d[0]), nx = dt_padded_rank(sw, g->k[1], sw, g->d[1]);
    /* channel 0's taps, then each channel's a whole channel of phases further on */
    for (int64_t ky = 0, t = 0; ky < g->k[0] && t < K; ky++) {
        int64_t yy = ky * g->d[0], ry = dt_padded_rank(yy % sh, g->k[0], sh, g->d[0]);
        for (int64_t kx = 0; kx < g->k[1] && t < K; kx++, t++) {
            int64_t xx = kx * g->d[1], rx = dt_padded_rank(xx % sw, g->k[1], sw, g->d[1]);
            off[t] = (ry * nx + rx) * hq * wq + yy / sh * wq + xx / sw;
        }
    }
    for (int64_t k = ksz; k < K; k++) off[k] = off[k - ksz] + ny * nx * hq * wq;
    for (int i = 0; i < DT_CONV_INDIRECT_OFF_PAD; i++) off[K + i] = K ? off[K - 1] : 0;
}

typedef struct dt_padded {
    const float *xp;        /* the phases of this group, from the GEMM's column 0 */
    const int64_t *off;     /* dt_padded_offsets */
} dt_padded;

static void dt_padded_pack(const void *ctx, int64_t k0, int64_t kc, int64_t n0, int64_t nc,
                           float *dst)
{
    const dt_padded *p = ctx;
    for (int64_t kk = 0; kk < kc; kk++) dt_gemm_scatter_row(p->xp + p->off[k0 + kk] + n0, nc, kk, kc, dst);
}

/* B over the output's pixels (no garbage columns): row k, column n is the phases' float at
 * off[k] + idx[n], idx[n] = (n / OW) * Wq + n % OW. For planes whose padded width wastes too
 * many of the tiles' columns (7x7 outputs: 49 columns, 63 at the padded width): im2col's
 * gather clipped 7 runs of 7 a row, 1.5 ns a float, 17% of a 7x7 512-channel conv; here a
 * row is a few 16-lane index gathers. */
typedef struct dt_padded_gather {
    const float *xp;
    const int64_t *off;
    const int32_t *idx;     /* one per output pixel, then 16 more (any value) */
    bool avx512;
} dt_padded_gather;

__attribute__((target("avx512f"))) static void dt_padded_gather_avx512(const dt_padded_gather *p, int64_t k0,
                                                                       int64_t kc, int64_t n0, int64_t nc, float *dst)
{
    enum { NR = DT_GEMM_NR };
    for (int64_t jp = 0; jp < nc; jp += NR) {
        int64_t w = nc - jp < NR ? nc - jp : NR, ld = (w + 15) & ~(int64_t)15;
        float *d = dst + dt_gemm_panel(jp, kc);
        for (int64_t v = 0; v < ld; v += 16) {
            int64_t lanes = w - v;
            __mmask16 m = lanes >= 16 ? 0xffff : (__mmask16)((1u << lanes) - 1);
            __m512i iv = _mm512_loadu_si512(p->idx + n0 + jp + v);
            for (int64_t kk = 0; kk < kc; kk++)
                _mm512_storeu_ps(d + kk * ld + v, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, iv,
                                                                           p->xp + p->off[k0 + kk], 4));
        }
    }
}

/* The gather of a bfloat16 product (dt_gemm.pack_b_bf16): two rows' gathers converted into
 * one pair row of the panel (zero past n and past kc), the bits of gathering into float32
 * panels and converting those. */
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static void
dt_padded_gather_bf16(const void *ctx, int64_t k0, int64_t kc, int64_t n0, int n, int ld, uint16_t *dst)
{
    const dt_padded_gather *p = ctx;
    for (int v = 0; v < ld; v += 16) {
        int lanes = n - v;
        __mmask16 m = lanes >= 16 ? 0xffff : lanes > 0 ? (__mmask16)((1u << lanes) - 1) : 0;
        __m512i iv = _mm512_loadu_si512(p->idx + n0 + v);
        for (int64_t k = 0; k < kc; k += 2) {
            __m512 g0 = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, iv, p->xp + p->off[k0 + k], 4);
            __m512 g1 = k + 1 < kc ? _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, iv, p->xp + p->off[k0 + k + 1], 4)
                                   : _mm512_setzero_ps();
            _mm512_storeu_si512(dst + k * ld + 2 * v, dt_bf16_pairs(g0, g1));
        }
    }
}

static void dt_padded_gather_pack(const void *ctx, int64_t k0, int64_t kc, int64_t n0, int64_t nc, float *dst)
{
    const dt_padded_gather *p = ctx;
    if (p->avx512) {
        dt_padded_gather_avx512(p, k0, kc, n0, nc, dst);
        return;
    }
    float line[DT_GEMM_NC];
    for (int64_t kk = 0; kk < kc; kk++) {
        const float *src = p->xp + p->off[k0 + kk];
        for (int64_t j = 0; j < nc; j++) line[j] = src[p->idx[n0 + j]];
        dt_gemm_scatter_row(line, nc, kk, kc, dst);
    }
}

typedef struct dt_padded_out {
    const float *stage;
    float *y;
    const dt_epilogue *epi;     /* res offset like y */
    int64_t ldc, wp, ow, out_px, row0, rows;
} dt_padded_out;

/* Copies the valid columns of the staged rows into y, output channels split over threads. */
static void dt_padded_copy_out(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_padded_out *o = arg;
    for (int64_t m = begin; m < end; m++)
        for (int64_t r = 0; r < o->rows; r++) {
            int64_t off = m * o->out_px + (o->row0 + r) * o->ow;
            memcpy(o->y + off, o->stage + m * o->ldc + r * o->wp, (size_t)o->ow * sizeof(float));
            if (o->epi)
                dt_epilogue_apply(o->epi, o->y + off, o->epi->res ? o->epi->res + off : NULL, o->ow);
        }
}

/* The sizes of one image's buffers for a product over `threads` threads: the phases' and the
 * staging rows' floats (none over the pixels), rows of output per GEMM and the GEMM scratch
 * (the most of a full and the last, shorter, band); and, shared by every image, the row
 * offsets' (in floats) and the gather indices' (over the pixels; in floats). */
typedef struct dt_padded_size {
    size_t nxp, nstage, noff, nidx, gemm;
    int64_t rows;
} dt_padded_size;

static ductile_status dt_padded_sizes(const dt_conv_geom *g, const dt_conv_args *a, int threads, dt_padded_size *z)
{
    int64_t cg = g->c / g->group, mg = g->m / g->group;
    int64_t hq, wq, nph;
    dt_padded_phases(g, &hq, &wq, &nph);
    int64_t K = cg * g->k[0] * g->k[1];
    bool wide = dt_padded_wide(g);
    z->rows = wide ? (DT_PADDED_COLS + wq - 1) / wq : g->out[0];
    if (z->rows > g->out[0]) z->rows = g->out[0];
    /* The last garbage column of the last plane reads up to (kw-1)*dw / sw past it, and the
     * product read in place 15 more. */
    if (!dt_mul_size((size_t)cg * (size_t)nph, (size_t)hq, &z->nxp) || !dt_mul_size(z->nxp, (size_t)wq, &z->nxp) ||
        !dt_add_size(z->nxp, (size_t)((g->k[1] - 1) * g->d[1] + 16), &z->nxp) ||
        !dt_mul_size((size_t)mg, (size_t)(z->rows * wq), &z->nstage))
        return dt_fail(DUCTILE_ERR_SHAPE, "conv scratch for input of %lld channels of %lldx%lld is too large",
                       (long long)cg, (long long)g->in[0], (long long)g->in[1]);
    z->nxp = (z->nxp + 15) & ~(size_t)15;       /* each buffer starts 64-byte aligned */
    /* over the pixels: no stage (C is y), the gather's indices instead */
    z->nidx = 0;
    if (!wide) {
        z->nstage = 0;
        z->nidx = (size_t)(g->out[0] * g->out[1] + 16 + 15) & ~(size_t)15;
    }
    z->nstage = (z->nstage + 15) & ~(size_t)15;
    z->noff = ((size_t)(K + DT_CONV_INDIRECT_OFF_PAD) * 2 + 15) & ~(size_t)15;
    int64_t wc = wide ? wq : g->out[1];
    dt_gemm gm = {.M = mg, .N = z->rows * wc, .K = K, .A_packed = a->w_packed, .A_bf16 = a->w_bf16};
    z->gemm = dt_sgemm_scratch_bytes(&gm, threads);
    int64_t last = g->out[0] % z->rows;
    if (last) {
        gm.N = last * wc;
        size_t b = dt_sgemm_scratch_bytes(&gm, threads);
        if (b > z->gemm) z->gemm = b;
    }
    z->gemm = (z->gemm + 63) & ~(size_t)63;
    return DUCTILE_OK;
}

/* One thread's (or the split's) buffers: phases, staging rows, GEMM scratch. */
static size_t dt_padded_region(const dt_padded_size *z)
{
    return (z->nxp + z->nstage) * sizeof(float) + z->gemm;
}

/* Bytes of the shared row offsets and gather indices, then of the buffers of either split. */
static ductile_status dt_padded_layout(const dt_conv_geom *g, const dt_conv_args *a, int threads, dt_padded_size *pooled,
                                       dt_padded_size *own, size_t *shared, size_t *bytes)
{
    DT_TRY(dt_padded_sizes(g, a, threads, pooled));
    *own = *pooled;
    int it = dt_cpu_conv_image_threads(g, threads);
    if (it) DT_TRY(dt_padded_sizes(g, a, 1, own));
    size_t most = dt_padded_region(pooled), all;
    *shared = (pooled->noff + pooled->nidx) * sizeof(float);
    if (it && (!dt_mul_size(dt_padded_region(own), (size_t)it, &all) || all > SIZE_MAX / 2))
        return dt_fail(DUCTILE_ERR_SHAPE, "conv scratch of %d threads' buffers is too large", it);
    if (it && all > most) most = all;
    if (!dt_add_size(*shared, most, bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "conv scratch of %zu + %zu bytes is too large", *shared, most);
    return DUCTILE_OK;
}

ductile_status dt_cpu_conv_padded_scratch(const dt_conv_geom *g, const dt_conv_args *a, int threads, size_t *bytes)
{
    dt_padded_size pooled, own;
    size_t shared;
    return dt_padded_layout(g, a, threads, &pooled, &own, &shared, bytes);
}

__attribute__((target("avx512f"))) void dt_cpu_deint2(float *ev, int64_t ne, float *od, int64_t no, const float *s,
                                                     int64_t n)
{
    const __m512i ei = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i oi = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    int64_t nt = ne > no ? ne : no;
    for (int64_t t = 0; t < nt; t += 16) {
        int64_t in = n - 2 * t;
        __mmask16 m0 = in >= 16 ? 0xffff : (__mmask16)((1u << in) - 1);
        __mmask16 m1 = in >= 32 ? 0xffff : in > 16 ? (__mmask16)((1u << (in - 16)) - 1) : 0;
        /* plain loads inside the row (simd_load.h: masked ones are slow on a miss) */
        __m512 lo = dt_mload(m0, s + 2 * t), hi = dt_mload(m1, s + 2 * t + 16);
        int64_t e = ne - t, o = no - t;
        if (e > 0)
            _mm512_mask_storeu_ps(ev + t, e >= 16 ? 0xffff : (__mmask16)((1u << e) - 1),
                                  _mm512_permutex2var_ps(lo, ei, hi));
        if (o > 0)
            _mm512_mask_storeu_ps(od + t, o >= 16 ? 0xffff : (__mmask16)((1u << o) - 1),
                                  _mm512_permutex2var_ps(lo, oi, hi));
    }
}

/* The columns [*a, *b) of column phase px that hold image pixels (q*sw + px - pl in the image). */
static void dt_padded_cols(const dt_conv_geom *g, int64_t px, int64_t wq, int64_t *a, int64_t *b)
{
    int64_t sw = g->s[1], pl = g->pb[1];
    *a = pl - px > 0 ? (pl - px + sw - 1) / sw : 0;
    *b = (g->in[1] + pl - px + sw - 1) / sw;
    if (*b > wq) *b = wq;
    if (*b < *a) *a = *b = 0;
}

/* One phase row of wq floats: zeros, the image's columns [a, b) (every sw-th of src from x0;
 * src NULL: a row of padding), zeros. */
static void dt_padded_row(float *d, const float *src, int64_t x0, int64_t sw, int64_t a, int64_t b, int64_t wq)
{
    if (!src) a = b = 0;
    for (int64_t q = 0; q < a; q++) d[q] = 0.0f;
    for (int64_t q = b; q < wq; q++) d[q] = 0.0f;
    if (b == a) return;
    if (sw == 1)
        memcpy(d + a, src + x0, (size_t)(b - a) * sizeof *d);
    else
        for (int64_t q = a; q < b; q++) d[q] = src[x0 + (q - a) * sw];
}

/* The stride-2 fill prefetches each row it reads this many channels ahead: it reads a
 * channel's odd rows, then its even ones, which the hardware prefetcher does not follow;
 * resnet50's stride-2 3x3s at batch 8 (input from memory) spent 11% of their time in the
 * deinterleave without it (perf, bench_conv_layers BATCH=8 RES=1 HUGE=1, algo 2). */
enum { DT_PADDED_PF_C = 2 };

static void dt_padded_prefetch_row(const float *row, int64_t n)
{
    for (uintptr_t q = (uintptr_t)row & ~(uintptr_t)63, e = (uintptr_t)(row + n); q < e; q += 64)
        __builtin_prefetch((const void *)q);
}

/* Writes rows [q0, q1) of the used phases of channels [c0, c1) of the image at xg into xp (all
 * rows: 0, hq), every float of those rows. At
 * stride 2 on AVX-512 the column phases are the image's even and odd columns (from 0 and 1
 * on), deinterleaved from each row in one pass. */
static void dt_padded_fill(const dt_conv_geom *g, const float *xg, int64_t c0, int64_t c1, int64_t q0, int64_t q1,
                           float *xp, int64_t hq, int64_t wq, bool avx512)
{
    int64_t sh = g->s[0], sw = g->s[1], ih = g->in[0], iw = g->in[1], pt = g->pb[0], pl = g->pb[1];
    int64_t ny = dt_padded_rank(sh, g->k[0], sh, g->d[0]), nx = dt_padded_rank(sw, g->k[1], sw, g->d[1]);
    int64_t plane = hq * wq;
    if (sw == 2 && avx512) {
        /* par[e]: the column phase of the image's columns of parity e, its columns [a, b) */
        int64_t ph[2] = {-1, -1}, a[2] = {0, 0}, b[2] = {0, 0};
        for (int64_t px = 0, u = 0; px < 2; px++) {
            if (!dt_padded_used(px, g->k[1], 2, g->d[1])) continue;
            int64_t pa, pb;
            dt_padded_cols(g, px, wq, &pa, &pb);
            int64_t e = (pa * 2 + px - pl) & 1;
            ph[e] = u++;
            a[e] = pa;
            b[e] = pb;
        }
        for (int64_t c = c0; c < c1; c++)
            for (int64_t py = 0, uy = 0; py < sh; py++) {
                if (!dt_padded_used(py, g->k[0], sh, g->d[0])) continue;
                float *base = xp + (c * ny + uy++) * nx * plane;
                for (int64_t r = q0; r < q1; r++) {
                    int64_t iy = r * sh + py - pt;
                    const float *src = iy >= 0 && iy < ih ? xg + (c * ih + iy) * iw : NULL;
                    if (src && c + DT_PADDED_PF_C < c1) dt_padded_prefetch_row(src + DT_PADDED_PF_C * ih * iw, iw);
                    float *d[2] = {NULL, NULL};
                    for (int e = 0; e < 2; e++) {
                        if (ph[e] < 0) continue;
                        d[e] = base + ph[e] * plane + r * wq;
                        int64_t ea = src ? a[e] : 0, eb = src ? b[e] : 0;
                        for (int64_t q = 0; q < ea; q++) d[e][q] = 0.0f;
                        for (int64_t q = eb; q < wq; q++) d[e][q] = 0.0f;
                        d[e] += ea;
                    }
                    if (src)
                        dt_cpu_deint2(d[0], ph[0] < 0 ? 0 : b[0] - a[0], d[1], ph[1] < 0 ? 0 : b[1] - a[1], src, iw);
                }
            }
        return;
    }
    for (int64_t px = 0, ux = 0; px < sw; px++) {
        if (!dt_padded_used(px, g->k[1], sw, g->d[1])) continue;
        int64_t a, b;
        dt_padded_cols(g, px, wq, &a, &b);
        for (int64_t c = c0; c < c1; c++)
            for (int64_t py = 0, uy = 0; py < sh; py++) {
                if (!dt_padded_used(py, g->k[0], sh, g->d[0])) continue;
                float *d = xp + ((c * ny + uy++) * nx + ux) * plane;
                for (int64_t r = q0; r < q1; r++) {
                    int64_t iy = r * sh + py - pt;
                    dt_padded_row(d + r * wq, iy >= 0 && iy < ih ? xg + (c * ih + iy) * iw : NULL, a * sw + px - pl,
                                  sw, a, b, wq);
                }
            }
        ux++;
    }
}

typedef struct dt_padded_fill_job {
    const dt_conv_geom *g;
    const float *xg;
    float *xp;
    int64_t hq, wq;
    bool avx512;
} dt_padded_fill_job;

static void dt_padded_fill_range(void *arg, int64_t c0, int64_t c1, int tid)
{
    (void)tid;
    const dt_padded_fill_job *j = arg;
    dt_padded_fill(j->g, j->xg, c0, c1, 0, j->hq, j->xp, j->hq, j->wq, j->avx512);
}

/* What every image of one call shares. */
typedef struct dt_padded_run {
    const dt_conv_geom *g;
    const dt_conv_args *a;
    const int64_t *off;         /* dt_padded_offsets */
    const int32_t *idx;         /* over the pixels: the gather's indices */
    int64_t hq, wq, nph;
    bool avx512, wide, indirect;
    bool gather16;              /* the gather straight into bfloat16 panels (dt_padded_gather_bf16) */
    /* the image split (dt_padded_images): part p's buffers at own + p * own_bytes */
    char *own;
    size_t own_bytes;
    dt_padded_size own_size;
    ductile_status status[64];  /* per part */
} dt_padded_run;

/* One image by rows on a pool (dt_padded_by_rows): part s fills rows [s hq / T, (s + 1) hq / T)
 * of every phase, then (after the join) computes output rows [s OH / T, (s + 1) OH / T): the
 * product over their columns of the phases, in bands of `band` rows through its own columns
 * of the staging rows, and their copy-out. */
typedef struct dt_padded_rows {
    const dt_padded_run *r;
    const float *x;             /* the image */
    float *y;                   /* the image's output */
    const dt_epilogue *epi;     /* res offset like y, or NULL */
    float *xp, *stage;
    int64_t ldc, band;          /* the staging rows' stride; rows a part computes at a time */
    int parts;
} dt_padded_rows;

static void dt_padded_rows_fill(void *arg, int64_t s0, int64_t s1, int tid)
{
    (void)tid;
    const dt_padded_rows *j = arg;
    const dt_padded_run *r = j->r;
    for (int64_t s = s0; s < s1; s++)
        dt_padded_fill(r->g, j->x, 0, r->g->c, s * r->hq / j->parts, (s + 1) * r->hq / j->parts, j->xp, r->hq, r->wq,
                       r->avx512);
}

static void dt_padded_rows_run(void *arg, int64_t s0, int64_t s1, int tid)
{
    (void)tid;
    const dt_padded_rows *j = arg;
    const dt_padded_run *r = j->r;
    const dt_conv_geom *g = r->g;
    int64_t oh = g->out[0], wq = r->wq, K = g->c * g->k[0] * g->k[1];
    for (int64_t s = s0; s < s1; s++) {
        float *stage = j->stage + s * j->band * wq;
        for (int64_t o = s * oh / j->parts, o1 = (s + 1) * oh / j->parts; o < o1; o += j->band) {
            int64_t nr = o1 - o < j->band ? o1 - o : j->band;
            dt_conv_indirect ci = {.a = r->a->w_packed, .b = j->xp + o * wq, .bias = r->a->bias, .off = r->off,
                                   .c = stage, .M = g->m, .N = nr * wq, .K = K, .ldc = j->ldc};
            dt_conv_indirect_run(&ci, NULL);
            dt_padded_out out = {stage, j->y, j->epi, j->ldc, wq, g->out[1], oh * g->out[1], o, nr};
            dt_padded_copy_out(&out, 0, g->m, tid);
        }
    }
}

/* Whether one image on `threads` threads goes by rows: the product read in place over the
 * padded width, one group, fewer than 4 strips of 8 output channels a thread in the split by
 * channels, and at least two rows and 96 columns a thread. Split by channels, each thread
 * reads every phase (K x N), half of them filled by the other thread (the fill goes by
 * channels); by rows it reads all of the weights (M x K, small here) and its own rows of the
 * phases, and the fill, the product and the copy-out of a row stay on one core (the phases'
 * halo rows aside). bench_conv_layers, 2 threads, Zen 5 (vCPUs sharing an L3): YOLO's
 * 16 -> 32 stride-2 3x3 at 240x240 0.336 -> 0.319 ms (4 strips); at 32 -> 64 (8 strips) +1%,
 * 128 -> 128 +5%: those stay split by channels. */
static bool dt_padded_by_rows(const dt_padded_run *r, const dt_padded_size *z, int threads)
{
    const dt_conv_geom *g = r->g;
    int64_t each = g->out[0] / (threads > 0 ? threads : 1);
    return threads > 1 && r->indirect && g->group == 1 && z->rows >= threads && each >= 2 &&
           each * r->wq >= 2 * DT_GEMM_NR && (g->m + DT_GEMM_MR - 1) / DT_GEMM_MR < 4 * (int64_t)threads;
}

/* Image b, every group: the fill, the product and the copy-out over `pool` (NULL: this
 * thread alone), in the buffers xp, stage (the staging rows; unused over the pixels) and gs
 * (the GEMM's). */
static ductile_status dt_padded_image(const dt_padded_run *r, int64_t b, const dt_padded_size *z, float *xp, float *stage,
                                      void *gs, dt_pool *pool)
{
    const dt_conv_geom *g = r->g;
    const dt_conv_args *a = r->a;
    const float *x = a->x, *bias = a->bias;
    float *y = a->y;
    int64_t cg = g->c / g->group, mg = g->m / g->group, hq = r->hq, wq = r->wq;
    int64_t in_px = g->in[0] * g->in[1], out_px = g->out[0] * g->out[1];
    int64_t K = cg * g->k[0] * g->k[1];
    const int64_t *off = r->off;
    ductile_status st = DUCTILE_OK;
    int threads = dt_pool_threads(pool);
    if (dt_padded_by_rows(r, z, threads)) {
        dt_epilogue epi;
        if (a->epi) {
            epi = *a->epi;
            if (epi.res) epi.res += b * g->m * out_px;
        }
        int parts = threads > 64 ? 64 : threads;
        dt_padded_rows j = {r, x + b * g->c * in_px, y + b * g->m * out_px, a->epi ? &epi : NULL, xp, stage,
                            z->rows * wq, z->rows / parts, parts};
        dt_parallel_for(pool, parts, 1, dt_padded_rows_fill, &j);
        dt_parallel_for(pool, parts, 1, dt_padded_rows_run, &j);
        return DUCTILE_OK;
    }
    for (int64_t gi = 0; gi < g->group && st == DUCTILE_OK; gi++) {
        /* channels split over the threads: on 2 threads a serial pass was ~10% of a stride-2 3x3 */
        dt_padded_fill_job fj = {g, x + (b * g->c + gi * cg) * in_px, xp, hq, wq, r->avx512};
        dt_parallel_for(pool, cg, 8, dt_padded_fill_range, &fj);
        int64_t yoff = (b * g->m + gi * mg) * out_px;
        dt_epilogue epi;
        if (a->epi) {
            epi = *a->epi;
            if (epi.res) epi.res += yoff;
        }
        if (!r->wide) {
            dt_padded_gather pg = {xp, off, r->idx, r->avx512};
            bool g16 = r->gather16;
            dt_gemm gm = {
                .M = mg, .N = out_px, .K = K, .alpha = 1.0f, .beta = 0.0f,
                .A = a->w ? a->w + gi * mg * K : NULL, .lda = K,
                .A_packed = a->w_packed ? a->w_packed + gi * dt_gemm_packed_a_floats(mg, K) : NULL,
                .A_bf16 = a->w_bf16 ? a->w_bf16 + gi * dt_gemm_packed_a_bf16_elems(mg, K) : NULL,
                .fp16 = a->w_fp16,
                .pack_b = g16 ? NULL : dt_padded_gather_pack, .pack_b_ctx = &pg,
                .pack_b_bf16 = g16 ? dt_padded_gather_bf16 : NULL,
                .C = y + yoff, .ldc = out_px,
                .bias = bias ? bias + gi * mg : NULL, .epi = a->epi ? &epi : NULL,
            };
            st = dt_sgemm_in(&gm, pool, gs);
            continue;
        }
        for (int64_t r0 = 0; r0 < g->out[0] && st == DUCTILE_OK; r0 += z->rows) {
            int64_t nr = g->out[0] - r0 < z->rows ? g->out[0] - r0 : z->rows;
            if (r->indirect) {
                dt_conv_indirect ci = {.a = a->w_packed + gi * dt_gemm_packed_a_floats(mg, K), .b = xp + r0 * wq,
                                       .bias = bias ? bias + gi * mg : NULL, .off = off, .c = stage,
                                       .M = mg, .N = nr * wq, .K = K, .ldc = nr * wq};
                dt_conv_indirect_run(&ci, pool);
            } else {
                dt_padded pk = {xp + r0 * wq, off};
                /* bfloat16: the phases' rows converted as the GEMM reads them (dt_gemm.b_off),
                 * not copied into float32 panels first */
                bool rows = a->w_bf16 && !a->w_fp16;
                dt_gemm gm = {
                    .M = mg, .N = nr * wq, .K = K, .alpha = 1.0f, .beta = 0.0f,
                    .A = a->w ? a->w + gi * mg * K : NULL, .lda = K,
                    .A_packed = a->w_packed ? a->w_packed + gi * dt_gemm_packed_a_floats(mg, K) : NULL,
                    .A_bf16 = a->w_bf16 ? a->w_bf16 + gi * dt_gemm_packed_a_bf16_elems(mg, K) : NULL,
                    .fp16 = a->w_fp16,
                    .pack_b = rows ? NULL : dt_padded_pack, .pack_b_ctx = &pk,
                    .B = rows ? xp + r0 * wq : NULL, .b_off = rows ? off : NULL,
                    .C = stage, .ldc = nr * wq,
                    .bias = bias ? bias + gi * mg : NULL,
                };
                st = dt_sgemm_in(&gm, pool, gs);
            }
            dt_padded_out o = {stage, y + yoff, a->epi ? &epi : NULL, nr * wq, wq, g->out[1], out_px, r0, nr};
            if (st == DUCTILE_OK) dt_parallel_for(pool, mg, 4, dt_padded_copy_out, &o);
        }
    }
    return st;
}

/* The slack past the last plane of xp, which only garbage columns read. */
static void dt_padded_clear_slack(const dt_padded_run *r, const dt_padded_size *z, float *xp)
{
    size_t used = (size_t)(r->g->c / r->g->group * r->nph * r->hq * r->wq);
    memset(xp + used, 0, (z->nxp - used) * sizeof *xp);
}

/* Images [b0, b1), one after another on this thread, in part `part`'s own buffers. */
static void dt_padded_images(void *arg, int64_t b0, int64_t b1, int part)
{
    dt_padded_run *r = arg;
    float *xp = (float *)(r->own + (size_t)part * r->own_bytes), *stage = xp + r->own_size.nxp;
    dt_padded_clear_slack(r, &r->own_size, xp);
    ductile_status st = DUCTILE_OK;
    for (int64_t b = b0; b < b1 && st == DUCTILE_OK; b++)
        st = dt_padded_image(r, b, &r->own_size, xp, stage, stage + r->own_size.nstage, NULL);
    r->status[part] = st;
}

ductile_status dt_cpu_conv_padded(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool)
{
    if (!a->scratch) return dt_cpu_conv_run_algo(g, a, DT_CONV_PADDED, pool); /* allocates it */
    int threads = dt_pool_threads(pool);
    dt_padded_size pooled, own;
    size_t shared, bytes;
    DT_TRY(dt_padded_layout(g, a, threads, &pooled, &own, &shared, &bytes));
    __builtin_cpu_init();
    dt_padded_run r = {.g = g, .a = a, .avx512 = __builtin_cpu_supports("avx512f"), .wide = dt_padded_wide(g)};
    dt_padded_phases(g, &r.hq, &r.wq, &r.nph);
    int64_t K = g->c / g->group * g->k[0] * g->k[1], out_px = g->out[0] * g->out[1];
    /* Float32 weights packed at build time: B read in place, through the row offsets. */
    r.indirect = r.wide && a->w_packed && !a->w_bf16 && dt_conv_indirect_available();
    /* bfloat16 weights: the gather straight into bfloat16 panels where the CPU has AVX512-BF16 */
    r.gather16 = !r.wide && a->w_bf16 && !a->w_fp16 && r.avx512 && dt_cpu_has_bf16();
    int64_t *off = a->scratch;
    int32_t *idx = (int32_t *)((float *)a->scratch + pooled.noff);
    dt_padded_offsets(g, r.hq, r.wq, K, off);
    r.off = off;
    if (!r.wide) {
        for (int64_t n = 0; n < out_px + 16; n++) idx[n] = n < out_px ? (int32_t)(n / g->out[1] * r.wq + n % g->out[1]) : 0;
        r.idx = idx;
    }
    r.own = (char *)a->scratch + shared;
    /* Whole images per thread first (each in buffers of its own), the images left over split
     * within each image. */
    int it = dt_cpu_conv_image_threads(g, threads);
    int64_t split = it ? g->batch - g->batch % it : 0;
    if (split) {
        r.own_bytes = dt_padded_region(&own);
        r.own_size = own;
        dt_parallel_for(pool, split, split / it, dt_padded_images, &r);
        for (int p = 0; p < it; p++) DT_TRY(r.status[p]);
    }
    float *xp = (float *)r.own, *stage = xp + pooled.nxp;
    if (split < g->batch) dt_padded_clear_slack(&r, &pooled, xp);
    ductile_status st = DUCTILE_OK;
    for (int64_t b = split; b < g->batch && st == DUCTILE_OK; b++)
        st = dt_padded_image(&r, b, &pooled, xp, stage, stage + pooled.nstage, pool);
    return st;
}
