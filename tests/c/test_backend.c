/* The backend door: the device a config asks for, the TARGET section an engine records, and
 * the messages when the backend or its GPU is missing. Runs in every build: CUDA=0, CUDA=1
 * without a GPU (CI, this project's build machines) and with one. */
#include "testutil.h"

#include "ductile.h"
#include "backend/backend.h"
#include "core/alloc.h"
#include "format/checksum.h"
#include "format/format.h"
#include "builder/engine_write.h"
#include "runtime/engine_read.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint32_t ld32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t ld64(const unsigned char *p) { return ld32(p) | (uint64_t)ld32(p + 4) << 32; }
static void st32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> 8 * i);
}

/* Whether this build has the CUDA backend and this machine a GPU for it. */
static int have_cuda_build(void) { return dt_backend_find("cuda") != NULL; }
static int have_gpu(void)
{
    const dt_backend *be = dt_backend_find("cuda");
    dt_device_info info;
    return be && be->device(&info) == DUCTILE_OK;
}

/* x [2, 3] float32 -> Relu -> y, as serialized engine bytes built for the CPU. */
static unsigned char *tiny_engine(size_t *n)
{
    ductile_builder *b = NULL;
    ductile_network *net = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *e = NULL;
    ductile_tensor *x = NULL;
    ductile_layer *l = NULL;
    ductile_dims d = {.nb_dims = 2, .d = {2, 3}};
    void *bytes = NULL, *aligned = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_create(b, &net), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_input(net, "x", DUCTILE_FLOAT32, &d, NULL, &x), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_activation(net, x, DUCTILE_ACTIVATION_RELU, &l), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_mark_output(net, ductile_layer_get_output(l, 0)), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_create(b, &cfg), DUCTILE_OK);
    CHECK_EQ_INT(ductile_builder_build(b, net, cfg, &e), DUCTILE_OK);
    CHECK_EQ_STR(ductile_engine_device(e), "cpu");
    CHECK_EQ_INT(ductile_engine_serialize(e, &bytes, n), DUCTILE_OK);
    /* The reader wants 64-byte alignment; malloc promises 16. */
    CHECK_EQ_INT(posix_memalign(&aligned, 64, *n), 0);
    memcpy(aligned, bytes, *n);
    ductile_free(bytes);
    ductile_engine_free(e);
    ductile_config_free(cfg);
    ductile_network_free(net);
    ductile_builder_free(b);
    return aligned;
}

/* The TARGET section's offset in engine bytes (0 if absent). */
static size_t target_offset(const unsigned char *f)
{
    uint32_t hsize = ld32(f + DT_ENGINE_OFF_HEADER_SIZE), nsec = ld32(f + DT_ENGINE_OFF_SECTION_COUNT);
    for (uint32_t i = 0; i < nsec; i++) {
        const unsigned char *e = f + hsize + (size_t)i * DT_ENGINE_SECTION_ENTRY;
        if (ld32(e) == DT_SECTION_TARGET) return (size_t)ld64(e + 8);
    }
    return 0;
}

static void fix_checksum(unsigned char *f, size_t n)
{
    uint32_t crc = dt_crc32c(0, f, DT_ENGINE_OFF_CHECKSUM);
    crc = dt_crc32c(crc, f + DT_ENGINE_OFF_CHECKSUM + 4, n - DT_ENGINE_OFF_CHECKSUM - 4);
    st32(f + DT_ENGINE_OFF_CHECKSUM, crc);
}

/* Loads the engine with its TARGET rewritten; returns the status, engine freed. */
static ductile_status load_as(const unsigned char *f, size_t n, const char *backend, const char *device, uint32_t major,
                              uint32_t minor)
{
    unsigned char *g = malloc(n);
    memcpy(g, f, n);
    size_t t = target_offset(g);
    CHECK(t != 0);
    memset(g + t, 0, DT_ENGINE_TARGET_SIZE);
    memcpy(g + t, backend, strlen(backend));
    memcpy(g + t + 16, device, strlen(device));
    st32(g + t + 112, major);
    st32(g + t + 116, minor);
    fix_checksum(g, n);
    ductile_engine *e = NULL;
    ductile_status s = ductile_engine_load_memory(g, n, &e);
    ductile_engine_free(e);
    free(g);
    return s;
}

