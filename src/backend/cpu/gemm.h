/* The CPU backend's single-precision GEMM: C = alpha * op(A) * B + beta * C (+ a per-row
 * bias), row-major, with leading dimensions.
 *
 * Written by hand rather than taken from a BLAS because the conv kernel needs to feed B
 * through its own packing routine (im2col done while packing, so no column buffer exists).
 *
 * Layout of the packed operands (what a custom B packer must produce):
 *   A is packed in panels of DT_GEMM_MR rows: for each k, MR consecutive floats.
 *   B is packed in panels of DT_GEMM_NR columns, panel p at dst + dt_gemm_panel(p * NR, kc)
 *   (panels are spaced off multiples of 4 KB so that writing one row of every panel does not
 *   land all in one L1 set): for each k,
 *   `ld` consecutive floats, where ld is the panel's width (NR, or for the last panel the
 *   columns left rounded up to 16); columns past the width are zero. */
#ifndef DT_CPU_GEMM_H
#define DT_CPU_GEMM_H

#include "ductile.h"
#include "backend/cpu/cpu_isa.h"
#include "backend/cpu/epilogue.h"
#include "core/threadpool.h"

#include <stdbool.h>
#include <stdint.h>

#define DT_GEMM_MR 8
#define DT_GEMM_NR 48
/* Rows of B (the K extent) one block of the product covers. */
#define DT_GEMM_KC 256
/* Rows of B one block covers in a product that asks for deeper blocks (dt_gemm.deep_k). */
#define DT_GEMM_KC_DEEP 512
/* The most columns one pack_b call is asked for. */
#define DT_GEMM_NC (20 * DT_GEMM_NR)

/* Offset in floats of the panel holding column j (a multiple of DT_GEMM_NR) of a packed B. */
static inline int64_t dt_gemm_panel(int64_t j, int64_t kc)
{
    return j / DT_GEMM_NR * (DT_GEMM_NR * kc + 16);
}

/* Copies n floats. Packing copies runs of at most a panel's width, where a library memcpy of
 * unknown size (rep movs) costs more than the copy; fixed 64-byte blocks compile to moves. */
static inline void dt_gemm_copy(float *restrict d, const float *restrict s, int64_t n)
{
    for (; n >= 16; n -= 16, d += 16, s += 16) __builtin_memcpy(d, s, 64);
    for (; n > 0; n--) *d++ = *s++;
}

/* Packs rows [k0, k0+kc) and columns [n0, n0+nc) of a virtual B into dst in the panel layout
 * above. Row by row, so the source is read in long contiguous runs. */
typedef void (*dt_gemm_pack_b_fn)(const void *ctx, int64_t k0, int64_t kc, int64_t n0, int64_t nc,
                                  float *dst);

/* Writes one row (nc floats of `line`, the values of row kk) into the panels of dst. */
void dt_gemm_scatter_row(const float *line, int64_t nc, int64_t kk, int64_t kc, float *dst);

