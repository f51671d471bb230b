/* Winograd F(4x4, 3x3) (winograd.h), in blocks of tiles: a block is a few tile rows (or a
 * part of one wide row) of one image, or several whole images where an image is small. Per block: the input transform writes V[36][C][T], 36
 * GEMMs write O[36][M][T], the output transform writes the block's output rows and runs the
 * epilogue on them while they are in cache. Blocks are split over threads; each is computed
 * the same way whichever thread takes it, so results do not depend on the thread count. With
 * fewer blocks than threads (one image of 28x28 or smaller is a single block) the blocks run
 * in turn and the threads split each block's input pass by channel, its 36 GEMMs by position
 * and its output pass by output channel instead: each value is still computed the same way.
 *
 * DT_CONV_WINOGRAD_BF16 runs the same blocks with the 36 GEMMs in bfloat16 (dt_gemm.A_bf16 on
 * U packed in bfloat16 at build time; the GEMM converts V's rows as it reads them), transforms
 * in float32 as here.
 *
 * Transforms are plain loops over a row of tiles, which the vectorizer turns into AVX-512
 * (a clone picked by CPU feature): input rows are first split by column phase (x mod 4), so
 * that the six values one tile needs along a row are at the same index of six arrays. */
#pragma GCC optimize("O3", "no-math-errno", "no-trapping-math")

#include "backend/cpu/winograd.h"
#include "core/alloc.h"
#include "backend/cpu/gemm.h"
#include "core/checked.h"
#include "core/status.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DT_WINO_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

/* Tiles per block: V and O of a 64-channel block stay ~1 MB each; tile rows wider than
 * DT_WINO_MAX_TX tiles are split; images of fewer than DT_WINO_GROUP tiles are grouped
 * (dt_wino_tiling). */
enum { DT_WINO_TILES = 96, DT_WINO_MAX_TX = 128, DT_WINO_GROUP = 32 };

bool dt_cpu_wino_applies(const dt_conv_geom *g)
{
    return g->spatial == 2 && g->group == 1 && g->k[0] == 3 && g->k[1] == 3 && g->s[0] == 1 &&
           g->s[1] == 1 && g->d[0] == 1 && g->d[1] == 1;
}

int64_t dt_cpu_wino_floats(const dt_conv_geom *g)
{
    return 36 * dt_gemm_packed_a_floats(g->m, g->c);
}

void dt_wino_weights_at(const dt_conv_geom *g, const float *w, const double (*G)[3], int n, int p, float *u)
{
    int64_t M = g->m, C = g->c;
    int i = p / n, j = p % n;
    for (int64_t m = 0; m < M; m++)
        for (int64_t c = 0; c < C; c++) {
            const float *k = w + (m * C + c) * 9;
            double s = 0;
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++) s += G[i][a] * (double)k[a * 3 + b] * G[j][b];
            u[m * C + c] = (float)s;
        }
}

int64_t dt_cpu_wino_bf16_floats(const dt_conv_geom *g)
{
    /* 36 bfloat16 matrices, padded to 64 bytes */
    return (36 * dt_gemm_packed_a_bf16_elems(g->m, g->c) + 31) / 32 * 16;
}

/* The 36 U_p into dst: float32 packed by dt_gemm_pack_a_full, or bfloat16 by
 * dt_gemm_pack_a_bf16 (then zero to dt_cpu_wino_bf16_floats). */
static ductile_status dt_wino_pack(const dt_conv_geom *g, const float *w, bool bf16, void *dst)
{
    static const double G[6][3] = {
        {1.0 / 4, 0, 0},
        {-1.0 / 6, -1.0 / 6, -1.0 / 6},
        {-1.0 / 6, 1.0 / 6, -1.0 / 6},
        {1.0 / 24, 1.0 / 12, 1.0 / 6},
        {1.0 / 24, -1.0 / 12, 1.0 / 6},
        {0, 0, 1},
    };
    int64_t M = g->m, C = g->c, pa = dt_gemm_packed_a_floats(M, C), pe = dt_gemm_packed_a_bf16_elems(M, C);
    /* One position's M x C matrix at a time, then packed: 36 passes over w, but w is small
     * and this runs once per build. */
    float *u = dt_malloc(sizeof(float) * (size_t)(M * C > 0 ? M * C : 1));
    if (!u)
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory transforming %lld x %lld conv weights for Winograd",
                       (long long)M, (long long)C);
    for (int p = 0; p < 36; p++) {
        dt_wino_weights_at(g, w, G, 6, p, u);
        if (bf16)
            dt_gemm_pack_a_bf16(u, C, M, C, (uint16_t *)dst + p * pe);
        else
            dt_gemm_pack_a_full(u, C, false, 1.0f, M, C, (float *)dst + p * pa);
    }
    if (bf16) memset((uint16_t *)dst + 36 * pe, 0, sizeof(uint16_t) * (size_t)(2 * dt_cpu_wino_bf16_floats(g) - 36 * pe));
    dt_free(u);
    return DUCTILE_OK;
}

ductile_status dt_cpu_wino_pack_weights(const dt_conv_geom *g, const float *w, float *dst)
{
    return dt_wino_pack(g, w, false, dst);
}

