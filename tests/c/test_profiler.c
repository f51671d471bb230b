/* ductile_context_set_profiler: one report per executed layer, in execution order, with the
 * layer's name, op type, tactic, FLOPs and a time; layers of the shape pass are not reported;
 * the reports of one execute add up to no more than its wall time; NULL turns it off.
 * Model: x [N, 2, 6, 6] -> Conv(3x2x3x3, bias) -> Relu -> Reshape [N, -1] (its shape from
 * Shape -> Slice -> Concat, the shape pass) -> MatMul [48, 5] -> Softmax -> y [N, 5]. */
#include "ductile.h"
#include "onnx_writer.h"
#include "testutil.h"

#include <time.h>

enum { CI = 2, CO = 3, K = 3, HW = 6, HO = HW - K + 1, FEAT = CO * HO * HO, OUT = 5 };

static pbw profiled_model(void)
{
    static float w[CO * CI * K * K], b[CO], m[FEAT * OUT];
    for (int i = 0; i < CO * CI * K * K; i++) w[i] = (float)(i % 7 - 3) * 0.125f;
    for (int i = 0; i < CO; i++) b[i] = 0.25f * (float)i;
    for (int i = 0; i < FEAT * OUT; i++) m[i] = (float)(i % 5 - 2) * 0.0625f;
    pbw g = {0};
    int64_t wd[4] = {CO, CI, K, K}, bd = CO, md[2] = {FEAT, OUT}, one = 1, zero = 0, minus1 = -1;
    w_msg(&g, 1, node("conv", "Conv", NULL, S("x", "w", "b"), S("c"), NULL, 0));
    w_msg(&g, 1, node("relu", "Relu", NULL, S("c"), S("r"), NULL, 0));
    w_msg(&g, 1, node("shape", "Shape", NULL, S("r"), S("s"), NULL, 0));
    w_msg(&g, 1, node("slice", "Slice", NULL, S("s", "zero", "one"), S("n"), NULL, 0));
    pbw axis = attr_int("axis", 0);
    w_msg(&g, 1, node("concat", "Concat", NULL, S("n", "minus1"), S("shp"), &axis, 1));
    w_msg(&g, 1, node("reshape", "Reshape", NULL, S("r", "shp"), S("f"), NULL, 0));
    w_msg(&g, 1, node("matmul", "MatMul", NULL, S("f", "m"), S("z"), NULL, 0));
    w_msg(&g, 1, node("softmax", "Softmax", NULL, S("z"), S("y"), NULL, 0));
    w_str(&g, 2, "profiled");
    w_msg(&g, 5, tensor_raw("w", DUCTILE_FLOAT32, 4, wd, w, sizeof w));
    w_msg(&g, 5, tensor_raw("b", DUCTILE_FLOAT32, 1, &bd, b, sizeof b));
    w_msg(&g, 5, tensor_raw("m", DUCTILE_FLOAT32, 2, md, m, sizeof m));
    w_msg(&g, 5, tensor_raw("zero", DUCTILE_INT64, 1, &one, &zero, sizeof zero));
    w_msg(&g, 5, tensor_raw("one", DUCTILE_INT64, 1, &one, &one, sizeof one));
    w_msg(&g, 5, tensor_raw("minus1", DUCTILE_INT64, 1, &one, &minus1, sizeof minus1));
    int64_t xd[4] = {-1, CI, HW, HW}, yd[2] = {-1, OUT};
    w_msg(&g, 11, value_info("x", DUCTILE_FLOAT32, 4, xd, S("N", NULL, NULL, NULL)));
    w_msg(&g, 12, value_info("y", DUCTILE_FLOAT32, 2, yd, S("N", NULL)));
    return model(g, NULL, 0);
}

#define MAX_REPORTS 16

typedef struct reports {
    int n;
    char layer[MAX_REPORTS][64], op[MAX_REPORTS][32], tactic[MAX_REPORTS][64];
    double ms[MAX_REPORTS], flops[MAX_REPORTS];
    int index[MAX_REPORTS];
} reports;

