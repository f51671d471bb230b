/* GEMM micro-kernels: an 8 x 48 AVX-512 register tile (24 accumulators, 3 vector loads and
 * 8 broadcasts per k, so the two FMA ports, not the load ports, set the pace) and a plain C
 * kernel of the same packing layout for CPUs without AVX-512 (or AVX2: gemm_kernel_avx2.c). */
#include "backend/cpu/gemm.h"
#include "backend/cpu/exp_approx.h"
#include "backend/cpu/gemm_row.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

static inline void dt_gemm_store_ref(const float *acc, int64_t ldacc, float *c, int64_t ldc,
                                     int m, int n, bool first, float beta, const float *bias)
{
    for (int i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        const float *ai = acc + i * ldacc;
        if (first) {
            float bi = bias ? bias[i] : 0.0f;
            if (beta != 0.0f)
                for (int j = 0; j < n; j++) ci[j] = ai[j] + beta * ci[j] + bi;
            else
                for (int j = 0; j < n; j++) ci[j] = ai[j] + bi;
        } else {
            for (int j = 0; j < n; j++) ci[j] += ai[j];
        }
    }
}

void dt_gemm_kernel_ref(int64_t kc, const float *a, const float *b, int64_t ldb, int nv, float *c,
                        int64_t ldc, int m, int n, bool first, float beta, const float *bias)
{
    enum { MR = DT_GEMM_MR, NR = DT_GEMM_NR };
    float acc[MR][NR];
    int ld = nv * 16;
    memset(acc, 0, sizeof acc);
    for (int64_t k = 0; k < kc; k++) {
        const float *ak = a + k * MR, *bk = b + k * ldb;
        for (int i = 0; i < MR; i++) {
            float ai = ak[i];
            for (int j = 0; j < ld; j++) acc[i][j] += ai * bk[j];
        }
    }
    dt_gemm_store_ref(&acc[0][0], NR, c, ldc, m, n, first, beta, bias);
}

void dt_gemm_kernel_rows_ref(int64_t kc, const float *a, int64_t lda, const float *b, int64_t ldb,
                             int nv, float *c, int64_t ldc, int m, int n, bool first, float beta,
                             const float *bias)
{
    enum { MR = DT_GEMM_MR, NR = DT_GEMM_NR };
    float acc[MR][NR];
    int ld = nv * 16;
    memset(acc, 0, sizeof acc);
    for (int i = 0; i < m; i++)
        for (int64_t k = 0; k < kc; k++) {
            float ai = a[i * lda + k];
            const float *bk = b + k * ldb;
            for (int j = 0; j < ld; j++) acc[i][j] += ai * bk[j];
        }
    dt_gemm_store_ref(&acc[0][0], NR, c, ldc, m, n, first, beta, bias);
}

#define DT_AVX512 __attribute__((target("avx512f,fma")))
/* The 256-bit bodies (the narrow kernel's 8-row accumulators): without AVX512VL only ymm0-15
 * exist for them, and the 24-28 registers of a body spilled (session 32). */
#define DT_AVX512VL __attribute__((target("avx512f,avx512vl,fma")))
/* Bodies on 256-bit vectors that both kinds of CPU run: inlined into an AVX512VL caller they
 * get its 32 registers, into an AVX2 one its 16. */
#define DT_AVX2FMA __attribute__((target("avx2,fma")))

/* One body per (rows, vectors) pair so the accumulators stay in registers; a short edge tile
 * (M = 9 leaves one row) runs a narrower body instead of computing 8 rows for 1. */
