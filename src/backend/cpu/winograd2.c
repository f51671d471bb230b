/* Winograd F(2x2, 3x3) with bfloat16 products (winograd.h), for the small maps of layers the
 * builder marked `bf16`: each 2x2 output tile is A^T [ (G w G^T) (.) (B^T d B) ] A over a 4x4
 * input tile d, 16 multiplies per tile and channel pair instead of 36, so 16 GEMMs
 * O_p[M, T] = U_p[M, C] V_p[C, T] over a block's T tiles. U_p is packed in bfloat16 at build
 * time (dt_gemm_pack_a_bf16); V is written in float32 and the GEMM converts it while packing
 * (dt_gemm.A_bf16): float32 accumulation, transforms in float32.
 *
 * Why F(2x2) and not F(4x4): F(4x4)'s transforms amplify bfloat16's operand rounding ~8x
 * (rel L2 per layer 1.7-2.1e-2 on superres, whose whole output then is 1.9e-2 off float32:
 * over the 1e-2 budget), F(2x2)'s ~1.2x (2.4-3.9e-3, im2col in bfloat16 2.2-3.0e-3). Its 4
 * multiplies per output at twice float32's rate cost about F(4x4)'s 2.25 in float32, so it
 * pays only where F(4x4) wastes work: maps of a few tiles (7x7: 4 tiles of 16 outputs for 49;
 * 14x14: 16 for 196) and thin products; the builder times it against the rest there
 * (dt_cpu_wino2_offered).
 *
 * A block is DT_WINO2_GROUP tiles' worth of whole images (at least one); blocks are split over
 * threads, and with fewer blocks than threads the threads split each block's input pass by
 * channel, its 16 GEMMs by position and its output pass by output channel. Each value is
 * computed the same way whichever thread runs it: results do not depend on the thread count. */
#pragma GCC optimize("O3", "no-math-errno", "no-trapping-math")

#include "backend/cpu/winograd.h"
#include "backend/cpu/gemm.h"
#include "core/alloc.h"
#include "core/checked.h"
#include "core/status.h"

#include <string.h>

#define DT_WINO2_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

/* Tiles per image at most where the builder offers it, and tiles per block. */
enum { DT_WINO2_MAX_TILES = 64, DT_WINO2_GROUP = 64 };

static int64_t dt_wino2_th(const dt_conv_geom *g) { return (g->out[0] + 1) / 2; }
static int64_t dt_wino2_tw(const dt_conv_geom *g) { return (g->out[1] + 1) / 2; }

/* Where F(4x4)'s tiles pad the map much more than F(2x2)'s: its 36 float32 multiplies per 4x4
 * tile against 16 bfloat16 ones (at twice the rate) per 2x2 tile, and F(2x2) at most 0.8 of
 * F(4x4)'s work (14x14, 13x13, 10x10: 0.62-0.68; 7x7, 28x28, 56x56: 0.89, where F(2x2) tied
 * or lost: bench/results/cpu-bf16w-2026-12-04-s20.md). */
bool dt_cpu_wino2_offered(const dt_conv_geom *g)
{
    int64_t t2 = dt_wino2_th(g) * dt_wino2_tw(g), t4 = (g->out[0] + 3) / 4 * ((g->out[1] + 3) / 4);
    return dt_cpu_wino_applies(g) && t2 <= DT_WINO2_MAX_TILES && 10 * 8 * t2 <= 8 * 36 * t4;
}

int64_t dt_cpu_wino2_floats(const dt_conv_geom *g)
{
    /* 16 bfloat16 matrices, padded to 64 bytes */
    return (16 * dt_gemm_packed_a_bf16_elems(g->m, g->c) + 31) / 32 * 16;
}

