/* Ops of other domains than ai.onnx: op types are unique across these domains and the default
 * one, so op tables stay keyed by op type; the importer checks the node's domain here, and the
 * layer keeps its domain (engine files store it). */
#include "onnx/domains.h"

#include <stddef.h>
#include <string.h>

static const struct { const char *domain, *op_type; } dt_domain_ops[] = {
    /* The training domain's optimizers (one update step). */
    {"ai.onnx.preview.training", "Adagrad"},
    {"ai.onnx.preview.training", "Momentum"},
    {"ai.onnx.preview.training", "Adam"},
    /* Rewritten at import into ordinary ops (onnx/gradient.c): no layer has this type. */
    {"ai.onnx.preview.training", "Gradient"},
    /* The traditional-ML domain (ops/ml.c). */
    {"ai.onnx.ml", "Binarizer"},
    {"ai.onnx.ml", "ArrayFeatureExtractor"},
    {"ai.onnx.ml", "TreeEnsemble"},
    {"ai.onnx.ml", "LabelEncoder"},
    /* Preview ops (ops/nn_flex.c). */
    {"ai.onnx.preview", "FlexAttention"},
};

#define DT_N_DOMAIN_OPS (sizeof dt_domain_ops / sizeof dt_domain_ops[0])

const char *dt_onnx_op_domain(const char *op_type)
{
    for (size_t i = 0; i < DT_N_DOMAIN_OPS; i++)
        if (!strcmp(dt_domain_ops[i].op_type, op_type)) return dt_domain_ops[i].domain;
    return NULL;
}

bool dt_onnx_domain_known(const char *domain)
{
    for (size_t i = 0; i < DT_N_DOMAIN_OPS; i++)
        if (!strcmp(dt_domain_ops[i].domain, domain)) return true;
    return false;
}
