/* The seq ops (RNN, GRU, LSTM, DFT, windows, Einsum, OneHot, Det, TensorScatter, SwiGLU,
 * RotaryEmbedding, LinearAttention, CausalConvWithState): each op's check, infer and CPU
 * kernel at small shapes, against values from onnx's reference implementation
 * (onnx/reference/ops; RNN and LSTM from onnxruntime 1.30: the reference lacks LeakyRelu and
 * ignores sequence_lens).
 * Inputs are generated here and in the generator by one formula,
 * x[i] = ((i * 7919 + seed * 31) % 23 - 11) / 16 (times a scale), so only outputs are embedded. */
#include "testutil.h"
#include "ops/seq.h"
#include "ops/families.h"
#include "backend/cpu/families.h"
#include "core/status.h"

#include <math.h>
#include <stdlib.h>

/* [3, 2, 2, 4] */
static const float exp_gru_y[] = {0.21401123702526093f, -0.09515577554702759f, -0.1817535012960434f, -0.01011044904589653f, 0.23684149980545044f, -0.10655641555786133f, -0.17998893558979034f, 0.002964896149933338f, -0.18845397233963013f, -0.32553738355636597f, 0.012336356565356255f, -0.3162901997566223f, -0.1749279648065567f, -0.27024590969085693f, 0.06783788651227951f, -0.26312845945358276f, 0.36676985025405884f, -0.1947638839483261f, -0.27380993962287903f, 0.016988219693303108f, 0.3984740376472473f, -0.2124544233083725f, -0.2732236087322235f, 0.03485723212361336f, -0.2009773552417755f, -0.2828159034252167f, 0.027982313185930252f, -0.2299828976392746f, -0.11909611523151398f, -0.16431616246700287f, 0.1167428195476532f, -0.15818391740322113f, 0.4832584261894226f, -0.27730298042297363f, -0.322595477104187f, 0.05454346165060997f, 0.26912450790405273f, -0.061028461903333664f, -0.10728197544813156f, 0.1840178370475769f, -0.1555362194776535f, -0.18801143765449524f, 0.03019157610833645f, -0.1348278969526291f, 0.07534593343734741f, 0.05000299960374832f, 0.1784672737121582f, -0.006441347301006317f};
/* [2, 2, 4] */
static const float exp_gru_yh[] = {0.4832584261894226f, -0.27730298042297363f, -0.322595477104187f, 0.05454346165060997f, 0.26912450790405273f, -0.061028461903333664f, -0.10728197544813156f, 0.1840178370475769f, -0.18845397233963013f, -0.32553738355636597f, 0.012336356565356255f, -0.3162901997566223f, -0.1749279648065567f, -0.27024590969085693f, 0.06783788651227951f, -0.26312845945358276f};
/* [3, 1, 2, 4] */
static const float exp_lstm_y[] = {-0.028579359874129295f, -0.10933567583560944f, 0.022294843569397926f, -0.04743150249123573f, -0.02120465412735939f, -0.11575552076101303f, 0.021146737039089203f, -0.0439252108335495f, -0.027243072167038918f, -0.1612016260623932f, 0.03530200198292732f, -0.06430318206548691f, -0.012767367996275425f, -0.16624318063259125f, 0.0329577773809433f, -0.05950154736638069f, -0.005234434735029936f, -0.18543641269207f, 0.04016252979636192f, -0.06670179218053818f, 0.0f, 0.0f, 0.0f, 0.0f};
/* [1, 2, 4] */
static const float exp_lstm_yc[] = {-0.009975457563996315f, -0.2772243618965149f, 0.09236688911914825f, -0.12502074241638184f, -0.02464459463953972f, -0.24558942019939423f, 0.07491476833820343f, -0.11084845662117004f};
/* [3, 1, 2, 4] */
static const float exp_rnn_y[] = {-0.03801940381526947f, -0.031672246754169464f, 0.2373197376728058f, 0.26532313227653503f, -0.03296143561601639f, -0.021624356508255005f, 0.20472459495067596f, 0.2550254166126251f, -0.04180664196610451f, -0.052366334944963455f, -0.016221314668655396f, -0.020084839314222336f, -0.03676391765475273f, -0.04245666414499283f, -0.026123657822608948f, -0.02309875562787056f, -0.03574218973517418f, -0.03339843824505806f, -0.03105468861758709f, -0.02871093899011612f, -0.0322265625f, -0.02285156399011612f, -0.04042968899011612f, -0.03105468861758709f};
/* [1, 2, 4] */
static const float exp_rnn_yh[] = {-0.03801940381526947f, -0.031672246754169464f, 0.2373197376728058f, 0.26532313227653503f, -0.03296143561601639f, -0.021624356508255005f, 0.20472459495067596f, 0.2550254166126251f};
/* [2, 5, 3, 2] */
static const float exp_dft[] = {-0.375f, 0.375f, -0.3125f, 0.4375f, -0.25f, -0.9375f, -2.608558177947998f, 0.41315504908561707f, 1.4852386713027954f, -1.6727386713027954f, 0.7664886713027954f, 1.9768463373184204f, 1.0757391452789307f, 0.5481165051460266f, 0.8280748128890991f, -1.0155748128890991f, 0.10932481288909912f, -0.10027725249528885f, -0.37481531500816345f, -0.7356165051460266f, 0.4219251871109009f, -0.6094251871109009f, -0.2968248128890991f, 1.350277304649353f, 0.09513441473245621f, -0.6006550192832947f, -0.2352387011051178f, 0.0477387011051178f, -0.9539886713027954f, -0.7268463373184204f, 0.5625f, -0.125f, 0.625f, -0.0625f, -0.75f, 0.0f, -1.763616919517517f, 1.576116919517517f, 0.11809495836496353f, -2.116950511932373f, 1.9294506311416626f, 1.1319050788879395f, -0.2914045751094818f, 0.10390456020832062f, -0.016866490244865417f, 0.14738711714744568f, -0.3348871171474457f, 1.2668664455413818f, 0.992328405380249f, -1.179828405380249f, 1.2668664455413818f, 0.5535367131233215f, -0.7410367131233215f, -0.016866490244865417f, -0.7498068809509277f, 0.5623068809509277f, 1.1319050788879395f, -0.396473228931427f, 0.208973228931427f, 0.11809495836496353f};
/* [2, 5, 2] */
static const float exp_rfft[] = {-0.25f, 0.0f, 0.527189314365387f, -0.25130096077919006f, 0.9375f, 0.0625f, -1.1521892547607422f, -1.2513009309768677f, 0.125f, 0.0f, 1.125f, 0.0f, -0.3125f, -0.2455582618713379f, -0.75f, -1.125f, -0.3125f, 1.129441738128662f, 0.125f, 0.0f};
/* [5] */
static const float exp_hamming[] = {0.08695652335882187f, 0.5434783101081848f, 1.0f, 0.54347825050354f, 0.08695652335882187f};
/* [2, 3, 5] */
static const float exp_einsum_bmm[] = {-0.18359375f, 0.0625f, 0.30859375f, -0.25390625f, -0.63671875f, -0.234375f, 0.46875f, 0.00390625f, -0.1015625f, 0.421875f, -0.1953125f, 0.15625f, 0.23828125f, -0.21875f, 0.40234375f, 0.29296875f, -0.3359375f, -0.3359375f, 0.29296875f, -0.3359375f, -0.23046875f, 0.2265625f, 0.14453125f, -0.20703125f, 0.25f, -0.03515625f, 0.0703125f, 0.53515625f, -0.16796875f, -0.0625f};
/* [] */
static const float exp_einsum_trace[] = {-0.125f};
/* [2, 4, 3] */
static const float exp_einsum_ell[] = {0.625f, -0.5f, -0.1875f, -0.375f, -0.0625f, 0.25f, 0.0625f, 0.375f, 0.6875f, 0.5f, -0.625f, -0.3125f, 0.125f, 0.4375f, -0.6875f, 0.5625f, -0.5625f, -0.25f, -0.4375f, -0.125f, 0.1875f, 0.0f, 0.3125f, 0.625f};
/* [2] */
static const float exp_det[] = {-6.071532165918825e-18f, -0.07861328125f};
/* [6] */
static const float exp_swiglu[] = {0.07345756888389587f, -0.14035046100616455f, -0.01701418310403824f, 0.01840149611234665f, -0.14857034385204315f, -0.0f};
/* [1, 2, 3, 4] */
static const float exp_rope[] = {0.15234375f, -0.08984375f, 0.0625f, 0.28125f, 0.359375f, 0.08203125f, -0.359375f, 0.08203125f, -0.0234375f, -0.4921875f, 0.06640625f, -0.12109375f, -0.40625f, 0.1328125f, -0.2265625f, -0.0234375f, -0.109375f, 0.30078125f, 0.16015625f, -0.49609375f, 0.046875f, 0.22265625f, 0.31640625f, 0.06640625f};
/* [1, 3, 4] */
static const float exp_la_y[] = {0.038195159286260605f, 0.011458547785878181f, -0.0712113156914711f, -0.0213633943349123f, 0.054826490581035614f, -0.0036422719713300467f, 0.014531869441270828f, -0.025247082114219666f, -0.04875354468822479f, 0.026865053921937943f, 0.02600041776895523f, -0.009688207879662514f};
/* [1, 1, 2, 2] */
static const float exp_la_state[] = {-0.012996092438697815f, 0.06273305416107178f, 0.11246602237224579f, -0.018750600516796112f};
/* [1, 2, 5] */
static const float exp_cc_y[] = {0.5492904186248779f, 0.1779172420501709f, 0.12845486402511597f, 0.7238203883171082f, 0.18302461504936218f, -0.22491823136806488f, 0.015869121998548508f, -0.23213046789169312f, -0.23746944963932037f, -0.06200292706489563f};
/* [1, 2, 2] */
static const float exp_cc_state[] = {-0.6875f, -0.25f, 0.0625f, 0.5f};