ductile_status dt_cpu_wino2_pack_weights(const dt_conv_geom *g, const float *w, uint16_t *dst)
{
    static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    int64_t M = g->m, C = g->c, pe = dt_gemm_packed_a_bf16_elems(M, C);
    float *u = dt_malloc(sizeof(float) * (size_t)(M * C > 0 ? M * C : 1));
    if (!u)
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory transforming %lld x %lld conv weights for Winograd F(2x2, 3x3)",
                       (long long)M, (long long)C);
    for (int p = 0; p < 16; p++) {
        dt_wino_weights_at(g, w, G, 4, p, u);
        dt_gemm_pack_a_bf16(u, C, M, C, dst + p * pe);
    }
    int64_t used = 16 * pe, all = dt_cpu_wino2_floats(g) * 2;
    memset(dst + used, 0, sizeof(uint16_t) * (size_t)(all - used));
    dt_free(u);
    return DUCTILE_OK;
}

/* ---- the tiling ---- */

typedef struct dt_wino2_job {
    const dt_conv_geom *g;
    const dt_conv_args *a;
    int64_t th, tw, ti;         /* tiles per image: rows, columns, all */
    int64_t ni;                 /* images per block */
    int64_t vs, os;             /* floats from one position's matrix of V (of O) to the next */
    int64_t ld;                 /* floats of a line buffer row */
    size_t per;                 /* bytes of a thread's V, O, lines and GEMM buffers */
    size_t v_off, o_off, l_off, g_off;
    /* the block the split passes work on (fewer blocks than threads) */
    float *v, *o;
    int64_t b0, nb;
    char *scratch;
    int *nonfinite;             /* dt_wino_blk.nonfinite */
} dt_wino2_job;

static int64_t dt_wino2_round16(int64_t n) { return (n + 15) & ~(int64_t)15; }

/* Floats of a plane padded to whole tiles: (2 th + 2) x (2 tw + 2). */
static int64_t dt_wino2_padded(const dt_wino2_job *j) { return (2 * j->th + 2) * (2 * j->tw + 2); }

static ductile_status dt_wino2_tiling(const dt_conv_geom *g, dt_wino2_job *j)
{
    j->th = dt_wino2_th(g);
    j->tw = dt_wino2_tw(g);
    j->ti = j->th * j->tw;
    j->ni = j->ti >= DT_WINO2_GROUP ? 1 : DT_WINO2_GROUP / j->ti;
    if (j->ni > g->batch) j->ni = g->batch > 0 ? g->batch : 1;
    int64_t T = j->ni * j->ti;
    j->vs = dt_wino_pstride(g->c * T);
    j->os = dt_wino_pstride(g->m * T);
    /* line rows of a plane's tiles: the padded plane, 16 inputs, 16 sums (the output pass: 8
     * sums, 4 outputs) */
    j->ld = dt_wino2_round16(j->ti);
    static const uint16_t any;  /* sizes the GEMM buffers of a bfloat16 product */
    dt_gemm gmax = {.M = g->m, .N = T, .K = g->c, .A_bf16 = &any};
    size_t v, o, l = (size_t)(dt_wino2_round16(dt_wino2_padded(j)) + 32 * j->ld) * sizeof(float), gb = (dt_gemm_serial_scratch_bytes(&gmax) + 63) & ~(size_t)63;
    if (!dt_mul_size((size_t)(16 * j->vs), sizeof(float), &v) || !dt_mul_size((size_t)(16 * j->os), sizeof(float), &o) ||
        !dt_add_size(v, o, &j->per) || !dt_add_size(j->per, l + gb, &j->per))
        return dt_fail(DUCTILE_ERR_SHAPE, "Winograd F(2x2, 3x3) scratch for %lld x %lld channels is too large",
                       (long long)g->c, (long long)g->m);
    j->v_off = 0;
    j->o_off = v;
    j->l_off = v + o;
    j->g_off = v + o + l;
    return DUCTILE_OK;
}

static int64_t dt_wino2_blocks(const dt_conv_geom *g, const dt_wino2_job *j) { return (g->batch + j->ni - 1) / j->ni; }

/* Threads that each get whole blocks (else 0: the blocks run in turn, each split). */
static int dt_wino2_block_threads(const dt_conv_geom *g, const dt_wino2_job *j, int threads)
{
    int64_t nb = dt_wino2_blocks(g, j);
    return threads <= 1 || nb >= threads ? (int)(nb < threads ? nb : threads) : 0;
}

