/* Definitions of the ai.onnx.ml ops (see ml.h). */
#include "ops/ml.h"
#include "ops/families.h"
#include "core/status.h"

#include <math.h>
#include <string.h>

static bool dt_ml_float(int dtype) { return dtype == DUCTILE_FLOAT32 || dtype == DUCTILE_FLOAT64; }

/* ---- Binarizer: Y = X > threshold ? 1 : 0, in X's dtype ---- */

static ductile_status dt_ml_check_binarizer(const ductile_layer *L)
{
    if (L->opset < 1)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the model imports no opset of domain 'ai.onnx.ml'; expected 1");
    return dt_check_arity(L, 1, 1, 1, 1, DT_INPUT_NAMES("X"));
}

static ductile_status dt_ml_infer_binarizer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    int d = in[0].dtype;
    if (!dt_ml_float(d) && d != DUCTILE_INT32 && d != DUCTILE_INT64)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input 0 (X) is %s; expected float, double, int32 or int64",
                       ductile_dtype_name(d));
    out[0] = in[0];
    out[0].data = NULL;
    return DUCTILE_OK;
}

/* ---- ArrayFeatureExtractor: X's last axis gathered at the indices Y (any shape, flattened);
 * a 1-D X gives [1, n], as onnxruntime and ONNX's reference do ---- */

static ductile_status dt_ml_check_afe(const ductile_layer *L)
{
    if (L->opset < 1)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the model imports no opset of domain 'ai.onnx.ml'; expected 1");
    return dt_check_arity(L, 2, 2, 1, 1, DT_INPUT_NAMES("X", "Y"));
}

static ductile_status dt_ml_infer_afe(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    if (in[1].dtype != DUCTILE_INT64)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 1 (Y) is %s; expected int64 indices",
                       ductile_dtype_name(in[1].dtype));
    if (in[0].rank < 1)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (X) is a scalar; expected rank 1 or more");
    int64_t n = dt_view_count(&in[1]);
    out[0].dtype = in[0].dtype;
    out[0].data = NULL;
    if (in[0].rank == 1) {
        out[0].rank = 2;
        out[0].dims[0] = 1;
        out[0].dims[1] = n;
        return DUCTILE_OK;
    }
    out[0].rank = in[0].rank;
    memcpy(out[0].dims, in[0].dims, sizeof(int64_t) * (size_t)in[0].rank);
    out[0].dims[in[0].rank - 1] = n;
    return DUCTILE_OK;
}

/* ---- TreeEnsemble ---- */

double dt_tree_value(const ductile_tensor *t, int64_t i)
{
    return t->dtype == DUCTILE_FLOAT64 ? ((const double *)t->data)[i] : (double)((const float *)t->data)[i];
}

/* An INTS attribute of n values (n < 0: any count, set into *n); NULL *v when absent and
 * optional. */
static ductile_status dt_tree_ints(const ductile_layer *L, const char *name, bool required, int64_t *n,
                                   const int64_t **v)
{
    int64_t k;
    *v = dt_attr_ints(L, name, &k);
    if (!*v && !required) return DUCTILE_OK;
    if (!*v) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute '%s' is required", name);
    if (*n >= 0 && k != *n)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute '%s' has %lld values; expected %lld (one per %s)", name,
                       (long long)k, (long long)*n, strncmp(name, "leaf", 4) ? "node" : "leaf");
    *n = k;
    return DUCTILE_OK;
}

/* A TENSOR attribute of n elements (n < 0: any, set into *n) of a float dtype (float_only) or
 * uint8 (modes). */
