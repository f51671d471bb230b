/* Direct 3x3 stride-2 convolution in bfloat16 (vdpbf16ps, float32 accumulation), output pixels
 * in the lanes as the GEMM has them: per output row, the three input rows it reads are
 * converted once into bfloat16 pairs of channels (2c, 2c + 1), split by column parity (ix even
 * or odd), so that tap (ky, kx) of 16 consecutive output pixels is one 64-byte load from the
 * pair row of parity kx & 1 at column ox + kx / 2. A tile is 8 output channels x 48 pixels (24
 * accumulators): per channel pair and tap, 3 loads of B, 8 broadcasts of the weight pairs and 24
 * dot products, as the GEMM's 8 x 48 tile; the output rows are stored as they are, with bias,
 * residual and activation in lanes (conv_dw.h), no transposition.
 *
 * The padded conv (conv_padded.c) instead copies the image into its stride phases in float32,
 * then converts each panel's rows to bfloat16 pairs of taps as the GEMM reads them: on yolo's 16
 * -> 32 channels at 320x320 -> 160x160 the phase copy, the panel conversion and the product
 * each took about a third of the layer (bench_conv_layers BF16=1). Here the conversion of a row
 * band stays in L1 (3 rows x C x (OW + 16) pairs: ~31 KB for each of yolo's stride-2 layers) and
 * nothing else is copied.
 *
 * Weights: their own layout (dt_cpu_conv_s2_bf16_pack_weights), pairs of input channels, not
 * the GEMM's pairs of consecutive (c, ky, kx) taps. Each output: the sum over the channel pairs
 * in order of each tap's pair product, from zero, + bias, then the epilogue; taps outside the
 * image multiply zeros. Rows of the output are split over the threads, as conv_s2.c's. */
#include "backend/cpu/conv.h"
#include "backend/cpu/conv_dw.h"
#include "backend/cpu/gemm.h"
#include "core/alloc.h"
#include "core/status.h"

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define DT_S2B __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma")))

bool dt_cpu_conv_s2_bf16_applies(const dt_conv_geom *g)
{
    return g->spatial == 2 && g->group == 1 && g->k[0] == 3 && g->k[1] == 3 && g->s[0] == 2 && g->s[1] == 2 &&
           g->d[0] == 1 && g->d[1] == 1 && g->m > 0 && g->c > 0;
}

static int64_t dt_s2b_pairs(const dt_conv_geom *g) { return (g->c + 1) / 2; }

/* Output rows a group converts and computes together (1..8): rows narrower than a tile share
 * its vectors, output row r of the group at pixel r (OW + 1) + ox of a "virtual row" (the
 * extra column: the taps kx = 2 of the row's last pixel). The count that idles the fewest
 * lanes, a tile of one or two vectors priced as 1.4 and 2.2 of three (fewer accumulators
 * for the same loads), in at most two tiles; ties to the fewer rows. yolo's 40x40 -> 20x20:
 * 3 rows, 60 of 64 lanes (one row: 20 of 32); resnet50's 14x14 -> 7x7: 6 rows, 42 of 48, and
 * its weights (4.7 MB) streamed for 2 groups instead of 7 rows (1.49 -> 0.65 ms, 1 thread). */
static int64_t dt_s2b_group(const dt_conv_geom *g)
{
    int64_t ow = g->out[1], best = 1;
    double best_score = 0;
    /* From 24 pixels a row, one: the ring's reuse of a converted row is worth more (resnet50's
     * 56x56 -> 28x28, 128 channels: 0.53 ms, 0.56 in groups of 3) */
    if (ow >= 24) return 1;
    for (int64_t r = 1; r <= 8 && r <= g->out[0] && (r == 1 || r * (ow + 1) <= 96); r++) {
        int64_t vecs = (r * (ow + 1) + 15) / 16;
        double cost = 3.0 * (double)(vecs / 3) + (vecs % 3 == 2 ? 2.2 : vecs % 3 == 1 ? 1.4 : 0.0);
        double score = (double)(r * ow) / cost;
        if (score > best_score * 1.0001) best = r, best_score = score;
    }
    return best;
}