ductile_status dt_cpu_wino_bf16_pack_weights(const dt_conv_geom *g, const float *w, uint16_t *dst)
{
    return dt_wino_pack(g, w, true, dst);
}

/* ---- transforms ---- */

/* d[j] = row j (j < 6) of flat arrays of n floats; t[i] = (B^T d)[i]. */
DT_WINO_CLONES static void dt_wino_bt(float *restrict t, const float *restrict d, int64_t ld, int64_t n)
{
    const float *d0 = d, *d1 = d + ld, *d2 = d + 2 * ld, *d3 = d + 3 * ld, *d4 = d + 4 * ld, *d5 = d + 5 * ld;
    float *t0 = t, *t1 = t + ld, *t2 = t + 2 * ld, *t3 = t + 3 * ld, *t4 = t + 4 * ld, *t5 = t + 5 * ld;
    for (int64_t u = 0; u < n; u++) {
        float a = d4[u] - 4.0f * d2[u], b = d3[u] - 4.0f * d1[u];
        float c = d4[u] - d2[u], e = 2.0f * (d3[u] - d1[u]);
        t0[u] = 4.0f * d0[u] - 5.0f * d2[u] + d4[u];
        t1[u] = a + b;
        t2[u] = a - b;
        t3[u] = c + e;
        t4[u] = c - e;
        t5[u] = 4.0f * d1[u] - 5.0f * d3[u] + d5[u];
    }
}

/* The same transform along the row: the six values of tile u are q0..q3 at u and q0, q1 at
 * u + 1 (the phase arrays); the results go to six rows of V, `vs` floats apart. */
DT_WINO_CLONES static void dt_wino_bt_row(float *restrict v, int64_t vs, const float *restrict q,
                                          int64_t ld, int64_t n)
{
    const float *q0 = q, *q1 = q + ld, *q2 = q + 2 * ld, *q3 = q + 3 * ld;
    for (int64_t u = 0; u < n; u++) {
        float e0 = q0[u], e1 = q1[u], e2 = q2[u], e3 = q3[u], e4 = q0[u + 1], e5 = q1[u + 1];
        float a = e4 - 4.0f * e2, b = e3 - 4.0f * e1;
        float c = e4 - e2, e = 2.0f * (e3 - e1);
        v[u] = 4.0f * e0 - 5.0f * e2 + e4;
        v[vs + u] = a + b;
        v[2 * vs + u] = a - b;
        v[3 * vs + u] = c + e;
        v[4 * vs + u] = c - e;
        v[5 * vs + u] = 4.0f * e1 - 5.0f * e3 + e5;
    }
}

/* A^T applied to six rows o[l] (`os` floats apart) into four rows of s (`ld` apart). */
DT_WINO_CLONES static void dt_wino_at(float *restrict s, int64_t ld, const float *restrict o, int64_t os,
                                      int64_t n, float bias)
{
    const float *o0 = o, *o1 = o + os, *o2 = o + 2 * os, *o3 = o + 3 * os, *o4 = o + 4 * os, *o5 = o + 5 * os;
    for (int64_t u = 0; u < n; u++) {
        float a = o1[u] + o2[u], b = o1[u] - o2[u], c = o3[u] + o4[u], d = o3[u] - o4[u];
        s[u] = o0[u] + a + c + bias;
        s[ld + u] = b + 2.0f * d + bias;
        s[2 * ld + u] = a + 4.0f * c + bias;
        s[3 * ld + u] = b + 8.0f * d + o5[u] + bias;
    }
}

/* Interleaves the four phase rows of one output row into n columns. */
static void dt_wino_interleave(float *restrict y, const float *restrict s, int64_t ld, int64_t n)
{
    int64_t full = n / 4;
    for (int64_t u = 0; u < full; u++) {
        y[4 * u] = s[u];
        y[4 * u + 1] = s[ld + u];
        y[4 * u + 2] = s[2 * ld + u];
        y[4 * u + 3] = s[3 * ld + u];
    }
    for (int64_t t = 4 * full; t < n; t++) y[t] = s[(t & 3) * ld + (t >> 2)];
}

/* ---- blocks ---- */

typedef struct dt_wino_job {
    const dt_conv_geom *g;
    const dt_conv_args *a;
    const float *u;             /* transformed weights */
    /* DT_CONV_WINOGRAD_BF16: the bfloat16 ones the GEMMs run on instead (u unused), and
     * whether the GEMM buffers are sized for them (set before the tiling). */
    const uint16_t *ub;
    bool bf16;
    /* bf16 on AVX512-BF16: the input pass writes V in bfloat16 as the GEMMs read it
     * (dt_wino_blk.vb), so no GEMM converts it */
    bool direct;
    int64_t th, tw;             /* tiles per image */
    int64_t nty, ntx, by, bx;   /* tiles per block; blocks per image */
    int64_t ni;                 /* images per block (more than 1 only where an image is one block) */
    int64_t ld;                 /* row stride of the phase buffers */
    float **scratch;            /* per thread */
    bool avx512;
    /* Fewer blocks than threads (one image's 28x28 and smaller maps: a single block): the
     * blocks run in turn and each block's passes and 36 GEMMs are split over this pool
     * instead (the AVX-512 passes; the portable ones stay on one thread), thread t packing
     * into gemm_bufs[t]. */
    dt_pool *gemm_pool;
    float **gemm_bufs;
    int *nonfinite;             /* dt_wino_blk.nonfinite */
} dt_wino_job;

