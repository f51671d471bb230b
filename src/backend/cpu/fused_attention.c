/* The CPU kernel of FusedAttention (src/ops/fused.h). One item is one (batch, head) product,
 * taken DT_FA_ROWS query rows at a time: Kt scaled and packed straight into the GEMM's B
 * panels once per item (bshd: from K's rows, transposed 8 keys at a time); per block of rows,
 * scores = Q Kt by the GEMM (Q read in place, its scale the GEMM's alpha), softmax of the
 * masked scores 8 rows at a time with NaN made 0 (dt_cpu_softmax_masked_rows: three passes
 * over a row), 8 rows at a time packed as the second GEMM's A, then Y = P V by the GEMM, straight
 * into the output (bshd: V read in place and Y written with a row stride of H heads, which
 * the GEMM takes as ldb and ldc; bshd_qkv: Q, K and V are parts of one [B, S, 3, H, D] input,
 * rows 3 H D apart; krows: K [.., L, D] as Hugging Face's decoders have it before their
 * Transpose to Kt, packed from its rows). Items run one per thread when they add up to enough work, else all on
 * the calling thread.
 *
 * Every step is the unfused layer's arithmetic: the same float products for the scales, the
 * same GEMM tiles (same N and K, rows in blocks of a multiple of 8: the same micro-kernel
 * calls and sums) for both products, the same add
 * for the mask, Softmax's line arithmetic, and Where's choice of 0 for NaN. The output
 * equals the unfused chain's bit for bit (tests/c/test_fuse_attention.c), but that keys a
 * mask leaves dead (below) contribute exactly 0 where the chain adds terms near 1e-38. */
#include "backend/cpu/gemm.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/nn_kernels.h"
#include "core/checked.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "ops/fused.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* The attributes and the sizes of a run are ops/fused.h's, shared with the other backends. */
typedef dt_fa_attrs dt_fa_params;

