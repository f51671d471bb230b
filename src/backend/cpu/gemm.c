/* The GEMM driver: cache blocking, packing and the split over threads.
 *
 * Loop nest (per thread, over its slice of C): N in blocks of NC, K in blocks of KC (B block
 * packed once, KC x NC = 1 MB, kept in L2), M in blocks of MC (A block packed with alpha
 * folded in), then for each A micro-panel (8 x KC = 8 KB, stays in L1) every B micro-panel
 * streams from L2 through the micro-kernel. */
#include "backend/cpu/gemm.h"
#include "core/alloc.h"
#include "core/checked.h"
#include "core/status.h"

#include <stdlib.h>
#include <immintrin.h>
#include <string.h>

enum { KC = DT_GEMM_KC, NC = DT_GEMM_NC, MC = 64 * DT_GEMM_MR };
#define DT_GEMM_FORK_MACS 4e5
/* Ranges per thread of a fine split (dt_gemm_fine). */
enum { DT_GEMM_FINE = 4 };

/* The micro-kernels are chosen once from the CPU's features. Several threads may choose at
 * once; they all compute the same pointer, and the relaxed atomic accesses make that race
 * defined (a plain static would be a data race in C11, and ThreadSanitizer says so). */
static dt_gemm_kernel_fn dt_gemm_kernel(void)
{
    static dt_gemm_kernel_fn k;
    dt_gemm_kernel_fn f = __atomic_load_n(&k, __ATOMIC_RELAXED);
    if (!f) __atomic_store_n(&k, f = dt_gemm_kernel_select(), __ATOMIC_RELAXED);
    return f;
}

static dt_gemm_kernel_narrow_panels_fn dt_gemm_kernel_narrow(void)
{
    static dt_gemm_kernel_narrow_panels_fn k;   /* NULL stays NULL (recomputed) */
    dt_gemm_kernel_narrow_panels_fn f = __atomic_load_n(&k, __ATOMIC_RELAXED);
    if (!f) __atomic_store_n(&k, f = dt_gemm_kernel_narrow_panels_select(), __ATOMIC_RELAXED);
    return f;
}

static dt_gemm_kernel_x_fn dt_gemm_kernel_x(void)
{
    static dt_gemm_kernel_x_fn k;   /* NULL stays NULL (recomputed) */
    dt_gemm_kernel_x_fn f = __atomic_load_n(&k, __ATOMIC_RELAXED);
    if (!f) __atomic_store_n(&k, f = dt_gemm_kernel_x_select(), __ATOMIC_RELAXED);
    return f;
}

static dt_gemm_kernel_pf_fn dt_gemm_kernel_pf(void)
{
    static dt_gemm_kernel_pf_fn k;   /* NULL stays NULL (recomputed) */
    dt_gemm_kernel_pf_fn f = __atomic_load_n(&k, __ATOMIC_RELAXED);
    if (!f) __atomic_store_n(&k, f = dt_gemm_kernel_pf_select(), __ATOMIC_RELAXED);
    return f;
}

static dt_gemm_kernel_epi_fn dt_gemm_kernel_epi(void)
{
    static dt_gemm_kernel_epi_fn k;   /* NULL stays NULL (recomputed) */
    dt_gemm_kernel_epi_fn f = __atomic_load_n(&k, __ATOMIC_RELAXED);
    if (!f) __atomic_store_n(&k, f = dt_gemm_kernel_epi_select(), __ATOMIC_RELAXED);
    return f;
}

static dt_gemm_kernel_rows_fn dt_gemm_kernel_rows(void)
{
    static dt_gemm_kernel_rows_fn k;
    dt_gemm_kernel_rows_fn f = __atomic_load_n(&k, __ATOMIC_RELAXED);
    if (!f) __atomic_store_n(&k, f = dt_gemm_kernel_rows_select(), __ATOMIC_RELAXED);
    return f;
}

dt_gemm_pack_a8_fn dt_gemm_pack8(void)
{
    static dt_gemm_pack_a8_fn k;   /* NULL stays NULL (recomputed) */
    dt_gemm_pack_a8_fn f = __atomic_load_n(&k, __ATOMIC_RELAXED);
    if (!f) __atomic_store_n(&k, f = dt_gemm_pack_a8_select(), __ATOMIC_RELAXED);
    return f;
}

static dt_gemm_kernel_rows_epi_fn dt_gemm_kernel_rows_epi(void)
{
    static dt_gemm_kernel_rows_epi_fn k;   /* NULL stays NULL (recomputed) */
    dt_gemm_kernel_rows_epi_fn f = __atomic_load_n(&k, __ATOMIC_RELAXED);
    if (!f) __atomic_store_n(&k, f = dt_gemm_kernel_rows_epi_select(), __ATOMIC_RELAXED);
    return f;
}

static dt_gemm_kernel_bf16_fn dt_gemm_kernel_bf16(void)
{
    static dt_gemm_kernel_bf16_fn k;
    dt_gemm_kernel_bf16_fn f = __atomic_load_n(&k, __ATOMIC_RELAXED);
    if (!f) __atomic_store_n(&k, f = dt_gemm_kernel_bf16_select(), __ATOMIC_RELAXED);
    return f;
}

static dt_gemm_bf16_pack_fn dt_gemm_bf16_pack(void)
{
    static dt_gemm_bf16_pack_fn k;
    dt_gemm_bf16_pack_fn f = __atomic_load_n(&k, __ATOMIC_RELAXED);
    if (!f) __atomic_store_n(&k, f = dt_gemm_bf16_pack_select(), __ATOMIC_RELAXED);
    return f;
}

static dt_gemm_bf16_pack_scaled_fn dt_gemm_bf16_pack_scaled(void)
{
    static dt_gemm_bf16_pack_scaled_fn k;
    dt_gemm_bf16_pack_scaled_fn f = __atomic_load_n(&k, __ATOMIC_RELAXED);
    if (!f) __atomic_store_n(&k, f = dt_gemm_bf16_pack_scaled_select(), __ATOMIC_RELAXED);
    return f;
}

static dt_gemm_bf16_pack_rows_fn dt_gemm_bf16_pack_rows(void)
{
    static dt_gemm_bf16_pack_rows_fn k;
    dt_gemm_bf16_pack_rows_fn f = __atomic_load_n(&k, __ATOMIC_RELAXED);
    if (!f) __atomic_store_n(&k, f = dt_gemm_bf16_pack_rows_select(), __ATOMIC_RELAXED);
    return f;
}

/* The float16 kernel and B conversion (dt_gemm.fp16), chosen once as the bfloat16 ones. */
static dt_gemm_kernel_fp16_fn dt_gemm_kernel_fp16(void)
{
    static dt_gemm_kernel_fp16_fn k;
    dt_gemm_kernel_fp16_fn f = __atomic_load_n(&k, __ATOMIC_RELAXED);
    if (!f) __atomic_store_n(&k, f = dt_gemm_kernel_fp16_select(), __ATOMIC_RELAXED);
    return f;
}

static dt_gemm_fp16_pack_fn dt_gemm_fp16_pack(void)
{
    static dt_gemm_fp16_pack_fn k;
    dt_gemm_fp16_pack_fn f = __atomic_load_n(&k, __ATOMIC_RELAXED);
    if (!f) __atomic_store_n(&k, f = dt_gemm_fp16_pack_select(), __ATOMIC_RELAXED);
    return f;
}