/* V[36][C][T] of the block at tile (ty0, tx0), nty x ntx tiles, of image b. */
static void dt_wino_input(const dt_wino_job *j, int64_t b, int64_t ty0, int64_t nty, int64_t tx0,
                          int64_t ntx, float *v, int64_t vs, int64_t T, float *ph, float *tq)
{
    const dt_conv_geom *g = j->g;
    int64_t C = g->c, H = g->in[0], W = g->in[1], ld = j->ld;
    int64_t n4 = 4 * (ntx + 1), ix0 = 4 * tx0 - g->pb[1];
    int64_t lo = ix0 < 0 ? -ix0 : 0, hi = W - ix0;
    if (hi > n4) hi = n4;
    if (hi < lo) hi = lo;
    for (int64_t c = 0; c < C; c++) {
        const float *plane = j->a->x + (b * C + c) * H * W;
        for (int64_t r = 0; r < nty; r++) {
            int64_t iy0 = 4 * (ty0 + r) - g->pb[0];
            for (int k = 0; k < 6; k++) {
                float *pk = ph + k * 4 * ld;
                int64_t iy = iy0 + k;
                if (iy < 0 || iy >= H) {
                    memset(pk, 0, sizeof(float) * (size_t)(4 * ld));
                    continue;
                }
                const float *row = plane + iy * W + ix0;
                int64_t t = 0;
                for (; t < lo; t++) pk[(t & 3) * ld + (t >> 2)] = 0.0f;
                for (; t < hi; t++) pk[(t & 3) * ld + (t >> 2)] = row[t];
                for (; t < n4; t++) pk[(t & 3) * ld + (t >> 2)] = 0.0f;
            }
            /* Along the columns, phase by phase (runs of ntx + 1). */
            for (int q = 0; q < 4; q++) dt_wino_bt(tq + q * ld, ph + q * ld, 4 * ld, ntx + 1);
            for (int i = 0; i < 6; i++)
                dt_wino_bt_row(v + i * 6 * vs + c * T + r * ntx, vs, tq + i * 4 * ld, ld, ntx);
        }
    }
}

/* Output rows of the block from O[36][M][T]: bias, residual and activation included. */
static void dt_wino_output(const dt_wino_job *j, int64_t b, int64_t ty0, int64_t nty, int64_t tx0,
                           int64_t ntx, const float *o, int64_t os, int64_t T, float *s, float *out)
{
    const dt_conv_geom *g = j->g;
    const dt_conv_args *a = j->a;
    int64_t M = g->m, OH = g->out[0], OW = g->out[1], ld = j->ld;
    int64_t ox0 = 4 * tx0, width = OW - ox0 < 4 * ntx ? OW - ox0 : 4 * ntx;
    for (int64_t m = 0; m < M; m++) {
        float bias = a->bias ? a->bias[m] : 0.0f;
        for (int64_t r = 0; r < nty; r++) {
            const float *om = o + m * T + r * ntx;
            /* Along the row for each of the six transform rows, then along the columns. */
            for (int i = 0; i < 6; i++) dt_wino_at(s + i * 4 * ld, ld, om + i * 6 * os, os, ntx, 0.0f);
            for (int q = 0; q < 4; q++) dt_wino_at(out + q * ld, 4 * ld, s + q * ld, 4 * ld, ntx, bias);
            for (int k = 0; k < 4; k++) {
                int64_t oy = 4 * (ty0 + r) + k;
                if (oy >= OH) break;
                int64_t off = ((b * M + m) * OH + oy) * OW + ox0;
                for (int q = 0; q < 4; q++)
                    if (dt_wino_any_nonfinite(out + (k * 4 + q) * ld, ntx)) __atomic_store_n(j->nonfinite, 1, __ATOMIC_RELAXED);
                dt_wino_interleave(a->y + off, out + k * 4 * ld, ld, width);
                if (a->epi)
                    dt_epilogue_apply(a->epi, a->y + off, a->epi->res ? a->epi->res + off : NULL, width);
            }
        }
    }
}

static int64_t dt_wino_round16(int64_t n) { return (n + 15) & ~(int64_t)15; }

/* Floats from one transform position's matrix of V (or O) to the next (winograd.h), for a
 * matrix of n floats: n rounded up to whole cache lines, an odd number of them. The passes write (read)
 * a channel's 36 positions at once; at a power-of-two stride (14x14: 16 tiles x 256 channels
 * = 16 KB) those 36 lines fall into one set of the 12-way L1 and evict each other at every
 * tile row: the input pass of a 14x14 256-channel layer took 0.27 ms of its 0.81 on one
 * thread. With an odd number of lines between them the 36 positions fall into 36 sets. */
