/* Private to the seq op family (src/ops/seq*.c) and its kernels (src/backend/<name>/seq*.c):
 * attribute and shape parsing shared by infer and the kernels, so they cannot disagree. */
#ifndef DT_OPS_SEQ_H
#define DT_OPS_SEQ_H

#include "ops/op.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- shared checks (seq.c) ---- */

/* Input i is float32, float64, float16 or bfloat16. */
ductile_status dt_seq_want_float(const dt_view *in, int i, const char *what);
/* Input i is int32 or int64. */
ductile_status dt_seq_want_int(const dt_view *in, int i, const char *what);
/* Input i was given (not omitted). */
bool dt_seq_given(const ductile_layer *L, const dt_view *in, int i);
/* The value of a one-element input i (int or float) read as int64; UNSUPPORTED when unknown. */
ductile_status dt_seq_scalar(const ductile_layer *L, const dt_view *in, int i, const char *what,
                             int64_t *v);
/* Output dtype attribute 'output_datatype' (default float32): a float or integer type. */
ductile_status dt_seq_out_dtype(const ductile_layer *L, int *dtype);

/* ---- RNN, GRU, LSTM (seq_rnn.c) ---- */

enum { DT_RNN_PLAIN, DT_RNN_GRU, DT_RNN_LSTM };
enum {
    DT_ACT_RELU, DT_ACT_TANH, DT_ACT_SIGMOID, DT_ACT_AFFINE, DT_ACT_LEAKYRELU,
    DT_ACT_THRESHOLDEDRELU, DT_ACT_SCALEDTANH, DT_ACT_HARDSIGMOID, DT_ACT_ELU, DT_ACT_SOFTSIGN,
    DT_ACT_SOFTPLUS
};

typedef struct dt_rnn_act {
    int kind;
    float alpha, beta;
} dt_rnn_act;

typedef struct dt_rnn_params {
    int kind;               /* DT_RNN_* */
    int gates;              /* 1, 3, 4 */
    int dirs;               /* 1, 2 */
    bool reverse;           /* direction == "reverse" (dirs == 1) */
    int layout;             /* 0: [S, B, ...]; 1: [B, S, ...] */
    int64_t S, B, I, H;
    float clip;             /* <= 0: none */
    bool linear_before_reset;
    int n_act;              /* activations per direction: 1, 2, 3 */
    dt_rnn_act act[6];      /* direction d uses act[d * n_act ..] */
} dt_rnn_params;

ductile_status dt_rnn_params_get(const ductile_layer *L, const dt_view *in, dt_rnn_params *p);
/* The two halves of it (compiled kernels): the attributes, read once, then per set of
 * shapes the dims of the inputs into a copy of them. */
ductile_status dt_rnn_attrs_read(const ductile_layer *L, dt_rnn_params *p);
ductile_status dt_rnn_params_shapes(const ductile_layer *L, const dt_view *in, dt_rnn_params *p);

/* ---- DFT, STFT (seq_signal.c) ---- */

typedef struct dt_dft_params {
    int axis;               /* normalized, never the last (complex) dim */
    int64_t n_in;           /* input length along axis */
    int64_t length;         /* transform length */
    int64_t n_out;          /* output length along axis */
    bool inverse, onesided;
    int in_c, out_c;        /* last dim of input and output: 1 (real) or 2 (complex) */
} dt_dft_params;

ductile_status dt_dft_params_get(const ductile_layer *L, const dt_view *in, dt_dft_params *p);
/* The two halves of it (compiled kernels): the attributes, read once (and refused), then
 * the params for the inputs at hand (same checks and messages). */
typedef struct dt_dft_attrs {
    bool inverse, onesided;
    int64_t axis;           /* the attribute below opset 20, else the default of input 2 */
} dt_dft_attrs;
ductile_status dt_dft_attrs_read(const ductile_layer *L, dt_dft_attrs *a);
ductile_status dt_dft_params_of(const dt_dft_attrs *a, const ductile_layer *L, const dt_view *in, dt_dft_params *p);

typedef struct dt_stft_params {
    int64_t batch, signal, in_c;
    int64_t step, length, frames, bins;
    bool window;            /* input 2 given */
} dt_stft_params;

ductile_status dt_stft_params_get(const ductile_layer *L, const dt_view *in, dt_stft_params *p);
/* Its two halves: attribute 'onesided', then the params for the inputs at hand. */
ductile_status dt_stft_onesided_read(const ductile_layer *L, bool *onesided);
ductile_status dt_stft_params_of(bool onesided, const ductile_layer *L, const dt_view *in, dt_stft_params *p);

/* ---- Einsum (seq_einsum.c) ---- */

#define DT_EINSUM_MAX_IN 8
#define DT_EINSUM_MAX_LABELS 64

