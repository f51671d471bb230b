/* The ONNX importer: the model suite's inputs, outputs, layers and zero-copy weights; every
 * field kind of a hand-built model; the exact messages of refused models; truncated files. */
#include "testutil.h"
#include "pbwrite.h"
#include "ductile.h"
#include "graph/network.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx_writer.h"   /* tensors, value infos, attributes, nodes, models */

/* Parses bytes into a new network; *out is freed by the caller (also on failure). */
static ductile_status parse(const pbw *m, ductile_network **out)
{
    ductile_network *n = NULL;
    if (dt_network_new(&n) != DUCTILE_OK) exit(2);
    *out = n;
    return ductile_onnx_parse_memory(n, m->p, m->n);
}

/* Status and exact message of parsing a model from memory; frees m. */
static void expect_error(pbw m, ductile_status want, const char *msg)
{
    ductile_network *n;
    ductile_status s = parse(&m, &n);
    CHECK_EQ_INT(s, want);
    CHECK_EQ_STR(ductile_last_error(), msg);
    CHECK_EQ_INT(n->n_tensors + n->n_layers + n->n_inputs + n->n_outputs, 0);
    dt_network_delete(n);
    free(m.p);
}

static int in_range(const void *p, const void *base, size_t size)
{
    return (const char *)p >= (const char *)base && (const char *)p < (const char *)base + size;
}

/* ---------------------------------------------------------------------------------------- */
/* A model that uses every kind of field the importer reads.                                 */
/* ---------------------------------------------------------------------------------------- */

static pbw rich_model(void)
{
    pbw g = {0};
    int64_t d2[] = {-1, 3}, d3 = 3, d1 = 1, dz[] = {-1, 4}, d0 = 2;
    float scale[3] = {1, 2, 3}, one = 7;

    /* Nodes (written first, as exporters do: the importer must not depend on wire order). */
    int64_t shape_v[2] = {0, -1};
    pbw a0[] = {attr_tensor("value", tensor_raw(NULL, DUCTILE_INT64, 1, &d0, shape_v, 16))};
    w_msg(&g, 1, node("c_shape", "Constant", NULL, NULL, S("shape"), a0, 1));
    pbw a1[] = {attr_float("value_float", 2.5f)};
    w_msg(&g, 1, node(NULL, "Constant", NULL, NULL, S("cf"), a1, 1));
    pbw ints = {0};
    w_str(&ints, 1, "value_ints");
    int64_t iv[3] = {1, 2, -3};
    w_packed(&ints, 8, iv, 3);
    w_int(&ints, 20, 7);
    pbw a2[] = {ints};
    w_msg(&g, 1, node("c_ints", "Constant", "ai.onnx", NULL, S("ci"), a2, 1));
    w_msg(&g, 1, node(NULL, "Relu", NULL, S("x"), S("r"), NULL, 0));

    pbw ks = {0}, pads = {0}, fl = {0}, flu = {0}, strs = {0};
    int64_t k[2] = {3, 3};
    w_str(&ks, 1, "kernel_shape");
    w_packed(&ks, 8, k, 2);
    w_int(&ks, 20, 7);
    w_str(&pads, 1, "pads");
    for (int i = 0; i < 4; i++) w_int(&pads, 8, 1);   /* unpacked */
    w_int(&pads, 20, 7);
    float fv[2] = {1.5f, -2.0f};
    w_str(&fl, 1, "scales");
    w_bytes(&fl, 7, fv, sizeof fv);                    /* packed */
    w_int(&fl, 20, 6);
    w_str(&flu, 1, "unpacked_floats");
    w_f32(&flu, 7, 3.0f);
    w_f32(&flu, 7, 4.0f);
    w_int(&flu, 20, 6);
    w_str(&strs, 1, "names");
    w_str(&strs, 9, "a");
    w_str(&strs, 9, "bc");
    w_int(&strs, 20, 8);
    pbw a4[] = {ks, pads, attr_int("group", 1), attr_str("auto_pad", "NOTSET", 3),
                attr_float("alpha", 0.5f), fl, flu, strs,
                attr_tensor("weights", tensor_raw("wt", DUCTILE_FLOAT32, 1, &d1, &one, 4))};
    w_msg(&g, 1, node("conv", "Conv", NULL, S("r", "scale", ""), S("conv_out"), a4, 9));
    w_msg(&g, 1, node("ln", "LayerNormalization", NULL, S("x", "scale", ""), S("ln_y", ""), NULL, 0));
    w_msg(&g, 1, node("add", "Add", NULL, S("conv_out", "cf"), S("sum"), NULL, 0));
    w_str(&g, 2, "rich");

    /* Initializers: raw (some aligned, some not), and each typed field. */
    w_msg(&g, 5, tensor_raw("scale", DUCTILE_FLOAT32, 1, &d3, scale, sizeof scale));
    const char *pnames[4] = {"p", "pp", "ppp", "pppp"};
    for (int i = 0; i < 4; i++) w_msg(&g, 5, tensor_raw(pnames[i], DUCTILE_FLOAT32, 1, &d1, &one, 4));
    pbw ft = tensor_head("f_typed", DUCTILE_FLOAT32, 1, &d0);
    w_bytes(&ft, 4, fv, sizeof fv);
    w_msg(&g, 5, ft);
    int64_t i64[3] = {-1, 5, (int64_t)1 << 40};
    pbw it = tensor_head("i_typed", DUCTILE_INT64, 1, &d3);
    w_packed(&it, 7, i64, 3);
    w_msg(&g, 5, it);
    pbw i8 = tensor_head("i8_typed", DUCTILE_INT8, 1, &d0);
    w_int(&i8, 5, -3);   /* unpacked int32_data */
    w_int(&i8, 5, 7);
    w_msg(&g, 5, i8);
    double dv[2] = {0.25, -8};
    pbw dt = tensor_head("d_typed", DUCTILE_FLOAT64, 1, &d0);
    w_bytes(&dt, 10, dv, sizeof dv);
    w_msg(&g, 5, dt);
    int64_t u[2] = {4000000000LL, 1};
    pbw ut = tensor_head("u32_typed", DUCTILE_UINT32, 1, &d0);
    w_packed(&ut, 11, u, 2);
    w_msg(&g, 5, ut);
    int64_t e = 0;
    w_msg(&g, 5, tensor_raw("empty", DUCTILE_FLOAT32, 1, &e, NULL, 0));

    /* Inputs: one is an initializer (a constant, not an input). */
    w_msg(&g, 11, value_info("x", DUCTILE_FLOAT32, 2, d2, S("batch", NULL)));
    w_msg(&g, 11, value_info("scale", DUCTILE_FLOAT32, 1, &d3, NULL));
    w_msg(&g, 11, value_info("y", DUCTILE_INT64, -1, NULL, NULL));
    w_msg(&g, 11, value_info("z", DUCTILE_FLOAT32, 2, dz, NULL));
    w_msg(&g, 12, value_info("sum", DUCTILE_FLOAT32, 2, d2, S("batch", NULL)));
    w_msg(&g, 12, value_info("ln_y", DUCTILE_FLOAT32, -1, NULL, NULL));
    w_msg(&g, 13, value_info("r", DUCTILE_FLOAT32, 2, d2, S("batch", NULL)));
    return model(g, NULL, 0);
}

