/* The CLI's parsers: shape specs (--shapes, --minShapes...), and the flag values that carry
 * syntax of their own (--memPoolSize, --percentile, --loadInputs); plus the percentile rule,
 * the generated input data and the half-precision conversions the JSON writer uses. */
#include "testutil.h"

#include "../../tools/cli_shapes.c"
#include "../../tools/cli_args.c"
#include "../../tools/cli_stats.c"
#include "../../tools/cli_util.c"
#include "../../tools/cli_data.c"

static int parse(const char *spec, cli_shape_list *list)
{
    char err[256];
    return cli_shapes_parse(spec, list, err, sizeof err);
}

static void test_spec_with_two_inputs_gives_names_and_dims(void)
{
    cli_shape_list l = {0};
    CHECK_EQ_INT(parse("input_ids:4x128,attention_mask:4x128", &l), 0);
    CHECK_EQ_INT(l.count, 2);
    CHECK_EQ_STR(l.items[0].name, "input_ids");
    CHECK_EQ_INT(l.items[0].dims.nb_dims, 2);
    CHECK_EQ_INT(l.items[0].dims.d[0], 4);
    CHECK_EQ_INT(l.items[0].dims.d[1], 128);
    CHECK_EQ_STR(l.items[1].name, "attention_mask");
    const cli_shape *m = cli_shapes_find(&l, "attention_mask");
    CHECK(m == &l.items[1]);
    CHECK(cli_shapes_find(&l, "nope") == NULL);
    cli_shapes_free(&l);
    CHECK_EQ_INT(l.count, 0);
}

static void test_name_with_colon_uses_last_colon_or_quotes(void)
{
    cli_shape_list l = {0};
    CHECK_EQ_INT(parse("input:0:1x3x224x224", &l), 0);
    CHECK_EQ_STR(l.items[0].name, "input:0");
    CHECK_EQ_INT(l.items[0].dims.nb_dims, 4);
    CHECK_EQ_INT(parse("'a,b:c':2x5", &l), 0);
    CHECK_EQ_INT(l.count, 2);
    CHECK_EQ_STR(l.items[1].name, "a,b:c");
    CHECK_EQ_INT(l.items[1].dims.d[1], 5);
    cli_shapes_free(&l);
}

static void test_empty_dims_is_a_scalar(void)
{
    cli_shape_list l = {0};
    CHECK_EQ_INT(parse("s:", &l), 0);
    CHECK_EQ_INT(l.items[0].dims.nb_dims, 0);
    cli_shapes_free(&l);
}

static void test_repeated_specs_add_up_and_duplicates_are_refused(void)
{
    cli_shape_list l = {0};
    CHECK_EQ_INT(parse("a:1", &l), 0);
    CHECK_EQ_INT(parse("b:2", &l), 0);
    CHECK_EQ_INT(l.count, 2);
    char err[256] = "";
    CHECK_EQ_INT(cli_shapes_parse("c:3,a:1", &l, err, sizeof err), -1);
    CHECK(strstr(err, "'a'") != NULL);
    CHECK_EQ_INT(l.count, 2); /* unchanged on failure */
    CHECK_EQ_INT(parse("d:1,d:1", &l), -1);
    cli_shapes_free(&l);
}

static void test_malformed_specs_are_refused_with_the_item(void)
{
    static const char *const bad[] = {
        "", "input", ":1x3", "x:1x", "x:x1", "x:1xx2", "x:-1", "x:1x3,", "x:1 x3",
        "x:1.5", "x:99999999999999999999", "x:1x1x1x1x1x1x1x1x1", "'x:1", "'x'1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cli_shape_list l = {0};
        char err[256] = "";
        int rc = cli_shapes_parse(bad[i], &l, err, sizeof err);
        if (rc != -1)
            fprintf(stderr, "accepted: '%s'\n", bad[i]);
        CHECK_EQ_INT(rc, -1);
        CHECK(err[0] != '\0');
        CHECK_EQ_INT(l.count, 0);
    }
    char err[256];
    cli_shape_list l = {0};
    CHECK_EQ_INT(cli_shapes_parse("in:1xqx3", &l, err, sizeof err), -1);
    CHECK(strstr(err, "1xqx3") != NULL);
}

