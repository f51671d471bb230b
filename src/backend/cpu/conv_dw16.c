/* Depthwise convolution with 16 channels per vector, for small planes. The row kernels
 * (conv_dw.c) put 16 outputs of one row in a vector: on mobilenet's 7x7 and 14x14 planes most
 * lanes are idle and the per-plane costs (the padded copy, masks, row pointers) weigh on a
 * few dozen outputs. Here each block of 16 channels of an image is transposed into a
 * zero-padded tile of pixels of 16 channels (in L1: 9x9x16 floats for 7x7), every output
 * pixel is 16 full lanes, and the block's outputs are transposed back to NCHW with the
 * epilogue in the store. The layers around stay NCHW: the transposes cost less than the lanes
 * they fill. Channels past the last full block run the row kernels.
 *
 * Bits: each output is the bias, then fmaf over the padded taps in (ky, kx) order, then the
 * epilogue in lanes (conv_dw.h) or dt_epilogue_apply: the float operations of the row
 * kernels, so either tactic gives the same result (tests/c/test_conv_dw.c); the bfloat16
 * path of 5x5 convs (dt_conv_args.dw_bf16, below) rounds instead. */
#include "backend/cpu/conv.h"
#include "backend/cpu/conv_dw.h"
#include "backend/cpu/gemm.h"
#include "core/checked.h"
#include "core/status.h"

#include <immintrin.h>
#include <string.h>

bool dt_cpu_dw16_applies(const dt_conv_geom *g)
{
    /* Output rows of 16 and more fill the row kernels' lanes, and the tiles of large planes
     * would only grow every context's scratch (the most of any tactic that may run). 5x5
     * planes up to 47 wide too, for the timer to choose: their rows' last vector (35 = 16 +
     * 16 + 3) wastes a quarter of 25 FMAs an output, and a dilated 5x5 reads 12 input rows
     * for 4 output rows. seg_lraspp's 960-channel 5x5 dilation-2 planes at 49x35 (777x555
     * input), bench_dw 1 thread Zen 4: 1.34 ms in 16-channel vectors against 1.60-1.98 in rows;
     * its 49x35 5x5 stride 2 and 32x32 dilation 2 planes stay faster in rows (1.49 / 0.65-0.74
     * against 1.64-1.69 / 0.99). */
    if (!dt_cpu_conv_is_depthwise(g) || g->spatial != 2) return false;
    if (g->out[1] >= 16 && !(g->k[0] == 5 && g->out[1] < 48)) return false;
    if (g->k[0] != g->k[1] || g->s[0] != g->s[1] || g->d[0] != g->d[1]) return false;
    return (g->k[0] == 3 || g->k[0] == 5) && g->s[0] >= 1 && g->s[0] <= 2 && g->d[0] >= 1 && g->d[0] <= 2;
}

bool dt_cpu_dw16_pays(const dt_conv_geom *g)
{
    __builtin_cpu_init();
    /* 3x3 stride 2 to rows of up to 7: the row kernels' two rows a vector (dt_cpu_dw_pairs_applies)
     * cost no transposes */
    return dt_cpu_dw16_applies(g) && __builtin_cpu_supports("avx512f") && g->c >= 16 && g->out[1] <= 8 &&
           !dt_cpu_dw_pairs_applies(g);
}

/* Output pixels computed at once: 8 independent FMA chains hide the FMA latency. */
enum { DT_DW16_R = 8 };

/* The tile: the padded plane of 16-channel pixels, th rows of tw. Outputs are computed a row
 * at a time in blocks of DT_DW16_R pixels, rows padded to vw (ow rounded up to the block):
 * a block is one pointer and constant offsets. The padding columns are never stored; their
 * reads past the tile's end land in zeroed slack pixels. A thread's scratch: the tile, the
 * outputs (pixel (oy, ox) at 16 (oy vw + ox)), and the row kernels' scratch for the channels
 * past the last block. */
typedef struct dt_dw16_layout {
    int64_t th, tw, vw;
    size_t tile, out, tail, pairs, per_thread;
} dt_dw16_layout;

static size_t dt_dw16_align(size_t n) { return (n + 63) & ~(size_t)63; }