int64_t dt_wino_pstride(int64_t n)
{
    n = dt_wino_round16(n);
    return n / 16 % 2 ? n : n + 16;
}

/* Positions [p0, p1) of a block's 36 GEMMs O[p] = U[p] V[p], each the same serial GEMM
 * whichever thread runs it. */
typedef struct {
    const dt_wino_job *j;
    float *v;
    float *o;
    int64_t T;
    const dt_wino_blk *k;       /* the block, for its split transforms (and V's and O's strides) */
    float *line0;               /* thread 0's line buffer of the input pass */
} dt_wino_gemm_job;

static void dt_wino_gemm_range(const dt_wino_gemm_job *gj, int64_t p0, int64_t p1, float *gs)
{
    const dt_conv_geom *g = gj->j->g;
    int64_t M = g->m, C = g->c, T = gj->T, pa = dt_gemm_packed_a_floats(M, C), pe = dt_gemm_packed_a_bf16_elems(M, C);
    for (int64_t p = p0; p < p1; p++) {
        dt_gemm gm = {
            .M = M, .N = T, .K = C, .alpha = 1.0f, .beta = 0.0f,
            .B = gj->v + p * gj->k->vs, .ldb = T,
            .C = gj->o + p * gj->k->os, .ldc = T,
        };
        if (gj->k->vb) {
            /* V in bfloat16 already (dt_wino_input_bf16_avx512) */
            gm.A_bf16 = gj->j->ub + p * pe;
            gm.B = NULL;
            gm.B_bf16 = gj->k->vb + p * gj->k->vbs;
        } else if (gj->j->ub) {
            /* V converted to bfloat16 pairs a panel at a time as the GEMM packs it */
            gm.A_bf16 = gj->j->ub + p * pe;
        } else {
            gm.A_packed = gj->j->u + p * pa;
            /* V's rows read in place, whole 48-column panels (the rest packed): packing them
             * was 8% of superres' 64 -> 64 layer; the same sums in the same order */
            gm.direct_b = true;
        }
        dt_sgemm_serial_in(&gm, gs);
    }
}

static void dt_wino_gemms(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_wino_gemm_job *gj = arg;
    dt_wino_gemm_range(gj, begin, end, gj->j->gemm_bufs[tid]);
}

/* Line columns of the AVX-512 input pass for blocks of ntx tiles (winograd.h). */
static int64_t dt_wino_line(int64_t ntx) { return 4 * ((ntx + 15) & ~(int64_t)15) + 16; }

/* Floats of one position's V for a block of T columns: float32 C x T, or in bfloat16 (for
 * dt_wino_job.direct; sized whenever bf16, so the scratch does not depend on the CPU) T
 * rounded up to 16 columns (whole panels of 48 and a last one of a multiple of 16) times the
 * channels rounded up to even; at dt_wino_pstride. */
static int64_t dt_wino_vfloats(const dt_wino_job *j, int64_t T)
{
    int64_t f = dt_wino_pstride(j->g->c * T);
    int64_t h = dt_wino_pstride(((T + 15) & ~(int64_t)15) * ((j->g->c + 1) & ~(int64_t)1) / 2);
    return j->bf16 && h > f ? h : f;
}

/* Lines of the AVX-512 input pass: 6, or 12 for the bfloat16 one (two channels at once). */
static int64_t dt_wino_lines(const dt_wino_job *j) { return j->bf16 ? 12 : 6; }

/* Floats of a block's phase rows and transform lines (dt_wino_blocks' ph and tq), where the
 * AVX-512 input pass keeps its lines. */
static int64_t dt_wino_stage_floats(const dt_wino_job *j)
{
    int64_t a = 48 * j->ld, b = dt_wino_lines(j) * dt_wino_line(j->ntx);
    return b > a ? b : a;
}

/* The AVX-512 passes of one block over channels [begin, end): each channel's (output
 * channel's) values are computed the same way whichever thread runs it. Threads other than 0
 * keep their line buffer just before their GEMM buffers. */
static void dt_wino_inputs(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_wino_gemm_job *gj = arg;
    dt_wino_blk k = *gj->k;
    float *tl = tid == 0 ? gj->line0 : gj->j->gemm_bufs[tid] - dt_wino_lines(gj->j) * dt_wino_line(gj->j->ntx);
    if (k.vb) {
        /* over channel pairs */
        k.c0 = 2 * begin, k.c1 = 2 * end < k.C ? 2 * end : k.C;
        dt_wino_input_bf16_avx512(&k, tl, dt_wino_line(k.ntx));
        return;
    }
    k.c0 = begin, k.c1 = end;
    dt_wino_input_avx512(&k, gj->v, tl, dt_wino_line(k.ntx));
}

static void dt_wino_outputs(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_wino_gemm_job *gj = arg;
    dt_wino_blk k = *gj->k;
    k.m0 = begin, k.m1 = end;
    if (k.stage) k.stage = tid == 0 ? gj->line0 : gj->j->gemm_bufs[tid] - dt_wino_lines(gj->j) * dt_wino_line(gj->j->ntx);
    dt_wino_output_avx512(&k, gj->o);
}