typedef struct dt_gemm {
    int64_t M, N, K;
    float alpha, beta;      /* beta == 0: C is write-only (it may hold NaN or garbage) */
    const float *A;         /* M x K, or K x M when trans_a */
    int64_t lda;
    bool trans_a;
    const float *B;         /* K x N, or N x K when trans_b; unused when pack_b is set */
    int64_t ldb;
    bool trans_b;
    dt_gemm_pack_b_fn pack_b;   /* optional: a virtual B (im2col) */
    const void *pack_b_ctx;
    float *C;               /* M x N */
    int64_t ldc;
    const float *bias;      /* optional: bias[i] added to row i of C */
    /* Optional: A packed once by dt_gemm_pack_a_full (alpha and trans_a are then ignored:
     * the packer applied them); A is unused. */
    const float *A_packed;
    /* B (plain, no pack_b) may be read in place, whole 48-column panels straight from its
     * rows, instead of being packed: for a B that is already an image row after row (1x1
     * convs), where packing is a copy as costly as a thin product. */
    bool direct_b;
    /* With direct_b: the next panel's rows of B are prefetched into L2 (by the first row
     * strip of each block, before each panel; or, where the block runs panel by panel, each
     * tile of a panel its share of the next panel's rows, spread so the requests do not
     * queue up at once). For a B from far away (an image larger than L2, or K of several
     * blocks), whose in-place rows (one stream per k) the hardware prefetcher does not follow,
     * where packing copies it instead; the later strips find it in L2. A near B whose block
     * passes DT_GEMM_B_L2 (gemm.c) runs panel by panel and prefetches likewise. */
    bool prefetch_b;
    /* Optional: op(B) packed once by dt_gemm_pack_b_full (B, ldb and trans_b are then
     * unused): constant weights packed at build time, so no run packs B. */
    const float *B_packed;
    /* Optional: applied to each 8-row strip of C once its last K block is written (res
     * laid out like C, row stride ldc). Requires beta == 0 or the epilogue sees beta*C. */
    const dt_epilogue *epi;
    /* Optional: A packed once in bfloat16 by dt_gemm_pack_a_bf16 (A, A_packed, alpha and
     * trans_a are then unused). The product then runs in bfloat16 with float32 accumulation
     * (vdpbf16ps): each K block of B is packed as float32 as usual, a panel at a time, and
     * converted to bfloat16 pairs (round to nearest even) before the kernel reads it. Bias,
     * beta, the sums over K blocks and the epilogue stay float32. */
    const uint16_t *A_bf16;
    /* Optional: op(B) packed once in bfloat16 by dt_gemm_pack_b_bf16 (B, B_packed, ldb and
     * trans_b are then unused): constant weights packed at build time. The product then runs
     * in bfloat16 as with A_bf16; a float32 A is packed per block as usual and converted. */
    const uint16_t *B_bf16;
    /* Optional, for a bfloat16 product (A_bf16, not fp16) whose B is read in place (B and
     * ldb: no pack_b, trans_b, B_packed or B_bf16): row k of B times b_scale[k] as it is
     * converted (each product rounded to float32, then to bfloat16: the bits of converting a
     * scaled copy of B). FusedConv's squeeze-excite scale without the copy. */
    const float *b_scale;
    /* Optional, for a bfloat16 product (A_bf16, not fp16) whose B has no pack_b, trans_b,
     * B_packed, B_bf16 or b_scale: row k of B starts at B + b_off[k] (ldb unused), the rows
     * read in place through the table and converted to bfloat16 pairs as the GEMM reads them
     * (the padded conv's phases, conv_padded.c), instead of packed as float32 by a pack_b
     * and then converted. */
    const int64_t *b_off;
    /* Optional, for a bfloat16 product (A_bf16, not fp16) without pack_b, trans_b, B_packed,
     * B_bf16, b_scale or b_off: a virtual B converted straight into bfloat16 panels (called
     * with pack_b_ctx, a panel at a time as dt_gemm_bf16_pack_fn writes one: columns [n0, n0 +
     * n), n <= ld, of K rows [k0, k0 + kc)), instead of packed as float32 and then converted.
     * The padded conv's gather (conv_padded.c). */
    void (*pack_b_bf16)(const void *ctx, int64_t k0, int64_t kc, int64_t n0, int n, int ld, uint16_t *dst);
    /* With A_bf16 or B_bf16: they hold IEEE float16 (dt_gemm_pack_a_half with
     * dt_float_to_half), not bfloat16, and the product runs in float16 over short K chunks
     * with float32 accumulation (gemm_fp16.c); B panels are converted to float16 likewise. */
    bool fp16;
    /* K blocks of DT_GEMM_KC_DEEP instead of DT_GEMM_KC, where the product is float32 with A
     * packed at build time (A_packed) and B read in place (direct_b; no pack_b, not trans_b)
     * and K >= DT_GEMM_KC_DEEP: fewer C tile reloads and longer FMA chains per tile (the A
     * block is the same rows, twice the bytes: gemm.c's DT_GEMM_A_L2_DEEP). Decided per product,
     * never per thread's slice, so results do not depend on the thread count (a slice that
     * packs its last few columns packs them as deep). Changes the sums' blocking, hence the
     * bits: only the 1x1 convs set it (conv.c), on the product that sizes the scratch too. */
    bool deep_k;
} dt_gemm;

/* Floats of A (M x K) packed whole: ceil(M / MR) panels of K x MR, rows past M zero. */
int64_t dt_gemm_packed_a_floats(int64_t M, int64_t K);
/* Packs alpha * op(A) (M x K, as dt_gemm reads it) into dst of dt_gemm_packed_a_floats. A
 * K block [k0, k0+kc) of panel p is then dst + p*K*MR + k0*MR, the layout the micro-kernel
 * reads, so a pre-packed A serves every cache blocking. */
void dt_gemm_pack_a_full(const float *A, int64_t lda, bool trans_a, float alpha, int64_t M,
                         int64_t K, float *dst);

/* Floats of op(B) (K x N) packed whole: N rounded up to 16, times K. */
int64_t dt_gemm_packed_b_floats(int64_t N, int64_t K);
/* Packs op(B) (K x N; B is N x K when trans_b) into dst of dt_gemm_packed_b_floats: panels
 * of NR columns over the whole K, panel p at dst + p*NR*K, each row of a panel `ld` floats
 * (NR, or the last panel's width rounded up to 16, zero past N). A K block [k0, k0+kc) of
 * panel p is then dst + p*NR*K + k0*ld, the layout the micro-kernel reads, so one packing
 * serves every cache blocking and every split over threads. */
void dt_gemm_pack_b_full(const float *B, int64_t ldb, bool trans_b, int64_t K, int64_t N,
                         float *dst);

/* Runs the product, splitting it over the pool's threads (pool may be NULL). The split
 * changes which thread computes a tile, never the order of a tile's sums, so results do not
 * depend on the thread count. Fails only for out-of-memory (packing buffers). */
