/* Private to the fusion pass (fuse.c: driver, Conv, Gelu; fuse_transformer.c: FusedMatMul,
 * FusedAttention; fuse_qkv.c: packed projections; fuse_norm.c: sums into LayerNorm, the RMSNorm chain): the pass's view of the network and the matching helpers both use. */
#ifndef DT_BUILDER_FUSE_IMPL_H
#define DT_BUILDER_FUSE_IMPL_H

#include "graph/network.h"

#include <stdbool.h>

typedef struct dt_fuse {
    ductile_network *net;
    int *uses;          /* per tensor: how many layer inputs read it */
    ductile_layer **reader;  /* per tensor: the (last) layer reading it */
    ductile_layer **producer; /* per tensor: the layer writing it (set here, not trusted from the tensor) */
    bool *dead;         /* per layer: absorbed into a fused layer */
} dt_fuse;

/* t feeds exactly one layer and is an intermediate: that layer, else NULL. */
ductile_layer *dt_fuse_sole_reader(const dt_fuse *f, const ductile_tensor *t);
/* The layer of op `op` (domain "") that alone reads t, with t among its inputs, else NULL. */
ductile_layer *dt_fuse_sole_op(const dt_fuse *f, ductile_tensor *t, const char *op, int n_in);
/* Equal shapes as far as the declared/inferred dims prove it. */
bool dt_fuse_same_shape(const ductile_tensor *a, const ductile_tensor *b);
/* float32, or no dtype yet (an activation before the engine's shape pass). */
bool dt_fuse_is_float(const ductile_tensor *t);
/* A scalar float32 constant input i of L, or the default when omitted or empty. */
bool dt_fuse_const_scalar(const ductile_layer *L, int i, float dflt, float *v);
/* The input of a two-input L other than t, or NULL where both are t. */
ductile_tensor *dt_fuse_other_in(const ductile_layer *L, const ductile_tensor *t);
/* Marks L (may be NULL) absorbed. */
void dt_fuse_kill(dt_fuse *f, ductile_layer *L);
/* The fused layer C runs where the last absorbed layer ran. */
void dt_fuse_move_to_last(dt_fuse *f, ductile_layer *C, ductile_layer *last);

/* A FusedConv's activation as a fused layer's attributes names[0] (the name), names[1] and
 * names[2] (p0, p1: Clip's min and max, else HardSigmoid's / HardSwish's alpha and beta). */
void dt_fuse_act_attrs(const ductile_layer *C, const char *names[3], dt_attr out[3]);

/* fuse_transformer.c: the rewrites, each a no-op where its pattern does not match exactly. */
/* An activation reading t: t's only reader (Relu, Sigmoid, HardSigmoid, HardSwish, Clip), or
 * x * HardSigmoid(x) / x * Sigmoid(x) (HardSwish, Silu: t read by the gate and the Mul). */
typedef struct dt_act_match {
    const char *name;
    float p0, p1;
    ductile_layer *layers[2];   /* absorbed layers, in order; [1] may be NULL */
    ductile_tensor *out;        /* the activation's output */
} dt_act_match;
bool dt_fuse_match_act(const dt_fuse *f, ductile_tensor *t, dt_act_match *m);

ductile_status dt_fuse_matmul(dt_fuse *f, ductile_layer *Mm);
ductile_status dt_fuse_attention(dt_fuse *f, ductile_layer *Sm);
/* fuse_qkv.c: the three projections of a bshd FusedAttention into one FusedMatMul, the
 * attention made layout bshd_qkv. */
ductile_status dt_fuse_qkv(dt_fuse *f, ductile_layer *Fa);
/* fuse_norm.c: Add [-> Add] -> LayerNormalization into FusedLayerNorm. */
ductile_status dt_fuse_layernorm(dt_fuse *f, ductile_layer *Ln);
/* fuse_matmul_norm.c: FusedMatMul -> LayerNormalization (last axis) into FusedMatMul norm = 1. */
ductile_status dt_fuse_matmul_layernorm(dt_fuse *f, ductile_layer *Ln);
/* fuse_norm.c: Llama's seven-op RMSNorm (Pow, ReduceMean, Add, Sqrt, Reciprocal, Mul, Mul) as
 * one RMSNormalization, P the Pow. */
ductile_status dt_fuse_rmsnorm(dt_fuse *f, ductile_layer *P);
/* fuse_rotary.c: rotate_half's rotary embedding (Slice, Slice, Neg, Concat, Mul, Mul, Add) as
 * one FusedRotary, C the Concat. */
ductile_status dt_fuse_rotary(dt_fuse *f, ductile_layer *C);
/* fuse_irb.c: FusedConv 1x1 -> depthwise [-> 1x1] into FusedInvertedResidual. */
ductile_status dt_fuse_irb(dt_fuse *f, ductile_layer *E);
/* fuse_irb.c: FusedConv depthwise -> 1x1 (no expand) into FusedInvertedResidual without We. */
ductile_status dt_fuse_irb_dw(dt_fuse *f, ductile_layer *D);
/* fuse_se_pool.c: GlobalAveragePool -> FusedConv 1x1 -> FusedConv 1x1 into FusedSqueezeExcite. */
ductile_status dt_fuse_se_pool(dt_fuse *f, ductile_layer *G);
/* fuse_se.c: Mul(X, channel scale S) -> FusedConv 1x1 into the FusedConv's input S. */
ductile_status dt_fuse_se(dt_fuse *f, ductile_layer *C);
/* fuse_pool.c: GlobalAveragePool of a FusedConv's or FusedInvertedResidual's output into
 * that layer's second output. */
ductile_status dt_fuse_pool(dt_fuse *f, ductile_layer *G);

#endif
