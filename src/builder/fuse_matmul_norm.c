/* FusedMatMul -> LayerNormalization (last axis) as one FusedMatMul with attribute norm = 1
 * (ops/fused.h): a transformer's residual LayerNorm (BERT: after the attention's output
 * projection and after the feed-forward's second product, each with its residual absorbed)
 * becomes the product's epilogue. The LayerNorm of each row is computed from the row the
 * product just wrote, so a backend whose kernel holds a whole row (the CUDA backend's own
 * tensor-core kernel, a cluster of blocks across the row) never writes the pre-norm tensor;
 * the others run the LayerNorm in place right after the product (the CPU: the same float
 * operations as the two layers, bit for bit). One layer, and on a GPU one launch, less per
 * LayerNorm. */
#include "builder/fuse_impl.h"
#include "builder/optimize.h"
#include "core/status.h"
#include "ops/fused.h"

#include <string.h>

/* A 1-D float32 tensor of n elements (the LayerNorm's Scale or B against the product's N). */
static bool dt_row_param(const ductile_tensor *t, int64_t n)
{
    return t && dt_fuse_is_float(t) && t->rank == 1 && t->dims[0] == n;
}

ductile_status dt_fuse_matmul_layernorm(dt_fuse *f, ductile_layer *Ln)
{
    ductile_network *net = f->net;
    if (strcmp(Ln->op_type, "LayerNormalization") || strcmp(Ln->domain, "") || Ln->n_in < 2 || Ln->n_in > 3 ||
        Ln->n_out != 1 || !Ln->in[0] || !Ln->out[0])
        return DUCTILE_OK;
    ductile_tensor *y = Ln->in[0];
    ductile_layer *M = f->producer[y->index];
    if (!M || f->dead[M->index] || strcmp(M->op_type, "FusedMatMul") || strcmp(M->domain, "ductile") || M->n_in > 4 ||
        M->out[0] != y || dt_fuse_sole_reader(f, y) != Ln || dt_attr_int(M, "packed", 0) != 0 || !M->in[DT_FM_B] ||
        M->in[DT_FM_B]->rank != 2 || y->rank < 1)
        return DUCTILE_OK;
    /* Over the last axis only: a row of the product is a row of the LayerNorm. */
    int64_t axis = dt_attr_int(Ln, "axis", -1), n = M->in[DT_FM_B]->dims[1];
    if ((axis != -1 && axis != y->rank - 1) || dt_attr_int(Ln, "stash_type", 1) != 1) return DUCTILE_OK;
    ductile_tensor *scale = Ln->in[1], *lb = Ln->n_in > 2 ? Ln->in[2] : NULL;
    /* Rows of at most 1024: a GPU warp (or a cluster of blocks) holds one while normalizing it. */
    if (n < 1 || n > 1024 || !dt_row_param(scale, n) || (lb && !dt_row_param(lb, n))) return DUCTILE_OK;
    ductile_tensor **in = dt_arena_alloc(&net->arena, sizeof *in * 6);
    if (!in) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory fusing node '%s'", Ln->name);
    for (int i = 0; i < 4; i++) in[i] = i < M->n_in ? M->in[i] : NULL;
    in[DT_FM_SCALE] = scale;
    in[DT_FM_LB] = lb;
    dt_attr add[2] = {
        {.name = "norm", .type = DT_ATTR_INT, .i = 1},
        {.name = "epsilon", .type = DT_ATTR_FLOAT, .f = dt_attr_float(Ln, "epsilon", 1e-5f)},
    };
    DT_TRY(dt_layer_add_attrs(net, M, add, 2));
    M->in = in;
    M->n_in = lb ? 6 : 5;
    ductile_tensor *t = Ln->out[0];
    M->out[0] = t;
    t->producer = M;
    f->producer[t->index] = M;
    f->reader[scale->index] = M;
    if (lb) f->reader[lb->index] = M;
    dt_fuse_kill(f, Ln);
    dt_fuse_move_to_last(f, M, Ln);
    return DUCTILE_OK;
}