/* The geometries the bfloat16 path takes (below: 5x5, dilation 1); only they get its tile. */
static bool dt_dw16b_geometry(const dt_conv_geom *g) { return g->k[0] == 5 && g->d[0] == 1; }

static ductile_status dt_dw16_layout_of(const dt_conv_geom *g, dt_dw16_layout *l)
{
    l->th = g->in[0] + g->pb[0] + g->pe[0];
    l->tw = g->in[1] + g->pb[1] + g->pe[1];
    l->vw = (g->out[1] + DT_DW16_R - 1) / DT_DW16_R * DT_DW16_R;
    /* The last pixel a row's padding reads, ((oh-1) S + (K-1) D) tw + S (vw-1) + (K-1) D, is
     * under th tw + slack. */
    int64_t slack = g->s[1] * l->vw + (g->k[1] - 1) * g->d[1];
    size_t t, o, q;
    if (!dt_mul_size((size_t)g->out[0], (size_t)l->vw, &q) ||
        !dt_mul_size((size_t)l->th, (size_t)l->tw, &t) || !dt_add_size(t, (size_t)slack, &t) ||
        !dt_mul_size(t, 16 * sizeof(float), &t) || !dt_mul_size(q, 16 * sizeof(float), &o))
        return dt_fail(DUCTILE_ERR_SHAPE, "depthwise conv tile of %lldx%lld pixels is too large", (long long)l->th,
                       (long long)l->tw);
    DT_TRY(dt_cpu_conv_depthwise_scratch(g, 1, &l->tail));
    /* The bfloat16 path's tile of row pairs (dt_dw16_pair_tile): (th + 1) / 2 rows of 16-lane
     * dwords and the same slack; none where the path never runs. */
    size_t pr = 0;
    if (dt_dw16b_geometry(g) &&
        (!dt_mul_size((size_t)((l->th + 1) / 2), (size_t)l->tw, &pr) || !dt_add_size(pr, (size_t)slack, &pr) ||
         !dt_mul_size(pr, 16 * sizeof(uint32_t), &pr)))
        return dt_fail(DUCTILE_ERR_SHAPE, "depthwise conv tile of %lldx%lld pixels is too large", (long long)l->th,
                       (long long)l->tw);
    l->tile = dt_dw16_align(t);
    l->out = dt_dw16_align(o);
    l->tail = dt_dw16_align(l->tail);
    l->pairs = dt_dw16_align(pr);
    l->per_thread = l->tile + l->out + l->tail + l->pairs;
    return DUCTILE_OK;
}

ductile_status dt_cpu_conv_dw16_scratch(const dt_conv_geom *g, int threads, size_t *bytes)
{
    dt_dw16_layout l;
    DT_TRY(dt_dw16_layout_of(g, &l));
    if (!dt_mul_size(l.per_thread, (size_t)threads, bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "depthwise conv scratch of %d tiles is too large", threads);
    return DUCTILE_OK;
}

/* r[i] lane l = r[l] lane i before: a 16x16 transpose in four rounds of shuffles. */
static inline __attribute__((always_inline, target("avx512f"))) void dt_dw16_transpose(__m512 *r)
{
    __m512 t[16], u[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* u[4i + j], 128-bit lane k: rows 4i..4i+3 of column 4k + j */
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        u[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
        u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        __m512 a0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88), a1 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xdd);
        __m512 b0 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88), b1 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xdd);
        r[j] = _mm512_shuffle_f32x4(a0, b0, 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(a0, b0, 0xdd);
        r[4 + j] = _mm512_shuffle_f32x4(a1, b1, 0x88);
        r[12 + j] = _mm512_shuffle_f32x4(a1, b1, 0xdd);
    }
}

/* Every output row's vw pixels into ot, DT_DW16_R at a time: bias, then the taps in (ky, kx)
 * order. */