static ductile_status dt_tree_tensor(const ductile_layer *L, const char *name, bool required, int want,
                                     int64_t *n, const ductile_tensor **t)
{
    const dt_attr *a = dt_attr_find(L, name);
    *t = NULL;
    if (!a && !required) return DUCTILE_OK;
    if (!a || a->type != DT_ATTR_TENSOR || !a->t || !a->t->data)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute '%s' is required (a tensor)", name);
    const ductile_tensor *v = a->t;
    bool ok = want == DUCTILE_UINT8 ? v->dtype == DUCTILE_UINT8 : dt_ml_float(v->dtype);
    if (!ok)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute '%s' is a %s tensor; expected %s", name,
                       ductile_dtype_name(v->dtype), want == DUCTILE_UINT8 ? "uint8" : "float or double");
    int64_t k = dt_tensor_count(v);
    if (*n >= 0 && k != *n)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute '%s' has %lld values; expected %lld (one per %s)", name,
                       (long long)k, (long long)*n, strncmp(name, "leaf", 4) ? "node" : "leaf");
    *n = k;
    *t = v;
    return DUCTILE_OK;
}

/* Child c (true or false branch) of node i names an existing node or leaf. */
static ductile_status dt_tree_child(const dt_tree_attrs *t, int64_t i, bool branch)
{
    int64_t id = branch ? t->truenodeids[i] : t->falsenodeids[i];
    bool leaf = (branch ? t->trueleafs[i] : t->falseleafs[i]) != 0;
    int64_t lim = leaf ? t->n_leaves : t->n_nodes;
    if (id < 0 || id >= lim)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'nodes_%snodeids'[%lld] = %lld is out of range: "
                       "expected a %s id in [0, %lld)", branch ? "true" : "false", (long long)i, (long long)id,
                       leaf ? "leaf" : "node", (long long)lim);
    return DUCTILE_OK;
}