static ductile_network *net;
static int n_names;
static void *allocs[256];
static int n_allocs;

static void *keep(void *p)
{
    if (n_allocs < 256) allocs[n_allocs++] = p;
    return p;
}

static dt_view gview(int rank, const int64_t *dims, int seed, float scale)
{
    dt_view v = {.dtype = DUCTILE_FLOAT32, .rank = rank};
    for (int i = 0; i < rank; i++) v.dims[i] = dims[i];
    int64_t n = dt_view_count(&v);
    float *x = keep(malloc((size_t)(n ? n : 1) * sizeof *x));
    for (int64_t i = 0; i < n; i++) x[i] = (float)((double)((i * 7919 + seed * 31) % 23 - 11) / 16.0) * scale;
    v.data = x;
    return v;
}

static dt_view ints(int dtype, int rank, int64_t n, const void *data)
{
    dt_view v = {.dtype = dtype, .rank = rank, .dims = {n}, .data = (void *)data};
    return v;
}

static const dt_view omitted = {.rank = -1};

static ductile_layer *layer(const char *op, int opset, int n_in, const dt_view *in, int n_out)
{
    ductile_layer *L = dt_network_add_layer(net, op, NULL, n_in, n_out, 8);
    L->opset = opset;
    L->n_attr = 0;
    for (int i = 0; i < n_in; i++) {
        if (in[i].rank < 0) continue;
        char name[32];
        snprintf(name, sizeof name, "t%d", n_names++);
        L->in[i] = dt_network_add_tensor(net, name);
    }
    for (int i = 0; i < n_out; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%d", n_names++);
        L->out[i] = dt_network_add_tensor(net, name);
    }
    return L;
}

