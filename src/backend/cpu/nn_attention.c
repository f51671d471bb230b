/* Attention: one query row (b, h, i) per item: scores against every key (past then new),
 * soft-cap, the combined bias (mask, causal, window, key padding), softmax, then the weighted
 * sum of values. 3-D inputs [B, S, H * D] are read in place (a head's row is contiguous in
 * both layouts), so nothing is transposed. */
#include "backend/cpu/nn_kernels.h"
#include "ops/nn.h"
#include "core/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const dt_attention_params *p;
    const float *q, *k, *v, *past_k, *past_v, *fmask;
    const uint8_t *bmask;
    const int64_t *nonpad;
    float *y, *qk;
    float *scratch;             /* Stotal floats per worker */
} dt_att_job;

static const float *dt_att_q(const dt_att_job *j, int64_t b, int64_t h, int64_t i)
{
    const dt_attention_params *p = j->p;
    if (p->rank3) return j->q + ((b * p->Sq + i) * p->Hq + h) * p->Dh;
    return j->q + ((b * p->Hq + h) * p->Sq + i) * p->Dh;
}

/* Key or value row t (past first) of kv head h; d is Dh or Dv. */
static const float *dt_att_kv(const dt_att_job *j, const float *past, const float *cur, int64_t d,
                              int64_t b, int64_t h, int64_t t)
{
    const dt_attention_params *p = j->p;
    if (t < p->Spast) return past + ((b * p->Hkv + h) * p->Spast + t) * d;
    t -= p->Spast;
    if (p->rank3) return cur + ((b * p->Skv + t) * p->Hkv + h) * d;
    return cur + ((b * p->Hkv + h) * p->Skv + t) * d;
}

/* The additive bias of score (b, h, i, t): 0 where attended, -inf where masked. */
static float dt_att_bias(const dt_att_job *j, int64_t b, int64_t h, int64_t i, int64_t t)
{
    const dt_attention_params *p = j->p;
    float bias = 0.0f;
    if (p->has_mask) {
        if (t >= p->mask_len) return -INFINITY;
        int64_t off = b * p->mask_stride[0] + h * p->mask_stride[1] + i * p->mask_stride[2] +
                      t * p->mask_stride[3];
        if (j->bmask) {
            if (!j->bmask[off]) return -INFINITY;
        } else {
            bias = j->fmask[off];
        }
    }
    /* Causal and window masks are aligned bottom-right: query i sits at key position
     * i + offset, the number of keys before this block of queries. */
    int64_t offset = p->Spast;
    if (p->has_nonpad) {
        if (t >= j->nonpad[b]) return -INFINITY;
        offset = j->nonpad[b] - p->Sq;
    }
    int64_t diff = i + offset - t;
    if (p->causal && diff < 0) return -INFINITY;
    if (p->left >= 0 && diff > p->left) return -INFINITY;
    if (p->right >= 0 && -diff > p->right) return -INFINITY;
    return bias;
}

static void dt_att_range(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_att_job *j = arg;
    const dt_attention_params *p = j->p;
    int64_t n = p->Stotal, group = p->Hq / p->Hkv;
    float *s = j->scratch + (size_t)tid * (size_t)n;
    float ss = p->sqrt_scale;
    for (int64_t r = begin; r < end; r++) {
        int64_t i = r % p->Sq, h = (r / p->Sq) % p->Hq, b = r / (p->Sq * p->Hq);
        int64_t hk = h / group;
        const float *q = dt_att_q(j, b, h, i);
        float *qk = j->qk ? j->qk + r * n : NULL;
        float m = -INFINITY, bias_max = -INFINITY;
        for (int64_t t = 0; t < n; t++) {
            const float *k = dt_att_kv(j, j->past_k, j->k, p->Dh, b, hk, t);
            float acc = 0.0f;
            for (int64_t d = 0; d < p->Dh; d++) acc += (q[d] * ss) * (k[d] * ss);
            if (p->softcap > 0.0f) acc = tanhf(acc / p->softcap) * p->softcap;
            float bias = dt_att_bias(j, b, h, i, t);
            bias_max = bias > bias_max ? bias : bias_max;
            if (qk && p->mode < 2) qk[t] = acc;
            s[t] = acc + bias;
            if (qk && p->mode == 2) qk[t] = s[t];
            m = s[t] > m ? s[t] : m;
        }
        /* A row whose bias masks every key attends nothing: probabilities and output 0. */
        bool none = bias_max == -INFINITY || m == -INFINITY;
        float sum = 0.0f;
        for (int64_t t = 0; t < n; t++) {
            s[t] = none ? 0.0f : expf(s[t] - m);
            sum += s[t];
        }
        float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
        for (int64_t t = 0; t < n; t++) s[t] *= inv;
        if (qk && p->mode == 3) memcpy(qk, s, (size_t)n * sizeof *s);
        float *y = p->rank3 ? j->y + ((b * p->Sq + i) * p->Hq + h) * p->Dv
                            : j->y + ((b * p->Hq + h) * p->Sq + i) * p->Dv;
        for (int64_t d = 0; d < p->Dv; d++) y[d] = 0.0f;
        for (int64_t t = 0; t < n; t++) {
            if (s[t] == 0.0f) continue;
            const float *v = dt_att_kv(j, j->past_v, j->v, p->Dv, b, hk, t);
            for (int64_t d = 0; d < p->Dv; d++) y[d] += s[t] * v[d];
        }
    }
}

