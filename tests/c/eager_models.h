/* Small ONNX models whose engines run eagerly (output shapes that follow from data computed
 * at run time): control flow, sequences, strings, NonZero; and one string model that does not
 * (its layers are host fallbacks on a device). For the tests that run them on several
 * backends (test_device_path.c). Each returns the model's bytes (free .p). */
#ifndef DT_EAGER_MODELS_H
#define DT_EAGER_MODELS_H

#include "onnx_writer.h"

static inline pbw em_attr_graph(const char *name, pbw g)
{
    pbw a = {0};
    w_str(&a, 1, name);
    w_msg(&a, 6, g);
    w_int(&a, 20, 5);
    return a;
}

static inline pbw em_seq_info(const char *name, int elem)
{
    pbw tt = {0}, inner = {0}, wrap = {0}, type = {0}, v = {0};
    w_int(&tt, 1, elem);
    w_msg(&inner, 1, tt);
    w_msg(&wrap, 1, inner);
    w_msg(&type, 4, wrap);
    w_str(&v, 1, name);
    w_msg(&v, 2, type);
    return v;
}

/* x float [n]: nz = NonZero(x) (int64 [1, k]); t = Transpose(nz); y = Add(x, x). The Add and
 * Transpose are ops the fake device has: on an eager engine they still run on the host. */
static inline pbw em_nonzero_model(void)
{
    pbw g = {0};
    int64_t n = -1;
    const char *sym[] = {"n"};
    w_msg(&g, 1, node("nz0", "NonZero", NULL, S("x"), S("nz"), NULL, 0));
    w_msg(&g, 1, node("tr", "Transpose", NULL, S("nz"), S("t"), NULL, 0));
    w_msg(&g, 1, node("add", "Add", NULL, S("x", "x"), S("y"), NULL, 0));
    w_str(&g, 2, "g");
    w_msg(&g, 11, value_info("x", DUCTILE_FLOAT32, 1, &n, sym));
    w_msg(&g, 12, value_info("nz", DUCTILE_INT64, -1, NULL, NULL));
    w_msg(&g, 12, value_info("t", DUCTILE_INT64, -1, NULL, NULL));
    w_msg(&g, 12, value_info("y", DUCTILE_FLOAT32, -1, NULL, NULL));
    return model(g, NULL, 0);
}

/* x float [2], c bool; a = Relu(x); y = If(c) then a + x else Neg(a). */
static inline pbw em_if_model(void)
{
    int64_t d = 2;
    pbw then_g = {0}, else_g = {0}, g = {0};
    w_msg(&then_g, 1, node("add", "Add", NULL, S("a", "x"), S("t"), NULL, 0));
    w_str(&then_g, 2, "then");
    w_msg(&then_g, 12, value_info("t", DUCTILE_FLOAT32, -1, NULL, NULL));
    w_msg(&else_g, 1, node("neg", "Neg", NULL, S("a"), S("e"), NULL, 0));
    w_str(&else_g, 2, "else");
    w_msg(&else_g, 12, value_info("e", DUCTILE_FLOAT32, -1, NULL, NULL));
    pbw attrs[2] = {em_attr_graph("then_branch", then_g), em_attr_graph("else_branch", else_g)};
    w_msg(&g, 1, node("relu", "Relu", NULL, S("x"), S("a"), NULL, 0));
    w_msg(&g, 1, node("if0", "If", NULL, S("c"), S("y"), attrs, 2));
    w_str(&g, 2, "g");
    w_msg(&g, 11, value_info("x", DUCTILE_FLOAT32, 1, &d, NULL));
    w_msg(&g, 11, value_info("c", DUCTILE_BOOL, 0, NULL, NULL));
    w_msg(&g, 12, value_info("y", DUCTILE_FLOAT32, 1, &d, NULL));
    return model(g, NULL, 0);
}

/* Loop (M int64 scalar trips; its state s grows by x each trip, totals its sums) and a
 * reverse Scan over xs [3, 1] adding into x. */