/* Columns of a block's V and O at most (a block of ni whole images, or a part of one). */
static int64_t dt_wino_tmax(const dt_wino_job *j) { return j->ni * j->nty * j->ntx; }

/* Blocks of the whole batch. */
static int64_t dt_wino_nblocks(const dt_conv_geom *g, const dt_wino_job *j)
{
    return (g->batch + j->ni - 1) / j->ni * j->by * j->bx;
}

static void dt_wino_blocks(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_wino_job *j = arg;
    const dt_conv_geom *g = j->g;
    int64_t M = g->m, C = g->c, ld = j->ld;
    int64_t tmax = dt_wino_tmax(j);
    int64_t isz = C * g->in[0] * g->in[1], osz = M * g->out[0] * g->out[1];
    float *v = j->scratch[tid], *o = v + 36 * dt_wino_vfloats(j, tmax);
    float *ph = o + 36 * dt_wino_pstride(M * tmax), *tq = ph + 24 * ld;
    float *gs = ph + dt_wino_stage_floats(j);   /* the GEMM's packing buffers */
    for (int64_t blk = begin; blk < end; blk++) {
        int64_t per = j->by * j->bx, b0 = blk / per * j->ni, r = blk % per;
        int64_t ni = g->batch - b0 < j->ni ? g->batch - b0 : j->ni;
        int64_t ty0 = r / j->bx * j->nty, tx0 = r % j->bx * j->ntx;
        int64_t nty = j->th - ty0 < j->nty ? j->th - ty0 : j->nty;
        int64_t ntx = j->tw - tx0 < j->ntx ? j->tw - tx0 : j->ntx;
        /* Image i's tiles are columns [i * ti, (i + 1) * ti) of the block's T. */
        int64_t ti = nty * ntx, T = ni * ti;
        dt_wino_blk k = {
            .epi = j->a->epi, .bias = j->a->bias,
            .C = C, .M = M, .H = g->in[0], .W = g->in[1], .OH = g->out[0], .OW = g->out[1],
            .iy0 = 4 * ty0 - g->pb[0], .ix0 = 4 * tx0 - g->pb[1], .oy0 = 4 * ty0, .ox0 = 4 * tx0,
            .nty = nty, .ntx = ntx, .c0 = 0, .c1 = C, .m0 = 0, .m1 = M,
            .vs = dt_wino_pstride(C * T), .os = dt_wino_pstride(M * T), .ldt = T,
            /* Its four output rows of a tile row fit where the phase rows go (24 ld >= 16
             * ntx); threads splitting the pass use their line buffers (dt_wino_outputs). */
            .stage = j->avx512 && dt_wino_streams(j->a->epi) ? ph : NULL,
            .vb = j->direct ? (uint16_t *)(void *)v : NULL, .vbs = 2 * dt_wino_vfloats(j, T),
            .nonfinite = j->nonfinite,
        };
        dt_wino_gemm_job gj = {j, v, o, T, &k, ph};
        for (int64_t i = 0; i < ni; i++) {
            int64_t b = b0 + i;
            k.x = j->a->x + b * isz;
            gj.v = v + i * ti;
            k.vcol = i * ti;
            /* The line buffer of the AVX-512 input pass fits where the phase rows go. */
            if (j->direct && j->gemm_pool)
                dt_parallel_for(j->gemm_pool, (C + 1) / 2, 4, dt_wino_inputs, &gj);
            else if (j->direct)
                dt_wino_input_bf16_avx512(&k, ph, 4 * dt_wino_round16(ntx) + 16);
            else if (j->avx512 && j->gemm_pool)
                dt_parallel_for(j->gemm_pool, C, 8, dt_wino_inputs, &gj);
            else if (j->avx512)
                dt_wino_input_avx512(&k, gj.v, ph, 4 * dt_wino_round16(ntx) + 16);
            else
                dt_wino_input(j, b, ty0, nty, tx0, ntx, gj.v, k.vs, T, ph, tq);
        }
        gj.v = v;
        if (j->gemm_pool)
            dt_parallel_for(j->gemm_pool, 36, 1, dt_wino_gemms, &gj);
        else
            dt_wino_gemm_range(&gj, 0, 36, gs);
        for (int64_t i = 0; i < ni; i++) {
            int64_t b = b0 + i;
            k.y = j->a->y + b * osz;
            k.res = k.epi && k.epi->res ? k.epi->res + b * osz : NULL;
            gj.o = o + i * ti;
            if (j->avx512 && j->gemm_pool)
                dt_parallel_for(j->gemm_pool, M, 8, dt_wino_outputs, &gj);
            else if (j->avx512)
                dt_wino_output_avx512(&k, gj.o);
            else
                dt_wino_output(j, b, ty0, nty, tx0, ntx, gj.o, k.os, T, ph, tq);
        }
    }
}

/* Bytes of one serial GEMM's packing buffers for a block's products (float32 or bfloat16). */
static size_t dt_wino_gemm_scratch(const dt_conv_geom *g, const dt_wino_job *j)
{
    static const uint16_t any; /* sizes the buffers of a bfloat16 product */
    dt_gemm gmax = {.M = g->m, .N = dt_wino_tmax(j), .K = g->c, .A_bf16 = j->bf16 ? &any : NULL};
    return dt_gemm_serial_scratch_bytes(&gmax);
}