/* present = concat(past, new) along the sequence, in the 4-D layout. */
static void dt_att_present(const dt_att_job *j, float *dst, const float *past, const float *cur,
                           int64_t d)
{
    const dt_attention_params *p = j->p;
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t h = 0; h < p->Hkv; h++)
            for (int64_t t = 0; t < p->Stotal; t++)
                memcpy(dst + ((b * p->Hkv + h) * p->Stotal + t) * d,
                       dt_att_kv(j, past, cur, d, b, h, t), (size_t)d * sizeof(float));
}

/* An Attention compiled: its attributes, read once, and its input and output counts. */
typedef struct dt_att_kernel_params {
    dt_attention_attrs a;
    int n_in, n_out;
} dt_att_kernel_params;

/* The per-worker rows of scores: threads x Stotal floats. */
static bool dt_att_rows_bytes(int threads, int64_t stotal, size_t *bytes)
{
    return !__builtin_mul_overflow((size_t)threads * sizeof(float), (size_t)stotal, bytes);
}

/* Computes in float32; `rows` is the scratch for the scores (dt_att_rows_bytes). */
static ductile_status dt_att_f32(const dt_att_kernel_params *kp, const dt_view *in, dt_view *out,
                                 dt_exec *ex, void *rows, size_t rows_bytes)
{
    dt_attention_params p;
    DT_TRY(dt_attention_params_of(&kp->a, kp->n_in, in, &p));
    bool past = p.Spast > 0;
    dt_att_job j = {
        .p = &p, .q = in[0].data, .k = in[1].data, .v = in[2].data,
        .past_k = past ? in[4].data : NULL, .past_v = past ? in[5].data : NULL,
        .fmask = p.has_mask && !p.mask_bool ? in[3].data : NULL,
        .bmask = p.has_mask && p.mask_bool ? in[3].data : NULL,
        .nonpad = p.has_nonpad ? in[6].data : NULL,
        .y = out[0].data, .qk = kp->n_out > 3 ? out[3].data : NULL,
    };
    if (kp->n_out > 1) dt_att_present(&j, out[1].data, j.past_k, j.k, p.Dh);
    if (kp->n_out > 2) dt_att_present(&j, out[2].data, j.past_v, j.v, p.Dv);
    int64_t rows_n = p.B * p.Hq * p.Sq;
    if (rows_n == 0) return DUCTILE_OK;
    if (p.Stotal == 0) {
        /* No keys at all: every row attends nothing. */
        memset(out[0].data, 0, (size_t)dt_view_count(&out[0]) * sizeof(float));
        return DUCTILE_OK;
    }
    size_t need;
    if (!dt_att_rows_bytes(dt_pool_threads(ex->pool), p.Stotal, &need) || !rows || rows_bytes < need)
        return dt_fail(DUCTILE_ERR_INTERNAL, "Attention: %zu bytes of scratch given for %d rows of %lld scores",
                       rows_bytes, dt_pool_threads(ex->pool), (long long)p.Stotal);
    j.scratch = rows;
    dt_parallel_for(ex->pool, rows_n, dt_cpu_grain(p.Stotal * (p.Dh + p.Dv)), dt_att_range, &j);
    return DUCTILE_OK;
}