static dt_gemm_kernel_bf16_narrow_fn dt_gemm_kernel_bf16_narrow(void)
{
    static dt_gemm_kernel_bf16_narrow_fn k;   /* NULL stays NULL (recomputed) */
    dt_gemm_kernel_bf16_narrow_fn f = __atomic_load_n(&k, __ATOMIC_RELAXED);
    if (!f) __atomic_store_n(&k, f = dt_gemm_kernel_bf16_narrow_select(), __ATOMIC_RELAXED);
    return f;
}

static dt_gemm_kernel_bf16_x_fn dt_gemm_kernel_bf16_x(void)
{
    static dt_gemm_kernel_bf16_x_fn k;   /* NULL stays NULL (recomputed) */
    dt_gemm_kernel_bf16_x_fn f = __atomic_load_n(&k, __ATOMIC_RELAXED);
    if (!f) __atomic_store_n(&k, f = dt_gemm_kernel_bf16_x_select(), __ATOMIC_RELAXED);
    return f;
}

static dt_gemm_kernel_bf16_next_fn dt_gemm_kernel_bf16_next(void)
{
    static dt_gemm_kernel_bf16_next_fn k;   /* NULL stays NULL (recomputed) */
    dt_gemm_kernel_bf16_next_fn f = __atomic_load_n(&k, __ATOMIC_RELAXED);
    if (!f) __atomic_store_n(&k, f = dt_gemm_kernel_bf16_next_select(), __ATOMIC_RELAXED);
    return f;
}

static int64_t dt_min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t dt_max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Offset in elements of the bfloat16 B panel holding column j (a multiple of DT_GEMM_NR) of
 * a K block of kc2 k pairs; spaced as dt_gemm_panel spaces float panels (64 bytes apart from
 * a multiple of 4 KB). */
static int64_t dt_gemm_bf16_panel(int64_t j, int64_t kc2)
{
    return j / DT_GEMM_NR * (2 * DT_GEMM_NR * kc2 + 32);
}

/* A is packed before the product (float32 or bfloat16): no run packs it. */
static bool dt_gemm_a_prepacked(const dt_gemm *g) { return g->A_packed || g->A_bf16; }

void dt_gemm_scatter_row(const float *line, int64_t nc, int64_t kk, int64_t kc, float *dst)
{
    enum { NR = DT_GEMM_NR };
    for (int64_t jp = 0; jp < nc; jp += NR) {
        int64_t w = dt_min64(NR, nc - jp), ld = (w + 15) & ~(int64_t)15;
        float *d = dst + dt_gemm_panel(jp, kc) + kk * ld;
        dt_gemm_copy(d, line + jp, w);
        for (int64_t j = w; j < ld; j++) d[j] = 0.0f;
    }
}

/* Prefetches kc rows (ldb apart) of one 48-column panel read in place into L2: up to four
 * lines a row (192 bytes, unaligned). */
static void dt_gemm_prefetch_panel(const float *b, int64_t ldb, int64_t kc)
{
    for (int64_t k = 0; k < kc; k++) {
        const char *q = (const char *)(b + k * ldb);
        _mm_prefetch(q, _MM_HINT_T1);
        _mm_prefetch(q + 64, _MM_HINT_T1);
        _mm_prefetch(q + 128, _MM_HINT_T1);
        _mm_prefetch(q + (DT_GEMM_NR - 1) * sizeof(float), _MM_HINT_T1);
    }
}

/* The built-in B packer for a stored matrix (plain or transposed). */
static void dt_gemm_pack_b_matrix(const void *ctx, int64_t k0, int64_t kc, int64_t n0, int64_t nc,
                                  float *dst)
{
    enum { NR = DT_GEMM_NR };
    const dt_gemm *g = ctx;
    if (!g->trans_b) {
        for (int64_t kk = 0; kk < kc; kk++)
            dt_gemm_scatter_row(g->B + (k0 + kk) * g->ldb + n0, nc, kk, kc, dst);
        return;
    }
    for (int64_t jp = 0; jp < nc; jp += NR) {
        int64_t w = dt_min64(NR, nc - jp), ld = (w + 15) & ~(int64_t)15;
        float *d = dst + dt_gemm_panel(jp, kc);
        for (int64_t j = 0; j < w; j++) {
            const float *s = g->B + (n0 + jp + j) * g->ldb + k0;
            for (int64_t kk = 0; kk < kc; kk++) d[kk * ld + j] = s[kk];
        }
        for (int64_t kk = 0; kk < kc; kk++)
            for (int64_t j = w; j < ld; j++) d[kk * ld + j] = 0.0f;
    }
}

/* Packs rows [i0, i0+mc) x cols [k0, k0+kc) of alpha*A into MR-row panels, zero rows past mc. */
static void dt_gemm_pack_a(const dt_gemm *g, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
                           float *dst)
{
    enum { MR = DT_GEMM_MR };
    _Static_assert(DT_GEMM_MR == 8, "dt_gemm_pack_a8 packs 8-row panels");
    float alpha = g->alpha;
    dt_gemm_pack_a8_fn pack8 = g->trans_a ? NULL : dt_gemm_pack8();
    for (int64_t p = 0; p < mc; p += MR) {
        int64_t m = dt_min64(MR, mc - p);
        float *d = dst + p * kc;
        if (pack8 && m == MR) {
            pack8(g->A + (i0 + p) * g->lda + k0, g->lda, kc, alpha, d, MR);
            continue;
        }
        if (!g->trans_a) {
            for (int64_t i = 0; i < m; i++) {
                const float *s = g->A + (i0 + p + i) * g->lda + k0;
                for (int64_t k = 0; k < kc; k++) d[k * MR + i] = alpha * s[k];
            }
        } else {
            for (int64_t k = 0; k < kc; k++) {
                const float *s = g->A + (k0 + k) * g->lda + i0 + p;
                for (int64_t i = 0; i < m; i++) d[k * MR + i] = alpha * s[i];
            }
        }
        for (int64_t i = m; i < MR; i++)
            for (int64_t k = 0; k < kc; k++) d[k * MR + i] = 0.0f;
    }
}

int64_t dt_gemm_packed_a_floats(int64_t M, int64_t K)
{
    return (M + DT_GEMM_MR - 1) / DT_GEMM_MR * DT_GEMM_MR * K;
}

void dt_gemm_pack_a_full(const float *A, int64_t lda, bool trans_a, float alpha, int64_t M,
                         int64_t K, float *dst)
{
    /* One panel of full K is exactly what dt_gemm_pack_a writes for kc = K. */
    dt_gemm g = {.M = M, .K = K, .alpha = alpha, .A = A, .lda = lda, .trans_a = trans_a};
    for (int64_t p = 0; p < M; p += DT_GEMM_MR)
        dt_gemm_pack_a(&g, p, dt_min64(DT_GEMM_MR, M - p), 0, K, dst + p * K);
}

int64_t dt_gemm_packed_b_floats(int64_t N, int64_t K) { return (N + 15) / 16 * 16 * K; }