static inline pbw em_loop_scan_model(void)
{
    int64_t one = 1, none = -1;
    pbw body = {0}, sbody = {0}, g = {0};
    pbw keep0[1] = {attr_int("keepdims", 0)};
    pbw axis0[1] = {attr_int("axis", 0)};
    w_msg(&body, 1, node("cat", "Concat", NULL, S("s_in", "x"), S("s_out"), axis0, 1));
    w_msg(&body, 1, node("sum", "ReduceSum", NULL, S("s_out"), S("total"), keep0, 1));
    w_msg(&body, 1, node("id", "Identity", NULL, S("cond_in"), S("cond_out"), NULL, 0));
    w_str(&body, 2, "body");
    w_msg(&body, 11, value_info("i", DUCTILE_INT64, 0, NULL, NULL));
    w_msg(&body, 11, value_info("cond_in", DUCTILE_BOOL, 0, NULL, NULL));
    w_msg(&body, 11, value_info("s_in", DUCTILE_FLOAT32, 1, &none, NULL));
    w_msg(&body, 12, value_info("cond_out", DUCTILE_BOOL, 0, NULL, NULL));
    w_msg(&body, 12, value_info("s_out", DUCTILE_FLOAT32, 1, &none, NULL));
    w_msg(&body, 12, value_info("total", DUCTILE_FLOAT32, 0, NULL, NULL));
    w_msg(&sbody, 1, node("add", "Add", NULL, S("r_in", "x_t"), S("r_out"), NULL, 0));
    w_msg(&sbody, 1, node("cp", "Identity", NULL, S("r_out"), S("run"), NULL, 0));
    w_str(&sbody, 2, "sbody");
    w_msg(&sbody, 11, value_info("r_in", DUCTILE_FLOAT32, 1, &one, NULL));
    w_msg(&sbody, 11, value_info("x_t", DUCTILE_FLOAT32, 1, &one, NULL));
    w_msg(&sbody, 12, value_info("r_out", DUCTILE_FLOAT32, 1, &one, NULL));
    w_msg(&sbody, 12, value_info("run", DUCTILE_FLOAT32, 1, &one, NULL));
    pbw la[1] = {em_attr_graph("body", body)};
    int64_t rev = 1;
    pbw sa[3] = {em_attr_graph("body", sbody), attr_int("num_scan_inputs", 1), {0}};
    w_str(&sa[2], 1, "scan_input_directions");
    w_packed(&sa[2], 8, &rev, 1);
    w_int(&sa[2], 20, 7);
    w_msg(&g, 1, node("loop0", "Loop", NULL, S("M", "", "s0"), S("s", "totals"), la, 1));
    w_msg(&g, 1, node("scan0", "Scan", NULL, S("x", "xs"), S("r", "runs"), sa, 3));
    w_str(&g, 2, "g");
    int64_t xs_d[2] = {3, 1};
    w_msg(&g, 11, value_info("M", DUCTILE_INT64, 0, NULL, NULL));
    w_msg(&g, 11, value_info("s0", DUCTILE_FLOAT32, 1, &one, NULL));
    w_msg(&g, 11, value_info("x", DUCTILE_FLOAT32, 1, &one, NULL));
    w_msg(&g, 11, value_info("xs", DUCTILE_FLOAT32, 2, xs_d, NULL));
    w_msg(&g, 12, value_info("s", DUCTILE_FLOAT32, 1, &none, NULL));
    w_msg(&g, 12, value_info("totals", DUCTILE_FLOAT32, 1, &none, NULL));
    w_msg(&g, 12, value_info("r", DUCTILE_FLOAT32, 1, &one, NULL));
    w_msg(&g, 12, value_info("runs", DUCTILE_FLOAT32, 2, xs_d, NULL));
    return model(g, NULL, 0);
}

/* s: sequence of float, x: float [2,3], at: int64 scalar.
 *   out = SequenceInsert(s, x)           (sequence output)
 *   len = SequenceLength(out)
 *   item = SequenceAt(out, at)
 *   parts = SplitToSequence(x, axis=1)   -> cols = ConcatFromSequence(parts, axis=0) */
static inline pbw em_seq_model(void)
{
    pbw g = {0};
    int64_t d23[2] = {2, 3};
    pbw a_axis1 = attr_int("axis", 1), a_axis0 = attr_int("axis", 0);
    w_msg(&g, 1, node("ins", "SequenceInsert", NULL, S("s", "x"), S("out"), NULL, 0));
    w_msg(&g, 1, node("len", "SequenceLength", NULL, S("out"), S("len"), NULL, 0));
    w_msg(&g, 1, node("pick", "SequenceAt", NULL, S("out", "at"), S("item"), NULL, 0));
    w_msg(&g, 1, node("split", "SplitToSequence", NULL, S("x"), S("parts"), &a_axis1, 1));
    w_msg(&g, 1, node("cat", "ConcatFromSequence", NULL, S("parts"), S("cols"), &a_axis0, 1));
    w_str(&g, 2, "g");
    w_msg(&g, 11, em_seq_info("s", DUCTILE_FLOAT32));
    w_msg(&g, 11, value_info("x", DUCTILE_FLOAT32, 2, d23, NULL));
    w_msg(&g, 11, value_info("at", DUCTILE_INT64, 0, NULL, NULL));
    w_msg(&g, 12, em_seq_info("out", DUCTILE_FLOAT32));
    w_msg(&g, 12, value_info("len", DUCTILE_INT64, 0, NULL, NULL));
    w_msg(&g, 12, value_info("item", DUCTILE_FLOAT32, -1, NULL, NULL));
    w_msg(&g, 12, value_info("cols", DUCTILE_FLOAT32, -1, NULL, NULL));
    return model(g, NULL, 0);
}

/* y = StringConcat(x, c) with c a string initializer; with split, also
 * parts, n = StringSplit(y, "-") (data-dependent: the engine is eager). Opset 20. */
static inline pbw em_strings_model(int split)
{
    pbw g = {0}, c = {0};
    int64_t three = 3, one = 1;
    c = tensor_head("c", DUCTILE_STRING, 1, &one);
    w_str(&c, 6, "-\xc3\xa9");
    w_msg(&g, 1, node("cat", "StringConcat", NULL, S("x", "c"), S("y"), NULL, 0));
    if (split) {
        pbw a = attr_str("delimiter", "-", 3);
        w_msg(&g, 1, node("split", "StringSplit", NULL, S("y"), S("parts", "n"), &a, 1));
    }
    w_str(&g, 2, "g");
    w_msg(&g, 5, c);
    w_msg(&g, 11, value_info("x", DUCTILE_STRING, 1, &three, NULL));
    w_msg(&g, 12, value_info("y", DUCTILE_STRING, 1, &three, NULL));
    if (split) {
        w_msg(&g, 12, value_info("parts", DUCTILE_STRING, -1, NULL, NULL));
        w_msg(&g, 12, value_info("n", DUCTILE_INT64, 1, &three, NULL));
    }
    pbw m = {0}, o = {0};
    w_int(&m, 1, 8);
    w_msg(&m, 7, g);
    w_str(&o, 1, "");
    w_int(&o, 2, 20);
    w_msg(&m, 8, o);
    return m;
}

#endif