/* float16 and bfloat16: widened to float32, computed as float32, rounded back (nearest even). */
static float dt_att_widen(int dtype, uint16_t h)
{
    uint32_t u;
    if (dtype == DUCTILE_BFLOAT16) {
        u = (uint32_t)h << 16;
    } else {
        uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023;
        if (e == 31) {
            u = sign | 0x7f800000u | (m << 13);
        } else if (e) {
            u = sign | ((e + 112) << 23) | (m << 13);
        } else {
            float f = ldexpf((float)m, -24);
            return sign ? -f : f;
        }
    }
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint16_t dt_att_narrow(int dtype, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if (dtype == DUCTILE_BFLOAT16) {
        if (isnan(f)) return (uint16_t)((u >> 16) | 0x40);
        return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
    }
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    float a = fabsf(f);
    if (isnan(f)) return sign | 0x7e00;
    if (a >= 65520.0f) return sign | 0x7c00;          /* rounds to infinity */
    if (a < 6.103515625e-05f) {                        /* subnormal: multiples of 2^-24 */
        return sign | (uint16_t)lrintf(a * 16777216.0f);
    }
    uint32_t ua;
    memcpy(&ua, &a, sizeof ua);
    uint32_t r = ua + 0xfffu + ((ua >> 13) & 1);       /* round the 13 dropped bits to even */
    return sign | (uint16_t)(((r >> 23) - 112) << 10 | ((r >> 13) & 1023));
}

/* float16 and bfloat16 inputs of Q's dtype (not a bool mask, not the int64 lengths) are
 * widened into the scratch, and every output is computed in a float32 buffer there. */
static bool dt_att_widens(const dt_view *in, int i) { return in[i].rank >= 0 && in[i].dtype == in[0].dtype; }

static size_t dt_att_round(int64_t n) { return ((size_t)(n ? n : 1) * sizeof(float) + 63) & ~(size_t)63; }

static ductile_status dt_att_scratch(const void *params, const dt_view *in, const dt_view *out,
                                     int threads, size_t *bytes)
{
    const dt_att_kernel_params *kp = params;
    *bytes = 0;
    dt_attention_params p;
    /* Shapes the run refuses need nothing: the run names the fault. */
    if (dt_attention_params_of(&kp->a, kp->n_in, in, &p) != DUCTILE_OK) return DUCTILE_OK;
    size_t total = 0;
    if (!dt_att_rows_bytes(threads, p.Stotal, &total) || total > SIZE_MAX / 2)
        return dt_fail(DUCTILE_ERR_SHAPE, "Attention: %d rows of %lld scores overflow", threads, (long long)p.Stotal);
    total = (total + 63) & ~(size_t)63;
    if (in[0].dtype != DUCTILE_FLOAT32) {
        for (int i = 0; i < kp->n_in && i < 7; i++)
            if (dt_att_widens(in, i) && __builtin_add_overflow(total, dt_att_round(dt_view_count(&in[i])), &total))
                return dt_fail(DUCTILE_ERR_SHAPE, "Attention: float32 copies of the inputs overflow");
        for (int o = 0; o < kp->n_out && o < 4; o++)
            if (__builtin_add_overflow(total, dt_att_round(dt_view_count(&out[o])), &total))
                return dt_fail(DUCTILE_ERR_SHAPE, "Attention: float32 outputs overflow");
    }
    *bytes = total;
    return DUCTILE_OK;
}

static ductile_status dt_att_prepare(const ductile_layer *L, void **out)
{
    dt_att_kernel_params kp = {.n_in = L->n_in, .n_out = L->n_out};
    dt_attention_attrs_read(L, &kp.a);
    return dt_cpu_params_copy(&kp, sizeof kp, L, out);
}

static ductile_status dt_att_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_att_kernel_params *kp = params;
    int dt = in[0].dtype;
    if (dt == DUCTILE_FLOAT32) return dt_att_f32(kp, in, out, ex, ex->scratch, ex->scratch_bytes);
    /* The copies go after the rows of scores, which take the front of the scratch. */
    dt_attention_params p;
    DT_TRY(dt_attention_params_of(&kp->a, kp->n_in, in, &p));
    size_t rows = 0;
    if (!dt_att_rows_bytes(dt_pool_threads(ex->pool), p.Stotal, &rows))
        return dt_fail(DUCTILE_ERR_SHAPE, "Attention: rows of %lld scores overflow", (long long)p.Stotal);
    rows = (rows + 63) & ~(size_t)63;
    char *s = ex->scratch;
    size_t at = rows;
    dt_view fin[7], fout[4];
    for (int i = 0; i < kp->n_in && i < 7; i++) {
        fin[i] = in[i];
        if (!dt_att_widens(in, i)) continue;
        int64_t n = dt_view_count(&in[i]);
        size_t b = dt_att_round(n);
        if (!s || at > ex->scratch_bytes || b > ex->scratch_bytes - at) goto short_scratch;
        float *f = (float *)(s + at);
        at += b;
        const uint16_t *h = in[i].data;
        for (int64_t e = 0; e < n; e++) f[e] = dt_att_widen(dt, h[e]);
        fin[i].data = f;
        fin[i].dtype = DUCTILE_FLOAT32;
    }
    for (int o = 0; o < kp->n_out && o < 4; o++) {
        fout[o] = out[o];
        fout[o].dtype = DUCTILE_FLOAT32;
        size_t b = dt_att_round(dt_view_count(&out[o]));
        if (!s || at > ex->scratch_bytes || b > ex->scratch_bytes - at) goto short_scratch;
        fout[o].data = s + at;
        at += b;
    }
    DT_TRY(dt_att_f32(kp, fin, fout, ex, s, rows));
    for (int o = 0; o < kp->n_out && o < 4; o++) {
        int64_t n = dt_view_count(&out[o]);
        const float *f = fout[o].data;
        uint16_t *h = out[o].data;
        for (int64_t e = 0; e < n; e++) h[e] = dt_att_narrow(dt, f[e]);
    }
    return DUCTILE_OK;
short_scratch:
    return dt_fail(DUCTILE_ERR_INTERNAL, "Attention: %zu bytes of scratch given, more needed to widen %s to float32",
                   ex->scratch_bytes, ductile_dtype_name((ductile_dtype)dt));
}

const dt_kernel dt_cpu_attention_kernel = {.prepare = dt_att_prepare, .scratch = dt_att_scratch, .run = dt_att_run};