static dt_attr *attr(ductile_layer *L, const char *name, int type)
{
    dt_attr *a = &L->attrs[L->n_attr++];
    a->name = name;
    a->type = type;
    return a;
}

static void a_int(ductile_layer *L, const char *name, int64_t v) { attr(L, name, DT_ATTR_INT)->i = v; }
static void a_float(ductile_layer *L, const char *name, float v) { attr(L, name, DT_ATTR_FLOAT)->f = v; }
static void a_str(ductile_layer *L, const char *name, const char *v)
{
    dt_attr *a = attr(L, name, DT_ATTR_STRING);
    a->s = v;
    a->s_len = strlen(v);
}

static const dt_opdef *opdef(const char *op)
{
    for (const dt_opdef *d = dt_ops_seq; d->op_type; d++)
        if (strcmp(d->op_type, op) == 0) return d;
    return NULL;
}

static dt_cpu_run_fn kernel(const char *op)
{
    for (const dt_cpu_kernel *k = dt_cpu_seq; k->op_type; k++)
        if (strcmp(k->op_type, op) == 0) return k->kernel ? dt_cpu_run_once : k->run;
    return NULL;
}

static ductile_status build(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    const dt_opdef *d = opdef(L->op_type);
    if (!d) return dt_fail(DUCTILE_ERR_UNSUPPORTED, "no definition");
    if (d->check) DT_TRY(d->check(L));
    return d->infer(L, in, out);
}