static const dt_attr *attr(ductile_layer *L, const char *name, int type)
{
    const dt_attr *a = dt_attr_find(L, name);
    CHECK(a != NULL);
    if (a) CHECK_EQ_INT(a->type, type);
    return a;
}

static void test_rich_model_imports_every_field_kind(void)
{
    pbw m = rich_model();
    ductile_network *n;
    CHECK_EQ_INT(parse(&m, &n), DUCTILE_OK);
    CHECK_EQ_INT(n->opset, 13);

    /* Inputs, in order; the listed initializer is not one. */
    CHECK_EQ_INT(n->n_inputs, 3);
    if (n->n_inputs == 3) {
        ductile_tensor *x = n->inputs[0], *y = n->inputs[1], *z = n->inputs[2];
        CHECK_EQ_STR(x->name, "x");
        CHECK_EQ_INT(x->dtype, DUCTILE_FLOAT32);
        CHECK_EQ_INT(x->rank, 2);
        CHECK_EQ_INT(x->dims[0], -1);
        CHECK_EQ_STR(x->dim_sym[0], "batch");
        CHECK_EQ_INT(x->dims[1], 3);
        CHECK_EQ_STR(x->dim_sym[1], NULL);
        CHECK(x->is_input && !x->data && !x->producer);
        CHECK_EQ_STR(y->name, "y");
        CHECK_EQ_INT(y->dtype, DUCTILE_INT64);
        CHECK_EQ_INT(y->rank, -1);
        CHECK_EQ_STR(z->name, "z");
        CHECK_EQ_INT(z->dims[0], -1);
        CHECK_EQ_STR(z->dim_sym[0], NULL);
        CHECK_EQ_INT(z->dims[1], 4);
    }

    /* Constants: initializers and Constant nodes, with their values. */
    ductile_tensor *scale = dt_network_find(n, "scale");
    CHECK(scale && scale->data && !scale->is_input && !scale->producer && scale->nbytes == 12);
    if (scale && scale->data) CHECK(((const float *)scale->data)[2] == 3.0f);
    const dt_resource *buf = n->resources;
    for (int i = 0; i < 4; i++) {
        const char *pn[4] = {"p", "pp", "ppp", "pppp"};
        ductile_tensor *t = dt_network_find(n, pn[i]);
        CHECK(t && t->data);
        if (!t || !t->data) continue;
        CHECK(*(const float *)t->data == 7.0f);
        CHECK_EQ_INT((uintptr_t)t->data % 4, 0);
        /* Zero-copy exactly when the bytes in the buffer are aligned for float32. */
        const uint8_t *raw = NULL;
        for (const dt_resource *r = buf; r; r = r->next)
            if (r->size == m.n) raw = r->ptr;
        CHECK(raw != NULL);
        if (!raw) continue;
        size_t off = 0;
        for (size_t j = 0; j + strlen(pn[i]) + 2 + 4 <= m.n; j++) {
            /* name field (8) then raw_data (9) of 4 bytes */
            if (raw[j] == 0x42 && raw[j + 1] == strlen(pn[i]) &&
                memcmp(raw + j + 2, pn[i], strlen(pn[i])) == 0 &&
                raw[j + 2 + strlen(pn[i])] == 0x4a) {
                off = j + 2 + strlen(pn[i]) + 2;
                break;
            }
        }
        CHECK(off != 0);
        int aligned = ((uintptr_t)(raw + off) % 4) == 0;
        CHECK_EQ_INT(in_range(t->data, raw, m.n), aligned);
    }
    struct { const char *name; int dtype; int64_t count; } typed[] = {
        {"f_typed", DUCTILE_FLOAT32, 2}, {"i_typed", DUCTILE_INT64, 3}, {"i8_typed", DUCTILE_INT8, 2},
        {"d_typed", DUCTILE_FLOAT64, 2}, {"u32_typed", DUCTILE_UINT32, 2}, {"empty", DUCTILE_FLOAT32, 0}};
    for (int i = 0; i < 6; i++) {
        ductile_tensor *t = dt_network_find(n, typed[i].name);
        CHECK(t && t->data);
        if (!t || !t->data) continue;
        CHECK_EQ_INT(t->dtype, typed[i].dtype);
        CHECK_EQ_INT(dt_tensor_count(t), typed[i].count);
        CHECK_EQ_INT(t->nbytes, (size_t)typed[i].count * ductile_dtype_size(typed[i].dtype));
    }
    ductile_tensor *t;
    if ((t = dt_network_find(n, "f_typed")) && t->data) CHECK(((const float *)t->data)[1] == -2.0f);
    if ((t = dt_network_find(n, "i_typed")) && t->data) {
        CHECK_EQ_INT(((const int64_t *)t->data)[0], -1);
        CHECK_EQ_INT(((const int64_t *)t->data)[2], (int64_t)1 << 40);
    }
    if ((t = dt_network_find(n, "i8_typed")) && t->data) CHECK_EQ_INT(((const int8_t *)t->data)[0], -3);
    if ((t = dt_network_find(n, "d_typed")) && t->data) CHECK(((const double *)t->data)[1] == -8.0);
    if ((t = dt_network_find(n, "u32_typed")) && t->data)
        CHECK_EQ_INT(((const uint32_t *)t->data)[0], 4000000000u);
    if ((t = dt_network_find(n, "shape")) && t->data) {
        CHECK(!t->producer && t->dtype == DUCTILE_INT64 && t->rank == 1 && t->dims[0] == 2);
        CHECK_EQ_INT(((const int64_t *)t->data)[1], -1);
    } else {
        CHECK(!"Constant 'shape' imported");
    }
    if ((t = dt_network_find(n, "cf")) && t->data) {
        CHECK(t->rank == 0 && t->dtype == DUCTILE_FLOAT32 && *(const float *)t->data == 2.5f);
    } else {
        CHECK(!"Constant 'cf' imported");
    }
    if ((t = dt_network_find(n, "ci")) && t->data) {
        CHECK(t->rank == 1 && t->dims[0] == 3 && t->dtype == DUCTILE_INT64);
        CHECK_EQ_INT(((const int64_t *)t->data)[2], -3);
    } else {
        CHECK(!"Constant 'ci' imported");
    }

    /* Layers: Constant nodes are not layers; unnamed nodes get "<OpType>_<index>". */
    CHECK_EQ_INT(n->n_layers, 4);
    if (n->n_layers == 4) {
        ductile_layer *relu = n->layers[0], *conv = n->layers[1], *ln = n->layers[2], *add = n->layers[3];
        CHECK_EQ_STR(relu->name, "Relu_3");
        CHECK_EQ_STR(relu->domain, "");
        CHECK_EQ_INT(relu->opset, 13);
        ductile_tensor *r = relu->out[0];
        CHECK(r->producer == relu);
        /* value_info gave the intermediate a type. */
        CHECK(r->dtype == DUCTILE_FLOAT32 && r->rank == 2 && r->dims[0] == -1);
        CHECK_EQ_STR(r->dim_sym[0], "batch");
        CHECK_EQ_STR(conv->name, "conv");
        CHECK_EQ_INT(conv->n_in, 3);
        CHECK(conv->in[0] == r && conv->in[1] == scale && conv->in[2] == NULL);
        CHECK_EQ_INT(conv->n_attr, 9);
        const dt_attr *a;
        int64_t cnt;
        const int64_t *ks = dt_attr_ints(conv, "kernel_shape", &cnt);
        CHECK(ks && cnt == 2 && ks[1] == 3);
        const int64_t *pads = dt_attr_ints(conv, "pads", &cnt);
        CHECK(pads && cnt == 4 && pads[3] == 1);
        CHECK_EQ_INT(dt_attr_int(conv, "group", 0), 1);
        CHECK_EQ_STR(dt_attr_string(conv, "auto_pad", NULL), "NOTSET");
        if ((a = attr(conv, "auto_pad", DT_ATTR_STRING))) CHECK_EQ_INT(a->s_len, 6);
        CHECK(dt_attr_float(conv, "alpha", 0) == 0.5f);
        const float *sc = dt_attr_floats(conv, "scales", &cnt);
        CHECK(sc && cnt == 2 && sc[1] == -2.0f);
        sc = dt_attr_floats(conv, "unpacked_floats", &cnt);
        CHECK(sc && cnt == 2 && sc[1] == 4.0f);
        if ((a = attr(conv, "names", DT_ATTR_STRINGS))) {
            CHECK_EQ_INT(a->n, 2);
            if (a->n == 2) CHECK_EQ_STR(a->strings[1], "bc");
        }
        if ((a = attr(conv, "weights", DT_ATTR_TENSOR)) && a->t) {
            CHECK_EQ_INT(a->t->index, -1);
            CHECK(a->t->data && *(const float *)a->t->data == 7.0f);
        }
        CHECK_EQ_STR(ln->name, "ln");
        CHECK_EQ_INT(ln->n_out, 2);
        CHECK_EQ_STR(ln->out[1]->name, "ln:out1");
        CHECK(ln->out[1]->producer == ln);
        CHECK_EQ_STR(add->name, "add");
        CHECK(add->in[1] == dt_network_find(n, "cf"));
    }

    /* Outputs: declared dims land on tensors whose shape is not known yet. */
    CHECK_EQ_INT(n->n_outputs, 2);
    if (n->n_outputs == 2) {
        ductile_tensor *sum = n->outputs[0];
        CHECK_EQ_STR(sum->name, "sum");
        CHECK(sum->is_output && sum->rank == 2 && sum->dims[1] == 3);
        CHECK_EQ_STR(sum->dim_sym[0], "batch");
        CHECK_EQ_STR(n->outputs[1]->name, "ln_y");
        CHECK_EQ_INT(n->outputs[1]->rank, 2); /* inferred by the symbolic pass */
    }
    dt_network_delete(n);

    /* The caller's network gets the result; a second parse into it is refused. */
    ductile_network *dst;
    CHECK_EQ_INT(parse(&m, &dst), DUCTILE_OK);
    CHECK_EQ_INT(ductile_onnx_parse_memory(dst, m.p, m.n), DUCTILE_ERR_STATE);
    CHECK_EQ_STR(ductile_last_error(),
                 "ductile_onnx_parse_memory: the network is not empty (4 layers, 22 tensors); parse into a new network");
    dt_network_delete(dst);
    free(m.p);
}

