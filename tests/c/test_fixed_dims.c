/* A dim the model fixes stays fixed: a profile that ranges it is refused (naming the input,
 * the dim, the declared size, the override and what ties the dim); ductile_network_set_input_dims
 * overrides it, and the build then moves the dim and refuses a constant that ties it to its
 * old size, also where the sizes divide (superres_op10_static at 448 used to give batch 4).
 *   1. a network made with the API: a = [2, 3] -> sigmoid;
 *   2. superres_op10_static.onnx from $DUCTILE_MODELS (skipped when the suite is absent). */
#include "ductile.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#define HINT(py, cli)                                                                            \
    "a dim the model fixes stays fixed unless it is overridden (C: ductile_network_set_input_dims; " \
    "Python: network.get_input(0).shape = " py "; command line: --dynamicDims=" cli ")"

static ductile_dims D2(int64_t a, int64_t b) { ductile_dims d = {2, {a, b}}; return d; }
static ductile_dims D4(int64_t a, int64_t b, int64_t c, int64_t e) { ductile_dims d = {4, {a, b, c, e}}; return d; }

static ductile_status build_one(ductile_builder *b, ductile_network *n, const char *input, ductile_dims mn,
                                ductile_dims op, ductile_dims mx, ductile_engine **e)
{
    ductile_profile *p = NULL;
    ductile_config *c = NULL;
    *e = NULL;
    ductile_profile_create(b, &p);
    ductile_config_create(b, &c);
    ductile_status s = ductile_profile_set_shape(p, input, &mn, &op, &mx);
    if (!s) s = ductile_config_add_profile(c, p, NULL);
    if (!s) s = ductile_builder_build(b, n, c, e);
    ductile_profile_free(p);
    ductile_config_free(c);
    return s;
}

static ductile_network *sigmoid_net(ductile_builder *b, ductile_tensor **a, const char **out)
{
    ductile_network *n = NULL;
    ductile_dims d = D2(2, 3);
    ductile_layer *sig = NULL;
    CHECK_EQ_INT(ductile_network_create(b, &n), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_input(n, "a", DUCTILE_FLOAT32, &d, NULL, a), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_activation(n, *a, DUCTILE_ACTIVATION_SIGMOID, &sig), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_mark_output(n, ductile_layer_get_output(sig, 0)), DUCTILE_OK);
    *out = ductile_tensor_name(ductile_layer_get_output(sig, 0));
    return n;
}

