/* What the few-input-channel direct convolution's float32 passes (conv_smallc.c) and its
 * bfloat16 ones (conv_smallc_bf16.c) share: the weight table's blocks, the bands of output
 * rows a part computes, the job, and a pass's store (bias in its accumulators, the epilogue
 * in lanes, NCHW rows). Internal to the CPU backend. */
#ifndef DT_CPU_CONV_SMALLC_H
#define DT_CPU_CONV_SMALLC_H

#include "backend/cpu/conv.h"
#include "backend/cpu/conv_dw.h"

#include <immintrin.h>
#include <stdint.h>

/* Output channels per block of the weight table: 16 accumulators beside the taps. */
enum { DT_SMALLC_MB = 16, DT_SMALLC_MAX_C = 4 };
/* A pass over a band's rows: output channels x vectors of 16 outputs. */
enum { DT_SMALLC_CH = 4, DT_SMALLC_NV = 4 };
/* Output rows per part (a band): 28 per 224x224 image and channel block, enough to share. */
enum { DT_SMALLC_BAND = 8 };

/* The weight table: per block of 16 output channels and tap, the 16 channels' weights (0
 * past M): float32 taps k = (c, ky, kx), or bfloat16 pairs of taps (kx, kx + 1). */
static inline int64_t dt_smallc_blocks(const dt_conv_geom *g) { return (g->m + DT_SMALLC_MB - 1) / DT_SMALLC_MB; }

/* The float32 table's bytes, which the bfloat16 one (pairs of taps, 4 bytes a pair) never
 * passes. */
static inline size_t dt_smallc_table_bytes(const dt_conv_geom *g)
{
    return ((size_t)(dt_smallc_blocks(g) * g->c * g->k[0] * g->k[1] * DT_SMALLC_MB) * sizeof(float) + 63) &
           ~(size_t)63;
}

/* The input rows a band of output rows reads, per channel (at most). */
static inline int64_t dt_smallc_band_rows(const dt_conv_geom *g) { return g->s[0] * (DT_SMALLC_BAND - 1) + g->k[0]; }

typedef struct dt_smallc_job {
    const dt_conv_geom *g;
    const dt_conv_args *a;
    const float *wt, *zero;
    float *split;           /* the threads' bands of split rows */
    int64_t half;           /* float32: dt_smallc_half; bfloat16: a pair row's dwords */
    int64_t band;           /* floats of a thread's band: C x dt_smallc_band_rows x a row */
    /* A part is a band of rows of every channel: the band a spatially split consumer
     * (MaxPool's bands, Winograd's blocks) reads on the same core. */
    int64_t blocks, row_parts;
    bool epi_in_store;
    /* The output's lines of the next row prefetched for writing (DT_SMALLC_FAR_BYTES). */
    bool pf_out;
} dt_smallc_job;

/* Outputs of at least this many bytes (the whole batch's) come from memory: each pass over
 * split rows prefetches for writing (PREFETCHW: the line owned before the stores reach it)
 * the lines of its channels' next output row. mobilenet_v2's stem, 1 thread, layer minima: at
 * batch 8 (12.8 MB) 1.67-1.71 -> 1.58-1.60 ms (block 1, which reads it, 1.19-1.24 ->
 * 1.08-1.18); at batch 1 and 2 (1.6 and 3.2 MB, from L3) 0.135 -> 0.145 and 0.287 -> 0.307. */
#define DT_SMALLC_FAR_BYTES ((size_t)8 << 20)

static inline void dt_smallc_prefetchw(const float *p) { __asm__ volatile("prefetchw %0" ::"m"(*(const char *)p)); }

/* Before a pass of channels hb * CH.. of block mb at output row oy, column ox: the bias into
 * its accumulators and, for outputs from memory, the next row's lines prefetched. */
