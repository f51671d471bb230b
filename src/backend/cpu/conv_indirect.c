/* The product of conv_padded.c with B read in place: row k of B (tap (c, ky, kx) of im2col)
 * is a run of the padded image's phases at a per-row offset (conv.h: dt_conv_indirect), so
 * no B panel is ever packed. The GEMM's packer copied every K x N value of B into panels
 * once per product (0.2-0.4 ms of resnet50's ~2 ms stride-2 3x3s); here the micro-kernel
 * loads each row's 16-float vectors straight from the image, one offset per k.
 *
 * Written beside gemm.c rather than in it: the table of row offsets is what a conv's B has and
 * no other product does. The blocking, the tile order within a K block and each tile's float
 * operations are the GEMM's (KC blocks from k = 0, an FMA chain over the block from zero,
 * then + bias in the first block and C + acc after it), so the result has the bits of
 * dt_sgemm over the same packed A and the same B. */
#include "backend/cpu/conv.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_row.h"

#include <immintrin.h>

#define DT_IND_AVX512 __attribute__((target("avx512f,fma")))

/* Rows ahead that the kernel prefetches: each row is a separate run of the image, which the
 * L1 prefetchers do not follow (as for the GEMM's B read in place). */
enum { DT_IND_AHEAD = DT_CONV_INDIRECT_OFF_PAD };

bool dt_conv_indirect_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

/* One mr x (nv*16) tile over kc rows of B (row k at b + off[k]), A an 8-row packed panel; m
 * rows and n columns stored. A short edge strip (M = 9 leaves one row) runs a narrower body,
 * as the GEMM's kernel does. */
static inline __attribute__((always_inline)) DT_IND_AVX512 void
dt_ind_body(const int mr, const int nv, int64_t kc, const float *a, const float *b, const int64_t *off, float *c,
            int64_t ldc, int m, int n, bool first, const float *bias, const float *a_next)
{
    enum { MR = DT_GEMM_MR };
    __m512 acc[MR][3];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) acc[i][v] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        const float *bk = b + off[k], *pf = b + off[k + DT_IND_AHEAD];
        __m512 bv[3];
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) {
            bv[v] = _mm512_loadu_ps(bk + v * 16);
            _mm_prefetch((const char *)(pf + v * 16), _MM_HINT_T0);
        }
        _mm_prefetch((const char *)(pf + nv * 16 - 1), _MM_HINT_T0);
        if (a_next && !(k & 1)) _mm_prefetch((const char *)(a_next + k * MR), _MM_HINT_T1);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        a += MR;
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        if (i >= m) break;
        dt_gemm_row_out(acc[i], nv, c + i * ldc, n, first, 0.0f, bias ? bias[i] : 0.0f, NULL, NULL);
    }
}

#define DT_IND_BODY(MRV, AN)                                                         \
    do {                                                                             \
        if (nv == 3)                                                                 \
            dt_ind_body(MRV, 3, kc, a, b, off, c, ldc, m, n, first, bias, AN);       \
        else if (nv == 2)                                                            \
            dt_ind_body(MRV, 2, kc, a, b, off, c, ldc, m, n, first, bias, AN);       \
        else                                                                         \
            dt_ind_body(MRV, 1, kc, a, b, off, c, ldc, m, n, first, bias, AN);       \
    } while (0)

static DT_IND_AVX512 void dt_ind_tile(int nv, int64_t kc, const float *a, const float *b, const int64_t *off, float *c,
                                      int64_t ldc, int m, int n, bool first, const float *bias)
{
    if (m > 4)
        DT_IND_BODY(8, NULL);
    else if (m > 2)
        DT_IND_BODY(4, NULL);
    else if (m == 2)
        DT_IND_BODY(2, NULL);
    else
        DT_IND_BODY(1, NULL);
}

/* dt_ind_tile of a full-height strip that also streams a_next, the next strip's A panel,
 * into L2 over its k loop (a line every two k): a network's weights are cold at every run
 * (resnet50's stride-2 3x3s, 0.6-9.4 MB each). A function of its own so that the other
 * tiles' k loops carry no test for it. */
static DT_IND_AVX512 void dt_ind_tile_next(int nv, int64_t kc, const float *a, const float *b, const int64_t *off,
                                           float *c, int64_t ldc, int m, int n, bool first, const float *bias,
                                           const float *a_next)
{
    DT_IND_BODY(8, a_next);
}

/* Row strips [s0, s1) of C, every column: per K block each strip's A panel (8 x KC, in L1)
 * runs over every 48-column panel of B, as dt_gemm_slice runs a block. */
static void dt_ind_range(void *arg, int64_t s0, int64_t s1, int tid)
{
    (void)tid;
    enum { MR = DT_GEMM_MR, NR = DT_GEMM_NR, KC = DT_GEMM_KC, NC = DT_GEMM_NC };
    const dt_conv_indirect *p = arg;
    for (int64_t jc = 0; jc < p->N; jc += NC) {
        int64_t nc = p->N - jc < NC ? p->N - jc : NC;
        for (int64_t pc = 0; pc < p->K; pc += KC) {
            int64_t kc = p->K - pc < KC ? p->K - pc : KC;
            for (int64_t s = s0; s < s1; s++) {
                int64_t ip = s * MR;
                int m = p->M - ip < MR ? (int)(p->M - ip) : MR;
                const float *ap = p->a + ip * p->K + pc * MR;
                for (int64_t jp = 0; jp < nc; jp += NR) {
                    int n = nc - jp < NR ? (int)(nc - jp) : NR;
                    /* the strip's last tile streams the range's next strip's panel in */
                    if (jp + NR >= nc && s + 1 < s1 && m > 4)
                        dt_ind_tile_next((n + 15) / 16, kc, ap, p->b + jc + jp, p->off + pc,
                                         p->c + ip * p->ldc + jc + jp, p->ldc, m, n, pc == 0,
                                         p->bias ? p->bias + ip : NULL, ap + MR * p->K);
                    else
                        dt_ind_tile((n + 15) / 16, kc, ap, p->b + jc + jp, p->off + pc, p->c + ip * p->ldc + jc + jp,
                                    p->ldc, m, n, pc == 0, p->bias ? p->bias + ip : NULL);
                }
            }
        }
    }
}

void dt_conv_indirect_run(const dt_conv_indirect *p, dt_pool *pool)
{
    int64_t strips = (p->M + DT_GEMM_MR - 1) / DT_GEMM_MR;
    dt_parallel_for(pool, strips, 1, dt_ind_range, (void *)p);
}
