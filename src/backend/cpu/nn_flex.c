/* FlexAttention on the CPU (ops/nn_flex.h): every dtype computed in double, one output row
 * (batch, head, query) per item; the scores of a row live in the thread's scratch. Half
 * types take sqrt(scale) rounded to their precision, as the reference multiplies Q and K by it
 * in their dtype.
 *
 * With score_mod or prob_mod the modifier sees the whole tensor at once (the spec gives it one
 * [B, Hq, L, S] tensor; one call per element would also be far slower): the scores are
 * written to scratch in the softmax dtype, the subgraph runs on them in place (dt_exec.subgraph),
 * then each row's softmax is taken; with prob_mod the probabilities go back to scratch, the
 * subgraph runs again, and a third pass multiplies by V. */
#include "backend/cpu/elementwise_impl.h"
#include "backend/cpu/nn_kernels.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "ops/nn_flex.h"
#include "core/checked.h"
#include "core/dtype.h"

#include <math.h>
#include <stdint.h>

typedef struct {
    bool has_scale;
    float scale;
    int64_t sp;        /* softmax_precision, 0 when absent */
    int mod[2];        /* the attribute index of score_mod, prob_mod; -1 when absent */
} dt_flex_attrs;

typedef struct {
    const dt_flex_params *p;
    const dt_view *q, *k, *v;
    dt_view *y;
    double *scratch;   /* S doubles per thread */
    double ss;
    dt_view *sv;       /* modifiers: the [B, Hq, L, S] scores or probabilities */
    bool probs;        /* modifiers: the softmax writes probabilities to sv (prob_mod follows) */
} dt_flex_job;

static void dt_flex_store(const dt_view *y, int64_t i, double x)
{
    switch (y->dtype) {
    case DUCTILE_FLOAT64: ((double *)y->data)[i] = x; break;
    case DUCTILE_FLOAT16: ((uint16_t *)y->data)[i] = dt_float_to_half((float)x); break;
    case DUCTILE_BFLOAT16: ((uint16_t *)y->data)[i] = dt_float_to_bf16((float)x); break;
    default: ((float *)y->data)[i] = (float)x; break;
    }
}

/* Row r's scores into s[0..S) (already scaled); returns their maximum. */
static double dt_flex_scores(const dt_flex_job *j, int64_t r, double *s)
{
    const dt_flex_params *p = j->p;
    int64_t h = (r / p->L) % p->Hq, b = r / (p->L * p->Hq), hk = h / (p->Hq / p->Hkv);
    int64_t q0 = r * p->E, kv = b * p->Hkv + hk;
    double m = -INFINITY;
    for (int64_t t = 0; t < p->S; t++) {
        int64_t k0 = (kv * p->S + t) * p->E;
        double acc = 0.0;
        for (int64_t d = 0; d < p->E; d++)
            acc += (dt_ew_get_f64(j->q, q0 + d) * j->ss) * (dt_ew_get_f64(j->k, k0 + d) * j->ss);
        s[t] = acc;
        m = acc > m ? acc : m;
    }
    return m;
}

/* Row r of Y = (s / sum) V, s: the row's unnormalised probabilities. */
static void dt_flex_mix(const dt_flex_job *j, int64_t r, const double *s, double sum)
{
    const dt_flex_params *p = j->p;
    int64_t b = r / (p->L * p->Hq), hk = ((r / p->L) % p->Hq) / (p->Hq / p->Hkv), kv = b * p->Hkv + hk;
    for (int64_t d = 0; d < p->Ev; d++) {
        double acc = 0.0;
        for (int64_t t = 0; t < p->S; t++) acc += s[t] * dt_ew_get_f64(j->v, (kv * p->S + t) * p->Ev + d);
        dt_flex_store(j->y, r * p->Ev + d, acc / sum);
    }
}

