/* Output dtypes through the C API: an edited network whose output was never given a dtype
 * reports the computed one, and an engine whose bytes claim another dtype for an output (not
 * written by the builder; checksum resealed) is refused when shapes are computed, before any
 * kernel writes a buffer the caller sized by that claim. */
#include "ductile.h"
#include "format/checksum.h"
#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>

static uint32_t ld32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t ld64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static void st32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }

/* x [n, 4] float32 -> Relu -> marked output; the builder settles the output's dtype. The
 * output's name is copied into out_name (the network is freed here). */
static ductile_engine *build_relu(ductile_builder *b, char out_name[64])
{
    ductile_network *n = NULL;
    ductile_tensor *x = NULL;
    ductile_layer *relu = NULL;
    ductile_dims dyn = {2, {-1, 4}}, lo = {2, {1, 4}}, hi = {2, {3, 4}};
    CHECK_EQ_INT(ductile_network_create(b, &n), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_input(n, "x", DUCTILE_FLOAT32, &dyn, NULL, &x), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_activation(n, x, DUCTILE_ACTIVATION_RELU, &relu), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_mark_output(n, ductile_layer_get_output(relu, 0)), DUCTILE_OK);
    snprintf(out_name, 64, "%s", ductile_tensor_name(ductile_layer_get_output(relu, 0)));
    ductile_profile *p = NULL;
    ductile_config *c = NULL;
    ductile_engine *e = NULL;
    ductile_profile_create(b, &p);
    ductile_config_create(b, &c);
    CHECK_EQ_INT(ductile_profile_set_shape(p, "x", &lo, &lo, &hi), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_add_profile(c, p, NULL), DUCTILE_OK);
    CHECK_EQ_INT(ductile_builder_build(b, n, c, &e), DUCTILE_OK);
    ductile_profile_free(p);
    ductile_config_free(c);
    ductile_network_free(n);
    return e;
}

/* Sets the dtype of every network-output tensor record (TENSORS, id 2; 128-byte records:
 * dtype i32 at +4, flags u32 at +12 with bit 1 = output) and reseals the checksum. */
static int retype_outputs(unsigned char *f, size_t n, int32_t dtype)
{
    uint32_t nsec = ld32(f + 16), hs = ld32(f + 12);
    size_t off = 0;
    for (uint32_t i = 0; i < nsec; i++)
        if (ld32(f + hs + 24 * i) == 2) off = (size_t)ld64(f + hs + 24 * i + 8);
    if (!off) return 0;
    uint32_t count = ld32(f + off), changed = 0;
    for (uint32_t t = 0; t < count; t++) {
        unsigned char *rec = f + off + 4 + 128 * (size_t)t;
        if (ld32(rec + 12) & 2u) {
            st32(rec + 4, (uint32_t)dtype);
            changed++;
        }
    }
    st32(f + 32, dt_crc32c(dt_crc32c(0, f, 32), f + 36, n - 36));
    return (int)changed;
}

static void test_edited_output_reports_computed_dtype(ductile_engine *e, const char *out)
{
    CHECK_EQ_INT(ductile_engine_tensor_dtype(e, out), DUCTILE_FLOAT32);
}

static void test_engine_claiming_another_output_dtype_is_refused(ductile_engine *e, const char *out)
{
    void *bytes = NULL;
    size_t size = 0;
    CHECK_EQ_INT(ductile_engine_serialize(e, &bytes, &size), DUCTILE_OK);
    CHECK_EQ_INT(retype_outputs(bytes, size, DUCTILE_FLOAT16), 1);
    ductile_engine *bad = NULL;
    CHECK_EQ_INT(ductile_engine_load_memory(bytes, size, &bad), DUCTILE_OK);
    ductile_free(bytes);
    if (!bad) return;
    CHECK_EQ_INT(ductile_engine_tensor_dtype(bad, out), DUCTILE_FLOAT16);
    ductile_context *c = NULL;
    CHECK_EQ_INT(ductile_context_create(bad, &c), DUCTILE_OK);
    ductile_dims two = {2, {2, 4}};
    CHECK_EQ_INT(ductile_context_set_input_shape(c, "x", &two), DUCTILE_OK);
    ductile_dims got;
    char want[200];
    snprintf(want, sizeof want,
             "node 'Relu_0' (Relu, opset 0): output '%s' is declared float16 but the node computes float32", out);
    CHECK_EQ_INT(ductile_context_get_tensor_shape(c, out, &got), DUCTILE_ERR_FORMAT);
    CHECK_EQ_STR(ductile_last_error(), want);
    /* Bound buffers sized by the engine's claim (2 bytes an element) are never written. */
    float x[8] = {1, -1, 2, -2, 3, -3, 4, -4};
    uint16_t y[8 + 8];
    memset(y, 0xab, sizeof y);
    CHECK_EQ_INT(ductile_context_set_tensor_address(c, "x", x), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_tensor_address(c, out, y), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_execute(c), DUCTILE_ERR_FORMAT);
    CHECK_EQ_STR(ductile_last_error(), want);
    for (int i = 0; i < 16; i++) CHECK_EQ_INT(y[i], 0xabab);
    ductile_context_free(c);
    ductile_engine_free(bad);
}

int main(void)
{
    ductile_builder *b = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    char out[64];
    ductile_engine *e = build_relu(b, out);
    if (e) {
        test_edited_output_reports_computed_dtype(e, out);
        test_engine_claiming_another_output_dtype_is_refused(e, out);
    }
    ductile_engine_free(e);
    ductile_builder_free(b);
    TEST_MAIN_END();
}
