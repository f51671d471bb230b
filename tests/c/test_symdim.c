/* Dim expressions: canonical forms, simplification, min/max, evaluation, printing, parsing. */
#include "graph/symdim.h"
#include "testutil.h"

#include <stdint.h>

static dt_symctx ctx;

static const char *str(const dt_sd *e)
{
    static char bufs[8][256];
    static int k;
    char *b = bufs[k++ % 8];
    if (!dt_sd_print(e, b, 256)) return "(unknown)";
    return b;
}

static const dt_sd *P(const char *s) { return dt_sd_parse(&ctx, s); }
static const dt_sd *K(int64_t v) { return dt_sd_const(&ctx, v); }

static bool lookup(void *arg, const char *name, int64_t *v)
{
    const int64_t *vals = arg;   /* h, w, batch */
    if (!strcmp(name, "h")) *v = vals[0];
    else if (!strcmp(name, "w")) *v = vals[1];
    else if (!strcmp(name, "batch")) *v = vals[2];
    else return false;
    return true;
}

static void test_canonical_forms(void)
{
    const dt_sd *h = dt_sd_sym(&ctx, "height");
    CHECK(dt_sd_equal(dt_sd_mul(&ctx, h, K(3)), dt_sd_mul(&ctx, K(3), h)));
    CHECK_EQ_STR(str(dt_sd_mul(&ctx, h, K(3))), "3*height");
    CHECK_EQ_STR(str(dt_sd_add(&ctx, h, h)), "2*height");
    CHECK_EQ_STR(str(dt_sd_mul(&ctx, dt_sd_sym(&ctx, "seq"), dt_sd_sym(&ctx, "batch"))), "batch*seq");
    CHECK_EQ_STR(str(P("seq*batch")), "batch*seq");
    CHECK_EQ_STR(str(P("1 + h*w - 2*h + h")), "h*w - h + 1");
    CHECK_EQ_STR(str(P("h - h")), "0");
    CHECK_EQ_STR(str(P("(h + 1)*(h - 1)")), "h*h - 1");
    CHECK_EQ_STR(str(P("-3")), "-3");
    CHECK(dt_sd_equal(P("w*h*2"), P("2*h*w")));
    CHECK(!dt_sd_equal(P("h"), P("w")));
    CHECK(!dt_sd_equal(P("h"), NULL));
}

static void test_division(void)
{
    CHECK_EQ_STR(str(P("floor(2*h/2)")), "h");
    CHECK_EQ_STR(str(P("floor((h + 2 - 3)/1) + 1")), "h");
    /* A stride-2 conv with pad 1 and kernel 3. */
    CHECK_EQ_STR(str(dt_sd_add_const(&ctx, dt_sd_floordiv(&ctx, P("h - 1"), K(2)), 1)), "floor((h + 1)/2)");
    CHECK_EQ_STR(str(P("floor(h/2)")), "floor(h/2)");
    CHECK_EQ_STR(str(P("floor((4*h + 6)/4)")), "h + 1");
    CHECK_EQ_STR(str(P("floor((4*h + 5*w + 6)/4)")), "h + w + floor((w + 2)/4) + 1");
    CHECK_EQ_STR(str(P("floor((2*h + 2)/4)")), "floor((h + 1)/2)");
    /* Nested strides fold: floor((floor((h + 1)/2) + 1)/2) == floor((h + 3)/4). */
    CHECK_EQ_STR(str(dt_sd_floordiv(&ctx, P("floor((h + 1)/2) + 1"), K(2))), "floor((h + 3)/4)");
    CHECK_EQ_STR(str(dt_sd_ceildiv(&ctx, P("h"), K(2))), "floor((h + 1)/2)");
    CHECK_EQ_STR(str(dt_sd_ceildiv(&ctx, P("h"), K(1))), "h");
    CHECK_EQ_STR(str(dt_sd_floordiv(&ctx, P("256*batch*seq"), P("64*batch*seq"))), "4");
    CHECK_EQ_STR(str(dt_sd_floordiv(&ctx, P("batch*h*w"), P("h*w"))), "batch");
    CHECK_EQ_STR(str(dt_sd_floordiv(&ctx, P("h"), P("w"))), "floor(h/w)");
    CHECK_EQ_STR(str(dt_sd_floordiv(&ctx, P("h + 1"), P("w + h"))), "floor((h + 1)/(h + w))");
    CHECK(dt_sd_floordiv(&ctx, P("h"), K(0)) == NULL);
    int64_t v;
    CHECK(dt_sd_is_const(dt_sd_floordiv(&ctx, K(-7), K(2)), &v) && v == -4);
    CHECK(dt_sd_is_const(dt_sd_ceildiv(&ctx, K(-7), K(2)), &v) && v == -3);
    CHECK(dt_sd_is_const(dt_sd_floordiv(&ctx, K(7), K(-2)), &v) && v == -4);
    /* A Slice step or Range delta of INT64_MAX: constants divide exactly, and where a + k - 1
     * overflows the quotient is unknown (NULL), not a NULL dereference. */
    CHECK(dt_sd_is_const(dt_sd_ceildiv(&ctx, K(8), K(INT64_MAX)), &v) && v == 1);
    CHECK(dt_sd_is_const(dt_sd_ceildiv(&ctx, K(INT64_MAX), K(INT64_MAX)), &v) && v == 1);
    CHECK(dt_sd_is_const(dt_sd_ceildiv(&ctx, K(0), K(INT64_MAX)), &v) && v == 0);
    CHECK(dt_sd_ceildiv(&ctx, P("h + 5"), K(INT64_MAX)) == NULL);
    CHECK(dt_sd_floordiv(&ctx, NULL, K(3)) == NULL);
    CHECK(dt_sd_ceildiv(&ctx, P("h"), K(INT64_MIN)) == NULL);
    CHECK_EQ_STR(str(dt_sd_ceildiv(&ctx, P("h"), K(INT64_MAX))), "floor((h + 9223372036854775806)/9223372036854775807)");
}