static void dt_flex_range(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_flex_job *j = arg;
    double *s = j->scratch + (size_t)tid * (size_t)j->p->S;
    for (int64_t r = begin; r < end; r++) {
        double m = dt_flex_scores(j, r, s), sum = 0.0;
        for (int64_t t = 0; t < j->p->S; t++) sum += s[t] = exp(s[t] - m);
        dt_flex_mix(j, r, s, sum);
    }
}

/* Modifiers, pass 1: the scores into sv, rounded to its dtype as the reference casts them. */
static void dt_flex_range_scores(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_flex_job *j = arg;
    int64_t S = j->p->S;
    double *s = j->scratch + (size_t)tid * (size_t)S;
    for (int64_t r = begin; r < end; r++) {
        dt_flex_scores(j, r, s);
        for (int64_t t = 0; t < S; t++) dt_flex_store(j->sv, r * S + t, s[t]);
    }
}

/* Modifiers, pass 2: each row's softmax of sv; then into sv (j->probs) or times V. */
static void dt_flex_range_softmax(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_flex_job *j = arg;
    int64_t S = j->p->S;
    double *s = j->scratch + (size_t)tid * (size_t)S;
    for (int64_t r = begin; r < end; r++) {
        double m = -INFINITY, sum = 0.0;
        for (int64_t t = 0; t < S; t++) {
            s[t] = dt_ew_get_f64(j->sv, r * S + t);
            m = s[t] > m ? s[t] : m;
        }
        for (int64_t t = 0; t < S; t++) sum += s[t] = exp(s[t] - m);
        if (!j->probs) {
            dt_flex_mix(j, r, s, sum);
            continue;
        }
        for (int64_t t = 0; t < S; t++) dt_flex_store(j->sv, r * S + t, s[t] / sum);
    }
}

/* Modifiers, pass 3 (after prob_mod): Y = sv V. */
static void dt_flex_range_probs(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_flex_job *j = arg;
    int64_t S = j->p->S;
    double *s = j->scratch + (size_t)tid * (size_t)S;
    for (int64_t r = begin; r < end; r++) {
        for (int64_t t = 0; t < S; t++) s[t] = dt_ew_get_f64(j->sv, r * S + t);
        dt_flex_mix(j, r, s, 1.0);
    }
}

/* The bytes of the [B, Hq, L, S] tensor the modifiers see (0 without modifiers), rounded up
 * to keep the per-thread rows after it aligned; false when they overflow. */
static bool dt_flex_scores_bytes(const dt_flex_attrs *a, const dt_view *in, size_t *bytes)
{
    *bytes = 0;
    if (a->mod[0] < 0 && a->mod[1] < 0) return true;
    if (in[0].rank != 4 || in[1].rank != 4) return true;   /* the run refuses these shapes */
    const int64_t dims[4] = {in[0].dims[0], in[0].dims[1], in[0].dims[2], in[1].dims[2]};
    int64_t n, b;
    size_t size = ductile_dtype_size((ductile_dtype)dt_flex_softmax_dtype(a->sp, in[0].dtype));
    if (!dt_dims_product(dims, 4, &n) || !dt_mul_i64(n, (int64_t)size, &b) || !dt_add_i64(b, 63, &b)) return false;
    *bytes = (size_t)(b / 64 * 64);
    return true;
}

static ductile_status dt_flex_prepare(const ductile_layer *L, void **out)
{
    dt_flex_attrs a = {dt_attr_find(L, "scale") != NULL, dt_attr_float(L, "scale", 0.0f),
                       dt_attr_int(L, "softmax_precision", 0), {-1, -1}};
    static const char *const mods[2] = {"score_mod", "prob_mod"};
    for (int m = 0; m < 2; m++) {
        const dt_attr *g = dt_attr_find(L, mods[m]);
        if (g) a.mod[m] = (int)(g - L->attrs);
    }
    return dt_cpu_params_copy(&a, sizeof a, L, out);
}

