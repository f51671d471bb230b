/* The workspace limit (ductile_config_set_workspace) bounds the activation memory a profile
 * needs; the build plans it at min, opt and max and refuses a profile over the limit, and
 * without a limit refuses one over the backend's memory (an absurd max), never at the first
 * run. The network: x [batch,256] -> Relu -> a -> Relu -> b -> Add(b, a): a and b are live
 * together, so the arena at batch N is 2 * N * 256 * 4 bytes. */
#include "ductile.h"
#include "testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

static ductile_network *make_net(ductile_builder *b)
{
    ductile_network *net = NULL;
    ductile_tensor *x = NULL;
    ductile_layer *r1 = NULL, *r2 = NULL, *add = NULL;
    ductile_dims d = {2, {-1, 256}};
    const char *names[] = {"batch", NULL};
    CHECK_EQ_INT(ductile_network_create(b, &net), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_input(net, "x", DUCTILE_FLOAT32, &d, names, &x), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_activation(net, x, DUCTILE_ACTIVATION_RELU, &r1), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_activation(net, ductile_layer_get_output(r1, 0), DUCTILE_ACTIVATION_RELU, &r2), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_elementwise(net, ductile_layer_get_output(r2, 0), ductile_layer_get_output(r1, 0),
                                                 DUCTILE_ELEMENTWISE_SUM, &add), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_mark_output(net, ductile_layer_get_output(add, 0)), DUCTILE_OK);
    return net;
}

/* Builds with batch range 1..opt..max and the given workspace (0: none set). */
static ductile_status build(ductile_builder *b, ductile_network *net, int64_t opt, int64_t max, uint64_t workspace)
{
    ductile_profile *p = NULL;
    ductile_config *c = NULL;
    ductile_engine *e = NULL;
    ductile_dims mn = {2, {1, 256}}, op = {2, {opt, 256}}, mx = {2, {max, 256}};
    CHECK_EQ_INT(ductile_profile_create(b, &p), DUCTILE_OK);
    CHECK_EQ_INT(ductile_profile_set_shape(p, "x", &mn, &op, &mx), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_create(b, &c), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_add_profile(c, p, NULL), DUCTILE_OK);
    if (workspace) CHECK_EQ_INT(ductile_config_set_workspace(c, workspace), DUCTILE_OK);
    ductile_status s = ductile_builder_build(b, net, c, &e);
    if (e) { /* built: the max shape runs in the memory the limit allowed */
        ductile_context *ctx = NULL;
        ductile_dims at = {2, {max, 256}};
        void *addr = NULL;
        CHECK_EQ_INT(ductile_context_create(e, &ctx), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_input_shape(ctx, "x", &at), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_get_tensor_address(ctx, "x", &addr), DUCTILE_OK);
        ductile_context_free(ctx);
    }
    ductile_engine_free(e);
    ductile_config_free(c);
    ductile_profile_free(p);
    return s;
}

static void test_limit_refuses_profile(ductile_builder *b, ductile_network *net)
{
    /* batch 64: 2 * 64 * 256 * 4 = 131072 bytes at max. */
    CHECK_EQ_INT(build(b, net, 4, 64, 131072), DUCTILE_OK);
    CHECK_EQ_INT(build(b, net, 4, 64, 131071), DUCTILE_ERR_PROFILE);
    CHECK_EQ_STR(ductile_last_error(),
                 "profile 0 needs 131072 bytes (128.0 KiB) of activation memory at its max shapes 'x' [64,256], "
                 "more than the workspace limit of 131071 bytes (128.0 KiB) (ductile_config_set_workspace; "
                 "--memPoolSize=workspace:N in the CLI; set_memory_pool_limit in Python): raise the limit or shrink the profile");
    /* 1 MB with a max of a million rows (2 GB): the case the limit was ignored in. */
    CHECK_EQ_INT(build(b, net, 4, 1000000, 1 << 20), DUCTILE_ERR_PROFILE);
    CHECK_EQ_STR(ductile_last_error(),
                 "profile 0 needs 2048000000 bytes (1.9 GiB) of activation memory at its max shapes 'x' [1000000,256], "
                 "more than the workspace limit of 1048576 bytes (1.0 MiB) (ductile_config_set_workspace; "
                 "--memPoolSize=workspace:N in the CLI; set_memory_pool_limit in Python): raise the limit or shrink the profile");
}

static void format_bytes(char *buf, size_t cap, unsigned long long bytes)
{
    static const char *const unit[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)bytes;
    int u = -1;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    if (u < 0) snprintf(buf, cap, "%llu bytes", bytes);
    else snprintf(buf, cap, "%llu bytes (%.1f %s)", bytes, v, unit[u]);
}

static void test_absurd_max_refused_at_build(ductile_builder *b, ductile_network *net)
{
    /* No limit set: the machine's memory is the limit. 10^12 rows need 2.048e15 bytes. */
    CHECK_EQ_INT(build(b, net, 4, 1000000000000LL, 0), DUCTILE_ERR_PROFILE);
    char mem[64], want[512];
    format_bytes(mem, sizeof mem, (unsigned long long)sysconf(_SC_PHYS_PAGES) * (unsigned long long)sysconf(_SC_PAGESIZE));
    snprintf(want, sizeof want,
             "profile 0 needs 2048000000000000 bytes (1.8 PiB) of activation memory at its max shapes 'x' [1000000000000,256], "
             "more than the %s of memory of the cpu backend (the limit when no workspace limit is set): shrink the profile", mem);
    CHECK_EQ_STR(ductile_last_error(), want);
    /* Past 64 bits: named, not wrapped. */
    CHECK_EQ_INT(build(b, net, 4, INT64_MAX / 256, 0), DUCTILE_ERR_PROFILE);
    CHECK_EQ_STR(ductile_last_error(),
                 "profile 0: input 'x' dimension 0 (batch) ranges over 1..36028797018963967 but the model fails at 36028797018963967: "
                 "node 'Relu_0' (Relu, opset 0): output 0 ('Relu_0_output') has shape [36028797018963967,256] of float32: "
                 "more than 18446744073709551615 bytes");
}

int main(void)
{
    ductile_builder *b = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    ductile_network *net = make_net(b);
    test_limit_refuses_profile(b, net);
    test_absurd_max_refused_at_build(b, net);
    ductile_network_free(net);
    ductile_builder_free(b);
    TEST_MAIN_END();
}
