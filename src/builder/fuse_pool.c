/* A GlobalAveragePool into the conv that makes its input: GlobalAveragePool(Y) (or ReduceMean
 * of Y's axes 2 and 3, kept) with Y a FusedConv's or FusedInvertedResidual's output becomes
 * that layer's second output P (ops/fused.h), for backends whose kernels take it (the CPU's sum
 * each plane as they write it: backend/cpu/conv_pool.c). Squeeze-excite reads the block's depthwise output twice, its
 * pool and its scale; the pool's pass read it back from L3 or memory (EfficientNet-B0 b8
 * --bf16: 17 pools, 1.15 ms of 30.7). Runs after the Conv, inverted-residual and scale
 * fusions, on the layers they made. Y keeps its other readers. */
#include "builder/fuse_impl.h"
#include "core/status.h"
#include "ops/fused.h"

#include <string.h>

/* A channels-first 2-D FusedConv or FusedInvertedResidual with one output, float32. */
static bool dt_pool_producer(const ductile_layer *P)
{
    if (strcmp(P->domain, "ductile") || P->n_out != 1 || !P->out[0] || P->out[0]->rank != 4) return false;
    if (!strcmp(P->op_type, "FusedInvertedResidual")) return true;
    return !strcmp(P->op_type, "FusedConv") && !dt_fused_conv_nhwc(P) && !dt_fused_conv_d2s(P, NULL) &&
           !dt_attr_find(P, "to") && P->n_in >= 2 && P->in[DT_FC_W] && P->in[DT_FC_W]->rank == 4;
}

/* ReduceMean R over axes 2 and 3 of a rank-4 tensor, keeping them: GlobalAveragePool as
 * `x.mean((2, 3), keepdim=True)` exports it (timm's squeeze-excite); axes by attribute or,
 * from opset 18, by a constant input. */
static bool dt_pool_mean_hw(const ductile_layer *R)
{
    if (strcmp(R->op_type, "ReduceMean") || strcmp(R->domain, "") || R->n_in < 1 || R->n_in > 2 ||
        dt_attr_int(R, "keepdims", 1) != 1 || !R->in[0] || R->in[0]->rank != 4)
        return false;
    int64_t n = 0;
    const int64_t *axes = dt_attr_ints(R, "axes", &n);
    if (R->n_in == 2 && R->in[1]) {
        const ductile_tensor *a = R->in[1];
        if (!a->data || a->dtype != DUCTILE_INT64 || a->nbytes != 2 * sizeof(int64_t)) return false;
        axes = a->data;
        n = 2;
    }
    if (!axes || n != 2) return false;
    int64_t a0 = axes[0] < 0 ? axes[0] + 4 : axes[0], a1 = axes[1] < 0 ? axes[1] + 4 : axes[1];
    return (a0 == 2 && a1 == 3) || (a0 == 3 && a1 == 2);
}

ductile_status dt_fuse_pool(dt_fuse *f, ductile_layer *G)
{
    bool gap = !strcmp(G->op_type, "GlobalAveragePool") && !strcmp(G->domain, "") && G->n_in == 1;
    if ((!gap && !dt_pool_mean_hw(G)) || G->n_out != 1 || !G->in[0] || !G->out[0]) return DUCTILE_OK;
    ductile_tensor *y = G->in[0];
    ductile_layer *P = f->producer[y->index];
    if (y->rank != 4 || !dt_fuse_is_float(y) || !P || f->dead[P->index] || !dt_pool_producer(P) || P->out[0] != y)
        return DUCTILE_OK;
    ductile_network *net = f->net;
    ductile_tensor **out = dt_arena_alloc(&net->arena, sizeof *out * 2);
    if (!out) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory fusing node '%s'", G->name);
    out[0] = y;
    out[1] = G->out[0];
    P->out = out;
    P->n_out = 2;
    f->producer[out[1]->index] = P;
    out[1]->producer = P;
    dt_fuse_kill(f, G);
    return DUCTILE_OK;
}