static inline __attribute__((always_inline, target("avx512f,fma"))) void
dt_dw16_compute(const float *tile, int64_t tw, const __m512 *wv, __m512 bias, float *ot, int64_t oh, int64_t vw,
                const int K, const int S, const int D)
{
    __m512 w[25];
#pragma GCC unroll 25
    for (int t = 0; t < K * K; t++) w[t] = wv[t];
    int64_t row = (int64_t)D * tw * 16;
    for (int64_t oy = 0; oy < oh; oy++)
        for (int64_t ox = 0; ox < vw; ox += DT_DW16_R) {
            const float *base = tile + (oy * S * tw + ox * S) * 16;
            float *o = ot + (oy * vw + ox) * 16;
            __m512 acc[DT_DW16_R];
#pragma GCC unroll 8
            for (int r = 0; r < DT_DW16_R; r++) acc[r] = bias;
#pragma GCC unroll 5
            for (int ky = 0; ky < K; ky++) {
                const float *br = base + ky * row;
#pragma GCC unroll 5
                for (int kx = 0; kx < K; kx++)
#pragma GCC unroll 8
                    for (int r = 0; r < DT_DW16_R; r++)
                        acc[r] = _mm512_fmadd_ps(w[ky * K + kx], _mm512_loadu_ps(br + (S * r + kx * D) * 16), acc[r]);
            }
#pragma GCC unroll 8
            for (int r = 0; r < DT_DW16_R; r++) _mm512_storeu_ps(o + r * 16, acc[r]);
        }
}

typedef void (*dt_dw16_fn)(const float *, int64_t, const __m512 *, __m512, float *, int64_t, int64_t);

#define DT_DW16_FN(K, S, D)                                                                                      \
    __attribute__((target("avx512f,fma"))) static void dt_dw16_compute_##K##S##D(                              \
        const float *tile, int64_t tw, const __m512 *wv, __m512 bias, float *ot, int64_t oh, int64_t vw)         \
    {                                                                                                            \
        dt_dw16_compute(tile, tw, wv, bias, ot, oh, vw, K, S, D);                                                \
    }
DT_DW_GEOMETRIES(DT_DW16_FN)

/* The bfloat16 path (a `bf16` layer's run on its bfloat16 weights: dt_conv_args.dw_bf16, on a
 * CPU with AVX512-BF16), dilation 1. The tile's rows go in pairs into one more tile: pair row p,
 * pixel x, lane c holds channel c of rows 2p (low half) and 2p + 1 (high half) in bfloat16, and
 * vdpbf16ps multiplies both rows of a tap column with the weights of two kernel rows at once.
 * An output row at stride 2 (and an even one at stride 1) starts on a pair: kernel rows (0, 1)
 * (and (2, 3)) are pairs, the last row alone, the low half of the pair after; an odd row at
 * stride 1 takes its first kernel row alone (the high half of the pair before) and (1, 2)
 * (and (3, 4)) as pairs. A row alone: its half shifted or masked into a float32 (exact) times
 * the weight rounded to bfloat16, in an FMA: no 0 x Inf from a zero weight beside it. 5x5: 10
 * dot products and 5 FMAs (and 5 shifts or masks) an output where float32 takes 25 FMAs. Only
 * 5x5: at 3x3 (3, 3 and 3 against 9) the pair tile's conversion ate the gain (mobilenet_v2's
 * and EfficientNet's 7x7 3x3 blocks unchanged, session 42).
 * Each output: the bias, then the pairs (kernel rows in order, kx within), then the row alone,
 * in float32 (the products exact); x and w rounded to nearest even (denormals to zero, as
 * vcvtne2ps2bf16 does). */
#define DT_DW16B __attribute__((target("avx512f,avx512bw,avx512bf16,fma")))

/* Words 2i and 2i + 1 <- words i and 16 + i (vcvtne2ps2bf16's halves into pairs). */
static inline DT_DW16B __m512i dt_dw16_interleave(__m512i v)
{
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                         21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(idx, v);
}

/* lo and hi (float32, 16 channels) as one vector of bfloat16 pairs (lo in the low halves). */
static inline DT_DW16B __m512i dt_dw16_pair(__m512 lo, __m512 hi)
{
    return dt_dw16_interleave((__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}

/* v rounded to bfloat16, as float32 again. */
static inline DT_DW16B __m512 dt_dw16_bf16_ps(__m512 v)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(v)), 16));
}

