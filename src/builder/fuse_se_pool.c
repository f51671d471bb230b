/* Squeeze-excite's scale as one layer: GlobalAveragePool(X) -> FusedConv 1x1 (fc1) -> FusedConv
 * 1x1 (fc2) -> S becomes FusedSqueezeExcite(X, W1, B1, W2, B2) -> S (ops/fused.h), for backends
 * that launch a kernel per layer (CUDA: a two-kernel pool and two tiny convs per block, 36 of
 * seg_lraspp's ~100 launches at batch 1, become two). Runs after the Conv fusion, on the
 * FusedConvs it made, before the layout pass (which takes the fused layer into a channels-last
 * region as it takes GlobalAveragePool). */
#include "builder/fuse_impl.h"
#include "core/status.h"
#include "builder/optimize.h"
#include "ops/fused.h"

#include <string.h>

/* A channels-first FusedConv 1x1 over a [N, K, 1, 1] tensor: constant float weights [M, K, 1,
 * 1] of one group, no residual or scale, no padding or stride (each a product of W with a
 * vector); k: K as the previous layer makes it (-1: any). */
static bool dt_se_fc(const ductile_layer *C, int64_t k)
{
    if (strcmp(C->op_type, "FusedConv") || strcmp(C->domain, "ductile") || C->n_in < 2 || C->n_in > 3 ||
        C->n_out != 1 || dt_fused_conv_nhwc(C) || dt_attr_int(C, "packed", 0) != 0 || dt_attr_int(C, "group", 1) != 1 ||
        strcmp(dt_attr_string(C, "auto_pad", "NOTSET"), "NOTSET"))
        return false;
    const ductile_tensor *w = C->in[DT_FC_W];
    if (!w || !w->data || !dt_fuse_is_float(w) || w->rank != 4 || w->dims[0] < 1 || w->dims[2] != 1 || w->dims[3] != 1 ||
        (k >= 0 && w->dims[1] != k))
        return false;
    if (C->n_in > DT_FC_B && C->in[DT_FC_B] && !C->in[DT_FC_B]->data) return false;
    return dt_attr_ints_all(C, "strides", 1) && dt_attr_ints_all(C, "dilations", 1) && dt_attr_ints_all(C, "pads", 0);
}

ductile_status dt_fuse_se_pool(dt_fuse *f, ductile_layer *G)
{
    if (strcmp(G->op_type, "GlobalAveragePool") || strcmp(G->domain, "") || G->n_in != 1 || G->n_out != 1) return DUCTILE_OK;
    const ductile_tensor *x = G->in[0];
    if (!x || x->rank != 4 || !dt_fuse_is_float(x) || x->dims[1] < 1) return DUCTILE_OK;
    ductile_layer *F1 = dt_fuse_sole_reader(f, G->out[0]);
    if (!F1 || F1->in[DT_FC_X] != G->out[0] || !dt_se_fc(F1, x->dims[1])) return DUCTILE_OK;
    int64_t cr = F1->in[DT_FC_W]->dims[0];
    ductile_layer *F2 = dt_fuse_sole_reader(f, F1->out[0]);
    if (!F2 || F2->in[DT_FC_X] != F1->out[0] || !dt_se_fc(F2, cr) || F2->in[DT_FC_W]->dims[0] != x->dims[1])
        return DUCTILE_OK;
    ductile_network *net = f->net;
    ductile_tensor **in = dt_arena_alloc(&net->arena, sizeof *in * 5);
    if (!in) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory fusing node '%s'", G->name);
    in[DT_FSE_X] = G->in[0];
    in[DT_FSE_W1] = F1->in[DT_FC_W];
    in[DT_FSE_B1] = F1->n_in > DT_FC_B ? F1->in[DT_FC_B] : NULL;
    in[DT_FSE_W2] = F2->in[DT_FC_W];
    in[DT_FSE_B2] = F2->n_in > DT_FC_B ? F2->in[DT_FC_B] : NULL;
    static const char *hn[3] = {"hidden_activation", "hidden_p0", "hidden_p1"};
    static const char *sn[3] = {"scale_activation", "scale_p0", "scale_p1"};
    dt_attr extra[6];
    dt_fuse_act_attrs(F1, hn, extra);
    dt_fuse_act_attrs(F2, sn, extra + 3);
    G->op_type = "FusedSqueezeExcite";
    G->domain = "ductile";
    DT_TRY(dt_layer_add_attrs(net, G, extra, 6));
    G->in = in;
    G->n_in = in[DT_FSE_B2] ? 5 : 4;
    for (int k = 1; k < 5; k++)
        if (in[k]) f->reader[in[k]->index] = G;
    ductile_tensor *t = F2->out[0];
    G->out[0] = t;
    t->producer = G;
    f->producer[t->index] = G;
    dt_fuse_kill(f, F1);
    dt_fuse_kill(f, F2);
    dt_fuse_move_to_last(f, G, F2);
    return DUCTILE_OK;
}
