/* Symbolic shape inference on the model suite: the shapes a user reads after parsing, and
 * agreement with the concrete shapes the runtime computes. For the runtime check every layer
 * output is marked as a network output, so ductile_context_get_tensor_shape answers for all
 * of them; each symbolic dim is evaluated at the input shape and compared. */
#include "ductile.h"
#include "graph/network.h"
#include "graph/symbolic.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *models;

static ductile_network *parse(ductile_builder *b, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", models, name);
    ductile_network *n = NULL;
    CHECK_EQ_INT(ductile_network_create(b, &n), DUCTILE_OK);
    ductile_status s = ductile_onnx_parse_file(n, path);
    CHECK_EQ_INT(s, DUCTILE_OK);
    if (s) fprintf(stderr, "%s: %s\n", name, ductile_last_error());
    return n;
}

/* "[batch,1,3*height,3*width]" from the public queries. */
static const char *shape_str(const ductile_tensor *t)
{
    static char buf[1024];
    if (!t) return "(no tensor)";
    ductile_dims d = ductile_tensor_dims(t);
    if (d.nb_dims < 0) return "?";
    size_t k = 0;
    buf[k++] = '[';
    for (int i = 0; i < d.nb_dims && k < sizeof buf - 64; i++) {
        const char *s = ductile_tensor_dim_name(t, i);
        if (d.d[i] >= 0) k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%lld", i ? "," : "", (long long)d.d[i]);
        else k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? "," : "", s ? s : "?");
    }
    snprintf(buf + k, sizeof buf - k, "]");
    return buf;
}

/* The output of the index-th layer of op type op (0-based), or NULL. */
static ductile_tensor *nth_output(ductile_network *n, const char *op, int index)
{
    for (int i = 0; i < ductile_network_num_layers(n); i++) {
        ductile_layer *L = ductile_network_get_layer(n, i);
        if (!strcmp(ductile_layer_op_type(L), op) && index-- == 0) return ductile_layer_get_output(L, 0);
    }
    return NULL;
}

static void test_declared_shapes(ductile_builder *b)
{
    ductile_network *n = parse(b, "superres.onnx");
    CHECK_EQ_STR(shape_str(ductile_network_get_output(n, 0)), "[batch,1,3*height,3*width]");
    CHECK_EQ_STR(shape_str(nth_output(n, "Conv", 3)), "[batch,9,height,width]");
    CHECK_EQ_STR(shape_str(ductile_network_get_input(n, 0)), "[batch,1,height,width]");
    ductile_network_free(n);

    n = parse(b, "superres_op10_dynbatch.onnx");
    CHECK_EQ_STR(shape_str(ductile_network_get_output(n, 0)), "[batch_size,1,672,672]");
    CHECK_EQ_STR(shape_str(nth_output(n, "Reshape", 0)), "[batch_size,1,3,3,224,224]");
    ductile_network_free(n);

    n = parse(b, "superres_op10_static.onnx");
    CHECK_EQ_STR(shape_str(ductile_network_get_output(n, 0)), "[1,1,672,672]");
    ductile_network_free(n);

    n = parse(b, "mobilenet_v2.onnx");
    CHECK_EQ_STR(shape_str(ductile_network_get_output(n, 0)), "[batch,1000]");
    CHECK_EQ_STR(shape_str(nth_output(n, "Conv", 0)), "[batch,32,112,112]");   /* stride 2 */
    CHECK_EQ_STR(shape_str(nth_output(n, "GlobalAveragePool", 0)), "[batch,1280,1,1]");
    CHECK_EQ_STR(shape_str(nth_output(n, "Flatten", 0)), "[batch,1280]");
    ductile_network_free(n);

    n = parse(b, "seg_lraspp.onnx");
    CHECK_EQ_STR(shape_str(ductile_network_get_output(n, 0)), "[1,1,image_height,image_width]");
    CHECK_EQ_STR(shape_str(nth_output(n, "Conv", 0)), "[1,16,floor((image_height + 1)/2),floor((image_width + 1)/2)]");
    CHECK_EQ_STR(shape_str(nth_output(n, "Resize", 0)),
                 "[1,128,floor((image_height + 7)/8),floor((image_width + 7)/8)]");
    ductile_network_free(n);

    n = parse(b, "bert_small.onnx");
    CHECK_EQ_STR(shape_str(ductile_network_get_output(n, 0)), "[batch,seq,256]");
    CHECK_EQ_STR(shape_str(ductile_network_find_tensor(n, "/b/embeddings/Slice_output_0")), "[1,min(seq, 512)]");
    CHECK_EQ_STR(shape_str(ductile_network_find_tensor(n, "/b/Expand_output_0")), "[batch,1,seq,seq]");
    CHECK_EQ_STR(shape_str(ductile_network_find_tensor(n, "/b/encoder/layer.0/attention/self/Reshape_output_0")),
                 "[batch,seq,4,64]");
    CHECK_EQ_STR(shape_str(ductile_network_find_tensor(n, "/b/encoder/layer.0/attention/self/Softmax_output_0")),
                 "[batch,4,seq,seq]");
    CHECK_EQ_STR(shape_str(ductile_network_find_tensor(n, "/b/Range_output_0")), "[batch]");
    ductile_network_free(n);
}

