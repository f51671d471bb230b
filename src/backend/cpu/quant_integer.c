/* MatMulInteger, QLinearMatMul, ConvInteger, QLinearConv on the CPU: the operands are widened
 * to int32 with their zero points subtracted, multiplied with int32 accumulation (wrapping like
 * the reference's int32 arrays), and the QLinear ops requantize each accumulator. */
#include "backend/cpu/families.h"
#include "core/alloc.h"
#include "backend/cpu/quant_kernels.h"
#include "core/status.h"
#include "ops/linalg.h"
#include "ops/quant.h"

#include <stdlib.h>

/* The int32 operands the run widens into its scratch: one int32 per element of each, each
 * array rounded up to 64 bytes. */
static size_t dt_qi_operand_bytes(const dt_view *v)
{
    int64_t n = dt_view_count(v);
    return ((size_t)(n > 0 ? n : 1) * sizeof(int32_t) + 63) / 64 * 64;
}

/* int32 copy of an int8/uint8 view minus its zero point into w: zp[(i / div) % mod] when per
 * channel, zp[0] when a single value, 0 when omitted. */
static int32_t *dt_qi_widen(const dt_view *v, const dt_view *zp, bool per, int64_t div,
                            int64_t mod, int32_t *w)
{
    int64_t n = dt_view_count(v);
    for (int64_t i = 0; i < n; i++) {
        int32_t z = 0;
        if (zp) z = dt_q_get_i8(zp, per ? (i / div) % mod : 0);
        w[i] = dt_q_get_i8(v, i) - z;
    }
    return w;
}

/* Scratch of the Integer and QLinear ops: the two operands (a, b or x, w) as int32. */
static ductile_status dt_qi_scratch_of(const dt_view *a, const dt_view *b, size_t *bytes)
{
    *bytes = dt_qi_operand_bytes(a) + dt_qi_operand_bytes(b);
    return DUCTILE_OK;
}

static ductile_status dt_qi_scratch_check(const dt_view *a, const dt_view *b, const dt_exec *ex)
{
    size_t need;
    dt_qi_scratch_of(a, b, &need);
    if (!ex->scratch || ex->scratch_bytes < need)
        return dt_fail(DUCTILE_ERR_INTERNAL, "%zu bytes of scratch given, %zu needed for the int32 operands",
                       ex->scratch_bytes, need);
    return DUCTILE_OK;
}

/* Output scaling of a QLinear op: y = rint(acc * a_scale[ai] * b_scale[bi] / y_scale + y_zp). */
typedef struct dt_qi_out {
    const dt_view *as, *bs, *ys, *yz;
    bool a_per, b_per;
    int half;               /* the scales' common type when it is float16/bfloat16, else 0 */
    int64_t lo, hi;
} dt_qi_out;

/* The multiplier, rounded like numpy's a_scale * b_scale / y_scale in the scales' type. */
static double dt_qi_mult(const dt_qi_out *q, int64_t ai, int64_t bi)
{
    float a = (float)dt_ew_get_f64(q->as, q->a_per ? ai : 0);
    float b = (float)dt_ew_get_f64(q->bs, q->b_per ? bi : 0);
    float y = (float)dt_ew_get_f64(q->ys, 0);
    return dt_q_round_to(q->half, dt_q_round_to(q->half, a * b) / y);
}

static void dt_qi_out_init(dt_qi_out *q, const dt_view *in, int as, int bs)
{
    q->as = &in[as];
    q->bs = &in[bs];
    q->ys = &in[6];
    q->yz = &in[7];
    q->a_per = dt_view_count(q->as) > 1;
    q->b_per = dt_view_count(q->bs) > 1;
    int t = q->as->dtype;
    q->half = t == q->bs->dtype && t == q->ys->dtype && dt_ew_is_half(t) ? t : 0;
    dt_quant_int_range(q->yz->dtype, &q->lo, &q->hi);
}

/* ---- MatMulInteger, QLinearMatMul ---- */

typedef struct {
    const dt_matmul_geom *g;
    const int32_t *a, *b;
    dt_view *y;
    const dt_qi_out *q;     /* NULL: int32 output */
} dt_qi_mm_job;

