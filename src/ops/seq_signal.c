/* DFT, STFT, window functions, MelWeightMatrix: attributes and output shapes. */
#include "ops/seq.h"
#include "core/status.h"

#include <string.h>

static ductile_status bool_attr(const ductile_layer *L, const char *name, int64_t dflt, bool *v)
{
    int64_t x = dt_attr_int(L, name, dflt);
    if (x != 0 && x != 1)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute '%s' = %lld is not supported (supported: 0, 1)", name, (long long)x);
    *v = x;
    return DUCTILE_OK;
}

ductile_status dt_seq_check_dft(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 1, L->opset >= 20 ? 3 : 2, 1, 1, NULL));
    bool b;
    DT_TRY(bool_attr(L, "inverse", 0, &b));
    return bool_attr(L, "onesided", 0, &b);
}

ductile_status dt_dft_attrs_read(const ductile_layer *L, dt_dft_attrs *a)
{
    memset(a, 0, sizeof *a);
    DT_TRY(bool_attr(L, "inverse", 0, &a->inverse));
    DT_TRY(bool_attr(L, "onesided", 0, &a->onesided));
    a->axis = L->opset >= 20 ? -2 : dt_attr_int(L, "axis", 1);
    return DUCTILE_OK;
}

ductile_status dt_dft_params_get(const ductile_layer *L, const dt_view *in, dt_dft_params *p)
{
    dt_dft_attrs a;
    DT_TRY(dt_dft_attrs_read(L, &a));
    return dt_dft_params_of(&a, L, in, p);
}

ductile_status dt_dft_params_of(const dt_dft_attrs *a, const ductile_layer *L, const dt_view *in, dt_dft_params *p)
{
    memset(p, 0, sizeof *p);
    p->inverse = a->inverse;
    p->onesided = a->onesided;
    DT_TRY(dt_seq_want_float(in, 0, "input"));
    const dt_view *x = &in[0];
    if (x->rank < 2 || (x->dims[x->rank - 1] != 1 && x->dims[x->rank - 1] != 2))
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (input) must have rank >= 2 and a last dim of 1 (real) or 2 (complex)");
    p->in_c = (int)x->dims[x->rank - 1];
    int64_t axis = a->axis;
    if (L->opset >= 20 && dt_seq_given(L, in, 2)) DT_TRY(dt_seq_scalar(L, in, 2, "axis", &axis));
    if (axis < -x->rank || axis >= x->rank)
        return dt_fail(DUCTILE_ERR_SHAPE, "axis %lld is outside [-%d, %d)", (long long)axis, x->rank, x->rank);
    if (axis < 0) axis += x->rank;
    if (axis == x->rank - 1)
        return dt_fail(DUCTILE_ERR_SHAPE, "axis %lld is the last (real/imaginary) dim", (long long)axis);
    p->axis = (int)axis;
    p->n_in = x->dims[axis];
    p->length = p->inverse && p->onesided ? 2 * (p->n_in - 1) : p->n_in;
    if (dt_seq_given(L, in, 1)) DT_TRY(dt_seq_scalar(L, in, 1, "dft_length", &p->length));
    if (p->length < 1)
        return dt_fail(DUCTILE_ERR_SHAPE, "dft_length = %lld; expected at least 1", (long long)p->length);
    p->n_out = p->onesided && !p->inverse ? p->length / 2 + 1 : p->length;
    p->out_c = p->inverse && p->onesided ? 1 : 2;
    return DUCTILE_OK;
}

ductile_status dt_seq_infer_dft(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    dt_dft_params p;
    DT_TRY(dt_dft_params_get(L, in, &p));
    out[0] = in[0];
    out[0].data = NULL;
    out[0].dims[p.axis] = p.n_out;
    out[0].dims[in[0].rank - 1] = p.out_c;
    return DUCTILE_OK;
}

ductile_status dt_seq_check_stft(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 4, 1, 1, DT_INPUT_NAMES("signal", "frame_step")));
    bool b;
    return bool_attr(L, "onesided", 1, &b);
}

ductile_status dt_stft_onesided_read(const ductile_layer *L, bool *onesided)
{
    *onesided = true; /* set by the attribute below; initialised for -O3's flow analysis */
    return bool_attr(L, "onesided", 1, onesided);
}