/* ---------------------------------------------------------------------------------------- */
/* Refused models: exact messages.                                                           */
/* ---------------------------------------------------------------------------------------- */

static void test_refused_models_name_the_fault(void)
{
    expect_error(one_node_model(node("my_node", "FooBar", NULL, S("x"), S("y"), NULL, 0), NULL, 0),
                 DUCTILE_ERR_UNSUPPORTED,
                 "node 'my_node' (FooBar, opset 13): op type 'FooBar' is not supported by ductile");
    expect_error(one_node_model(node(NULL, "Bar", "com.example", S("x"), S("y"), NULL, 0), "com.example", 2),
                 DUCTILE_ERR_UNSUPPORTED,
                 "node 'Bar_0' (com.example.Bar, opset 2): domain 'com.example' is not supported by ductile");
    expect_error(one_node_model(node("n", "Relu", NULL, S("nope"), S("y"), NULL, 0), NULL, 0),
                 DUCTILE_ERR_PARSE,
                 "node 'n' (Relu): input 'nope' is not produced by any earlier node, initializer or graph input");
    expect_error(one_node_model(node("n", "Relu", NULL, S("x"), S("x"), NULL, 0), NULL, 0),
                 DUCTILE_ERR_PARSE,
                 "node 'n' (Relu): output 'x' is already defined by an earlier node, initializer or graph input");
    pbw ga = {0};
    w_str(&ga, 1, "body");
    w_msg(&ga, 6, (pbw){0});
    w_int(&ga, 20, 5);
    expect_error(one_node_model(node("r", "Relu", NULL, S("x"), S("y"), &ga, 1), NULL, 0),
                 DUCTILE_ERR_UNSUPPORTED,
                 "node 'r' (Relu, opset 13): attribute 'body' of type GRAPH is not supported by ductile");
    pbw vs = attr_str("value_string", "hi", 3);
    expect_error(one_node_model(node("c", "Constant", NULL, NULL, S("y"), &vs, 1), NULL, 0),
                 DUCTILE_ERR_UNSUPPORTED,
                 "node 'c' (Constant, opset 13): attribute 'value_string' is not supported by ductile");
    pbw bad_pad = attr_str("auto_pad", "SIDEWAYS", 3);
    {
        pbw m = one_node_model(node("cv", "Conv", NULL, S("x", "x"), S("y"), &bad_pad, 1), NULL, 0);
        ductile_network *n;
        CHECK_EQ_INT(parse(&m, &n), DUCTILE_ERR_UNSUPPORTED);
        /* The op's own message follows the node prefix. */
        const char *prefix = "node 'cv' (Conv, opset 13): ";
        CHECK(strncmp(ductile_last_error(), prefix, strlen(prefix)) == 0);
        CHECK(strstr(ductile_last_error(), "SIDEWAYS") != NULL);
        dt_network_delete(n);
        free(m.p);
    }

    /* Initializers the importer refuses. */
    struct { pbw t; ductile_status s; const char *msg; } inits[6];
    int64_t d3 = 3, d9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    float f3[3] = {0};
    inits[0].t = tensor_raw("w", DUCTILE_FLOAT32, 1, &d3, f3, 8);
    inits[0].s = DUCTILE_ERR_PARSE;
    inits[0].msg = "tensor 'w': raw_data has 8 bytes, expected 12 (dims [3], float32)";
    inits[1].t = tensor_raw("big", DUCTILE_FLOAT32, 9, d9, f3, 4);
    inits[1].s = DUCTILE_ERR_UNSUPPORTED;
    inits[1].msg = "tensor 'big': rank 9 is above the maximum of 8";
    inits[2].t = tensor_head("s", DUCTILE_STRING, 1, &d3);
    inits[2].s = DUCTILE_ERR_PARSE;
    inits[2].msg = "tensor 's': string_data has 0 elements, expected 3 (dims [3])";
    inits[3].t = tensor_head("f", DUCTILE_FLOAT32, 1, &d3);
    w_f32(&inits[3].t, 4, 1.0f);
    inits[3].s = DUCTILE_ERR_PARSE;
    inits[3].msg = "tensor 'f': float_data has 1 elements, expected 3 (dims [3])";
    inits[4].t = tensor_external("w", "w.bin", NULL, NULL);
    inits[4].s = DUCTILE_ERR_UNSUPPORTED;
    inits[4].msg = "tensor 'w': external data needs ductile_onnx_parse_file (the model's folder)";
    inits[5].t = tensor_head("i", DUCTILE_INT64, 1, &d3);
    w_f32(&inits[5].t, 4, 1.0f);
    inits[5].s = DUCTILE_ERR_PARSE;
    inits[5].msg = "tensor 'i': has float_data, expected int64_data for dtype int64";
    for (int i = 0; i < 6; i++) {
        pbw g = {0};
        w_msg(&g, 5, inits[i].t);
        expect_error(model(g, NULL, 0), inits[i].s, inits[i].msg);
    }

    /* Graph-level faults. */
    pbw g = {0};
    w_msg(&g, 12, value_info("ghost", DUCTILE_FLOAT32, -1, NULL, NULL));
    expect_error(model(g, NULL, 0), DUCTILE_ERR_PARSE,
                 "graph output 'ghost' is not produced by any node, initializer or graph input");
    pbw nograph = {0};
    w_int(&nograph, 1, 8);
    expect_error(nograph, DUCTILE_ERR_PARSE, "the model has no graph (ModelProto field 7)");
    pbw noopset = {0};
    w_msg(&noopset, 7, (pbw){0});
    expect_error(noopset, DUCTILE_ERR_PARSE, "the model has no opset_import (ModelProto field 8)");

    /* Wire-level faults. */
    pbw group = {0};
    w_int(&group, 1, 8);
    w_key(&group, 5, 3);
    expect_error(group, DUCTILE_ERR_PARSE,
                 "malformed at byte offset 2: field 'model_version' (ModelProto field 5) has wire type 3 (group); groups are not supported");
    pbw wrong = {0};
    w_int(&wrong, 7, 1);
    expect_error(wrong, DUCTILE_ERR_PARSE,
                 "malformed at byte offset 1: field 'graph' (ModelProto field 7) has wire type 0, expected 2 (length-delimited)");
    pbw longvar = {0};
    uint8_t eleven[12] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    w_raw(&longvar, eleven, sizeof eleven);
    expect_error(longvar, DUCTILE_ERR_PARSE, "malformed at byte offset 1: varint longer than 10 bytes in ModelProto");
    pbw trunc = {0};
    w_key(&trunc, 7, 2);
    w_varint(&trunc, 5000);
    w_raw(&trunc, "abc", 3);
    expect_error(trunc, DUCTILE_ERR_PARSE,
                 "truncated at byte offset 3: field 'graph' (ModelProto field 7) needs 5000 bytes, 3 remain");

    /* Misuse. */
    ductile_network *n;
    dt_network_new(&n);
    CHECK_EQ_INT(ductile_onnx_parse_file(n, "/nonexistent/dir/m.onnx"), DUCTILE_ERR_IO);
    CHECK_EQ_STR(ductile_last_error(), "cannot open '/nonexistent/dir/m.onnx': No such file or directory");
    CHECK_EQ_INT(ductile_onnx_parse_memory(NULL, "", 0), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(n->n_tensors, 0);
    dt_network_delete(n);
}

/* ---------------------------------------------------------------------------------------- */
/* Truncated models never crash and always fail with DUCTILE_ERR_PARSE.                       */
/* ---------------------------------------------------------------------------------------- */

static void check_truncations(const uint8_t *data, size_t size, const char *what)
{
    int bad = 0;
    for (int k = 0; k < 64 + 200; k++) {
        size_t cut = k < 64 ? (size_t)k : (size_t)((double)(k - 64) / 200 * (double)size);
        if (cut >= size) continue;
        ductile_network *n;
        dt_network_new(&n);
        ductile_status s = ductile_onnx_parse_memory(n, data, cut);
        const char *msg = ductile_last_error();
        int ok = s == DUCTILE_ERR_PARSE && n->n_tensors == 0 && n->n_layers == 0 &&
                 (strncmp(msg, "truncated at byte offset ", 25) == 0 ||
                  strncmp(msg, "the model has no ", 17) == 0);
        if (!ok && bad++ < 5)
            fprintf(stderr, "%s cut at %zu: %s: %s\n", what, cut, ductile_status_name(s), msg);
        CHECK(ok);
        dt_network_delete(n);
    }
}

static void test_truncated_models_fail_cleanly(void)
{
    pbw m = rich_model();
    check_truncations(m.p, m.n, "rich model");
    free(m.p);
}

/* ---------------------------------------------------------------------------------------- */
/* External data.                                                                            */
/* ---------------------------------------------------------------------------------------- */

static void write_file(const char *path, const void *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(d, 1, n, f) != n) {
        fprintf(stderr, "test: cannot write %s\n", path);
        exit(2);
    }
    fclose(f);
}