ductile_status dt_sgemm(const dt_gemm *g, dt_pool *pool);

/* Bytes of packing buffers (64-byte aligned) dt_sgemm_in needs for g on `threads` threads. */
size_t dt_sgemm_scratch_bytes(const dt_gemm *g, int threads);
/* As dt_sgemm with the caller's packing buffers (scratch of dt_sgemm_scratch_bytes for the
 * pool's thread count, 64-byte aligned): the compiled kernels' run path, which never
 * allocates. */
ductile_status dt_sgemm_in(const dt_gemm *g, dt_pool *pool, void *scratch);

/* As dt_sgemm on the calling thread only (for callers that parallelize an outer loop). */
ductile_status dt_sgemm_serial(const dt_gemm *g);

/* Bytes of packing buffers dt_sgemm_serial_in needs for g (and for any product no larger
 * in M, N and K, with the same A_packed-ness). */
size_t dt_gemm_serial_scratch_bytes(const dt_gemm *g);
/* As dt_sgemm_serial with the caller's packing buffers (64-byte aligned, of
 * dt_gemm_serial_scratch_bytes): for callers running many small products; cannot fail. */
void dt_sgemm_serial_in(const dt_gemm *g, void *scratch);

/* Micro-kernels (gemm_kernel*.c). Computes the 8 x (nv*16) tile sum_k a[k][i] * b[k][j] for
 * a packed A panel and B rows ldb floats apart (nv*16 for a packed panel) and writes rows
 * i < m and columns j < n of it to c:
 *   first: c = acc + (beta != 0 ? beta * c : 0) + (bias ? bias[i] : 0);  else c += acc. */
typedef void (*dt_gemm_kernel_fn)(int64_t kc, const float *a, const float *b, int64_t ldb, int nv, float *c,
                                  int64_t ldc, int m, int n, bool first, float beta,
                                  const float *bias);
void dt_gemm_kernel_ref(int64_t kc, const float *a, const float *b, int64_t ldb, int nv, float *c,
                        int64_t ldc, int m, int n, bool first, float beta, const float *bias);
void dt_gemm_kernel_avx512(int64_t kc, const float *a, const float *b, int64_t ldb, int nv, float *c,
                           int64_t ldc, int m, int n, bool first, float beta, const float *bias);
/* The same tile on AVX2 + FMA (gemm_kernel_avx2.c): sub-tiles of 4 x 24 in ymm registers, the
 * bits of dt_gemm_kernel_avx512. */
void dt_gemm_kernel_avx2(int64_t kc, const float *a, const float *b, int64_t ldb, int nv, float *c,
                         int64_t ldc, int m, int n, bool first, float beta, const float *bias);
/* The best kernel this CPU runs. */
dt_gemm_kernel_fn dt_gemm_kernel_select(void);

/* As dt_gemm_kernel_fn for a tile of the product's last K block, with the epilogue applied
 * before the store: the column bias (epi->col_bias at the tile's first column; NULL: none),
 * residual (res: the tile's rows, ldc apart like c; NULL: none), then the activation
 * (dt_gemm_epi_in_store). The bits of
 * the plain kernel followed by dt_epilogue_apply, without the second pass over the tile: that
 * pass was 16% of a 1x1 conv of 16 input channels (mobilenet's first expansion) and 7% at 64.
 * NULL from the selector: none on this CPU. */
typedef void (*dt_gemm_kernel_epi_fn)(int64_t kc, const float *a, const float *b, int64_t ldb, int nv, float *c,
                                      int64_t ldc, int m, int n, bool first, float beta, const float *bias,
                                      const dt_epilogue *epi, const float *res);
dt_gemm_kernel_epi_fn dt_gemm_kernel_epi_select(void);
void dt_gemm_kernel_avx512_epi(int64_t kc, const float *a, const float *b, int64_t ldb, int nv, float *c,
                               int64_t ldc, int m, int n, bool first, float beta, const float *bias,
                               const dt_epilogue *epi, const float *res);
/* The epilogues the kernel above applies in its store. A per-column bias (FusedMatMul's) comes
 * too, first, with epi->col_bias pointing at the tile's first column (the driver hands the
 * kernel a copy of the epilogue so moved); Gelu as dt_gelu_approx's lane-wise copy, Sigmoid and
 * Silu as dt_sigmoid_v16 (the Sigmoid kernel's bits). */
static inline bool dt_gemm_epi_in_store(const dt_epilogue *e)
{
    return e && (e->act == DT_ACT_NONE || e->act == DT_ACT_RELU || e->act == DT_ACT_CLIP ||
                 e->act == DT_ACT_HARDSIGMOID || e->act == DT_ACT_HARDSWISH || e->act == DT_ACT_GELU ||
                 e->act == DT_ACT_SIGMOID || e->act == DT_ACT_SILU);
}

