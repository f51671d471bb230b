/* MobileNet's inverted-residual block, FusedConv(1x1 expand) -> FusedConv(depthwise 3x3 or
 * 5x5, stride 1 or 2) [-> FusedConv(1x1 project) [+ residual]], into one
 * FusedInvertedResidual layer (src/ops/fused.h) for backends with its kernel: the CPU's runs
 * it a strip of rows at a time so that the expanded tensor stays in cache
 * (backend/cpu/fused_irb.c). Runs after the Conv fusion, on the FusedConvs it made. */
#include "builder/fuse_impl.h"
#include "builder/optimize.h"
#include "core/status.h"
#include "ops/defaults.h"
#include "ops/fused.h"

#include <string.h>

/* A FusedConv of this pass's kind: channels first, raw weights, no tactic yet, a constant
 * float32 W of rank 4, no residual unless allowed. */
static bool dt_irb_conv(const ductile_layer *L, bool residual)
{
    if (!L || strcmp(L->op_type, "FusedConv") || strcmp(L->domain, "ductile") || L->n_out != 1 || L->n_in < 2 ||
        L->n_in > (residual ? 4 : 3) || dt_fused_conv_nhwc(L) || dt_attr_int(L, "packed", 0) != 0 ||
        dt_attr_find(L, "tactic"))
        return false;
    const ductile_tensor *w = L->in[DT_FC_W];
    if (!w || !w->data || w->dtype != DUCTILE_FLOAT32 || w->rank != 4 || !dt_fuse_is_float(L->in[DT_FC_X]))
        return false;
    /* Bias: absent or a float32 [M]. */
    const ductile_tensor *b = L->n_in > DT_FC_B ? L->in[DT_FC_B] : NULL;
    return !b || (b->dtype == DUCTILE_FLOAT32 && b->rank == 1 && b->dims[0] == w->dims[0]);
}

/* A 1x1 conv, stride 1, unpadded, one group, of c input channels (c < 0: any). */
static bool dt_irb_pointwise(const ductile_layer *L, bool residual, int64_t c)
{
    if (!dt_irb_conv(L, residual)) return false;
    const int64_t *w = L->in[DT_FC_W]->dims;
    const char *ap = dt_attr_string(L, "auto_pad", "NOTSET");
    return w[2] == 1 && w[3] == 1 && (c < 0 || w[1] == c) && dt_attr_int(L, "group", 1) == 1 &&
           dt_attr_ints_all(L, "strides", 1) && dt_attr_ints_all(L, "pads", 0) &&
           (!strcmp(ap, "NOTSET") || !strcmp(ap, "VALID"));
}

/* A depthwise 3x3 or 5x5 conv of ce channels, the same stride (1 or 2) and dilation (1 or 2)
 * along both dims: the geometries of the CPU's depthwise row kernel. */
static bool dt_irb_depthwise(const ductile_layer *L, int64_t ce)
{
    if (!dt_irb_conv(L, false)) return false;
    const int64_t *w = L->in[DT_FC_W]->dims;
    if (w[0] != ce || w[1] != 1 || w[2] != w[3] || (w[2] != 3 && w[2] != 5) || dt_attr_int(L, "group", 1) != ce)
        return false;
    int64_t ns = 0, nd = 0;
    const int64_t *s = dt_attr_ints(L, "strides", &ns), *d = dt_attr_ints(L, "dilations", &nd);
    if ((s && ns != 2) || (d && nd != 2)) return false;
    return (!s || (s[0] == s[1] && s[0] >= 1 && s[0] <= 2)) && (!d || (d[0] == d[1] && d[0] >= 1 && d[0] <= 2));
}

/* The rewrite into D: inputs in (8, X first), the project P absorbed (may be NULL). */
static ductile_status dt_irb_make(dt_fuse *f, ductile_layer *D, ductile_layer *E, ductile_layer *P)
{
    ductile_network *net = f->net;
    ductile_tensor **in = dt_arena_alloc(&net->arena, sizeof *in * 8);
    if (!in) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory fusing node '%s'", D->name);
    memset(in, 0, sizeof *in * 8);
    in[DT_IRB_X] = E ? E->in[DT_FC_X] : D->in[DT_FC_X];
    in[DT_IRB_WE] = E ? E->in[DT_FC_W] : NULL;
    in[DT_IRB_BE] = E && E->n_in > DT_FC_B ? E->in[DT_FC_B] : NULL;
    in[DT_IRB_WD] = D->in[DT_FC_W];
    in[DT_IRB_BD] = D->n_in > DT_FC_B ? D->in[DT_FC_B] : NULL;
    int n_in = 5;
    ductile_tensor *res = NULL;
    if (P) {
        in[DT_IRB_WP] = P->in[DT_FC_W];
        in[DT_IRB_BP] = P->n_in > DT_FC_B ? P->in[DT_FC_B] : NULL;
        res = P->n_in > DT_FC_R ? P->in[DT_FC_R] : NULL;
        in[DT_IRB_R] = res;
        n_in = res ? 8 : 7;
    }
    static const char *en[3] = {"expand_activation", "expand_p0", "expand_p1"};
    static const char *pn[3] = {"project_activation", "project_p0", "project_p1"};
    dt_attr extra[6];
    int n_attr = 0;
    if (E) dt_fuse_act_attrs(E, en, extra), n_attr = 3;
    if (P) dt_fuse_act_attrs(P, pn, extra + n_attr), n_attr += 3;
    DT_TRY(dt_layer_add_attrs(net, D, extra, n_attr));
    D->op_type = "FusedInvertedResidual";
    D->in = in;
    D->n_in = n_in;
    dt_fuse_kill(f, E);
    if (!P) return DUCTILE_OK;
    ductile_tensor *t = P->out[0];
    D->out[0] = t;
    t->producer = D;
    f->producer[t->index] = D;
    if (res) f->reader[res->index] = D;
    dt_fuse_kill(f, P);
    dt_fuse_move_to_last(f, D, P);
    return DUCTILE_OK;
}

/* MobileNet's first block has no expand: depthwise -> project [+ residual] (seg_lraspp's 16
 * channels at 389x278: a 6.9 MB depthwise output the project reads back). Runs after
 * dt_fuse_irb, on the depthwise FusedConvs it left. */
ductile_status dt_fuse_irb_dw(dt_fuse *f, ductile_layer *D)
{
    if (!dt_irb_conv(D, false) || !D->in[DT_FC_X]) return DUCTILE_OK;
    int64_t c = D->in[DT_FC_W]->dims[0];
    if (!dt_irb_depthwise(D, c)) return DUCTILE_OK;
    ductile_layer *P = dt_fuse_sole_reader(f, D->out[0]);
    if (!P || P->in[DT_FC_X] != D->out[0] || !dt_irb_pointwise(P, true, c)) return DUCTILE_OK;
    return dt_irb_make(f, D, NULL, P);
}

ductile_status dt_fuse_irb(dt_fuse *f, ductile_layer *E)
{
    if (!dt_irb_pointwise(E, false, -1)) return DUCTILE_OK;
    int64_t ce = E->in[DT_FC_W]->dims[0];
    ductile_layer *D = dt_fuse_sole_reader(f, E->out[0]);
    if (!D || D->in[DT_FC_X] != E->out[0] || !dt_irb_depthwise(D, ce)) return DUCTILE_OK;
    ductile_layer *P = dt_fuse_sole_reader(f, D->out[0]);
    if (P && (P->in[DT_FC_X] != D->out[0] || !dt_irb_pointwise(P, true, ce))) P = NULL;
    return dt_irb_make(f, D, E, P);
}