/* check + infer + kernel; output o must have `count` elements equal to exp (float32). */
static void expect(const ductile_layer *L, const dt_view *in, int o, int64_t count, const float *exp)
{
    dt_view out[4] = {{0}};
    ductile_status st = build(L, in, out);
    if (st != DUCTILE_OK) {
        fprintf(stderr, "%s: %s\n", L->op_type, dt_last_error());
        CHECK_EQ_INT(st, DUCTILE_OK);
        return;
    }
    CHECK_EQ_INT(dt_view_count(&out[o]), count);
    if (dt_view_count(&out[o]) != count) return;
    for (int i = 0; i < L->n_out; i++) out[i].data = keep(calloc((size_t)dt_view_count(&out[i]) + 1, 8));
    dt_exec ex = {0};
    st = kernel(L->op_type)(L, in, out, &ex);
    if (st != DUCTILE_OK) fprintf(stderr, "%s: %s\n", L->op_type, dt_last_error());
    CHECK_EQ_INT(st, DUCTILE_OK);
    const float *y = out[o].data;
    int64_t bad = -1;
    for (int64_t i = 0; i < count && bad < 0; i++)
        if (!(fabsf(y[i] - exp[i]) <= 1e-5f + 1e-4f * fabsf(exp[i]))) bad = i;
    if (bad >= 0)
        fprintf(stderr, "%s: output %d element %lld is %.8g, expected %.8g\n", L->op_type, o, (long long)bad,
                (double)y[bad], (double)exp[bad]);
    CHECK(bad < 0);
}

/* check (and infer) fail with status st and a message containing `needle`. */
static void expect_error(const ductile_layer *L, const dt_view *in, ductile_status want, const char *needle)
{
    dt_view out[4] = {{0}};
    ductile_status st = build(L, in, out);
    CHECK_EQ_INT(st, want);
    if (st != DUCTILE_OK && !strstr(dt_last_error(), needle)) {
        fprintf(stderr, "message '%s' lacks '%s'\n", dt_last_error(), needle);
        CHECK(0);
    }
}

#define N(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))

static void test_recurrent(void)
{
    dt_view x = gview(3, (int64_t[]){3, 2, 3}, 1, 1);
    dt_view in[8] = {x, gview(3, (int64_t[]){2, 12, 3}, 2, 0.5f), gview(3, (int64_t[]){2, 12, 4}, 3, 0.5f),
                     gview(2, (int64_t[]){2, 24}, 4, 0.5f)};
    ductile_layer *L = layer("GRU", 22, 4, in, 2);
    a_int(L, "hidden_size", 4);
    a_str(L, "direction", "bidirectional");
    a_int(L, "linear_before_reset", 1);
    expect(L, in, 0, N(exp_gru_y), exp_gru_y);
    expect(L, in, 1, N(exp_gru_yh), exp_gru_yh);

    static const int32_t lens[] = {3, 2};
    dt_view li[8] = {x, gview(3, (int64_t[]){1, 16, 3}, 5, 0.5f), gview(3, (int64_t[]){1, 16, 4}, 6, 0.5f),
                     gview(2, (int64_t[]){1, 32}, 7, 0.5f), ints(DUCTILE_INT32, 1, 2, lens), omitted, omitted,
                     gview(2, (int64_t[]){1, 12}, 8, 0.5f)};
    L = layer("LSTM", 22, 8, li, 3);
    a_int(L, "hidden_size", 4);
    expect(L, li, 0, N(exp_lstm_y), exp_lstm_y);
    expect(L, li, 2, N(exp_lstm_yc), exp_lstm_yc);

    dt_view ri[3] = {gview(3, (int64_t[]){3, 2, 3}, 11, 1), gview(3, (int64_t[]){1, 4, 3}, 9, 0.5f),
                     gview(3, (int64_t[]){1, 4, 4}, 10, 0.5f)};
    L = layer("RNN", 22, 3, ri, 2);
    a_int(L, "hidden_size", 4);
    a_str(L, "direction", "reverse");
    static const char *acts[] = {"LeakyRelu"};
    static const float alpha[] = {0.3f};
    dt_attr *a = attr(L, "activations", DT_ATTR_STRINGS);
    a->strings = acts, a->n = 1;
    a = attr(L, "activation_alpha", DT_ATTR_FLOATS);
    a->floats = alpha, a->n = 1;
    a_float(L, "clip", 0.9f);
    expect(L, ri, 0, N(exp_rnn_y), exp_rnn_y);
    expect(L, ri, 1, N(exp_rnn_yh), exp_rnn_yh);

    /* Refused: an unknown activation, a wrong W shape. */
    L = layer("RNN", 22, 3, ri, 2);
    a_str(L, "direction", "sideways");
    expect_error(L, ri, DUCTILE_ERR_UNSUPPORTED, "direction");
    dt_view bad[3] = {ri[0], gview(3, (int64_t[]){1, 4, 5}, 9, 1), ri[2]};
    L = layer("RNN", 22, 3, bad, 1);
    a_int(L, "hidden_size", 4);
    expect_error(L, bad, DUCTILE_ERR_SHAPE, "input 1 (W)");
}

