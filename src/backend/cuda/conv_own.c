/* Conv and FusedConv on the CUDA backend's own kernels (conv_own.h): the checks of which
 * geometry each kernel computes, and the launch with the layer's bias, residual and
 * activation fused. */
#include "backend/cuda/conv_own.h"
#include "core/status.h"
#include "ops/fused.h"

#include <string.h>

bool dt_cuda_conv_own_applies(const dt_conv_geom *g, int tactic)
{
    switch (tactic) {
    case DT_CUDA_CONV_DEPTHWISE: return g->group == g->c && g->group > 1;
    case DT_CUDA_CONV_POINTWISE64:
    case DT_CUDA_CONV_POINTWISE32:
        /* Grid: images in z, output channels in y (both at most 65535 blocks). */
        return g->batch <= 65535 && g->m <= 65535 * 32 && g->group == 1 && g->k[0] == 1 && g->k[1] == 1 && g->s[0] == 1 && g->s[1] == 1 && g->pb[0] == 0 &&
               g->pb[1] == 0 && g->pe[0] == 0 && g->pe[1] == 0;
    }
    return false;
}

ductile_status dt_cuda_conv_own_run(const ductile_layer *L, const dt_conv_geom *g, int tactic, const dt_view *in,
                                    dt_view *out, dt_exec *ex)
{
    bool fused = !strcmp(L->op_type, "FusedConv");
    dt_cu_conv c = {
        .n = g->batch, .c = g->c, .m = g->m, .ih = g->in[0], .iw = g->in[1], .oh = g->out[0], .ow = g->out[1],
        .kh = g->k[0], .kw = g->k[1], .sh = g->s[0], .sw = g->s[1], .ph = g->pb[0], .pw = g->pb[1],
        .dh = g->d[0], .dw = g->d[1], .group = g->group,
    };
    c.act = fused ? dt_cuda_conv_act(L, &c.p0, &c.p1) : DT_CU_IDENTITY;
    const float *bias = L->n_in > DT_FC_B && L->in[DT_FC_B] ? in[DT_FC_B].data : NULL;
    const float *res = fused && L->n_in > DT_FC_R && L->in[DT_FC_R] ? in[DT_FC_R].data : NULL;
    int err = tactic == DT_CUDA_CONV_DEPTHWISE
                  ? dt_cu_conv_depthwise_f32(in[DT_FC_X].data, in[DT_FC_W].data, bias, res, out[0].data, &c, ex->stream)
                  : dt_cu_conv_pointwise_f32(in[DT_FC_X].data, in[DT_FC_W].data, bias, res, out[0].data, &c,
                                             tactic == DT_CUDA_CONV_POINTWISE64 ? 64 : 32, ex->stream);
    return dt_cuda_check(err, tactic == DT_CUDA_CONV_DEPTHWISE ? "depthwise convolution" : "pointwise convolution");
}