void dt_gemm_pack_b_full(const float *B, int64_t ldb, bool trans_b, int64_t K, int64_t N,
                         float *dst)
{
    /* A single panel of full K is exactly what dt_gemm_pack_b_matrix writes for kc = K. */
    dt_gemm g = {.K = K, .N = N, .B = B, .ldb = ldb, .trans_b = trans_b};
    for (int64_t p = 0; p < N; p += DT_GEMM_NR)
        dt_gemm_pack_b_matrix(&g, 0, K, p, dt_min64(DT_GEMM_NR, N - p), dst + p * K);
}

typedef struct dt_gemm_bufs {
    float *a, *b;
    uint16_t *a16, *b16;    /* bfloat16 products: the block's A and B panels converted */
} dt_gemm_bufs;

static void dt_gemm_epi_rows(const dt_gemm *g, int64_t r0, int64_t m, int64_t c0, int64_t n);

/* dt_gemm_slice for a bfloat16 or float16 (dt_gemm.fp16) product (dt_gemm.A_bf16 or B_bf16). Per K block, each
 * 48-column panel of B not packed at build is converted to bfloat16 pairs once, straight
 * from B's rows where they are plain (a stored B, or one packed as float32 at build), else
 * from the block packed as float32 by the same packers as the float32 product; then every
 * A panel of the slice runs over the block (kept in L2: 960 columns x 256 k x 2 bytes). An A not packed at build is packed as float32
 * per block of MC rows (alpha, trans_a) and converted likewise. */
static void dt_gemm_slice_bf16(const dt_gemm *g, int64_t m0, int64_t m1, int64_t n0, int64_t n1, dt_gemm_bufs *buf)
{
    enum { MR = DT_GEMM_MR, NR = DT_GEMM_NR };
    dt_gemm_kernel_bf16_fn kern = dt_gemm_kernel_bf16();
    dt_gemm_kernel_fp16_fn kern16 = g->fp16 ? dt_gemm_kernel_fp16() : NULL;
    dt_gemm_bf16_pack_fn cvt = dt_gemm_bf16_pack();
    dt_gemm_bf16_pack_scaled_fn cvt_scaled = g->b_scale ? dt_gemm_bf16_pack_scaled() : NULL;
    dt_gemm_bf16_pack_rows_fn cvt_rows = g->b_off ? dt_gemm_bf16_pack_rows() : NULL;
    dt_gemm_fp16_pack_fn cvt16 = g->fp16 ? dt_gemm_fp16_pack() : NULL;
    dt_gemm_kernel_bf16_narrow_fn narrow = g->fp16 ? NULL : dt_gemm_kernel_bf16_narrow();
    dt_gemm_kernel_bf16_x_fn kern_x = g->fp16 ? NULL : dt_gemm_kernel_bf16_x();
    dt_gemm_kernel_bf16_next_fn kern_next = g->fp16 ? NULL : dt_gemm_kernel_bf16_next();
    /* float16: the inverse scales of the block's converted B panels and A panels (1 where
     * packed at build time: weights, unscaled). */
    float bsc[NC / NR + 1], asc[MC / MR];
#define DT_HALF_CVT(src, lds, kc_, n_, ld_, dst) \
    (cvt16 ? cvt16(src, lds, kc_, n_, ld_, dst) : (cvt(src, lds, kc_, n_, ld_, dst), 1.0f))
    dt_gemm_pack_b_fn pack_b = g->pack_b ? g->pack_b : dt_gemm_pack_b_matrix;
    const void *pctx = g->pack_b ? g->pack_b_ctx : (const void *)g;
    bool plain = !g->pack_b && !g->trans_b;
    int64_t k2 = (g->K + 1) & ~(int64_t)1;
    bool epi_store = dt_gemm_epi_in_store(g->epi);
    for (int64_t jc = n0; jc < n1; jc += NC) {
        int64_t nc = dt_min64(NC, n1 - jc);
        for (int64_t pc = 0; pc < g->K; pc += KC) {
            int64_t kc = dt_min64(KC, g->K - pc), kc2 = (kc + 1) / 2;
            bool first = pc == 0, last = pc + kc == g->K;
            if (!g->B_bf16 && !plain && !g->B_packed) {
                /* Packed as float32 whole, as the float32 product packs it, then converted
                 * panel by panel: measured faster than packing one panel at a time (the
                 * packers' per-row work repeats per call), by 10-40% on resnet50's strided
                 * and stem convolutions (1 thread, loaded machine, best of 3). */
                pack_b(pctx, pc, kc, jc, nc, buf->b);
                for (int64_t jp = 0; jp < nc; jp += NR) {
                    int n = (int)dt_min64(NR, nc - jp), ld = (n + 15) & ~15;
                    bsc[jp / NR] = DT_HALF_CVT(buf->b + dt_gemm_panel(jp, kc), ld, kc, ld, ld,
                                               buf->b16 + dt_gemm_bf16_panel(jp, kc2));
                }
            }
            for (int64_t jp = 0; jp < nc && !g->B_bf16 && (plain || g->B_packed); jp += NR) {
                int n = (int)dt_min64(NR, nc - jp), ld = (n + 15) & ~15;
                uint16_t *d = buf->b16 + dt_gemm_bf16_panel(jp, kc2);
                if (g->B_packed)
                    bsc[jp / NR] = DT_HALF_CVT(g->B_packed + (jc + jp) * g->K + pc * ld, ld, kc, ld, ld, d);
                else if (g->pack_b_bf16)
                    g->pack_b_bf16(g->pack_b_ctx, pc, kc, jc + jp, n, ld, d), bsc[jp / NR] = 1.0f;
                else if (cvt_rows)
                    cvt_rows(g->B + jc + jp, g->b_off + pc, kc, n, ld, d), bsc[jp / NR] = 1.0f;
                else if (cvt_scaled)
                    cvt_scaled(g->B + pc * g->ldb + jc + jp, g->ldb, kc, n, ld, g->b_scale + pc, d), bsc[jp / NR] = 1.0f;
                else
                    bsc[jp / NR] = DT_HALF_CVT(g->B + pc * g->ldb + jc + jp, g->ldb, kc, n, ld, d);
            }
            if (g->B_bf16)
                for (int64_t jp = 0; jp < nc; jp += NR) bsc[jp / NR] = 1.0f;
            for (int64_t ic = m0; ic < m1; ic += MC) {
                int64_t mc = dt_min64(MC, m1 - ic), lda;
                const uint16_t *ablk;
                if (g->A_bf16) {
                    /* ic is a multiple of MR: panel ic / MR, at ic * k2; the block at pc pairs */
                    ablk = g->A_bf16 + ic * k2 + pc * MR;
                    lda = k2 * MR;
                    for (int64_t p = 0; p < mc; p += MR) asc[p / MR] = 1.0f;
                } else {
                    dt_gemm_pack_a(g, ic, mc, pc, kc, buf->a);
                    for (int64_t p = 0; p < mc; p += MR)
                        asc[p / MR] = DT_HALF_CVT(buf->a + p * kc, MR, kc, MR, MR, buf->a16 + p * 2 * kc2);
                    ablk = buf->a16;
                    lda = 2 * kc2 * MR;
                }
                /* A last panel of few columns (the 49th of a 7x7 image) runs with the tiles of
                 * the full panel before it (kern_x), or else for every row of the block at
                 * once, before the strips whose epilogue needs it. */
                int64_t jn = nc, lastw = (nc - 1) % NR + 1;
                const uint16_t *xb = NULL;
                if (narrow && lastw <= DT_GEMM_NARROW) {
                    jn = nc - lastw;
                    const uint16_t *bp = g->B_bf16 ? g->B_bf16 + (jc + jn) * k2 + pc * 16
                                                   : buf->b16 + dt_gemm_bf16_panel(jn, kc2);
                    if (kern_x && jn >= NR)
                        xb = bp;
                    else
                        narrow(kc2, ablk, lda, bp, 32, g->C + ic * g->ldc + jc + jn, g->ldc, (int)mc, (int)lastw,
                               first, g->beta, g->bias ? g->bias + ic : NULL);
                }
                for (int64_t ip = ic; ip < ic + mc; ip += MR) {
                    int m = (int)dt_min64(MR, m1 - ip);
                    const uint16_t *ap = ablk + (ip - ic) / MR * lda;
                    const float *bias = g->bias ? g->bias + ip : NULL;
                    float *crow = g->C + ip * g->ldc + jc;
                    for (int64_t jp = 0; jp < jn; jp += NR) {
                        int n = (int)dt_min64(NR, nc - jp), nv = (n + 15) / 16;
                        const float *res = last && epi_store && g->epi->res ? g->epi->res + ip * g->ldc + jc + jp : NULL;
                        const uint16_t *bp = g->B_bf16 ? g->B_bf16 + (jc + jp) * k2 + pc * nv * 16
                                                       : buf->b16 + dt_gemm_bf16_panel(jp, kc2);
                        /* The column bias at this tile's first column. */
                        dt_epilogue te = g->epi ? *g->epi : (dt_epilogue){0};
                        if (te.col_bias) te.col_bias += jc + jp;
                        if (kern16)
                            kern16(kc2, ap, bp, nv, asc[(ip - ic) / MR] * bsc[jp / NR], crow + jp, g->ldc, m, n, first,
                                   g->beta, bias, last && epi_store ? &te : NULL, res);
                        else if (xb && jp + NR == jn)
                            kern_x(kc2, ap, ip + MR < ic + mc ? ap + lda : NULL, bp, crow + jp, g->ldc, m, first, g->beta,
                                   bias, last && epi_store ? &te : NULL, res, xb, (int)lastw);
                        else if (kern_next && jp + NR >= jn && ip + MR < ic + mc && m > 4)
                            /* a strip's last tile streams the next strip's A panel in */
                            kern_next(kc2, ap, ap + lda, bp, nv, crow + jp, g->ldc, m, n, first, g->beta, bias,
                                      last && epi_store ? &te : NULL, res);
                        else
                            kern(kc2, ap, bp, nv, crow + jp, g->ldc, m, n, first, g->beta, bias,
                                 last && epi_store ? &te : NULL, res);
                    }
                    /* The epilogue of the columns no kernel applied it to: all, or the narrow. */
                    int64_t je = epi_store ? jn : 0;
                    if (last && g->epi && je < nc) dt_gemm_epi_rows(g, ip, m, jc + je, nc - je);
                }
            }
        }
    }
}