/* A pair row's stride (pairs) for groups of R rows (dt_s2b_group). One row a group: past the
 * last vector a tile may read, the conversion's extent too (a longer stride measured 4-5%
 * slower on yolo's 160x160 -> 80x80). More: the group's virtual row, past the last vector a
 * tile may read (16 more) and the last row's 16-pair conversion steps (16 more). */
static int64_t dt_s2b_ws(const dt_conv_geom *g, int64_t R)
{
    return R == 1 ? (g->out[1] + 15) / 16 * 16 + 16 : (R * (g->out[1] + 1) + 15) / 16 * 16 + 32;
}

int64_t dt_cpu_conv_s2_bf16_floats(const dt_conv_geom *g)
{
    /* strips of 8 output channels, per channel pair 9 taps of 8 pairs (a pair: 4 bytes) */
    return (g->m + 7) / 8 * dt_s2b_pairs(g) * 9 * 8;
}

void dt_cpu_conv_s2_bf16_pack_weights(const dt_conv_geom *g, const float *w, uint16_t *dst)
{
    int64_t C = g->c, M = g->m, cp2 = dt_s2b_pairs(g);
    for (int64_t s = 0; s < (M + 7) / 8; s++)
        for (int64_t cp = 0; cp < cp2; cp++)
            for (int t = 0; t < 9; t++)
                for (int i = 0; i < 8; i++)
                    for (int j = 0; j < 2; j++) {
                        int64_t m = 8 * s + i, c = 2 * cp + j;
                        *dst++ = m < M && c < C ? dt_bf16_round(w[(m * C + c) * 9 + t]) : 0;
                    }
}

size_t dt_cpu_conv_s2_bf16_scratch(const dt_conv_geom *g, int threads)
{
    /* per thread: 3 input rows x channel pairs x 2 parities x ws pairs */
    size_t one = ((size_t)(3 * 2 * dt_s2b_pairs(g) * dt_s2b_ws(g, dt_s2b_group(g))) * 4 + 63) & ~(size_t)63;
    return one * (size_t)(threads > 0 ? threads : 1);
}

/* The pair rows of input row iy into slot `slot` of buf at pair column `at` (parity p of pair
 * cp at buf + ((cp * 3 + slot) * 2 + p) * ws + at; ws: dt_s2b_ws, found once by the caller):
 * pair column at + j of parity p holds input column 2j + p - pl of channels 2cp and 2cp + 1,
 * zero outside the image (and past the last channel), for j in [0, n) and up to 15 more (a
 * group's rows are converted in order, each overwriting the previous one's extra). */
static DT_S2B void dt_s2b_convert(const dt_conv_geom *g, const float *x, int64_t iy, int slot, int64_t at, int64_t n,
                                  int64_t ws, uint32_t *buf)
{
    int64_t C = g->c, H = g->in[0], W = g->in[1], pl = g->pb[1];
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (int64_t cp = 0; cp < dt_s2b_pairs(g); cp++) {
        uint32_t *r0 = buf + ((cp * 3 + slot) * 2) * ws + at, *r1 = r0 + ws;
        if (iy < 0 || iy >= H) {
            size_t bytes = sizeof(uint32_t) * (size_t)((n + 15) / 16 * 16);
            memset(r0, 0, bytes);
            memset(r1, 0, bytes);
            continue;
        }
        const float *x0 = x + (2 * cp * H + iy) * W;
        const float *x1 = 2 * cp + 1 < C ? x0 + H * W : NULL;
        for (int64_t j = 0; j < n; j += 16) {
            int64_t s = 2 * j - pl;
            __mmask16 m0 = dt_dw_row_mask(s, W), m1 = dt_dw_row_mask(s + 16, W);
            /* plain loads where every lane is in the row: a masked load that misses the caches
             * is slow on Zen 5 even with every lane set (DESIGN.md, "Masked loads") */
            __m512 a0 = dt_mload(m0, x0 + s), a1 = dt_mload(m1, x0 + s + 16);
            __m512 b0 = x1 ? dt_mload(m0, x1 + s) : _mm512_setzero_ps();
            __m512 b1 = x1 ? dt_mload(m1, x1 + s + 16) : _mm512_setzero_ps();
            _mm512_storeu_si512(r0 + j, dt_bf16_pairs(_mm512_permutex2var_ps(a0, even, a1),
                                                      _mm512_permutex2var_ps(b0, even, b1)));
            _mm512_storeu_si512(r1 + j, dt_bf16_pairs(_mm512_permutex2var_ps(a0, odd, a1),
                                                      _mm512_permutex2var_ps(b0, odd, b1)));
        }
    }
}