static inline __attribute__((always_inline)) DT_AVX512 void
dt_gemm_avx512_body(const int mr, const int nv, int64_t kc, const float *a, const float *b,
                    int64_t ld, float *c, int64_t ldc, int m, int n, bool first, float beta,
                    const float *bias, const dt_epilogue *epi, const float *res, const int nx,
                    const float *xb, int64_t xld, const float *a_next, const bool tile_store,
                    const float *pf, int64_t pf_ld, int64_t pf_rows)
{
    enum { MR = DT_GEMM_MR };
    __m512 acc[MR][3];
    /* nx extra columns (dt_gemm_kernel_x_fn): the tile's 8 rows in the lanes, as the narrow
     * kernel holds them, two columns a register (lanes 8-15 the odd one) so that 4 columns
     * take 2 registers beside the 24 accumulators, not 4 (GCC spilled them) */
    __m512 xacc[DT_GEMM_NARROW / 2];
#pragma GCC unroll 2
    for (int q = 0; q < (nx + 1) / 2; q++) xacc[q] = _mm512_setzero_ps();
    const bool xin = nx && xb == b + nv * 16;   /* the extra columns in place, after b's */
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) acc[i][v] = _mm512_setzero_ps();
    /* A whole tile of an output past the cache (dt_epilogue.c_far), 64-byte aligned rows: the
     * tile store below writes it non-temporally. */
    const bool whole = tile_store && dt_gemm_tile_whole(mr, nv, m, n, first, beta, epi);
    const bool nt = dt_gemm_tile_nt(whole, epi, c, ldc);
    /* The C tile is touched only after the k loop: start its lines moving now (not those
     * written non-temporally). */
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        if (i >= m) break;
#pragma GCC unroll 3
        for (int v = 0; v < nv && !nt; v++) _mm_prefetch((const char *)(c + i * ldc + v * 16), _MM_HINT_T0);
        if (nx) _mm_prefetch((const char *)(c + i * ldc + nv * 16 + nx - 1), _MM_HINT_T0);
        /* A residual from memory: the next tile's lines (the strip's next 48 columns), a
         * tile's k loop ahead. resnet50 b8 1 thread, its 56x56 1x1s with a residual 4.37-4.46
         * -> 4.09-4.16 ms (this tile's lines: 4.13-4.16; two and four tiles ahead 4.17-4.31);
         * at b1 (residual in L3) +1%, hence only where res_far. */
        if (tile_store && res && epi && epi->res_far && !pf) {
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) _mm_prefetch((const char *)(res + i * ldc + (v + 3) * 16), _MM_HINT_T0);
        }
    }
    int64_t pf_acc = 0;
    /* In panel order (pf): the next row strip's residual lines of this panel, spread over the
     * k loop as the B rows are. */
    const float *rpf = pf && tile_store && res && epi && epi->res_far ? res + MR * ldc : NULL;
    int64_t r_acc = 0;
    int r_line = 0;
    for (int64_t k = 0; k < kc; k++) {
        __m512 bv[3];
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) bv[v] = _mm512_loadu_ps(b + v * 16);
        if (ld == nv * 16) {
            _mm_prefetch((const char *)(b + 8 * ld), _MM_HINT_T0);
        } else {
            /* B read in place (a 1x1 conv's image): each row's nv*16 floats are one more
             * line than a packed row (unaligned) and a stride apart, which the L1 prefetchers
             * do not fetch ahead; so every line of the row 8 ahead, last float included.
             * seg_lraspp's 960 -> 128/160 projections at 49x35: 85-91 -> 96-100 GFLOP/s. */
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) _mm_prefetch((const char *)(b + 8 * ld + v * 16), _MM_HINT_T0);
            _mm_prefetch((const char *)(b + 8 * ld + nv * 16 - 1 + (xin ? nx : 0)), _MM_HINT_T0);
        }
        if (a_next && !(k & 1)) _mm_prefetch((const char *)(a_next + k * MR), _MM_HINT_T1);
        if (pf) {
            /* pf_rows rows of the next B panel spread evenly over the kc steps (pf_rows <= kc) */
            pf_acc += pf_rows;
            if (pf_acc >= kc) {
                pf_acc -= kc;
                _mm_prefetch((const char *)pf, _MM_HINT_T1);
                _mm_prefetch((const char *)(pf + 16), _MM_HINT_T1);
                _mm_prefetch((const char *)(pf + 32), _MM_HINT_T1);
                _mm_prefetch((const char *)(pf + DT_GEMM_NR - 1), _MM_HINT_T1);
                pf += pf_ld;
            }
            if (rpf) {
                r_acc += MR * nv;
                while (r_acc >= kc && r_line < MR * nv) {
                    r_acc -= kc;
                    _mm_prefetch((const char *)(rpf + r_line / nv * ldc + r_line % nv * 16), _MM_HINT_T0);
                    r_line++;
                }
            }
        }
        if (nx) {
            /* the extra columns: the A column (8 rows) against each one's B value */
            if (!xin) _mm_prefetch((const char *)(xb + 8 * xld), _MM_HINT_T0);
            __m512 acol = _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_loadu_pd((const double *)a)));
