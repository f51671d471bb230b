/* A context never reads an input's values before the caller could have written them: shape
 * inputs (TensorRT's shape tensors) wait for their values before any shape is computed, new
 * values are seen by the shape queries as well as by execute, and execute refuses an input
 * that has no data. Also: context buffers start zeroed. */
#include "core/status.h"
#include "graph/network.h"
#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static ductile_dims D1(int64_t a) { ductile_dims d = {1, {a}}; return d; }

/* y = Reshape(x, shape): x float32 [n], shape int64 [2], a run-time shape input. */
static ductile_engine *reshape_engine(ductile_builder *b)
{
    ductile_network *net = NULL;
    if (dt_network_new(&net)) return NULL;
    net->opset = 17;
    ductile_tensor *x = dt_network_add_tensor(net, "x");
    x->dtype = DUCTILE_FLOAT32;
    x->rank = 1;
    x->dims[0] = -1;
    x->dim_sym[0] = "n";
    dt_network_add_input(net, x);
    ductile_tensor *shape = dt_network_add_tensor(net, "shape");
    shape->dtype = DUCTILE_INT64;
    shape->rank = 1;
    shape->dims[0] = 2;
    dt_network_add_input(net, shape);
    ductile_tensor *y = dt_network_add_tensor(net, "y");
    y->dtype = DUCTILE_FLOAT32;
    y->rank = 2;
    y->dims[0] = y->dims[1] = -1;
    ductile_layer *rs = dt_network_add_layer(net, "Reshape", "reshape", 2, 1, 0);
    rs->domain = "";
    rs->opset = 17;
    rs->in[0] = x;
    rs->in[1] = shape;
    rs->out[0] = y;
    y->producer = rs;
    dt_network_add_output(net, y);

    ductile_profile *p = NULL;
    ductile_config *c = NULL;
    ductile_engine *e = NULL;
    ductile_dims xmin = D1(1), xopt = D1(12), xmax = D1(24), s2 = D1(2);
    ductile_status s = ductile_profile_create(b, &p);
    if (!s) s = ductile_profile_set_shape(p, "x", &xmin, &xopt, &xmax);
    if (!s) s = ductile_profile_set_shape(p, "shape", &s2, &s2, &s2);
    if (!s) s = ductile_config_create(b, &c);
    if (!s) s = ductile_config_add_profile(c, p, NULL);
    if (!s) s = ductile_builder_build(b, net, c, &e);
    CHECK_EQ_INT(s, DUCTILE_OK);
    if (s) fprintf(stderr, "build: %s\n", ductile_last_error());
    ductile_config_free(c);
    ductile_profile_free(p);
    dt_network_delete(net);
    return e;
}

static const char *NOT_GIVEN =
    "the values of shape input 'shape' decide shapes but were not given: bind them with set_tensor_address, "
    "or write them into the buffer get_tensor_address returns, first";

/* The CLI's order: shapes, then each input's own buffer (written through the pointer), then
 * the output shapes. The shape pass must wait for the written values. */
static void test_own_shape_input_buffer_is_read_only_after_it_is_handed_out(ductile_engine *e)
{
    ductile_context *ctx = NULL;
    CHECK_EQ_INT(ductile_context_create(e, &ctx), DUCTILE_OK);
    if (!ctx) return;
    ductile_dims x12 = D1(12), s2 = D1(2), got;
    CHECK_EQ_INT(ductile_context_set_input_shape(ctx, "x", &x12), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_input_shape(ctx, "shape", &s2), DUCTILE_OK);

    /* Nothing written yet: no shape can be computed, and nothing of the buffer is shown. */
    CHECK_EQ_INT(ductile_context_get_tensor_shape(ctx, "y", &got), DUCTILE_ERR_STATE);
    CHECK_EQ_STR(ductile_last_error(), NOT_GIVEN);
    void *out = NULL;
    CHECK_EQ_INT(ductile_context_get_tensor_address(ctx, "y", &out), DUCTILE_ERR_STATE);
    CHECK_EQ_STR(ductile_last_error(), NOT_GIVEN);
    CHECK_EQ_INT(ductile_context_execute(ctx), DUCTILE_ERR_STATE);
    CHECK_EQ_STR(ductile_last_error(), NOT_GIVEN);

    /* The input's own buffer is handed out without running the shape pass, zeroed. */
    int64_t *sv = NULL;
    float *xv = NULL;
    CHECK_EQ_INT(ductile_context_get_tensor_address(ctx, "shape", (void **)&sv), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_get_tensor_address(ctx, "x", (void **)&xv), DUCTILE_OK);
    if (!sv || !xv) {
        ductile_context_free(ctx);
        return;
    }
    CHECK(sv[0] == 0 && sv[1] == 0);
    sv[0] = 3;
    sv[1] = 4;
    for (int i = 0; i < 12; i++) xv[i] = (float)i;
    CHECK_EQ_INT(ductile_context_get_tensor_shape(ctx, "y", &got), DUCTILE_OK);
    CHECK(got.nb_dims == 2 && got.d[0] == 3 && got.d[1] == 4);
    float *yv = NULL;
    CHECK_EQ_INT(ductile_context_get_tensor_address(ctx, "y", (void **)&yv), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_execute(ctx), DUCTILE_OK);
    int bad = 0;
    for (int i = 0; yv && i < 12; i++) bad += yv[i] != (float)i;
    CHECK_EQ_INT(bad, 0);

    /* New values written into the same buffer: the shape query sees them, not only execute. */
    sv[0] = 2;
    sv[1] = 6;
    CHECK_EQ_INT(ductile_context_get_tensor_shape(ctx, "y", &got), DUCTILE_OK);
    CHECK(got.nb_dims == 2 && got.d[0] == 2 && got.d[1] == 6);

    /* A value that does not fit is reported with the values written, nothing else. */
    sv[0] = 5;
    sv[1] = 5;
    CHECK_EQ_INT(ductile_context_get_tensor_shape(ctx, "y", &got), DUCTILE_ERR_SHAPE);
    CHECK_EQ_STR(ductile_last_error(), "node 'reshape' (Reshape, opset 17): cannot reshape 'x' of shape [12] (12 elements) "
                                       "to 'shape' = [5,5]: that is 25 elements");
    ductile_context_free(ctx);
}

