/* The layout pass (builder/layout.c) on a hand-built network with symbolic dims: which layers
 * go channels last, where the Transposes go (and their perms), that every channels-last tensor
 * has its dims and dim symbols permuted (batch, height, width stay named), that the conv's
 * weights become KRSC and a [1, C, 1, 1] constant [1, 1, 1, C] with their data permuted, that
 * the network's tensors keep their names and dims, and that a backend that does not ask (or
 * mode NONE) leaves the network alone. And dt_permute (core/permute.h) against index math. */
#include "testutil.h"
#include "netbuild.h"

#include "backend/backend.h"
#include "builder/optimize.h"
#include "builder/passes.h"
#include "core/permute.h"
#include "ops/fused.h"
#include "runtime/engine_impl.h"

#include <stdint.h>
#include <string.h>

static float W[5 * 3 * 3 * 3], S[5], B[5];

static ductile_tensor *sym_tensor(int64_t c, bool first)
{
    /* [batch, c, height, width] (first) or [batch, height, width, c] */
    int64_t d[4] = {-1, first ? c : -1, -1, first ? -1 : c};
    ductile_tensor *t = tensor(4, d, NULL);
    const char *s[4] = {"batch", first ? NULL : "height", first ? "height" : "width", first ? "width" : NULL};
    memcpy(t->dim_sym, s, sizeof s);
    return t;
}

/* x [batch, 3, height, width] -> FusedConv(5x3x3x3, pads 1) -> y -> Mul(y, S [1,5,1,1]) -> z
 * (an output) -> Softmax(z, axis 1) -> s (an output). */
static ductile_layer *conv, *mul, *soft;
static ductile_tensor *x, *y, *z, *s, *w, *sc;

static void make_net(void)
{
    new_net();
    for (int i = 0; i < (int)(sizeof W / sizeof W[0]); i++) W[i] = (float)i;
    for (int i = 0; i < 5; i++) S[i] = 0.5f + (float)i, B[i] = (float)i;
    x = sym_tensor(3, true);
    dt_network_add_input(net, x);
    int64_t wd[4] = {5, 3, 3, 3}, bd[1] = {5}, sd[4] = {1, 5, 1, 1};
    w = tensor(4, wd, W);
    sc = tensor(4, sd, S);
    conv = layer("FusedConv", 3, 4);
    conv->domain = "ductile";
    conv->in[0] = x;
    conv->in[1] = w;
    conv->in[2] = tensor(1, bd, B);
    int64_t pads[4] = {1, 1, 1, 1};
    set_ints(conv, "pads", pads, 4);
    set_string(conv, "activation", "");
    y = conv->out[0] = sym_tensor(5, true);
    mul = layer("Mul", 2, 0);
    mul->in[0] = y;
    mul->in[1] = sc;
    z = mul->out[0] = sym_tensor(5, true);
    soft = layer("Softmax", 1, 1);
    attr(soft, "axis", DT_ATTR_INT)->i = 1;
    soft->in[0] = z;
    s = soft->out[0] = sym_tensor(5, true);
    dt_network_add_output(net, z);
    dt_network_add_output(net, s);
}

static void check_dims(const ductile_tensor *t, const int64_t *dims, const char *const *syms, const char *what)
{
    CHECK_EQ_INT(t->rank, 4);
    for (int i = 0; i < 4; i++) {
        if (t->dims[i] != dims[i] || (syms[i] == NULL) != (t->dim_sym[i] == NULL) ||
            (syms[i] && strcmp(syms[i], t->dim_sym[i])))
            fprintf(stderr, "  %s dim %d: %lld (%s), expected %lld (%s)\n", what, i, (long long)t->dims[i],
                    t->dim_sym[i] ? t->dim_sym[i] : "-", (long long)dims[i], syms[i] ? syms[i] : "-");
        CHECK(t->dims[i] == dims[i]);
        CHECK((syms[i] == NULL) == (t->dim_sym[i] == NULL) && (!syms[i] || !strcmp(syms[i], t->dim_sym[i])));
    }
}

static bool is_perm(const ductile_layer *L, const int64_t *perm)
{
    int64_t n = 0;
    const int64_t *p = dt_attr_ints(L, "perm", &n);
    return !strcmp(L->op_type, "Transpose") && n == 4 && p && !memcmp(p, perm, sizeof(int64_t) * 4);
}