static ductile_status parse_external(const char *dir, const char *loc, const char *offset,
                                     const char *length, float *first)
{
    char path[512];
    pbw g = {0};
    w_msg(&g, 5, tensor_external("w", loc, offset, length));
    pbw m = model(g, NULL, 0);
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    write_file(path, m.p, m.n);
    free(m.p);
    ductile_network *n;
    dt_network_new(&n);
    ductile_status s = ductile_onnx_parse_file(n, path);
    ductile_tensor *t = dt_network_find(n, "w");
    if (s == DUCTILE_OK && t && t->data && t->nbytes == 12) {
        memcpy(first, t->data, 4);
        CHECK_EQ_INT((uintptr_t)t->data % 4, 0);
    }
    dt_network_delete(n);
    return s;
}

static void test_external_data_stays_in_the_model_folder(void)
{
    char dir[] = "/tmp/ductile_onnx_test_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        return;
    }
    char path[600];
    uint8_t bin[32] = {0};
    float v[3] = {1.5f, 2.5f, 3.5f};
    memcpy(bin + 8, v, 12);
    memcpy(bin + 18, v, 12);   /* misaligned copy: read through the arena */
    snprintf(path, sizeof path, "%s/w.bin", dir);
    write_file(path, bin, sizeof bin);

    float first = 0;
    CHECK_EQ_INT(parse_external(dir, "w.bin", "8", "12", &first), DUCTILE_OK);
    CHECK(first == 1.5f);
    first = 0;
    CHECK_EQ_INT(parse_external(dir, "./w.bin", "18", NULL, &first), DUCTILE_OK);
    CHECK(first == 1.5f);
    CHECK_EQ_INT(parse_external(dir, "../w.bin", "8", NULL, &first), DUCTILE_ERR_UNSUPPORTED);
    CHECK_EQ_STR(ductile_last_error(),
                 "m.onnx: tensor 'w': external data location '../w.bin' is refused: it must be a relative path inside the model's folder, without '..'");
    CHECK_EQ_INT(parse_external(dir, "/etc/passwd", NULL, NULL, &first), DUCTILE_ERR_UNSUPPORTED);
    CHECK_EQ_INT(parse_external(dir, "w.bin", "24", NULL, &first), DUCTILE_ERR_PARSE);
    CHECK_EQ_STR(ductile_last_error(),
                 "m.onnx: tensor 'w': external data at offset 24, 12 bytes, runs past the end of 'w.bin' (32 bytes)");
    CHECK_EQ_INT(parse_external(dir, "w.bin", "8", "16", &first), DUCTILE_ERR_PARSE);
    CHECK_EQ_INT(parse_external(dir, "missing.bin", NULL, NULL, &first), DUCTILE_ERR_IO);
    CHECK_EQ_STR(ductile_last_error(),
                 "m.onnx: tensor 'w': cannot open external data file 'missing.bin': No such file or directory");

    /* A truncated file names itself. */
    pbw m = rich_model();
    snprintf(path, sizeof path, "%s/cut.onnx", dir);
    write_file(path, m.p, 30);
    free(m.p);
    ductile_network *n;
    dt_network_new(&n);
    CHECK_EQ_INT(ductile_onnx_parse_file(n, path), DUCTILE_ERR_PARSE);
    CHECK(strncmp(ductile_last_error(), "cut.onnx: truncated at byte offset ", 35) == 0);
    dt_network_delete(n);

    const char *names[] = {"w.bin", "m.onnx", "cut.onnx"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* ---------------------------------------------------------------------------------------- */
/* The model suite.                                                                          */
/* ---------------------------------------------------------------------------------------- */

typedef struct io_spec {
    const char *name;
    int dtype;
    int rank;
    int64_t dims[4];          /* -1: symbolic */
    const char *syms[4];
} io_spec;

typedef struct model_spec {
    const char *file;
    int opset, layers, constants, zero_copy;
    int n_in;
    io_spec in[2];
    io_spec out;
} model_spec;

static const model_spec suite[] = {
    {"superres.onnx", 17, 8, 8, 1, 1,
     {{"input", 1, 4, {-1, 1, -1, -1}, {"batch", NULL, "height", "width"}}},
     {"output", 1, 4, {-1, 1, -1, -1}, {"batch", NULL, "3*height", "3*width"}}},
    {"superres_op10_dynbatch.onnx", 10, 10, 10, 4, 1,
     {{"input", 1, 4, {-1, 1, 224, 224}, {"batch_size"}}},
     {"output", 1, 4, {-1, 1, 672, 672}, {"batch_size"}}},
    {"superres_op10_static.onnx", 10, 10, 10, 4, 1,
     {{"input", 1, 4, {1, 1, 224, 224}, {NULL}}},
     {"output", 1, 4, {1, 1, 672, 672}, {NULL}}},
    {"seg_lraspp.onnx", 11, 233, 100, 26, 1,
     {{"input_1", 1, 4, {1, 3, -1, -1}, {NULL, NULL, "image_height", "image_width"}}},
     {"output_1", 1, 4, {1, 1, -1, -1}, {NULL, NULL, "image_height", "image_width"}}},
    {"mobilenet_v2.onnx", 13, 139, 137, 36, 1,
     {{"input", 1, 4, {-1, 3, 224, 224}, {"batch"}}},
     {"output", 1, 2, {-1, 1000}, {"batch"}}},
    {"bert_small.onnx", 17, 334, 173, 40, 2,
     {{"input_ids", 7, 2, {-1, -1}, {"batch", "seq"}}, {"attention_mask", 7, 2, {-1, -1}, {"batch", "seq"}}},
     {"last_hidden_state", 1, 3, {-1, -1, 256}, {"batch", "seq"}}},
};

static void check_io(const ductile_tensor *t, const io_spec *s)
{
    CHECK_EQ_STR(t->name, s->name);
    CHECK_EQ_INT(t->dtype, s->dtype);
    CHECK_EQ_INT(t->rank, s->rank);
    for (int i = 0; i < s->rank && i < t->rank; i++) {
        CHECK_EQ_INT(t->dims[i], s->dims[i]);
        CHECK_EQ_STR(t->dim_sym[i], s->syms[i]);
    }
}

static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(n > 0 ? (size_t)n : 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return p;
}

static void test_model_suite(void)
{
    const char *dir = getenv("DUCTILE_MODELS");
    if (!dir || !*dir) dir = "../shared/models";
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("SKIP: model suite not found; set DUCTILE_MODELS\n");
        return;
    }
    for (size_t k = 0; k < sizeof suite / sizeof suite[0]; k++) {
        const model_spec *ms = &suite[k];
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, ms->file);
        ductile_network *n;
        dt_network_new(&n);
        ductile_status s = ductile_onnx_parse_file(n, path);
        if (s != DUCTILE_OK) fprintf(stderr, "%s: %s\n", path, ductile_last_error());
        CHECK_EQ_INT(s, DUCTILE_OK);
        CHECK_EQ_INT(n->opset, ms->opset);
        CHECK_EQ_INT(n->n_layers, ms->layers);
        CHECK_EQ_INT(n->n_inputs, ms->n_in);
        for (int i = 0; i < ms->n_in && i < n->n_inputs; i++) check_io(n->inputs[i], &ms->in[i]);
        CHECK_EQ_INT(n->n_outputs, 1);
        if (n->n_outputs == 1) check_io(n->outputs[0], &ms->out);

        /* Constants: every one aligned, its size consistent; those stored aligned in the
         * file are used in place (the counts were computed from the files' byte offsets). */
        const dt_resource *map = NULL;
        for (const dt_resource *r = n->resources; r; r = r->next)
            if (r->size == (size_t)(stat(path, &st) == 0 ? st.st_size : -1)) map = r;
        CHECK(map != NULL);
        int constants = 0, zero_copy = 0;
        for (int i = 0; i < n->n_tensors; i++) {
            const ductile_tensor *t = n->tensors[i];
            if (!t->data) continue;
            constants++;
            CHECK(!t->producer && !t->is_input);
            size_t es = ductile_dtype_size(t->dtype);
            CHECK(es && (uintptr_t)t->data % es == 0);
            CHECK_EQ_INT(t->nbytes, (size_t)dt_tensor_count(t) * es);
            if (map && in_range(t->data, map->ptr, map->size)) zero_copy++;
        }
        CHECK_EQ_INT(constants, ms->constants);
        CHECK_EQ_INT(zero_copy, ms->zero_copy);
        dt_network_delete(n);
    }

    /* The same model from memory, and truncated copies of it. */
    char path[1024];
    snprintf(path, sizeof path, "%s/superres.onnx", dir);
    size_t size;
    uint8_t *data = read_file(path, &size);
    CHECK(data != NULL);
    if (!data) return;
    ductile_network *n;
    dt_network_new(&n);
    CHECK_EQ_INT(ductile_onnx_parse_memory(n, data, size), DUCTILE_OK);
    CHECK_EQ_INT(n->n_layers, 8);
    dt_network_delete(n);
    dt_network_new(&n);
    CHECK_EQ_INT(ductile_onnx_parse_memory(n, data, 1000), DUCTILE_ERR_PARSE);
    CHECK_EQ_STR(ductile_last_error(),
                 "truncated at byte offset 23: field 'graph' (ModelProto field 7) needs 239853 bytes, 977 remain");
    dt_network_delete(n);
    check_truncations(data, size, "superres.onnx");
    free(data);
}

int main(void)
{
    test_rich_model_imports_every_field_kind();
    test_refused_models_name_the_fault();
    test_truncated_models_fail_cleanly();
    test_external_data_stays_in_the_model_folder();
    test_model_suite();
    TEST_MAIN_END();
}