/* The float32 tile's th rows (zero past them) as (th + 1) / 2 pair rows. */
static DT_DW16B void dt_dw16_pair_tile(const float *tile, int64_t th, int64_t tw, uint32_t *pt)
{
    for (int64_t p = 0; p < (th + 1) / 2; p++) {
        const float *r0 = tile + 2 * p * tw * 16, *r1 = r0 + tw * 16;
        uint32_t *d = pt + p * tw * 16;
        bool two = 2 * p + 1 < th;
        for (int64_t x = 0; x < tw; x++) {
            __m512 hi = two ? _mm512_loadu_ps(r1 + 16 * x) : _mm512_setzero_ps();
            _mm512_storeu_si512(d + 16 * x, dt_dw16_pair(_mm512_loadu_ps(r0 + 16 * x), hi));
        }
    }
}

/* The block's weights for both row parities: wp[j * K + kx] the pair of kernel rows (2j, 2j + 1)
 * (odd: (2j + 1, 2j + 2)), wl[kx] the row alone (K - 1; odd: 0), from wv (tap t = ky K + kx). */
typedef struct dt_dw16b_weights {
    __m512i pe[10], po[10];
    __m512 le[5], lo[5];
} dt_dw16b_weights;

static DT_DW16B void dt_dw16b_weights_of(const __m512 *wv, int K, dt_dw16b_weights *w)
{
    for (int j = 0; j < (K - 1) / 2; j++)
        for (int kx = 0; kx < K; kx++) {
            w->pe[j * K + kx] = dt_dw16_pair(wv[2 * j * K + kx], wv[(2 * j + 1) * K + kx]);
            w->po[j * K + kx] = dt_dw16_pair(wv[(2 * j + 1) * K + kx], wv[(2 * j + 2) * K + kx]);
        }
    for (int kx = 0; kx < K; kx++) {
        w->le[kx] = dt_dw16_bf16_ps(wv[(K - 1) * K + kx]);
        w->lo[kx] = dt_dw16_bf16_ps(wv[kx]);
    }
}

/* One output row's vw pixels, DT_DW16_R at a time: pr the first pair row, lr the row alone's
 * pair row (its high half where ODD, else its low half). */
static inline __attribute__((always_inline)) DT_DW16B void
dt_dw16b_row(const uint32_t *pt, int64_t tw, const __m512i *wp, const __m512 *wl, __m512 bias, float *o, int64_t vw,
             int64_t pr, int64_t lr, const int K, const int S, const bool ODD)
{
    const __m512i himask = _mm512_set1_epi32((int)0xffff0000u);
    for (int64_t ox = 0; ox < vw; ox += DT_DW16_R) {
        __m512 acc[DT_DW16_R];
#pragma GCC unroll 8
        for (int r = 0; r < DT_DW16_R; r++) acc[r] = bias;
#pragma GCC unroll 2
        for (int j = 0; j < (K - 1) / 2; j++) {
            const uint32_t *b = pt + ((pr + j) * tw + S * ox) * 16;
#pragma GCC unroll 5
            for (int kx = 0; kx < K; kx++)
#pragma GCC unroll 8
                for (int r = 0; r < DT_DW16_R; r++)
                    acc[r] = _mm512_dpbf16_ps(acc[r], (__m512bh)wp[j * K + kx],
                                              (__m512bh)_mm512_loadu_si512(b + (S * r + kx) * 16));
        }
        const uint32_t *b = pt + (lr * tw + S * ox) * 16;
#pragma GCC unroll 5
        for (int kx = 0; kx < K; kx++)
#pragma GCC unroll 8
            for (int r = 0; r < DT_DW16_R; r++) {
                __m512i v = _mm512_loadu_si512(b + (S * r + kx) * 16);
                v = ODD ? _mm512_and_si512(v, himask) : _mm512_slli_epi32(v, 16);
                acc[r] = _mm512_fmadd_ps(wl[kx], _mm512_castsi512_ps(v), acc[r]);
            }
#pragma GCC unroll 8
        for (int r = 0; r < DT_DW16_R; r++) _mm512_storeu_ps(o + (ox + r) * 16, acc[r]);
    }
}

