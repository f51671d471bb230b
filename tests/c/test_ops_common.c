/* The checks every op family shares (ops/common.c). One arity check (dt_check_arity): the same
 * mistake (too few inputs, too many outputs, an omitted required input) gives the same status
 * and the same message shape whichever family the op is in. One auto_pad check and one SAME
 * padding split (dt_auto_pad, dt_same_pads), used by Conv, the pools and ConvTranspose. */
#include "testutil.h"
#include "ops/op.h"
#include "ops/families.h"
#include "ops/shape.h"
#include "core/status.h"

#include <stdio.h>
#include <stdlib.h>

static ductile_network *net;
static int n_names;

static ductile_tensor *tensor(void)
{
    char name[32];
    snprintf(name, sizeof name, "t%d", n_names++);
    return dt_network_add_tensor(net, name);
}

/* A layer with n_in inputs (bit i of omit: input i omitted) and n_out outputs. */
static ductile_layer *layer(const char *op, int opset, int n_in, unsigned omit, int n_out)
{
    ductile_layer *L = dt_network_add_layer(net, op, NULL, n_in, n_out, 0);
    L->opset = opset;
    L->n_attr = 0;
    for (int i = 0; i < n_in; i++) L->in[i] = (omit >> i) & 1 ? NULL : tensor();
    for (int i = 0; i < n_out; i++) L->out[i] = tensor();
    return L;
}

static void expect_check(const char *op, int opset, int n_in, unsigned omit, int n_out,
                         ductile_status want, const char *msg)
{
    const dt_opdef *d = dt_opdef_find(op);
    CHECK(d && d->check);
    if (!d || !d->check) return;
    ductile_status st = d->check(layer(op, opset, n_in, omit, n_out));
    if (st != want) fprintf(stderr, "%s: %s\n", op, dt_last_error());
    CHECK_EQ_INT(st, want);
    CHECK_EQ_STR(dt_last_error(), msg);
}

/* One op of each family that used to have its own checker: a second output on a one-output
 * op was DUCTILE_ERR_UNSUPPORTED in some families and INVALID_ARGUMENT in others. */
static void test_same_mistake_same_status(void)
{
    static const struct { const char *op; int n_in; } one_out[] = {
        {"Softmax", 1}, {"GridSample", 2}, {"Transpose", 1}, {"Det", 1},
        {"DequantizeLinear", 2}, {"MatMul", 2}, {"Relu", 1},
    };
    for (size_t i = 0; i < sizeof one_out / sizeof one_out[0]; i++)
        expect_check(one_out[i].op, 21, one_out[i].n_in, 0, 2, DUCTILE_ERR_INVALID_ARGUMENT,
                     "expected 1 output, got 2");
    expect_check("Det", 21, 2, 0, 1, DUCTILE_ERR_INVALID_ARGUMENT, "expected 1 input, got 2");
    expect_check("Gather", 21, 1, 0, 1, DUCTILE_ERR_INVALID_ARGUMENT, "expected 2 inputs, got 1");
    expect_check("Conv", 21, 4, 0, 1, DUCTILE_ERR_INVALID_ARGUMENT,
                 "expected 2 to 3 inputs, got 4");
    expect_check("QuantizeLinear", 21, 4, 0, 1, DUCTILE_ERR_INVALID_ARGUMENT,
                 "expected 2 to 3 inputs, got 4");
    expect_check("DynamicQuantizeLinear", 21, 1, 0, 1, DUCTILE_ERR_INVALID_ARGUMENT,
                 "expected 3 outputs, got 1");
    expect_check("MaxPool", 21, 1, 0, 3, DUCTILE_ERR_INVALID_ARGUMENT,
                 "expected 1 to 2 outputs, got 3");
    expect_check("Dropout", 21, 1, 0, 3, DUCTILE_ERR_INVALID_ARGUMENT,
                 "expected 1 to 2 outputs, got 3");
}

/* An omitted required input: named where the op names it, by index otherwise. */
static void test_omitted_required_input(void)
{
    expect_check("MatMul", 21, 2, 1u << 1, 1, DUCTILE_ERR_INVALID_ARGUMENT,
                 "input 1 is required but was omitted");
    expect_check("Softmax", 21, 1, 1u << 0, 1, DUCTILE_ERR_INVALID_ARGUMENT,
                 "input 0 is required but was omitted");
    expect_check("LSTM", 21, 3, 1u << 2, 1, DUCTILE_ERR_INVALID_ARGUMENT,
                 "input 2 (R) is required but was omitted");
    expect_check("GridSample", 21, 2, 1u << 1, 1, DUCTILE_ERR_INVALID_ARGUMENT,
                 "input 1 (grid) is required but was omitted");
    expect_check("Reshape", 21, 2, 1u << 1, 1, DUCTILE_ERR_INVALID_ARGUMENT,
                 "input 1 (shape) is required but was omitted");
    expect_check("Concat", 21, 3, 1u << 2, 1, DUCTILE_ERR_INVALID_ARGUMENT,
                 "input 2 is required but was omitted");
    expect_check("Einsum", 21, 2, 1u << 1, 1, DUCTILE_ERR_INVALID_ARGUMENT,
                 "input 1 is required but was omitted");
}

/* Limits of ductile below what ONNX allows are a different thing: unsupported. */
static void test_ductile_limits_unsupported(void)
{
    expect_check("Split", 21, 1, 0, 65, DUCTILE_ERR_UNSUPPORTED, "65 outputs; 1 to 64 are supported");
    expect_check("Einsum", 21, 9, 0, 1, DUCTILE_ERR_UNSUPPORTED, "9 inputs; 1 to 8 are supported");
}

/* Every op of every family: a node with 40 outputs (more than any op takes but Split) is
 * refused by the arity check, with INVALID_ARGUMENT and its message shape. */
