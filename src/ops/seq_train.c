/* The optimizers of ONNX's training domain (ai.onnx.preview.training, opset 1): Adagrad,
 * Momentum and Adam update n tensors at once: inputs R (learning rate, a float scalar), T (the
 * step, an int64 scalar), then n X, n G and the n optimizer states of each kind (Adagrad: H;
 * Momentum: V; Adam: V, H); outputs the n new X, then the new states. Float32 tensors. */
#include "ops/seq.h"
#include "core/status.h"

#include <string.h>

static bool dt_is_scalar_view(const dt_view *v)
{
    return v->rank <= 1 && dt_view_count(v) == 1;
}

int dt_train_states(const char *op_type)
{
    return !strcmp(op_type, "Adam") ? 2 : 1;
}

ductile_status dt_train_layout(const ductile_layer *L, int *n)
{
    int k = 2 + dt_train_states(L->op_type); /* X, G and the states */
    int rest = L->n_in - 2;
    if (rest < k || rest % k != 0)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "expected 2 + %d*n inputs (R, T and n each of X, G, %s; n >= 1), got %d",
                       k, k == 4 ? "V, H" : !strcmp(L->op_type, "Momentum") ? "V" : "H", L->n_in);
    *n = rest / k;
    if (L->n_out != *n * (k - 1))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "expected %d outputs (the new X and %s of each of the %d tensors), got %d",
                       *n * (k - 1), k == 4 ? "V and H" : "state", *n, L->n_out);
    return DUCTILE_OK;
}

ductile_status dt_seq_check_train(const ductile_layer *L)
{
    int n;
    DT_TRY(dt_train_layout(L, &n));
    if (!strcmp(L->op_type, "Momentum")) {
        const char *mode = dt_attr_string(L, "mode", "");
        if (strcmp(mode, "standard") != 0 && strcmp(mode, "nesterov") != 0)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'mode' = '%s'; expected 'standard' or 'nesterov'", mode);
    }
    return DUCTILE_OK;
}

ductile_status dt_seq_infer_train(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    int n;
    DT_TRY(dt_train_layout(L, &n));
    if (!dt_is_scalar_view(&in[0]) || (in[0].dtype != DUCTILE_FLOAT32 && in[0].dtype != DUCTILE_FLOAT64))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 0 (R) must be a float scalar");
    if (!dt_is_scalar_view(&in[1]) || in[1].dtype != DUCTILE_INT64)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 1 (T) must be an int64 scalar");
    int k = 2 + dt_train_states(L->op_type);
    for (int j = 0; j < n; j++) {
        const dt_view *x = &in[2 + j];
        for (int g = 0; g < k; g++) {
            const dt_view *v = &in[2 + g * n + j];
            DT_TRY(dt_want_float32(in, 2 + g * n + j, g == 0 ? "X" : g == 1 ? "G" : "state"));
            if (v->rank != x->rank || memcmp(v->dims, x->dims, sizeof(int64_t) * (size_t)x->rank) != 0) {
                char a[160], b[160];
                dt_format_dims(a, sizeof a, v->dims, v->rank, NULL);
                dt_format_dims(b, sizeof b, x->dims, x->rank, NULL);
                return dt_fail(DUCTILE_ERR_SHAPE, "input %d has shape %s; expected %s like input %d (X)", 2 + g * n + j, a, b,
                               2 + j);
            }
        }
        for (int g = 0; g < k - 1; g++) {
            out[g * n + j] = *x;
            out[g * n + j].data = NULL;
        }
    }
    return DUCTILE_OK;
}
