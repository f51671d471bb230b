/* The builder's profile validation and the context's shape program, on networks made with
 * the public API (no model file needed): a = [batch, seq] and b = [batch, seq], out = a + b,
 * then sigmoid. */
#include "ductile.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>

static ductile_dims D2(int64_t a, int64_t b) { ductile_dims d = {2, {a, b}}; return d; }

/* Builds the two-input network; returns the output tensor's name through *out. */
static ductile_network *make_net(ductile_builder *b, const char **out)
{
    ductile_network *n = NULL;
    CHECK_EQ_INT(ductile_network_create(b, &n), DUCTILE_OK);
    const char *names[2] = {"batch", "seq"};
    ductile_dims dyn = D2(-1, -1);
    ductile_tensor *ta, *tb;
    CHECK_EQ_INT(ductile_network_add_input(n, "a", DUCTILE_FLOAT32, &dyn, names, &ta), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_input(n, "b", DUCTILE_FLOAT32, &dyn, names, &tb), DUCTILE_OK);
    ductile_layer *add, *sig;
    CHECK_EQ_INT(ductile_network_add_elementwise(n, ta, tb, DUCTILE_ELEMENTWISE_SUM, &add), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_activation(n, ductile_layer_get_output(add, 0), DUCTILE_ACTIVATION_SIGMOID, &sig), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_mark_output(n, ductile_layer_get_output(sig, 0)), DUCTILE_OK);
    *out = ductile_tensor_name(ductile_layer_get_output(sig, 0));
    return n;
}

static ductile_status build_with(ductile_builder *b, ductile_network *n, ductile_dims amin, ductile_dims aopt,
                                 ductile_dims amax, ductile_dims bmin, ductile_dims bopt, ductile_dims bmax,
                                 ductile_engine **e)
{
    ductile_profile *p = NULL;
    ductile_config *c = NULL;
    ductile_profile_create(b, &p);
    ductile_config_create(b, &c);
    ductile_status s = ductile_profile_set_shape(p, "a", &amin, &aopt, &amax);
    if (!s) s = ductile_profile_set_shape(p, "b", &bmin, &bopt, &bmax);
    if (!s) s = ductile_config_add_profile(c, p, NULL);
    if (!s) s = ductile_builder_build(b, n, c, e);
    ductile_profile_free(p);
    ductile_config_free(c);
    return s;
}