static inline __attribute__((always_inline)) DT_DW16B void
dt_dw16b_compute(const uint32_t *pt, int64_t tw, const dt_dw16b_weights *w, __m512 bias, float *ot, int64_t oh,
                 int64_t vw, const int K, const int S)
{
    for (int64_t oy = 0; oy < oh; oy++) {
        int64_t iy = S * oy;   /* the output row's first input row (padded) */
        if (S == 1 && (oy & 1))
            dt_dw16b_row(pt, tw, w->po, w->lo, bias, ot + oy * vw * 16, vw, (iy + 1) / 2, (iy - 1) / 2, K, S, true);
        else
            dt_dw16b_row(pt, tw, w->pe, w->le, bias, ot + oy * vw * 16, vw, iy / 2, (iy + K - 1) / 2, K, S, false);
    }
}

typedef void (*dt_dw16b_fn)(const uint32_t *, int64_t, const dt_dw16b_weights *, __m512, float *, int64_t, int64_t);

#define DT_DW16B_FN(K, S)                                                                                       \
    DT_DW16B static void dt_dw16b_compute_##K##S(const uint32_t *pt, int64_t tw, const dt_dw16b_weights *w,      \
                                                 __m512 bias, float *ot, int64_t oh, int64_t vw)               \
    {                                                                                                           \
        dt_dw16b_compute(pt, tw, w, bias, ot, oh, vw, K, S);                                                    \
    }
DT_DW16B_FN(5, 1)
DT_DW16B_FN(5, 2)

typedef struct dt_dw16_job {
    const dt_conv_geom *g;
    const dt_conv_args *a;
    dt_dw16_layout l;
    dt_dw16_fn compute;
    dt_dw16b_fn compute_bf16;   /* the bfloat16 path's (NULL: float32) */
    char *scratch;              /* thread t's at t * l.per_thread */
    int64_t blocks;             /* full 16-channel blocks per image */
    bool epi_in_store;
} dt_dw16_job;

/* *p, then *p moved on by `step` floats. The 16 rows of a transpose are reached by walking a
 * pointer: the empty asm keeps GCC from precomputing the 16 offsets, which do not fit in
 * registers and were reloaded from the stack for every access (a third of the block's time). */
static inline const float *dt_dw16_walk(const float **p, int64_t step)
{
    const float *q = *p;
    *p = q + step;
    __asm__("" : "+r"(*p));
    return q;
}

/* The block's 16 planes of image b (xstep floats apart) into the tile's interior, 16 pixels
 * at a time (the last 16 moved back to end at the last pixel: the same values again). The
 * borders stay zero: the caller zeroed the tile, and every block writes the same interior. */
static inline __attribute__((always_inline, target("avx512f"))) void
dt_dw16_tile_in(const dt_conv_geom *g, const dt_dw16_layout *l, const float *x, int64_t xstep, float *tile)
{
    int64_t iw = g->in[1], ipx = g->in[0] * iw;
    __mmask16 m = ipx >= 16 ? 0xffff : (__mmask16)((1u << ipx) - 1);
    __m512 r[16];
    for (int64_t p0 = 0; p0 < ipx; p0 += 16) {
        int64_t q0 = p0 + 16 <= ipx ? p0 : ipx >= 16 ? ipx - 16 : 0, n = ipx < 16 ? ipx : 16;
        const float *xp = x + q0;
#pragma GCC unroll 16
        for (int c = 0; c < 16; c++) r[c] = _mm512_maskz_loadu_ps(m, dt_dw16_walk(&xp, xstep));
        dt_dw16_transpose(r);
        int64_t iy = q0 / iw, ix = q0 % iw;
        for (int64_t i = 0; i < n; i++) {
            _mm512_storeu_ps(tile + ((iy + g->pb[0]) * l->tw + ix + g->pb[1]) * 16, r[i]);
            if (++ix == iw) ix = 0, iy++;
        }
    }
}

/* The outputs (q order in ot) back to the block's 16 planes y (ystep floats apart, the
 * residual's likewise), 16 pixels at a time (the last 16 moved back as above), the epilogue
 * in lanes before the store (act NONE, res NULL: none). */