typedef struct dt_einsum_plan {
    int n_in;
    int n_labels;                                   /* distinct labels (ellipsis dims too) */
    int64_t size[DT_EINSUM_MAX_LABELS];
    int out_rank;
    int out_label[DT_MAX_DIMS];                     /* label of each output axis */
    /* Stride of each label in each input (0 when absent or broadcast). */
    int64_t stride[DT_EINSUM_MAX_IN][DT_EINSUM_MAX_LABELS];
} dt_einsum_plan;

ductile_status dt_einsum_plan_get(const ductile_layer *L, const dt_view *in, dt_einsum_plan *p);
/* The same for an equation read once (compiled kernels). */
ductile_status dt_einsum_plan_of(const char *eq, const ductile_layer *L, const dt_view *in, dt_einsum_plan *p);

/* ---- RotaryEmbedding, LinearAttention (seq_algebra.c) ---- */

typedef struct dt_rope_params {
    int64_t B, S, H, D;     /* input as [B, S, H, D] (4-D inputs are [B, H, S, D]) */
    bool four_d;
    int64_t rot;            /* rotated dims (even) */
    bool interleaved, pos_ids;
    int64_t max_pos;        /* rows of the caches with position_ids */
} dt_rope_params;

ductile_status dt_rope_params_get(const ductile_layer *L, const dt_view *in, dt_rope_params *p);
/* Its two halves: the attributes, read once, then the params for the inputs at hand. */
typedef struct dt_rope_attrs {
    bool interleaved;
    int64_t num_heads, rot;     /* 'rotary_embedding_dim' (0: the head size) */
} dt_rope_attrs;
void dt_rope_attrs_read(const ductile_layer *L, dt_rope_attrs *a);
ductile_status dt_rope_params_of(const dt_rope_attrs *a, const ductile_layer *L, const dt_view *in, dt_rope_params *p);

typedef struct dt_linattn_params {
    int64_t B, T, Hq, Hkv, dk, dv;
    bool gating, delta;
    int64_t decay_last, beta_last;
    float scale;
} dt_linattn_params;

ductile_status dt_linattn_params_get(const ductile_layer *L, const dt_view *in, dt_linattn_params *p);
/* Its two halves: the attributes, read once, then the params for the inputs at hand. */
typedef struct dt_linattn_attrs {
    const char *rule;       /* 'update_rule' (the layer's string; for messages) */
    bool gating, delta;
    int64_t Hq, Hkv;
    float scale;            /* 0: 1 / sqrt(d_k) */
} dt_linattn_attrs;
void dt_linattn_attrs_read(const ductile_layer *L, dt_linattn_attrs *a);
ductile_status dt_linattn_params_of(const dt_linattn_attrs *a, const ductile_layer *L, const dt_view *in,
                                    dt_linattn_params *p);

/* ---- check and infer of each op (the table is in seq.c) ---- */
#define DT_SEQ_OP(name)                                                                   \
    ductile_status dt_seq_check_##name(const ductile_layer *L);                           \
    ductile_status dt_seq_infer_##name(const ductile_layer *L, const dt_view *in, dt_view *out)
DT_SEQ_OP(rnn);
DT_SEQ_OP(dft);
DT_SEQ_OP(stft);
DT_SEQ_OP(window);
DT_SEQ_OP(mel);
DT_SEQ_OP(einsum);
DT_SEQ_OP(onehot);
DT_SEQ_OP(det);
DT_SEQ_OP(tscatter);
DT_SEQ_OP(swiglu);
DT_SEQ_OP(rope);
DT_SEQ_OP(linattn);
DT_SEQ_OP(cconv);
#undef DT_SEQ_OP

/* ---- TfIdfVectorizer (seq_text.c) ---- */

enum { DT_TFIDF_TF, DT_TFIDF_IDF, DT_TFIDF_TFIDF };

/* The attributes, checked; the arrays point into the layer's attributes. */
typedef struct dt_tfidf_attrs {
    int mode;
    int64_t min_gram, max_gram, max_skip, out_size;
    const int64_t *pool, *counts, *indexes;
    const float *weights;
    int64_t n_pool, n_counts, n_indexes, n_weights;
} dt_tfidf_attrs;

ductile_status dt_tfidf_attrs_check(const ductile_layer *L, dt_tfidf_attrs *a);
ductile_status dt_seq_check_tfidf(const ductile_layer *L);
ductile_status dt_seq_infer_tfidf(const ductile_layer *L, const dt_view *in, dt_view *out);

/* ---- Adagrad, Momentum, Adam (seq_train.c; domain ai.onnx.preview.training) ---- */

/* Optimizer states per tensor: 1 (Adagrad's H, Momentum's V) or 2 (Adam's V, H). */
int dt_train_states(const char *op_type);
/* n, the tensors updated, from the input and output counts. */
ductile_status dt_train_layout(const ductile_layer *L, int *n);
ductile_status dt_seq_check_train(const ductile_layer *L);
ductile_status dt_seq_infer_train(const ductile_layer *L, const dt_view *in, dt_view *out);

#endif