#pragma GCC unroll 2
            for (int q = 0; q < (nx + 1) / 2; q++) {
                __m512 bq = _mm512_set1_ps(xb[2 * q]);
                if (2 * q + 1 < nx) bq = _mm512_mask_broadcastss_ps(bq, 0xff00, _mm_load_ss(xb + 2 * q + 1));
                xacc[q] = _mm512_fmadd_ps(acol, bq, xacc[q]);
            }
            xb += xld;
        }
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        a += MR;
        b += ld;
    }
    /* A whole 8-row tile of the first block with beta 0 and Relu, Clip, HardSwish, HardSigmoid or
     * no activation (every 1x1 and im2col conv of resnet50, mobilenet_v2 and seg_lraspp): the
     * store decided once for the tile. In the x kernel's bodies since session 32, each a
     * function of its own (inlined together it slowed the strips of few panels by 3-7%, session
     * 24); its nx = 0 body (dt_gemm_kernel_next_avx512) keeps the row store, which
     * test_gemm_tile_store compares. */
    if (whole) {
        dt_gemm_tile_store(acc, nv, c, ldc, bias, epi, res, nt);
    } else {
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            if (i >= m) break;
            dt_gemm_row_out(acc[i], nv, c + i * ldc, n, first, beta, bias ? bias[i] : 0.0f, epi,
                            res ? res + i * ldc : NULL);
        }
    }
    if (nx) {
        /* Row i's extra values out of lane i of each pair (a permute: a round trip through
         * memory stalled on store forwarding, 8% of a 7x7 layer of K = 160), then the same
         * store (bias, beta, epilogue) as any other column: the narrow kernel's bits. */
        dt_epilogue te;
        if (epi) {
            te = *epi;
            if (te.col_bias) te.col_bias += nv * 16;
        }
        __m512 hi = nx > 2 ? xacc[1] : xacc[0];
        __m512i idx = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 24, 16, 8, 0);
        for (int i = 0; i < m; i++) {
            __m512 v = _mm512_permutex2var_ps(xacc[0], _mm512_add_epi32(idx, _mm512_set1_epi32(i)), hi);
            dt_gemm_row_out(&v, 1, c + i * ldc + nv * 16, nx, first, beta, bias ? bias[i] : 0.0f,
                            epi ? &te : NULL, res ? res + i * ldc + nv * 16 : NULL);
        }
    }
}

#define DT_GEMM_BODY(MRV, EPI)                                                               \
    do {                                                                                     \
        if (nv == 3)                                                                         \
            dt_gemm_avx512_body(MRV, 3, kc, a, b, ldb, c, ldc, m, n, first, beta, bias, EPI, res, 0, NULL, 0, NULL, true, NULL, 0, 0); \
        else if (nv == 2)                                                                    \
            dt_gemm_avx512_body(MRV, 2, kc, a, b, ldb, c, ldc, m, n, first, beta, bias, EPI, res, 0, NULL, 0, NULL, true, NULL, 0, 0); \
        else                                                                                 \
            dt_gemm_avx512_body(MRV, 1, kc, a, b, ldb, c, ldc, m, n, first, beta, bias, EPI, res, 0, NULL, 0, NULL, true, NULL, 0, 0); \
    } while (0)

DT_AVX512 void dt_gemm_kernel_avx512(int64_t kc, const float *a, const float *b, int64_t ldb, int nv,
                                     float *c, int64_t ldc, int m, int n, bool first, float beta,
                                     const float *bias)
{
    const float *res = NULL;
    if (m > 4)
        DT_GEMM_BODY(8, NULL);
    else if (m > 2)
        DT_GEMM_BODY(4, NULL);
    else if (m == 2)
        DT_GEMM_BODY(2, NULL);
    else
        DT_GEMM_BODY(1, NULL);
}

/* The 8-row tiles with an epilogue, a function of their own: inlined beside the smaller bodies
 * two accumulators lived on the stack across the k loop (230 -> 272-283 GF/s in cache, Zen 5,
 * bench/bench_kernels.c), as in the bfloat16 kernel (gemm_bf16.c). */
static __attribute__((noinline)) DT_AVX512 void
dt_gemm_epi_tile8(int64_t kc, const float *a, const float *b, int64_t ldb, int nv, float *c, int64_t ldc, int m, int n,
                  bool first, float beta, const float *bias, const dt_epilogue *epi, const float *res)
{
    DT_GEMM_BODY(8, epi);
}

DT_AVX512 void dt_gemm_kernel_avx512_epi(int64_t kc, const float *a, const float *b, int64_t ldb, int nv,
                                         float *c, int64_t ldc, int m, int n, bool first, float beta,
                                         const float *bias, const dt_epilogue *epi, const float *res)
{
    if (m > 4)
        dt_gemm_epi_tile8(kc, a, b, ldb, nv, c, ldc, m, n, first, beta, bias, epi, res);
    else if (m > 2)
        DT_GEMM_BODY(4, epi);
    else if (m == 2)
        DT_GEMM_BODY(2, epi);
    else
        DT_GEMM_BODY(1, epi);
}

dt_gemm_kernel_epi_fn dt_gemm_kernel_epi_select(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? dt_gemm_kernel_avx512_epi : NULL;
}

