/* The engine file format: what is written reads back field by field, the bytes are
 * deterministic, and no corruption (flip, truncation, version, random mutation) gets past the
 * reader or crashes it. */
#include "core/alloc.h"
#include "format/checksum.h"
#include "format/format.h"
#include "builder/engine_write.h"
#include "runtime/engine_read.h"
#include "format/profile.h"
#include "core/status.h"
#include "graph/network.h"
#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const float w_data[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.5f, 1e-3f};
static const int64_t shape_data[2] = {-1, 48};
static const int64_t attr_t_data[3] = {7, -8, 9};
static const float floats_v[3] = {0.25f, -1.0f, 3.0f};
static const int64_t ints_v[4] = {1, -2, 3, INT64_MIN};
static const char *strings_v[2] = {"alpha", ""};

/* A small network exercising every field: constants of two dtypes, symbolic dims, an unknown
 * rank, an omitted optional input, every attribute type, another domain, two profiles. */
static ductile_network *make_net(ductile_profile prof[2])
{
    ductile_network *net;
    if (dt_network_new(&net)) return NULL;
    net->opset = 17;
    dt_arena *A = &net->arena;

    ductile_tensor *x = dt_network_add_tensor(net, "x");
    x->dtype = DUCTILE_FLOAT32;
    x->rank = 4;
    int64_t xd[4] = {-1, 3, -1, -1};
    memcpy(x->dims, xd, sizeof xd);
    x->dim_sym[0] = "batch";
    x->dim_sym[2] = "height";
    x->dim_sym[3] = "width";
    dt_network_add_input(net, x);

    ductile_tensor *w = dt_network_add_tensor(net, "w");
    w->dtype = DUCTILE_FLOAT32;
    w->rank = 4;
    int64_t wd[4] = {2, 3, 1, 1};
    memcpy(w->dims, wd, sizeof wd);
    w->data = w_data;
    w->nbytes = sizeof w_data;

    ductile_tensor *shape = dt_network_add_tensor(net, "shape");
    shape->dtype = DUCTILE_INT64;
    shape->rank = 1;
    shape->dims[0] = 2;
    shape->data = shape_data;
    shape->nbytes = sizeof shape_data;

    ductile_tensor *y = dt_network_add_tensor(net, "y"); /* unknown rank and dtype */
    ductile_tensor *z = dt_network_add_tensor(net, "z");
    z->dtype = DUCTILE_FLOAT32;
    z->rank = 2;
    z->dims[0] = -1;
    z->dims[1] = 48;
    z->dim_sym[0] = "batch";

    ductile_layer *conv = dt_network_add_layer(net, "Conv", "conv0", 3, 1, 9);
    conv->in[0] = x;
    conv->in[1] = w;
    conv->in[2] = NULL;
    conv->out[0] = y;
    y->producer = conv;
    dt_attr *a = conv->attrs;
    a[0] = (dt_attr){.name = "f", .type = DT_ATTR_FLOAT, .f = -0.125f};
    a[1] = (dt_attr){.name = "i", .type = DT_ATTR_INT, .i = INT64_MIN + 5};
    a[2] = (dt_attr){.name = "s", .type = DT_ATTR_STRING, .s = "ab\0cd", .s_len = 5};
    ductile_tensor *at = dt_arena_alloc(A, sizeof *at);
    at->name = "attr_t";
    at->dtype = DUCTILE_INT64;
    at->rank = 1;
    at->dims[0] = 3;
    at->index = -1;
    at->data = attr_t_data;
    at->nbytes = sizeof attr_t_data;
    a[3] = (dt_attr){.name = "t", .type = DT_ATTR_TENSOR, .t = at};
    a[4] = (dt_attr){.name = "fs", .type = DT_ATTR_FLOATS, .n = 3, .floats = floats_v};
    a[5] = (dt_attr){.name = "is", .type = DT_ATTR_INTS, .n = 4, .ints = ints_v};
    a[6] = (dt_attr){.name = "ss", .type = DT_ATTR_STRINGS, .n = 2, .strings = strings_v};
    a[7] = (dt_attr){.name = "empty", .type = DT_ATTR_INTS, .n = 0};
    a[8] = (dt_attr){.name = "s_null", .type = DT_ATTR_STRING};

    ductile_layer *rs = dt_network_add_layer(net, "Reshape", "reshape0", 2, 1, 0);
    rs->domain = "com.example";
    rs->opset = 3;
    rs->in[0] = y;
    rs->in[1] = shape;
    rs->out[0] = z;
    z->producer = rs;
    dt_network_add_output(net, z);

    int64_t mn[4] = {1, 3, 8, 8}, op[4] = {2, 3, 16, 16}, mx[4] = {4, 3, 32, 32};
    memset(prof, 0, 2 * sizeof *prof);
    dt_profile_set(&prof[0], "x", 4, mn, op, mx);
    int64_t mn1[4] = {8, 3, 64, 64}, op1[4] = {8, 3, 64, 64}, mx1[4] = {16, 3, 128, 96};
    dt_profile_set(&prof[1], "x", 4, mn1, op1, mx1);
    return net;
}

