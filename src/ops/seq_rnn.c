/* RNN, GRU, LSTM: attributes, input shapes and output shapes. */
#include "ops/seq.h"
#include "core/checked.h"
#include "core/status.h"
#include "ops/defaults.h"

#include <string.h>

/* activation_alpha/beta default, as ONNX says, to the defaults of the op of that name. */
static const struct { const char *name; int kind; float alpha, beta; bool has_a, has_b; } acts[] = {
    {"Relu", DT_ACT_RELU, 0, 0, false, false},
    {"Tanh", DT_ACT_TANH, 0, 0, false, false},
    {"Sigmoid", DT_ACT_SIGMOID, 0, 0, false, false},
    {"Affine", DT_ACT_AFFINE, 1.0f, 0.0f, true, true},
    {"LeakyRelu", DT_ACT_LEAKYRELU, DT_LEAKYRELU_ALPHA, 0, true, false},
    {"ThresholdedRelu", DT_ACT_THRESHOLDEDRELU, 1.0f, 0, true, false},
    {"ScaledTanh", DT_ACT_SCALEDTANH, 1.0f, 1.0f, true, true},
    {"HardSigmoid", DT_ACT_HARDSIGMOID, DT_HARDSIGMOID_ALPHA, DT_HARDSIGMOID_BETA, true, true},
    {"Elu", DT_ACT_ELU, 1.0f, 0, true, false},
    {"Softsign", DT_ACT_SOFTSIGN, 0, 0, false, false},
    {"Softplus", DT_ACT_SOFTPLUS, 0, 0, false, false},
};

/* Attributes only (no shapes): shared by check and infer. */
static ductile_status rnn_attrs(const ductile_layer *L, dt_rnn_params *p)
{
    memset(p, 0, sizeof *p);
    if (strcmp(L->op_type, "GRU") == 0) {
        p->kind = DT_RNN_GRU, p->gates = 3, p->n_act = 2;
    } else if (strcmp(L->op_type, "LSTM") == 0) {
        p->kind = DT_RNN_LSTM, p->gates = 4, p->n_act = 3;
    } else {
        p->kind = DT_RNN_PLAIN, p->gates = 1, p->n_act = 1;
    }
    const char *dir = dt_attr_string(L, "direction", "forward");
    if (strcmp(dir, "forward") == 0) p->dirs = 1;
    else if (strcmp(dir, "reverse") == 0) p->dirs = 1, p->reverse = true;
    else if (strcmp(dir, "bidirectional") == 0) p->dirs = 2;
    else return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'direction' = '%s' is not supported (supported: forward, reverse, bidirectional)", dir);
    p->layout = (int)dt_attr_int(L, "layout", 0);
    if (p->layout != 0 && p->layout != 1)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'layout' = %d is not supported (supported: 0, 1)", p->layout);
    const dt_attr *c = dt_attr_find(L, "clip");
    p->clip = c ? c->f : 0.0f;
    if (c && !(c->f > 0))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'clip' = %g must be positive", (double)c->f);
    int64_t lbr = dt_attr_int(L, "linear_before_reset", 0);
    if (lbr != 0 && lbr != 1)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'linear_before_reset' = %lld is not supported (supported: 0, 1)", (long long)lbr);
    p->linear_before_reset = lbr;
    if (dt_attr_int(L, "input_forget", 0) != 0)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'input_forget' = %lld is not supported (supported: 0)",
                       (long long)dt_attr_int(L, "input_forget", 0));
    /* Defaults: f = Sigmoid, g = Tanh, h = Tanh (RNN: Tanh). */
    const char *dflt[3] = {"Sigmoid", "Tanh", "Tanh"};
    if (p->kind == DT_RNN_PLAIN) dflt[0] = "Tanh";
    const dt_attr *an = dt_attr_find(L, "activations");
    int64_t na = an ? an->n : 0;
    if (an && an->type != DT_ATTR_STRINGS)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'activations' must be a list of strings");
    if (an && na != p->n_act * p->dirs && na != p->n_act)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'activations' has %lld names; expected %d",
                       (long long)na, p->n_act * p->dirs);
    int64_t nalpha = 0, nbeta = 0, ia = 0, ib = 0;
    const float *alpha = dt_attr_floats(L, "activation_alpha", &nalpha);
    const float *beta = dt_attr_floats(L, "activation_beta", &nbeta);
    for (int k = 0; k < p->n_act * p->dirs; k++) {
        const char *name = na ? an->strings[k % na] : dflt[k % p->n_act];
        int j = 0, nj = (int)(sizeof acts / sizeof acts[0]);
        while (j < nj && strcmp(acts[j].name, name) != 0) j++;
        if (j == nj)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED, "activation '%s' (attribute 'activations') is not supported", name);
        p->act[k].kind = acts[j].kind;
        p->act[k].alpha = acts[j].alpha;
        p->act[k].beta = acts[j].beta;
        /* alpha and beta are consumed in order by the activations that take them. */
        if (acts[j].has_a && ia < nalpha) p->act[k].alpha = alpha[ia++];
        if (acts[j].has_b && ib < nbeta) p->act[k].beta = beta[ib++];
    }
    /* Absent, it follows from W's dims; given, it must be a size whose gate rows (and B's
     * twice as many) fit in int64. */
    p->H = dt_attr_int(L, "hidden_size", 0);
    int64_t rows;
    if (dt_attr_find(L, "hidden_size") &&
        (p->H < 1 || !dt_mul_i64(p->H, 2 * p->gates, &rows)))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'hidden_size' = %lld; expected 1 or more, "
                       "with %d*hidden_size within int64", (long long)p->H, 2 * p->gates);
    return DUCTILE_OK;
}

