/* A conv's GlobalAveragePool taken while the conv has its output in cache: FusedConv's and
 * FusedInvertedResidual's second output P (ops/fused.h; builder/fuse_pool.c). The separate
 * GlobalAveragePool read the squeeze-excite block's depthwise output back from L3 or memory
 * (EfficientNet-B0 b8 --bf16: 1.15 ms of 30.7 in 17 pools).
 *
 * One order of sums for every path, so that P's bits depend neither on the thread count nor
 * on whether a layer runs in strips (fused_irb.c decides that by the thread count): a plane's
 * rows are taken in blocks of `rows_per_block` rows (the strip height where strips may run,
 * else all rows), each block contiguous; float i of a block is added into vector (i / 16) %
 * 4, lane i % 16 (floats past the block's end add 0); the four vectors are added lane by
 * lane as (v0 + v1) + (v2 + v3), and the 16 lanes as a tree (k + 8, then k + 4, k + 2, k + 1);
 * the blocks' sums are added in double, in order, and P = (float)(sum / pixels). Four
 * vectors: one chain of adds waits out each add's latency; the tree: lanes in order were a
 * chain of 15 adds per plane (7x7 planes: 4x the pool's cost). */
#include "backend/cpu/conv.h"
#include "backend/cpu/cpu_isa.h"

#include <immintrin.h>
#include <stdbool.h>
#include <string.h>

static float dt_pool_block_ref(const float *y, int64_t n)
{
    float acc[4][16], l[16];
    memset(acc, 0, sizeof acc);
    for (int64_t i = 0; i < n; i += 16)
        for (int64_t k = 0; k < 16; k++) acc[(i / 16) % 4][k] += i + k < n ? y[i + k] : 0.0f;
    for (int k = 0; k < 16; k++) l[k] = (acc[0][k] + acc[1][k]) + (acc[2][k] + acc[3][k]);
    for (int h = 8; h >= 1; h /= 2)
        for (int k = 0; k < h; k++) l[k] += l[k + h];
    return l[0];
}

