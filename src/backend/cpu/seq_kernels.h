/* Private to the CPU seq kernels: one run function per op (the table is in seq.c) and the
 * conversions they share. The seq kernels compute in double: their ops are small, sequential
 * (recurrences, transforms) or exact-sum sensitive (DFT, Det), and every float dtype then
 * shares one code path. */
#ifndef DT_CPU_SEQ_KERNELS_H
#define DT_CPU_SEQ_KERNELS_H

#include "backend/cpu/kernels.h"

/* A dt_malloc'd copy of v's elements as double (at least one element allocated), or NULL when
 * out of memory. Absent views (rank -1) give a one-element zero array. */
double *dt_seq_load(const dt_view *v);
/* The same into d, which holds dt_view_count(v) doubles (nothing written for an absent v). */
void dt_seq_load_into(const dt_view *v, double *d);
/* Stores n doubles into v (rounded to v's dtype). */
void dt_seq_store(dt_view *v, const double *src, int64_t n);
/* dt_fail for an allocation that failed. */
ductile_status dt_seq_oom(const char *op);

#define DT_SEQ_KERNEL(name) \
    ductile_status dt_cpu_seq_##name(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
extern const dt_kernel dt_cpu_seq_rnn_kernel;   /* RNN, GRU, LSTM: compiled (backend.h) */
DT_SEQ_KERNEL(dft);
DT_SEQ_KERNEL(stft);
DT_SEQ_KERNEL(window);
DT_SEQ_KERNEL(mel);
DT_SEQ_KERNEL(einsum);
DT_SEQ_KERNEL(onehot);
DT_SEQ_KERNEL(det);
DT_SEQ_KERNEL(tscatter);
DT_SEQ_KERNEL(swiglu);
DT_SEQ_KERNEL(rope);
DT_SEQ_KERNEL(linattn);
DT_SEQ_KERNEL(cconv);

#endif
