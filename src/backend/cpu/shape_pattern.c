/* Trilu, EyeLike, ReverseSequence: row copies and fills; any dtype, since zero is all-zero
 * bytes in every dtype ductile holds. */
#include "backend/cpu/shape_copy.h"
#include "backend/cpu/shape_kernels.h"
#include "core/status.h"
#include "ops/shape.h"

#include <string.h>

typedef struct dt_trilu_job {
    const char *in;
    char *out;
    int64_t rows, cols, k;
    size_t es;
    bool upper;
} dt_trilu_job;

/* Items are rows of all the matrices. Upper keeps columns j >= i + k, lower keeps j <= i + k. */
static void dt_trilu_rows(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_trilu_job *j = arg;
    size_t es = j->es, row = (size_t)j->cols * es;
    for (int64_t u = begin; u < end; u++) {
        int64_t i = u % j->rows, c = i + j->k; /* first kept (upper) / last kept (lower) column */
        int64_t lo = j->upper ? c : 0, hi = j->upper ? j->cols : c + 1;
        if (lo < 0) lo = 0;
        if (hi > j->cols) hi = j->cols;
        if (hi < lo) hi = lo;
        if (lo > j->cols) lo = hi = j->cols;
        const char *s = j->in + (size_t)u * row;
        char *o = j->out + (size_t)u * row;
        memset(o, 0, (size_t)lo * es);
        memcpy(o + (size_t)lo * es, s + (size_t)lo * es, (size_t)(hi - lo) * es);
        memset(o + (size_t)hi * es, 0, (size_t)(j->cols - hi) * es);
    }
}

/* The three compiled: one integer attribute each (Trilu's upper, EyeLike's k,
 * ReverseSequence's batch_axis) read once; the layer kept for naming inputs. */
typedef struct dt_pattern_params {
    const ductile_layer *L;
    int64_t v;
} dt_pattern_params;

static ductile_status dt_trilu_prepare(const ductile_layer *L, void **out)
{
    dt_pattern_params p = {L, dt_attr_int(L, "upper", 1)};
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_trilu_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_pattern_params *p = params;
    const ductile_layer *L = p->L;
    int r = in[0].rank;
    dt_trilu_job j = {.in = in[0].data, .out = out[0].data, .rows = in[0].dims[r - 2],
                      .cols = in[0].dims[r - 1], .es = ductile_dtype_size((ductile_dtype)in[0].dtype),
                      .upper = p->v != 0};
    if (dt_shape_has(L, in, 1)) {
        j.k = dt_view_int(&in[1], 0);
        /* Beyond +-(rows + cols) every k selects the same elements; clamping avoids overflow. */
        int64_t lim = j.rows + j.cols;
        if (j.k > lim) j.k = lim;
        if (j.k < -lim) j.k = -lim;
    }
    int64_t n = dt_view_count(&in[0]);
    if (n == 0) return DUCTILE_OK;
    int64_t rows = n / j.cols, grain = 32768 / (j.cols * (int64_t)j.es);
    dt_parallel_for(ex ? ex->pool : NULL, rows, grain < 1 ? 1 : grain, dt_trilu_rows, &j);
    return DUCTILE_OK;
}

/* One in dtype t, as bytes; false for dtypes without a one here. */
static bool dt_one(int t, unsigned char v[8])
{
    memset(v, 0, 8);
    switch (t) {
    case DUCTILE_FLOAT32: { float x = 1.0f; memcpy(v, &x, 4); return true; }
    case DUCTILE_FLOAT64: { double x = 1.0; memcpy(v, &x, 8); return true; }
    case DUCTILE_FLOAT16: { uint16_t x = 0x3C00; memcpy(v, &x, 2); return true; }
    case DUCTILE_BFLOAT16: { uint16_t x = 0x3F80; memcpy(v, &x, 2); return true; }
    case DUCTILE_INT8: case DUCTILE_UINT8: case DUCTILE_BOOL: case DUCTILE_INT16: case DUCTILE_UINT16:
    case DUCTILE_INT32: case DUCTILE_UINT32: case DUCTILE_INT64: case DUCTILE_UINT64:
        v[0] = 1; /* little-endian */
        return true;
    default: return false;
    }
}

