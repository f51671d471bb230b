/* Gradient (ai.onnx.preview.training) through the C API: the importer rewrites the node into
 * ordinary default-domain layers (no Gradient layer reaches the builder or the engine file),
 * the engine survives serialize + load, broadcast operands get their gradients summed back to
 * their own shapes, and a layer it cannot differentiate is refused naming both nodes. */
#include "graph/network.h"
#include "onnx_writer.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TRAIN "ai.onnx.preview.training"

static pbw attr_strings(const char *name, const char *const *v)
{
    pbw a = {0};
    w_str(&a, 1, name);
    for (; *v; v++) w_str(&a, 9, *v);
    w_int(&a, 20, 8);
    return a;
}

/* d = op2(op1(a, b), a); Gradient(xs = [a, b], y = d); a [3,1], b [1,4]. */
static pbw grad_model(const char *op1, const char *op2)
{
    pbw g = {0};
    int64_t da[2] = {3, 1}, db[2] = {1, 4};
    w_msg(&g, 1, node("n1", op1, NULL, S("a", "b"), S("c"), NULL, 0));
    w_msg(&g, 1, node("n2", op2, NULL, S("c", "a"), S("d"), NULL, 0));
    pbw attrs[2] = {attr_strings("xs", S("a", "b")), attr_str("y", "d", 3)};
    w_msg(&g, 1, node("my_gradient", "Gradient", TRAIN, S("a", "b"), S("da", "db"), attrs, 2));
    w_str(&g, 2, "g");
    w_msg(&g, 11, value_info("a", DUCTILE_FLOAT32, 2, da, NULL));
    w_msg(&g, 11, value_info("b", DUCTILE_FLOAT32, 2, db, NULL));
    w_msg(&g, 12, value_info("d", DUCTILE_FLOAT32, -1, NULL, NULL));
    w_msg(&g, 12, value_info("da", DUCTILE_FLOAT32, -1, NULL, NULL));
    w_msg(&g, 12, value_info("db", DUCTILE_FLOAT32, -1, NULL, NULL));
    return model(g, TRAIN, 1);
}

static ductile_status parse(pbw *m, ductile_network **out)
{
    if (dt_network_new(out) != DUCTILE_OK) exit(2);
    ductile_status s = ductile_onnx_parse_memory(*out, m->p, m->n);
    free(m->p);
    return s;
}

/* Builds, serializes, frees, loads back: the engine under test is the reloaded one. */
static ductile_engine *build_reloaded(const ductile_network *net)
{
    ductile_builder *b = NULL;
    ductile_config *c = NULL;
    ductile_engine *e = NULL, *back = NULL;
    void *bytes = NULL;
    size_t size = 0;
    ductile_status s = ductile_builder_create(&b);
    if (!s) s = ductile_config_create(b, &c);
    if (!s) s = ductile_builder_build(b, net, c, &e);
    if (!s) s = ductile_engine_serialize(e, &bytes, &size);
    if (!s) s = ductile_engine_load_memory(bytes, size, &back);
    if (s) fprintf(stderr, "build: %s\n", ductile_last_error());
    CHECK_EQ_INT(s, DUCTILE_OK);
    ductile_free(bytes);
    ductile_engine_free(e);
    ductile_config_free(c);
    ductile_builder_free(b);
    return back;
}

static void test_add_mul_broadcast(void)
{
    ductile_network *net;
    pbw m = grad_model("Add", "Mul");
    CHECK_EQ_INT(parse(&m, &net), DUCTILE_OK);
    /* Only ordinary layers: the Gradient node became Shape, ReduceSum, Mul... */
    for (int l = 0; l < net->n_layers; l++) {
        CHECK(strcmp(net->layers[l]->op_type, "Gradient") != 0);
        CHECK_EQ_STR(net->layers[l]->domain, "");
    }
    ductile_engine *e = build_reloaded(net);
    dt_network_delete(net);
    if (!e) return;
    ductile_context *ctx = NULL;
    CHECK_EQ_INT(ductile_context_create(e, &ctx), DUCTILE_OK);
    float a[3] = {0.5f, -1.25f, 2.0f}, b[4] = {1.0f, -0.5f, 0.25f, 3.0f};
    float d[12], ga[3], gb[4];
    CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, "a", a), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, "b", b), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, "d", d), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, "da", ga), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, "db", gb), DUCTILE_OK);
    ductile_dims shape;
    CHECK_EQ_INT(ductile_context_get_tensor_shape(ctx, "da", &shape), DUCTILE_OK);
    CHECK(shape.nb_dims == 2 && shape.d[0] == 3 && shape.d[1] == 1);
    CHECK_EQ_INT(ductile_context_get_tensor_shape(ctx, "db", &shape), DUCTILE_OK);
    CHECK(shape.nb_dims == 2 && shape.d[0] == 1 && shape.d[1] == 4);
    CHECK_EQ_INT(ductile_context_execute(ctx), DUCTILE_OK);
    /* d = (a + b) a: dd/da = sum_j (2a_i + b_j), dd/db = sum_i a_i. */
    for (int i = 0; i < 3; i++) {
        float want = 0;
        for (int j = 0; j < 4; j++) {
            CHECK(fabsf(d[i * 4 + j] - (a[i] + b[j]) * a[i]) < 1e-6f);
            want += 2 * a[i] + b[j];
        }
        CHECK(fabsf(ga[i] - want) < 1e-5f);
    }
    for (int j = 0; j < 4; j++) CHECK(fabsf(gb[j] - (a[0] + a[1] + a[2])) < 1e-5f);
    ductile_context_free(ctx);
    ductile_engine_free(e);
}

static void test_matmul_refused(void)
{
    ductile_network *net;
    pbw m = grad_model("MatMul", "Add");
    CHECK_EQ_INT(parse(&m, &net), DUCTILE_ERR_UNSUPPORTED);
    CHECK_EQ_STR(ductile_last_error(),
                 "node 'my_gradient' (ai.onnx.preview.training.Gradient, opset 1): cannot differentiate node 'n1' "
                 "(MatMul) on the path from xs to y 'd'; ductile differentiates Add, Sub, Mul, Div, Neg, Identity, "
                 "Relu, Sigmoid and Tanh");
    dt_network_delete(net);
}

int main(void)
{
    test_add_mul_broadcast();
    test_matmul_refused();
    TEST_MAIN_END();
}