static inline __attribute__((always_inline, target("avx512f"))) void
dt_smallc_pass_start(const dt_smallc_job *j, __m512 acc[DT_SMALLC_NV][DT_SMALLC_CH], const float *bias, int64_t b,
                     int64_t mb, int64_t hb, int64_t oy, int64_t ox)
{
    enum { CH = DT_SMALLC_CH, NV = DT_SMALLC_NV };
    const dt_conv_geom *g = j->g;
    int64_t m0 = mb * DT_SMALLC_MB, nm = g->m - m0 < DT_SMALLC_MB ? g->m - m0 : DT_SMALLC_MB;
    int64_t oh = g->out[0], ow = g->out[1], opx = oh * ow;
#pragma GCC unroll 8
    for (int i = 0; i < CH; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[v][i] = _mm512_set1_ps(bias[hb * CH + i]);
    if (j->pf_out && oy + 1 < oh)
        for (int i = 0; i < CH && hb * CH + i < nm; i++)
            for (int v = 0; v < NV && ox + 16 * v < ow; v++)
                dt_smallc_prefetchw(j->a->y + (b * g->m + m0 + hb * CH + i) * opx + (oy + 1) * ow + ox + 16 * v);
}

/* A pass's outputs: the epilogue in lanes (or after the store where it has no lane form),
 * the rows stored, the last vector of a row masked. */
static inline __attribute__((always_inline, target("avx512f,fma"))) void
dt_smallc_pass_store(const dt_smallc_job *j, __m512 acc[DT_SMALLC_NV][DT_SMALLC_CH], int64_t b, int64_t mb,
                     int64_t hb, int64_t oy, int64_t ox)
{
    enum { CH = DT_SMALLC_CH, NV = DT_SMALLC_NV };
    const dt_conv_geom *g = j->g;
    const dt_conv_args *a = j->a;
    const dt_epilogue *e = a->epi;
    dt_act act = j->epi_in_store ? e->act : DT_ACT_NONE;
    __m512 p0 = _mm512_set1_ps(j->epi_in_store ? e->p0 : 0.0f), p1 = _mm512_set1_ps(j->epi_in_store ? e->p1 : 0.0f);
    int64_t m0 = mb * DT_SMALLC_MB, nm = g->m - m0 < DT_SMALLC_MB ? g->m - m0 : DT_SMALLC_MB;
    int64_t ow = g->out[1], opx = g->out[0] * ow;
    int64_t n8 = nm - hb * CH < CH ? nm - hb * CH : CH;
    float *y = a->y + (b * g->m + m0 + hb * CH) * opx;
    const float *res = e && e->res ? e->res + (b * g->m + m0 + hb * CH) * opx : NULL;
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
        int64_t xo = ox + 16 * v, rem = ow - xo;
        if (rem <= 0) break;
        __mmask16 m = rem >= 16 ? 0xffff : (__mmask16)((1u << rem) - 1);
        int64_t off = oy * ow + xo;
        const float *r = j->epi_in_store && res ? res + off : NULL;
        if (n8 == CH) {
            dt_dw_epi(acc[v], CH, act, p0, p1, r, opx, m);
#pragma GCC unroll 8
            for (int i = 0; i < CH; i++) _mm512_mask_storeu_ps(y + i * opx + off, m, acc[v][i]);
        } else {
            /* a copy indexed by a count known only here, so that acc stays in registers above */
            __m512 o[CH];
#pragma GCC unroll 8
            for (int i = 0; i < CH; i++) o[i] = acc[v][i];
            for (int64_t i = 0; i < n8; i++) {
                dt_dw_epi(&o[i], 1, act, p0, p1, r ? r + i * opx : NULL, 0, m);
                _mm512_mask_storeu_ps(y + i * opx + off, m, o[i]);
            }
        }
        if (e && !j->epi_in_store)
            for (int64_t i = 0; i < n8; i++)
                dt_epilogue_apply(e, y + i * opx + off, res ? res + i * opx + off : NULL, rem < 16 ? rem : 16);
    }
}

/* The part of a band: image b, output rows [oy0, oy1), the input rows [iy0, iy1) they read
 * (clipped to the image). */
static inline void dt_smallc_band(const dt_smallc_job *j, int64_t u, int64_t *b, int64_t *oy0, int64_t *oy1,
                                  int64_t *iy0, int64_t *iy1)
{
    const dt_conv_geom *g = j->g;
    int64_t S = g->s[0];
    *b = u / j->row_parts;
    *oy0 = u % j->row_parts * DT_SMALLC_BAND;
    *oy1 = *oy0 + DT_SMALLC_BAND < g->out[0] ? *oy0 + DT_SMALLC_BAND : g->out[0];
    *iy0 = S * *oy0 - g->pb[0];
    *iy1 = S * (*oy1 - 1) - g->pb[0] + g->k[0];
    if (*iy0 < 0) *iy0 = 0;
    if (*iy1 > g->in[0]) *iy1 = g->in[0];
}

/* The bias of block mb's 16 channels (0 past M). */
static inline void dt_smallc_bias(const dt_smallc_job *j, int64_t mb, float bias[DT_SMALLC_MB])
{
    int64_t m0 = mb * DT_SMALLC_MB;
    for (int i = 0; i < DT_SMALLC_MB; i++)
        bias[i] = j->a->bias && m0 + i < j->g->m ? j->a->bias[m0 + i] : 0.0f;
}

/* The bfloat16 passes (conv_smallc_bf16.c), on weights in a->w_bf16, in the scratch of
 * dt_cpu_conv_smallc_scratch: the dwords of a row of pairs (its rows are at most that). */
int64_t dt_smallc_bf16_row(const dt_conv_geom *g);
ductile_status dt_cpu_conv_smallc_bf16(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool);

#endif