ductile_status dt_seq_check_rnn(const ductile_layer *L)
{
    int max_out = strcmp(L->op_type, "LSTM") == 0 ? 3 : 2;
    int max_in = strcmp(L->op_type, "LSTM") == 0 ? 8 : 6;
    DT_TRY(dt_check_arity(L, 3, max_in, 0, max_out, DT_INPUT_NAMES("X", "W", "R")));
    dt_rnn_params p;
    return rnn_attrs(L, &p);
}

static ductile_status want_dims(const dt_view *v, int i, const char *what, int rank, const int64_t *d);

/* W and R are sized by hidden_size: the message says which one it took. */
static ductile_status want_weights(const dt_view *v, int i, const char *what, const int64_t *d, int64_t H)
{
    ductile_status s = want_dims(v, i, what, 3, d);
    return s ? dt_fail_prefix(s, "hidden_size %lld", (long long)H) : DUCTILE_OK;
}

static ductile_status want_dims(const dt_view *v, int i, const char *what, int rank, const int64_t *d)
{
    bool ok = v->rank == rank;
    for (int k = 0; ok && k < rank; k++) ok = v->dims[k] == d[k];
    if (!ok) {
        char a[96], b[96];
        dt_format_dims(a, sizeof a, v->dims, v->rank, NULL);
        dt_format_dims(b, sizeof b, d, rank, NULL);
        return dt_fail(DUCTILE_ERR_SHAPE, "input %d (%s) has shape %s; expected %s", i, what, a, b);
    }
    return DUCTILE_OK;
}

ductile_status dt_rnn_params_get(const ductile_layer *L, const dt_view *in, dt_rnn_params *p)
{
    DT_TRY(rnn_attrs(L, p));
    return dt_rnn_params_shapes(L, in, p);
}

ductile_status dt_rnn_attrs_read(const ductile_layer *L, dt_rnn_params *p) { return rnn_attrs(L, p); }

ductile_status dt_rnn_params_shapes(const ductile_layer *L, const dt_view *in, dt_rnn_params *p)
{
    for (int i = 0; i < 3; i++) DT_TRY(dt_seq_want_float(in, i, i == 0 ? "X" : i == 1 ? "W" : "R"));
    if (in[0].rank != 3 || in[1].rank != 3)
        return dt_fail(DUCTILE_ERR_SHAPE, "inputs 0 (X) and 1 (W) must have rank 3 (got %d and %d)", in[0].rank, in[1].rank);
    p->S = in[0].dims[p->layout ? 1 : 0];
    p->B = in[0].dims[p->layout ? 0 : 1];
    p->I = in[0].dims[2];
    if (p->H <= 0) p->H = in[1].dims[1] / p->gates;
    int64_t G = p->gates * p->H, D = p->dirs, H = p->H, B = p->B;
    DT_TRY(want_weights(&in[1], 1, "W", (int64_t[]){D, G, p->I}, H));
    DT_TRY(want_weights(&in[2], 2, "R", (int64_t[]){D, G, H}, H));
    if (dt_seq_given(L, in, 3)) DT_TRY(want_dims(&in[3], 3, "B", 2, (int64_t[]){D, 2 * G}));
    if (dt_seq_given(L, in, 4)) {
        DT_TRY(dt_seq_want_int(in, 4, "sequence_lens"));
        DT_TRY(want_dims(&in[4], 4, "sequence_lens", 1, (int64_t[]){B}));
    }
    int64_t hd[3] = {D, B, H};
    if (p->layout) hd[0] = B, hd[1] = D;
    if (dt_seq_given(L, in, 5)) DT_TRY(want_dims(&in[5], 5, "initial_h", 3, hd));
    if (p->kind == DT_RNN_LSTM) {
        if (dt_seq_given(L, in, 6)) DT_TRY(want_dims(&in[6], 6, "initial_c", 3, hd));
        if (dt_seq_given(L, in, 7)) DT_TRY(want_dims(&in[7], 7, "P", 2, (int64_t[]){D, 3 * H}));
    }
    for (int i = 3; i < L->n_in; i++)
        if (i != 4 && dt_seq_given(L, in, i)) DT_TRY(dt_seq_want_float(in, i, "optional input"));
    return DUCTILE_OK;
}

ductile_status dt_seq_infer_rnn(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    dt_rnn_params p;
    DT_TRY(dt_rnn_params_get(L, in, &p));
    for (int o = 0; o < L->n_out; o++) {
        dt_view *v = &out[o];
        memset(v, 0, sizeof *v);
        v->dtype = in[0].dtype;
        if (o == 0) {
            v->rank = 4;
            if (p.layout) v->dims[0] = p.B, v->dims[1] = p.S, v->dims[2] = p.dirs;
            else v->dims[0] = p.S, v->dims[1] = p.dirs, v->dims[2] = p.B;
            v->dims[3] = p.H;
        } else {
            v->rank = 3;
            if (p.layout) v->dims[0] = p.B, v->dims[1] = p.dirs;
            else v->dims[0] = p.dirs, v->dims[1] = p.B;
            v->dims[2] = p.H;
        }
    }
    return DUCTILE_OK;
}
