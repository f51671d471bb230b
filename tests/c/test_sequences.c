/* Sequences and optionals through the C API: a sequence input set with set_sequence, a
 * sequence output read with get_sequence, tensors read out of a sequence, the engine file
 * keeping the kinds (serialize, load), and refusals: a call of the wrong kind, an engine
 * whose bytes claim another kind than its ops make, a position out of range. Results are
 * checked against what the ops define on these inputs (onnxruntime comparisons are in
 * tests/python/test_sequences.py). */
#include "ductile.h"
#include "format/checksum.h"
#include "eager_models.h"
#include "onnx_writer.h"
#include "testutil.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The sequence model (SequenceInsert/Length/At, SplitToSequence, ConcatFromSequence):
 * eager_models.h's em_seq_model. */

static ductile_engine *build(ductile_builder *b, pbw m)
{
    ductile_network *n = NULL;
    ductile_profile *p = NULL;
    ductile_config *c = NULL;
    ductile_engine *e = NULL;
    ductile_dims d23 = {2, {2, 3}}, scalar = {0, {0}};
    CHECK_EQ_INT(ductile_network_create(b, &n), DUCTILE_OK);
    CHECK_EQ_INT(ductile_onnx_parse_memory(n, m.p, m.n), DUCTILE_OK);
    ductile_profile_create(b, &p);
    ductile_config_create(b, &c);
    CHECK_EQ_INT(ductile_profile_set_shape(p, "x", &d23, &d23, &d23), DUCTILE_OK);
    CHECK_EQ_INT(ductile_profile_set_shape(p, "at", &scalar, &scalar, &scalar), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_add_profile(c, p, NULL), DUCTILE_OK);
    CHECK_EQ_INT(ductile_builder_build(b, n, c, &e), DUCTILE_OK);
    ductile_profile_free(p);
    ductile_config_free(c);
    ductile_network_free(n);
    return e;
}

static const float X[6] = {1, 2, 3, 4, 5, 6};
static const float A[2] = {-1, -2}, B[3] = {7, 8, 9};