ductile_status dt_cpu_wino2_scratch(const dt_conv_geom *g, int threads, size_t *bytes)
{
    *bytes = 0;
    if (!dt_cpu_wino_applies(g) || g->batch == 0 || g->out[0] == 0 || g->out[1] == 0) return DUCTILE_OK;
    dt_wino2_job j = {0};
    DT_TRY(dt_wino2_tiling(g, &j));
    int bt = dt_wino2_block_threads(g, &j, threads);
    if (!dt_mul_size(j.per, (size_t)(bt ? bt : threads < 16 ? threads : 16), bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "Winograd F(2x2, 3x3) scratch for %lld x %lld channels is too large",
                       (long long)g->c, (long long)g->m);
    return DUCTILE_OK;
}

/* ---- transforms ----
 * An image has at most DT_WINO2_MAX_TILES tiles, so each pass works on a whole plane at a time:
 * its tiles' 16 values gathered into 16 rows of ti (the tile at r * tw + u), then the
 * transform as loops over all ti tiles at once (rows of 7 tiles would leave most lanes idle). */

/* d: the 16 rows of the tiles' 4x4 inputs (row 4a + b: input (2r + a, 2u + b) of tile (r, u)),
 * ld apart; into V's 16 positions (vs apart) at v: B^T d B, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1
 * 0; 0 1 0 -1]. s: 16 rows of scratch. */
DT_WINO2_CLONES static void dt_wino2_bt(float *restrict v, int64_t vs, const float *restrict d, float *restrict s,
                                        int64_t ld, int64_t n)
{
    for (int a = 0; a < 4; a++) {
        const float *d0 = d + 4 * a * ld, *d1 = d0 + ld, *d2 = d1 + ld, *d3 = d2 + ld;
        float *s0 = s + 4 * a * ld, *s1 = s0 + ld, *s2 = s1 + ld, *s3 = s2 + ld;
        for (int64_t t = 0; t < n; t++) {
            s0[t] = d0[t] - d2[t];
            s1[t] = d1[t] + d2[t];
            s2[t] = d2[t] - d1[t];
            s3[t] = d1[t] - d3[t];
        }
    }
    for (int e = 0; e < 4; e++) {
        const float *r0 = s + e * ld, *r1 = r0 + 4 * ld, *r2 = r1 + 4 * ld, *r3 = r2 + 4 * ld;
        float *v0 = v + e * vs, *v1 = v0 + 4 * vs, *v2 = v1 + 4 * vs, *v3 = v2 + 4 * vs;
        for (int64_t t = 0; t < n; t++) {
            v0[t] = r0[t] - r2[t];
            v1[t] = r1[t] + r2[t];
            v2[t] = r2[t] - r1[t];
            v3[t] = r1[t] - r3[t];
        }
    }
}

/* A^T O A + bias over n tiles: O's 16 positions os apart at o, A^T = [1 1 1 0; 0 1 -1 -1];
 * into y's 4 rows (row 2a + b: output (2r + a, 2u + b)), ld apart. z: 8 rows of scratch. */
DT_WINO2_CLONES static void dt_wino2_at(float *restrict y, const float *restrict o, int64_t os, float *restrict z,
                                        int64_t ld, int64_t n, float bias)
{
    for (int e = 0; e < 4; e++) {
        const float *o0 = o + e * os, *o1 = o0 + 4 * os, *o2 = o1 + 4 * os, *o3 = o2 + 4 * os;
        float *za = z + e * ld, *zb = za + 4 * ld;
        for (int64_t t = 0; t < n; t++) {
            za[t] = o0[t] + o1[t] + o2[t];
            zb[t] = o1[t] - o2[t] - o3[t];
        }
    }
    for (int a = 0; a < 2; a++) {
        const float *q0 = z + 4 * a * ld, *q1 = q0 + ld, *q2 = q1 + ld, *q3 = q2 + ld;
        float *y0 = y + 2 * a * ld, *y1 = y0 + ld;
        for (int64_t t = 0; t < n; t++) {
            y0[t] = q0[t] + q1[t] + q2[t] + bias;
            y1[t] = q1[t] - q2[t] - q3[t] + bias;
        }
    }
}

/* Channels [c0, c1) of image b into V at column col0 (the image's first tile in the block). */
static void dt_wino2_input(const dt_wino2_job *j, int64_t b, int64_t c0, int64_t c1, float *v, int64_t col0,
                           float *lines)
{
    const dt_conv_geom *g = j->g;
    int64_t C = g->c, H = g->in[0], W = g->in[1], th = j->th, tw = j->tw, ld = j->ld;
    int64_t T = j->ni * j->ti, pw = 2 * tw + 2, ph = 2 * th + 2, pt = g->pb[0], pl = g->pb[1];
    float *pad = lines, *d = lines + dt_wino2_round16(dt_wino2_padded(j)), *s = d + 16 * ld;
    /* the columns of a padded row that hold the image's */
    int64_t x0 = pl < pw ? pl : pw, x1 = pl + W < pw ? pl + W : pw;
    memset(pad, 0, sizeof(float) * (size_t)dt_wino2_padded(j));
    for (int64_t c = c0; c < c1; c++) {
        const float *plane = j->a->x + (b * C + c) * H * W;
        for (int64_t y = 0; y < ph; y++) {
            int64_t iy = y - pt;
            if (iy >= 0 && iy < H && x1 > x0) memcpy(pad + y * pw + x0, plane + iy * W, sizeof(float) * (size_t)(x1 - x0));
        }
        for (int k = 0; k < 16; k++) {
            const float *src = pad + (k / 4) * pw + k % 4;
            float *dk = d + k * ld;
            for (int64_t r = 0; r < th; r++)
                for (int64_t u = 0; u < tw; u++) dk[r * tw + u] = src[2 * r * pw + 2 * u];
        }
        dt_wino2_bt(v + c * T + col0, j->vs, d, s, ld, j->ti);
    }
}

/* Output channels [m0, m1) of image b from O at column col0: bias, residual and activation. */
static void dt_wino2_output(const dt_wino2_job *j, int64_t b, int64_t m0, int64_t m1, const float *o, int64_t col0,
                            float *lines)
{
    const dt_conv_geom *g = j->g;
    const dt_conv_args *a = j->a;
    int64_t M = g->m, OH = g->out[0], OW = g->out[1], tw = j->tw, ld = j->ld;
    int64_t T = j->ni * j->ti;
    float *z = lines, *yt = z + 8 * ld;
    for (int64_t m = m0; m < m1; m++) {
        dt_wino2_at(yt, o + m * T + col0, j->os, z, ld, j->ti, a->bias ? a->bias[m] : 0.0f);
        for (int k = 0; k < 4; k++)
            if (dt_wino_any_nonfinite(yt + k * ld, j->ti)) __atomic_store_n(j->nonfinite, 1, __ATOMIC_RELAXED);
        float *y = a->y + (b * M + m) * OH * OW;
        for (int k = 0; k < 4; k++) {
            const float *yk = yt + k * ld;
            for (int64_t r = 0; r < j->th; r++) {
                int64_t oy = 2 * r + k / 2;
                if (oy >= OH) break;
                for (int64_t u = 0, ox = k % 2; u < tw && ox < OW; u++, ox += 2) y[oy * OW + ox] = yk[r * tw + u];
            }
        }
        if (a->epi) dt_epilogue_apply(a->epi, y, a->epi->res ? a->epi->res + (b * M + m) * OH * OW : NULL, OH * OW);
    }
}

/* Positions [p0, p1) of the block's 16 products over its first n columns (a partial last
 * block keeps a full one's rows of ni * ti columns). */
static void dt_wino2_gemms(const dt_wino2_job *j, int64_t p0, int64_t p1, const float *v, float *o, int64_t n, void *gs)
{
    const dt_conv_geom *g = j->g;
    int64_t pe = dt_gemm_packed_a_bf16_elems(g->m, g->c), T = j->ni * j->ti;
    for (int64_t p = p0; p < p1; p++) {
        dt_gemm gm = {
            .M = g->m, .N = n, .K = g->c, .alpha = 1.0f, .beta = 0.0f,
            .B = v + p * j->vs, .ldb = T, .C = o + p * j->os, .ldc = T,
            .A_bf16 = j->a->w_wino2 + p * pe,
        };
        dt_sgemm_serial_in(&gm, gs);
    }
}

static char *dt_wino2_thread(const dt_wino2_job *j, int tid) { return j->scratch + (size_t)tid * j->per; }

/* Whole blocks [begin, end), each on its thread's buffers. */
static void dt_wino2_run_blocks(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_wino2_job *j = arg;
    const dt_conv_geom *g = j->g;
    char *base = dt_wino2_thread(j, tid);
    float *v = (float *)(base + j->v_off), *o = (float *)(base + j->o_off), *lines = (float *)(base + j->l_off);
    for (int64_t blk = begin; blk < end; blk++) {
        int64_t b0 = blk * j->ni, nb = g->batch - b0 < j->ni ? g->batch - b0 : j->ni;
        for (int64_t i = 0; i < nb; i++) dt_wino2_input(j, b0 + i, 0, g->c, v, i * j->ti, lines);
        dt_wino2_gemms(j, 0, 16, v, o, nb * j->ti, base + j->g_off);
        for (int64_t i = 0; i < nb; i++) dt_wino2_output(j, b0 + i, 0, g->m, o, i * j->ti, lines);
    }
}

static void dt_wino2_split_inputs(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_wino2_job *j = arg;
    float *lines = (float *)(dt_wino2_thread(j, tid) + j->l_off);
    for (int64_t i = 0; i < j->nb; i++) dt_wino2_input(j, j->b0 + i, begin, end, j->v, i * j->ti, lines);
}

static void dt_wino2_split_gemms(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_wino2_job *j = arg;
    dt_wino2_gemms(j, begin, end, j->v, j->o, j->nb * j->ti, dt_wino2_thread(j, tid) + j->g_off);
}

static void dt_wino2_split_outputs(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_wino2_job *j = arg;
    float *lines = (float *)(dt_wino2_thread(j, tid) + j->l_off);
    for (int64_t i = 0; i < j->nb; i++) dt_wino2_output(j, j->b0 + i, begin, end, j->o, i * j->ti, lines);
}

ductile_status dt_cpu_conv_winograd2(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool)
{
    if (!dt_cpu_wino_applies(g))
        return dt_fail(DUCTILE_ERR_INTERNAL, "Winograd F(2x2, 3x3) does not apply to this convolution");
    if (!a->w_wino2)
        return dt_fail(DUCTILE_ERR_INTERNAL, "Winograd F(2x2, 3x3) runs on weights transformed at build time only");
    if (g->batch == 0 || g->out[0] == 0 || g->out[1] == 0) return DUCTILE_OK;
    if (!a->scratch) return dt_cpu_conv_run_algo(g, a, DT_CONV_WINOGRAD2_BF16, pool); /* allocates it */
    int nonfinite = 0;
    dt_wino2_job j = {.g = g, .a = a, .scratch = a->scratch, .nonfinite = &nonfinite};
    DT_TRY(dt_wino2_tiling(g, &j));
    int threads = dt_pool_threads(pool);
    int bt = dt_wino2_block_threads(g, &j, threads);
    int64_t nblk = dt_wino2_blocks(g, &j);
    if (bt) {
        dt_parallel_for(bt > 1 ? pool : NULL, nblk, 1, dt_wino2_run_blocks, &j);
        return nonfinite ? dt_wino_exact_rerun(g, a, pool) : DUCTILE_OK;
    }
    /* Fewer blocks than threads: each block's passes split (at most 16 threads' buffers). */
    dt_pool *p = threads > 16 ? NULL : pool;
    j.v = (float *)(j.scratch + j.v_off);
    j.o = (float *)(j.scratch + j.o_off);
    for (int64_t blk = 0; blk < nblk; blk++) {
        j.b0 = blk * j.ni;
        j.nb = g->batch - j.b0 < j.ni ? g->batch - j.b0 : j.ni;
        dt_parallel_for(p, g->c, 8, dt_wino2_split_inputs, &j);
        dt_parallel_for(p, 16, 1, dt_wino2_split_gemms, &j);
        dt_parallel_for(p, g->m, 8, dt_wino2_split_outputs, &j);
    }
    return nonfinite ? dt_wino_exact_rerun(g, a, pool) : DUCTILE_OK;
}