/* The x kernel's nx = 0 case (a plain tile that prefetches the next A panel), a function of
 * its own: inlined beside the nx > 0 bodies it changed their register allocation (7x7 1x1s
 * 10% slower). */
static __attribute__((noinline)) DT_AVX512 void
dt_gemm_kernel_next_avx512(int64_t kc, const float *a, const float *a_next, const float *b, int64_t ldb, int nv, int n,
                           float *c, int64_t ldc, int m, bool first, float beta, const float *bias,
                           const dt_epilogue *epi, const float *res)
{
    if (nv == 3)
        dt_gemm_avx512_body(8, 3, kc, a, b, ldb, c, ldc, m, n, first, beta, bias, epi, res, 0, NULL, 0, a_next, false, NULL, 0, 0);
    else if (nv == 2)
        dt_gemm_avx512_body(8, 2, kc, a, b, ldb, c, ldc, m, n, first, beta, bias, epi, res, 0, NULL, 0, a_next, false, NULL, 0, 0);
    else
        dt_gemm_avx512_body(8, 1, kc, a, b, ldb, c, ldc, m, n, first, beta, bias, epi, res, 0, NULL, 0, a_next, false, NULL, 0, 0);
}

/* The x kernel's bodies, each a function of its own, with the whole-tile store: inlined side by
 * side in one function, the tile store slowed them (session 24, below) and their allocation
 * was poor; alone, in cache (bench_kernels, K = 64, Zen 5): 78-81% -> 88-90% of peak, K = 256
 * 90-92% -> 94-96%. */
#define DT_GEMM_X(NX)                                                                                            \
    static __attribute__((noinline)) DT_AVX512 void dt_gemm_x##NX(                                               \
        int64_t kc, const float *a, const float *a_next, const float *b, int64_t ldb, const float *xb, int64_t xld, \
        float *c, int64_t ldc, int m, bool first, float beta, const float *bias, const dt_epilogue *epi,         \
        const float *res)                                                                                        \
    {                                                                                                            \
        dt_gemm_avx512_body(8, 3, kc, a, b, ldb, c, ldc, m, 48, first, beta, bias, epi, res, NX, xb, xld, a_next, \
                            true, NULL, 0, 0);                                                                   \
    }
DT_GEMM_X(1)
DT_GEMM_X(2)
DT_GEMM_X(3)
DT_GEMM_X(4)

DT_AVX512 void dt_gemm_kernel_x_avx512(int64_t kc, const float *a, const float *a_next, const float *b, int64_t ldb,
                                       int nv, int n, const float *xb, int64_t xld, int nx, float *c, int64_t ldc,
                                       int m, bool first, float beta, const float *bias, const dt_epilogue *epi,
                                       const float *res)
{
    if (nx == 0) {
        dt_gemm_kernel_next_avx512(kc, a, a_next, b, ldb, nv, n, c, ldc, m, first, beta, bias, epi, res);
        return;
    }
    switch (nx) {
    case 1: dt_gemm_x1(kc, a, a_next, b, ldb, xb, xld, c, ldc, m, first, beta, bias, epi, res); break;
    case 2: dt_gemm_x2(kc, a, a_next, b, ldb, xb, xld, c, ldc, m, first, beta, bias, epi, res); break;
    case 3: dt_gemm_x3(kc, a, a_next, b, ldb, xb, xld, c, ldc, m, first, beta, bias, epi, res); break;
    default: dt_gemm_x4(kc, a, a_next, b, ldb, xb, xld, c, ldc, m, first, beta, bias, epi, res); break;
    }
}

dt_gemm_kernel_x_fn dt_gemm_kernel_x_select(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? dt_gemm_kernel_x_avx512 : NULL;
}

/* The pf kernel's bodies for one a_next. Each caller below is a function of its own, the
 * plain one passing NULL as a constant, so the k loop of the tiles that prefetch no A panel
 * (all but a panel-order block's first panel) carries no test for it (resnet50's 56x56 1x1s,
 * K 64-256: 5-7% slower with the test; both inlined into one function, 20% slower). */
static inline __attribute__((always_inline)) DT_AVX512 void
dt_gemm_pf_nv(int64_t kc, const float *a, const float *b, int64_t ldb, int nv, float *c, int64_t ldc, int m, int n,
              bool first, float beta, const float *bias, const dt_epilogue *epi, const float *res, const float *pf,
              int64_t pf_ld, int64_t pf_rows, const float *a_next)
{
    if (nv == 3)
        dt_gemm_avx512_body(8, 3, kc, a, b, ldb, c, ldc, m, n, first, beta, bias, epi, res, 0, NULL, 0, a_next, true, pf,
                            pf_ld, pf_rows);
    else if (nv == 2)
        dt_gemm_avx512_body(8, 2, kc, a, b, ldb, c, ldc, m, n, first, beta, bias, epi, res, 0, NULL, 0, a_next, true, pf,
                            pf_ld, pf_rows);
    else
        dt_gemm_avx512_body(8, 1, kc, a, b, ldb, c, ldc, m, n, first, beta, bias, epi, res, 0, NULL, 0, a_next, true, pf,
                            pf_ld, pf_rows);
}