static void check_tensor_eq(const ductile_tensor *a, const ductile_tensor *b)
{
    CHECK_EQ_STR(a->name, b->name);
    CHECK_EQ_INT(a->dtype, b->dtype);
    CHECK_EQ_INT(a->rank, b->rank);
    CHECK_EQ_INT(a->index, b->index);
    for (int i = 0; i < a->rank; i++) {
        CHECK_EQ_INT(a->dims[i], b->dims[i]);
        CHECK_EQ_STR(a->dim_sym[i], b->dim_sym[i]);
    }
    CHECK_EQ_INT(a->nbytes, b->nbytes);
    CHECK((a->data == NULL) == (b->data == NULL));
    if (a->data && b->data) {
        CHECK(memcmp(a->data, b->data, a->nbytes) == 0);
        CHECK((uintptr_t)b->data % 64 == 0);
    }
    CHECK_EQ_INT(a->is_input, b->is_input);
    CHECK_EQ_INT(a->is_output, b->is_output);
    CHECK_EQ_STR(a->producer ? a->producer->name : NULL, b->producer ? b->producer->name : NULL);
}

static void check_net_eq(const ductile_network *a, const ductile_network *b)
{
    CHECK_EQ_INT(a->opset, b->opset);
    CHECK_EQ_INT(a->n_tensors, b->n_tensors);
    CHECK_EQ_INT(a->n_layers, b->n_layers);
    CHECK_EQ_INT(a->n_inputs, b->n_inputs);
    CHECK_EQ_INT(a->n_outputs, b->n_outputs);
    if (a->n_tensors != b->n_tensors || a->n_layers != b->n_layers || a->n_inputs != b->n_inputs ||
        a->n_outputs != b->n_outputs)
        return;
    for (int i = 0; i < a->n_tensors; i++) check_tensor_eq(a->tensors[i], b->tensors[i]);
    for (int i = 0; i < a->n_inputs; i++) CHECK_EQ_INT(a->inputs[i]->index, b->inputs[i]->index);
    for (int i = 0; i < a->n_outputs; i++) CHECK_EQ_INT(a->outputs[i]->index, b->outputs[i]->index);
    for (int l = 0; l < a->n_layers; l++) {
        const ductile_layer *la = a->layers[l], *lb = b->layers[l];
        CHECK_EQ_STR(la->name, lb->name);
        CHECK_EQ_STR(la->op_type, lb->op_type);
        CHECK_EQ_STR(la->domain, lb->domain);
        CHECK_EQ_INT(la->opset, lb->opset);
        CHECK_EQ_INT(la->index, lb->index);
        CHECK_EQ_INT(la->n_in, lb->n_in);
        CHECK_EQ_INT(la->n_out, lb->n_out);
        CHECK_EQ_INT(la->n_attr, lb->n_attr);
        if (la->n_in != lb->n_in || la->n_out != lb->n_out || la->n_attr != lb->n_attr) continue;
        for (int k = 0; k < la->n_in; k++)
            CHECK_EQ_INT(la->in[k] ? la->in[k]->index : -1, lb->in[k] ? lb->in[k]->index : -1);
        for (int k = 0; k < la->n_out; k++) CHECK_EQ_INT(la->out[k]->index, lb->out[k]->index);
        for (int k = 0; k < la->n_attr; k++) {
            const dt_attr *x = &la->attrs[k], *y = &lb->attrs[k];
            CHECK_EQ_STR(x->name, y->name);
            CHECK_EQ_INT(x->type, y->type);
            switch (x->type) {
            case DT_ATTR_FLOAT: CHECK(memcmp(&x->f, &y->f, 4) == 0); break;
            case DT_ATTR_INT: CHECK_EQ_INT(x->i, y->i); break;
            case DT_ATTR_STRING:
                CHECK_EQ_INT(x->s_len, y->s_len);
                CHECK((x->s == NULL) == (y->s == NULL));
                if (x->s && y->s) CHECK(memcmp(x->s, y->s, x->s_len + 1) == 0);
                break;
            case DT_ATTR_TENSOR: check_tensor_eq(x->t, y->t); break;
            case DT_ATTR_FLOATS:
                CHECK_EQ_INT(x->n, y->n);
                if (x->n == y->n && x->n) CHECK(memcmp(x->floats, y->floats, 4 * (size_t)x->n) == 0);
                break;
            case DT_ATTR_INTS:
                CHECK_EQ_INT(x->n, y->n);
                if (x->n == y->n && x->n) CHECK(memcmp(x->ints, y->ints, 8 * (size_t)x->n) == 0);
                break;
            case DT_ATTR_STRINGS:
                CHECK_EQ_INT(x->n, y->n);
                for (int64_t e = 0; e < x->n && x->n == y->n; e++) CHECK_EQ_STR(x->strings[e], y->strings[e]);
                break;
            }
        }
    }
}