#undef DT_HALF_CVT

/* A block's A panels of at most this many bytes stay in L2 while B panels stream under them
 * (dt_gemm_slice's panel order). */
enum { DT_GEMM_A_L2 = 256 << 10 };
/* ... and of a deep K block (dt_gemm.deep_k) at most this many: the same 256 rows (a panel of
 * B 96 KB, the block 512 KB, in the 1 MB L2). Strip order instead (the 256 KB bound) cost
 * 512->256 at 28x28 2.5% against its shallow blocks (session 17, gemmk); in panel order it is
 * 4% faster than them at b1 and b8 (bench_conv_layers, 1 thread). */
enum { DT_GEMM_A_L2_DEEP = 512 << 10 };
/* A block of B read in place (dt_gemm.direct_b) of more than this many bytes runs panel by
 * panel even near (no prefetch_b): strip by strip, each strip read it again from L3 (or, at
 * batch 8, memory). Session 17, resnet50 b8 1 thread, layer minima: the 56x56 1x1s (a block
 * of 256 x 960 floats) 3-6% faster, the 28x28 ones (256 x 784) 2-4%; the 14x14 ones (256 x
 * 196, which stays in L2) 1.5% slower by panel, hence the bound. */
enum { DT_GEMM_B_L2 = 512 << 10 };
/* Strips of at most this many B panels (the last one fused with its few extra columns) stream
 * the next strip's A panel in (dt_gemm_kernel_x_fn's a_next): resnet50's 7x7 layers -26%,
 * 14x14 -8% (in the network, 1 thread). */
enum { DT_GEMM_A_NEXT_PANELS = 4 };

/* The K block of g's float32 product (dt_gemm.deep_k): DT_GEMM_KC_DEEP where g asks for it
 * and it applies, else DT_GEMM_KC. From the product's fields only (never a slice's, nor
 * prefetch_b, which sizing callers need not set), so every split over threads blocks the
 * sums alike and the scratch is sized for it.
 * Also deep: A read in place (plain, alpha 1) under a B packed at build time, from K = 512
 * (a transformer's second feed-forward product): half the passes over C (each a load, an
 * add and a store of every tile) and FMA chains twice as long. bert_small FFN2 (K 1024,
 * N 256) 2.23 -> 2.18 ms a layer at 8x128 on 1 thread (session 19). Its sums then differ
 * from the same product with B unpacked (blocks of 256); the fused and unfused layers of an
 * engine both pack B. */
static int64_t dt_gemm_kc(const dt_gemm *g)
{
    bool deep = g->deep_k && g->A_packed && !g->A_bf16 && !g->B_bf16 && g->direct_b && !g->pack_b && !g->trans_b &&
                !g->B_packed && g->K >= DT_GEMM_KC_DEEP;
    bool rows_deep = g->B_packed && !g->A_packed && !g->trans_a && g->alpha == 1.0f && !g->A_bf16 && !g->B_bf16 &&
                     g->K >= DT_GEMM_KC_DEEP;
    return deep || rows_deep ? DT_GEMM_KC_DEEP : KC;
}

