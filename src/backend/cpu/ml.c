/* The ai.onnx.ml kernels (ops/ml.h): Binarizer, ArrayFeatureExtractor, TreeEnsemble. Trees run
 * in double whatever X's dtype (splits and weights are exact in double; the sum is rounded
 * once into Y). */
#include "backend/cpu/families.h"
#include "core/alloc.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "ops/ml.h"

#include <math.h>
#include <string.h>

/* ---- Binarizer ---- */

static ductile_status dt_ml_binarizer_prepare(const ductile_layer *L, void **out)
{
    float th = dt_attr_float(L, "threshold", 0.0f);
    return dt_cpu_params_copy(&th, sizeof th, L, out);
}

static ductile_status dt_ml_binarizer_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    /* The threshold is a float attribute; X's values compare with it in double, so an integer
     * X above 2^24 compares exactly. */
    double th = *(const float *)params;
    int64_t n = dt_view_count(&in[0]);
    switch (in[0].dtype) {
    case DUCTILE_FLOAT32: {
        const float *x = in[0].data;
        float *y = out[0].data;
        for (int64_t i = 0; i < n; i++) y[i] = (double)x[i] > th ? 1.0f : 0.0f;
        return DUCTILE_OK;
    }
    case DUCTILE_FLOAT64: {
        const double *x = in[0].data;
        double *y = out[0].data;
        for (int64_t i = 0; i < n; i++) y[i] = x[i] > th ? 1.0 : 0.0;
        return DUCTILE_OK;
    }
    case DUCTILE_INT32: {
        const int32_t *x = in[0].data;
        int32_t *y = out[0].data;
        for (int64_t i = 0; i < n; i++) y[i] = (double)x[i] > th;
        return DUCTILE_OK;
    }
    case DUCTILE_INT64: {
        const int64_t *x = in[0].data;
        int64_t *y = out[0].data;
        for (int64_t i = 0; i < n; i++) y[i] = (double)x[i] > th;
        return DUCTILE_OK;
    }
    default:
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input 0 (X) is %s; expected float, double, int32 or int64",
                       ductile_dtype_name(in[0].dtype));
    }
}

static const dt_kernel dt_cpu_ml_binarizer_kernel = {.prepare = dt_ml_binarizer_prepare, .run = dt_ml_binarizer_run};

/* ---- ArrayFeatureExtractor ---- */

static ductile_status dt_ml_afe_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)params, (void)ex;
    const dt_view *x = &in[0];
    int64_t f = x->dims[x->rank - 1], n = dt_view_count(&in[1]);
    int64_t rows = f ? dt_view_count(x) / f : 0;
    const int64_t *idx = in[1].data;
    for (int64_t k = 0; k < n; k++)
        if (idx[k] < 0 || idx[k] >= f)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 1 (Y)[%lld] = %lld is out of range: expected an "
                           "index into the last dim of X, [0, %lld)", (long long)k, (long long)idx[k], (long long)f);
    if (x->rank == 1) rows = 1;
    size_t es = ductile_dtype_size(x->dtype);
    const char *src = x->data;
    char *dst = out[0].data;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < n; k++)
            memcpy(dst + (size_t)(r * n + k) * es, src + (size_t)(r * f + idx[k]) * es, es);
    return DUCTILE_OK;
}

static const dt_kernel dt_cpu_ml_afe_kernel = {.run = dt_ml_afe_run};

/* ---- TreeEnsemble ---- */

/* A node's child: >= 0 a node id, < 0 the leaf -(id + 1). */
typedef struct {
    double split;
    int64_t feature, child[2];    /* [0] false branch, [1] true branch */
    int64_t m0, m1;               /* MEMBER: its set is members[m0, m1) */
    uint8_t mode, missing_true;
} dt_tree_node;

typedef struct {
    int64_t n_nodes, n_leaves, n_trees, n_targets, max_feature;
    int aggregate, post;
    /* Offsets in bytes from the start of this block. */
    size_t nodes, leaf_w, leaf_t, roots, members;
} dt_tree_params;

#define DT_AT(p, off, T) ((T *)((char *)(p) + (p)->off))

static size_t dt_tree_align(size_t n) { return (n + 15) & ~(size_t)15; }