/* As dt_gemm_kernel_fn for a narrow tile (n <= DT_GEMM_NARROW columns), vectorized along the
 * tile's 8 rows instead of its columns: per k one load of the packed A column and one
 * broadcast and FMA per column, where the 16-lane kernel spends 8 broadcasts and 8 FMAs on
 * 16 columns of which n are kept. The last panel of a 7x7 image (49 = 48 + 1 columns) or a
 * 14x14 one (196 = 4 * 48 + 4). The same float operations per element as
 * dt_gemm_kernel_avx512 (FMA chain over k, then bias, then beta * C), so results do not
 * depend on which kernel ran. NULL from the selector: none on this CPU. */
#define DT_GEMM_NARROW 4
dt_gemm_kernel_fn dt_gemm_kernel_narrow_select(void);
void dt_gemm_kernel_narrow_avx512(int64_t kc, const float *a, const float *b, int64_t ldb, int nv, float *c,
                                  int64_t ldc, int m, int n, bool first, float beta, const float *bias);
void dt_gemm_kernel_narrow_avx2(int64_t kc, const float *a, const float *b, int64_t ldb, int nv, float *c,
                                int64_t ldc, int m, int n, bool first, float beta, const float *bias);
/* The 8 x (48 + nx) tile, 1 <= nx <= DT_GEMM_NARROW: a full 48-column panel (b, rows ldb
 * apart, as dt_gemm_kernel_epi_fn reads it; nv 3, n 48) and nx more columns (xb, rows xld
 * apart: the same rows in place, xb = b + 48, or a packed last panel) in one pass over k, the
 * extra columns in zmm registers two to a register, rows in the lanes, fed by the A column as
 * the narrow kernel feeds them. Where the narrow kernel ran as a pass of its own over the
 * block's A panels, it streamed A (from L3 when the weights pass L2: 512 x 2048 at 7x7, 23%
 * of the layer's time for 2% of its work), and the strips read A a second time. With nx 0:
 * dt_gemm_kernel_epi_fn's 8 x n tile (nv vectors) alone. Stores as dt_gemm_kernel_epi_fn
 * (epi NULL: no epilogue; the column bias, residual and activation at the extra columns too);
 * every column's bits are those of the 16-lane and the narrow kernels. a_next (NULL: none):
 * the A panel the caller runs next, prefetched into L2 a line every two k (a strip of few
 * panels uses each A panel for few tiles, and weights of several MB come from memory). NULL
 * from the selector: none on this CPU. */
typedef void (*dt_gemm_kernel_x_fn)(int64_t kc, const float *a, const float *a_next, const float *b, int64_t ldb,
                                    int nv, int n, const float *xb, int64_t xld, int nx, float *c, int64_t ldc, int m,
                                    bool first, float beta, const float *bias, const dt_epilogue *epi,
                                    const float *res);
void dt_gemm_kernel_x_avx512(int64_t kc, const float *a, const float *a_next, const float *b, int64_t ldb, int nv,
                             int n, const float *xb, int64_t xld, int nx, float *c, int64_t ldc, int m, bool first,
                             float beta, const float *bias, const dt_epilogue *epi, const float *res);
dt_gemm_kernel_x_fn dt_gemm_kernel_x_select(void);
/* dt_gemm_kernel_epi_fn (epi NULL: none) for a tile of more than 4 rows that also prefetches
 * pf_rows (<= kc) rows of 48 floats (pf, rows pf_ld apart: the next panel of a B read in place)
 * into L2, one row every kc / pf_rows steps of its k loop: for blocks run panel by panel, each
 * tile of a panel its share of the next panel, where a burst of prefetches between tiles
 * stalled on the full miss queue. A residual from memory (epi->res_far) has the next row
 * strip's lines of this panel prefetched likewise, spread over the k loop (the tile after this
 * one in panel order; past the last strip the addresses are only prefetched, never read), and
 * a_next (NULL: none) the next strip's A panel, as dt_gemm_kernel_x_fn does. The bits of
 * dt_gemm_kernel_epi_fn. NULL from the selector: none on this CPU. */
typedef void (*dt_gemm_kernel_pf_fn)(int64_t kc, const float *a, const float *b, int64_t ldb, int nv, float *c,
                                     int64_t ldc, int m, int n, bool first, float beta, const float *bias,
                                     const dt_epilogue *epi, const float *res, const float *pf, int64_t pf_ld,
                                     int64_t pf_rows, const float *a_next);
void dt_gemm_kernel_pf_avx512(int64_t kc, const float *a, const float *b, int64_t ldb, int nv, float *c, int64_t ldc,
                              int m, int n, bool first, float beta, const float *bias, const dt_epilogue *epi,
                              const float *res, const float *pf, int64_t pf_ld, int64_t pf_rows, const float *a_next);