static void check_profiles_eq(const ductile_profile *a, const ductile_profile *b, int n)
{
    for (int p = 0; p < n; p++) {
        CHECK_EQ_INT(a[p].n, b[p].n);
        for (int e = 0; e < a[p].n && a[p].n == b[p].n; e++) {
            const dt_profile_input *x = &a[p].inputs[e], *y = &b[p].inputs[e];
            CHECK_EQ_STR(x->name, y->name);
            CHECK_EQ_INT(x->rank, y->rank);
            for (int i = 0; i < x->rank; i++) {
                CHECK_EQ_INT(x->min[i], y->min[i]);
                CHECK_EQ_INT(x->opt[i], y->opt[i]);
                CHECK_EQ_INT(x->max[i], y->max[i]);
            }
        }
    }
}

static void free_read(ductile_network *net, ductile_profile *p, int n)
{
    dt_network_delete(net);
    for (int i = 0; i < n; i++) dt_profile_clear(&p[i]);
    dt_free(p);
}

/* Reads an aligned copy of the first n bytes of src. */
static ductile_status read_copy(const unsigned char *src, size_t n, unsigned flags)
{
    void *buf = NULL;
    if (posix_memalign(&buf, 64, n ? n : 1)) return DUCTILE_ERR_OUT_OF_MEMORY;
    memcpy(buf, src, n);
    ductile_network *net;
    ductile_profile *p;
    int np;
    ductile_status s = dt_engine_read_ex(buf, n, flags, &net, &p, &np);
    if (s == DUCTILE_OK) free_read(net, p, np);
    else if (net || p || np) s = DUCTILE_ERR_INTERNAL; /* failure must leave outputs empty */
    free(buf);
    return s;
}

static uint32_t ld32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t ld64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static void st32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void st64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

static void reseal(unsigned char *f, size_t n)
{
    uint32_t crc = dt_crc32c(0, f, 32);
    st32(f + 32, dt_crc32c(crc, f + 36, n - 36));
}

/* Absolute offset of a section (by id) from the table, or 0. */
static size_t section_off(const unsigned char *f, uint32_t id)
{
    uint32_t nsec = ld32(f + 16), hs = ld32(f + 12);
    for (uint32_t i = 0; i < nsec; i++)
        if (ld32(f + hs + 24 * i) == id) return (size_t)ld64(f + hs + 24 * i + 8);
    return 0;
}