static ductile_status dt_eye_like_prepare(const ductile_layer *L, void **out)
{
    dt_pattern_params p = {L, dt_attr_int(L, "k", 0)};
    /* The output dtype, when settled, is refused here rather than on the first run. */
    unsigned char one[8];
    int t = L->n_out > 0 && L->out[0] ? L->out[0]->dtype : DUCTILE_UNDEFINED;
    if (t != DUCTILE_UNDEFINED && !dt_one(t, one))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "EyeLike of dtype %s is not supported",
                       ductile_dtype_name((ductile_dtype)t));
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_eye_like_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_pattern_params *p = params;
    unsigned char one[8];
    if (!dt_one(out[0].dtype, one))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "EyeLike of dtype %s is not supported",
                       ductile_dtype_name((ductile_dtype)out[0].dtype));
    size_t es = ductile_dtype_size((ductile_dtype)out[0].dtype);
    int64_t rows = out[0].dims[0], cols = out[0].dims[1], k = p->v;
    char *o = out[0].data;
    memset(o, 0, dt_cpu_view_bytes(&out[0]));
    for (int64_t i = 0; i < rows; i++) {
        /* k may be any int64: compare without forming i + k when it could overflow. */
        if (k >= cols || k < -rows) break;
        int64_t c = i + k;
        if (c >= 0 && c < cols) memcpy(o + (size_t)(i * cols + c) * es, one, es);
    }
    return DUCTILE_OK;
}

static ductile_status dt_reverse_sequence_prepare(const ductile_layer *L, void **out)
{
    dt_pattern_params p = {L, dt_attr_int(L, "batch_axis", 1)};
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_reverse_sequence_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_pattern_params *p = params;
    const ductile_layer *L = p->L;
    int b_ax = (int)p->v, t_ax = 1 - b_ax;
    int64_t B = in[0].dims[b_ax], T = in[0].dims[t_ax], inner = 1;
    for (int i = 2; i < in[0].rank; i++) inner *= in[0].dims[i];
    for (int64_t b = 0; b < B; b++) {
        int64_t len = dt_view_int(&in[1], b);
        if (len < 0 || len > T)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "input 1 ('%s') holds the length %lld at position %lld; expected 0..%lld (the time dimension of input 0 ('%s'))",
                           dt_shape_name(L, 1), (long long)len, (long long)b, (long long)T, dt_shape_name(L, 0));
    }
    size_t es = ductile_dtype_size((ductile_dtype)in[0].dtype), blk = (size_t)inner * es;
    /* Element (batch b, time t) is block b*T + t when batch is axis 0, t*B + b otherwise. */
    int64_t sb = b_ax == 0 ? T : 1, stt = b_ax == 0 ? 1 : B;
    for (int64_t b = 0; b < B; b++) {
        int64_t len = dt_view_int(&in[1], b);
        for (int64_t t = 0; t < T; t++) {
            int64_t src = t < len ? len - 1 - t : t;
            memcpy((char *)out[0].data + (size_t)(b * sb + t * stt) * blk,
                   (const char *)in[0].data + (size_t)(b * sb + src * stt) * blk, blk);
        }
    }
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_trilu_kernel = {.prepare = dt_trilu_prepare, .run = dt_trilu_run};
const dt_kernel dt_cpu_eye_like_kernel = {.prepare = dt_eye_like_prepare, .run = dt_eye_like_run};
const dt_kernel dt_cpu_reverse_sequence_kernel = {
    .prepare = dt_reverse_sequence_prepare, .run = dt_reverse_sequence_run,
};