static ductile_status dt_fa_prepare(const ductile_layer *L, void **out)
{
    DT_TRY(dt_cpu_want_f32(L));
    dt_fa_params p;
    dt_fused_attention_attrs(L, &p);
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static void dt_fa_geometry(const dt_fa_params *p, const dt_view *in, dt_fa_geom *g)
{
    dt_fused_attention_geometry(p, in, g);
}

/* Query rows an item takes at a time: their scores and packed probabilities (2 x 48 x L
 * floats: 192 KB at 512 keys) stay in L2 between the scores GEMM, the softmax and the GEMM
 * with V, where a whole [S, L] block (2 MB at 512 x 512) went out to L3 and came back. A
 * multiple of 8: the blocks' tiles are the whole product's, so the bits are the same. 48,
 * the packed panels' width, as the blocks of a causal mask then end where a panel of keys
 * does (dead keys below): each block's products cover its rows' keys and at most 47 more.
 * Llama-style 4x512 on 1 thread (this Zen 4), one attention: 12.94 ms at 128 rows without
 * dead keys, 8.95 at 64 rows, 8.74 at 48, 8.88 at 96; bert_small (no dead keys) 8x512:
 * 105.5 at 48 vs 104.5 at 128. */
enum { DT_FA_ROWS = 48 };

static int64_t dt_fa_block_rows(const dt_fa_geom *g) { return g->S < DT_FA_ROWS ? g->S : DT_FA_ROWS; }

/* Bytes of one thread's buffers: Kt scaled and packed as the GEMM's B panels, a block's scores
 * and probabilities, each rounded to 64 bytes, then the GEMM's packing buffers. */
static size_t dt_fa_round(size_t floats) { return (floats * sizeof(float) + 63) & ~(size_t)63; }

static size_t dt_fa_gemm_bytes(const dt_fa_geom *g)
{
    /* The scores' B is packed by the item itself (B_packed), but the larger bound costs
     * little and keeps the two products' sizes in one formula. */
    int64_t R = dt_fa_block_rows(g);
    dt_gemm g1 = {.M = R, .N = g->L, .K = g->D}, g2 = {.M = R, .N = g->Dv, .K = g->L};
    size_t a = dt_gemm_serial_scratch_bytes(&g1), b = dt_gemm_serial_scratch_bytes(&g2);
    return ((a > b ? a : b) + 63) & ~(size_t)63;
}

/* Floats of a block's probabilities packed as the second GEMM's A (dt_gemm_pack_a_full's
 * layout: the block's rows rounded up to 8, times L). */
static int64_t dt_fa_pp_floats(const dt_fa_geom *g) { return (dt_fa_block_rows(g) + 7) / 8 * 8 * g->L; }

static ductile_status dt_fa_per_thread(const dt_fa_geom *g, size_t *bytes)
{
    size_t kp, sl, pp, rows, sum = 0, R = (size_t)dt_fa_block_rows(g);
    /* dt_gemm_packed_b_floats: L rounded up to 16 columns, times D. */
    if (!dt_mul_size(((size_t)g->L + 15) / 16 * 16, (size_t)g->D, &kp) || !dt_mul_size(R, (size_t)g->L, &sl) ||
        !dt_mul_size((R + 7) / 8 * 8, (size_t)g->L, &pp) || !dt_mul_size(8, (size_t)g->L, &rows) ||
        !dt_add_size(sum, dt_fa_round(kp), &sum) || !dt_add_size(sum, dt_fa_round(sl), &sum) ||
        !dt_add_size(sum, dt_fa_round(pp), &sum) || !dt_add_size(sum, dt_fa_round(rows), &sum) ||
        !dt_add_size(sum, dt_fa_gemm_bytes(g), &sum))
        return dt_fail(DUCTILE_ERR_SHAPE, "FusedAttention scratch for %lldx%lld scores is too large", (long long)g->S,
                       (long long)g->L);
    *bytes = sum;
    return DUCTILE_OK;
}

/* Kt times k_scale, packed as dt_gemm_pack_b_full packs a [D, L] B (panels of DT_GEMM_NR keys,
 * each D rows of its width rounded up to 16, zeros past L), from K where key t, dim d is at
 * k[t * ts + d * ds] (bshd: K's rows, ts = H * D, ds = 1; else Kt: ts = 1, ds = L). One pass:
 * the scaled copy and the GEMM's own packing were two, the first a strided transpose. Each
 * value is the one float product of the unfused Mul. */
static void dt_fa_pack_kt(const float *k, int64_t ts, int64_t ds, int64_t D, int64_t L, float ksc, float *dst)
{
    dt_gemm_pack_a8_fn pack8 = ds == 1 ? dt_gemm_pack8() : NULL;
    for (int64_t p = 0; p < L; p += DT_GEMM_NR) {
        int64_t w = L - p < DT_GEMM_NR ? L - p : DT_GEMM_NR, ld = (w + 15) & ~(int64_t)15;
        float *panel = dst + p * D;
        int64_t j = 0;
        if (pack8)
            for (; j + 8 <= w; j += 8) pack8(k + (p + j) * ts, ts, D, ksc, panel + j, ld);
        for (int64_t d = 0; d < D; d++) {
            float *row = panel + d * ld;
            for (int64_t t = j; t < w; t++) row[t] = k[(p + t) * ts + d * ds] * ksc;
            for (int64_t t = w; t < ld; t++) row[t] = 0.0f;
        }
    }
}

/* Items in parallel: one whole product per thread, as the unfused MatMul does, once the
 * products add up to 1e5 multiply-adds (~10 us on one thread with the softmax and packing:
 * several times what a fork costs). Not more: at a short sequence the projections before
 * attention split their columns over the threads, so each thread holds the Q, K and V
 * columns of the heads it then takes (bshd, items in head order), while one thread doing
 * every head first pulls half of them from the other core's cache. bert_small at 1x16 on 2
 * threads (4 heads, 1.3e5 multiply-adds) took 19.5 us per attention serially against 10.3
 * on 1 thread. */
static bool dt_fa_parallel(const dt_fa_geom *g, int threads)
{
    double per = (double)g->S * (double)g->L * (double)(g->D + g->Dv);
    return threads > 1 && g->count >= threads && per * (double)g->count >= 1e5;
}

static ductile_status dt_fa_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                    size_t *bytes)
{
    (void)out;
    dt_fa_geom g;
    dt_fa_geometry(params, in, &g);
    *bytes = 0;
    if (g.count == 0 || g.S == 0 || g.Dv == 0) return DUCTILE_OK;
    size_t per = 0;
    DT_TRY(dt_fa_per_thread(&g, &per));
    if (!dt_mul_size(per, (size_t)(dt_fa_parallel(&g, threads) ? threads : 1), bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "FusedAttention scratch of %d x %zu bytes is too large", threads, per);
    return DUCTILE_OK;
}

/* Dead keys. A causal mask (each query sees the keys up to its own position) or a padded
 * batch's (keys past a sequence's end) leaves a row's last keys at a mask so far below the
 * row's largest that their e^(s - max) is under exp's floor (e^-87, dt_exp_approx_f's clamp):
 * they add at most 1e-38 to the softmax's sums and products, which round it away wherever
 * those are normal floats. A block of query rows leaves out the keys past the last one that
 * any of its rows can feel: both products and the softmax run over the first n keys, n the
 * packed panels' width (DT_GEMM_NR, so the packed Kt and its panels' widths still agree) or
 * L. Half the work of a causal prefill. The bits are the unfused chain's but for those
 * 1e-38 terms: left out, they are exactly 0 (onnxruntime's e^-inf), so an output that
 * cancels to 0 stays 0 where the unfused chain gives a value near 1e-38.
 *
 * A key t of row r is dead where mask[t] <= max_t mask - 2 b - 100 - slack: b bounds
 * |score| (Cauchy-Schwarz: |q_scale| |q_r| max_t |k_scale k_t|, widened for the float sums'
 * rounding), so its s + mask sits at least 100 below the row's largest s + mask, more than
 * exp's 87, and slack (2^-20 of the magnitudes) covers the rounding of s + mask. NaN masks
 * stay live, as do rows whose mask is all -inf, +inf anywhere, or b unbounded (an infinite or
 * NaN Q or K; scores past 1e30). */

typedef float dt_fa_v16 __attribute__((vector_size(64)));

/* Sum of squares of x[0, n) in float, 16 lanes at a time: a bound's input, its rounding
 * covered by the bound's widening. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static float dt_fa_sumsq(const float *x, int64_t n)
{
    dt_fa_v16 acc = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        dt_fa_v16 v;
        memcpy(&v, x + i, sizeof v);
        acc += v * v;
    }
    float sum = 0.0f;
    for (int l = 0; l < 16; l++) sum += acc[l];
    for (; i < n; i++) sum += x[i] * x[i];
    return sum;
}

/* The largest |k_scale k_t|^2 over the keys of the packed Kt (dt_fa_pack_kt: panels of
 * DT_GEMM_NR keys, D rows of ld floats, zeros past L); infinite when a key holds an infinity
 * or NaN. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static float dt_fa_key_norm2(const float *kp, int64_t D, int64_t L)
{
    float best = 0.0f;
    for (int64_t p = 0; p < L; p += DT_GEMM_NR) {
        int64_t w = L - p < DT_GEMM_NR ? L - p : DT_GEMM_NR, ld = (w + 15) & ~(int64_t)15;
        const float *panel = kp + p * D;
        dt_fa_v16 acc[DT_GEMM_NR / 16] = {{0}};
        for (int64_t d = 0; d < D; d++)
            for (int64_t c = 0; c < ld / 16; c++) {
                dt_fa_v16 v;
                memcpy(&v, panel + d * ld + c * 16, sizeof v);
                acc[c] += v * v;
            }
        for (int64_t c = 0; c < ld / 16; c++)
            for (int l = 0; l < 16; l++) {
                if (!(acc[c][l] <= FLT_MAX)) return INFINITY;
                best = acc[c][l] > best ? acc[c][l] : best;
            }
    }
    return best;
}

/* One past the last live key of a mask row m (L keys) whose largest value is mx, for scores
 * bounded by b; L where none can be left out. */
static int64_t dt_fa_row_live(const float *m, int64_t L, float mx, double b)
{
    if (!(mx > -INFINITY && mx < INFINITY && b < 1e30)) return L;
    double th = (double)mx - 2.0 * b - 100.0 - (fabs((double)mx) + 2.0 * b) * 0x1p-20;
    int64_t t = L;
    while (t > 0 && (double)m[t - 1] <= th) t--;
    return t;
}

/* Keys (a multiple of DT_GEMM_NR, or L) that rows [0, rn) of a block need: mask rows m + r mi,
 * query rows q + r ldq of D (times q_scale), the packed Kt kp; *kn caches dt_fa_key_norm2
 * (negative: not yet taken). */
static int64_t dt_fa_live_cols(const float *m, int64_t mi, int64_t rn, int64_t L, const float *q, int64_t ldq,
                               int64_t D, float q_scale, const float *kp, double *kn)
{
    int64_t need = 0;
    float mx = 0.0f;
    if (L == 0) return 0;
    for (int64_t r = 0; r < rn && need < L; r++) {
        const float *mr = m + r * mi;
        if (r == 0 || mi) mx = dt_cpu_max_f32(mr, L);
        /* a last key within 100 of the max is live whatever the scores: no bound needed */
        if (!((double)mr[L - 1] <= (double)mx - 100.0)) return L;
        if (*kn < 0) *kn = dt_fa_key_norm2(kp, D, L);
        /* widened for the three float sums over D (the two norms and the score) */
        double b = fabs((double)q_scale) * sqrt((double)dt_fa_sumsq(q + r * ldq, D) * *kn) *
                   (1.0 + (double)(2 * D + 16) * 0x1p-23);
        int64_t t = dt_fa_row_live(mr, L, mx, b);
        need = t > need ? t : need;
    }
    need = (need + DT_GEMM_NR - 1) / DT_GEMM_NR * DT_GEMM_NR;
    return need < L ? need : L;
}

typedef struct dt_fa_job {
    const dt_fa_params *p;
    const dt_fa_geom *g;
    const float *q, *kt, *v, *mask;
    float *y;
    char *scratch;
    size_t per_thread;
} dt_fa_job;

static void dt_fa_item(const dt_fa_job *j, int64_t bi, char *buf)
{
    const dt_fa_geom *g = j->g;
    int64_t S = g->S, D = g->D, L = g->L, Dv = g->Dv;
    float *kp = (float *)buf;
    float *sc = (float *)(buf + dt_fa_round((size_t)((L + 15) / 16 * 16 * D)));
    int64_t R = dt_fa_block_rows(g);
    float *pp = (float *)((char *)sc + dt_fa_round((size_t)(R * L)));
    float *rows = (float *)((char *)pp + dt_fa_round((size_t)dt_fa_pp_floats(g)));
    void *gbuf = (char *)rows + dt_fa_round((size_t)(8 * L));
    /* Where this item's rows are: [.., S, D] blocks, or (bshd) head h of [B, S, H, D] rows.
     * Q's scale is the scores' GEMM alpha, which the GEMM multiplies into A as it packs it:
     * alpha * q is the unfused Mul's q * scale, the same float. */
    const float *q, *v;
    float *y;
    int64_t ldq = D, ldv = Dv, ldy = Dv;
    if (j->p->bshd) {   /* rows g->ldq, ldk, ldv apart (qkv: K and V in Q's rows) */
        int64_t H = g->H, b = bi / H, h = bi % H;
        q = j->q + b * S * g->ldq + h * D;
        dt_fa_pack_kt(j->kt + b * L * g->ldk + h * D, g->ldk, 1, D, L, j->p->k_scale, kp);
        v = j->v + b * L * g->ldv + h * Dv;
        y = j->y + (b * S * H + h) * Dv;
        ldq = g->ldq;
        ldv = g->ldv;
        ldy = H * Dv;
    } else {   /* Kt [D, L] (key t at t, dims L apart), or krows: K [L, D] (key t at t D) */
        bool kr = j->p->krows;
        q = j->q + bi * S * D;
        dt_fa_pack_kt(j->kt + bi * D * L, kr ? D : 1, kr ? 1 : L, D, L, j->p->k_scale, kp);
        v = j->v + bi * L * Dv;
        y = j->y + bi * S * Dv;
    }
    /* The mask's offset for this item: its batch index split over the batch dims. */
    const float *mrow = NULL;
    int64_t mi = 0, mj = 0;
    if (j->mask) {
        int64_t off = 0, rest = bi;
        for (int d = g->rank - 3; d >= 0; d--) {
            off += rest % g->batch[d] * g->mstride[d];
            rest /= g->batch[d];
        }
        mrow = j->mask + off;
        mi = g->mstride[g->rank - 2];
        mj = g->mstride[g->rank - 1];
    }
    dt_gemm_pack_a8_fn pack8 = dt_gemm_pack8();
    double kn = -1.0;   /* dt_fa_key_norm2's, once a block asks for it */
    for (int64_t r0 = 0; r0 < S; r0 += R) {
        int64_t rn = S - r0 < R ? S - r0 : R;
        /* Keys past the block's live columns are left out of both products and the softmax:
         * n of them, a multiple of the packed panels' width or L. */
        int64_t n = L;
        if (mrow && mj)
            n = dt_fa_live_cols(mrow + r0 * mi, mi, rn, L, q + r0 * ldq, ldq, D, j->p->q_scale, kp, &kn);
        dt_gemm g1 = {.M = rn, .N = n, .K = D, .alpha = j->p->q_scale, .A = q + r0 * ldq, .lda = ldq, .B_packed = kp,
                      .C = sc, .ldc = n};
        dt_sgemm_serial_in(&g1, gbuf);
        /* Softmax 8 rows at a time into `rows` (in L1), then packed at once as those rows'
         * panel of the second GEMM's A: the probabilities never make the trip through the
         * cache hierarchy to be read back by the GEMM's own packing. The packed values are the
         * rows' (times alpha 1, as the unfused MatMul packs them). */
        for (int64_t i0 = 0; i0 < rn; i0 += 8) {
            int64_t nr = rn - i0 < 8 ? rn - i0 : 8;
            if (n > 0)
                dt_cpu_softmax_masked_rows(sc + i0 * n, n, mrow ? mrow + (r0 + i0) * mi : NULL, mi, mj, rows, n, n,
                                           (int)nr, j->p->nan_to_zero);
            float *panel = pp + i0 * n;
            if (pack8 && nr == 8) {
                pack8(rows, n, n, 1.0f, panel, 8);
            } else {
                for (int64_t t = 0; t < n; t++)
                    for (int64_t r = 0; r < 8; r++) panel[t * 8 + r] = r < nr ? 1.0f * rows[r * n + t] : 0.0f;
            }
        }
        /* V's whole 48-column panels are read in place (direct_b), row stride and all: packing
         * them was a copy of V per item for no reuse the in-place read lacks. */
        dt_gemm g2 = {.M = rn, .N = Dv, .K = n, .alpha = 1.0f, .A_packed = pp, .B = v, .ldb = ldv, .direct_b = true,
                      .C = y + r0 * ldy, .ldc = ldy};
        dt_sgemm_serial_in(&g2, gbuf);
    }
}

static void dt_fa_range(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_fa_job *j = arg;
    for (int64_t bi = begin; bi < end; bi++) dt_fa_item(j, bi, j->scratch + (size_t)tid * j->per_thread);
}

static ductile_status dt_fa_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_fa_params *p = params;
    dt_fa_geom g;
    dt_fa_geometry(p, in, &g);
    if (g.count == 0 || g.S == 0 || g.Dv == 0) return DUCTILE_OK;
    int threads = dt_pool_threads(ex->pool);
    bool par = dt_fa_parallel(&g, threads);
    size_t per = 0, need;
    DT_TRY(dt_fa_per_thread(&g, &per));
    if (!dt_mul_size(per, (size_t)(par ? threads : 1), &need) || !ex->scratch || ex->scratch_bytes < need)
        return dt_fail(DUCTILE_ERR_INTERNAL, "FusedAttention was given %zu bytes of scratch; it needs %zu",
                       ex->scratch ? ex->scratch_bytes : 0, need);
    const float *q = in[DT_FA_Q].data;
    dt_fa_job j = {p, &g, q, p->qkv ? q + g.koff : in[DT_FA_KT].data, p->qkv ? q + g.voff : in[DT_FA_V].data,
                   p->has_mask ? in[DT_FA_MASK].data : NULL, out[0].data, ex->scratch, per};
    if (par)
        dt_parallel_for(ex->pool, g.count, 1, dt_fa_range, &j);
    else
        dt_fa_range(&j, 0, g.count, 0);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_fused_attention_kernel = {.prepare = dt_fa_prepare, .scratch = dt_fa_scratch, .run = dt_fa_run};