static void test_api_network(ductile_builder *b)
{
    ductile_tensor *a = NULL;
    const char *oname = NULL;
    ductile_network *n = sigmoid_net(b, &a, &oname);
    ductile_engine *e = NULL;

    /* Ranging the fixed dim 1 is refused; nothing ties it, so the override is enough. */
    CHECK_EQ_INT(build_one(b, n, "a", D2(2, 3), D2(2, 4), D2(2, 6), &e), DUCTILE_ERR_PROFILE);
    CHECK_EQ_STR(ductile_last_error(),
                 "profile 0: input 'a' dimension 1 is fixed to 3 by the model but the profile ranges it over 3..6; "
                 HINT("(2, -1)", "a:2x-1") "; with the override the model passes the shape check at 3..6");

    /* Misuse of the override. */
    ductile_dims bad_rank = {3, {2, -1, 1}}, bad_dim = D2(2, -7), over = D2(2, -1);
    CHECK_EQ_INT(ductile_network_set_input_dims(NULL, a, &over), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(), "set_input_dims: network, tensor or dims is NULL");
    CHECK_EQ_INT(ductile_network_set_input_dims(n, a, &bad_rank), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(), "set_input_dims: input 'a' has rank 2 but 3 dims were given");
    CHECK_EQ_INT(ductile_network_set_input_dims(n, a, &bad_dim), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(), "set_input_dims: input 'a' dimension 1 is -7 (expected -1 for dynamic, or >= 0)");
    CHECK_EQ_INT(ductile_network_set_input_dims(n, ductile_network_get_output(n, 0), &over), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(), "set_input_dims: tensor 'Sigmoid_0_output' is not a network input");
    ductile_tensor *other_a = NULL;
    const char *other_out = NULL;
    ductile_network *other = sigmoid_net(b, &other_a, &other_out);
    CHECK_EQ_INT(ductile_network_set_input_dims(n, other_a, &over), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(), "set_input_dims: tensor 'a' does not belong to this network");
    ductile_network_free(other);

    /* Overridden: a symbol named after the input, carried to the output; builds and runs. */
    CHECK_EQ_INT(ductile_network_set_input_dims(n, a, &over), DUCTILE_OK);
    CHECK_EQ_INT(ductile_tensor_dims(a).d[1], -1);
    CHECK_EQ_STR(ductile_tensor_dim_name(a, 1), "a_dim1");
    CHECK_EQ_STR(ductile_tensor_dim_name(ductile_network_get_output(n, 0), 1), "a_dim1");
    CHECK_EQ_INT(build_one(b, n, "a", D2(2, 3), D2(2, 4), D2(2, 6), &e), DUCTILE_OK);
    ductile_context *ctx = NULL;
    if (e) CHECK_EQ_INT(ductile_context_create(e, &ctx), DUCTILE_OK);
    if (ctx) {
        float in[10], out[10];
        for (int i = 0; i < 10; i++) in[i] = (float)i / 4.0f - 1.0f;
        ductile_dims shape = D2(2, 5), got;
        CHECK_EQ_INT(ductile_context_set_input_shape(ctx, "a", &shape), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_get_tensor_shape(ctx, oname, &got), DUCTILE_OK);
        CHECK_EQ_INT(got.d[1], 5);
        CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, "a", in), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, oname, out), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_execute(ctx), DUCTILE_OK);
        for (int i = 0; i < 10; i++) CHECK(fabsf(out[i] - 1.0f / (1.0f + expf(-in[i]))) < 1e-6f);
    }
    ductile_context_free(ctx);
    ductile_engine_free(e);

    /* Fixing it back to the model's size restores the rule. */
    ductile_dims back = D2(2, 3);
    CHECK_EQ_INT(ductile_network_set_input_dims(n, a, &back), DUCTILE_OK);
    CHECK_EQ_STR(ductile_tensor_dim_name(a, 1), NULL);
    CHECK_EQ_INT(build_one(b, n, "a", D2(2, 3), D2(2, 4), D2(2, 6), &e), DUCTILE_ERR_PROFILE);
    ductile_network_free(n);
}

#define RESHAPE_TIE                                                                                  \
    "node '/ps/Reshape' (Reshape, opset 10): '/ps/Constant_output_0' = [-1,1,3,3,224,224] ties "   \
    "'/c4/Conv_output_0' dimension 2 to 224: at [1,9,448,224] it reshapes to [2,1,3,3,224,224], "  \
    "where dimension 0 grows instead of dimension 4"

static ductile_network *parse(ductile_builder *b, const char *path)
{
    ductile_network *n = NULL;
    CHECK_EQ_INT(ductile_network_create(b, &n), DUCTILE_OK);
    CHECK_EQ_INT(ductile_onnx_parse_file(n, path), DUCTILE_OK);
    return n;
}

/* Runs e at `shape` on x; out gets 672*672 floats per image. */
static void run_superres(const ductile_engine *e, ductile_dims shape, float *x, float *out)
{
    ductile_context *ctx = NULL;
    CHECK_EQ_INT(ductile_context_create(e, &ctx), DUCTILE_OK);
    if (!ctx) return;
    CHECK_EQ_INT(ductile_context_set_input_shape(ctx, "input", &shape), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, "input", x), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, "output", out), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_execute(ctx), DUCTILE_OK);
    ductile_context_free(ctx);
}

