/* RandomUniformLike and Bernoulli on the CPU (ops/random.c), drawn in element order as ONNX's
 * reference draws them from numpy's RandomState: rand() for the uniform, binomial(1, p) (its
 * inversion algorithm) for Bernoulli. */
#include "backend/cpu/elementwise_impl.h"
#include "backend/cpu/families.h"
#include "backend/cpu/random.h"
#include "core/status.h"

#include <math.h>
#include <string.h>

typedef struct {
    bool bern, has_seed;
    uint32_t seed;
    float low, high;
} dt_random_params;

static ductile_status dt_random_prepare(const ductile_layer *L, void **out)
{
    dt_random_params p = {.bern = L->op_type[0] == 'B', .has_seed = dt_attr_find(L, "seed") != NULL,
                          .seed = (uint32_t)dt_attr_float(L, "seed", 0.0f), .low = dt_attr_float(L, "low", 0.0f),
                          .high = dt_attr_float(L, "high", 1.0f)};
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

/* numpy's legacy binomial (RandomState) for n = 1: the inversion algorithm on min(p, 1 - p),
 * one draw or more per element, p == 0 included. */
static int dt_bernoulli_draw(dt_mt19937 *mt, double p)
{
    bool flip = p > 0.5;
    double pp = flip ? 1.0 - p : p, q = 1.0 - pp, qn = exp(log(q)), np1 = pp;
    double b = np1 + 10.0 * sqrt(np1 * q + 1.0);
    int64_t bound = b < 1.0 ? (int64_t)b : 1;
    int64_t x = 0;
    double px = qn, u = dt_mt_double(mt);
    while (u > px) {
        x++;
        if (x > bound) {
            x = 0;
            px = qn;
            u = dt_mt_double(mt);
        } else {
            u -= px;
            px = ((double)(1 - x + 1) * pp * px) / ((double)x * q);
        }
    }
    return flip ? (int)(1 - x) : (int)x;
}

/* Stores v (0 or 1 for Bernoulli, a float for the uniform) as element i of y. */
static void dt_random_store(dt_view *y, int64_t i, double v)
{
    switch (y->dtype) {
    case DUCTILE_FLOAT64: ((double *)y->data)[i] = v; break;
    case DUCTILE_FLOAT32: ((float *)y->data)[i] = (float)v; break;
    case DUCTILE_FLOAT16: ((uint16_t *)y->data)[i] = dt_float_to_half((float)v); break;
    case DUCTILE_BFLOAT16: ((uint16_t *)y->data)[i] = dt_float_to_bf16((float)v); break;
    default: {
        /* Bernoulli into an integer or bool type: 0 or 1 in the type's width. */
        size_t es = ductile_dtype_size((ductile_dtype)y->dtype);
        unsigned char *e = (unsigned char *)y->data + (size_t)i * es;
        memset(e, 0, es);
        if (v != 0.0) {
            uint64_t one = 1;
            memcpy(e, &one, es < sizeof one ? es : sizeof one); /* little-endian hosts */
        }
    }
    }
}

static ductile_status dt_random_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    const dt_random_params *p = params;
    dt_mt19937 mt;
    dt_mt_seed(&mt, p->has_seed ? p->seed : dt_random_seed());
    int64_t n = dt_view_count(&out[0]);
    for (int64_t i = 0; i < n; i++) {
        if (p->bern) {
            double prob = dt_ew_get_f64(&in[0], i);
            if (!(prob >= 0.0 && prob <= 1.0))
                return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 0 (input)[%lld] = %g is not a probability in "
                               "[0, 1]", (long long)i, prob);
            dt_random_store(&out[0], i, dt_bernoulli_draw(&mt, prob));
        } else {
            /* As the reference: the draw in the output's type, then scaled and shifted there. */
            double u = dt_mt_double(&mt);
            if (out[0].dtype == DUCTILE_FLOAT64) {
                dt_random_store(&out[0], i, u * ((double)p->high - (double)p->low) + (double)p->low);
            } else {
                float f = (float)u;
                if (out[0].dtype == DUCTILE_FLOAT16) f = dt_half_to_float(dt_float_to_half(f));
                if (out[0].dtype == DUCTILE_BFLOAT16) f = dt_bf16_to_float(dt_float_to_bf16(f));
                float span = (float)((double)p->high - (double)p->low);
                dt_random_store(&out[0], i, (double)(f * span + p->low));
            }
        }
    }
    return DUCTILE_OK;
}

static const dt_kernel dt_cpu_random_kernel = {.prepare = dt_random_prepare, .run = dt_random_run};

const dt_cpu_kernel dt_cpu_random[] = {
    {"RandomUniformLike", NULL, &dt_cpu_random_kernel},
    {"Bernoulli", NULL, &dt_cpu_random_kernel},
    {NULL, NULL, NULL},
};