ductile_status dt_tree_attrs_read(const ductile_layer *L, dt_tree_attrs *t)
{
    memset(t, 0, sizeof *t);
    if (L->opset < 5)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "TreeEnsemble is defined from opset 5 of domain 'ai.onnx.ml'; the "
                       "model imports %d", L->opset);
    t->n_nodes = -1;
    DT_TRY(dt_tree_ints(L, "nodes_featureids", true, &t->n_nodes, &t->featureids));
    if (t->n_nodes < 1) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'nodes_featureids' is empty; expected one per node");
    DT_TRY(dt_tree_ints(L, "nodes_truenodeids", true, &t->n_nodes, &t->truenodeids));
    DT_TRY(dt_tree_ints(L, "nodes_falsenodeids", true, &t->n_nodes, &t->falsenodeids));
    DT_TRY(dt_tree_ints(L, "nodes_trueleafs", true, &t->n_nodes, &t->trueleafs));
    DT_TRY(dt_tree_ints(L, "nodes_falseleafs", true, &t->n_nodes, &t->falseleafs));
    DT_TRY(dt_tree_ints(L, "nodes_missing_value_tracks_true", false, &t->n_nodes, &t->missing_tracks_true));
    DT_TRY(dt_tree_tensor(L, "nodes_modes", true, DUCTILE_UINT8, &t->n_nodes, &t->modes));
    DT_TRY(dt_tree_tensor(L, "nodes_splits", true, DUCTILE_FLOAT32, &t->n_nodes, &t->splits));
    t->n_leaves = -1;
    DT_TRY(dt_tree_ints(L, "leaf_targetids", true, &t->n_leaves, &t->leaf_targetids));
    DT_TRY(dt_tree_tensor(L, "leaf_weights", true, DUCTILE_FLOAT32, &t->n_leaves, &t->leaf_weights));
    t->n_trees = -1;
    DT_TRY(dt_tree_ints(L, "tree_roots", true, &t->n_trees, &t->roots));
    if (t->n_trees < 1) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'tree_roots' is empty; expected one per tree");
    t->n_members = -1;
    DT_TRY(dt_tree_tensor(L, "membership_values", false, DUCTILE_FLOAT32, &t->n_members, &t->members));
    if (!t->members) t->n_members = 0;
    t->n_targets = dt_attr_int(L, "n_targets", 0);
    if (t->n_targets < 1 || t->n_targets > ((int64_t)1 << 31))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'n_targets' = %lld; expected 1 or more",
                       (long long)t->n_targets);
    int64_t agg = dt_attr_int(L, "aggregate_function", DT_TREE_SUM);
    if (agg < DT_TREE_AVERAGE || agg > DT_TREE_MAX)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'aggregate_function' = %lld; expected 0 (AVERAGE), "
                       "1 (SUM), 2 (MIN) or 3 (MAX)", (long long)agg);
    t->aggregate = (int)agg;
    int64_t post = dt_attr_int(L, "post_transform", DT_TREE_POST_NONE);
    if (post == 3 || post == 4)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'post_transform' = %lld (%s) is not supported by ductile "
                       "(NONE, SOFTMAX and LOGISTIC are)", (long long)post, post == 3 ? "SOFTMAX_ZERO" : "PROBIT");
    if (post < DT_TREE_POST_NONE || post > DT_TREE_POST_LOGISTIC)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'post_transform' = %lld; expected 0 to 4",
                       (long long)post);
    t->post = (int)post;
    /* Ids in range; set members: one NaN-terminated run per MEMBER node, in node order. */
    const uint8_t *modes = t->modes->data;
    int64_t member_nodes = 0, nans = 0;
    for (int64_t i = 0; i < t->n_nodes; i++) {
        if (modes[i] > DT_TREE_MEMBER)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'nodes_modes'[%lld] = %d; expected 0 (BRANCH_LEQ) "
                           "to 6 (BRANCH_MEMBER)", (long long)i, modes[i]);
        member_nodes += modes[i] == DT_TREE_MEMBER;
        if (t->featureids[i] < 0 || t->featureids[i] >= ((int64_t)1 << 31))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'nodes_featureids'[%lld] = %lld; expected 0 to 2^31 - 1",
                           (long long)i, (long long)t->featureids[i]);
        DT_TRY(dt_tree_child(t, i, true));
        DT_TRY(dt_tree_child(t, i, false));
    }
    for (int64_t k = 0; k < t->n_members; k++) nans += isnan(dt_tree_value(t->members, k));
    if (nans != member_nodes)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'membership_values' holds %lld sets (NaN-terminated); "
                       "expected %lld, one per BRANCH_MEMBER node", (long long)nans, (long long)member_nodes);
    for (int64_t k = 0; k < t->n_trees; k++)
        if (t->roots[k] < 0 || t->roots[k] >= t->n_nodes)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'tree_roots'[%lld] = %lld is out of range: "
                           "expected a node id in [0, %lld)", (long long)k, (long long)t->roots[k],
                           (long long)t->n_nodes);
    for (int64_t k = 0; k < t->n_leaves; k++)
        if (t->leaf_targetids[k] < 0 || t->leaf_targetids[k] >= t->n_targets)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'leaf_targetids'[%lld] = %lld is out of range: "
                           "expected [0, %lld) (n_targets)", (long long)k, (long long)t->leaf_targetids[k],
                           (long long)t->n_targets);
    return DUCTILE_OK;
}

static ductile_status dt_ml_check_tree(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 1, 1, 1, 1, DT_INPUT_NAMES("X")));
    dt_tree_attrs t;
    return dt_tree_attrs_read(L, &t);
}

static ductile_status dt_ml_infer_tree(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    dt_tree_attrs t;
    DT_TRY(dt_tree_attrs_read(L, &t));
    if (!dt_ml_float(in[0].dtype))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input 0 (X) is %s; expected float or double",
                       ductile_dtype_name(in[0].dtype));
    if (in[0].rank != 2)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (X) has rank %d; expected 2 ([N, features])", in[0].rank);
    out[0].dtype = in[0].dtype;
    out[0].rank = 2;
    out[0].dims[0] = in[0].dims[0];
    out[0].dims[1] = t.n_targets;
    out[0].data = NULL;
    return DUCTILE_OK;
}

const dt_opdef dt_ops_ml[] = {
    {"Binarizer", dt_ml_check_binarizer, dt_ml_infer_binarizer, 0},
    {"ArrayFeatureExtractor", dt_ml_check_afe, dt_ml_infer_afe, 0},
    {"TreeEnsemble", dt_ml_check_tree, dt_ml_infer_tree, 0},
    {NULL, NULL, NULL, 0},
};