static void dt_gemm_slice(const dt_gemm *g, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                          dt_gemm_bufs *buf)
{
    enum { MR = DT_GEMM_MR, NR = DT_GEMM_NR };
    if (g->A_bf16 || g->B_bf16) {
        dt_gemm_slice_bf16(g, m0, m1, n0, n1, buf);
        return;
    }
    dt_gemm_kernel_fn kern = dt_gemm_kernel();
    dt_gemm_kernel_narrow_panels_fn narrow = dt_gemm_kernel_narrow();
    dt_gemm_kernel_epi_fn kern_epi = dt_gemm_kernel_epi();
    dt_gemm_kernel_x_fn kern_x = dt_gemm_kernel_x();
    dt_gemm_kernel_pf_fn kern_pf = dt_gemm_kernel_pf();
    /* Few rows of a plain A, or any number under a B packed at build time: read in place
     * (alpha 1, so packing has nothing to fold in). */
    bool rows = !g->A_packed && !g->trans_a && g->alpha == 1.0f && (g->M <= DT_GEMM_ROWS_M || g->B_packed);
    dt_gemm_kernel_rows_fn kern_rows = rows ? dt_gemm_kernel_rows() : NULL;
    dt_gemm_kernel_rows_epi_fn kern_rows_epi = rows ? dt_gemm_kernel_rows_epi() : NULL;
    dt_gemm_pack_b_fn pack_b = g->pack_b ? g->pack_b : dt_gemm_pack_b_matrix;
    const void *pctx = g->pack_b ? g->pack_b_ctx : (const void *)g;
    int64_t kb = dt_gemm_kc(g);
    for (int64_t jc = n0; jc < n1; jc += NC) {
        int64_t nc = dt_min64(NC, n1 - jc);
        for (int64_t pc = 0; pc < g->K; pc += kb) {
            int64_t kc = dt_min64(kb, g->K - pc);
            bool first = pc == 0;
            /* Whole panels of a direct B are read in place; the rest is packed. */
            int64_t nd = g->direct_b && !g->pack_b && !g->trans_b ? nc / NR * NR : 0;
            /* A last panel of few columns after a whole one (the 49th of a 7x7 image) goes
             * with that one's tiles (dt_gemm_kernel_x_fn), read where that one is: in place
             * for a direct B, so nothing is packed. */
            int64_t nx = (nc - 1) % NR + 1;
            bool fuse_x = kern_x && !rows && nc > NR && nx <= DT_GEMM_NARROW;
            if (!fuse_x) nx = 0;
            bool x_in_place = fuse_x && nd == nc - nx;
            if (nd < nc && !g->B_packed && !x_in_place) pack_b(pctx, pc, kc, jc + nd, nc - nd, buf->b);
            bool b_big = g->prefetch_b || (g->direct_b && kc * nd * (int64_t)sizeof(float) > DT_GEMM_B_L2);
            int64_t a_l2 = kb > KC || rows ? DT_GEMM_A_L2_DEEP : DT_GEMM_A_L2;
            /* A block run panel by panel only where its A panels stay in L2 (a_l2): where MC
             * rows of them would not, blocks of fewer rows (the same tiles, the same bits).
             * Zen 5, 1 thread, bench_conv_layers: 256 -> 1024 at 14x14 (a block of 512 rows of
             * 256, strip order before) 0.452 -> 0.391 ms hot, 1024 -> 512 0.816 -> 0.757,
             * seg_lraspp's 160 -> 960 at 41x41 2.44 -> 2.04. */
            int64_t mstep = MC;
            if (b_big && g->A_packed && !rows)
                mstep = dt_max64(MR, dt_min64(MC, a_l2 / (kc * (int64_t)sizeof(float)) / MR * MR));
            for (int64_t ic = m0; ic < m1; ic += mstep) {
                int64_t mc = dt_min64(mstep, m1 - ic);
                bool last = pc + kc == g->K;
                if (!g->A_packed && !rows) dt_gemm_pack_a(g, ic, mc, pc, kc, buf->a);
                /* The last K block of a product whose epilogue the kernels take
                 * (dt_gemm_epi_in_store: all but Sigmoid): the kernel applies it in its store
                 * (dt_gemm_kernel_epi_fn, or dt_gemm_kernel_rows_epi_fn for A read in place). */
                bool epi_store = last && (rows ? kern_rows_epi != NULL : kern_epi != NULL) &&
                                 dt_gemm_epi_in_store(g->epi);
                /* A last panel of few columns not fused above (nc <= NR, or A read in place)
                 * runs for every row of the block at once, before the strips whose epilogue
                 * needs it. */
                int64_t jn = nc - nx;
                if (!fuse_x && narrow && !rows && (nc - 1) % NR + 1 <= DT_GEMM_NARROW) {
                    jn = nc - ((nc - 1) % NR + 1);
                    const float *bp = g->B_packed ? g->B_packed + (jc + jn) * g->K + pc * 16
                                                  : buf->b + dt_gemm_panel(jn - nd, kc);
                    narrow(kc, g->A_packed ? g->A_packed + ic * g->K + pc * MR : buf->a,
                           g->A_packed ? g->K * MR : kc * MR, bp, 16, g->C + ic * g->ldc + jc + jn, g->ldc,
                           (int)mc, (int)(nc - jn), first, g->beta, g->bias ? g->bias + ic : NULL);
                }
                /* Tiles row strip by row strip (each A panel from L1 over every B panel), or,
                 * for a B read in place from far away, or whose block does not stay in L2
                 * beside C (more than DT_GEMM_B_L2), while the block's A panels do, panel by
                 * panel (each B panel from L2 under every A panel): B then comes from L3 or
                 * memory once per block, not once per row strip. Also panel by panel: A read
                 * in place under a B packed at build time (a transformer's projections), its
                 * block (512 rows of 256) in L2: each 48 KB B panel crosses from L2 once per
                 * block, where strip order brought the whole B block (up to 960 x 256 floats,
                 * which with C does not stay in this Zen 5's 1 MB L2) once per strip; bert_small
                 * 1 thread 8x128 and 4x128 -1.3% (session 19). The same tiles, each computed
                 * alike: the same bits in either order. */
                int64_t n_ip = (mc + MR - 1) / MR, n_jp = (jn + NR - 1) / NR;
                bool by_panel = ((b_big && g->A_packed && !rows) || (rows && g->B_packed)) &&
                                mc * kc * (int64_t)sizeof(float) <= a_l2 && n_jp > 1;
                int64_t je = epi_store ? jn + nx : 0;   /* the x columns took it with their panel */
                bool epi_after = by_panel || n_jp == 0;
                for (int64_t t = 0; t < n_ip * n_jp; t++) {
                    int64_t ip = (by_panel ? t % n_ip : t / n_jp) * MR, jp = (by_panel ? t / n_ip : t % n_jp) * NR;
                    int m = (int)dt_min64(MR, mc - ip);
                    const float *ap = g->A_packed ? g->A_packed + (ic + ip) * g->K + pc * MR
                                                  : buf->a + ip * kc;
                    const float *bias = g->bias ? g->bias + ic + ip : NULL;
                    float *crow = g->C + (ic + ip) * g->ldc + jc;
                    const float *arow = rows ? g->A + (ic + ip) * g->lda + pc : NULL;
                    {
                        int n = (int)dt_min64(NR, nc - jp);
                        /* each tile of a panel its share of the next panel's rows, inside
                         * the kernel's k loop where there is one (kern_pf) */
                        const float *pf = NULL;
                        int64_t pf_rows = 0;
                        if (by_panel && jp + NR < nd) {
                            int64_t i = ip / MR, r0 = i * kc / n_ip, r1 = (i + 1) * kc / n_ip;
                            pf = g->B + (pc + r0) * g->ldb + jc + jp + NR;
                            pf_rows = r1 - r0;
                            if (!kern_pf) dt_gemm_prefetch_panel(pf, g->ldb, pf_rows);
                        } else if (g->prefetch_b && ip == 0 && jp + NR < nd) {
                            dt_gemm_prefetch_panel(g->B + pc * g->ldb + jc + jp + NR, g->ldb, kc);
                        }
                        int nv = (n + 15) / 16;
                        const float *bp = g->B_packed ? g->B_packed + (jc + jp) * g->K + pc * nv * 16
                                          : jp < nd   ? g->B + pc * g->ldb + jc + jp
                                                      : buf->b + dt_gemm_panel(jp - nd, kc);
                        int64_t ldb = !g->B_packed && jp < nd ? g->ldb : nv * 16;
                        /* A strip of few panels uses each A panel for that few tiles: its
                         * last tile streams the next strip's panel into L2 meanwhile (the
                         * weights of the 14x14 and 7x7 layers come from memory) */
                        const float *a_next = g->A_packed && !rows && !by_panel && n_jp <= DT_GEMM_A_NEXT_PANELS &&
                                                      jp + NR >= jn && ip + MR < mc
                                                  ? ap + g->K * MR
                                                  : NULL;
                        /* In panel order the first panel's tiles read the block's A panels from
                         * memory (a network's weights, cold at every run: resnet50 has 100 MB):
                         * each streams the next strip's panel into L2 over its k loop, as strip
                         * order's last tiles do. */
                        const float *a_pf = by_panel && jp == 0 && ip + MR < mc ? ap + g->K * MR : NULL;
                        if ((nx && jp + NR == jn) || (a_next && kern_x)) {
                            /* the whole panel before the few columns, with them */
                            const float *xb = !nx         ? NULL
                                              : g->B_packed ? g->B_packed + (jc + jn) * g->K + pc * 16
                                              : x_in_place  ? bp + NR
                                                            : buf->b + dt_gemm_panel(jn - nd, kc);
                            int64_t xld = !g->B_packed && x_in_place ? g->ldb : 16;
                            dt_epilogue te = epi_store ? *g->epi : (dt_epilogue){0};
                            if (te.col_bias) te.col_bias += jc + jp;
                            kern_x(kc, ap, a_next, bp, ldb, nv, n, xb, xld, (int)nx, crow + jp, g->ldc, m, first, g->beta,
                                   bias, epi_store ? &te : NULL,
                                   epi_store && g->epi->res ? g->epi->res + (ic + ip) * g->ldc + jc + jp : NULL);
                        } else if ((pf || a_pf) && kern_pf && !rows) {
                            const float *res = epi_store && g->epi->res ? g->epi->res + (ic + ip) * g->ldc + jc + jp : NULL;
                            dt_epilogue te = epi_store ? *g->epi : (dt_epilogue){0};
                            if (te.col_bias) te.col_bias += jc + jp;
                            kern_pf(kc, ap, bp, ldb, nv, crow + jp, g->ldc, m, n, first, g->beta, bias, epi_store ? &te : NULL,
                                    res, pf, g->ldb, pf_rows, a_pf);
                        } else if (epi_store) {
                            const float *res = g->epi->res ? g->epi->res + (ic + ip) * g->ldc + jc + jp : NULL;
                            /* The column bias at this tile's first column. */
                            dt_epilogue te = *g->epi;
                            if (te.col_bias) te.col_bias += jc + jp;
                            if (rows)
                                kern_rows_epi(kc, arow, g->lda, bp, ldb, nv, crow + jp, g->ldc, m, n, first, g->beta,
                                              bias, &te, res);
                            else
                                kern_epi(kc, ap, bp, ldb, nv, crow + jp, g->ldc, m, n, first, g->beta, bias, &te, res);
                        } else if (rows) {
                            kern_rows(kc, arow, g->lda, bp, ldb, nv, crow + jp, g->ldc, m, n, first,
                                      g->beta, bias);
                        } else {
                            kern(kc, ap, bp, ldb, nv, crow + jp, g->ldc, m, n, first, g->beta, bias);
                        }
                    }
                    /* A strip done (in strip order): the epilogue of its columns no kernel
                     * applied it to (all, or the narrow ones), while the strip is in cache. */
                    if (!epi_after && jp / NR == n_jp - 1 && last && g->epi && je < nc)
                        dt_gemm_epi_rows(g, ic + ip, m, jc + je, nc - je);
                }
                if (epi_after && last && g->epi && je < nc) dt_gemm_epi_rows(g, ic, mc, jc + je, nc - je);
            }
        }
    }
    /* The kernels' non-temporal stores (dt_epilogue.c_far) ordered before whatever the
     * caller does next (the pool's join publishes C to the other threads). */
    if (g->epi && g->epi->c_far) _mm_sfence();
}