/* The most tile rows one of `threads` parts gets when the blocks of `batch` images of th tile
 * rows, nty rows a block (the last of an image shorter), are split as dt_parallel_for splits
 * them: part s takes blocks [s n / threads, (s + 1) n / threads). */
static int64_t dt_wino_part_rows(int64_t batch, int64_t th, int64_t nty, int threads)
{
    int64_t by = (th + nty - 1) / nty, n = batch * by, most = 0;
    for (int s = 0; s < threads; s++) {
        int64_t rows = 0;
        for (int64_t k = s * n / threads; k < (s + 1) * n / threads; k++) {
            int64_t r0 = k % by * nty;
            rows += th - r0 < nty ? th - r0 : nty;
        }
        if (rows > most) most = rows;
    }
    return most;
}

/* Blocks of nty tile rows (at most the *nty of DT_WINO_TILES) that the threads share most
 * evenly: the fewest tile rows on the busiest thread, then the largest blocks (the fewest
 * GEMM calls). YOLO's 60x44 maps at 2 threads: 15 tile rows were 2 blocks of 9 and 6, one
 * thread doing 60% of the layer; now 8 and 7. Its 120x88 maps: 30 rows in blocks of 4 split
 * 16 / 14, now 3 (15 / 15). A function of the geometry and the thread count only. */
static void dt_wino_balance(int64_t batch, int64_t th, int threads, int64_t *nty, int64_t *by)
{
    int64_t best = *nty, best_rows = dt_wino_part_rows(batch, th, *nty, threads);
    for (int64_t n = *nty - 1; n >= 1 && n * 2 >= *nty; n--) {
        int64_t rows = dt_wino_part_rows(batch, th, n, threads);
        if (rows < best_rows) best = n, best_rows = rows;
    }
    *nty = best;
    *by = (th + best - 1) / best;
}

/* The tiling of g into blocks and each thread's scratch (V, O, phase rows, GEMM buffers);
 * false when there is nothing to compute. */
static ductile_status dt_wino_tiling(const dt_conv_geom *g, int threads, dt_wino_job *j, size_t *per, bool *empty)
{
    j->th = (g->out[0] + 3) / 4;
    j->tw = (g->out[1] + 3) / 4;
    *empty = g->batch == 0 || j->th == 0 || j->tw == 0;
    if (*empty) return DUCTILE_OK;
    if (j->tw <= DT_WINO_MAX_TX) {
        j->ntx = j->tw;
        j->nty = (DT_WINO_TILES + j->tw / 2) / j->tw;
        if (j->nty < 1) j->nty = 1;
        if (j->nty > j->th) j->nty = j->th;
    } else {
        j->nty = 1;
        j->ntx = (j->tw + (j->tw + DT_WINO_MAX_TX - 1) / DT_WINO_MAX_TX - 1) /
                 ((j->tw + DT_WINO_MAX_TX - 1) / DT_WINO_MAX_TX);
    }
    j->by = (j->th + j->nty - 1) / j->nty;
    j->bx = (j->tw + j->ntx - 1) / j->ntx;
    /* An image of fewer than DT_WINO_GROUP tiles is one block; several such images share a
     * block, so that each position's GEMM streams its M x C weights once for all of their
     * tiles (7x7 x 512 channels: 36 x 1 MB of weights for 4 tiles an image; now 8 images a
     * block, 14x14 2, 28x28 and larger 1). 64 and 128 tiles measured the same at batch 8 and
     * 1-8% slower on the 7x7 and 14x14 layers at batch 32 (bench/results/cpu-r50-2026-12-04-s19.md).
     * A function of the geometry alone: the same columns at any thread count. */
    j->ni = 1;
    if (j->by == 1 && j->bx == 1 && j->th * j->tw < DT_WINO_GROUP) {
        j->ni = DT_WINO_GROUP / (j->th * j->tw);
        if (j->ni > g->batch) j->ni = g->batch;
    }
    /* A few blocks that the threads cannot share evenly (superres at 64x64, 16 x 16 tiles: 3
     * blocks of 6, 6 and 4 tile rows, 2 threads taking 12 and 4 rows) are cut into thinner
     * blocks until they can (4 of 4 rows). Each column's arithmetic is the same whatever the
     * tiling (the GEMMs' K blocks are the product's), so the bits are the same at any thread
     * count; one thread keeps the larger blocks. Fewer blocks than threads stay whole: each
     * block's passes and GEMMs are split over the threads instead (resnet50's 28x28 and 14x14
     * layers at batch 1: thread-own row bands made each thread stream all the weights, 7%
     * slower, bench/results/cpu-r50b-2026-12-04-s20.md). */
    if (threads > 1 && j->ni == 1 && j->tw <= DT_WINO_MAX_TX && g->batch * j->by * j->bx >= threads)
        dt_wino_balance(g->batch, j->th, threads, &j->nty, &j->by);
    /* Phase rows hold ntx + 1 tiles (the last tile reads two columns of the next). */
    j->ld = (j->ntx + 1 + 15) & ~(int64_t)15;
    int64_t tmax = dt_wino_tmax(j);
    /* V and O at strides of dt_wino_pstride: at most 31 floats more per position (V in
     * bfloat16 at most (C + 1) x (T + 15) / 2 floats, sized where bf16 as dt_wino_vfloats) */
    if (!dt_mul_size((size_t)(36 * (g->c + (j->bf16 ? 1 : 0) + g->m)), (size_t)(tmax + (j->bf16 ? 15 : 0)), per) ||
        !dt_add_size(*per, (size_t)(dt_wino_stage_floats(j) + 32 + 36 * 2 * 31), per) || !dt_mul_size(*per, sizeof(float), per) ||
        !dt_add_size(*per, dt_wino_gemm_scratch(g, j), per) || !dt_add_size(*per, 63, per))
        return dt_fail(DUCTILE_ERR_SHAPE, "Winograd scratch for %lld x %lld channels is too large",
                       (long long)g->c, (long long)g->m);
    *per &= ~(size_t)63;
    return DUCTILE_OK;
}

