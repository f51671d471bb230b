/* Private to the CPU seq kernels: one compiled kernel per op (the table is in seq.c) and the
 * conversions they share. The seq kernels compute in double: their ops are small, sequential
 * (recurrences, transforms) or exact-sum sensitive (DFT, Det), and every float dtype then
 * shares one code path. */
#ifndef DT_CPU_SEQ_KERNELS_H
#define DT_CPU_SEQ_KERNELS_H

#include "backend/cpu/kernels.h"

/* v's elements as double into d, which holds dt_view_count(v) doubles (nothing written for
 * an absent v). */
void dt_seq_load_into(const dt_view *v, double *d);
/* Stores n doubles into v (rounded to v's dtype). */
void dt_seq_store(dt_view *v, const double *src, int64_t n);

/* ---- scratch: the kernels run on double copies carved from the context's scratch ----
 * A kernel's scratch function and its run count the same doubles (one function per op), so
 * the run never allocates. */

/* The doubles a view takes when converted: its elements (by dims; none when absent) plus one,
 * so that an empty or absent view still has a readable zero. */
static inline int64_t dt_seq_n1(const dt_view *v) { return (v->rank >= 0 ? dt_view_count(v) : 0) + 1; }
/* The next n doubles of the scratch at *cur. */
static inline double *dt_seq_take(double **cur, int64_t n)
{
    double *p = *cur;
    *cur += n;
    return p;
}
/* v as doubles in the next dt_seq_n1(v) doubles (a zero first element when v is absent). */
double *dt_seq_take_load(double **cur, const dt_view *v);
/* *bytes for `doubles` doubles (scratch functions); DUCTILE_ERR_SHAPE when too large. */
ductile_status dt_seq_scratch_bytes(const char *op, int64_t doubles, size_t *bytes);
/* The run's scratch as doubles in *cur, checked to hold `doubles` of them. */
ductile_status dt_seq_scratch(const char *op, const dt_exec *ex, int64_t doubles, double **cur);

/* The compiled kernels (backend.h). */
extern const dt_kernel dt_cpu_seq_tfidf_kernel; /* seq_text.c */
extern const dt_kernel dt_cpu_seq_train_kernel; /* Adagrad, Momentum, Adam (seq_train.c) */
extern const dt_kernel dt_cpu_seq_rnn_kernel;   /* RNN, GRU, LSTM (seq_rnn.c) */
extern const dt_kernel dt_cpu_seq_dft_kernel;   /* seq_signal.c */
extern const dt_kernel dt_cpu_seq_stft_kernel;
extern const dt_kernel dt_cpu_seq_window_kernel; /* Hann, Hamming, Blackman */
extern const dt_kernel dt_cpu_seq_mel_kernel;
extern const dt_kernel dt_cpu_seq_einsum_kernel; /* seq_einsum.c */
extern const dt_kernel dt_cpu_seq_onehot_kernel; /* seq_algebra.c */
extern const dt_kernel dt_cpu_seq_det_kernel;
extern const dt_kernel dt_cpu_seq_tscatter_kernel;
extern const dt_kernel dt_cpu_seq_swiglu_kernel;
extern const dt_kernel dt_cpu_seq_rope_kernel;
extern const dt_kernel dt_cpu_seq_linattn_kernel;
extern const dt_kernel dt_cpu_seq_cconv_kernel;

#endif