static void test_checksum(void)
{
    CHECK_EQ_INT(dt_crc32c(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ_INT(dt_crc32c_portable(0, "123456789", 9), 0xE3069283u);
    unsigned char buf[1000];
    for (int i = 0; i < 1000; i++) buf[i] = (unsigned char)(i * 131 + 7);
    for (size_t n = 0; n < 40; n++) {
        CHECK_EQ_INT(dt_crc32c(0, buf + 3, n * 23), dt_crc32c_portable(0, buf + 3, n * 23));
        /* Continuation equals one pass. */
        CHECK_EQ_INT(dt_crc32c(dt_crc32c(0, buf, n), buf + n, 900 - n), dt_crc32c(0, buf, 900));
    }
}

static void test_roundtrip(const unsigned char *f, size_t n, const ductile_network *net,
                           const ductile_profile *prof)
{
    CHECK(memcmp(f, "DUCTILE\0", 8) == 0);
    CHECK_EQ_INT(ld32(f + DT_ENGINE_OFF_VERSION), DT_ENGINE_FORMAT_VERSION);
    CHECK_EQ_INT(ld64(f + DT_ENGINE_OFF_FILE_SIZE), n);
    CHECK_EQ_STR((const char *)f + DT_ENGINE_OFF_LIB_VERSION, ductile_version());

    ductile_network *back;
    ductile_profile *bp;
    int nbp;
    ductile_status s = dt_engine_read(f, n, &back, &bp, &nbp);
    CHECK_EQ_INT(s, DUCTILE_OK);
    if (s) {
        fprintf(stderr, "read: %s\n", dt_last_error());
        return;
    }
    CHECK_EQ_INT(nbp, 2);
    check_net_eq(net, back);
    if (nbp == 2) check_profiles_eq(prof, bp, 2);
    /* Zero copy: constants point into the buffer. */
    const unsigned char *wd = back->tensors[1]->data;
    CHECK(wd >= f && wd + sizeof w_data <= f + n);

    /* Writing what was read gives the same bytes: nothing is lost or reordered. */
    void *again;
    size_t n2;
    CHECK_EQ_INT(dt_engine_write(back, bp, nbp, &again, &n2), DUCTILE_OK);
    CHECK(n2 == n && memcmp(again, f, n) == 0);
    dt_free(again);
    free_read(back, bp, nbp);
}

static void test_header_errors(const unsigned char *f, size_t n)
{
    unsigned char *g = malloc(n);
    char want[200];

    memcpy(g, f, n);
    st32(g + DT_ENGINE_OFF_VERSION, 7);
    CHECK_EQ_INT(read_copy(g, n, 0), DUCTILE_ERR_FORMAT);
    CHECK_EQ_STR(dt_last_error(), "engine format version 7 is not supported (this build reads version 2)");

    memcpy(g, f, n);
    g[3] ^= 0x20;
    CHECK_EQ_INT(read_copy(g, n, 0), DUCTILE_ERR_FORMAT);
    CHECK_EQ_STR(dt_last_error(), "not a ductile engine: bad magic at byte offset 0");

    CHECK_EQ_INT(read_copy(f, n - 1, 0), DUCTILE_ERR_FORMAT);
    snprintf(want, sizeof want, "truncated engine: the header says %zu bytes, got %zu", n, n - 1);
    CHECK_EQ_STR(dt_last_error(), want);

    CHECK_EQ_INT(read_copy(f, 20, 0), DUCTILE_ERR_FORMAT);
    CHECK_EQ_STR(dt_last_error(), "truncated engine: got 20 bytes, the header alone is 64 bytes");

    memcpy(g, f, n);
    g[n - 1] ^= 1;
    CHECK_EQ_INT(read_copy(g, n, 0), DUCTILE_ERR_FORMAT);
    CHECK(strncmp(dt_last_error(), "engine checksum mismatch: stored 0x", 35) == 0);
    CHECK(strstr(dt_last_error(), "(the file is corrupted)") != NULL);

    /* A buffer that is not 64-byte aligned. */
    unsigned char *buf = NULL;
    CHECK(posix_memalign((void **)&buf, 64, n + 8) == 0);
    memcpy(buf + 8, f, n);
    ductile_network *net;
    ductile_profile *p;
    int np;
    CHECK_EQ_INT(dt_engine_read(buf + 8, n, &net, &p, &np), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(dt_last_error(), "engine buffer must be 64-byte aligned");
    CHECK(net == NULL && p == NULL && np == 0);
    free(buf);

    /* A required section renamed to an unknown id: skipped, then reported missing. */
    memcpy(g, f, n);
    st32(g + 64 + 24 * 4, 99); /* the 5th entry: PROFILES */
    reseal(g, n);
    CHECK_EQ_INT(read_copy(g, n, 0), DUCTILE_ERR_FORMAT);
    CHECK_EQ_STR(dt_last_error(), "engine is missing its required section PROFILES");
    free(g);
}

/* Every single-byte change and every truncation is refused. */
static void test_flips_and_truncations(const unsigned char *f, size_t n)
{
    unsigned char *g = malloc(n);
    int bad_flip = 0, bad_trunc = 0;
    static const unsigned char masks[3] = {0x01, 0x80, 0xFF};
    for (size_t i = 0; i < n; i++)
        for (int m = 0; m < 3; m++) {
            memcpy(g, f, n);
            g[i] ^= masks[m];
            if (read_copy(g, n, 0) != DUCTILE_ERR_FORMAT) {
                if (bad_flip++ < 5) fprintf(stderr, "flip at %zu (^0x%02x) not refused\n", i, masks[m]);
            }
        }
    for (size_t len = 0; len < n; len++)
        if (read_copy(f, len, 0) != DUCTILE_ERR_FORMAT) {
            if (bad_trunc++ < 5) fprintf(stderr, "truncation to %zu not refused\n", len);
        }
    CHECK_EQ_INT(bad_flip, 0);
    CHECK_EQ_INT(bad_trunc, 0);
    free(g);
}

/* The parser's own checks (checksum skipped), with their messages. */
static void test_parser_validation(const unsigned char *f, size_t n)
{
    unsigned char *g = malloc(n);
    char want[300];
    size_t layers = section_off(f, DT_SECTION_LAYERS);
    size_t first_in = layers + 4 + 32; /* the first layer's input 0 */

    CHECK_EQ_INT(read_copy(f, n, DT_ENGINE_READ_NO_CHECKSUM), DUCTILE_OK);

    memcpy(g, f, n);
    st32(g + first_in, 99);
    CHECK_EQ_INT(read_copy(g, n, DT_ENGINE_READ_NO_CHECKSUM), DUCTILE_ERR_FORMAT);
    snprintf(want, sizeof want, "engine section LAYERS at byte offset %zu: tensor index 99 out of range (5 tensors)",
             first_in);
    CHECK_EQ_STR(dt_last_error(), want);
    /* With the checksum on, the same change is a checksum mismatch. */
    CHECK_EQ_INT(read_copy(g, n, 0), DUCTILE_ERR_FORMAT);
    CHECK(strstr(dt_last_error(), "checksum") != NULL);

    /* Input 0 of conv0 made "y", its own output: used before it is produced. */
    memcpy(g, f, n);
    st32(g + first_in, 3);
    CHECK_EQ_INT(read_copy(g, n, DT_ENGINE_READ_NO_CHECKSUM), DUCTILE_ERR_FORMAT);
    CHECK(strstr(dt_last_error(), "layer 'conv0' (Conv) input 0: tensor 'y' is not") != NULL);

    /* conv0's output 0 made absent (-1, which only an optional input may be): the runtime
     * reads every output's tensor (a fuzzed engine reached a NULL one, session 44). */
    size_t first_out = first_in + 4 * (size_t)ld32(f + layers + 4 + 16);
    memcpy(g, f, n);
    st32(g + first_out, 0xFFFFFFFFu);
    CHECK_EQ_INT(read_copy(g, n, DT_ENGINE_READ_NO_CHECKSUM), DUCTILE_ERR_FORMAT);
    snprintf(want, sizeof want,
             "engine section LAYERS at byte offset %zu: layer 'conv0' (Conv) output 0: no tensor (index -1); every "
             "output needs one", first_out);
    CHECK_EQ_STR(dt_last_error(), want);

    /* A tensor's dtype made invalid: complex64 (14), which ductile lacks. */
    size_t tensors = section_off(f, DT_SECTION_TENSORS);
    memcpy(g, f, n);
    st32(g + tensors + 4 + 128 + 4, 14); /* tensor 1 ("w") */
    CHECK_EQ_INT(read_copy(g, n, DT_ENGINE_READ_NO_CHECKSUM), DUCTILE_ERR_FORMAT);
    snprintf(want, sizeof want, "engine section TENSORS at byte offset %zu: tensor 'w': dtype 14 is not a supported type",
             tensors + 4 + 128 + 4);
    CHECK_EQ_STR(dt_last_error(), want);
    /* STRING needs the header's strings flag (format.h), and then a string blob: w's 4-byte
     * floats do not read as u64 lengths followed by bytes. */
    memcpy(g, f, n);
    st32(g + tensors + 4 + 128 + 4, 8);
    CHECK_EQ_INT(read_copy(g, n, DT_ENGINE_READ_NO_CHECKSUM), DUCTILE_ERR_FORMAT);
    snprintf(want, sizeof want, "engine section TENSORS at byte offset %zu: tensor 'w': dtype string without the "
             "header's flag 0x1 (strings)", tensors + 4 + 128 + 4);
    CHECK_EQ_STR(dt_last_error(), want);
    st32(g + DT_ENGINE_OFF_FLAGS, DT_ENGINE_FLAG_STRINGS);
    CHECK_EQ_INT(read_copy(g, n, DT_ENGINE_READ_NO_CHECKSUM), DUCTILE_ERR_FORMAT);
    uint64_t w_blob;
    memcpy(&w_blob, g + tensors + 4 + 128 + 112, 8);
    snprintf(want, sizeof want, "engine section BLOBS at byte offset %zu: tensor 'w': 6 string lengths do not fit "
             "in the blob's 24 bytes", section_off(f, DT_SECTION_BLOBS) + (size_t)w_blob);
    CHECK_EQ_STR(dt_last_error(), want);

    /* A rank above 8. */
    memcpy(g, f, n);
    st32(g + tensors + 4 + 8, 9);
    CHECK_EQ_INT(read_copy(g, n, DT_ENGINE_READ_NO_CHECKSUM), DUCTILE_ERR_FORMAT);
    CHECK(strstr(dt_last_error(), "rank 9 is not in -1..8") != NULL);

    /* A string without its NUL. */
    size_t strings = section_off(f, DT_SECTION_STRINGS);
    memcpy(g, f, n);
    g[strings + 4 + 4 + ld32(f + strings + 4)] = 'q';
    CHECK_EQ_INT(read_copy(g, n, DT_ENGINE_READ_NO_CHECKSUM), DUCTILE_ERR_FORMAT);
    CHECK(strstr(dt_last_error(), "is not NUL-terminated") != NULL);

    /* Blob size that disagrees with the shape. */
    memcpy(g, f, n);
    st64(g + tensors + 4 + 128 + 120, 20);
    CHECK_EQ_INT(read_copy(g, n, DT_ENGINE_READ_NO_CHECKSUM), DUCTILE_ERR_FORMAT);
    CHECK(strstr(dt_last_error(), "blob size 20 is not 6 elements of float32") != NULL);
    free(g);
}

/* An unknown section (a later version's) is skipped: the table grows by one entry and every
 * section moves 64 bytes on, so BLOBS stays 64-byte aligned. */
static void test_unknown_section_skipped(const unsigned char *f, size_t n, const ductile_network *net)
{
    size_t n2 = n + 64;
    unsigned char *g = calloc(1, n2);
    memcpy(g, f, 64);
    uint32_t nsec = ld32(f + 16);
    memcpy(g + 64, f + 64, 24 * (size_t)nsec);
    for (uint32_t i = 0; i < nsec; i++) st64(g + 64 + 24 * i + 8, ld64(f + 64 + 24 * i + 8) + 64);
    unsigned char *e = g + 64 + 24 * nsec;
    st32(e, 1000);
    st64(e + 8, 64 + 24 * (nsec + 1));
    st64(e + 16, 8);
    memset(g + 64 + 24 * (nsec + 1), 0xAB, 8);
    size_t data0 = 64 + 24 * (size_t)nsec;
    memcpy(g + data0 + 64, f + data0, n - data0);
    st32(g + 16, nsec + 1);
    st64(g + 24, n2);
    reseal(g, n2);
    void *buf = NULL;
    CHECK(posix_memalign(&buf, 64, n2) == 0);
    memcpy(buf, g, n2);
    ductile_network *back;
    ductile_profile *p;
    int np;
    ductile_status s = dt_engine_read(buf, n2, &back, &p, &np);
    CHECK_EQ_INT(s, DUCTILE_OK);
    if (!s) {
        check_net_eq(net, back);
        free_read(back, p, np);
    } else {
        fprintf(stderr, "unknown section: %s\n", dt_last_error());
    }
    free(buf);
    free(g);
}

/* Random mutations with the checksum off: the parser refuses or accepts, never crashes. */
static void test_random_mutations(const unsigned char *f, size_t n)
{
    unsigned char *g = malloc(n);
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    int accepted = 0;
    for (int it = 0; it < 4000; it++) {
        memcpy(g, f, n);
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        int k = 1 + (int)((rng >> 33) % 8);
        for (int j = 0; j < k; j++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t pos = (size_t)((rng >> 20) % n);
            /* Mostly past the header, where the parser's own checks are the only guard. */
            if ((rng >> 60) < 12 && n > 64) pos = 64 + pos % (n - 64);
            unsigned char v = (unsigned char)(rng >> 52);
            g[pos] = (rng >> 62) == 0 ? 0xFF : (rng >> 62) == 1 ? 0 : v;
        }
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        size_t len = (rng >> 59) == 0 ? (size_t)((rng >> 16) % n) : n;
        ductile_status s = read_copy(g, len, DT_ENGINE_READ_NO_CHECKSUM);
        CHECK(s == DUCTILE_OK || s == DUCTILE_ERR_FORMAT);
        accepted += s == DUCTILE_OK;
    }
    fprintf(stderr, "random mutations: %d of 4000 parsed (checksum off)\n", accepted);
    free(g);
}

static void test_writer_refuses(void)
{
    ductile_profile prof[2];
    ductile_network *net = make_net(prof);
    void *out;
    size_t n;
    /* conv0 reading z, which only reshape0 (after it) produces. */
    net->layers[0]->in[0] = net->tensors[4];
    CHECK_EQ_INT(dt_engine_write(net, prof, 2, &out, &n), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK(strstr(dt_last_error(), "layer 'conv0' (Conv): input 0 is not produced") != NULL);
    CHECK(out == NULL);
    net->layers[0]->in[0] = net->tensors[0];
    net->tensors[1]->nbytes = 20;
    CHECK_EQ_INT(dt_engine_write(net, prof, 2, &out, &n), DUCTILE_ERR_INVALID_ARGUMENT);
    net->tensors[1]->nbytes = sizeof w_data;
    CHECK_EQ_INT(dt_engine_write(net, prof, 2, &out, &n), DUCTILE_OK);
    dt_free(out);
    dt_profile_clear(&prof[0]);
    dt_profile_clear(&prof[1]);
    dt_network_delete(net);
}

/* An engine written before tactics per shape point (the fuzz corpus's conv_pool: one `tactic`
 * id per profile, no tactic_points) loads as it is, and its one id serves every point: the
 * layer info shows it at min, opt and max, and contexts run at min and max. */
static void test_engine_before_tactic_points(void)
{
    ductile_engine *e = NULL;
    CHECK_EQ_INT(ductile_engine_load_file("fuzz/corpus/engine/conv_pool.engine", &e), DUCTILE_OK);
    if (!e) return;
    CHECK(strstr(ductile_engine_layer_info(e), "\"Tactics\": [{ \"min\": 2, \"opt\": 2, \"max\": 2 }]") != NULL);
    static const ductile_dims shapes[2] = {{4, {2, 2, 2, 2}}, {4, {4, 2, 4, 4}}};
    float x[128];
    for (int i = 0; i < 128; i++) x[i] = (float)(i % 7) - 3.0f;
    for (int k = 0; k < 2; k++) {
        ductile_context *c = NULL;
        CHECK_EQ_INT(ductile_context_create(e, &c), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_input_shape(c, "x", &shapes[k]), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_tensor_address(c, "x", x), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_execute(c), DUCTILE_OK);
        ductile_context_free(c);
    }
    ductile_engine_free(e);
}

int main(void)
{
    test_engine_before_tactic_points();
    test_checksum();
    ductile_profile prof[2];
    ductile_network *net = make_net(prof);
    CHECK(net != NULL);
    if (!net) TEST_MAIN_END();
    void *a, *b;
    size_t na, nb;
    CHECK_EQ_INT(dt_engine_write(net, prof, 2, &a, &na), DUCTILE_OK);
    CHECK_EQ_INT(dt_engine_write(net, prof, 2, &b, &nb), DUCTILE_OK);
    CHECK(na == nb && memcmp(a, b, na) == 0);
    CHECK((uintptr_t)a % 64 == 0);
    dt_free(b);
    fprintf(stderr, "engine of the test network: %zu bytes\n", na);

    test_roundtrip(a, na, net, prof);
    test_header_errors(a, na);
    test_parser_validation(a, na);
    test_unknown_section_skipped(a, na, net);
    test_flips_and_truncations(a, na);
    test_random_mutations(a, na);
    test_writer_refuses();

    dt_free(a);
    dt_profile_clear(&prof[0]);
    dt_profile_clear(&prof[1]);
    dt_network_delete(net);
    TEST_MAIN_END();
}