dt_gemm_kernel_pf_fn dt_gemm_kernel_pf_select(void);
/* The narrow kernel over all the rows of a block at once: m rows in ceil(m/8) packed A panels,
 * panel p at a + p*lda, its 8 rows to c + p*8*ldc (bias + p*8). The panels' FMA chains are
 * independent and interleaved, where one panel at a time leaves every column's chain waiting
 * on the FMA latency (one 8-row, 1-column tile: 4 cycles per k, about what 8 rows of a
 * 48-column panel cost per k in 24 FMAs: resnet50's 7x7 layers, N = 49, lost a sixth of their
 * time to it). Bits as dt_gemm_kernel_narrow_avx512 (which is this with one panel). */
typedef void (*dt_gemm_kernel_narrow_panels_fn)(int64_t kc, const float *a, int64_t lda, const float *b,
                                                int64_t ldb, float *c, int64_t ldc, int m, int n, bool first,
                                                float beta, const float *bias);
dt_gemm_kernel_narrow_panels_fn dt_gemm_kernel_narrow_panels_select(void);
void dt_gemm_kernel_narrow_panels_avx512(int64_t kc, const float *a, int64_t lda, const float *b, int64_t ldb,
                                         float *c, int64_t ldc, int m, int n, bool first, float beta,
                                         const float *bias);
void dt_gemm_kernel_narrow_panels_avx2(int64_t kc, const float *a, int64_t lda, const float *b, int64_t ldb,
                                       float *c, int64_t ldc, int m, int n, bool first, float beta,
                                       const float *bias);

/* Packs 8 rows of a plain matrix transposed, times alpha: dst[k * ldd + i] = alpha * a[i * lda
 * + k] for i < 8, k < kc (gemm_pack.c): a full DT_GEMM_MR panel of A (ldd 8), or 8 columns of
 * a packed B taken from the rows of its transpose (ldd the panel's width). The same floats as
 * the plain loop. NULL from dt_gemm_pack8: none on this CPU (run the plain loop). */
typedef void (*dt_gemm_pack_a8_fn)(const float *a, int64_t lda, int64_t kc, float alpha, float *dst, int64_t ldd);
dt_gemm_pack_a8_fn dt_gemm_pack8(void);
dt_gemm_pack_a8_fn dt_gemm_pack_a8_select(void);

/* As dt_gemm_kernel_fn with A read in place instead of packed: row i of the tile is
 * a + i*lda (m rows exist). For products of few rows (M <= DT_GEMM_ROWS_M: a transformer at a
 * short sequence), where packing A is a copy of a size comparable to the product's B panel
 * traffic and buys no reuse, and for every product under a B packed at build time (alpha 1,
 * A not transposed): each 8-row strip of A stays in L1 over the B panels either way, and the
 * packing was 4-7% of a transformer's run at M = 512-1024 (session 11). */
#define DT_GEMM_ROWS_M 32
typedef void (*dt_gemm_kernel_rows_fn)(int64_t kc, const float *a, int64_t lda, const float *b,
                                       int64_t ldb, int nv, float *c, int64_t ldc, int m, int n,
                                       bool first, float beta, const float *bias);
void dt_gemm_kernel_rows_ref(int64_t kc, const float *a, int64_t lda, const float *b, int64_t ldb,
                             int nv, float *c, int64_t ldc, int m, int n, bool first, float beta,
                             const float *bias);
void dt_gemm_kernel_rows_avx512(int64_t kc, const float *a, int64_t lda, const float *b,
                                int64_t ldb, int nv, float *c, int64_t ldc, int m, int n,
                                bool first, float beta, const float *bias);
void dt_gemm_kernel_rows_avx2(int64_t kc, const float *a, int64_t lda, const float *b, int64_t ldb,
                              int nv, float *c, int64_t ldc, int m, int n, bool first, float beta,
                              const float *bias);
dt_gemm_kernel_rows_fn dt_gemm_kernel_rows_select(void);
/* As dt_gemm_kernel_rows_fn on the product's last K block, with the epilogue in the store as
 * dt_gemm_kernel_epi_fn applies it (the same bits as the rows kernel then the pass): bert at a
 * short sequence runs every projection through it. NULL from the selector: none on this CPU. */
typedef void (*dt_gemm_kernel_rows_epi_fn)(int64_t kc, const float *a, int64_t lda, const float *b, int64_t ldb,
                                           int nv, float *c, int64_t ldc, int m, int n, bool first, float beta,
                                           const float *bias, const dt_epilogue *epi, const float *res);
void dt_gemm_kernel_rows_avx512_epi(int64_t kc, const float *a, int64_t lda, const float *b, int64_t ldb, int nv,
                                    float *c, int64_t ldc, int m, int n, bool first, float beta, const float *bias,
                                    const dt_epilogue *epi, const float *res);
dt_gemm_kernel_rows_epi_fn dt_gemm_kernel_rows_epi_select(void);