/* The epilogue over rows [r0, r0+m) and columns [c0, c0+n) of C, for the columns whose kernel
 * did not apply it in its store. */
static void dt_gemm_epi_rows(const dt_gemm *g, int64_t r0, int64_t m, int64_t c0, int64_t n)
{
    const float *res = g->epi->res, *cb = g->epi->col_bias;
    /* Whole rows without a column bias are one run of m * n values: a matrix-vector product
     * (a squeeze-excite conv over a 1x1 map, N = 1) took a call per value, 16 ns each with
     * the lean sigmoid (EfficientNet's 1152-channel gate: 22.6 us, 18.5 of them here). The
     * epilogue is elementwise, so the bits are the same. */
    if (n == g->ldc && !cb) {
        int64_t off = r0 * g->ldc;
        dt_epilogue_apply_bias(g->epi, g->C + off, NULL, res ? res + off : NULL, m * n);
        return;
    }
    for (int64_t i = 0; i < m; i++) {
        int64_t off = (r0 + i) * g->ldc + c0;
        dt_epilogue_apply_bias(g->epi, g->C + off, cb ? cb + c0 : NULL, res ? res + off : NULL, n);
    }
}

/* K == 0: the product is empty; only beta*C and the bias remain. */
static void dt_gemm_no_k(const dt_gemm *g)
{
    for (int64_t i = 0; i < g->M; i++) {
        float *c = g->C + i * g->ldc;
        float b = g->bias ? g->bias[i] : 0.0f;
        for (int64_t j = 0; j < g->N; j++) c[j] = (g->beta != 0.0f ? g->beta * c[j] : 0.0f) + b;
        if (g->epi)
            dt_epilogue_apply_bias(g->epi, c, g->epi->col_bias, g->epi->res ? g->epi->res + i * g->ldc : NULL, g->N);
    }
}

/* Bytes of one part's packing buffers: *na of A (0 when A is prepacked), *nb of B (for a
 * bfloat16 product: the converted block, then the float32 block B's packers write). */
static void dt_gemm_buf_sizes(const dt_gemm *g, int64_t rows, size_t *na, size_t *nb)
{
    enum { MR = DT_GEMM_MR };
    int64_t kc = dt_min64(dt_gemm_kc(g), g->K);
    int64_t mc = (dt_min64(MC, rows) + MR - 1) / MR * MR;
    int64_t nc = (dt_min64(NC, g->N) + 15) / 16 * 16;
    *na = dt_gemm_a_prepacked(g) ? 0 : ((size_t)(mc * kc) * sizeof(float) + 63) & ~(size_t)63;
    if (g->A_bf16 || g->B_bf16) {
        size_t n16 = ((size_t)dt_gemm_bf16_panel(nc + DT_GEMM_NR - 1, (kc + 1) / 2) * sizeof(uint16_t) + 63) & ~(size_t)63;
        /* Sizing callers leave pack_b unset (conv.c): reserved whenever B is not prepacked. */
        *nb = g->B_bf16 ? 0 : n16 + (g->B_packed ? 0 : ((size_t)dt_gemm_panel(nc + DT_GEMM_NR - 1, kc) * sizeof(float) + 63) & ~(size_t)63);
        /* a float32 A block, then its bfloat16 pairs */
        if (*na) *na += ((size_t)(mc * (kc + 1)) * sizeof(uint16_t) + 63) & ~(size_t)63;
        return;
    }
    *nb = g->B_packed ? 0
                      : ((size_t)dt_gemm_panel(nc + DT_GEMM_NR - 1, kc) * sizeof(float) + 63) & ~(size_t)63;
}

