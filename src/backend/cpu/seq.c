/* Recurrent, signal and tensor-algebra ops: RNN, GRU, LSTM, DFT, STFT, windows, Einsum, OneHot:
 * CPU kernel table and the conversions the kernels share. */
#include "backend/cpu/seq_kernels.h"
#include "core/checked.h"
#include "backend/cpu/families.h"
#include "backend/cpu/elementwise_impl.h"
#include "core/status.h"

#include <stdlib.h>

void dt_seq_load_into(const dt_view *v, double *d)
{
    int64_t n = v->rank >= 0 && v->data ? dt_view_count(v) : 0;
    switch (v->dtype) {
    case DUCTILE_FLOAT32:
        for (int64_t i = 0; i < n; i++) d[i] = ((const float *)v->data)[i];
        break;
    case DUCTILE_FLOAT64:
        for (int64_t i = 0; i < n; i++) d[i] = ((const double *)v->data)[i];
        break;
    default:
        for (int64_t i = 0; i < n; i++) d[i] = dt_ew_get_f64(v, i);
        break;
    }
}

void dt_seq_store(dt_view *v, const double *s, int64_t n)
{
    void *p = v->data;
    switch (v->dtype) {
    case DUCTILE_FLOAT32: for (int64_t i = 0; i < n; i++) ((float *)p)[i] = (float)s[i]; break;
    case DUCTILE_FLOAT64: for (int64_t i = 0; i < n; i++) ((double *)p)[i] = s[i]; break;
    case DUCTILE_FLOAT16: for (int64_t i = 0; i < n; i++) ((uint16_t *)p)[i] = dt_float_to_half((float)s[i]); break;
    case DUCTILE_BFLOAT16: for (int64_t i = 0; i < n; i++) ((uint16_t *)p)[i] = dt_float_to_bf16((float)s[i]); break;
    case DUCTILE_INT8: for (int64_t i = 0; i < n; i++) ((int8_t *)p)[i] = (int8_t)s[i]; break;
    case DUCTILE_UINT8: for (int64_t i = 0; i < n; i++) ((uint8_t *)p)[i] = (uint8_t)s[i]; break;
    case DUCTILE_INT16: for (int64_t i = 0; i < n; i++) ((int16_t *)p)[i] = (int16_t)s[i]; break;
    case DUCTILE_UINT16: for (int64_t i = 0; i < n; i++) ((uint16_t *)p)[i] = (uint16_t)s[i]; break;
    case DUCTILE_INT32: for (int64_t i = 0; i < n; i++) ((int32_t *)p)[i] = (int32_t)s[i]; break;
    case DUCTILE_UINT32: for (int64_t i = 0; i < n; i++) ((uint32_t *)p)[i] = (uint32_t)s[i]; break;
    case DUCTILE_INT64: for (int64_t i = 0; i < n; i++) ((int64_t *)p)[i] = (int64_t)s[i]; break;
    case DUCTILE_UINT64: for (int64_t i = 0; i < n; i++) ((uint64_t *)p)[i] = (uint64_t)s[i]; break;
    case DUCTILE_BOOL: for (int64_t i = 0; i < n; i++) ((uint8_t *)p)[i] = s[i] != 0; break;
    default: break;
    }
}

double *dt_seq_take_load(double **cur, const dt_view *v)
{
    double *d = dt_seq_take(cur, dt_seq_n1(v));
    d[0] = 0;
    dt_seq_load_into(v, d);
    return d;
}

ductile_status dt_seq_scratch_bytes(const char *op, int64_t doubles, size_t *bytes)
{
    if (doubles < 0 || !dt_mul_size((size_t)doubles, sizeof(double), bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "%s: scratch of %lld doubles is too large", op, (long long)doubles);
    return DUCTILE_OK;
}

ductile_status dt_seq_scratch(const char *op, const dt_exec *ex, int64_t doubles, double **cur)
{
    size_t need = 0;
    DT_TRY(dt_seq_scratch_bytes(op, doubles, &need));
    if (!ex->scratch || ex->scratch_bytes < need)
        return dt_fail(DUCTILE_ERR_INTERNAL, "%s: %zu bytes of scratch given, %zu needed", op, ex->scratch_bytes, need);
    *cur = ex->scratch;
    return DUCTILE_OK;
}

const dt_cpu_kernel dt_cpu_seq[] = {
    {"RNN", NULL, &dt_cpu_seq_rnn_kernel},
    {"GRU", NULL, &dt_cpu_seq_rnn_kernel},
    {"LSTM", NULL, &dt_cpu_seq_rnn_kernel},
    {"DFT", NULL, &dt_cpu_seq_dft_kernel},
    {"STFT", NULL, &dt_cpu_seq_stft_kernel},
    {"HannWindow", NULL, &dt_cpu_seq_window_kernel},
    {"HammingWindow", NULL, &dt_cpu_seq_window_kernel},
    {"BlackmanWindow", NULL, &dt_cpu_seq_window_kernel},
    {"MelWeightMatrix", NULL, &dt_cpu_seq_mel_kernel},
    {"Einsum", NULL, &dt_cpu_seq_einsum_kernel},
    {"OneHot", NULL, &dt_cpu_seq_onehot_kernel},
    {"Det", NULL, &dt_cpu_seq_det_kernel},
    {"TensorScatter", NULL, &dt_cpu_seq_tscatter_kernel},
    {"SwiGLU", NULL, &dt_cpu_seq_swiglu_kernel},
    {"RotaryEmbedding", NULL, &dt_cpu_seq_rope_kernel},
    {"LinearAttention", NULL, &dt_cpu_seq_linattn_kernel},
    {"CausalConvWithState", NULL, &dt_cpu_seq_cconv_kernel},
    {"TfIdfVectorizer", NULL, &dt_cpu_seq_tfidf_kernel},
    {"Adagrad", NULL, &dt_cpu_seq_train_kernel},
    {"Momentum", NULL, &dt_cpu_seq_train_kernel},
    {"Adam", NULL, &dt_cpu_seq_train_kernel},
    {NULL, NULL, NULL},
};