/* With fewer blocks than threads, the threads that split each block's GEMMs (the blocks run
 * in turn); else 0, and the blocks are split. */
static int dt_wino_gemm_threads(const dt_conv_geom *g, const dt_wino_job *j, int threads)
{
    int64_t blocks = dt_wino_nblocks(g, j);
    return threads > 1 && blocks < threads ? threads : 0;
}

/* Threads that get a block, and the bytes of the weights transformed per call (none when
 * they were transformed at build time). */
static int dt_wino_threads(const dt_conv_geom *g, const dt_wino_job *j, int threads)
{
    int64_t blocks = dt_wino_nblocks(g, j);
    if (dt_wino_gemm_threads(g, j, threads)) return 1;
    return threads > blocks ? (int)blocks : threads;
}

/* A thread other than the block's: the line buffer of its input pass, then the packing
 * buffers of its GEMMs. */
static size_t dt_wino_line_bytes(const dt_wino_job *j)
{
    return (size_t)(dt_wino_lines(j) * dt_wino_line(j->ntx)) * sizeof(float);
}

static size_t dt_wino_gemm_bytes(const dt_conv_geom *g, const dt_wino_job *j)
{
    return ((dt_wino_gemm_scratch(g, j) + 63) & ~(size_t)63) + dt_wino_line_bytes(j);
}

int dt_cpu_wino_workers(const dt_conv_geom *g, int threads)
{
    dt_wino_job j = {.g = g};
    size_t per;
    bool empty;
    if (!dt_cpu_wino_applies(g) || dt_wino_tiling(g, threads, &j, &per, &empty) != DUCTILE_OK || empty) return 0;
    int gt = dt_wino_gemm_threads(g, &j, threads);
    return gt ? (gt < 36 ? gt : 36) : dt_wino_threads(g, &j, threads);
}

/* Bytes of the weights transformed per call into the scratch: none where they were at build
 * time (the bfloat16 ones always are). */
static size_t dt_wino_u_bytes(const dt_conv_geom *g, const dt_conv_args *a, bool bf16)
{
    return bf16 || a->w_wino ? 0 : ((size_t)dt_cpu_wino_floats(g) * sizeof(float) + 63) & ~(size_t)63;
}

static ductile_status dt_wino_scratch(const dt_conv_geom *g, const dt_conv_args *a, bool bf16, int threads,
                                      size_t *bytes)
{
    *bytes = 0;
    if (!dt_cpu_wino_applies(g)) return DUCTILE_OK;
    /* The tiling of `threads` threads, and of one (a context run on fewer threads than
     * planned takes larger blocks): the larger scratch. */
    for (int pass = 0; pass < 2; pass++) {
        int t = pass ? 1 : threads;
        dt_wino_job j = {.g = g, .bf16 = bf16};
        size_t per, need, extra = 0;
        bool empty;
        DT_TRY(dt_wino_tiling(g, t, &j, &per, &empty));
        if (empty) return DUCTILE_OK;
        int gt = dt_wino_gemm_threads(g, &j, t);
        if (!dt_mul_size(per, (size_t)dt_wino_threads(g, &j, t), &need) || !dt_add_size(need, dt_wino_u_bytes(g, a, bf16), &need) ||
            (gt && (!dt_mul_size(dt_wino_gemm_bytes(g, &j), (size_t)(gt - 1), &extra) || !dt_add_size(need, extra, &need))))
            return dt_fail(DUCTILE_ERR_SHAPE, "Winograd scratch for %lld x %lld channels is too large",
                           (long long)g->c, (long long)g->m);
        if (need > *bytes) *bytes = need;
    }
    return DUCTILE_OK;
}

ductile_status dt_cpu_wino_scratch(const dt_conv_geom *g, const dt_conv_args *a, int threads, size_t *bytes)
{
    return dt_wino_scratch(g, a, false, threads, bytes);
}