static ductile_status dt_ml_tree_prepare(const ductile_layer *L, void **out)
{
    dt_tree_attrs a;
    DT_TRY(dt_tree_attrs_read(L, &a));
    /* Every count is below the attribute's element count, which fits in memory already. */
    size_t off = dt_tree_align(sizeof(dt_tree_params));
    dt_tree_params h = {.n_nodes = a.n_nodes, .n_leaves = a.n_leaves, .n_trees = a.n_trees,
                        .n_targets = a.n_targets, .aggregate = a.aggregate, .post = a.post};
    h.nodes = off, off += dt_tree_align((size_t)a.n_nodes * sizeof(dt_tree_node));
    h.leaf_w = off, off += dt_tree_align((size_t)a.n_leaves * sizeof(double));
    h.leaf_t = off, off += dt_tree_align((size_t)a.n_leaves * sizeof(int64_t));
    h.roots = off, off += dt_tree_align((size_t)a.n_trees * sizeof(int64_t));
    h.members = off, off += dt_tree_align((size_t)a.n_members * sizeof(double));
    dt_tree_params *p = dt_malloc(off);
    if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes) for the trees", off);
    *p = h;
    dt_tree_node *nodes = DT_AT(p, nodes, dt_tree_node);
    const uint8_t *modes = a.modes->data;
    int64_t m = 0;
    p->max_feature = 0;
    for (int64_t i = 0; i < a.n_nodes; i++) {
        dt_tree_node *nd = &nodes[i];
        nd->split = dt_tree_value(a.splits, i);
        nd->feature = a.featureids[i];
        if (nd->feature > p->max_feature) p->max_feature = nd->feature;
        nd->child[1] = a.trueleafs[i] ? -(a.truenodeids[i] + 1) : a.truenodeids[i];
        nd->child[0] = a.falseleafs[i] ? -(a.falsenodeids[i] + 1) : a.falsenodeids[i];
        nd->mode = modes[i];
        nd->missing_true = a.missing_tracks_true && a.missing_tracks_true[i];
        nd->m0 = nd->m1 = 0;
        if (nd->mode == DT_TREE_MEMBER) {
            nd->m0 = m;
            while (!isnan(dt_tree_value(a.members, m))) m++;  /* checked: a NaN ends each set */
            nd->m1 = m++;
        }
    }
    double *members = DT_AT(p, members, double);
    for (int64_t k = 0; k < a.n_members; k++) members[k] = dt_tree_value(a.members, k);
    double *lw = DT_AT(p, leaf_w, double);
    int64_t *lt = DT_AT(p, leaf_t, int64_t);
    for (int64_t k = 0; k < a.n_leaves; k++) lw[k] = dt_tree_value(a.leaf_weights, k), lt[k] = a.leaf_targetids[k];
    memcpy(DT_AT(p, roots, int64_t), a.roots, (size_t)a.n_trees * sizeof(int64_t));
    *out = p;
    return DUCTILE_OK;
}

static bool dt_tree_goes_true(const dt_tree_params *p, const dt_tree_node *nd, double v)
{
    if (isnan(v) && nd->missing_true) return true;
    switch (nd->mode) {
    case DT_TREE_LEQ: return v <= nd->split;
    case DT_TREE_LT: return v < nd->split;
    case DT_TREE_GTE: return v >= nd->split;
    case DT_TREE_GT: return v > nd->split;
    case DT_TREE_EQ: return v == nd->split;
    case DT_TREE_NEQ: return v != nd->split;
    default: {
        const double *mem = DT_AT(p, members, const double);
        for (int64_t k = nd->m0; k < nd->m1; k++)
            if (mem[k] == v) return true;
        return false;
    }
    }
}

/* Row r of X (f features, as doubles) through every tree into acc (n_targets); hit
 * (n_targets) is scratch. A target no leaf reaches is 0 under every aggregation, as in
 * onnxruntime (ONNX's reference leaves MIN and MAX at the type's largest and smallest value,
 * its starting point, which the spec does not define). */