/* ---- bfloat16 products (gemm_bf16.c) ----
 *
 * vdpbf16ps multiplies pairs: lane j of the accumulator gets a[2j]*b[2j] + a[2j+1]*b[2j+1],
 * the products exact in float32. So both operands interleave pairs of K: a packed A panel
 * holds, for each k pair (k, k+1), MR 32-bit words (row i's two bfloat16); a packed B panel,
 * for each k pair, ld 32-bit words (column j's two bfloat16), ld = the panel's width rounded
 * up to 16. A K past the end (odd K) is zero in both. Conversion: round to nearest even,
 * denormals flushed to zero (the instructions' DAZ/FTZ), NaN kept a NaN. */

/* Whether this CPU has AVX512-BF16 (cpuid): what bf16 engines need to load. */
bool dt_cpu_has_bf16(void);

/* The bfloat16 of f: round to nearest even, a denormal to a signed zero, a NaN quiet. */
uint16_t dt_bf16_round(float f);

/* Elements (uint16) of A (M x K) packed whole in bfloat16: ceil(M / MR) panels of
 * MR * round_up(K, 2). A K block [k0, k0+kc) (k0 even) of panel p is at
 * dst + p*MR*round_up(K,2) + k0*MR. */
int64_t dt_gemm_packed_a_bf16_elems(int64_t M, int64_t K);
/* Packs A (M x K, row-major, rows lda apart) into dst of dt_gemm_packed_a_bf16_elems. */
void dt_gemm_pack_a_bf16(const float *A, int64_t lda, int64_t M, int64_t K, uint16_t *dst);

/* The packers above with another rounding (dt_bf16_round, or float16's dt_float_to_half):
 * the same layouts for the float16 products below. */
typedef uint16_t (*dt_half_round_fn)(float f);
void dt_gemm_pack_a_half(const float *A, int64_t lda, int64_t M, int64_t K, dt_half_round_fn round, uint16_t *dst);
void dt_gemm_pack_b_half(const float *B, int64_t ldb, bool trans_b, int64_t K, int64_t N, dt_half_round_fn round,
                         uint16_t *dst);
void dt_gemm_half_pack_ref(const float *src, int64_t lds, int64_t kc, int n, int ld, dt_half_round_fn round,
                           uint16_t *dst);
/* The reference kernels' store: the tile acc (m x n valid) into C as dt_gemm_kernel_bf16_fn
 * stores it. */
void dt_gemm_ref_tile_out(float (*acc)[DT_GEMM_NR], float *c, int64_t ldc, int m, int n, bool first, float beta,
                          const float *bias, const dt_epilogue *epi, const float *res);

/* Elements (uint16) of op(B) (K x N) packed whole in bfloat16: N rounded up to 16, times
 * round_up(K, 2). Panel p (NR columns, the last the columns left rounded up to 16: ld) at
 * dst + p*NR*round_up(K,2), its k pairs 2*ld elements apart; a K block [k0, k0+kc) (k0 even)
 * of panel p at dst + p*NR*round_up(K,2) + k0*ld. */
int64_t dt_gemm_packed_b_bf16_elems(int64_t N, int64_t K);
/* Packs op(B) (K x N; B is N x K when trans_b) into dst of dt_gemm_packed_b_bf16_elems. */
void dt_gemm_pack_b_bf16(const float *B, int64_t ldb, bool trans_b, int64_t K, int64_t N, uint16_t *dst);

/* Converts kc rows of float32 (row k at src + k*lds, n <= ld valid columns, ld a multiple of
 * 8 and at most DT_GEMM_NR) into (kc+1)/2 pair rows of 2*ld bfloat16 at dst, zero past n
 * and past kc. The reference (any CPU) and the AVX512-BF16 version give the same bits. */
typedef void (*dt_gemm_bf16_pack_fn)(const float *src, int64_t lds, int64_t kc, int n, int ld, uint16_t *dst);
void dt_gemm_bf16_pack_ref(const float *src, int64_t lds, int64_t kc, int n, int ld, uint16_t *dst);
void dt_gemm_bf16_pack_avx512(const float *src, int64_t lds, int64_t kc, int n, int ld, uint16_t *dst);
dt_gemm_bf16_pack_fn dt_gemm_bf16_pack_select(void);
/* The same with row k of src times scale[k] first (dt_gemm.b_scale): the same bits as
 * converting the products stored as float32. */
typedef void (*dt_gemm_bf16_pack_scaled_fn)(const float *src, int64_t lds, int64_t kc, int n, int ld,
                                            const float *scale, uint16_t *dst);
void dt_gemm_bf16_pack_scaled_ref(const float *src, int64_t lds, int64_t kc, int n, int ld, const float *scale,
                                  uint16_t *dst);
void dt_gemm_bf16_pack_scaled_avx512(const float *src, int64_t lds, int64_t kc, int n, int ld, const float *scale,
                                     uint16_t *dst);
dt_gemm_bf16_pack_scaled_fn dt_gemm_bf16_pack_scaled_select(void);
/* The same with row k at src + off[k] (dt_gemm.b_off): the bits of converting the rows copied
 * into a panel first. */