static void test_min_max(void)
{
    CHECK_EQ_STR(str(dt_sd_min(&ctx, K(0), P("h"))), "0");
    CHECK_EQ_STR(str(dt_sd_max(&ctx, K(0), P("h - 2"))), "max(h - 2, 0)");
    CHECK_EQ_STR(str(dt_sd_min(&ctx, P("h + 1"), P("h"))), "h");
    CHECK_EQ_STR(str(dt_sd_min(&ctx, K(512), P("seq"))), "min(seq, 512)");
    CHECK(dt_sd_equal(dt_sd_min(&ctx, P("w"), P("h")), dt_sd_min(&ctx, P("h"), P("w"))));
    const dt_sd *x, *y;
    CHECK(dt_sd_as_min(P("min(seq, 512)"), &x, &y) && dt_sd_equal(x, P("seq")));
    CHECK(dt_sd_nonneg(P("floor((h + 1)/2) + min(h, 3)")));
    CHECK(!dt_sd_nonneg(P("h - 1")));
}

static void test_evaluation(void)
{
    int64_t vals[3] = {7, 10, 2}, v = 0;
    CHECK(dt_sd_eval(P("floor((h + 1)/2)"), lookup, vals, &v) && v == 4);
    CHECK(dt_sd_eval(P("3*h*batch - w"), lookup, vals, &v) && v == 32);
    CHECK(dt_sd_eval(P("min(h, w) + max(h, w)"), lookup, vals, &v) && v == 17);
    CHECK(dt_sd_eval(P("floor((h - 10)/4)"), lookup, vals, &v) && v == -1);
    CHECK(!dt_sd_eval(P("floor(h/(w - 10))"), lookup, vals, &v));      /* division by zero */
    CHECK(!dt_sd_eval(P("unknown_symbol + 1"), lookup, vals, &v));
    int64_t big[3] = {INT64_MAX / 2, 3, 1};
    CHECK(!dt_sd_eval(P("3*h"), lookup, big, &v));                     /* overflow */
    CHECK(!dt_sd_eval(NULL, lookup, vals, &v));
}

static void test_printing_and_parsing(void)
{
    static const char *const forms[] = {"3*height", "batch*seq", "floor((image_height + 1)/2)", "2*h - 1",
                                        "min(seq, 512)", "max(h - 2, 0)", "floor(h*w/2)", "h*w + floor(h/w) - 3",
                                        "Resizeoutput_1_dim_0"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) CHECK_EQ_STR(str(P(forms[i])), forms[i]);
    CHECK(P("h +") == NULL);
    CHECK(P("floor(h, 2)") == NULL);
    CHECK(P("h w") == NULL);
    CHECK(P("99999999999999999999") == NULL);
    char deep[400];
    memset(deep, '(', sizeof deep - 1);
    deep[sizeof deep - 1] = 0;
    CHECK(P(deep) == NULL);   /* bounded recursion */
    char small[4];
    CHECK(!dt_sd_print(P("height"), small, sizeof small));
    CHECK_EQ_STR(small, "");
    /* Constant overflow gives an unknown, not a wrong value. */
    CHECK(dt_sd_mul(&ctx, K(INT64_MAX), K(2)) == NULL);
    CHECK(dt_sd_add(&ctx, P("h"), NULL) == NULL);
}

int main(void)
{
    dt_symctx_init(&ctx);
    test_canonical_forms();
    test_division();
    test_min_max();
    test_evaluation();
    test_printing_and_parsing();
    CHECK(!ctx.oom);
    dt_symctx_release(&ctx);
    TEST_MAIN_END();
}