static void test_every_op_same_status(void)
{
    const dt_opdef *const families[] = {dt_ops_elementwise, dt_ops_shape, dt_ops_linalg,
                                        dt_ops_nn, dt_ops_fused, dt_ops_quant, dt_ops_seq,
                                        dt_ops_vision};
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const dt_opdef *d = families[f]; d->op_type; d++) {
            if (!d->check || strcmp(d->op_type, "Split") == 0) continue;
            ductile_status st = d->check(layer(d->op_type, 21, 3, 0, 40));
            const char *m = dt_last_error();
            bool arity = st == DUCTILE_ERR_INVALID_ARGUMENT && strncmp(m, "expected ", 9) == 0 &&
                         strstr(m, ", got ");
            if (!arity) fprintf(stderr, "%s: %d %s\n", d->op_type, (int)st, m);
            CHECK(arity);
        }
}

/* ONNX: SAME_UPPER puts the odd pixel of padding at the end, SAME_LOWER at the beginning. */
static void test_same_pads(void)
{
    int64_t pb, pe, ek, o;
    /* in 5, kernel 4, stride 1: 5 windows, 3 pixels of padding. */
    CHECK_EQ_INT(dt_window_dim(0, 1, 5, 4, 1, 1, "SAME_UPPER", NULL, false, &pb, &pe, &ek, &o), DUCTILE_OK);
    CHECK(pb == 1 && pe == 2 && o == 5);
    CHECK_EQ_INT(dt_window_dim(0, 1, 5, 4, 1, 1, "SAME_LOWER", NULL, false, &pb, &pe, &ek, &o), DUCTILE_OK);
    CHECK(pb == 2 && pe == 1 && o == 5);
    /* Explicit pads are read only for NOTSET. */
    const int64_t pads[] = {1, 3, 2, 0};
    CHECK_EQ_INT(dt_window_dim(1, 2, 5, 3, 1, 1, "NOTSET", pads, false, &pb, &pe, &ek, &o), DUCTILE_OK);
    CHECK(pb == 3 && pe == 0 && o == 6);
    CHECK_EQ_INT(dt_window_dim(1, 2, 5, 3, 1, 1, "VALID", pads, false, &pb, &pe, &ek, &o), DUCTILE_OK);
    CHECK(pb == 0 && pe == 0 && o == 3);
    dt_same_pads(-3, "SAME_UPPER", &pb, &pe);
    CHECK(pb == -2 && pe == -1);
    dt_same_pads(-3, "SAME_LOWER", &pb, &pe);
    CHECK(pb == -1 && pe == -2);

    /* ConvTranspose: X [1, 1, 3], W [1, 1, 3], stride 2: output 6, the full span 7, so one
     * pixel is cropped: at the end for SAME_UPPER, at the beginning for SAME_LOWER. */
    static const char *const aps[] = {"SAME_UPPER", "SAME_LOWER"};
    for (int u = 0; u < 2; u++) {
        ductile_layer *L = layer("ConvTranspose", 21, 2, 0, 1);
        L->attrs = calloc(2, sizeof *L->attrs);
        static const int64_t strides[] = {2};
        L->attrs[0] = (dt_attr){.name = "auto_pad", .type = DT_ATTR_STRING, .s = aps[u],
                                .s_len = strlen(aps[u])};
        L->attrs[1] = (dt_attr){.name = "strides", .type = DT_ATTR_INTS, .ints = strides, .n = 1};
        L->n_attr = 2;
        dt_view in[2] = {{.dtype = DUCTILE_FLOAT32, .rank = 3, .dims = {1, 1, 3}},
                         {.dtype = DUCTILE_FLOAT32, .rank = 3, .dims = {1, 1, 3}}};
        dt_convt_plan p;
        CHECK_EQ_INT(dt_convt_plan_get(L, in, &p), DUCTILE_OK);
        CHECK_EQ_INT(p.g.out[0], 6);
        CHECK_EQ_INT(p.g.pad[0], u);
        free(L->attrs);
        L->attrs = NULL;
        L->n_attr = 0;
    }
}

/* One auto_pad check, one message, for every op that reads it. */
static void test_auto_pad_refused_alike(void)
{
    static const char *const ops[] = {"Conv", "MaxPool", "AveragePool", "ConvTranspose",
                                      "ConvInteger", "LpPool"};
    static const int64_t k[] = {3};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        ductile_layer *L = layer(ops[i], 21, 2, 0, 1);
        if (strcmp(ops[i], "MaxPool") == 0 || strstr(ops[i], "Pool")) L->n_in = 1;
        dt_attr attrs[2] = {{.name = "auto_pad", .type = DT_ATTR_STRING, .s = "SAME", .s_len = 4},
                            {.name = "kernel_shape", .type = DT_ATTR_INTS, .ints = k, .n = 1}};
        L->attrs = attrs;
        L->n_attr = 2;
        const dt_opdef *d = dt_opdef_find(ops[i]);
        CHECK_EQ_INT(d->check(L), DUCTILE_ERR_UNSUPPORTED);
        CHECK_EQ_STR(dt_last_error(), "attribute 'auto_pad' = 'SAME' is not supported (supported: "
                                      "NOTSET, SAME_UPPER, SAME_LOWER, VALID)");
        L->attrs = NULL;
        L->n_attr = 0;
    }
}

int main(void)
{
    if (dt_network_new(&net) != DUCTILE_OK) return 1;
    test_same_mistake_same_status();
    test_omitted_required_input();
    test_ductile_limits_unsupported();
    test_every_op_same_status();
    test_same_pads();
    test_auto_pad_refused_alike();
    dt_network_delete(net);
    TEST_MAIN_END();
}
