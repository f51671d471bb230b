/* dt_layer_flops (flops.h). A product's count is 2 * (output elements) * (reduction length),
 * which covers every group, batch and broadcast at once: each output element is one dot
 * product of that length. */
#include "ops/flops.h"
#include "ops/fused.h"

#include <string.h>

/* The reduction length of one output element, or 0 when the views do not say. */
static double dt_reduction(const ductile_layer *L, const dt_view *in)
{
    const char *op = L->op_type;
    if (!strcmp(op, "Conv") || !strcmp(op, "FusedConv")) {
        if (L->n_in < 2 || !L->in[1]) return 0;
        dt_view w = in[1];
        if (!strcmp(op, "FusedConv") && dt_fused_conv_weight(L, &in[1], &w)) return 0;
        if (w.rank < 3) return 0;
        double k = 1;   /* C/group * KH * KW: W's dims past the output channels */
        for (int i = 1; i < w.rank; i++) k *= (double)w.dims[i];
        return k;
    }
    if (!strcmp(op, "MatMul") || !strcmp(op, "FusedMatMul")) {
        /* A is never packed; a 1-D A is [K]. */
        return in[0].rank >= 1 ? (double)in[0].dims[in[0].rank - 1] : 0;
    }
    if (!strcmp(op, "Gemm")) {
        if (in[0].rank != 2) return 0;
        return (double)in[0].dims[dt_attr_int(L, "transA", 0) ? 0 : 1];
    }
    return 0;
}

double dt_layer_flops(const ductile_layer *L, const dt_view *in, const dt_view *out)
{
    if (L->n_in < 1 || L->n_out < 1 || out[0].rank < 0) return 0;
    if (!strcmp(L->op_type, "FusedAttention")) {
        /* Two products over the L keys: Q's elements each meet L keys, and so do Y's. */
        dt_fa_attrs a;
        dt_fa_geom g;
        dt_fused_attention_attrs(L, &a);
        if (in[DT_FA_Q].rank < 2 || (!a.qkv && (L->n_in < 3 || in[DT_FA_KT].rank < 2 || in[DT_FA_V].rank < 2)))
            return 0;
        dt_fused_attention_geometry(&a, in, &g);
        return 2.0 * (double)g.count * (double)g.S * (double)g.L * (double)(g.D + g.Dv);
    }
    if (!strcmp(L->op_type, "FusedInvertedResidual")) {
        /* Its convolutions': the expand 1x1 over the input's pixels, the depthwise and the
         * project 1x1 over the output's. */
        const dt_view *x = &in[DT_IRB_X], *wd = L->n_in > DT_IRB_WD && L->in[DT_IRB_WD] ? &in[DT_IRB_WD] : NULL;
        bool expand = L->n_in > DT_IRB_WE && L->in[DT_IRB_WE], project = L->n_in > DT_IRB_WP && L->in[DT_IRB_WP];
        if (x->rank != 4 || !wd || wd->rank != 4 || out[0].rank != 4 || (expand && in[DT_IRB_WE].rank != 4) ||
            (project && in[DT_IRB_WP].rank != 4))
            return 0;
        double ce = (double)wd->dims[0], opx = (double)out[0].dims[0] * (double)out[0].dims[2] * (double)out[0].dims[3];
        double f = 2.0 * opx * ce * (double)wd->dims[2] * (double)wd->dims[3];
        if (expand)
            f += 2.0 * (double)x->dims[0] * (double)x->dims[2] * (double)x->dims[3] * ce * (double)in[DT_IRB_WE].dims[1];
        if (project) f += 2.0 * opx * (double)in[DT_IRB_WP].dims[0] * ce;
        return f;
    }
    double k = dt_reduction(L, in);
    if (k <= 0) return 0;
    double n = 1;
    for (int i = 0; i < out[0].rank; i++) n *= (double)out[0].dims[i];
    return 2.0 * n * k;
}
