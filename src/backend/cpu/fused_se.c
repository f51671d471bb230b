/* The CPU kernel of FusedSqueezeExcite (src/ops/fused.h): the reference the CUDA kernels are
 * tested against, and what runs the layer where a build asks for it on the CPU
 * (DUCTILE_FUSE_SE_POOL=1: the CPU's own builds take the scale into the conv instead). Per
 * image: the channel means, then both 1x1 products as matrix-vector loops with their
 * activations, in float32. */
#include "backend/cpu/epilogue.h"
#include "backend/cpu/families.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/nn_kernels.h"
#include "core/status.h"
#include "ops/fused.h"

typedef struct dt_fse_params {
    const ductile_layer *L;
    dt_epilogue hidden, scale;
    bool nhwc;
} dt_fse_params;

static ductile_status dt_fse_prepare(const ductile_layer *L, void **out)
{
    DT_TRY(dt_cpu_want_f32(L));
    dt_fse_params p = {.L = L, .nhwc = dt_fused_se_nhwc(L)};
    DT_TRY(dt_epilogue_act_read(L, "hidden_activation", "hidden_p0", "hidden_p1", &p.hidden));
    DT_TRY(dt_epilogue_act_read(L, "scale_activation", "scale_p0", "scale_p1", &p.scale));
    dt_epilogue_lean(L, &p.hidden);
    dt_epilogue_lean(L, &p.scale);
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_fse_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                     size_t *bytes)
{
    const dt_fse_params *p = params;
    int64_t n, c, cr, hw;
    dt_fused_se_sizes(p->L, in, &n, &c, &cr, &hw);
    *bytes = (size_t)(c + cr) * sizeof(float);
    return DUCTILE_OK;
}

/* y[m] = act(b[m] + sum_k w[m, k] v[k]) for m < rows. */
static void dt_fse_product(const float *w, const float *b, const float *v, int64_t rows, int64_t k,
                           const dt_epilogue *e, float *y)
{
    for (int64_t m = 0; m < rows; m++) {
        const float *wm = w + m * k;
        float acc = 0.f;
        for (int64_t i = 0; i < k; i++) acc += wm[i] * v[i];
        y[m] = acc + (b ? b[m] : 0.f);
    }
    dt_epilogue_apply(e, y, NULL, rows);
}

static ductile_status dt_fse_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_fse_params *p = params;
    int64_t n, c, cr, hw;
    dt_fused_se_sizes(p->L, in, &n, &c, &cr, &hw);
    if ((size_t)(c + cr) * sizeof(float) > ex->scratch_bytes || !ex->scratch)
        return dt_fail(DUCTILE_ERR_INTERNAL, "node '%s': FusedSqueezeExcite's scratch is missing", p->L->name);
    float *pooled = ex->scratch, *hidden = pooled + c;
    const float *w1 = in[DT_FSE_W1].data, *w2 = in[DT_FSE_W2].data;
    const float *b1 = p->L->n_in > DT_FSE_B1 && p->L->in[DT_FSE_B1] ? in[DT_FSE_B1].data : NULL;
    const float *b2 = p->L->n_in > DT_FSE_B2 && p->L->in[DT_FSE_B2] ? in[DT_FSE_B2].data : NULL;
    for (int64_t img = 0; img < n; img++) {
        const float *x = (const float *)in[DT_FSE_X].data + img * c * hw;
        for (int64_t ch = 0; ch < c; ch++) pooled[ch] = 0.f;
        if (p->nhwc) {
            for (int64_t i = 0; i < hw; i++)
                for (int64_t ch = 0; ch < c; ch++) pooled[ch] += x[i * c + ch];
        } else {
            for (int64_t ch = 0; ch < c; ch++) pooled[ch] = dt_cpu_plane_sum_f32(x + ch * hw, hw);
        }
        for (int64_t ch = 0; ch < c; ch++) pooled[ch] /= (float)hw;
        dt_fse_product(w1, b1, pooled, cr, c, &p->hidden, hidden);
        dt_fse_product(w2, b2, hidden, c, cr, &p->scale, (float *)out[0].data + img * c);
    }
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_fused_se_kernel = {.prepare = dt_fse_prepare, .scratch = dt_fse_scratch, .run = dt_fse_run};
