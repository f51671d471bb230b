/* The traditional-ML ops of domain ai.onnx.ml: Binarizer, ArrayFeatureExtractor (opset 1) and
 * TreeEnsemble (opset 5). The importer admits them from that domain only (onnx/domains.c). */
#ifndef DT_OPS_ML_H
#define DT_OPS_ML_H

#include "ops/op.h"

/* TreeEnsemble's node modes (attribute nodes_modes), aggregations and post-transforms, as
 * ONNX numbers them. */
enum { DT_TREE_LEQ, DT_TREE_LT, DT_TREE_GTE, DT_TREE_GT, DT_TREE_EQ, DT_TREE_NEQ, DT_TREE_MEMBER };
enum { DT_TREE_AVERAGE, DT_TREE_SUM, DT_TREE_MIN, DT_TREE_MAX };
enum { DT_TREE_POST_NONE, DT_TREE_POST_SOFTMAX, DT_TREE_POST_LOGISTIC };

/* A TreeEnsemble's attributes read and checked once (check and the kernel's prepare): counts
 * and per-node arrays (views of the layer's attributes, or NULL when absent). Node i's
 * children are node or leaf ids (trueleafs[i]/falseleafs[i] say which); every id and count is
 * checked against the arrays' lengths here, so a walk only has to guard against cycles. */
typedef struct dt_tree_attrs {
    int64_t n_nodes, n_leaves, n_trees, n_targets, n_members;
    int aggregate, post;
    const int64_t *featureids, *truenodeids, *falsenodeids, *trueleafs, *falseleafs, *roots;
    const int64_t *leaf_targetids, *missing_tracks_true;
    const ductile_tensor *modes, *splits, *leaf_weights, *members;
} dt_tree_attrs;

ductile_status dt_tree_attrs_read(const ductile_layer *L, dt_tree_attrs *t);
/* Element i of a float32 or float64 attribute tensor, as a double. */
double dt_tree_value(const ductile_tensor *t, int64_t i);

#endif