static __attribute__((noinline)) DT_AVX512 void
dt_gemm_pf_plain(int64_t kc, const float *a, const float *b, int64_t ldb, int nv, float *c, int64_t ldc, int m, int n,
                 bool first, float beta, const float *bias, const dt_epilogue *epi, const float *res, const float *pf,
                 int64_t pf_ld, int64_t pf_rows)
{
    dt_gemm_pf_nv(kc, a, b, ldb, nv, c, ldc, m, n, first, beta, bias, epi, res, pf, pf_ld, pf_rows, NULL);
}

static __attribute__((noinline)) DT_AVX512 void
dt_gemm_pf_next(int64_t kc, const float *a, const float *b, int64_t ldb, int nv, float *c, int64_t ldc, int m, int n,
                bool first, float beta, const float *bias, const dt_epilogue *epi, const float *res, const float *pf,
                int64_t pf_ld, int64_t pf_rows, const float *a_next)
{
    dt_gemm_pf_nv(kc, a, b, ldb, nv, c, ldc, m, n, first, beta, bias, epi, res, pf, pf_ld, pf_rows, a_next);
}

DT_AVX512 void dt_gemm_kernel_pf_avx512(int64_t kc, const float *a, const float *b, int64_t ldb, int nv, float *c,
                                        int64_t ldc, int m, int n, bool first, float beta, const float *bias,
                                        const dt_epilogue *epi, const float *res, const float *pf, int64_t pf_ld,
                                        int64_t pf_rows, const float *a_next)
{
    if (a_next)
        dt_gemm_pf_next(kc, a, b, ldb, nv, c, ldc, m, n, first, beta, bias, epi, res, pf, pf_ld, pf_rows, a_next);
    else
        dt_gemm_pf_plain(kc, a, b, ldb, nv, c, ldc, m, n, first, beta, bias, epi, res, pf, pf_ld, pf_rows);
}

dt_gemm_kernel_pf_fn dt_gemm_kernel_pf_select(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? dt_gemm_kernel_pf_avx512 : NULL;
}

/* The store of a whole 8 x (nv*16) tile of the in-place-A kernel with FusedMatMul's epilogue
 * (column bias, residual, no activation, Gelu or SiLU), on the first K block with beta 0 or a
 * later one: dt_gemm_row_out's operations in its order (the same bits), with the epilogue's
 * fields read once into locals (through epi, each store to C could have changed them, so they
 * were read again per vector) and no partial-vector masks. bert_small 8x128 1 thread: its
 * FusedMatMuls -0.4 ms a run (layer minima 31.5 -> 31.1 ms; session 19). SiLU takes a row's
 * vectors through the sigmoid's steps together (dt_sigmoid_vecs). */
static inline __attribute__((always_inline)) DT_AVX512 void
dt_gemm_rows_tile_out(__m512 (*acc)[3], const int nv, float *c, int64_t ldc, bool first, const float *bias,
                      const float *cb, const float *res, const dt_act act)
{
    const bool gelu = act == DT_ACT_GELU;
    if (act == DT_ACT_SILU) {
        __m512 cbv[3];
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) cbv[v] = cb ? _mm512_loadu_ps(cb + v * 16) : _mm512_setzero_ps();
#pragma GCC unroll 8
        for (int i = 0; i < DT_GEMM_MR; i++) {
            __m512 bi = _mm512_set1_ps(bias ? bias[i] : 0.0f), r[3];
            float *ci = c + i * ldc;
            const float *ri = res ? res + i * ldc : NULL;
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) {
                r[v] = first ? _mm512_add_ps(acc[i][v], bi) : _mm512_add_ps(acc[i][v], _mm512_loadu_ps(ci + v * 16));
                if (cb) r[v] = _mm512_add_ps(r[v], cbv[v]);
                if (ri) r[v] = _mm512_add_ps(r[v], _mm512_loadu_ps(ri + v * 16));
            }
            dt_sigmoid_vecs(r, nv, true);
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) _mm512_storeu_ps(ci + v * 16, r[v]);
        }
        return;
    }
    __m512 cbv[3];
