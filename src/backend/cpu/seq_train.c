/* Adagrad, Momentum and Adam on the CPU: one update step per tensor, elementwise, in double
 * (as ONNX's reference mixes float64 scalars into its float32 arithmetic), stored as float32. */
#include "backend/cpu/seq_kernels.h"
#include "core/status.h"
#include "ops/seq.h"

#include <math.h>
#include <string.h>

enum { DT_ADAGRAD, DT_MOMENTUM, DT_ADAM };

typedef struct dt_train_params {
    int op, n;
    bool nesterov;
    double alpha, beta, epsilon, decay, norm, norm_post;
} dt_train_params;

static ductile_status dt_train_prepare(const ductile_layer *L, void **out)
{
    dt_train_params p = {0};
    DT_TRY(dt_train_layout(L, &p.n));
    p.op = !strcmp(L->op_type, "Adagrad") ? DT_ADAGRAD : !strcmp(L->op_type, "Momentum") ? DT_MOMENTUM : DT_ADAM;
    p.norm = dt_attr_float(L, "norm_coefficient", 0.0f);
    if (p.op == DT_ADAGRAD) {
        p.decay = dt_attr_float(L, "decay_factor", 0.0f);
        p.epsilon = dt_attr_float(L, "epsilon", 1e-6f);
    } else if (p.op == DT_MOMENTUM) {
        p.alpha = dt_attr_float(L, "alpha", 0.0f);
        p.beta = dt_attr_float(L, "beta", 0.0f);
        p.nesterov = !strcmp(dt_attr_string(L, "mode", ""), "nesterov");
    } else {
        p.alpha = dt_attr_float(L, "alpha", 0.9f);
        p.beta = dt_attr_float(L, "beta", 0.999f);
        p.epsilon = dt_attr_float(L, "epsilon", 1e-6f);
        p.norm_post = dt_attr_float(L, "norm_coefficient_post", 0.0f);
    }
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_train_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    const dt_train_params *p = params;
    double r = in[0].dtype == DUCTILE_FLOAT64 ? *(const double *)in[0].data : *(const float *)in[0].data;
    int64_t t = *(const int64_t *)in[1].data;
    int n = p->n;
    for (int j = 0; j < n; j++) {
        const float *x = in[2 + j].data, *g = in[2 + n + j].data, *s1 = in[2 + 2 * n + j].data;
        const float *s2 = p->op == DT_ADAM ? in[2 + 3 * n + j].data : NULL;
        float *xo = out[j].data, *s1o = out[n + j].data, *s2o = p->op == DT_ADAM ? out[2 * n + j].data : NULL;
        int64_t count = dt_view_count(&in[2 + j]);
        double ra = r;
        if (p->op == DT_ADAGRAD) ra = r / (1.0 + (double)t * p->decay);
        if (p->op == DT_ADAM && t > 0) ra = r * sqrt(1.0 - pow(p->beta, (double)t)) / (1.0 - pow(p->alpha, (double)t));
        for (int64_t i = 0; i < count; i++) {
            double gr = p->norm * x[i] + g[i];
            if (p->op == DT_ADAGRAD) {
                double h = s1[i] + gr * gr;
                s1o[i] = (float)h;
                xo[i] = (float)(x[i] - ra * gr / (sqrt(h) + p->epsilon));
            } else if (p->op == DT_MOMENTUM) {
                double v = p->alpha * s1[i] + (t > 0 ? p->beta : 1.0) * gr;
                s1o[i] = (float)v;
                xo[i] = (float)(x[i] - r * (p->nesterov ? gr + p->alpha * v : v));
            } else {
                double v = p->alpha * s1[i] + (1.0 - p->alpha) * gr;
                double h = p->beta * s2[i] + (1.0 - p->beta) * gr * gr;
                s1o[i] = (float)v;
                s2o[i] = (float)h;
                xo[i] = (float)((1.0 - p->norm_post) * (x[i] - ra * (v / (sqrt(h) + p->epsilon))));
            }
        }
    }
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_seq_train_kernel = {.prepare = dt_train_prepare, .run = dt_train_run};
