/* Symbolic shape inference over a network definition: an annotation pass.
 *
 * Every tensor gets a symbolic shape (rank and one dim expression per dim, see symdim.h), and
 * small integer tensors that hold shapes (Shape, Gather on it, Concat, Unsqueeze, Slice, Cast,
 * integer arithmetic, constants) get symbolic *values*, one expression per element, so that
 * Reshape, Expand, ConstantOfShape, Resize(sizes), Range and Slice fed by PyTorch's
 * Shape -> Gather -> Unsqueeze -> Concat chains get symbolic output shapes.
 *
 * What cannot be inferred is left unknown; the pass never fails for that. Results are written
 * onto the layers' output tensors: rank, dims[i] (the constant, or -1) and dim_sym[i] (the
 * printed expression, an arena string), replacing what the file declared, names an exporter
 * made up ("Resizeoutput_1_dim_0") included. Where a rank or dim is not inferred, the file's
 * declaration (often -1 and NULL) stays on the tensor, but later layers still treat it as
 * unknown: declared names are trusted as symbols only on graph inputs. Graph inputs and
 * constants are not changed. */
#ifndef DT_SYMBOLIC_H
#define DT_SYMBOLIC_H

#include "graph/network.h"
#include "graph/symdim.h"

#define DT_SYM_MAX_VALUES 64   /* elements tracked for a shape-like tensor */

/* What the pass knows of one tensor. */
typedef struct dt_symt {
    bool present;                       /* false: an omitted optional input */
    int rank;                           /* -1: unknown */
    const dt_sd *d[DT_MAX_DIMS];        /* NULL: unknown dim */
    int nval;                           /* -1: values unknown; else element count, row-major */
    const dt_sd *val[DT_SYM_MAX_VALUES];/* NULL: unknown element */
} dt_symt;

/* Annotates every layer's outputs, in layer order. DUCTILE_ERR_OUT_OF_MEMORY is the only
 * failure (with the message set); the tensors then hold what was done so far. */
ductile_status dt_symbolic_infer(ductile_network *net);

/* Annotates the outputs of one layer from its inputs' declared shapes (a network edited after
 * parsing: dims read back from dim_sym). Same failure rule. */
ductile_status dt_symbolic_infer_layer(ductile_network *net, ductile_layer *L);

/* ---- for the op rules (symbolic_*.c) ---- */

/* Sets out[0..L->n_out) from in[0..L->n_in); outputs start unknown (rank -1, nval -1). */
void dt_sym_layer(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out);

/* Op families: each returns true when it knows the op type (even if it inferred nothing). */
bool dt_sym_shape_ops(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out);
bool dt_sym_value_ops(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out);
bool dt_sym_nn_ops(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out);
/* If, Loop, Scan (symbolic_ctrl.c): their subgraphs inferred with the inputs' shapes. */
bool dt_sym_ctrl_ops(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out);
/* FlexAttention (symbolic_ctrl.c): Y's dims, and its modifiers inferred on the scores' shape. */
void dt_sym_flex(dt_symctx *c, const ductile_layer *L, const dt_symt *in, dt_symt *out);
/* Infers subgraph g in c (annotating its tensors): ins[i] for its inputs (formal, then
 * captured), outs[k] set for its outputs. Running out of memory sets c->oom. */
void dt_sym_subgraph(dt_symctx *c, ductile_network *g, const dt_symt *ins, dt_symt *outs);

/* Helpers. */
void dt_symt_unknown(dt_symt *t);
/* out = in's shape (no values). */
void dt_symt_copy_shape(dt_symt *out, const dt_symt *in);
/* Numpy broadcasting of n shapes into out; unknown rank when any rank is unknown. A dim of 1
 * gives way to the other; equal dims stay; x against min(x, C) is x (valid models only take
 * it when they are equal); other pairs are unknown. */
void dt_sym_broadcast(dt_symctx *c, const dt_symt *const *ins, int n, dt_symt *out);
/* A value known to be one constant: element i of t's values. */
bool dt_symt_const_at(const dt_symt *t, int i, int64_t *v);
/* The product of dims [from, to), or NULL. */
const dt_sd *dt_sym_product(dt_symctx *c, const dt_symt *t, int from, int to);
/* Normalizes an axis into [0, rank); false when out of range. */
bool dt_sym_axis(int64_t axis, int rank, int *out);
/* Axes from attribute "axes" (older opsets) or from the constant values of input idx. */
bool dt_sym_axes(const ductile_layer *L, const dt_symt *in, int idx, int64_t *axes, int *n);

#endif