#pragma GCC unroll 3
    for (int v = 0; v < nv; v++) cbv[v] = cb ? _mm512_loadu_ps(cb + v * 16) : _mm512_setzero_ps();
#pragma GCC unroll 1
    for (int i = 0; i < DT_GEMM_MR; i++) {
        __m512 bi = _mm512_set1_ps(bias ? bias[i] : 0.0f);
        float *ci = c + i * ldc;
        const float *ri = res ? res + i * ldc : NULL;
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) {
            __m512 r = first ? _mm512_add_ps(acc[i][v], bi) : _mm512_add_ps(acc[i][v], _mm512_loadu_ps(ci + v * 16));
            if (cb) r = _mm512_add_ps(r, cbv[v]);
            if (ri) r = _mm512_add_ps(r, _mm512_loadu_ps(ri + v * 16));
            if (gelu) r = dt_gelu_v16(r);
            _mm512_storeu_ps(ci + v * 16, r);
        }
    }
}

/* As dt_gemm_avx512_body, with A read in place: row i of the tile at a + i*lda (rows past m
 * repeat row m-1, which exists, and are never stored); with epi, the epilogue in the store as
 * there. */
static inline __attribute__((always_inline)) DT_AVX512 void
dt_gemm_avx512_rows_body(const int mr, const int nv, int64_t kc, const float *a, int64_t lda,
                         const float *b, int64_t ld, float *c, int64_t ldc, int m, int n, bool first,
                         float beta, const float *bias, const dt_epilogue *epi, const float *res)
{
    enum { MR = DT_GEMM_MR };
    const float *ar[MR];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) ar[i] = a + (i < m ? i : m - 1) * lda;
    /* A residual is read only by the store: its tile's lines start moving now, a k loop ahead
     * (Llama's o_proj at 4x512: the residual stream, written layers before, came from L3 in the
     * store). */
    if (epi && res) {
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            if (i >= m) break;
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) _mm_prefetch((const char *)(res + i * ldc + v * 16), _MM_HINT_T0);
        }
    }
    __m512 acc[MR][3];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) acc[i][v] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        __m512 bv[3];
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) bv[v] = _mm512_loadu_ps(b + v * 16);
        _mm_prefetch((const char *)(b + 8 * ld), _MM_HINT_T0);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            __m512 ai = _mm512_set1_ps(ar[i][k]);
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        b += ld;
    }
    if (epi && mr == MR && m == MR && n == nv * 16 && (first ? beta == 0.0f : true) &&
        (epi->act == DT_ACT_NONE || epi->act == DT_ACT_GELU || epi->act == DT_ACT_SILU)) {
        if (epi->act == DT_ACT_SILU)
            dt_gemm_rows_tile_out(acc, nv, c, ldc, first, bias, epi->col_bias, res, DT_ACT_SILU);
        else if (epi->act == DT_ACT_GELU)
            dt_gemm_rows_tile_out(acc, nv, c, ldc, first, bias, epi->col_bias, res, DT_ACT_GELU);
        else
            dt_gemm_rows_tile_out(acc, nv, c, ldc, first, bias, epi->col_bias, res, DT_ACT_NONE);
        return;
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        if (i >= m) break;
        dt_gemm_row_out(acc[i], nv, c + i * ldc, n, first, beta, bias ? bias[i] : 0.0f, epi,
                        res ? res + i * ldc : NULL);
    }
}

#define DT_GEMM_ROWS_BODY(MRV, EPI)                                                          \
    do {                                                                                     \
        if (nv == 3)                                                                         \
            dt_gemm_avx512_rows_body(MRV, 3, kc, a, lda, b, ldb, c, ldc, m, n, first, beta, bias, EPI, res); \
        else if (nv == 2)                                                                    \
            dt_gemm_avx512_rows_body(MRV, 2, kc, a, lda, b, ldb, c, ldc, m, n, first, beta, bias, EPI, res); \
        else                                                                                 \
            dt_gemm_avx512_rows_body(MRV, 1, kc, a, lda, b, ldb, c, ldc, m, n, first, beta, bias, EPI, res); \
    } while (0)

DT_AVX512 void dt_gemm_kernel_rows_avx512(int64_t kc, const float *a, int64_t lda, const float *b,
                                          int64_t ldb, int nv, float *c, int64_t ldc, int m, int n,
                                          bool first, float beta, const float *bias)
{
    const float *res = NULL;
    if (m > 4)
        DT_GEMM_ROWS_BODY(8, NULL);
    else if (m > 2)
        DT_GEMM_ROWS_BODY(4, NULL);
    else if (m == 2)
        DT_GEMM_ROWS_BODY(2, NULL);
    else
        DT_GEMM_ROWS_BODY(1, NULL);
}

