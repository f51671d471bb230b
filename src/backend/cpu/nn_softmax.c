/* Softmax and LogSoftmax over [outer, n, inner] (layout from ops/nn.h): each line subtracts
 * its max before exp so large logits cannot overflow. */
#include "backend/cpu/exp_approx.h"
#include "backend/cpu/nn_kernels.h"
#include "ops/nn.h"
#include "backend/cpu/widen.h"
#include "core/status.h"

#include <math.h>
#include <string.h>

typedef struct {
    const float *x;
    float *y;
    int64_t n, inner;
    int is_log;
} dt_softmax_job;

/* y = e^(x - m) over a contiguous line, returning the sum: the polynomial exp vectorizes
 * (libm's scalar expf was a third of a transformer's softmax time), and the sum runs in 16
 * partial lanes so that it vectorizes too without reassociating a single float chain. The
 * exp's Horner steps are fused multiply-adds (clones at x86-64 levels 4 and 3, which have
 * FMA; the baseline calls libm's exact fmaf): the same bits on every path. The line form is
 * the reference the 8-row kernel (dt_cpu_softmax_masked_rows), which the Softmax op and
 * FusedAttention run, gives the bits of (test_ops_nn). */
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
static float dt_softmax_exp_line(const float *restrict x, float *restrict y, int64_t n, float m)
{
    for (int64_t k = 0; k < n; k++) y[k] = dt_exp_approx_f(x[k] - m, true);
    float part[16] = {0};
    int64_t k = 0;
    for (; k + 16 <= n; k += 16)
        for (int l = 0; l < 16; l++) part[l] += y[k + l];
    for (; k < n; k++) part[k % 16] += y[k];
    float sum = 0.0f;
    for (int l = 0; l < 16; l++) sum += part[l];
    return sum;
}

/* Static clones behind the exported name: see nn.c on clang 14's target_clones. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void dt_softmax_line_clones(const float *x, float *y, int64_t n)
{
    float m = dt_cpu_max_f32(x, n);
    float inv = 1.0f / dt_softmax_exp_line(x, y, n, m);
    for (int64_t k = 0; k < n; k++) y[k] *= inv;
}

void dt_cpu_softmax_line(const float *x, float *y, int64_t n) { dt_softmax_line_clones(x, y, n); }

/* FusedAttention's row: softmax of s + mask (mask[t] when mj is 1, mask[0] for every t when mj
 * is 0, none when mask is NULL) into y, NaN made 0 when nan_to_zero, in three passes over the
 * line where Add, Softmax and Where took seven (add, max, exp, sum, scale, NaN, each a trip
 * through L1): s + mask is formed in the max pass and again in the exp pass instead of being
 * stored. The same bits as those layers: the same float sums; the same max (up to the sign of a zero, below); the exp
 * line's fused-multiply-add polynomial and its 16 partial sums added in the same order; one
 * product by 1 / sum. */
enum { DT_SM_NONE, DT_SM_ONE, DT_SM_ROW };   /* the mask: none, m[0] for every t, m[t] */
typedef float dt_sm_v16 __attribute__((vector_size(64)));
typedef int32_t dt_sm_v16i __attribute__((vector_size(64)));

static inline __attribute__((always_inline)) float dt_sm_at(const float *s, const float *m, const int mode, int64_t t)
{
    return mode == DT_SM_NONE ? s[t] : s[t] + (mode == DT_SM_ROW ? m[t] : m[0]);
}

/* *acc, lane by lane: s + mask at [k, k + 16) where greater. */
static inline __attribute__((always_inline)) void dt_sm_max16(const float *s, const float *m, const int mode, int64_t k,
                                                              dt_sm_v16 *acc)
{
    dt_sm_v16 v, mv;
    memcpy(&v, s + k, sizeof v);
    if (mode == DT_SM_ROW) {
        memcpy(&mv, m + k, sizeof mv);
        v = v + mv;
    } else if (mode == DT_SM_ONE) {
        v = v + m[0];
    }
    dt_sm_v16i gt = v > *acc;
    *acc = (dt_sm_v16)((gt & (dt_sm_v16i)v) | (~gt & (dt_sm_v16i)*acc));
}