typedef void (*dt_gemm_bf16_pack_rows_fn)(const float *src, const int64_t *off, int64_t kc, int n, int ld,
                                          uint16_t *dst);
void dt_gemm_bf16_pack_rows_ref(const float *src, const int64_t *off, int64_t kc, int n, int ld, uint16_t *dst);
void dt_gemm_bf16_pack_rows_avx512(const float *src, const int64_t *off, int64_t kc, int n, int ld, uint16_t *dst);
dt_gemm_bf16_pack_rows_fn dt_gemm_bf16_pack_rows_select(void);

/* The 8 x (nv*16) tile sum_k a[k][i] * b[k][j] over kc2 k pairs of a bfloat16 A panel and a
 * bfloat16 B panel (pair rows nv*32 elements apart), float32 accumulation, stored as
 * dt_gemm_kernel_fn stores (first: + bias, + beta * c; else c +=), then, with epi (the last K
 * block), the residual and the activation as dt_gemm_kernel_epi_fn (epi->act one that
 * dt_gemm_epi_in_store admits). */
typedef void (*dt_gemm_kernel_bf16_fn)(int64_t kc2, const uint16_t *a, const uint16_t *b, int nv, float *c,
                                       int64_t ldc, int m, int n, bool first, float beta, const float *bias,
                                       const dt_epilogue *epi, const float *res);
void dt_gemm_kernel_bf16_ref(int64_t kc2, const uint16_t *a, const uint16_t *b, int nv, float *c, int64_t ldc,
                             int m, int n, bool first, float beta, const float *bias, const dt_epilogue *epi,
                             const float *res);
void dt_gemm_kernel_bf16_avx512(int64_t kc2, const uint16_t *a, const uint16_t *b, int nv, float *c,
                                int64_t ldc, int m, int n, bool first, float beta, const float *bias,
                                const dt_epilogue *epi, const float *res);
/* The AVX512-BF16 kernel where the CPU has it, else the reference. */
dt_gemm_kernel_bf16_fn dt_gemm_kernel_bf16_select(void);
/* As dt_gemm_kernel_narrow_panels_avx512 for bfloat16 (no epilogue): a last B panel of
 * n <= DT_GEMM_NARROW columns (pair rows ldb elements apart) against all m rows of a block
 * at once, A panel p at a + p*lda; each panel's result is the reference kernel's
 * (dt_gemm_kernel_bf16_ref, nv 1) up to the order of the hardware's adds. NULL from the
 * selector: none on this CPU. */
typedef void (*dt_gemm_kernel_bf16_narrow_fn)(int64_t kc2, const uint16_t *a, int64_t lda, const uint16_t *b,
                                              int64_t ldb, float *c, int64_t ldc, int m, int n, bool first,
                                              float beta, const float *bias);
void dt_gemm_kernel_bf16_narrow_avx512(int64_t kc2, const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb,
                                       float *c, int64_t ldc, int m, int n, bool first, float beta,
                                       const float *bias);
dt_gemm_kernel_bf16_narrow_fn dt_gemm_kernel_bf16_narrow_select(void);
/* dt_gemm_kernel_bf16_fn for a tile of more than 4 rows that also streams a_next, the next
 * strip's A panel, into L2 over its k loop (a line every two k pairs): the last tile of a
 * strip, as dt_gemm_kernel_bf16_x_fn's a_next does where a strip ends in a few extra columns.
 * A network's weights are read from memory at every run. The bits of dt_gemm_kernel_bf16_fn.
 * NULL from the selector: none on this CPU. */
typedef void (*dt_gemm_kernel_bf16_next_fn)(int64_t kc2, const uint16_t *a, const uint16_t *a_next, const uint16_t *b,
                                            int nv, float *c, int64_t ldc, int m, int n, bool first, float beta,
                                            const float *bias, const dt_epilogue *epi, const float *res);
void dt_gemm_kernel_bf16_next_avx512(int64_t kc2, const uint16_t *a, const uint16_t *a_next, const uint16_t *b, int nv,
                                     float *c, int64_t ldc, int m, int n, bool first, float beta, const float *bias,
                                     const dt_epilogue *epi, const float *res);
dt_gemm_kernel_bf16_next_fn dt_gemm_kernel_bf16_next_select(void);
/* As dt_gemm_kernel_x_fn for bfloat16: the 8 x 48 tile of dt_gemm_kernel_bf16_fn (nv 3, n 48;
 * m <= 8 rows stored) and 1 <= nx <= DT_GEMM_NARROW more columns (xb: a last B panel, pair rows
 * 32 elements apart) in one pass over k, two columns a register, fed by the 32 bytes of A the
 * tile's row broadcasts read. Where the narrow kernel ran as a pass of its own it streamed the
 * block's A panels from L2 for a column or few: 12% of resnet50 --bf16's GEMM time for 2% of
 * its columns (7x7 images, 49 = 48 + 1; Winograd blocks of 49 and 98 tiles). The extra
 * columns are stored as the narrow kernel stores them (same bits: the same chain of vdpbf16ps
 * per row), without the epilogue (the caller applies it to them as after the narrow kernel).
 * a_next (NULL: none): the A panel the caller runs next, prefetched into L2 a line every two k
 * pairs, as the float32 x kernel does (the narrow pass used to bring the block's A in).
 * NULL from the selector: none on this CPU. */