static void test_signal(void)
{
    static const int64_t axis1 = 1, len8 = 8, size5 = 5;
    dt_view in[3] = {gview(4, (int64_t[]){2, 5, 3, 2}, 12, 1), omitted, ints(DUCTILE_INT64, 0, 1, &axis1)};
    ductile_layer *L = layer("DFT", 20, 3, in, 1);
    expect(L, in, 0, N(exp_dft), exp_dft);
    dt_view ri[2] = {gview(3, (int64_t[]){2, 6, 1}, 13, 1), ints(DUCTILE_INT64, 0, 1, &len8)};
    L = layer("DFT", 19, 2, ri, 1);
    a_int(L, "axis", 1);
    a_int(L, "onesided", 1);
    expect(L, ri, 0, N(exp_rfft), exp_rfft);
    /* The last dim holds real/imaginary parts and cannot be the transformed axis. */
    static const int64_t axis3 = 3;
    dt_view bi[3] = {in[0], omitted, ints(DUCTILE_INT64, 0, 1, &axis3)};
    L = layer("DFT", 20, 3, bi, 1);
    expect_error(L, bi, DUCTILE_ERR_SHAPE, "last");

    dt_view wi[1] = {ints(DUCTILE_INT64, 0, 1, &size5)};
    L = layer("HammingWindow", 17, 1, wi, 1);
    a_int(L, "periodic", 0);
    expect(L, wi, 0, N(exp_hamming), exp_hamming);
    dt_view unknown[1] = {ints(DUCTILE_INT64, 0, 1, NULL)};
    L = layer("HannWindow", 17, 1, unknown, 1);
    expect_error(L, unknown, DUCTILE_ERR_UNSUPPORTED, "depends on the data of input 0");
}