/* Runs e on s = [A (2), B (1x3)], x = X, at; checks every output against the ops' rules. */
static void run_and_check(ductile_engine *e, int64_t at)
{
    ductile_context *c = NULL;
    CHECK_EQ_INT(ductile_context_create(e, &c), DUCTILE_OK);
    if (!c) return;
    ductile_item s[2] = {{DUCTILE_FLOAT32, {1, {2}}, A}, {DUCTILE_FLOAT32, {2, {1, 3}}, B}};
    ductile_dims d23 = {2, {2, 3}}, scalar = {0, {0}};
    CHECK_EQ_INT(ductile_context_set_sequence(c, "s", s, 2), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_input_shape(c, "x", &d23), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_input_shape(c, "at", &scalar), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_tensor_address(c, "x", (void *)X), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_tensor_address(c, "at", &at), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_execute(c), DUCTILE_OK);

    const ductile_item *items = NULL;
    int64_t n = 0;
    CHECK_EQ_INT(ductile_context_get_sequence(c, "out", &items, &n), DUCTILE_OK);
    CHECK_EQ_INT(n, 3);
    if (n == 3) {
        CHECK_EQ_INT(items[0].dims.nb_dims, 1);
        CHECK(!memcmp(items[0].data, A, sizeof A));
        CHECK_EQ_INT(items[1].dims.nb_dims, 2);
        CHECK(!memcmp(items[1].data, B, sizeof B));
        CHECK_EQ_INT(items[2].dtype, DUCTILE_FLOAT32);
        CHECK(items[2].dims.nb_dims == 2 && items[2].dims.d[0] == 2 && items[2].dims.d[1] == 3);
        CHECK(!memcmp(items[2].data, X, sizeof X));
    }
    void *p = NULL;
    ductile_dims d;
    CHECK_EQ_INT(ductile_context_get_tensor_address(c, "len", &p), DUCTILE_OK);
    CHECK(p && *(int64_t *)p == 3);
    CHECK_EQ_INT(ductile_context_get_tensor_shape(c, "item", &d), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_get_tensor_address(c, "item", &p), DUCTILE_OK);
    int64_t k = at < 0 ? at + 3 : at;
    const float *want = k == 0 ? A : k == 1 ? B : X;
    CHECK_EQ_INT(d.nb_dims, k == 0 ? 1 : 2);
    CHECK(p && !memcmp(p, want, (k == 0 ? 2 : k == 1 ? 3 : 6) * sizeof(float)));
    /* Split into columns [2,1] and concatenated along axis 0: x's columns one after the other. */
    CHECK_EQ_INT(ductile_context_get_tensor_shape(c, "cols", &d), DUCTILE_OK);
    CHECK(d.nb_dims == 2 && d.d[0] == 6 && d.d[1] == 1);
    CHECK_EQ_INT(ductile_context_get_tensor_address(c, "cols", &p), DUCTILE_OK);
    const float cols[6] = {1, 4, 2, 5, 3, 6};
    CHECK(p && !memcmp(p, cols, sizeof cols));

    /* Tensor calls on a sequence, and a sequence call on a tensor, say which to use. */
    CHECK_EQ_INT(ductile_context_get_tensor_shape(c, "out", &d), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(), "'out' is a sequence, not a tensor: use set_sequence / get_sequence");
    CHECK_EQ_INT(ductile_context_set_tensor_address(c, "s", (void *)X), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(ductile_context_set_input_shape(c, "s", &scalar), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(), "'s' is a sequence, not a tensor: use set_sequence / get_sequence");
    CHECK_EQ_INT(ductile_context_get_sequence(c, "len", &items, &n), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(), "'len' is a tensor, not a sequence or optional: use the tensor calls");
    CHECK_EQ_INT(ductile_context_set_sequence(c, "s", s, -1), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(), "input 's' is a sequence: -1 items given; expected 0 or more");
    ductile_item wrong = {DUCTILE_INT32, {1, {2}}, A};
    CHECK_EQ_INT(ductile_context_set_sequence(c, "s", &wrong, 1), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(), "input 's': item 0 has dtype int32; expected float32");
    /* A refused call keeps the value the input had. */
    CHECK_EQ_INT(ductile_context_get_sequence(c, "s", &items, &n), DUCTILE_OK);
    CHECK(n == 2 && items && !memcmp(items[1].data, B, sizeof B));

    /* A position out of range names the node, the position and the length. */
    at = 3;
    CHECK_EQ_INT(ductile_context_execute(c), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(),
                 "node 'pick' (SequenceAt, opset 13): position 3 is out of range for a sequence of length 3 (expected -3..2)");
    ductile_context_free(c);
}

/* The TENSORS record of tensor `name` (format/format.h: 128-byte records after a u32 count). */
static unsigned char *tensor_record(unsigned char *f, const char *name)
{
    uint32_t nsec, hs, v;
    memcpy(&nsec, f + 16, 4);
    memcpy(&hs, f + 12, 4);
    uint64_t toff = 0, soff = 0;
    for (uint32_t i = 0; i < nsec; i++) {
        uint64_t off;
        memcpy(&v, f + hs + 24 * i, 4);
        memcpy(&off, f + hs + 24 * i + 8, 8);
        if (v == 2) toff = off;
        if (v == 1) soff = off;
    }
    uint32_t count, nstr;
    memcpy(&count, f + toff, 4);
    memcpy(&nstr, f + soff, 4);
    for (uint32_t t = 0; t < count; t++) {
        unsigned char *rec = f + toff + 4 + 128 * (size_t)t;
        uint32_t si;
        memcpy(&si, rec, 4);
        /* Walk STRINGS to string si: u32 length, bytes, NUL. */
        const unsigned char *s = f + soff + 4;
        for (uint32_t i = 0; i < si && i < nstr; i++) {
            uint32_t len;
            memcpy(&len, s, 4);
            s += 4 + len + 1;
        }
        uint32_t len;
        memcpy(&len, s, 4);
        if (len == strlen(name) && !memcmp(s + 4, name, len)) return rec;
    }
    return NULL;
}

static void reseal(unsigned char *f, size_t n)
{
    uint32_t crc = dt_crc32c(dt_crc32c(0, f, 32), f + 36, n - 36);
    memcpy(f + 32, &crc, 4);
}

static void test_engine_file_keeps_kinds_and_refuses_a_false_one(ductile_engine *e)
{
    void *bytes = NULL, *bytes2 = NULL;
    size_t size = 0;
    CHECK_EQ_INT(ductile_engine_serialize(e, &bytes, &size), DUCTILE_OK);
    if (!bytes) return;
    ductile_engine *back = NULL;
    CHECK_EQ_INT(ductile_engine_load_memory(bytes, size, &back), DUCTILE_OK);
    CHECK_EQ_INT(ductile_engine_tensor_kind(back, "s"), DUCTILE_VALUE_SEQUENCE);
    CHECK_EQ_INT(ductile_engine_tensor_kind(back, "out"), DUCTILE_VALUE_SEQUENCE);
    CHECK_EQ_INT(ductile_engine_tensor_kind(back, "x"), DUCTILE_VALUE_TENSOR);
    CHECK_EQ_INT(ductile_engine_tensor_kind(back, "nope"), -1);
    CHECK_EQ_INT(ductile_engine_tensor_dtype(back, "out"), DUCTILE_FLOAT32);
    if (back) run_and_check(back, 1);
    ductile_engine_free(back);

    /* "out" claimed to be a tensor: its producer makes a sequence, so the plan refuses it. */
    unsigned char *rec = tensor_record(bytes, "out");
    CHECK(rec != NULL);
    if (rec) {
        uint32_t flags;
        memcpy(&flags, rec + 12, 4);
        CHECK_EQ_INT(flags & 0x18u, 1u << 3);
        flags &= ~0x18u;
        memcpy(rec + 12, &flags, 4);
        reseal(bytes, size);
        back = NULL;
        CHECK_EQ_INT(ductile_engine_load_memory(bytes, size, &back), DUCTILE_ERR_FORMAT);
        CHECK_EQ_STR(ductile_last_error(),
                     "node 'ins' (SequenceInsert, opset 13): output 0 ('out') is stored as a tensor but the node makes a sequence");
        ductile_engine_free(back);
    }
    /* A kind on a tensor of rank 2 ("x"): sequences and optionals have rank 0 and no data. */
    CHECK_EQ_INT(ductile_engine_serialize(e, &bytes2, &size), DUCTILE_OK);
    rec = bytes2 ? tensor_record(bytes2, "x") : NULL;
    CHECK(rec != NULL);
    if (rec) {
        uint32_t flags;
        memcpy(&flags, rec + 12, 4);
        flags |= 1u << 3;
        memcpy(rec + 12, &flags, 4);
        reseal(bytes2, size);
        char want[200];
        snprintf(want, sizeof want,
                 "engine section TENSORS at byte offset %zu: tensor 'x': a sequence or optional (flags 0x%x) has rank 0 and no data",
                 (size_t)(rec + 12 - (unsigned char *)bytes2), flags);
        back = NULL;
        CHECK_EQ_INT(ductile_engine_load_memory(bytes2, size, &back), DUCTILE_ERR_FORMAT);
        CHECK_EQ_STR(ductile_last_error(), want);
        ductile_engine_free(back);
    }
    ductile_free(bytes2);
    ductile_free(bytes);
}

int main(void)
{
    ductile_builder *b = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    pbw m = em_seq_model();
    ductile_engine *e = build(b, m);
    free(m.p);
    CHECK(e != NULL);
    if (e) {
        CHECK_EQ_INT(ductile_engine_tensor_kind(e, "s"), DUCTILE_VALUE_SEQUENCE);
        run_and_check(e, 0);
        run_and_check(e, -1);
        test_engine_file_keeps_kinds_and_refuses_a_false_one(e);
    }
    ductile_engine_free(e);
    ductile_builder_free(b);
    TEST_MAIN_END();
}