typedef void (*dt_gemm_kernel_bf16_x_fn)(int64_t kc2, const uint16_t *a, const uint16_t *a_next, const uint16_t *b,
                                         float *c, int64_t ldc, int m, bool first, float beta, const float *bias,
                                         const dt_epilogue *epi, const float *res, const uint16_t *xb, int nx);
void dt_gemm_kernel_bf16_x_avx512(int64_t kc2, const uint16_t *a, const uint16_t *a_next, const uint16_t *b, float *c,
                                  int64_t ldc, int m, bool first, float beta, const float *bias, const dt_epilogue *epi,
                                  const float *res, const uint16_t *xb, int nx);
dt_gemm_kernel_bf16_x_fn dt_gemm_kernel_bf16_x_select(void);

/* ---- float16 products (gemm_fp16.c) ----
 *
 * The same pair layouts as bfloat16 (dt_gemm_pack_a_half / _b_half with dt_float_to_half:
 * IEEE half, round to nearest even, subnormals kept). AVX512-FP16 has no float16 dot product
 * into float32, so the kernel multiplies and adds in float16 (vfmadd231ph, 32 lanes: each
 * column's even and odd k apart) over chunks of DT_GEMM_FP16_CHUNK k pairs, then adds each
 * chunk's sum (even + odd, in float16) into float32 accumulators. Error: each lane sums at
 * most DT_GEMM_FP16_CHUNK products in float16 (unit roundoff 2^-11), so a chunk's error is
 * within about DT_GEMM_FP16_CHUNK * 2^-11 of its sum of |products|; across chunks float32. */
#ifndef DT_GEMM_FP16_CHUNK
#define DT_GEMM_FP16_CHUNK 64
#endif

/* Whether this CPU has AVX512-FP16 (cpuid): what fp16 engines need to load. DUCTILE_CPU_FP16=0
 * treats the CPU as lacking it. */
bool dt_cpu_has_fp16(void);
/* The float16 of f (dt_float_to_half): round to nearest even, subnormals kept. */
uint16_t dt_fp16_round(float f);
/* As dt_gemm_bf16_pack_fn in float16, scaled: the values are multiplied by the power of two
 * that brings the largest |value| of the block into [32, 64) before rounding (activations
 * of any magnitude keep float16's 11 bits; with weights within 4 (dt_cpu_bf16_in_kernel
 * checks) a chunk's sums stay below float16's 65504), and the
 * inverse is returned, for the kernel to scale the sums back (1 for an all-zero block or one
 * with an inf or NaN, which then propagate). The same bits from both. */
typedef float (*dt_gemm_fp16_pack_fn)(const float *src, int64_t lds, int64_t kc, int n, int ld, uint16_t *dst);
float dt_gemm_fp16_pack_ref(const float *src, int64_t lds, int64_t kc, int n, int ld, uint16_t *dst);
float dt_gemm_fp16_pack_avx512(const float *src, int64_t lds, int64_t kc, int n, int ld, uint16_t *dst);
dt_gemm_fp16_pack_fn dt_gemm_fp16_pack_select(void);
/* dt_gemm_kernel_bf16_fn for float16 operands, each chunk's sums multiplied by `scale` (the
 * inverse of the operands' pack scales) as they are added into float32: the reference models
 * the chunked float16 sums in C (float arithmetic rounded to half after each add: within a
 * rounding of the hardware's fused steps); the AVX512-FP16 kernel runs 4 rows at a time. */
typedef void (*dt_gemm_kernel_fp16_fn)(int64_t kc2, const uint16_t *a, const uint16_t *b, int nv, float scale,
                                       float *c, int64_t ldc, int m, int n, bool first, float beta,
                                       const float *bias, const dt_epilogue *epi, const float *res);
void dt_gemm_kernel_fp16_ref(int64_t kc2, const uint16_t *a, const uint16_t *b, int nv, float scale, float *c,
                             int64_t ldc, int m, int n, bool first, float beta, const float *bias,
                             const dt_epilogue *epi, const float *res);
void dt_gemm_kernel_fp16_avx512(int64_t kc2, const uint16_t *a, const uint16_t *b, int nv, float scale, float *c,
                                int64_t ldc, int m, int n, bool first, float beta, const float *bias,
                                const dt_epilogue *epi, const float *res);
dt_gemm_kernel_fp16_fn dt_gemm_kernel_fp16_select(void);

#endif