/* One tile: output channels [m0, m0 + mr) (weights wa: their strip), pixels [ox0, ox0 + 16 nv)
 * of the row whose pair rows are buf, into acc. */
static inline __attribute__((always_inline)) DT_S2B void
dt_s2b_body(const int mr, const int nv, const uint32_t *buf, const int64_t *so, int64_t ws, int64_t cp2,
            const uint32_t *wa, int64_t ox0, __m512 out[8][3])
{
    /* a local set: stored to `out` once at the end (__m512 may alias the loads of B) */
    __m512 acc[8][3];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) acc[i][v] = _mm512_setzero_ps();
    const uint32_t *bc = buf + ox0;
    const int64_t s0 = so[0], s1 = so[1], s2 = so[2];
    for (int64_t cp = 0; cp < cp2; cp++) {
#pragma GCC unroll 9
        for (int t = 0; t < 9; t++) {
            const uint32_t *bt = bc + (t < 3 ? s0 : t < 6 ? s1 : s2) + (t % 3 & 1) * ws + (t % 3 >> 1);
            __m512bh bv[3];
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) bv[v] = (__m512bh)_mm512_loadu_si512(bt + 16 * v);
#pragma GCC unroll 8
            for (int i = 0; i < mr; i++) {
                __m512bh ai = (__m512bh)_mm512_set1_epi32((int)wa[i]);
#pragma GCC unroll 3
                for (int v = 0; v < nv; v++) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], ai, bv[v]);
            }
            wa += 8;
        }
        bc += 6 * ws;
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) out[i][v] = acc[i][v];
}

/* The 8-channel tiles, a function each (as gemm_bf16.c's dt_gemm_bf16_tile8: inlined beside the
 * narrower bodies, GCC may keep accumulators on the stack). */
#define DT_S2B_TILE(NV)                                                                                         \
    static __attribute__((noinline)) DT_S2B void dt_s2b_tile8_##NV(const uint32_t *buf, const int64_t *so,       \
                                                                 int64_t ws, int64_t cp2, const uint32_t *wa,       \
                                                                 int64_t ox0, __m512 acc[8][3])                     \
    {                                                                                                           \
        dt_s2b_body(8, NV, buf, so, ws, cp2, wa, ox0, acc);                                                     \
    }
DT_S2B_TILE(1)
DT_S2B_TILE(2)
DT_S2B_TILE(3)

/* Tiles of fewer than 8 channels (the last strip's): 4 rows' bodies where they cover it. */
static __attribute__((noinline)) DT_S2B void dt_s2b_tile_rows(int mr, int nv, const uint32_t *buf, const int64_t *so,
                                                              int64_t ws, int64_t cp2, const uint32_t *wa, int64_t ox0,
                                                              __m512 acc[8][3])
{
    if (mr > 4)
        nv == 3 ? dt_s2b_body(8, 3, buf, so, ws, cp2, wa, ox0, acc)
        : nv == 2 ? dt_s2b_body(8, 2, buf, so, ws, cp2, wa, ox0, acc)
                  : dt_s2b_body(8, 1, buf, so, ws, cp2, wa, ox0, acc);
    else
        nv == 3 ? dt_s2b_body(4, 3, buf, so, ws, cp2, wa, ox0, acc)
        : nv == 2 ? dt_s2b_body(4, 2, buf, so, ws, cp2, wa, ox0, acc)
                  : dt_s2b_body(4, 1, buf, so, ws, cp2, wa, ox0, acc);
}