static void test_region_with_symbolic_dims(void)
{
    make_net();
    int n = -1;
    CHECK_EQ_INT(dt_pass_layout(net, NULL, 0, DT_LAYOUT_ALL, &n), DUCTILE_OK);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(net->n_layers, 5);
    if (net->n_layers != 5) return;
    static const int64_t to_nhwc[4] = {0, 2, 3, 1}, to_nchw[4] = {0, 3, 1, 2};
    const ductile_layer *tin = net->layers[0], *tout = net->layers[3];
    CHECK(is_perm(tin, to_nhwc) && tin->in[0] == x);
    CHECK(net->layers[1] == conv && net->layers[2] == mul && net->layers[4] == soft);
    for (int i = 0; i < 5; i++) CHECK_EQ_INT(net->layers[i]->index, i);
    CHECK_EQ_STR(dt_attr_string(conv, "layout", ""), "NHWC");
    CHECK(dt_fused_conv_nhwc(conv));
    /* channels-last tensors: dims and symbols permuted */
    static const int64_t last[4] = {-1, -1, -1, 3}, last5[4] = {-1, -1, -1, 5}, first5[4] = {-1, 5, -1, -1};
    static const char *const sym_last[4] = {"batch", "height", "width", NULL};
    static const char *const sym_first[4] = {"batch", NULL, "height", "width"};
    CHECK(conv->in[0] == tin->out[0] && tin->out[0]->producer == tin);
    check_dims(conv->in[0], last, sym_last, "x/nhwc");
    CHECK_EQ_STR(conv->in[0]->name, "t0/nhwc");
    check_dims(conv->out[0], last5, sym_last, "y/nhwc");
    CHECK(conv->out[0] != y && mul->in[0] == conv->out[0]);
    check_dims(mul->out[0], last5, sym_last, "z/nhwc");
    /* z, a network output, keeps its name and channels-first dims, computed by a Transpose
     * right after the Mul; Softmax reads it. */
    CHECK(tout->in[0] == mul->out[0] && tout->out[0] == z && is_perm(tout, to_nchw) && z->producer == tout);
    check_dims(z, first5, sym_first, "z");
    CHECK(soft->in[0] == z);
    /* KRSC weights: W'[m][kh][kw][c] = W[m][c][kh][kw]; the bias stays. */
    const ductile_tensor *wt = conv->in[1];
    static const int64_t krsc[4] = {5, 3, 3, 3};
    CHECK(wt != w && wt->data && wt->nbytes == sizeof W && !memcmp(wt->dims, krsc, sizeof krsc));
    int bad = 0;
    for (int m = 0; wt->data && m < 5; m++)
        for (int c = 0; c < 3; c++)
            for (int kh = 0; kh < 3; kh++)
                for (int kw = 0; kw < 3; kw++)
                    bad += ((const float *)wt->data)[((m * 3 + kh) * 3 + kw) * 3 + c] != W[((m * 3 + c) * 3 + kh) * 3 + kw];
    CHECK_EQ_INT(bad, 0);
    CHECK(conv->in[2]->data == B);
    /* the broadcast constant: [1, 5, 1, 1] -> [1, 1, 1, 5], same values */
    const ductile_tensor *st = mul->in[1];
    static const int64_t s_last[4] = {1, 1, 1, 5};
    CHECK(st != sc && st->rank == 4 && !memcmp(st->dims, s_last, sizeof s_last) && st->data &&
          !memcmp(st->data, S, sizeof S));
    /* The copy the builder makes next drops y (nobody reads it) and keeps the rest. */
    ductile_network *w2 = NULL;
    CHECK_EQ_INT(dt_pass_extract(net, &w2), DUCTILE_OK);
    if (w2) {
        CHECK_EQ_INT(w2->n_layers, 5);
        CHECK(dt_network_find(w2, y->name) == NULL);
        CHECK(dt_network_find(w2, z->name) != NULL);
        dt_network_delete(w2);
    }
}

static bool never(const ductile_layer *L, unsigned flags)
{
    (void)L, (void)flags;
    return false;
}

static unsigned asked_flags;
static bool half_only(const ductile_layer *L, unsigned flags)
{
    (void)L;
    asked_flags = flags;
    return (flags & (1u << DUCTILE_FLAG_FP16)) != 0;
}