DT_AVX512 void dt_gemm_kernel_rows_avx512_epi(int64_t kc, const float *a, int64_t lda, const float *b,
                                              int64_t ldb, int nv, float *c, int64_t ldc, int m, int n,
                                              bool first, float beta, const float *bias, const dt_epilogue *epi,
                                              const float *res)
{
    if (m > 4)
        DT_GEMM_ROWS_BODY(8, epi);
    else if (m > 2)
        DT_GEMM_ROWS_BODY(4, epi);
    else if (m == 2)
        DT_GEMM_ROWS_BODY(2, epi);
    else
        DT_GEMM_ROWS_BODY(1, epi);
}

dt_gemm_kernel_rows_epi_fn dt_gemm_kernel_rows_epi_select(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? dt_gemm_kernel_rows_avx512_epi : NULL;
}

/* One ymm accumulator per column and A panel (8 rows in its lanes): P panels of 8 rows (panel p
 * at a + p*lda) and NC columns fixed per body. The P panels' chains are independent, so the
 * FMAs of one k overlap instead of each column waiting out the FMA latency of the last k (one
 * panel and one column: one FMA per 4 cycles, the cost of a sixth of a 48-column panel). */
static inline __attribute__((always_inline)) DT_AVX2FMA void
dt_gemm_narrow_body(const int P, const int nc, int64_t kc, const float *a, int64_t lda, const float *b,
                    int64_t ldb, float *c, int64_t ldc, int m, bool first, float beta, const float *bias)
{
    __m256 acc[8][DT_GEMM_NARROW];
#pragma GCC unroll 8
    for (int p = 0; p < P; p++)
#pragma GCC unroll 4
        for (int j = 0; j < nc; j++) acc[p][j] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        __m256 bk[DT_GEMM_NARROW];
#pragma GCC unroll 4
        for (int j = 0; j < nc; j++) bk[j] = _mm256_set1_ps(b[k * ldb + j]);
#pragma GCC unroll 8
        for (int p = 0; p < P; p++) {
            __m256 ak = _mm256_loadu_ps(a + p * lda + k * DT_GEMM_MR);
#pragma GCC unroll 4
            for (int j = 0; j < nc; j++) acc[p][j] = _mm256_fmadd_ps(ak, bk[j], acc[p][j]);
        }
    }
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) {
        int mp = m - p * 8 < 8 ? m - p * 8 : 8;
        float *cp = c + p * 8 * ldc;
        __m256 bv = _mm256_setzero_ps();
        float tmp[8];
        if (first && bias) {
            for (int i = 0; i < 8; i++) tmp[i] = i < mp ? bias[p * 8 + i] : 0.0f;
            bv = _mm256_loadu_ps(tmp);
        }
#pragma GCC unroll 4
        for (int j = 0; j < nc; j++) {
            for (int i = 0; i < 8; i++) tmp[i] = i < mp && (!first || beta != 0.0f) ? cp[i * ldc + j] : 0.0f;
            __m256 old = _mm256_loadu_ps(tmp), r = acc[p][j];
            if (first) {
                r = _mm256_add_ps(r, bv);
                if (beta != 0.0f) r = _mm256_fmadd_ps(_mm256_set1_ps(beta), old, r);
            } else {
                r = _mm256_add_ps(r, old);
            }
            _mm256_storeu_ps(tmp, r);
            for (int i = 0; i < mp; i++) cp[i * ldc + j] = tmp[i];
        }
    }
}

/* `big` panels at a time, as many as the registers allow (big * NC accumulators: of 32 with
 * AVX512VL, of 16 with AVX2 alone), then 4, 2 and 1. */
static inline __attribute__((always_inline)) DT_AVX2FMA void
dt_gemm_narrow_cols(const int nc, const int big, int64_t kc, const float *a, int64_t lda, const float *b,
                    int64_t ldb, float *c, int64_t ldc, int m, bool first, float beta, const float *bias)
{
    int p = 0, panels = (m + 7) / 8;
    for (; p + big <= panels; p += big)
        dt_gemm_narrow_body(big, nc, kc, a + p * lda, lda, b, ldb, c + p * 8 * ldc, ldc, m - p * 8, first, beta,
                            bias ? bias + p * 8 : NULL);
    if (big == 8 && p + 4 <= panels) {
        dt_gemm_narrow_body(4, nc, kc, a + p * lda, lda, b, ldb, c + p * 8 * ldc, ldc, m - p * 8, first, beta,
                            bias ? bias + p * 8 : NULL);
        p += 4;
    }
    if (p + 2 <= panels) {
        dt_gemm_narrow_body(2, nc, kc, a + p * lda, lda, b, ldb, c + p * 8 * ldc, ldc, m - p * 8, first, beta,
                            bias ? bias + p * 8 : NULL);
        p += 2;
    }
    if (p < panels)
        dt_gemm_narrow_body(1, nc, kc, a + p * lda, lda, b, ldb, c + p * 8 * ldc, ldc, m - p * 8, first, beta,
                            bias ? bias + p * 8 : NULL);
}