/* One item is one row of one batch's product. */
static void dt_qi_mm_range(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_qi_mm_job *j = arg;
    const dt_matmul_geom *g = j->g;
    int64_t yz = j->q ? dt_q_get_i8(j->q->yz, 0) : 0;
    for (int64_t it = b; it < e; it++) {
        int64_t bi = it / g->M, m = it % g->M, ao = 0, bo = 0, rest = bi;
        for (int i = g->batch_rank - 1; i >= 0; i--) {
            int64_t idx = rest % g->batch[i];
            rest /= g->batch[i];
            ao += idx * g->a_stride[i];
            bo += idx * g->b_stride[i];
        }
        const int32_t *ar = j->a + ao + m * g->K;
        for (int64_t n = 0; n < g->N; n++) {
            uint32_t acc = 0;
            for (int64_t k = 0; k < g->K; k++)
                acc += (uint32_t)(ar[k] * j->b[bo + k * g->N + n]);
            int64_t yi = it * g->N + n;
            if (!j->q)
                ((int32_t *)j->y->data)[yi] = (int32_t)acc;
            else
                dt_q_store_int(j->y, yi, dt_q_requant((int32_t)acc, dt_qi_mult(j->q, m, n), yz,
                                                      j->q->lo, j->q->hi));
        }
    }
}

static ductile_status dt_qi_matmul(const dt_view *a, const dt_view *az, const dt_view *b,
                                   const dt_view *bz, dt_view *y, const dt_qi_out *q, dt_exec *ex)
{
    dt_matmul_geom g;
    DT_TRY(dt_matmul_geometry(a, b, &g));
    bool a_per = az && dt_view_count(az) > 1, b_per = bz && dt_view_count(bz) > 1;
    DT_TRY(dt_qi_scratch_check(a, b, ex));
    int32_t *a32 = dt_qi_widen(a, az, a_per, g.K, g.M, ex->scratch);
    int32_t *b32 = dt_qi_widen(b, bz, b_per, 1, g.N, (int32_t *)((char *)ex->scratch + dt_qi_operand_bytes(a)));
    dt_qi_mm_job j = {&g, a32, b32, y, q};
    int64_t rows = g.batch_count * g.M;
    if (rows > 0 && g.N > 0)
        dt_parallel_for(ex->pool, rows, 1 + 16384 / (1 + g.N * g.K), dt_qi_mm_range, &j);
    return DUCTILE_OK;
}

static const dt_view *dt_qi_opt(const ductile_layer *L, const dt_view *in, int i)
{
    return dt_quant_present(L, in, i) ? &in[i] : NULL;
}

/* The Integer and QLinear ops compiled: the conv attributes read once (the MatMuls have
 * none: defaults, unused); L for which optional inputs exist. Operand a/x is input 0; b/w is input 1 of the
 * Integer ops and input 3 of the QLinear ops. */
typedef struct dt_qi_params {
    const ductile_layer *L;
    dt_conv_attrs conv;
} dt_qi_params;

static ductile_status dt_qi_prepare(const ductile_layer *L, void **out)
{
    dt_qi_params p = {.L = L};
    dt_conv_attrs_read(L, &p.conv);
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_qi_integer_scratch(const void *params, const dt_view *in, const dt_view *out,
                                            int threads, size_t *bytes)
{
    return dt_qi_scratch_of(&in[0], &in[1], bytes);
}

static ductile_status dt_qi_qlinear_scratch(const void *params, const dt_view *in, const dt_view *out,
                                            int threads, size_t *bytes)
{
    return dt_qi_scratch_of(&in[0], &in[3], bytes);
}

static ductile_status dt_matmul_integer_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_qi_params *p = params;
    return dt_qi_matmul(&in[0], dt_qi_opt(p->L, in, 2), &in[1], dt_qi_opt(p->L, in, 3), &out[0], NULL,
                        ex);
}

static ductile_status dt_qlinear_matmul_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    dt_qi_out q;
    dt_qi_out_init(&q, in, 1, 4);
    return dt_qi_matmul(&in[0], &in[2], &in[3], &in[5], &out[0], &q, ex);
}

/* ---- ConvInteger, QLinearConv ---- */

typedef struct {
    const dt_conv_geom *g;
    const int32_t *x, *w, *bias;
    dt_view *y;
    const dt_qi_out *q;
} dt_qi_conv_job;

