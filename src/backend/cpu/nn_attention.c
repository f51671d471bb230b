/* Attention: one query row (b, h, i) per item: scores against every key (past then new),
 * soft-cap, the combined bias (mask, causal, window, key padding), softmax, then the weighted
 * sum of values. 3-D inputs [B, S, H * D] are read in place (a head's row is contiguous in
 * both layouts), so nothing is transposed. */
#include "backend/cpu/nn_kernels.h"
#include "core/alloc.h"
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

static ductile_status dt_att_f32(const ductile_layer *L, const dt_view *in, dt_view *out,
                                 dt_exec *ex)
{
    dt_attention_params p;
    DT_TRY(dt_attention_params_get(L, in, &p));
    bool past = p.Spast > 0;
    dt_att_job j = {
        .p = &p, .q = in[0].data, .k = in[1].data, .v = in[2].data,
        .past_k = past ? in[4].data : NULL, .past_v = past ? in[5].data : NULL,
        .fmask = p.has_mask && !p.mask_bool ? in[3].data : NULL,
        .bmask = p.has_mask && p.mask_bool ? in[3].data : NULL,
        .nonpad = p.has_nonpad ? in[6].data : NULL,
        .y = out[0].data, .qk = L->n_out > 3 ? out[3].data : NULL,
    };
    if (L->n_out > 1) dt_att_present(&j, out[1].data, j.past_k, j.k, p.Dh);
    if (L->n_out > 2) dt_att_present(&j, out[2].data, j.past_v, j.v, p.Dv);
    int64_t rows = p.B * p.Hq * p.Sq;
    if (rows == 0) return DUCTILE_OK;
    if (p.Stotal == 0) {
        /* No keys at all: every row attends nothing. */
        memset(out[0].data, 0, (size_t)dt_view_count(&out[0]) * sizeof(float));
        return DUCTILE_OK;
    }
    int threads = ex->pool ? dt_pool_threads(ex->pool) : 1;
    size_t bytes;
    if (__builtin_mul_overflow((size_t)threads * sizeof(float), (size_t)p.Stotal, &bytes) ||
        !(j.scratch = dt_malloc(bytes)))
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "Attention: no memory for %d rows of %lld scores",
                       threads, (long long)p.Stotal);
    dt_parallel_for(ex->pool, rows, dt_cpu_grain(p.Stotal * (p.Dh + p.Dv)), dt_att_range, &j);
    dt_free(j.scratch);
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

ductile_status dt_cpu_attention(const ductile_layer *L, const dt_view *in, dt_view *out,
                                dt_exec *ex)
{
    int dt = in[0].dtype;
    if (dt == DUCTILE_FLOAT32) return dt_att_f32(L, in, out, ex);
    dt_view fin[7], fout[4];
    void *bufs[11] = {0};
    int nb = 0;
    ductile_status st = DUCTILE_OK;
    for (int i = 0; i < L->n_in && i < 7; i++) {
        fin[i] = in[i];
        if (in[i].rank < 0 || in[i].dtype != dt) continue;
        int64_t n = dt_view_count(&in[i]);
        float *f = dt_malloc((size_t)(n ? n : 1) * sizeof *f);
        if (!f) goto oom;
        bufs[nb++] = f;
        const uint16_t *h = in[i].data;
        for (int64_t e = 0; e < n; e++) f[e] = dt_att_widen(dt, h[e]);
        fin[i].data = f;
        fin[i].dtype = DUCTILE_FLOAT32;
    }
    for (int o = 0; o < L->n_out && o < 4; o++) {
        fout[o] = out[o];
        fout[o].dtype = DUCTILE_FLOAT32;
        int64_t n = dt_view_count(&out[o]);
        if (!(fout[o].data = dt_malloc((size_t)(n ? n : 1) * sizeof(float)))) goto oom;
        bufs[nb++] = fout[o].data;
    }
    st = dt_att_f32(L, fin, fout, ex);
    for (int o = 0; st == DUCTILE_OK && o < L->n_out && o < 4; o++) {
        int64_t n = dt_view_count(&out[o]);
        const float *f = fout[o].data;
        uint16_t *h = out[o].data;
        for (int64_t e = 0; e < n; e++) h[e] = dt_att_narrow(dt, f[e]);
    }
    for (int b = 0; b < nb; b++) dt_free(bufs[b]);
    return st;
oom:
    for (int b = 0; b < nb; b++) dt_free(bufs[b]);
    return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "Attention: no memory to widen %s to float32",
                   ductile_dtype_name((ductile_dtype)dt));
}