static void test_profile_validation(ductile_builder *b)
{
    const char *oname;
    ductile_network *n = make_net(b, &oname);
    ductile_engine *e = NULL;
    ductile_profile *p = NULL;
    ductile_profile_create(b, &p);
    ductile_dims mn = D2(1, 8), op = D2(1, 4), mx = D2(4, 16);
    CHECK_EQ_INT(ductile_profile_set_shape(p, "a", &mn, &op, &mx), DUCTILE_ERR_PROFILE);
    CHECK_EQ_STR(ductile_last_error(), "input 'a' dimension 1: min 8, opt 4, max 16; expected min <= opt <= max");
    ductile_dims three = {3, {1, 1, 1}};
    CHECK_EQ_INT(ductile_profile_set_shape(p, "a", &mn, &three, &mx), DUCTILE_ERR_PROFILE);
    CHECK_EQ_STR(ductile_last_error(), "input 'a': min, opt and max have 2, 3 and 2 dims; they must have the same number");

    /* shared symbol 'seq' with different ranges */
    CHECK_EQ_INT(build_with(b, n, D2(1, 1), D2(2, 8), D2(4, 16), D2(1, 1), D2(2, 8), D2(4, 32), &e), DUCTILE_ERR_PROFILE);
    CHECK_EQ_STR(ductile_last_error(),
                 "profile 0: inputs 'a' and 'b' share the dimension 'seq' (dimension 1 of 'a', dimension 1 of 'b') "
                 "but their ranges differ: min 1, opt 8, max 16 vs min 1, opt 8, max 32");
    CHECK(e == NULL);

    /* an input not covered */
    ductile_config *c = NULL;
    ductile_config_create(b, &c);
    ductile_profile_free(p);
    ductile_profile_create(b, &p);
    ductile_dims one = D2(1, 1);
    ductile_profile_set_shape(p, "a", &one, &one, &one);
    ductile_config_add_profile(c, p, NULL);
    CHECK_EQ_INT(ductile_builder_build(b, n, c, &e), DUCTILE_ERR_PROFILE);
    CHECK_EQ_STR(ductile_last_error(), "profile 0 does not cover input 'b', whose shape [batch,seq] has dynamic dimensions");

    /* a name that is not an input; a rank that does not match */
    ductile_profile_set_shape(p, "c", &one, &one, &one);
    ductile_config_free(c);
    ductile_config_create(b, &c);
    ductile_config_add_profile(c, p, NULL);
    CHECK_EQ_INT(ductile_builder_build(b, n, c, &e), DUCTILE_ERR_PROFILE);
    CHECK_EQ_STR(ductile_last_error(), "profile 0 names 'c', which is not an input of the network (inputs: 'a', 'b')");
    ductile_profile_free(p);
    ductile_profile_create(b, &p);
    ductile_profile_set_shape(p, "a", &three, &three, &three);
    ductile_config_free(c);
    ductile_config_create(b, &c);
    ductile_config_add_profile(c, p, NULL);
    CHECK_EQ_INT(ductile_builder_build(b, n, c, &e), DUCTILE_ERR_PROFILE);
    CHECK_EQ_STR(ductile_last_error(), "profile 0: input 'a' has rank 2 but the profile gives 3 dimensions");

    /* no profile at all for a dynamic network */
    ductile_config_free(c);
    ductile_config_create(b, &c);
    CHECK_EQ_INT(ductile_builder_build(b, n, c, &e), DUCTILE_ERR_PROFILE);
    CHECK_EQ_STR(ductile_last_error(), "input 'a' has dynamic dimensions ([batch,seq]): add an optimization profile that covers it");
    ductile_config_free(c);
    ductile_profile_free(p);
    ductile_network_free(n);
}