/* One item is one (batch, output channel) plane. */
static void dt_qi_conv_range(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_qi_conv_job *j = arg;
    const dt_conv_geom *g = j->g;
    int64_t cg = g->c / g->group, mg = g->m / g->group;
    int64_t H = g->in[0], W = g->in[1], OH = g->out[0], OW = g->out[1];
    int64_t yz = j->q ? dt_q_get_i8(j->q->yz, 0) : 0;
    for (int64_t it = b; it < e; it++) {
        int64_t n = it / g->m, m = it % g->m, c0 = (m / mg) * cg;
        double mult = j->q ? dt_qi_mult(j->q, 0, m) : 0.0;
        const int32_t *wm = j->w + m * cg * g->k[0] * g->k[1];
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                uint32_t acc = j->bias ? (uint32_t)j->bias[m] : 0;
                for (int64_t c = 0; c < cg; c++) {
                    const int32_t *xc = j->x + (n * g->c + c0 + c) * H * W;
                    const int32_t *wc = wm + c * g->k[0] * g->k[1];
                    for (int64_t kh = 0; kh < g->k[0]; kh++) {
                        int64_t ih = oh * g->s[0] - g->pb[0] + kh * g->d[0];
                        if (ih < 0 || ih >= H) continue;
                        for (int64_t kw = 0; kw < g->k[1]; kw++) {
                            int64_t iw = ow * g->s[1] - g->pb[1] + kw * g->d[1];
                            if (iw < 0 || iw >= W) continue;
                            acc += (uint32_t)(xc[ih * W + iw] * wc[kh * g->k[1] + kw]);
                        }
                    }
                }
                int64_t yi = (it * OH + oh) * OW + ow;
                if (!j->q)
                    ((int32_t *)j->y->data)[yi] = (int32_t)acc;
                else
                    dt_q_store_int(j->y, yi, dt_q_requant((int32_t)acc, mult, yz, j->q->lo,
                                                          j->q->hi));
            }
    }
}

static ductile_status dt_qi_conv(const dt_conv_attrs *attrs, const dt_view *x, const dt_view *xz,
                                 const dt_view *w, const dt_view *wz, const int32_t *bias,
                                 dt_view *y, const dt_qi_out *q, dt_exec *ex)
{
    dt_conv_geom g;
    DT_TRY(dt_conv_geometry_of(attrs, x, w, &g));
    DT_TRY(dt_qi_scratch_check(x, w, ex));
    int64_t per_m = dt_view_count(w) / (g.m ? g.m : 1);
    int32_t *x32 = dt_qi_widen(x, xz, false, 1, 1, ex->scratch);
    int32_t *w32 = dt_qi_widen(w, wz, wz && dt_view_count(wz) > 1, per_m ? per_m : 1, g.m,
                               (int32_t *)((char *)ex->scratch + dt_qi_operand_bytes(x)));
    dt_qi_conv_job j = {&g, x32, w32, bias, y, q};
    int64_t planes = g.batch * g.m;
    if (planes > 0)
        dt_parallel_for(ex->pool, planes, 1, dt_qi_conv_range, &j);
    return DUCTILE_OK;
}

static ductile_status dt_conv_integer_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_qi_params *p = params;
    return dt_qi_conv(&p->conv, &in[0], dt_qi_opt(p->L, in, 2), &in[1], dt_qi_opt(p->L, in, 3), NULL,
                      &out[0], NULL, ex);
}

static ductile_status dt_qlinear_conv_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_qi_params *p = params;
    dt_qi_out q;
    dt_qi_out_init(&q, in, 1, 4);
    const dt_view *b = dt_qi_opt(p->L, in, 8);
    return dt_qi_conv(&p->conv, &in[0], &in[2], &in[3], &in[5], b ? b->data : NULL, &out[0], &q, ex);
}

const dt_kernel dt_cpu_matmul_integer_kernel = {
    .prepare = dt_qi_prepare, .scratch = dt_qi_integer_scratch, .run = dt_matmul_integer_run,
};
const dt_kernel dt_cpu_qlinear_matmul_kernel = {
    .prepare = dt_qi_prepare, .scratch = dt_qi_qlinear_scratch, .run = dt_qlinear_matmul_run,
};
const dt_kernel dt_cpu_conv_integer_kernel = {
    .prepare = dt_qi_prepare, .scratch = dt_qi_integer_scratch, .run = dt_conv_integer_run,
};
const dt_kernel dt_cpu_qlinear_conv_kernel = {
    .prepare = dt_qi_prepare, .scratch = dt_qi_qlinear_scratch, .run = dt_qlinear_conv_run,
};