static void test_superres_static(ductile_builder *b, const char *path)
{
    ductile_network *n = parse(b, path);
    ductile_tensor *in = ductile_network_get_input(n, 0);
    ductile_engine *e = NULL;

    /* (a) The profile on the declared [1,1,224,224]. */
    CHECK_EQ_INT(build_one(b, n, "input", D4(1, 1, 224, 224), D4(2, 1, 224, 224), D4(4, 1, 448, 448), &e), DUCTILE_ERR_PROFILE);
    CHECK_EQ_STR(ductile_last_error(),
                 "profile 0: input 'input' dimension 2 is fixed to 224 by the model but the profile ranges it over 224..448; "
                 HINT("(-1, 1, -1, -1)", "input:-1x1x-1x-1")
                 "; even overridden, the model ties it to 224, so it must be exported again with this dim dynamic: " RESHAPE_TIE);

    /* (b) Overridden, the sizes that divide are refused all the same. */
    ductile_dims dyn = D4(-1, 1, -1, -1);
    CHECK_EQ_INT(ductile_network_set_input_dims(n, in, &dyn), DUCTILE_OK);
    CHECK_EQ_STR(ductile_tensor_dim_name(in, 0), "input_dim0");
    CHECK_EQ_STR(ductile_tensor_dim_name(in, 3), "input_dim3");
    CHECK_EQ_INT(build_one(b, n, "input", D4(1, 1, 224, 224), D4(2, 1, 224, 224), D4(4, 1, 448, 448), &e), DUCTILE_ERR_PROFILE);
    CHECK_EQ_STR(ductile_last_error(),
                 "profile 0: input 'input' dimension 2 (input_dim2) ranges over 224..448 but the model ties it to its "
                 "declared size 224: " RESHAPE_TIE);

    /* (c) and those that do not divide, as before. */
    CHECK_EQ_INT(build_one(b, n, "input", D4(1, 1, 64, 64), D4(1, 1, 224, 224), D4(1, 1, 512, 512), &e), DUCTILE_ERR_PROFILE);
    CHECK_EQ_STR(ductile_last_error(),
                 "profile 0: input 'input' dimension 2 (input_dim2) ranges over 64..512 but the model fails at 64: "
                 "node '/ps/Reshape' (Reshape, opset 10): cannot reshape '/c4/Conv_output_0' of shape [1,9,64,224] "
                 "(129024 elements) to '/ps/Constant_output_0' = [-1,1,3,3,224,224]: the known dims give 451584 "
                 "elements, which does not divide 129024");

    /* Batch alone is free: the Reshape's -1 is the batch. Each image of a batch of 3 equals
     * that image run alone, to float rounding: batch 1 runs the tactics timed at the profile's
     * min and batch 3 those of its max, which may differ (Winograd or a GEMM: other bits). */
    ductile_dims batch = D4(-1, 1, 224, 224);
    CHECK_EQ_INT(ductile_network_set_input_dims(n, in, &batch), DUCTILE_OK);
    CHECK_EQ_STR(ductile_tensor_dim_name(in, 2), NULL);
    CHECK_EQ_INT(build_one(b, n, "input", D4(1, 1, 224, 224), D4(2, 1, 224, 224), D4(3, 1, 224, 224), &e), DUCTILE_OK);
    if (e) {
        size_t px = 224 * 224, opx = 672 * 672;
        float *x = malloc(sizeof *x * 3 * px), *out = malloc(sizeof *out * 3 * opx), *one = malloc(sizeof *one * opx);
        if (x && out && one) {
            srand(5);
            for (size_t i = 0; i < 3 * px; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
            run_superres(e, D4(3, 1, 224, 224), x, out);
            for (int k = 0; k < 3; k++) {
                run_superres(e, D4(1, 1, 224, 224), x + (size_t)k * px, one);
                float diff = 0.0f, top = 0.0f;
                for (size_t i = 0; i < opx; i++) {
                    float d = fabsf(one[i] - out[(size_t)k * opx + i]), a = fabsf(one[i]);
                    diff = d > diff ? d : diff;
                    top = a > top ? a : top;
                }
                CHECK(top > 0.0f && diff <= 1e-4f * top);
                if (diff > 1e-4f * top) fprintf(stderr, "image %d: max difference %g (largest output %g)\n", k, diff, top);
            }
        }
        free(x);
        free(out);
        free(one);
    }
    ductile_engine_free(e);
    ductile_network_free(n);
}

int main(void)
{
    ductile_builder *b = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    test_api_network(b);
    const char *models = getenv("DUCTILE_MODELS");
    if (!models || !models[0]) models = "../shared/models";
    char path[1024];
    snprintf(path, sizeof path, "%s/superres_op10_static.onnx", models);
    if (access(path, R_OK) == 0) test_superres_static(b, path);
    else printf("SKIP: superres_op10_static.onnx not found; set DUCTILE_MODELS to the model suite's folder\n");
    ductile_builder_free(b);
    TEST_MAIN_END();
}