static void test_context(ductile_builder *b)
{
    const char *oname;
    ductile_network *n = make_net(b, &oname);
    ductile_engine *e = NULL;
    CHECK_EQ_INT(build_with(b, n, D2(1, 1), D2(2, 8), D2(4, 16), D2(1, 1), D2(2, 8), D2(4, 16), &e), DUCTILE_OK);
    ductile_network_free(n); /* the engine does not need the network */
    if (!e) return;
    oname = ductile_engine_io_tensor_name(e, 2); /* the network's strings went with it */
    CHECK_EQ_STR(oname, "Sigmoid_1_output");
    ductile_context *ctx = NULL;
    CHECK_EQ_INT(ductile_context_create(e, &ctx), DUCTILE_OK);
    ductile_dims s = D2(3, 5), big = D2(3, 17), r3 = {3, {1, 2, 3}}, got;
    CHECK_EQ_INT(ductile_context_set_input_shape(ctx, "a", &big), DUCTILE_ERR_SHAPE);
    CHECK_EQ_STR(ductile_last_error(), "input 'a' dimension 1 (seq) is 17, outside the range 1..16 of profile 0");
    CHECK_EQ_INT(ductile_context_set_input_shape(ctx, "a", &r3), DUCTILE_ERR_SHAPE);
    CHECK_EQ_STR(ductile_last_error(), "input 'a' has rank 2 but the shape given has 3 dimensions");
    CHECK_EQ_INT(ductile_context_set_input_shape(ctx, "x", &s), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(), "'x' is not an input of the engine (inputs: 'a', 'b')");
    CHECK_EQ_INT(ductile_context_set_profile(ctx, 1), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(), "profile 1 does not exist: the engine has 1 profile (0..0)");

    CHECK_EQ_INT(ductile_context_set_input_shape(ctx, "a", &s), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_get_tensor_shape(ctx, oname, &got), DUCTILE_ERR_STATE);
    CHECK_EQ_STR(ductile_last_error(), "the shape of input 'b' is not set (call set_input_shape for every dynamic input)");
    ductile_dims other = D2(3, 4);
    CHECK_EQ_INT(ductile_context_set_input_shape(ctx, "b", &other), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_execute(ctx), DUCTILE_ERR_SHAPE);
    CHECK_EQ_STR(ductile_last_error(), "inputs 'a' (dimension 1) and 'b' (dimension 1) share the dimension 'seq' but were set to 5 and 4");

    CHECK_EQ_INT(ductile_context_set_input_shape(ctx, "b", &s), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_get_tensor_shape(ctx, oname, &got), DUCTILE_OK);
    CHECK_EQ_INT(got.nb_dims, 2);
    CHECK_EQ_INT(got.d[0], 3);
    CHECK_EQ_INT(got.d[1], 5);
    float a[15], bb[15], out[15];
    for (int i = 0; i < 15; i++) {
        a[i] = (float)i / 7.0f - 1.0f;
        bb[i] = (float)(i * i % 5) / 3.0f;
    }
    CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, "a", a), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, "b", bb), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, oname, out), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_execute(ctx), DUCTILE_OK);
    int bad = 0;
    for (int i = 0; i < 15; i++) bad += fabsf(out[i] - 1.0f / (1.0f + expf(-(a[i] + bb[i])))) > 1e-6f;
    CHECK_EQ_INT(bad, 0);

    /* the context's own buffers */
    CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, oname, NULL), DUCTILE_OK);
    void *own = NULL;
    CHECK_EQ_INT(ductile_context_get_tensor_address(ctx, oname, &own), DUCTILE_OK);
    CHECK(own != NULL && own != out);
    CHECK_EQ_INT(ductile_context_execute(ctx), DUCTILE_OK);
    CHECK(own && memcmp(own, out, sizeof out) == 0);
    ductile_context_free(ctx);

    /* save, load: same outputs, bit for bit */
    void *bytes = NULL;
    size_t size = 0;
    CHECK_EQ_INT(ductile_engine_serialize(e, &bytes, &size), DUCTILE_OK);
    ductile_engine *e2 = NULL;
    CHECK_EQ_INT(ductile_engine_load_memory(bytes, size, &e2), DUCTILE_OK);
    if (e2) {
        /* declared dims survive the engine file: -1 where dynamic, on inputs and outputs */
        ductile_dims decl;
        CHECK_EQ_INT(ductile_engine_get_tensor_dims(e2, "a", &decl), DUCTILE_OK);
        CHECK(decl.nb_dims == 2 && decl.d[0] == -1 && decl.d[1] == -1);
        CHECK_EQ_INT(ductile_engine_get_tensor_dims(e2, oname, &decl), DUCTILE_OK);
        CHECK(decl.nb_dims == 2 && decl.d[0] == -1 && decl.d[1] == -1);
        CHECK_EQ_INT(ductile_engine_get_tensor_dims(e2, "nope", &decl), DUCTILE_ERR_INVALID_ARGUMENT);
        CHECK_EQ_STR(ductile_last_error(), "'nope' is not an I/O tensor of the engine");
        CHECK_EQ_INT(ductile_engine_get_tensor_dims(e2, "a", NULL), DUCTILE_ERR_INVALID_ARGUMENT);
        CHECK_EQ_STR(ductile_last_error(), "get_tensor_dims: engine, name or out is NULL");

        ductile_context *c2 = NULL;
        float out2[15];
        ductile_context_create(e2, &c2);
        ductile_context_set_input_shape(c2, "a", &s);
        ductile_context_set_input_shape(c2, "b", &s);
        ductile_context_set_tensor_address(c2, "a", a);
        ductile_context_set_tensor_address(c2, "b", bb);
        ductile_context_set_tensor_address(c2, oname, out2);
        CHECK_EQ_INT(ductile_context_execute(c2), DUCTILE_OK);
        CHECK(memcmp(out, out2, sizeof out) == 0);
        ductile_context_free(c2);
    }
    /* one flipped byte: refused */
    ((unsigned char *)bytes)[size / 2] ^= 0x10;
    ductile_engine *e3 = NULL;
    CHECK_EQ_INT(ductile_engine_load_memory(bytes, size, &e3), DUCTILE_ERR_FORMAT);
    CHECK(e3 == NULL);
    ductile_free(bytes);
    ductile_engine_free(e2);
    ductile_engine_free(e);
}

int main(void)
{
    ductile_builder *b = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    test_profile_validation(b);
    test_context(b);
    ductile_builder_free(b);
    TEST_MAIN_END();
}