static ductile_status dt_tree_row(const dt_tree_params *p, const double *x, double *acc, double *hit)
{
    const dt_tree_node *nodes = DT_AT(p, nodes, const dt_tree_node);
    const int64_t *roots = DT_AT(p, roots, const int64_t), *lt = DT_AT(p, leaf_t, const int64_t);
    const double *lw = DT_AT(p, leaf_w, const double);
    for (int64_t t = 0; t < p->n_targets; t++) acc[t] = 0.0, hit[t] = 0.0;
    for (int64_t k = 0; k < p->n_trees; k++) {
        int64_t id = roots[k], steps = 0;
        while (id >= 0) {
            /* A path longer than the node count loops: the model's ids form a cycle. */
            if (++steps > p->n_nodes)
                return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "tree %lld (root node %lld) has a cycle: its node ids "
                               "never reach a leaf", (long long)k, (long long)roots[k]);
            const dt_tree_node *nd = &nodes[id];
            id = nd->child[dt_tree_goes_true(p, nd, x[nd->feature])];
        }
        int64_t leaf = -id - 1, t = lt[leaf];
        double w = lw[leaf];
        switch (p->aggregate) {
        case DT_TREE_AVERAGE: acc[t] += w / (double)p->n_trees; break;
        case DT_TREE_SUM: acc[t] += w; break;
        case DT_TREE_MIN: acc[t] = hit[t] == 0.0 || w < acc[t] ? w : acc[t]; break;
        default: acc[t] = hit[t] == 0.0 || w > acc[t] ? w : acc[t]; break;
        }
        hit[t] = 1.0;
    }
    if (p->post == DT_TREE_POST_LOGISTIC) {
        for (int64_t t = 0; t < p->n_targets; t++) acc[t] = 1.0 / (1.0 + exp(-acc[t]));
    } else if (p->post == DT_TREE_POST_SOFTMAX) {
        double mx = -HUGE_VAL, sum = 0.0;
        for (int64_t t = 0; t < p->n_targets; t++) mx = acc[t] > mx ? acc[t] : mx;
        for (int64_t t = 0; t < p->n_targets; t++) sum += acc[t] = exp(acc[t] - mx);
        for (int64_t t = 0; t < p->n_targets; t++) acc[t] /= sum;
    }
    return DUCTILE_OK;
}

static ductile_status dt_ml_tree_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                         size_t *bytes)
{
    (void)in, (void)out, (void)threads;
    const dt_tree_params *p = params;
    *bytes = (size_t)(p->max_feature + 1 + 2 * p->n_targets) * sizeof(double);
    return DUCTILE_OK;
}

static ductile_status dt_ml_tree_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_tree_params *p = params;
    int64_t n = in[0].dims[0], f = in[0].dims[1];
    if (p->max_feature >= f)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (X) has %lld features (dim 1); the trees read feature %lld",
                       (long long)f, (long long)p->max_feature);
    size_t need = (size_t)(p->max_feature + 1 + 2 * p->n_targets) * sizeof(double);
    if (!ex->scratch || ex->scratch_bytes < need)
        return dt_fail(DUCTILE_ERR_INTERNAL, "TreeEnsemble: %zu bytes of scratch given, %zu needed", ex->scratch_bytes, need);
    double *x = ex->scratch, *acc = x + p->max_feature + 1, *hit = acc + p->n_targets;
    bool dbl = in[0].dtype == DUCTILE_FLOAT64;
    for (int64_t r = 0; r < n; r++) {
        for (int64_t j = 0; j <= p->max_feature; j++)
            x[j] = dbl ? ((const double *)in[0].data)[r * f + j] : (double)((const float *)in[0].data)[r * f + j];
        DT_TRY(dt_tree_row(p, x, acc, hit));
        for (int64_t t = 0; t < p->n_targets; t++) {
            if (dbl) ((double *)out[0].data)[r * p->n_targets + t] = acc[t];
            else ((float *)out[0].data)[r * p->n_targets + t] = (float)acc[t];
        }
    }
    return DUCTILE_OK;
}

static const dt_kernel dt_cpu_ml_tree_kernel = {
    .prepare = dt_ml_tree_prepare, .scratch = dt_ml_tree_scratch, .run = dt_ml_tree_run,
};

const dt_cpu_kernel dt_cpu_ml[] = {
    {"Binarizer", NULL, &dt_cpu_ml_binarizer_kernel},
    {"ArrayFeatureExtractor", NULL, &dt_cpu_ml_afe_kernel},
    {"TreeEnsemble", NULL, &dt_cpu_ml_tree_kernel},
    {NULL, NULL, NULL},
};