static inline __attribute__((always_inline, target("avx512f,fma"))) void
dt_dw16_tile_out(const dt_conv_geom *g, const dt_dw16_layout *l, const float *ot, dt_act act, __m512 p0v, __m512 p1v,
                 const float *res, float *y, int64_t ystep)
{
    int64_t ow = g->out[1], opx = g->out[0] * ow;
    __mmask16 m = opx >= 16 ? 0xffff : (__mmask16)((1u << opx) - 1);
    __m512 r[16];
    for (int64_t p0 = 0; p0 < opx; p0 += 16) {
        int64_t q0 = p0 + 16 <= opx ? p0 : opx >= 16 ? opx - 16 : 0;
        int64_t oy = q0 / ow, ox = q0 % ow;
        const float *rp = res ? res + q0 : NULL;
        float *yp = y + q0;
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            /* pixels past the last (fewer than 16 in all) repeat it */
            r[i] = _mm512_loadu_ps(ot + (oy * l->vw + ox) * 16);
            if (q0 + i + 1 < opx && ++ox == ow) ox = 0, oy++;
        }
        dt_dw16_transpose(r);
#pragma GCC unroll 16
        for (int c = 0; c < 16; c++) {
            dt_dw_epi(&r[c], 1, act, p0v, p1v, res ? dt_dw16_walk(&rp, ystep) : NULL, 0, m);
            _mm512_mask_storeu_ps((float *)dt_dw16_walk((const float **)&yp, ystep), m, r[c]);
        }
    }
}

/* Channels [c0, c0 + 16) of every image: the weights transposed once for all of them. */
__attribute__((target("avx512f,fma"))) static void dt_dw16_block(const dt_dw16_job *j, int64_t c0, float *tile,
                                                                  float *ot, uint32_t *pt)
{
    const dt_conv_geom *g = j->g;
    const dt_conv_args *a = j->a;
    int64_t ipx = g->in[0] * g->in[1], opx = g->out[0] * g->out[1], kk = g->k[0] * g->k[1];
    /* Tap t's weights of the 16 channels, lane l = w[(c0 + l) * kk + t]. */
    __m512 wv[32], r[16];
    for (int64_t t0 = 0; t0 < kk; t0 += 16) {
        int64_t n = kk - t0 < 16 ? kk - t0 : 16;
        __mmask16 m = (__mmask16)((1u << n) - 1);
        const float *wp = a->w + c0 * kk + t0;
#pragma GCC unroll 16
        for (int c = 0; c < 16; c++) r[c] = _mm512_maskz_loadu_ps(m, dt_dw16_walk(&wp, kk));
        dt_dw16_transpose(r);
        for (int64_t t = 0; t < n; t++) wv[t0 + t] = r[t];
    }
    dt_dw16b_weights wb;
    if (j->compute_bf16) dt_dw16b_weights_of(wv, (int)g->k[0], &wb);
    __m512 bias = a->bias ? _mm512_loadu_ps(a->bias + c0) : _mm512_setzero_ps();
    const dt_epilogue *e = a->epi;
    dt_act act = j->epi_in_store ? e->act : DT_ACT_NONE;
    __m512 p0 = _mm512_set1_ps(j->epi_in_store ? e->p0 : 0.0f), p1 = _mm512_set1_ps(j->epi_in_store ? e->p1 : 0.0f);
    for (int64_t b = 0; b < g->batch; b++) {
        int64_t plane0 = b * g->c + c0, yplane = a->y_cs ? c0 * a->y_cs + b : plane0;
        int64_t ystep = (a->y_cs ? a->y_cs : 1) * opx;    /* conv.h: y_cs */
        int64_t xplane = a->x_cs ? c0 * a->x_cs + b : plane0;
        dt_dw16_tile_in(g, &j->l, a->x + xplane * ipx, (a->x_cs ? a->x_cs : 1) * ipx, tile);
        if (j->compute_bf16) {
            dt_dw16_pair_tile(tile, j->l.th, j->l.tw, pt);
            j->compute_bf16(pt, j->l.tw, &wb, bias, ot, g->out[0], j->l.vw);
        } else {
            j->compute(tile, j->l.tw, wv, bias, ot, g->out[0], j->l.vw);
        }
        float *y = a->y + yplane * opx;
        const float *res = e && e->res ? e->res + yplane * opx : NULL;
        dt_dw16_tile_out(g, &j->l, ot, act, p0, p1, j->epi_in_store ? res : NULL, y, ystep);
        if (e && !j->epi_in_store)
            for (int c = 0; c < 16; c++) dt_epilogue_apply(e, y + c * ystep, res ? res + c * ystep : NULL, opx);
        for (int c = 0; a->pool && c < 16; c++)
            a->pool[plane0 + c] = dt_cpu_pool_plane(y + c * ystep, g->out[0], g->out[1], a->pool_rows);
    }
}