DT_AVX512VL void dt_gemm_kernel_narrow_panels_avx512(int64_t kc, const float *a, int64_t lda, const float *b,
                                                   int64_t ldb, float *c, int64_t ldc, int m, int n, bool first,
                                                   float beta, const float *bias)
{
    switch (n) {
    case 1: dt_gemm_narrow_cols(1, 8, kc, a, lda, b, ldb, c, ldc, m, first, beta, bias); break;
    case 2: dt_gemm_narrow_cols(2, 8, kc, a, lda, b, ldb, c, ldc, m, first, beta, bias); break;
    case 3: dt_gemm_narrow_cols(3, 8, kc, a, lda, b, ldb, c, ldc, m, first, beta, bias); break;
    default: dt_gemm_narrow_cols(4, 4, kc, a, lda, b, ldb, c, ldc, m, first, beta, bias); break;
    }
}

/* The same on AVX2 alone (16 ymm registers): at most 12 accumulators, so the bodies do not
 * spill; the bits of the AVX-512 form (the same operations per element). */
DT_AVX2FMA void dt_gemm_kernel_narrow_panels_avx2(int64_t kc, const float *a, int64_t lda, const float *b,
                                                 int64_t ldb, float *c, int64_t ldc, int m, int n, bool first,
                                                 float beta, const float *bias)
{
    switch (n) {
    case 1: dt_gemm_narrow_cols(1, 8, kc, a, lda, b, ldb, c, ldc, m, first, beta, bias); break;
    case 2: dt_gemm_narrow_cols(2, 4, kc, a, lda, b, ldb, c, ldc, m, first, beta, bias); break;
    case 3: dt_gemm_narrow_cols(3, 4, kc, a, lda, b, ldb, c, ldc, m, first, beta, bias); break;
    default: dt_gemm_narrow_cols(4, 2, kc, a, lda, b, ldb, c, ldc, m, first, beta, bias); break;
    }
}

DT_AVX2FMA void dt_gemm_kernel_narrow_avx2(int64_t kc, const float *a, const float *b, int64_t ldb, int nv,
                                          float *c, int64_t ldc, int m, int n, bool first, float beta,
                                          const float *bias)
{
    (void)nv;
    dt_gemm_kernel_narrow_panels_avx2(kc, a, kc * DT_GEMM_MR, b, ldb, c, ldc, m, n, first, beta, bias);
}

DT_AVX512VL void dt_gemm_kernel_narrow_avx512(int64_t kc, const float *a, const float *b, int64_t ldb, int nv,
                                            float *c, int64_t ldc, int m, int n, bool first, float beta,
                                            const float *bias)
{
    (void)nv;
    dt_gemm_kernel_narrow_panels_avx512(kc, a, kc * DT_GEMM_MR, b, ldb, c, ldc, m, n, first, beta, bias);
}

/* The narrow kernels' CPU (DT_AVX512VL). */
static bool dt_gemm_has_avx512vl(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
}

dt_gemm_kernel_narrow_panels_fn dt_gemm_kernel_narrow_panels_select(void)
{
    return dt_gemm_has_avx512vl() ? dt_gemm_kernel_narrow_panels_avx512
         : dt_cpu_has_avx2_fma() && !__builtin_cpu_supports("avx512f") ? dt_gemm_kernel_narrow_panels_avx2
                                                                        : NULL;
}

dt_gemm_kernel_fn dt_gemm_kernel_narrow_select(void)
{
    return dt_gemm_has_avx512vl() ? dt_gemm_kernel_narrow_avx512
         : dt_cpu_has_avx2_fma() && !__builtin_cpu_supports("avx512f") ? dt_gemm_kernel_narrow_avx2
                                                                        : NULL;
}

dt_gemm_kernel_rows_fn dt_gemm_kernel_rows_select(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return dt_gemm_kernel_rows_avx512;
    if (dt_cpu_has_avx2_fma()) return dt_gemm_kernel_rows_avx2;
    return dt_gemm_kernel_rows_ref;
}

dt_gemm_kernel_fn dt_gemm_kernel_select(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return dt_gemm_kernel_avx512;
    if (dt_cpu_has_avx2_fma()) return dt_gemm_kernel_avx2;
    return dt_gemm_kernel_ref;
}