/* The lanes of a vector whose lane 0 is pixel p of a row of ow pixels that lie in the row. */
static inline __mmask16 dt_s2b_lanes(int64_t p, int64_t ow)
{
    int64_t lo = p < 0 ? -p : 0, hi = ow - p < 16 ? ow - p : 16;
    if (lo >= hi) return 0;
    return (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

typedef struct dt_s2b_job {
    const dt_conv_geom *g;
    const dt_conv_args *a;
    size_t buf_bytes;   /* one thread's pair rows */
} dt_s2b_job;

/* Groups [g0, g1) of the batch's output rows (image q / groups, rows from q % groups * R),
 * every channel. */
static DT_S2B void dt_s2b_rows(void *arg, int64_t g0, int64_t g1, int tid)
{
    const dt_s2b_job *j = arg;
    const dt_conv_geom *g = j->g;
    const dt_conv_args *a = j->a;
    const dt_epilogue *e = a->epi;
    int64_t C = g->c, M = g->m, H = g->in[0], W = g->in[1], OH = g->out[0], OW = g->out[1];
    int64_t R = dt_s2b_group(g), ws = dt_s2b_ws(g, R), cp2 = dt_s2b_pairs(g), plane = OH * OW, wp = OW + 1;
    int64_t groups = (OH + R - 1) / R;
    uint32_t *buf = (uint32_t *)(void *)((char *)a->scratch + (size_t)tid * j->buf_bytes);
    const uint32_t *w = (const uint32_t *)(const void *)a->w_s2_bf16;
    bool lean = e && (e->act == DT_ACT_SIGMOID_LEAN || e->act == DT_ACT_SILU_LEAN);
    bool lanes = e && dt_dw_epi_in_lanes(e), after = e && !lanes && (e->act != DT_ACT_NONE || e->res);
    __m512 p0 = _mm512_set1_ps(e ? e->p0 : 0.0f), p1 = _mm512_set1_ps(e ? e->p1 : 0.0f);
    __m512 acc[8][3];
    /* One row a group: a ring of three converted input rows, which row each slot holds
     * (image b's row iy: b * H + iy; -2: zeros, a row outside the image): consecutive output
     * rows share one. More: slot ky holds the group's rows' tap row ky, in order. */
    int64_t held[3] = {-1, -1, -1}, so[3];
    for (int64_t gi = g0; gi < g1; gi++) {
        int64_t b = gi / groups, oy0 = gi % groups * R, rows = OH - oy0 < R ? OH - oy0 : R;
        const float *x = a->x + b * C * H * W;
        for (int ky = 0; ky < 3; ky++) {
            if (R == 1) {
                int64_t iy = 2 * oy0 + ky - g->pb[0], key = iy < 0 || iy >= H ? -2 : b * H + iy;
                int slot = (int)(((iy % 3) + 3) % 3);
                if (held[slot] != key) dt_s2b_convert(g, x, iy, slot, 0, ws, ws, buf);
                held[slot] = key;
                so[ky] = slot * 2 * ws;
            } else {
                for (int64_t r = 0; r < rows; r++)
                    dt_s2b_convert(g, x, 2 * (oy0 + r) + ky - g->pb[0], ky, r * wp, wp + 16, ws, buf);
                so[ky] = ky * 2 * ws;
            }
        }
        /* the group's pixels: row r's ox at r wp + ox (the last row's extra column left out) */
        int64_t span = (rows - 1) * wp + OW;
        for (int64_t m0 = 0; m0 < M; m0 += 8) {
            int mr = M - m0 < 8 ? (int)(M - m0) : 8;
            const uint32_t *wa = w + m0 / 8 * cp2 * 72;
            for (int64_t q0 = 0; q0 < span; q0 += 48) {
                int64_t n = span - q0 < 48 ? span - q0 : 48;
                int nv = (int)((n + 15) / 16);
                if (mr == 8)
                    nv == 3 ? dt_s2b_tile8_3(buf, so, ws, cp2, wa, q0, acc)
                    : nv == 2 ? dt_s2b_tile8_2(buf, so, ws, cp2, wa, q0, acc)
                              : dt_s2b_tile8_1(buf, so, ws, cp2, wa, q0, acc);
                else
                    dt_s2b_tile_rows(mr, nv, buf, so, ws, cp2, wa, q0, acc);
                /* Each vector's lanes by output row: row r takes lanes [lo, hi) at its pixel
                 * q0 + 16 v + lane - r wp (the extra columns between rows are no one's). */
                int64_t r_lo[3] = {0, 0, 0}, r_hi[3] = {0, 0, 0};
                for (int v = 0; v < nv && R > 1; v++) {
                    int64_t last = (q0 + 16 * v + 15) / wp;
                    r_lo[v] = (q0 + 16 * v) / wp;
                    r_hi[v] = last < rows - 1 ? last : rows - 1;
                }
                /* bias and residual, then the activation over the whole tile at once (the
                 * lean Sigmoid four vectors at a time: a vector alone is one long dependency
                 * chain, 0.18 ms of yolo's 16 -> 32 at 320x320 against 0.08 as a pass) */
                __m512 t[24];
                for (int i = 0; i < mr; i++) {
                    __m512 bias = _mm512_set1_ps(a->bias ? a->bias[m0 + i] : 0.0f);
                    for (int v = 0; v < nv; v++) {
                        t[i * nv + v] = _mm512_add_ps(acc[i][v], bias);
                        if (!(lanes && e->res)) continue;
                        __m512 res = _mm512_setzero_ps();
                        for (int64_t r = r_lo[v]; r <= r_hi[v]; r++) {
                            int64_t p = q0 + 16 * v - r * wp;   /* lane 0's pixel in row r */
                            const float *rr = e->res + ((b * M + m0 + i) * OH + oy0 + r) * OW + p;
                            res = _mm512_mask_loadu_ps(res, dt_s2b_lanes(p, OW), rr);
                        }
                        t[i * nv + v] = _mm512_add_ps(t[i * nv + v], res);
                    }
                }
                int nt = mr * nv, q = 0;
                if (lean) {
                    for (; q + 4 <= nt; q += 4) dt_sigmoid_lean_vecs(t + q, 4, e->act == DT_ACT_SILU_LEAN);
                    for (; q < nt; q++) dt_sigmoid_lean_vecs(t + q, 1, e->act == DT_ACT_SILU_LEAN);
                } else if (lanes) {
                    dt_dw_epi(t, nt, e->act, p0, p1, NULL, 0, 0xffff);
                }
                if (R == 1) {   /* one row: the tile's pixels q0.. of it */
                    for (int i = 0; i < mr; i++) {
                        float *y = a->y + ((b * M + m0 + i) * OH + oy0) * OW + q0;
                        for (int v = 0; v < nv; v++)
                            _mm512_mask_storeu_ps(y + 16 * v, dt_s2b_lanes(q0 + 16 * v, OW), t[i * nv + v]);
                    }
                    continue;
                }
                for (int i = 0; i < mr; i++)
                    for (int v = 0; v < nv; v++)
                        for (int64_t r = r_lo[v]; r <= r_hi[v]; r++) {
                            int64_t p = q0 + 16 * v - r * wp;
                            float *y = a->y + ((b * M + m0 + i) * OH + oy0 + r) * OW + p;
                            _mm512_mask_storeu_ps(y, dt_s2b_lanes(p, OW), t[i * nv + v]);
                        }
            }
        }
        /* activations the lanes do not compute: over the stored rows, as the GEMM's pass */
        for (int64_t m = 0; after && m < M; m++)
            for (int64_t r = 0; r < rows; r++) {
                int64_t off = (b * M + m) * plane + (oy0 + r) * OW;
                dt_epilogue_apply(e, a->y + off, e->res ? e->res + off : NULL, OW);
            }
    }
}

ductile_status dt_cpu_conv_s2_bf16(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool)
{
    if (!a->w_s2_bf16 || !dt_cpu_conv_s2_bf16_applies(g) || !dt_cpu_has_bf16())
        return dt_fail(DUCTILE_ERR_INTERNAL, "the bfloat16 stride-2 conv needs its weights (w_s2_bf16), a 3x3 "
                                             "stride-2 geometry and AVX512-BF16");
    dt_s2b_job j = {g, a, dt_cpu_conv_s2_bf16_scratch(g, 1)};
    int64_t R = dt_s2b_group(g);
    dt_parallel_for(pool, g->batch * ((g->out[0] + R - 1) / R), 1, dt_s2b_rows, &j);
    return DUCTILE_OK;
}