static inline __attribute__((always_inline)) void
dt_softmax_masked_body(const float *restrict s, const float *restrict m, const int mode, float *restrict y, int64_t n,
                       bool nan_to_zero)
{
    /* The max in 16 lanes of four vectors (v > acc ? v : acc by a compare and a select; the
     * scalar form stays 16 maxss a block, and one vector is a compare-select chain a block
     * long). Which of +0 and -0 it returns may differ from one lane's order, but the max only
     * enters as x - max, where that is the sign of a zero difference, and e^+0 = e^-0 = 1. */
    dt_sm_v16 a0, a1, a2, a3;
    for (int l = 0; l < 16; l++) a0[l] = -INFINITY;
    a1 = a2 = a3 = a0;
    int64_t k = 0;
    for (; k + 64 <= n; k += 64) {
        dt_sm_max16(s, m, mode, k, &a0);
        dt_sm_max16(s, m, mode, k + 16, &a1);
        dt_sm_max16(s, m, mode, k + 32, &a2);
        dt_sm_max16(s, m, mode, k + 48, &a3);
    }
    for (; k + 16 <= n; k += 16) dt_sm_max16(s, m, mode, k, &a0);
    dt_sm_v16i gt = a1 > a0;
    a0 = (dt_sm_v16)((gt & (dt_sm_v16i)a1) | (~gt & (dt_sm_v16i)a0));
    gt = a3 > a2;
    a2 = (dt_sm_v16)((gt & (dt_sm_v16i)a3) | (~gt & (dt_sm_v16i)a2));
    gt = a2 > a0;
    a0 = (dt_sm_v16)((gt & (dt_sm_v16i)a2) | (~gt & (dt_sm_v16i)a0));
    float mx = -INFINITY;
    for (int l = 0; l < 16; l++) mx = a0[l] > mx ? a0[l] : mx;
    for (int64_t t = k; t < n; t++) {
        float v = dt_sm_at(s, m, mode, t);
        mx = v > mx ? v : mx;
    }
    float part[16] = {0};
    for (k = 0; k + 16 <= n; k += 16)
        for (int l = 0; l < 16; l++) {
            float e = dt_exp_approx_f(dt_sm_at(s, m, mode, k + l) - mx, true);
            y[k + l] = e;
            part[l] += e;
        }
    for (; k < n; k++) {
        y[k] = dt_exp_approx_f(dt_sm_at(s, m, mode, k) - mx, true);
        part[k % 16] += y[k];
    }
    float sum = 0.0f;
    for (int l = 0; l < 16; l++) sum += part[l];
    float inv = 1.0f / sum;
    if (nan_to_zero)
        for (k = 0; k < n; k++) {
            float p = y[k] * inv;
            y[k] = isnan(p) ? 0.0f : p;
        }
    else
        for (k = 0; k < n; k++) y[k] *= inv;
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
static void dt_softmax_masked_clones(const float *s, const float *m, int64_t mj, float *y, int64_t n, bool nan_to_zero)
{
    if (!m)
        dt_softmax_masked_body(s, m, DT_SM_NONE, y, n, nan_to_zero);
    else if (mj)
        dt_softmax_masked_body(s, m, DT_SM_ROW, y, n, nan_to_zero);
    else
        dt_softmax_masked_body(s, m, DT_SM_ONE, y, n, nan_to_zero);
}

/* s + mask at [k, k + 16) of a row (dt_sm_at on 16 lanes). */
static inline __attribute__((always_inline)) __attribute__((target("avx512f,fma"))) __m512
dt_sm_load16(const float *s, const float *m, const int mode, int64_t k)
{
    __m512 v = _mm512_loadu_ps(s + k);
    if (mode == DT_SM_ROW) return _mm512_add_ps(v, _mm512_loadu_ps(m + k));
    if (mode == DT_SM_ONE) return _mm512_add_ps(v, _mm512_set1_ps(m[0]));
    return v;
}

/* dt_softmax_masked_body over nr <= 8 rows (scores s + r lds, mask m + r mi, out y + r ldy),
 * phase by phase (every row's max, then every row's exp, then the sums, then the scaling):
 * a row's reductions (the max, its 16 partial sums added in order, 1 / sum) are chains of
 * dependent steps, which one row after the other left the core waiting on at 128 keys;
 * interleaved over 8 rows they overlap. Every value as dt_softmax_masked_body computes it
 * (dt_exp_v16 is dt_exp_approx_f lane for lane; the sums in the same order): the same bits.
 * 128 keys: 0.86 -> 0.38 ns a score (8 rows at a time, this Zen 5, session 19). */
static inline __attribute__((always_inline)) __attribute__((target("avx512f,fma"))) void
dt_softmax_masked_rows_body(const float *s, int64_t lds, const float *m, int64_t mi, const int mode, float *y,
                            int64_t ldy, int64_t n, int nr, bool nan_to_zero)
{
    float mx[8], inv[8], part[8][16];
    const int64_t nv = n / 16 * 16;
    for (int r = 0; r < nr; r++) {
        const float *sr = s + r * lds, *mr = m ? m + r * mi : NULL;
        /* max(v, acc): acc where v is NaN or equal, as dt_sm_max16's v > acc select */
        __m512 a0 = _mm512_set1_ps(-INFINITY), a1 = a0, a2 = a0, a3 = a0;
        int64_t k = 0;
        for (; k + 64 <= n; k += 64) {
            a0 = _mm512_max_ps(dt_sm_load16(sr, mr, mode, k), a0);
            a1 = _mm512_max_ps(dt_sm_load16(sr, mr, mode, k + 16), a1);
            a2 = _mm512_max_ps(dt_sm_load16(sr, mr, mode, k + 32), a2);
            a3 = _mm512_max_ps(dt_sm_load16(sr, mr, mode, k + 48), a3);
        }
        for (; k < nv; k += 16) a0 = _mm512_max_ps(dt_sm_load16(sr, mr, mode, k), a0);
        float x = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(a1, a0), _mm512_max_ps(a3, a2)));
        for (; k < n; k++) {
            float v = dt_sm_at(sr, mr, mode, k);
            x = v > x ? v : x;
        }
        mx[r] = x;
    }
    for (int r = 0; r < nr; r++) {
        const float *sr = s + r * lds, *mr = m ? m + r * mi : NULL;
        float *yr = y + r * ldy;
        __m512 vm = _mm512_set1_ps(mx[r]), acc = _mm512_setzero_ps();
        for (int64_t k = 0; k < nv; k += 16) {
            __m512 e = dt_exp_v16(_mm512_sub_ps(dt_sm_load16(sr, mr, mode, k), vm));
            _mm512_storeu_ps(yr + k, e);
            acc = _mm512_add_ps(acc, e);
        }
        _mm512_storeu_ps(part[r], acc);
    }
    for (int r = 0; r < nr; r++) {
        const float *sr = s + r * lds, *mr = m ? m + r * mi : NULL;
        float *yr = y + r * ldy;
        for (int64_t k = nv; k < n; k++) {
            yr[k] = dt_exp_approx_f(dt_sm_at(sr, mr, mode, k) - mx[r], true);
            part[r][k % 16] += yr[k];
        }
        float sum = 0.0f;
        for (int l = 0; l < 16; l++) sum += part[r][l];
        inv[r] = 1.0f / sum;
    }
    for (int r = 0; r < nr; r++) {
        float *yr = y + r * ldy;
        __m512 vi = _mm512_set1_ps(inv[r]);
        int64_t k = 0;
        for (; k < nv; k += 16) {
            __m512 p = _mm512_mul_ps(_mm512_loadu_ps(yr + k), vi);
            if (nan_to_zero) p = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(p, p, _CMP_ORD_Q), p);
            _mm512_storeu_ps(yr + k, p);
        }
        for (; k < n; k++) {
            float p = yr[k] * inv[r];
            yr[k] = nan_to_zero && isnan(p) ? 0.0f : p;
        }
    }
}

