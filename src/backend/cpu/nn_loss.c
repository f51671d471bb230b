/* NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (NLL of the log-softmax over C).
 * Sums accumulate in double: a mean over many elements stays exact to float precision. */
#include "backend/cpu/nn_kernels.h"
#include "ops/nn.h"
#include "core/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const float *x;
    float *y;
    int64_t C, D;
} dt_lsm_job;

/* Log-softmax over C (stride D) for items (n, d). */
static void dt_lsm_range(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_lsm_job *j = arg;
    int64_t C = j->C, D = j->D;
    for (int64_t it = b; it < e; it++) {
        int64_t base = (it / D) * C * D + it % D;
        const float *x = j->x + base;
        float *y = j->y + base;
        float m = -INFINITY;
        for (int64_t c = 0; c < C; c++) m = x[c * D] > m ? x[c * D] : m;
        float s = 0.0f;
        for (int64_t c = 0; c < C; c++) s += expf(x[c * D] - m);
        float lse = m + logf(s);
        for (int64_t c = 0; c < C; c++) y[c * D] = x[c * D] - lse;
    }
}

/* loss[n, d] = -w[t] * logp[n, t, d] with t = target[n, d]; ignored targets weigh 0. */
static ductile_status dt_loss_gather(const dt_loss_params *p, const float *logp, const dt_view *target,
                                     const float *weight, float *y)
{
    double sum = 0.0, wsum = 0.0;
    int64_t nd = p->N * p->D;
    for (int64_t k = 0; k < nd; k++) {
        int64_t t = dt_view_int(target, k);
        float l = 0.0f, w = 0.0f;
        if (!(p->has_ignore && t == p->ignore_index)) {
            if (t < 0 || t >= p->C)
                return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                               "target element %lld is %lld, outside the classes 0..%lld", (long long)k,
                               (long long)t, (long long)p->C - 1);
            int64_t n = k / p->D, d = k % p->D;
            w = weight ? weight[t] : 1.0f;
            l = -logp[(n * p->C + t) * p->D + d] * w;
        }
        if (p->reduction == DT_LOSS_NONE) y[k] = l;
        sum += l;
        wsum += w;
    }
    if (p->reduction == DT_LOSS_SUM) y[0] = (float)sum;
    /* The mean divides by the total weight (the count of targets not ignored without weights). */
    if (p->reduction == DT_LOSS_MEAN) y[0] = (float)(sum / wsum);
    return DUCTILE_OK;
}

/* A loss compiled: which one, its attributes, and whether output 1 takes the
 * log-probabilities (else SoftmaxCrossEntropyLoss computes them in the scratch). */
typedef struct dt_loss_kernel_params {
    dt_loss_attrs a;
    bool sce, logp_out;
    int n_in;
} dt_loss_kernel_params;

static ductile_status dt_loss_prepare(const ductile_layer *L, void **out)
{
    dt_loss_kernel_params kp = {.sce = strcmp(L->op_type, "SoftmaxCrossEntropyLoss") == 0,
                                .logp_out = L->n_out > 1, .n_in = L->n_in};
    DT_TRY(dt_loss_attrs_read(L, &kp.a));
    return dt_cpu_params_copy(&kp, sizeof kp, L, out);
}

static ductile_status dt_loss_scratch(const void *params, const dt_view *in, const dt_view *out,
                                      int threads, size_t *bytes)
{
    const dt_loss_kernel_params *kp = params;
    *bytes = 0;
    if (!kp->sce || kp->logp_out) return DUCTILE_OK;
    int64_t n = dt_view_count(&in[0]);
    if (__builtin_mul_overflow((size_t)(n ? n : 1), sizeof(float), bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "%lld log-probabilities overflow", (long long)n);
    return DUCTILE_OK;
}

static ductile_status dt_loss_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_loss_kernel_params *kp = params;
    dt_loss_params p;
    DT_TRY(dt_loss_params_of(&kp->a, kp->n_in, in, &p));
    const float *w = p.has_weight ? in[2].data : NULL;
    if (!kp->sce) return dt_loss_gather(&p, in[0].data, &in[1], w, out[0].data);
    float *logp = kp->logp_out ? out[1].data : ex->scratch;
    size_t n = (size_t)dt_view_count(&in[0]);
    if (!kp->logp_out && (!logp || ex->scratch_bytes / sizeof(float) < n))
        return dt_fail(DUCTILE_ERR_INTERNAL, "%zu bytes of scratch given for %zu log-probabilities",
                       ex->scratch_bytes, n);
    dt_lsm_job j = {in[0].data, logp, p.C, p.D};
    if (p.C > 0) dt_parallel_for(ex->pool, p.N * p.D, dt_cpu_grain(p.C * 3), dt_lsm_range, &j);
    return dt_loss_gather(&p, logp, &in[1], w, out[0].data);
}

const dt_kernel dt_cpu_loss_kernel = {.prepare = dt_loss_prepare, .scratch = dt_loss_scratch, .run = dt_loss_run};