static inline __attribute__((always_inline, target("avx512f"))) float dt_pool_block_avx512(const float *y, int64_t n)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_add_ps(a0, _mm512_loadu_ps(y + i));
        a1 = _mm512_add_ps(a1, _mm512_loadu_ps(y + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_loadu_ps(y + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_loadu_ps(y + i + 48));
    }
    /* the last 1-63 floats: vectors 0, 1, 2, 3 in turn, the last one masked */
    if (i < n) {
        int64_t left = n - i;
        __mmask16 m0 = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
        a0 = _mm512_add_ps(a0, _mm512_maskz_loadu_ps(m0, y + i));
        if (left > 16) {
            __mmask16 m1 = left >= 32 ? 0xffff : (__mmask16)((1u << (left - 16)) - 1);
            a1 = _mm512_add_ps(a1, _mm512_maskz_loadu_ps(m1, y + i + 16));
        }
        if (left > 32) {
            __mmask16 m2 = left >= 48 ? 0xffff : (__mmask16)((1u << (left - 32)) - 1);
            a2 = _mm512_add_ps(a2, _mm512_maskz_loadu_ps(m2, y + i + 32));
        }
        if (left > 48) a3 = _mm512_add_ps(a3, _mm512_maskz_loadu_ps((__mmask16)((1u << (left - 48)) - 1), y + i + 48));
    }
    __m512 v = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

__attribute__((target("avx512f"))) static float dt_pool_block_avx512_fn(const float *y, int64_t n)
{
    return dt_pool_block_avx512(y, n);
}

/* dt_pool_block_ref's sums on AVX2: each 16-lane vector of the order above as two 8-lane
 * halves (lanes 0-7, 8-15), the same adds lane by lane; the tree's k + 8 step adds the
 * halves. Without it the plain loop took 8% of EfficientNet-B0's run on a Zen 3 (session 45). */
__attribute__((target("avx2"))) static float dt_pool_block_avx2(const float *y, int64_t n)
{
    __m256 a[8];   /* vector v's halves: a[2v], a[2v + 1] */
    for (int k = 0; k < 8; k++) a[k] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 8; k++) a[k] = _mm256_add_ps(a[k], _mm256_loadu_ps(y + i + 8 * k));
    /* the last 1-63 floats: each 16-float vector that starts before n, both halves, masked */
    for (int k = 0; i < n && k < 8 && i + 16 * (k / 2) < n; k++) {
        int64_t left = n - i - 8 * k;
        int c = left >= 8 ? 8 : left < 0 ? 0 : (int)left;
        __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        a[k] = _mm256_add_ps(a[k], _mm256_maskload_ps(y + i + 8 * k, m));
    }
    __m256 lo = _mm256_add_ps(_mm256_add_ps(a[0], a[2]), _mm256_add_ps(a[4], a[6]));
    __m256 hi = _mm256_add_ps(_mm256_add_ps(a[1], a[3]), _mm256_add_ps(a[5], a[7]));
    __m256 h = _mm256_add_ps(lo, hi);
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

/* Whether this CPU has AVX-512, asked once (per call it cost 7x7 planes a third more). */
static bool dt_pool_avx512(void)
{
    static int has;   /* 0: not asked yet, 1: no, 2: yes */
    int h = __atomic_load_n(&has, __ATOMIC_RELAXED);
    if (!h) {
        __builtin_cpu_init();
        __atomic_store_n(&has, h = __builtin_cpu_supports("avx512f") ? 2 : 1, __ATOMIC_RELAXED);
    }
    return h == 2;
}

/* Without AVX-512: AVX2 where the CPU has it, else the plain loop. */
static float dt_pool_block_any(const float *y, int64_t n)
{
    return dt_cpu_has_avx2_fma() ? dt_pool_block_avx2(y, n) : dt_pool_block_ref(y, n);
}

float dt_cpu_pool_block(const float *y, int64_t n)
{
    return dt_pool_avx512() ? dt_pool_block_avx512_fn(y, n) : dt_pool_block_any(y, n);
}

float dt_cpu_pool_blocks(const float *sums, int64_t n, int64_t stride, int64_t pixels)
{
    double s = 0.0;
    for (int64_t k = 0; k < n; k++) s += (double)sums[k * stride];
    return (float)(s / (double)pixels);
}

/* One block of at most 2^24 pixels (a float holds the count exactly): the float quotient is
 * the double one rounded (a float quotient computed in double rounds once to the same
 * value), without the conversions. */
__attribute__((target("avx512f"))) static float dt_pool_plane_avx512(const float *y, int64_t h, int64_t w, int64_t r)
{
    if (r >= h && h * w <= (1 << 24)) return dt_pool_block_avx512(y, h * w) / (float)(h * w);
    double s = 0.0;
    for (int64_t r0 = 0; r0 < h; r0 += r) s += (double)dt_pool_block_avx512(y + r0 * w, (h - r0 < r ? h - r0 : r) * w);
    return (float)(s / (double)(h * w));
}

float dt_cpu_pool_plane(const float *y, int64_t h, int64_t w, int64_t rows_per_block)
{
    int64_t r = rows_per_block > 0 && rows_per_block < h ? rows_per_block : h;
    if (dt_pool_avx512()) return dt_pool_plane_avx512(y, h, w, r);
    if (r >= h && h * w <= (1 << 24)) return dt_pool_block_any(y, h * w) / (float)(h * w);
    double s = 0.0;
    for (int64_t r0 = 0; r0 < h; r0 += r) s += (double)dt_pool_block_any(y + r0 * w, (h - r0 < r ? h - r0 : r) * w);
    return (float)(s / (double)(h * w));
}

typedef struct dt_pool_job {
    const dt_conv_geom *g;
    const dt_conv_args *a;
} dt_pool_job;

static void dt_pool_part(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const dt_pool_job *j = arg;
    const dt_conv_geom *g = j->g;
    int64_t opx = g->out[0] * g->out[1];
    for (int64_t p = begin; p < end; p++) {
        int64_t b = p / g->m, c = p % g->m, yp = j->a->y_cs ? c * j->a->y_cs + b : p;
        j->a->pool[p] = dt_cpu_pool_plane(j->a->y + yp * opx, g->out[0], g->out[1], j->a->pool_rows);
    }
}

void dt_cpu_conv_pool_after(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool)
{
    if (!a->pool || g->spatial != 2) return;
    dt_pool_job j = {g, a};
    int64_t opx = g->out[0] * g->out[1];
    dt_parallel_for(pool, g->batch * g->m, opx >= 4096 ? 1 : (4096 + opx - 1) / (opx ? opx : 1), dt_pool_part, &j);
}