__attribute__((target("avx512f,fma"))) static void dt_softmax_masked_rows_avx512(const float *s, int64_t lds,
                                                                                const float *m, int64_t mi, int64_t mj,
                                                                                float *y, int64_t ldy, int64_t n, int nr,
                                                                                bool nan_to_zero)
{
    if (!m)
        dt_softmax_masked_rows_body(s, lds, m, mi, DT_SM_NONE, y, ldy, n, nr, nan_to_zero);
    else if (mj)
        dt_softmax_masked_rows_body(s, lds, m, mi, DT_SM_ROW, y, ldy, n, nr, nan_to_zero);
    else
        dt_softmax_masked_rows_body(s, lds, m, mi, DT_SM_ONE, y, ldy, n, nr, nan_to_zero);
}

void dt_cpu_softmax_masked_rows(const float *s, int64_t lds, const float *mask, int64_t mi, int64_t mj, float *y,
                                int64_t ldy, int64_t n, int rows, bool nan_to_zero)
{
    __builtin_cpu_init();
    bool avx512 = __builtin_cpu_supports("avx512f");
    for (int r0 = 0; r0 < rows; r0 += 8) {
        int nr = rows - r0 < 8 ? rows - r0 : 8;
        const float *m = mask ? mask + r0 * mi : NULL;
        if (avx512) {
            dt_softmax_masked_rows_avx512(s + r0 * lds, lds, m, mi, mj, y + r0 * ldy, ldy, n, nr, nan_to_zero);
        } else {
            for (int r = 0; r < nr; r++)
                dt_softmax_masked_clones(s + (r0 + r) * lds, m ? m + r * mi : NULL, mj, y + (r0 + r) * ldy, n,
                                         nan_to_zero);
        }
    }
}

