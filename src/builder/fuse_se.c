/* Squeeze-excite's channel scale into the conv that reads it: Mul(X, S) -> FusedConv(1x1),
 * S of shape [N or 1, C, 1, 1] (MobileNetV3's blocks: S = HardSigmoid(fc(GlobalAveragePool(X))))
 * becomes the FusedConv's input S (src/ops/fused.h), for backends whose FusedConv kernel takes
 * it (the CPU's scales its packed weights per image instead: M x C multiplies in place of a
 * pass over the N x C x H x W product and its write; backend/cpu/fused_conv.c). Runs after
 * the Conv fusion, on the FusedConvs it made. */
#include "builder/fuse_impl.h"
#include "core/status.h"
#include "ops/fused.h"

#include <string.h>

/* Dim i of a and dim j of b are equal as far as the inferred dims prove it. */
static bool dt_se_same_dim(const ductile_tensor *a, int i, const ductile_tensor *b, int j)
{
    if (a->dims[i] >= 0 || b->dims[j] >= 0) return a->dims[i] == b->dims[j];
    return a->dim_sym[i] && b->dim_sym[j] && !strcmp(a->dim_sym[i], b->dim_sym[j]);
}

/* s scales x's channels per image: [N or 1, C, 1, 1] of x's [N, C, H, W]. */
static bool dt_se_scale_of(const ductile_tensor *x, const ductile_tensor *s)
{
    if (!dt_fuse_is_float(x) || !dt_fuse_is_float(s) || x->rank != 4 || s->rank != 4 || s->dims[2] != 1 ||
        s->dims[3] != 1 || !dt_se_same_dim(x, 1, s, 1))
        return false;
    return s->dims[0] == 1 || dt_se_same_dim(x, 0, s, 0);
}

ductile_status dt_fuse_se(dt_fuse *f, ductile_layer *C)
{
    /* A channels-first FusedConv with raw constant 1x1 weights of one group and no S yet. */
    if (strcmp(C->op_type, "FusedConv") || strcmp(C->domain, "ductile") || C->n_in < 2 || C->n_in > 4 ||
        dt_fused_conv_nhwc(C) || dt_attr_int(C, "packed", 0) != 0 || dt_attr_int(C, "group", 1) != 1)
        return DUCTILE_OK;
    const ductile_tensor *w = C->in[DT_FC_W];
    if (!w || !w->data || w->rank != 4 || w->dims[2] != 1 || w->dims[3] != 1) return DUCTILE_OK;
    ductile_tensor *t = C->in[DT_FC_X];
    ductile_layer *M = t ? f->producer[t->index] : NULL;
    if (!M || f->dead[M->index] || strcmp(M->op_type, "Mul") || strcmp(M->domain, "") || M->n_in != 2 ||
        M->n_out != 1 || dt_fuse_sole_reader(f, t) != C)
        return DUCTILE_OK;
    int xi = dt_se_scale_of(M->in[0], M->in[1]) ? 0 : dt_se_scale_of(M->in[1], M->in[0]) ? 1 : -1;
    if (xi < 0 || !dt_fuse_same_shape(M->in[xi], t)) return DUCTILE_OK;
    ductile_network *net = f->net;
    ductile_tensor **in = dt_arena_alloc(&net->arena, sizeof *in * 5);
    if (!in) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory fusing node '%s'", C->name);
    for (int k = 0; k < 4; k++) in[k] = k < C->n_in ? C->in[k] : NULL;
    in[DT_FC_X] = M->in[xi];
    in[DT_FC_S] = M->in[1 - xi];
    C->in = in;
    C->n_in = 5;
    f->reader[in[DT_FC_X]->index] = C;
    f->reader[in[DT_FC_S]->index] = C;
    dt_fuse_kill(f, M);
    return DUCTILE_OK;
}