/* The buffers of one part at base, for `rows` rows as dt_gemm_buf_sizes (its na + nb bytes). */
static dt_gemm_bufs dt_gemm_bufs_at(const dt_gemm *g, int64_t rows, char *base)
{
    enum { MR = DT_GEMM_MR };
    size_t na, nb;
    dt_gemm_buf_sizes(g, rows, &na, &nb);
    dt_gemm_bufs b = {.b = (float *)base, .a = na ? (float *)(base + nb) : NULL};
    if (g->A_bf16 || g->B_bf16) {
        int64_t kc = dt_min64(KC, g->K), nc = (dt_min64(NC, g->N) + 15) / 16 * 16;
        int64_t mc = (dt_min64(MC, rows) + MR - 1) / MR * MR;
        size_t n16 = ((size_t)dt_gemm_bf16_panel(nc + DT_GEMM_NR - 1, (kc + 1) / 2) * sizeof(uint16_t) + 63) & ~(size_t)63;
        if (!g->B_bf16) {
            b.b16 = (uint16_t *)base;
            b.b = (float *)(base + n16);
        }
        if (na) b.a16 = (uint16_t *)(base + nb + (((size_t)(mc * kc) * sizeof(float) + 63) & ~(size_t)63));
    }
    return b;
}

size_t dt_gemm_serial_scratch_bytes(const dt_gemm *g)
{
    size_t na, nb;
    dt_gemm_buf_sizes(g, g->M, &na, &nb);
    return na + nb;
}

void dt_sgemm_serial_in(const dt_gemm *g, void *scratch)
{
    if (g->M <= 0 || g->N <= 0) return;
    if (g->K <= 0) {
        dt_gemm_no_k(g);
        return;
    }
    dt_gemm_bufs buf = dt_gemm_bufs_at(g, g->M, scratch);
    dt_gemm_slice(g, 0, g->M, 0, g->N, &buf);
}

static ductile_status dt_gemm_check(const dt_gemm *g)
{
    /* Packed sizes are bounded by the block sizes, so only the operand extents need care;
     * the callers computed them from inferred dims, which the builder already checked. */
    if (g->M < 0 || g->N < 0 || g->K < 0)
        return dt_fail(DUCTILE_ERR_INTERNAL, "GEMM called with negative size %lldx%lldx%lld",
                       (long long)g->M, (long long)g->N, (long long)g->K);
    /* The ways a bfloat16 product's converter reads B in place: one at most, and only there. */
    int ways = (g->b_scale != NULL) + (g->b_off != NULL) + (g->pack_b_bf16 != NULL);
    if (ways > 1)
        return dt_fail(DUCTILE_ERR_INTERNAL, "GEMM: B read in place %d ways at once (a scale of its rows, row offsets, "
                       "a bfloat16 packer): one at most", ways);
    if (ways && (!g->A_bf16 || g->fp16 || g->pack_b || g->trans_b || g->B_packed || g->B_bf16))
        return dt_fail(DUCTILE_ERR_INTERNAL, "GEMM: %s needs a bfloat16 product reading B in place",
                       g->b_scale ? "a scale of B's rows" : g->b_off ? "B's row offsets" : "a bfloat16 packer of B");
    return DUCTILE_OK;
}

ductile_status dt_sgemm_serial(const dt_gemm *g)
{
    DT_TRY(dt_gemm_check(g));
    if (g->M == 0 || g->N == 0) return DUCTILE_OK;
    size_t bytes = g->K > 0 ? dt_gemm_serial_scratch_bytes(g) : 0;
    void *scratch = NULL;
    if (bytes && !(scratch = dt_aligned_alloc(64, bytes)))
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for GEMM packing buffers (%zu bytes)", bytes);
    dt_sgemm_serial_in(g, scratch);
    dt_free(scratch);
    return DUCTILE_OK;
}

typedef struct dt_gemm_job {
    const dt_gemm *g;
    int parts;
    bool split_n;
    int64_t units;      /* micro-panels along the split dimension */
    dt_gemm_bufs *bufs; /* per tid */
} dt_gemm_job;

static void dt_gemm_part(void *arg, int64_t begin, int64_t end, int tid)
{
    dt_gemm_job *j = arg;
    const dt_gemm *g = j->g;
    for (int64_t s = begin; s < end; s++) {
        int64_t u0 = s * j->units / j->parts, u1 = (s + 1) * j->units / j->parts;
        if (u0 == u1) continue;
        /* Buffers per tid: a fine split runs several parts on one thread in turn. */
        if (j->split_n)
            dt_gemm_slice(g, 0, g->M, u0 * DT_GEMM_NR, dt_min64(g->N, u1 * DT_GEMM_NR),
                          &j->bufs[tid]);
        else
            dt_gemm_slice(g, u0 * DT_GEMM_MR, dt_min64(g->M, u1 * DT_GEMM_MR), 0, g->N,
                          &j->bufs[tid]);
    }
}

/* The largest share of `total` rows or columns that a split of `units` micro-panels of `unit`
 * into `parts` parts (dt_gemm_part's: part s takes panels [s units / parts, (s + 1) units /
 * parts)) gives one part: a last panel of a few columns counts for what it holds. */
static int64_t dt_gemm_part_max(int64_t units, int parts, int64_t unit, int64_t total)
{
    if (parts > units) parts = (int)units;
    int64_t most = 0;
    for (int s = 0; s < parts; s++) {
        int64_t u0 = s * units / parts, u1 = (s + 1) * units / parts;
        int64_t n = dt_min64(total, u1 * unit) - u0 * unit;
        if (n > most) most = n;
    }
    return most;
}

/* The split of g in direction split_n over `threads` threads: one part per thread, at most
 * one per micro-panel. */
static dt_gemm_job dt_gemm_job_in(const dt_gemm *g, int threads, bool split_n)
{
    int64_t units = split_n ? (g->N + DT_GEMM_NR - 1) / DT_GEMM_NR : (g->M + DT_GEMM_MR - 1) / DT_GEMM_MR;
    dt_gemm_job job = {g, threads, split_n, units, NULL};
    if (job.units < job.parts) job.parts = (int)job.units;
    if (job.parts < 1) job.parts = 1;
    return job;
}

