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
    return d;
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
    {"RNN", dt_cpu_seq_rnn},
    {"GRU", dt_cpu_seq_rnn},
    {"LSTM", dt_cpu_seq_rnn},
    {"DFT", dt_cpu_seq_dft},
    {"STFT", dt_cpu_seq_stft},
    {"HannWindow", dt_cpu_seq_window},
    {"HammingWindow", dt_cpu_seq_window},
    {"BlackmanWindow", dt_cpu_seq_window},
    {"MelWeightMatrix", dt_cpu_seq_mel},
    {"Einsum", dt_cpu_seq_einsum},
    {"OneHot", dt_cpu_seq_onehot},
    {"Det", dt_cpu_seq_det},
    {"TensorScatter", dt_cpu_seq_tscatter},
    {"SwiGLU", dt_cpu_seq_swiglu},
    {"RotaryEmbedding", dt_cpu_seq_rope},
    {"LinearAttention", dt_cpu_seq_linattn},
    {"CausalConvWithState", dt_cpu_seq_cconv},
    {NULL, NULL},
};