/* Symbol values for evaluation: each input's dim names bound to the concrete shape. */
typedef struct binding {
    const char *name[16];
    int64_t value[16];
    int n;
} binding;

static bool bound(void *arg, const char *name, int64_t *v)
{
    const binding *bd = arg;
    for (int i = 0; i < bd->n; i++)
        if (!strcmp(bd->name[i], name)) {
            *v = bd->value[i];
            return true;
        }
    return false;
}

/* Builds the model at one concrete shape per input and compares every tensor's symbolic
 * dims with the runtime's shapes. */
static void check_against_runtime(ductile_builder *b, const char *model, const ductile_dims *shapes)
{
    ductile_network *n = parse(b, model);
    binding bd = {.n = 0};
    ductile_profile *p = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *e = NULL;
    ductile_context *cx = NULL;
    CHECK_EQ_INT(ductile_profile_create(b, &p), DUCTILE_OK);
    for (int i = 0; i < ductile_network_num_inputs(n); i++) {
        ductile_tensor *in = ductile_network_get_input(n, i);
        CHECK_EQ_INT(ductile_profile_set_shape(p, ductile_tensor_name(in), &shapes[i], &shapes[i], &shapes[i]), DUCTILE_OK);
        for (int d = 0; d < shapes[i].nb_dims && bd.n < 16; d++) {
            const char *s = ductile_tensor_dim_name(in, d);
            if (s) {
                bd.name[bd.n] = s;
                bd.value[bd.n++] = shapes[i].d[d];
            }
        }
    }
    /* Every layer output of rank >= 2 becomes an output so the context reports its shape.
     * 0-D and 1-D tensors stay internal: they may be shape values (Shape -> Gather -> Concat),
     * which the shape pass computes only while they are not outputs. */
    for (int l = 0; l < ductile_network_num_layers(n); l++) {
        ductile_layer *L = ductile_network_get_layer(n, l);
        for (int k = 0; k < ductile_layer_num_outputs(L); k++) {
            ductile_tensor *t = ductile_layer_get_output(L, k);
            if (t && !ductile_tensor_is_output(t) && ductile_tensor_dims(t).nb_dims >= 2)
                ductile_network_mark_output(n, t);
        }
    }
    CHECK_EQ_INT(ductile_config_create(b, &cfg), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_add_profile(cfg, p, NULL), DUCTILE_OK);
    ductile_status s = ductile_builder_build(b, n, cfg, &e);
    CHECK_EQ_INT(s, DUCTILE_OK);
    if (s) fprintf(stderr, "%s: build: %s\n", model, ductile_last_error());
    if (!s) CHECK_EQ_INT(ductile_context_create(e, &cx), DUCTILE_OK);
    for (int i = 0; cx && i < ductile_network_num_inputs(n); i++)
        CHECK_EQ_INT(ductile_context_set_input_shape(cx, ductile_tensor_name(ductile_network_get_input(n, i)), &shapes[i]),
                     DUCTILE_OK);
    dt_symctx sc;
    dt_symctx_init(&sc);
    int compared = 0, unknown = 0, reported = 0;
    for (int o = 0; cx && o < ductile_network_num_outputs(n); o++) {
        ductile_tensor *t = ductile_network_get_output(n, o);
        ductile_dims decl = ductile_tensor_dims(t), got;
        /* Outputs folded into constants at build time are no longer engine I/O: skip them. */
        if (ductile_engine_is_input(e, ductile_tensor_name(t)) != 0) continue;
        if (ductile_context_get_tensor_shape(cx, ductile_tensor_name(t), &got) != DUCTILE_OK) continue;
        if (decl.nb_dims < 0) {
            unknown++;
            continue;
        }
        bool ok = decl.nb_dims == got.nb_dims;
        for (int d = 0; ok && d < decl.nb_dims; d++) {
            int64_t v;
            const char *sym = ductile_tensor_dim_name(t, d);
            if (decl.d[d] >= 0) ok = decl.d[d] == got.d[d];
            else if (!sym) unknown++;
            else ok = dt_sd_eval(dt_sd_parse(&sc, sym), bound, &bd, &v) && v == got.d[d];
        }
        compared++;
        CHECK(ok);
        if (!ok && reported++ < 5) {
            fprintf(stderr, "%s: tensor '%s' declared %s, runtime [", model, ductile_tensor_name(t), shape_str(t));
            for (int d = 0; d < got.nb_dims; d++) fprintf(stderr, "%s%lld", d ? "," : "", (long long)got.d[d]);
            fprintf(stderr, "]\n");
        }
    }
    fprintf(stderr, "%s: %d tensors compared with the runtime\n", model, compared);
    /* The suite's models are fully inferred: every tensor, every dim. */
    CHECK(compared > 0);
    CHECK_EQ_INT(unknown, 0);
    dt_symctx_release(&sc);
    ductile_context_free(cx);
    ductile_engine_free(e);
    ductile_config_free(cfg);
    ductile_profile_free(p);
    ductile_network_free(n);
}