/* A bound shape input counts as given; binding other values changes the shapes at once. */
static void test_bound_shape_input_is_read_when_shapes_are_asked(ductile_engine *e)
{
    ductile_context *ctx = NULL;
    CHECK_EQ_INT(ductile_context_create(e, &ctx), DUCTILE_OK);
    if (!ctx) return;
    ductile_dims x6 = D1(6), s2 = D1(2), got;
    int64_t a[2] = {2, 3}, b[2] = {3, -1};
    float x[6] = {1, 2, 3, 4, 5, 6}, y[6];
    CHECK_EQ_INT(ductile_context_set_input_shape(ctx, "x", &x6), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_input_shape(ctx, "shape", &s2), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, "shape", a), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_get_tensor_shape(ctx, "y", &got), DUCTILE_OK);
    CHECK(got.nb_dims == 2 && got.d[0] == 2 && got.d[1] == 3);
    CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, "shape", b), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_get_tensor_shape(ctx, "y", &got), DUCTILE_OK);
    CHECK(got.nb_dims == 2 && got.d[0] == 3 && got.d[1] == 2);

    /* x was never bound nor handed out: execute refuses to read its buffer. */
    CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, "y", y), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_execute(ctx), DUCTILE_ERR_STATE);
    CHECK_EQ_STR(ductile_last_error(), "input 'x' has no data: bind a buffer with set_tensor_address, or write into the "
                                       "buffer get_tensor_address returns, before execute");
    CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, "x", x), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_execute(ctx), DUCTILE_OK);
    CHECK(memcmp(x, y, sizeof x) == 0);

    /* Unbinding the shape input leaves the context's own buffer, which was never handed out. */
    CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, "shape", NULL), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_execute(ctx), DUCTILE_ERR_STATE);
    CHECK_EQ_STR(ductile_last_error(), NOT_GIVEN);
    ductile_context_free(ctx);
}

/* A grown buffer is a new buffer: it must be handed out again before it counts as written. */
static void test_regrown_input_buffer_must_be_handed_out_again(ductile_engine *e)
{
    ductile_context *ctx = NULL;
    CHECK_EQ_INT(ductile_context_create(e, &ctx), DUCTILE_OK);
    if (!ctx) return;
    ductile_dims x2 = D1(2), x24 = D1(24), s2 = D1(2);
    int64_t shape[2] = {2, -1};
    void *xv = NULL;
    CHECK_EQ_INT(ductile_context_set_input_shape(ctx, "x", &x2), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_input_shape(ctx, "shape", &s2), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, "shape", shape), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_get_tensor_address(ctx, "x", &xv), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_execute(ctx), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_input_shape(ctx, "x", &x24), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_execute(ctx), DUCTILE_ERR_STATE);
    CHECK_EQ_STR(ductile_last_error(), "input 'x' has no data: bind a buffer with set_tensor_address, or write into the "
                                       "buffer get_tensor_address returns, before execute");
    CHECK_EQ_INT(ductile_context_get_tensor_address(ctx, "x", &xv), DUCTILE_OK);
    const float *xf = xv;
    int nonzero = 0;
    for (int i = 0; xf && i < 24; i++) nonzero += xf[i] != 0.0f;
    CHECK_EQ_INT(nonzero, 0);
    CHECK_EQ_INT(ductile_context_execute(ctx), DUCTILE_OK);
    ductile_context_free(ctx);
}

int main(void)
{
    ductile_builder *b = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    ductile_engine *e = reshape_engine(b);
    if (e) {
        test_own_shape_input_buffer_is_read_only_after_it_is_handed_out(e);
        test_bound_shape_input_is_read_when_shapes_are_asked(e);
        test_regrown_input_buffer_must_be_handed_out_again(e);
    }
    ductile_engine_free(e);
    ductile_builder_free(b);
    TEST_MAIN_END();
}