ductile_status dt_cpu_wino_bf16_scratch(const dt_conv_geom *g, int threads, size_t *bytes)
{
    static const dt_conv_args none;
    return dt_wino_scratch(g, &none, true, threads, bytes);
}

/* dt_cpu_conv_winograd, with bf16 dt_cpu_conv_winograd_bf16. */
static ductile_status dt_wino_run(const dt_conv_geom *g, const dt_conv_args *a, bool bf16, dt_pool *pool)
{
    if (!dt_cpu_wino_applies(g))
        return dt_fail(DUCTILE_ERR_INTERNAL, "Winograd F(4x4, 3x3) does not apply to this convolution");
    if (bf16 && !a->w_wino_bf16)
        return dt_fail(DUCTILE_ERR_INTERNAL, "bfloat16 Winograd F(4x4, 3x3) runs on weights transformed at build time only");
    if (!a->scratch) /* allocates it */
        return dt_cpu_conv_run_algo(g, a, bf16 ? DT_CONV_WINOGRAD_BF16 : DT_CONV_WINOGRAD, pool);
    int nonfinite = 0;
    dt_wino_job j = {.g = g, .a = a, .u = bf16 ? NULL : a->w_wino, .ub = bf16 ? a->w_wino_bf16 : NULL, .bf16 = bf16,
                     .nonfinite = &nonfinite};
    __builtin_cpu_init();
    /* DT_WINO_GENERIC: the portable transforms even on AVX-512 (so tests reach them). */
    j.avx512 = __builtin_cpu_supports("avx512f") && !getenv("DT_WINO_GENERIC");
    j.direct = bf16 && j.avx512 && dt_cpu_has_bf16();
    size_t per;
    bool empty;
    DT_TRY(dt_wino_tiling(g, dt_pool_threads(pool), &j, &per, &empty));
    if (empty) return DUCTILE_OK;
    char *scratch = a->scratch;
    if (!j.u && !bf16) {
        dt_cpu_wino_pack_weights(g, a->w, (float *)scratch);
        j.u = (float *)scratch;
        scratch += dt_wino_u_bytes(g, a, bf16);
    }
    int threads = dt_wino_threads(g, &j, dt_pool_threads(pool));
    int gt = dt_wino_gemm_threads(g, &j, dt_pool_threads(pool));
    float *bufs[64] = {0}, *gbufs[64] = {0};
    for (int t = 0; t < threads; t++) bufs[t] = (float *)(scratch + (size_t)t * per);
    j.scratch = bufs;
    if (gt > 64) gt = 64;
    if (gt) {
        /* Thread 0's GEMM buffers are the block's own (in bufs[0], as in dt_wino_blocks). */
        int64_t tmax = dt_wino_tmax(&j);
        gbufs[0] = bufs[0] + 36 * dt_wino_vfloats(&j, tmax) + 36 * dt_wino_pstride(g->m * tmax) + dt_wino_stage_floats(&j);
        for (int t = 1; t < gt; t++)
            gbufs[t] = (float *)(scratch + per + (size_t)(t - 1) * dt_wino_gemm_bytes(g, &j) + dt_wino_line_bytes(&j));
        j.gemm_pool = pool;
        j.gemm_bufs = gbufs;
    }
    dt_parallel_for(threads > 1 ? pool : NULL, dt_wino_nblocks(g, &j), 1, dt_wino_blocks, &j);
    return nonfinite ? dt_wino_exact_rerun(g, a, pool) : DUCTILE_OK;
}

bool dt_wino_any_nonfinite(const float *v, int64_t n)
{
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad |= !(fabsf(v[i]) <= FLT_MAX);
    return bad;
}

/* Whether [p, p + n floats) and [q, q + m floats) share a byte. */
static bool dt_wino_overlap(const float *p, int64_t n, const float *q, int64_t m)
{
    return p && q && (uintptr_t)p < (uintptr_t)(q + m) && (uintptr_t)q < (uintptr_t)(p + n);
}

ductile_status dt_wino_exact_rerun(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool)
{
    int64_t nx = g->batch * g->c * g->in[0] * g->in[1], ny = g->batch * g->m * g->out[0] * g->out[1];
    const float *res = a->epi ? a->epi->res : NULL;
    if (dt_wino_overlap(a->y, ny, a->x, nx) || dt_wino_overlap(a->y, ny, res, ny)) return DUCTILE_OK;
    if (!a->w_packed && !a->w_bf16 && !a->w) return DUCTILE_OK;
    dt_conv_args b = *a;
    b.w_wino = NULL, b.w_wino2 = NULL, b.w_wino_bf16 = NULL;
    if (b.w_packed) b.w_bf16 = NULL;   /* float32 where the layout keeps a float32 copy */
    b.scratch = NULL;   /* im2col's own, allocated: a rare path */
    return dt_cpu_conv_run_algo(g, &b, DT_CONV_IM2COL, pool);
}

ductile_status dt_cpu_conv_winograd(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool)
{
    return dt_wino_run(g, a, false, pool);
}

ductile_status dt_cpu_conv_winograd_bf16(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool)
{
    return dt_wino_run(g, a, true, pool);
}