static ductile_dims dims4(int64_t a, int64_t b, int64_t c, int64_t d)
{
    ductile_dims x = {4, {a, b, c, d}};
    return x;
}

static void test_runtime_agreement(ductile_builder *b)
{
    ductile_dims s1[1] = {dims4(2, 1, 37, 53)};
    check_against_runtime(b, "superres.onnx", s1);
    ductile_dims s2[1] = {dims4(3, 1, 224, 224)};
    check_against_runtime(b, "superres_op10_dynbatch.onnx", s2);
    ductile_dims s3[1] = {dims4(2, 3, 224, 224)};
    check_against_runtime(b, "mobilenet_v2.onnx", s3);
    ductile_dims s4[1] = {dims4(1, 3, 129, 97)};   /* odd sizes: every stride rounds */
    check_against_runtime(b, "seg_lraspp.onnx", s4);
    s4[0] = dims4(1, 3, 65, 1000);
    check_against_runtime(b, "seg_lraspp.onnx", s4);
    ductile_dims s5[2] = {{2, {2, 7}}, {2, {2, 7}}};
    check_against_runtime(b, "bert_small.onnx", s5);
}

/* Editing: an elementwise layer broadcasting [1,C,1,1] against [batch,C,h,w] is exact. */
static void test_edit_broadcast(ductile_builder *b)
{
    ductile_network *n = NULL;
    CHECK_EQ_INT(ductile_network_create(b, &n), DUCTILE_OK);
    ductile_dims da = dims4(-1, 8, -1, -1), db = dims4(1, 8, 1, 1);
    const char *names[4] = {"batch", NULL, "h", "w"};
    ductile_tensor *a = NULL, *c = NULL;
    ductile_layer *L = NULL;
    CHECK_EQ_INT(ductile_network_add_input(n, "a", DUCTILE_FLOAT32, &da, names, &a), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_input(n, "c", DUCTILE_FLOAT32, &db, NULL, &c), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_elementwise(n, c, a, DUCTILE_ELEMENTWISE_SUM, &L), DUCTILE_OK);
    CHECK_EQ_STR(shape_str(ductile_layer_get_output(L, 0)), "[batch,8,h,w]");
    ductile_network_free(n);
}

int main(void)
{
    models = getenv("DUCTILE_MODELS");
    if (!models || !models[0]) models = "../shared/models";
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/superres.onnx", models);
    ductile_builder *b = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    test_edit_broadcast(b);
    if (access(probe, R_OK) != 0) {
        printf("SKIP: model suite not found; set DUCTILE_MODELS\n");
        ductile_builder_free(b);
        return 0;
    }
    test_declared_shapes(b);
    test_runtime_agreement(b);
    ductile_builder_free(b);
    TEST_MAIN_END();
}