/* How dt_sgemm_in splits g over `threads` threads: parts <= 1 runs serially. */
static dt_gemm_job dt_gemm_split(const dt_gemm *g, int threads)
{
    dt_gemm_job job = {g, 1, false, 0, NULL};
    double work = (double)g->M * (double)g->N * (double)g->K;
    /* Workers spin through an execute (threadpool.h), so a fork costs about a microsecond
     * (the loop's cache lines going to the workers and back), not a wake-up: a product of
     * DT_GEMM_FORK_MACS (~7 us on one AVX-512 core) gains from a split. The old limit of 8M
     * (~50 us, sized for sleeping workers) kept every GEMM of a transformer at a short
     * sequence on one thread. */
    /* A product of a few rows is bound by streaming B (weights from L3: bert_small at one
     * token, 1 x 256 x 1024 in 10 us, ~2 multiply-adds' time an element of B), which two
     * threads halve: priced so, its 256 x 768 and 256 x 1024 weights split (10 -> 5 us). */
    if (g->M < DT_GEMM_MR) work += 2.0 * (double)g->N * (double)g->K;
    if (threads <= 1 || work < DT_GEMM_FORK_MACS || g->K == 0) return job;
    /* Per-thread cost of each split: the largest part's rows or columns (a last panel of a
     * few columns counts for those, not a whole panel: 14x14 = 196 columns split 96 / 100)
     * plus packing (or, packed at build time, streaming) the operand that every thread then
     * reads in full: ~8 FMA-equivalents per element, ~32 for B gathered by a conv's packer
     * (pack_b: im2col, padded phases; about a cycle an element). Session 16, resnet50 on 2
     * threads: the stride-2 convs (3x3 28->14, the 1x1 downsamples) ran 5-32% faster split by
     * columns, which the old model (whole panels, B's gather priced as a copy) never chose;
     * charging nothing for a prepacked A (tried) split the 14x14 1x1s by columns too, 16%
     * slower: each thread then streams all the weights. */
    int64_t un = (g->N + DT_GEMM_NR - 1) / DT_GEMM_NR, um = (g->M + DT_GEMM_MR - 1) / DT_GEMM_MR;
    double cost_n = (double)dt_gemm_part_max(un, threads, DT_GEMM_NR, g->N) * g->M * g->K +
                    8.0 * g->M * g->K;
    double cost_m = (double)dt_gemm_part_max(um, threads, DT_GEMM_MR, g->M) * g->N * g->K +
                    (g->B_packed || g->B_bf16 ? 0.0 : (g->pack_b ? 32.0 : 8.0) * g->N * g->K);
    /* Few rows (read in place): the product streams B, using each element of it for only
     * M multiply-adds, so each thread should read its own columns of B rather than all of it
     * (split M makes every thread stream the whole B from L3). */
    bool split_n = cost_n <= cost_m || (g->M <= DT_GEMM_ROWS_M && un >= threads);
    return dt_gemm_job_in(g, threads, split_n);
}

/* The parts of a fine split of job (dt_parallel_for_fine): DT_GEMM_FINE per thread, claimed
 * as threads come free, so a thread slowed by another process on its core (a shared machine)
 * runs fewer parts instead of holding up the layer; or job->parts where it does not apply.
 * Only where no part packs what another packs (a split that did would pack it DT_GEMM_FINE
 * times more often): split N with A packed at build time or read in place, or split M with B
 * packed at build time; float32 and bfloat16 (not float16, whose B panels carry per-part
 * scales); with at least two micro-panels per part and each part's
 * work worth a fork. A coarse split gave every thread at least one part (job->parts ==
 * threads), so that every tid has its buffers. Session 14 measured (2-vCPU EPYC, resnet50 b1,
 * 2 threads): equal to the coarse split on quiet minutes, 4-20% faster on busy ones. */
static int dt_gemm_fine(const dt_gemm_job *job, int threads)
{
    const dt_gemm *g = job->g;
    if (job->parts != threads || threads <= 1 || g->fp16) return job->parts;
    /* bfloat16 products (session 23): A packed in bfloat16 at build time is read in place, and
     * each part converts only its own columns of B (split N) or reads B packed at build time
     * (split M), as the float32 conditions ask; the same bits for any partition (each column's
     * sums do not depend on the panel it sits in: test_gemm_bf16's x-kernel test). */
    bool a_in_place = g->A_packed || g->A_bf16 ||
                      (!g->trans_a && g->alpha == 1.0f && (g->M <= DT_GEMM_ROWS_M || g->B_packed));
    if (job->split_n ? !a_in_place : !(g->B_packed || g->B_bf16)) return job->parts;
    int64_t parts = (int64_t)threads * DT_GEMM_FINE;
    if (parts > job->units / 2) parts = job->units / 2;
    double work = (double)g->M * (double)g->N * (double)g->K;
    if (parts > (int64_t)(work / DT_GEMM_FORK_MACS)) parts = (int64_t)(work / DT_GEMM_FORK_MACS);
    return parts > threads ? (int)parts : job->parts;
}

/* Rows of C a part of the split packs A for. */
static int64_t dt_gemm_part_rows(const dt_gemm_job *job)
{
    return job->split_n ? job->g->M : (job->units / job->parts + 1) * DT_GEMM_MR;
}

size_t dt_sgemm_scratch_bytes(const dt_gemm *g, int threads)
{
    if (g->M <= 0 || g->N <= 0 || g->K <= 0) return 0;
    dt_gemm_job job = dt_gemm_split(g, threads > 64 ? 64 : threads);
    if (job.parts <= 1) return dt_gemm_serial_scratch_bytes(g);
    /* Enough for either direction of the split: the choice weighs the B packer (pack_b),
     * which callers sizing their scratch need not set as the run will. */
    size_t most = 0;
    for (int d = 0; d < 2; d++) {
        dt_gemm_job dj = dt_gemm_job_in(g, threads > 64 ? 64 : threads, d == 1);
        size_t na, nb;
        dt_gemm_buf_sizes(g, dt_gemm_part_rows(&dj), &na, &nb);
        if ((size_t)dj.parts * (na + nb) > most) most = (size_t)dj.parts * (na + nb);
    }
    return most;
}

ductile_status dt_sgemm_in(const dt_gemm *g, dt_pool *pool, void *scratch)
{
    DT_TRY(dt_gemm_check(g));
    if (g->M == 0 || g->N == 0) return DUCTILE_OK;
    int threads = dt_pool_threads(pool);
    dt_gemm_job job = dt_gemm_split(g, threads > 64 ? 64 : threads);
    if (job.parts <= 1) {
        dt_sgemm_serial_in(g, scratch);
        return DUCTILE_OK;
    }
    /* One set of buffers per part of the coarse split (= per tid), sized for its parts, as
     * dt_sgemm_scratch_bytes counted them: a fine split's parts are no larger. */
    size_t na, nb;
    dt_gemm_buf_sizes(g, dt_gemm_part_rows(&job), &na, &nb);
    dt_gemm_bufs bufs[64];
    for (int s = 0; s < job.parts; s++)
        bufs[s] = dt_gemm_bufs_at(g, dt_gemm_part_rows(&job), (char *)scratch + (size_t)s * (na + nb));
    job.bufs = bufs;
    int fine = dt_gemm_fine(&job, threads > 64 ? 64 : threads);
    if (fine > job.parts) {
        job.parts = fine;
        dt_parallel_for_fine(pool, job.parts, 1, DT_GEMM_FINE, dt_gemm_part, &job);
    } else {
        dt_parallel_for(pool, job.parts, 1, dt_gemm_part, &job);
    }
    return DUCTILE_OK;
}

ductile_status dt_sgemm(const dt_gemm *g, dt_pool *pool)
{
    DT_TRY(dt_gemm_check(g));
    size_t bytes = dt_sgemm_scratch_bytes(g, dt_pool_threads(pool));
    void *scratch = NULL;
    if (bytes && !(scratch = dt_aligned_alloc(64, bytes)))
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for GEMM packing buffers (%zu bytes)", bytes);
    ductile_status s = dt_sgemm_in(g, pool, scratch);
    dt_free(scratch);
    return s;
}
