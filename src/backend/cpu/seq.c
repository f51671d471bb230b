/* Recurrent, signal and tensor-algebra ops: RNN, GRU, LSTM, DFT, STFT, windows, Einsum, OneHot:
 * CPU kernel table and the conversions the kernels share. */
#include "backend/cpu/seq_kernels.h"
#include "core/alloc.h"
#include "backend/cpu/families.h"
#include "backend/cpu/elementwise_impl.h"
#include "core/status.h"

#include <stdlib.h>

double *dt_seq_load(const dt_view *v)
{
    int64_t n = v->rank >= 0 && v->data ? dt_view_count(v) : 0;
    double *d = dt_calloc((size_t)(n > 0 ? n : 1), sizeof *d);
    if (!d) return NULL;
    dt_seq_load_into(v, d);
    return d;
}

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

ductile_status dt_seq_oom(const char *op)
{
    return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "%s: out of memory for working buffers", op);
}

const dt_cpu_kernel dt_cpu_seq[] = {
    {"RNN", NULL, &dt_cpu_seq_rnn_kernel},
    {"GRU", NULL, &dt_cpu_seq_rnn_kernel},
    {"LSTM", NULL, &dt_cpu_seq_rnn_kernel},
    {"DFT", dt_cpu_seq_dft, NULL},
    {"STFT", dt_cpu_seq_stft, NULL},
    {"HannWindow", dt_cpu_seq_window, NULL},
    {"HammingWindow", dt_cpu_seq_window, NULL},
    {"BlackmanWindow", dt_cpu_seq_window, NULL},
    {"MelWeightMatrix", dt_cpu_seq_mel, NULL},
    {"Einsum", dt_cpu_seq_einsum, NULL},
    {"OneHot", dt_cpu_seq_onehot, NULL},
    {"Det", dt_cpu_seq_det, NULL},
    {"TensorScatter", dt_cpu_seq_tscatter, NULL},
    {"SwiGLU", dt_cpu_seq_swiglu, NULL},
    {"RotaryEmbedding", dt_cpu_seq_rope, NULL},
    {"LinearAttention", dt_cpu_seq_linattn, NULL},
    {"CausalConvWithState", dt_cpu_seq_cconv, NULL},
    {NULL, NULL, NULL},
};