static void test_backend_decides(void)
{
    dt_backend be = {.name = "fake"};
    int n = -1;
    make_net();
    CHECK_EQ_INT(dt_pass_layout(net, &be, 1u << DUCTILE_FLAG_FP16, DT_LAYOUT_BACKEND, &n), DUCTILE_OK);
    CHECK(n == 0 && net->n_layers == 3); /* no prefers_nhwc */
    be.prefers_nhwc = never;
    CHECK_EQ_INT(dt_pass_layout(net, &be, 1u << DUCTILE_FLAG_FP16, DT_LAYOUT_BACKEND, &n), DUCTILE_OK);
    CHECK(n == 0 && net->n_layers == 3 && conv->in[0] == x && !dt_fused_conv_nhwc(conv));
    be.prefers_nhwc = half_only;
    CHECK_EQ_INT(dt_pass_layout(net, &be, 0, DT_LAYOUT_BACKEND, &n), DUCTILE_OK);
    CHECK(n == 0 && net->n_layers == 3);
    CHECK_EQ_INT(dt_pass_layout(net, &be, 1u << DUCTILE_FLAG_FP16, DT_LAYOUT_NONE, &n), DUCTILE_OK);
    CHECK(n == 0 && net->n_layers == 3);
    CHECK_EQ_INT(dt_pass_layout(net, &be, 1u << DUCTILE_FLAG_FP16, DT_LAYOUT_BACKEND, &n), DUCTILE_OK);
    CHECK_EQ_INT(asked_flags, 1u << DUCTILE_FLAG_FP16);
    CHECK(n == 2 && net->n_layers == 5 && dt_fused_conv_nhwc(conv));
    /* A second run finds nothing new: the conv is channels last already. */
    CHECK_EQ_INT(dt_pass_layout(net, NULL, 0, DT_LAYOUT_ALL, &n), DUCTILE_OK);
    CHECK(n == 0 && net->n_layers == 5);
}

static void test_permute_matches_index_math(void)
{
    int64_t dims[4] = {2, 3, 5, 7};
    uint16_t src[210], dst[210];
    float fs[210], fd[210];
    for (int i = 0; i < 210; i++) src[i] = (uint16_t)i, fs[i] = (float)i;
    dt_permute(src, dst, 4, dims, dt_perm_to_nhwc, sizeof(uint16_t));
    dt_permute(fs, fd, 4, dims, dt_perm_to_nhwc, sizeof(float));
    int bad = 0;
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 3; c++)
            for (int h = 0; h < 5; h++)
                for (int w = 0; w < 7; w++) {
                    int from = ((n * 3 + c) * 5 + h) * 7 + w, to = ((n * 5 + h) * 7 + w) * 3 + c;
                    bad += dst[to] != src[from] || fd[to] != fs[from];
                }
    CHECK_EQ_INT(bad, 0);
    int64_t back[4] = {2, 5, 7, 3};
    float fb[210];
    dt_permute(fd, fb, 4, back, dt_perm_to_nchw, sizeof(float));
    CHECK(!memcmp(fb, fs, sizeof fs));
    /* rank 3, element size 3 (the generic path) */
    int64_t d3[3] = {2, 3, 4};
    int perm[3] = {2, 0, 1};
    unsigned char a[72], b[72];
    for (int i = 0; i < 72; i++) a[i] = (unsigned char)i;
    dt_permute(a, b, 3, d3, perm, 3);
    bad = 0;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++)
                bad += memcmp(b + ((k * 2 + i) * 3 + j) * 3, a + ((i * 3 + j) * 4 + k) * 3, 3) != 0;
    CHECK_EQ_INT(bad, 0);
}

/* The layout pass's Transpose back after a global pool, [batch, 1, 1, C] -> [batch, C, 1, 1], is
 * a view (the plan aliases it: no copy); one that moves a dim not fixed at 1 (dynamic, or
 * fixed larger) is not, nor a perm that is missing or out of range. */
static void test_unit_transpose_is_view(void)
{
    new_net();
    static const int64_t back[4] = {0, 3, 1, 2}, bad[4] = {0, 3, 1, 4};
    struct {
        int64_t in[4];
        const int64_t *perm;
        bool view;
    } cases[] = {
        {{-1, 1, 1, 1280}, back, true},
        {{2, 1, 1, 7}, back, true},
        {{-1, 1, 1, 1}, back, true},
        {{-1, 2, 1, 1280}, back, false},  /* H fixed at 2 moves past C */
        {{-1, -1, 1, 1280}, back, false}, /* a dynamic H might not be 1 */
        {{-1, 1, 1, 1280}, bad, false},
        {{-1, 1, 1, 1280}, NULL, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ductile_layer *T = layer("Transpose", 1, cases[i].perm ? 1 : 0);
        T->in[0] = tensor(4, cases[i].in, NULL);
        int64_t od[4];
        for (int k = 0; k < 4; k++) od[k] = cases[i].in[back[k]];
        T->out[0] = tensor(4, od, NULL);
        if (cases[i].perm) set_ints(T, "perm", cases[i].perm, 4);
        if (dt_layer_is_view(T) != cases[i].view) fprintf(stderr, "transpose case %zu\n", i);
        CHECK(dt_layer_is_view(T) == cases[i].view);
    }
    ductile_layer *R = layer("Reshape", 2, 0);
    CHECK(dt_layer_is_view(R));
}

int main(void)
{
    test_region_with_symbolic_dims();
    test_backend_decides();
    test_permute_matches_index_math();
    test_unit_transpose_is_view();
    dt_network_delete(net);
    TEST_MAIN_END();
}