static void test_engine_records_backend(void)
{
    size_t n = 0;
    unsigned char *f = tiny_engine(&n);
    size_t t = target_offset(f);
    CHECK(t != 0);
    CHECK_EQ_STR((const char *)f + t, "cpu");
    CHECK_EQ_INT(ld32(f + DT_ENGINE_OFF_VERSION), 2);

    /* A backend this build lacks, or that is not a backend at all. */
    CHECK_EQ_INT(load_as(f, n, "tpu", "", 0, 0), DUCTILE_ERR_UNSUPPORTED);
    CHECK_EQ_STR(ductile_last_error(), have_cuda_build()
                     ? "engine was built for backend 'tpu', which this build of ductile lacks (it has: cpu, cuda)"
                     : "engine was built for backend 'tpu', which this build of ductile lacks (it has: cpu)");
    /* The CUDA backend: absent from the build, or no GPU here, or a GPU of another kind. */
    ductile_status s = load_as(f, n, "cuda", "NVIDIA Imaginary", 1, 0);
    if (!have_cuda_build()) {
        CHECK_EQ_INT(s, DUCTILE_ERR_UNSUPPORTED);
        CHECK_EQ_STR(ductile_last_error(), "engine was built for backend 'cuda', which this build of ductile lacks (built with CUDA=0)");
    } else if (!have_gpu()) {
        CHECK_EQ_INT(s, DUCTILE_ERR_UNSUPPORTED);
        CHECK_EQ_STR(ductile_last_error(), "no CUDA device found");
    } else {
        dt_device_info info;
        dt_backend_find("cuda")->device(&info);
        char want[300];
        snprintf(want, sizeof want,
                 "engine was built for NVIDIA Imaginary (compute capability 1.0); this GPU is %s (compute capability %d.%d): rebuild the engine on it",
                 info.name, info.cc_major, info.cc_minor);
        CHECK_EQ_INT(s, DUCTILE_ERR_UNSUPPORTED);
        CHECK_EQ_STR(ductile_last_error(), want);
        CHECK_EQ_INT(load_as(f, n, "cuda", info.name, (uint32_t)info.cc_major, (uint32_t)info.cc_minor), DUCTILE_OK);
    }
    /* The reader's own checks on the section. */
    CHECK_EQ_INT(load_as(f, n, "CPU", "", 0, 0), DUCTILE_ERR_FORMAT);
    char want[200];
    snprintf(want, sizeof want, "engine section TARGET at byte offset %zu: the backend name holds byte 0x43", t);
    CHECK_EQ_STR(ductile_last_error(), want);
    CHECK_EQ_INT(load_as(f, n, "", "", 0, 0), DUCTILE_ERR_FORMAT);
    snprintf(want, sizeof want, "engine section TARGET at byte offset %zu: the backend name is empty", t);
    CHECK_EQ_STR(ductile_last_error(), want);
    CHECK_EQ_INT(load_as(f, n, "cpu", "GPU\x01", 0, 0), DUCTILE_ERR_FORMAT);
    snprintf(want, sizeof want, "engine section TARGET at byte offset %zu: the device name holds byte 0x01", t + 19);
    CHECK_EQ_STR(ductile_last_error(), want);
    CHECK_EQ_INT(load_as(f, n, "cpu", "", 0, 0), DUCTILE_OK);
    free(f);
}

/* dt_engine_write_target -> dt_engine_read_target gives the target back. */
static void test_target_round_trip(void)
{
    size_t n = 0;
    unsigned char *f = tiny_engine(&n);
    ductile_network *net = NULL;
    ductile_profile *p = NULL;
    int np = 0;
    dt_engine_target t;
    CHECK_EQ_INT(dt_engine_read_target(f, n, 0, &net, &p, &np, &t), DUCTILE_OK);
    CHECK_EQ_STR(t.backend, "cpu");
    CHECK_EQ_STR(t.device, "");
    dt_engine_target gpu = {.backend = "cuda", .device = "NVIDIA H200", .cc_major = 9, .cc_minor = 0};
    void *again = NULL;
    size_t n2 = 0;
    CHECK_EQ_INT(dt_engine_write_target(net, p, np, &gpu, &again, &n2), DUCTILE_OK);
    ductile_network *net2 = NULL;
    ductile_profile *p2 = NULL;
    int np2 = 0;
    dt_engine_target back;
    memset(&back, 0x55, sizeof back);
    CHECK_EQ_INT(dt_engine_read_target(again, n2, 0, &net2, &p2, &np2, &back), DUCTILE_OK);
    CHECK_EQ_STR(back.backend, "cuda");
    CHECK_EQ_STR(back.device, "NVIDIA H200");
    CHECK_EQ_INT(back.cc_major, 9);
    CHECK_EQ_INT(back.cc_minor, 0);
    CHECK_EQ_INT(n2, n); /* the section has a fixed size */
    dt_network_delete(net);
    dt_network_delete(net2);
    for (int i = 0; i < np; i++) dt_profile_clear(&p[i]);
    for (int i = 0; i < np2; i++) dt_profile_clear(&p2[i]);
    dt_free(p);
    dt_free(p2);
    dt_free(again);
    free(f);
}

static void test_config_device(void)
{
    ductile_builder *b = NULL;
    ductile_network *net = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *e = NULL;
    ductile_tensor *x = NULL;
    ductile_layer *l = NULL;
    ductile_dims d = {.nb_dims = 1, .d = {4}};
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_create(b, &net), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_input(net, "x", DUCTILE_FLOAT32, &d, NULL, &x), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_activation(net, x, DUCTILE_ACTIVATION_SIGMOID, &l), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_mark_output(net, ductile_layer_get_output(l, 0)), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_create(b, &cfg), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_set_device(cfg, "tpu"), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(ductile_last_error(), "set_device: 'tpu' is not a device (expected cpu or cuda)");
    CHECK_EQ_INT(ductile_config_set_device(cfg, "cpu"), DUCTILE_OK);
    ductile_status s = ductile_config_set_device(cfg, "cuda");
    if (!have_cuda_build()) {
        CHECK_EQ_INT(s, DUCTILE_ERR_UNSUPPORTED);
        CHECK_EQ_STR(ductile_last_error(), "set_device: backend 'cuda', which this build of ductile lacks (built with CUDA=0)");
    } else {
        CHECK_EQ_INT(s, DUCTILE_OK);
        s = ductile_builder_build(b, net, cfg, &e);
        if (!have_gpu()) {
            CHECK_EQ_INT(s, DUCTILE_ERR_UNSUPPORTED);
            CHECK_EQ_STR(ductile_last_error(), "no CUDA device found");
            CHECK(e == NULL);
        } else {
            CHECK_EQ_INT(s, DUCTILE_OK);
            CHECK_EQ_STR(ductile_engine_device(e), "cuda");
        }
        ductile_engine_free(e);
    }
    ductile_config_free(cfg);
    ductile_network_free(net);
    ductile_builder_free(b);
}

int main(void)
{
    test_engine_records_backend();
    test_target_round_trip();
    test_config_device();
    TEST_MAIN_END();
}