ductile_status dt_stft_params_get(const ductile_layer *L, const dt_view *in, dt_stft_params *p)
{
    bool onesided = true;
    DT_TRY(dt_stft_onesided_read(L, &onesided));
    return dt_stft_params_of(onesided, L, in, p);
}

ductile_status dt_stft_params_of(bool onesided, const ductile_layer *L, const dt_view *in, dt_stft_params *p)
{
    memset(p, 0, sizeof *p);
    DT_TRY(dt_seq_want_float(in, 0, "signal"));
    const dt_view *x = &in[0];
    if (x->rank != 3 || (x->dims[2] != 1 && x->dims[2] != 2))
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (signal) must be [batch, length, 1 or 2]");
    p->batch = x->dims[0], p->signal = x->dims[1], p->in_c = x->dims[2];
    DT_TRY(dt_seq_scalar(L, in, 1, "frame_step", &p->step));
    p->window = dt_seq_given(L, in, 2);
    p->length = p->signal;
    if (p->window) {
        if (in[2].rank != 1) return dt_fail(DUCTILE_ERR_SHAPE, "input 2 (window) must have rank 1");
        DT_TRY(dt_seq_want_float(in, 2, "window"));
        p->length = in[2].dims[0];
    }
    if (dt_seq_given(L, in, 3)) {
        DT_TRY(dt_seq_scalar(L, in, 3, "frame_length", &p->length));
        if (p->window && p->length != in[2].dims[0])
            return dt_fail(DUCTILE_ERR_SHAPE, "frame_length %lld differs from the window's length %lld",
                           (long long)p->length, (long long)in[2].dims[0]);
    }
    if (p->step < 1 || p->length < 1 || p->length > p->signal)
        return dt_fail(DUCTILE_ERR_SHAPE, "frame_step %lld and frame_length %lld must be positive and the frame no longer than the signal (%lld)",
                       (long long)p->step, (long long)p->length, (long long)p->signal);
    p->frames = 1 + (p->signal - p->length) / p->step;
    p->bins = onesided ? p->length / 2 + 1 : p->length;
    return DUCTILE_OK;
}

ductile_status dt_seq_infer_stft(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    dt_stft_params p;
    DT_TRY(dt_stft_params_get(L, in, &p));
    memset(&out[0], 0, sizeof out[0]);
    out[0].dtype = in[0].dtype;
    out[0].rank = 4;
    out[0].dims[0] = p.batch, out[0].dims[1] = p.frames, out[0].dims[2] = p.bins, out[0].dims[3] = 2;
    return DUCTILE_OK;
}

ductile_status dt_seq_check_window(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 1, 1, 1, 1, NULL));
    bool b;
    DT_TRY(bool_attr(L, "periodic", 1, &b));
    int t;
    return dt_seq_out_dtype(L, &t);
}

ductile_status dt_seq_infer_window(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    int64_t n;
    DT_TRY(dt_seq_want_int(in, 0, "size"));
    DT_TRY(dt_seq_scalar(L, in, 0, "size", &n));
    if (n < 0) return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (size) = %lld is negative", (long long)n);
    memset(&out[0], 0, sizeof out[0]);
    DT_TRY(dt_seq_out_dtype(L, &out[0].dtype));
    out[0].rank = 1;
    out[0].dims[0] = n;
    return DUCTILE_OK;
}

ductile_status dt_seq_check_mel(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 5, 5, 1, 1, DT_INPUT_NAMES("num_mel_bins", "dft_length", "sample_rate", "lower_edge_hertz", "upper_edge_hertz")));
    int t;
    return dt_seq_out_dtype(L, &t);
}

ductile_status dt_seq_infer_mel(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    int64_t bins, len;
    DT_TRY(dt_seq_scalar(L, in, 0, "num_mel_bins", &bins));
    DT_TRY(dt_seq_scalar(L, in, 1, "dft_length", &len));
    if (bins < 1 || len < 1)
        return dt_fail(DUCTILE_ERR_SHAPE, "num_mel_bins %lld and dft_length %lld must be positive", (long long)bins, (long long)len);
    memset(&out[0], 0, sizeof out[0]);
    DT_TRY(dt_seq_out_dtype(L, &out[0].dtype));
    out[0].rank = 2;
    out[0].dims[0] = len / 2 + 1;
    out[0].dims[1] = bins;
    return DUCTILE_OK;
}