static ductile_status dt_flex_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                      size_t *bytes)
{
    (void)out;
    size_t sb;
    if (!dt_flex_scores_bytes(params, in, &sb)) return dt_fail(DUCTILE_ERR_SHAPE, "the scores' size overflows");
    /* S is a checked dim of K; threads is small. */
    size_t rows = in[1].rank == 4 ? (size_t)(threads > 0 ? threads : 1) * (size_t)(in[1].dims[2] + 1) * sizeof(double) : 0;
    if (sb > SIZE_MAX - rows) return dt_fail(DUCTILE_ERR_SHAPE, "the scores' size overflows");
    *bytes = sb + rows;
    return DUCTILE_OK;
}

/* A modifier on the scores or probabilities in sv, in place. */
static ductile_status dt_flex_modify(const dt_flex_attrs *a, int m, dt_view *sv, dt_exec *ex)
{
    static const char *const mods[2] = {"score_mod", "prob_mod"};
    if (!ex->subgraph)
        return dt_fail(DUCTILE_ERR_INTERNAL, "%s: this caller runs no subgraphs (a FlexAttention with modifiers is "
                       "never folded)", mods[m]);
    return ex->subgraph(ex->subgraph_user, a->mod[m], sv, sv);
}

static ductile_status dt_flex_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_flex_attrs *a = params;
    dt_flex_params p;
    DT_TRY(dt_flex_params_of(a->has_scale, a->scale, in, &p));
    int64_t rows = p.B * p.Hq * p.L;
    bool mods = a->mod[0] >= 0 || a->mod[1] >= 0;
    /* A modifier still runs on empty scores (its shape may be what it checks). */
    if ((rows == 0 || p.Ev == 0) && !mods) return DUCTILE_OK;
    size_t sb;
    if (!dt_flex_scores_bytes(a, in, &sb)) return dt_fail(DUCTILE_ERR_SHAPE, "the scores' size overflows");
    size_t need = sb + (size_t)dt_pool_threads(ex->pool) * (size_t)(p.S + 1) * sizeof(double);
    if (!ex->scratch || ex->scratch_bytes < need)
        return dt_fail(DUCTILE_ERR_INTERNAL, "FlexAttention: %zu bytes of scratch given, %zu needed", ex->scratch_bytes,
                       need);
    double ss = p.sqrt_scale;
    if (in[0].dtype == DUCTILE_FLOAT16) ss = dt_half_to_float(dt_float_to_half((float)ss));
    if (in[0].dtype == DUCTILE_BFLOAT16) ss = dt_bf16_to_float(dt_float_to_bf16((float)ss));
    dt_flex_job j = {&p, &in[0], &in[1], &in[2], &out[0], (double *)((char *)ex->scratch + sb), ss, NULL, false};
    int64_t grain = dt_cpu_grain(p.S * (p.E + p.Ev));
    if (!mods) {
        dt_parallel_for(ex->pool, rows, grain, dt_flex_range, &j);
        return DUCTILE_OK;
    }
    dt_view sv = {.dtype = dt_flex_softmax_dtype(a->sp, in[0].dtype), .rank = 4, .dims = {p.B, p.Hq, p.L, p.S},
                  .data = ex->scratch};
    j.sv = &sv;
    j.probs = a->mod[1] >= 0;
    dt_parallel_for(ex->pool, rows, dt_cpu_grain(p.S * p.E), dt_flex_range_scores, &j);
    if (a->mod[0] >= 0) DT_TRY(dt_flex_modify(a, 0, &sv, ex));
    dt_parallel_for(ex->pool, rows, grain, dt_flex_range_softmax, &j);
    if (!j.probs) return DUCTILE_OK;
    DT_TRY(dt_flex_modify(a, 1, &sv, ex));
    dt_parallel_for(ex->pool, rows, dt_cpu_grain(p.S * p.Ev), dt_flex_range_probs, &j);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_flex_attention_kernel = {
    .prepare = dt_flex_prepare, .scratch = dt_flex_scratch, .run = dt_flex_run,
};