/* One item is one line: (o, i) of n elements at stride inner. */
static void dt_softmax_range(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_softmax_job *j = arg;
    int64_t n = j->n, st = j->inner;
    if (st == 1 && !j->is_log) {
        /* Lines one after another: FusedAttention's rows, 8 at a time (the same bits as
         * dt_cpu_softmax_line: see dt_cpu_softmax_masked_rows). */
        for (int64_t it = b; it < e; it += 8) {
            int rows = e - it < 8 ? (int)(e - it) : 8;
            dt_cpu_softmax_masked_rows(j->x + it * n, n, NULL, 0, 0, j->y + it * n, n, n, rows, false);
        }
        return;
    }
    for (int64_t it = b; it < e; it++) {
        int64_t base = (it / st) * n * st + it % st;
        const float *x = j->x + base;
        float *y = j->y + base;
        float m = -INFINITY;
        if (st == 1)
            m = dt_cpu_max_f32(x, n);
        else
            for (int64_t k = 0; k < n; k++) m = x[k * st] > m ? x[k * st] : m;
        float sum = 0.0f;
        for (int64_t k = 0; k < n; k++) {
            float v = dt_exp_approx(x[k * st] - m);
            sum += v;
            if (!j->is_log) y[k * st] = v;
        }
        if (j->is_log) {
            float lse = m + logf(sum);
            for (int64_t k = 0; k < n; k++) y[k * st] = x[k * st] - lse;
        } else {
            float inv = 1.0f / sum;
            for (int64_t k = 0; k < n; k++) y[k * st] *= inv;
        }
    }
}

/* A Softmax or LogSoftmax compiled: its axis, read once. L only for other dtypes than
 * float32 (widened through dt_cpu_via_f32). */
typedef struct dt_softmax_params {
    const ductile_layer *L;
    int64_t axis;
    bool coerce;
    int is_log;
} dt_softmax_params;

static void dt_softmax_read(const ductile_layer *L, int is_log, dt_softmax_params *p)
{
    *p = (dt_softmax_params){L, dt_softmax_axis_attr(L), L->opset < 13, is_log};
}

static ductile_status dt_softmax_exec(const dt_softmax_params *p, const dt_view *in, dt_view *out, dt_exec *ex)
{
    int64_t outer, n, inner;
    DT_TRY(dt_softmax_layout_of(p->axis, p->coerce, &in[0], &outer, &n, &inner));
    dt_softmax_job j = {in[0].data, out[0].data, n, inner, p->is_log};
    if (n == 0) return DUCTILE_OK;
    dt_parallel_for(ex->pool, outer * inner, dt_cpu_grain(n * 4), dt_softmax_range, &j);
    return DUCTILE_OK;
}

static ductile_status dt_softmax_prepare(const ductile_layer *L, void **out)
{
    dt_softmax_params p;
    dt_softmax_read(L, 0, &p);
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_log_softmax_prepare(const ductile_layer *L, void **out)
{
    dt_softmax_params p;
    dt_softmax_read(L, 1, &p);
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

/* Other dtypes run in float32 (see widen.h). */
static ductile_status dt_softmax_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_softmax_params *p = params;
    if (in[0].dtype == DUCTILE_FLOAT32) return dt_softmax_exec(p, in, out, ex);
    return dt_cpu_via_f32_run(p->L, p, dt_softmax_run, in, out, ex, 0x1);
}

static ductile_status dt_softmax_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                         size_t *bytes)
{
    *bytes = 0;
    return dt_cpu_via_f32_scratch(((const dt_softmax_params *)params)->L, in, out, 0x1, bytes);
}

const dt_kernel dt_cpu_softmax_kernel = {
    .prepare = dt_softmax_prepare, .scratch = dt_softmax_scratch, .run = dt_softmax_run,
};
const dt_kernel dt_cpu_log_softmax_kernel = {
    .prepare = dt_log_softmax_prepare, .scratch = dt_softmax_scratch, .run = dt_softmax_run,
};