static void test_dynamic_dims_specs_take_minus_one_only_there(void)
{
    cli_shape_list l = {0};
    char err[256];
    CHECK_EQ_INT(cli_shapes_parse_dynamic("input:-1x1x-1x224,'b:0':-1", &l, err, sizeof err), 0);
    CHECK_EQ_INT(l.count, 2);
    CHECK_EQ_INT(l.items[0].dims.nb_dims, 4);
    CHECK(l.items[0].dims.d[0] == -1 && l.items[0].dims.d[1] == 1 && l.items[0].dims.d[2] == -1 &&
          l.items[0].dims.d[3] == 224);
    CHECK_EQ_STR(l.items[1].name, "b:0");
    CHECK_EQ_INT(l.items[1].dims.d[0], -1);
    cli_shapes_free(&l);
    static const char *const bad[] = {"x:-2", "x:-1x", "x:-11", "x:1x-", "x:--1", "x:-1-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ_INT(cli_shapes_parse_dynamic(bad[i], &l, err, sizeof err), -1);
    CHECK_EQ_INT(cli_shapes_parse_dynamic("x:-2x1", &l, err, sizeof err), -1);
    CHECK_EQ_STR(err, "bad dims '-2x1' (expected -1 or non-negative integers joined by 'x', as -1x3x-1x-1)");
    CHECK_EQ_INT(l.count, 0);
    CHECK_EQ_INT(parse("x:-1x1", &l), -1);   /* --shapes and profiles stay concrete */
}

static void test_eight_dims_are_accepted(void)
{
    cli_shape_list l = {0};
    CHECK_EQ_INT(parse("x:1x2x3x4x5x6x7x8", &l), 0);
    CHECK_EQ_INT(l.items[0].dims.nb_dims, 8);
    CHECK_EQ_INT(l.items[0].dims.d[7], 8);
    cli_shapes_free(&l);
}

static void test_dims_format_and_volume(void)
{
    ductile_dims d = {4, {2, 1, 333, 301}};
    char buf[64];
    CHECK_EQ_STR(cli_dims_format(&d, buf, sizeof buf), "2x1x333x301");
    CHECK_EQ_INT(cli_dims_volume(&d), 2 * 333 * 301);
    ductile_dims s = {0, {0}};
    CHECK_EQ_STR(cli_dims_format(&s, buf, sizeof buf), "scalar");
    CHECK_EQ_INT(cli_dims_volume(&s), 1);
    ductile_dims huge = {3, {INT64_MAX, 2, 1}};
    CHECK_EQ_INT(cli_dims_volume(&huge), -1);
    char tiny[4];
    cli_dims_format(&d, tiny, sizeof tiny);
    CHECK_EQ_INT(strlen(tiny), 3);
}

static void test_mem_pool_sizes_follow_trtexec(void)
{
    uint64_t b = 0;
    CHECK_EQ_INT(parse_mem_pool("workspace:1024M", &b), 0);
    CHECK_EQ_INT(b, 1024ull << 20);
    CHECK_EQ_INT(parse_mem_pool("workspace:2G", &b), 0);
    CHECK_EQ_INT(b, 2ull << 30);
    CHECK_EQ_INT(parse_mem_pool("workspace:512K", &b), 0);
    CHECK_EQ_INT(b, 512ull << 10);
    CHECK_EQ_INT(parse_mem_pool("workspace:64", &b), 0);
    CHECK_EQ_INT(b, 64ull << 20);
    CHECK_EQ_INT(parse_mem_pool("workspace:", &b), -1);
    CHECK_EQ_INT(parse_mem_pool("workspace:-1M", &b), -1);
    CHECK_EQ_INT(parse_mem_pool("workspace:12T", &b), -1);
    CHECK_EQ_INT(parse_mem_pool("dlaSRAM:1M", &b), -1);
}

static void test_percentiles_and_load_inputs_values(void)
{
    cli_options o;
    set_defaults(&o);
    CHECK_EQ_INT(parse_percentiles("50,99.9", &o), 0);
    CHECK_EQ_INT(o.num_percentiles, 2);
    CHECK(o.percentiles[1] == 99.9);
    CHECK_EQ_INT(parse_percentiles("101", &o), -1);
    CHECK_EQ_INT(parse_percentiles("50,", &o), -1);
    char err[256];
    CHECK_EQ_INT(parse_load_inputs("a:/tmp/a.bin,'b:0':x:y.bin", &o, err, sizeof err), 0);
    CHECK_EQ_INT(o.num_inputs, 2);
    CHECK_EQ_STR(o.inputs[1].name, "b:0");
    CHECK_EQ_STR(o.inputs[1].path, "x:y.bin");
    CHECK_EQ_INT(parse_load_inputs("a:other.bin", &o, err, sizeof err), -1);
    CHECK_EQ_INT(parse_load_inputs("nocolon", &o, err, sizeof err), -1);
    cli_args_free(&o);
}

static void test_percentile_is_nearest_rank(void)
{
    double v[] = {5, 1, 4, 2, 3, 6, 7, 8, 9, 10};
    cli_latency l;
    cli_stats_compute(v, 10, &l);
    CHECK(l.min == 1 && l.max == 10 && l.mean == 5.5 && l.median == 5.5);
    CHECK(cli_stats_percentile(v, 10, 90) == 9);
    CHECK(cli_stats_percentile(v, 10, 95) == 10);
    CHECK(cli_stats_percentile(v, 10, 0) == 1);
    CHECK(cli_stats_percentile(v, 10, 100) == 10);
    double one = 3;
    CHECK(cli_stats_percentile(&one, 1, 99) == 3);
}

static void test_random_inputs_follow_the_documented_ranges(void)
{
    float f[1000], g[1000];
    int64_t ids[1000], mask[16];
    CHECK_EQ_INT(cli_fill_random(DUCTILE_FLOAT32, "input", f, 1000), 0);
    CHECK_EQ_INT(cli_fill_random(DUCTILE_FLOAT32, "input", g, 1000), 0);
    CHECK(memcmp(f, g, sizeof f) == 0); /* deterministic */
    int negative = 0;
    for (int i = 0; i < 1000; i++) {
        CHECK(f[i] >= -1.0f && f[i] < 1.0f);
        negative += f[i] < 0;
    }
    CHECK(negative > 400 && negative < 600);
    CHECK_EQ_INT(cli_fill_random(DUCTILE_INT64, "input_ids", ids, 1000), 0);
    int64_t hi = 0;
    for (int i = 0; i < 1000; i++) {
        CHECK(ids[i] >= 0 && ids[i] < 100);
        hi = ids[i] > hi ? ids[i] : hi;
    }
    CHECK(hi > 90);
    CHECK_EQ_INT(cli_fill_random(DUCTILE_INT64, "attention_mask", mask, 16), 0);
    for (int i = 0; i < 16; i++)
        CHECK_EQ_INT(mask[i], 1);
    CHECK_EQ_INT(cli_fill_random(DUCTILE_STRING, "s", f, 1), CLI_EXIT_FAILURE);
}

static void test_half_and_bfloat16_round_trip(void)
{
    static const float exact[] = {0.0f, 1.0f, -2.5f, 65504.0f, 0.000060975552f, 5.9604645e-8f};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        CHECK(cli_half_to_float(cli_float_to_half(exact[i])) == exact[i]);
    CHECK_EQ_INT(cli_float_to_half(1.0f), 0x3C00);
    CHECK_EQ_INT(cli_float_to_half(-2.0f), 0xC000);
    CHECK_EQ_INT(cli_float_to_half(1e6f), 0x7C00);
    CHECK_EQ_INT(cli_float_to_half(1.0f + 1.0f / 4096.0f), 0x3C00); /* ties to even */
    CHECK(isnan(cli_half_to_float(cli_float_to_half(NAN))));
    CHECK(cli_bf16_to_float(cli_float_to_bf16(-3.0f)) == -3.0f);
    CHECK_EQ_INT(cli_float_to_bf16(1.0f), 0x3F80);
    CHECK(isnan(cli_bf16_to_float(cli_float_to_bf16(NAN))));
}

int main(void)
{
    test_spec_with_two_inputs_gives_names_and_dims();
    test_name_with_colon_uses_last_colon_or_quotes();
    test_empty_dims_is_a_scalar();
    test_repeated_specs_add_up_and_duplicates_are_refused();
    test_malformed_specs_are_refused_with_the_item();
    test_dynamic_dims_specs_take_minus_one_only_there();
    test_eight_dims_are_accepted();
    test_dims_format_and_volume();
    test_mem_pool_sizes_follow_trtexec();
    test_percentiles_and_load_inputs_values();
    test_percentile_is_nearest_rank();
    test_random_inputs_follow_the_documented_ranges();
    test_half_and_bfloat16_round_trip();
    TEST_MAIN_END();
}