static void collect(void *user, const ductile_layer_timing *t)
{
    reports *r = user;
    if (r->n >= MAX_REPORTS) {
        r->n++;
        return;
    }
    snprintf(r->layer[r->n], sizeof r->layer[0], "%s", t->layer);
    snprintf(r->op[r->n], sizeof r->op[0], "%s", t->op_type);
    snprintf(r->tactic[r->n], sizeof r->tactic[0], "%s", t->tactic);
    r->ms[r->n] = t->ms;
    r->flops[r->n] = t->flops;
    r->index[r->n] = t->index;
    r->n++;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

int main(void)
{
    pbw m = profiled_model();
    ductile_builder *b = NULL;
    ductile_network *net = NULL;
    ductile_profile *p = NULL;
    ductile_config *c = NULL;
    ductile_engine *e = NULL;
    ductile_context *ctx = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_create(b, &net), DUCTILE_OK);
    CHECK_EQ_INT(ductile_onnx_parse_memory(net, m.p, m.n), DUCTILE_OK);
    ductile_dims mn = {4, {1, CI, HW, HW}}, op = {4, {2, CI, HW, HW}}, mx = {4, {4, CI, HW, HW}};
    ductile_profile_create(b, &p);
    ductile_config_create(b, &c);
    CHECK_EQ_INT(ductile_profile_set_shape(p, "x", &mn, &op, &mx), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_add_profile(c, p, NULL), DUCTILE_OK);
    CHECK_EQ_INT(ductile_builder_build(b, net, c, &e), DUCTILE_OK);
    if (!e) TEST_MAIN_END();
    CHECK_EQ_INT(ductile_context_create(e, &ctx), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_profiler(NULL, collect, NULL), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(), "set_profiler: context is NULL");

    const int64_t n = 3;
    ductile_dims xs = {4, {n, CI, HW, HW}};
    CHECK_EQ_INT(ductile_context_set_input_shape(ctx, "x", &xs), DUCTILE_OK);
    static float x[4 * CI * HW * HW], y[4 * OUT];
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = (float)((int)(i % 11) - 5) * 0.1f;
    CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, "x", x), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, "y", y), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_execute(ctx), DUCTILE_OK); /* shape pass and memory plan */

    reports r = {0};
    CHECK_EQ_INT(ductile_context_set_profiler(ctx, collect, &r), DUCTILE_OK);
    double t0 = now_ms();
    CHECK_EQ_INT(ductile_context_execute(ctx), DUCTILE_OK);
    double wall = now_ms() - t0;

    /* Conv + Relu are one FusedConv (keeping the Conv's name); Shape, Slice and
     * Concat ran in the shape pass. */
    static const char *const layers[] = {"conv", "reshape", "matmul", "softmax"};
    static const char *const ops[] = {"FusedConv", "Reshape", "MatMul", "Softmax"};
    CHECK_EQ_INT(r.n, 4);
    double sum = 0;
    for (int i = 0; i < r.n && i < 4; i++) {
        CHECK_EQ_STR(r.layer[i], layers[i]);
        CHECK_EQ_STR(r.op[i], ops[i]);
        CHECK_EQ_INT(r.index[i], i);
        CHECK(r.ms[i] >= 0);
        sum += r.ms[i];
    }
    CHECK(sum <= wall);
    /* The engine's own listing names the same layers as executed. */
    const char *info = ductile_engine_layer_info(e);
    for (int i = 0; i < 4; i++) {
        char want[96];
        snprintf(want, sizeof want, "{ \"Name\": \"%s\", \"LayerType\": \"%s\"", layers[i], ops[i]);
        CHECK(info && strstr(info, want));
    }
    /* A multiply-add counts 2: N*CO*HO*HO outputs of CI*K*K each; N*OUT of FEAT each. */
    CHECK_EQ_INT((int64_t)r.flops[0], 2 * n * CO * HO * HO * CI * K * K);
    CHECK_EQ_INT((int64_t)r.flops[1], 0);
    CHECK_EQ_INT((int64_t)r.flops[2], 2 * n * OUT * FEAT);
    CHECK_EQ_INT((int64_t)r.flops[3], 0);
    CHECK(starts_with(r.tactic[0], "cpu.FusedConv.") &&
          (!strcmp(r.tactic[0] + 14, "im2col") || !strcmp(r.tactic[0] + 14, "padded") ||
           !strcmp(r.tactic[0] + 14, "winograd") || !strcmp(r.tactic[0] + 14, "smallc")));
    /* The Reshape between two activations is a view of the conv's output: nothing ran. */
    CHECK_EQ_STR(r.tactic[1], "cpu.Reshape.alias");
    CHECK_EQ_STR(r.tactic[2], "cpu.MatMul.tall.packed_b"); /* B constant: packed at build */
    CHECK_EQ_STR(r.tactic[3], "cpu.Softmax");

    /* A second execute reports again from index 0; NULL turns reports off. */
    CHECK_EQ_INT(ductile_context_execute(ctx), DUCTILE_OK);
    CHECK_EQ_INT(r.n, 8);
    CHECK_EQ_INT(r.index[4], 0);
    CHECK_EQ_STR(r.layer[7], "softmax");
    CHECK_EQ_INT(ductile_context_set_profiler(ctx, NULL, &r), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_execute(ctx), DUCTILE_OK);
    CHECK_EQ_INT(r.n, 8);

    ductile_context_free(ctx);
    ductile_engine_free(e);
    ductile_config_free(c);
    ductile_profile_free(p);
    ductile_network_free(net);
    ductile_builder_free(b);
    free(m.p);
    TEST_MAIN_END();
}