static void test_algebra(void)
{
    dt_view bm[2] = {gview(3, (int64_t[]){2, 3, 4}, 14, 1), gview(3, (int64_t[]){2, 4, 5}, 15, 1)};
    ductile_layer *L = layer("Einsum", 12, 2, bm, 1);
    a_str(L, "equation", "bij,bjk->bik");
    expect(L, bm, 0, N(exp_einsum_bmm), exp_einsum_bmm);
    dt_view tr[1] = {gview(2, (int64_t[]){3, 3}, 16, 1)};
    L = layer("Einsum", 12, 1, tr, 1);
    a_str(L, "equation", "ii");
    expect(L, tr, 0, 1, exp_einsum_trace);
    dt_view el[1] = {gview(3, (int64_t[]){2, 3, 4}, 17, 1)};
    L = layer("Einsum", 12, 1, el, 1);
    a_str(L, "equation", "...ij->...ji");
    expect(L, el, 0, N(exp_einsum_ell), exp_einsum_ell);
    L = layer("Einsum", 12, 2, bm, 1);
    a_str(L, "equation", "bij,bkj->bik");
    expect_error(L, bm, DUCTILE_ERR_SHAPE, "equation 'bij,bkj->bik'");

    static const int64_t idx[] = {1, -1, 5, 0}, depth = 3;
    static const float vals[] = {-1.0f, 2.0f};
    static const float exp_onehot[] = {-1, -1, -1, 2, 2, -1, -1, -1, -1, 2, -1, -1};
    dt_view oh[3] = {ints(DUCTILE_INT64, 1, 4, idx), ints(DUCTILE_INT64, 0, 1, &depth), ints(DUCTILE_FLOAT32, 1, 2, vals)};
    L = layer("OneHot", 11, 3, oh, 1);
    a_int(L, "axis", 0);
    expect(L, oh, 0, 12, exp_onehot);

    dt_view dt[1] = {gview(3, (int64_t[]){2, 3, 3}, 18, 1)};
    L = layer("Det", 11, 1, dt, 1);
    expect(L, dt, 0, N(exp_det), exp_det);

    static const int64_t wr[] = {3, 0};
    float *upd = keep(malloc(8 * sizeof(float)));
    for (int i = 0; i < 8; i++) upd[i] = (float)(i + 1);
    dt_view ts[3] = {{.dtype = DUCTILE_FLOAT32, .rank = 3, .dims = {2, 3, 2}, .data = keep(calloc(12, 4))},
                     {.dtype = DUCTILE_FLOAT32, .rank = 3, .dims = {2, 2, 2}, .data = upd},
                     ints(DUCTILE_INT64, 1, 2, wr)};
    /* Circular: batch 0 writes rows 3 % 3 = 0 and 1 of axis 1; batch 1 rows 0 and 1. */
    static const float exp_circ[] = {1, 2, 3, 4, 0, 0, 5, 6, 7, 8, 0, 0};
    L = layer("TensorScatter", 24, 3, ts, 1);
    a_int(L, "axis", 1);
    a_str(L, "mode", "circular");
    expect(L, ts, 0, 12, exp_circ);
    L = layer("TensorScatter", 24, 3, ts, 1);
    a_str(L, "mode", "ring");
    expect_error(L, ts, DUCTILE_ERR_UNSUPPORTED, "mode");

    dt_view sw[2] = {gview(1, (int64_t[]){6}, 19, 1), gview(1, (int64_t[]){6}, 20, 1)};
    L = layer("SwiGLU", 28, 2, sw, 1);
    a_float(L, "alpha", 1.5f);
    expect(L, sw, 0, N(exp_swiglu), exp_swiglu);

    static const int64_t pos[] = {4, 0, 2};
    dt_view rp[4] = {gview(4, (int64_t[]){1, 2, 3, 4}, 21, 1), gview(2, (int64_t[]){5, 2}, 22, 1),
                     gview(2, (int64_t[]){5, 2}, 23, 1), ints(DUCTILE_INT64, 2, 1, pos)};
    rp[3].dims[1] = 3;
    L = layer("RotaryEmbedding", 23, 4, rp, 1);
    a_int(L, "interleaved", 1);
    expect(L, rp, 0, N(exp_rope), exp_rope);

    dt_view la[6] = {gview(3, (int64_t[]){1, 3, 4}, 24, 1), gview(3, (int64_t[]){1, 3, 2}, 25, 1),
                     gview(3, (int64_t[]){1, 3, 2}, 26, 1), omitted, gview(3, (int64_t[]){1, 3, 1}, 27, 0.2f),
                     gview(3, (int64_t[]){1, 3, 1}, 28, 1)};
    L = layer("LinearAttention", 27, 6, la, 2);
    a_int(L, "q_num_heads", 2);
    a_int(L, "kv_num_heads", 1);
    expect(L, la, 0, N(exp_la_y), exp_la_y);
    expect(L, la, 1, N(exp_la_state), exp_la_state);
    L = layer("LinearAttention", 27, 6, la, 2);
    a_int(L, "q_num_heads", 2);
    a_int(L, "kv_num_heads", 1);
    a_str(L, "update_rule", "linear");
    expect_error(L, la, DUCTILE_ERR_INVALID_ARGUMENT, "forbids input 4 (decay)");

    dt_view cc[4] = {gview(3, (int64_t[]){1, 2, 5}, 29, 1), gview(3, (int64_t[]){2, 1, 3}, 30, 1),
                     gview(1, (int64_t[]){2}, 31, 1), gview(3, (int64_t[]){1, 2, 2}, 32, 1)};
    L = layer("CausalConvWithState", 27, 4, cc, 2);
    a_str(L, "activation", "silu");
    expect(L, cc, 0, N(exp_cc_y), exp_cc_y);
    expect(L, cc, 1, N(exp_cc_state), exp_cc_state);
    L = layer("CausalConvWithState", 27, 4, cc, 2);
    a_str(L, "activation", "gelu");
    expect_error(L, cc, DUCTILE_ERR_UNSUPPORTED, "activation");
}

int main(void)
{
    if (dt_network_new(&net) != DUCTILE_OK) return 1;
    test_recurrent();
    test_signal();
    test_algebra();
    dt_network_delete(net);
    for (int i = 0; i < n_allocs; i++) free(allocs[i]);
    TEST_MAIN_END();
}