/* The channels of image b past the last full block: the row kernels, on this thread. */
static void dt_dw16_tail(const dt_dw16_job *j, int64_t b, void *scratch)
{
    const dt_conv_geom *g = j->g;
    const dt_conv_args *a = j->a;
    int64_t c0 = j->blocks * 16, plane0 = b * g->c + c0, opx = g->out[0] * g->out[1], kk = g->k[0] * g->k[1];
    int64_t xplane = a->x_cs ? c0 * a->x_cs + b : plane0, yplane = a->y_cs ? c0 * a->y_cs + b : plane0;
    dt_conv_geom gt = *g;
    gt.batch = 1;
    gt.c = gt.m = gt.group = g->c - c0;
    dt_epilogue e;
    dt_conv_args at = {.x = a->x + xplane * g->in[0] * g->in[1], .x_cs = a->x_cs, .w = a->w + c0 * kk,
                       .bias = a->bias ? a->bias + c0 : NULL, .y = a->y + yplane * opx, .y_cs = a->y_cs,
                       .pool = a->pool ? a->pool + plane0 : NULL, .pool_rows = a->pool_rows, .scratch = scratch};
    if (a->epi) {
        e = *a->epi;
        if (e.res) e.res += yplane * opx;
        at.epi = &e;
    }
    dt_cpu_conv_depthwise(&gt, &at, NULL);  /* fails only without scratch */
}

static void dt_dw16_part(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_dw16_job *j = arg;
    char *s = j->scratch + (size_t)tid * j->l.per_thread;
    float *tile = (float *)(void *)s;
    for (int64_t u = begin; u < end; u++) {
        if (u < j->blocks)
            dt_dw16_block(j, u * 16, tile, (float *)(void *)(s + j->l.tile),
                          (uint32_t *)(void *)(s + j->l.tile + j->l.out + j->l.tail));
        else
            for (int64_t b = 0; b < j->g->batch; b++) dt_dw16_tail(j, b, s + j->l.tile + j->l.out);
    }
}

ductile_status dt_cpu_conv_dw16(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || g->c < 16) return dt_cpu_conv_run_algo(g, a, DT_CONV_DEPTHWISE, pool);
    if (!a->scratch) return dt_cpu_conv_run_algo(g, a, DT_CONV_DW16, pool); /* allocates it */
    if (!dt_cpu_dw16_applies(g))
        return dt_fail(DUCTILE_ERR_INTERNAL, "the 16-channel depthwise kernel does not apply to this convolution");
    dt_dw16_job j = {.g = g, .a = a, .scratch = a->scratch};
    DT_TRY(dt_dw16_layout_of(g, &j.l));
    int threads = dt_pool_threads(pool);
    memset(j.scratch, 0, j.l.per_thread * (size_t)threads);
    static const dt_dw16_fn fns[2][2][2] = {
        {{dt_dw16_compute_311, dt_dw16_compute_312}, {dt_dw16_compute_321, dt_dw16_compute_322}},
        {{dt_dw16_compute_511, dt_dw16_compute_512}, {dt_dw16_compute_521, dt_dw16_compute_522}}};
    j.compute = fns[g->k[0] == 5][g->s[0] - 1][g->d[0] - 1];
    if (a->dw_bf16 && dt_dw16b_geometry(g) && dt_cpu_has_bf16())
        j.compute_bf16 = g->s[0] == 1 ? dt_dw16b_compute_51 : dt_dw16b_compute_52;
    j.epi_in_store = a->epi && dt_dw_epi_in_lanes(a->epi);
    j.blocks = g->c / 16;
    dt_parallel_for(pool, j.blocks + (g->c % 16 != 0), 1, dt_dw16_part, &j);
    return DUCTILE_OK;
}
