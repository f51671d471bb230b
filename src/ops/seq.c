/* Recurrent, signal and tensor-algebra ops: RNN, GRU, LSTM, DFT, STFT, windows, Einsum, OneHot:
 * the family's table and the checks its ops share. */
#include "ops/seq.h"
#include "ops/families.h"
#include "core/status.h"

#include <string.h>

ductile_status dt_seq_want_float(const dt_view *in, int i, const char *what)
{
    int t = in[i].dtype;
    if (t != DUCTILE_FLOAT32 && t != DUCTILE_FLOAT64 && t != DUCTILE_FLOAT16 && t != DUCTILE_BFLOAT16)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "input %d (%s) has dtype %s; supported: float32, float64, float16, bfloat16", i,
                       what, ductile_dtype_name((ductile_dtype)t));
    return DUCTILE_OK;
}

ductile_status dt_seq_want_int(const dt_view *in, int i, const char *what)
{
    if (in[i].dtype != DUCTILE_INT32 && in[i].dtype != DUCTILE_INT64)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input %d (%s) has dtype %s; expected int32 or int64", i,
                       what, ductile_dtype_name((ductile_dtype)in[i].dtype));
    return DUCTILE_OK;
}

bool dt_seq_given(const ductile_layer *L, const dt_view *in, int i)
{
    return i < L->n_in && L->in[i] && in[i].rank >= 0;
}

ductile_status dt_seq_scalar(const ductile_layer *L, const dt_view *in, int i, const char *what,
                             int64_t *v)
{
    const dt_view *x = &in[i];
    if (dt_view_count(x) != 1)
        return dt_fail(DUCTILE_ERR_SHAPE, "input %d (%s) has %lld elements; expected one", i, what,
                       (long long)dt_view_count(x));
    if (!x->data)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the output shape depends on the data of input %d ('%s')",
                       i, L->in[i] ? L->in[i]->name : what);
    switch (x->dtype) {
    case DUCTILE_INT64: *v = *(const int64_t *)x->data; break;
    case DUCTILE_INT32: *v = *(const int32_t *)x->data; break;
    case DUCTILE_INT16: *v = *(const int16_t *)x->data; break;
    case DUCTILE_INT8: *v = *(const int8_t *)x->data; break;
    case DUCTILE_UINT8: *v = *(const uint8_t *)x->data; break;
    case DUCTILE_UINT16: *v = *(const uint16_t *)x->data; break;
    case DUCTILE_UINT32: *v = *(const uint32_t *)x->data; break;
    case DUCTILE_UINT64: *v = (int64_t)*(const uint64_t *)x->data; break;
    case DUCTILE_FLOAT32: {
        float f = *(const float *)x->data;
        if (!(f > -9e18f && f < 9e18f)) return dt_fail(DUCTILE_ERR_SHAPE, "input %d (%s) is not finite", i, what);
        *v = (int64_t)f;
        break;
    }
    case DUCTILE_FLOAT64: {
        double f = *(const double *)x->data;
        if (!(f > -9e18 && f < 9e18)) return dt_fail(DUCTILE_ERR_SHAPE, "input %d (%s) is not finite", i, what);
        *v = (int64_t)f;
        break;
    }
    default:
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input %d (%s) has dtype %s; expected an integer or float",
                       i, what, ductile_dtype_name((ductile_dtype)x->dtype));
    }
    return DUCTILE_OK;
}

ductile_status dt_seq_out_dtype(const ductile_layer *L, int *dtype)
{
    int64_t t = dt_attr_int(L, "output_datatype", DUCTILE_FLOAT32);
    switch (t) {
    case DUCTILE_FLOAT32: case DUCTILE_FLOAT64: case DUCTILE_FLOAT16: case DUCTILE_BFLOAT16:
    case DUCTILE_INT8: case DUCTILE_UINT8: case DUCTILE_INT16: case DUCTILE_UINT16:
    case DUCTILE_INT32: case DUCTILE_UINT32: case DUCTILE_INT64: case DUCTILE_UINT64:
        *dtype = (int)t;
        return DUCTILE_OK;
    default:
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'output_datatype' = %lld is not supported (supported: float and integer types)",
                       (long long)t);
    }
}

const dt_opdef dt_ops_seq[] = {
    {"RNN", dt_seq_check_rnn, dt_seq_infer_rnn, 0},
    {"GRU", dt_seq_check_rnn, dt_seq_infer_rnn, 0},
    {"LSTM", dt_seq_check_rnn, dt_seq_infer_rnn, 0},
    /* dft_length (1) and, from opset 20, axis (2) decide the output shape. */
    {"DFT", dt_seq_check_dft, dt_seq_infer_dft, (1u << 1) | (1u << 2)},
    {"STFT", dt_seq_check_stft, dt_seq_infer_stft, (1u << 1) | (1u << 3)},
    {"HannWindow", dt_seq_check_window, dt_seq_infer_window, 1u << 0},
    {"HammingWindow", dt_seq_check_window, dt_seq_infer_window, 1u << 0},
    {"BlackmanWindow", dt_seq_check_window, dt_seq_infer_window, 1u << 0},
    {"MelWeightMatrix", dt_seq_check_mel, dt_seq_infer_mel, (1u << 0) | (1u << 1)},
    {"Einsum", dt_seq_check_einsum, dt_seq_infer_einsum, 0},
    {"OneHot", dt_seq_check_onehot, dt_seq_infer_onehot, 1u << 1},
    {"Det", dt_seq_check_det, dt_seq_infer_det, 0},
    {"TensorScatter", dt_seq_check_tscatter, dt_seq_infer_tscatter, 0},
    {"SwiGLU", dt_seq_check_swiglu, dt_seq_infer_swiglu, 0},
    {"RotaryEmbedding", dt_seq_check_rope, dt_seq_infer_rope, 0},
    {"LinearAttention", dt_seq_check_linattn, dt_seq_infer_linattn, 0},
    {"CausalConvWithState", dt_seq_check_cconv, dt_seq_infer_cconv, 0},
    {"TfIdfVectorizer", dt_seq_check_tfidf, dt_seq_infer_tfidf, 0},
    /* domain ai.onnx.preview.training (the importer admits these three from it) */
    {"Adagrad", dt_seq_check_train, dt_seq_infer_train, 0},
    {"Momentum", dt_seq_check_train, dt_seq_infer_train, 0},
    {"Adam", dt_seq_check_train, dt_seq_infer_train, 0},
    {NULL, NULL, NULL, 0},
};
