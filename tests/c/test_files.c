/* Paths that are not what the call expects get a message that says what they are: a
 * directory, a FIFO (never a hang), a device, an empty file, a missing file or folder; for
 * loading an engine, parsing a model and saving an engine. A good engine still saves and
 * loads back the same bytes. */
#include "ductile.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

static const char *in_dir(const char *name)
{
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

static char expected[1024];

static const char *msg(const char *fmt, const char *path)
{
    snprintf(expected, sizeof expected, fmt, path);
    return expected;
}

/* out = relu(x), x [1, 4]: fixed, so no profile is needed. */
static ductile_engine *tiny_engine(ductile_builder *b)
{
    ductile_network *n = NULL;
    ductile_tensor *x = NULL;
    ductile_layer *relu = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *e = NULL;
    ductile_dims dims = {2, {1, 4}};
    CHECK_EQ_INT(ductile_network_create(b, &n), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_input(n, "x", DUCTILE_FLOAT32, &dims, NULL, &x), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_add_activation(n, x, DUCTILE_ACTIVATION_RELU, &relu), DUCTILE_OK);
    if (relu) CHECK_EQ_INT(ductile_network_mark_output(n, ductile_layer_get_output(relu, 0)), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_create(b, &cfg), DUCTILE_OK);
    CHECK_EQ_INT(ductile_builder_build(b, n, cfg, &e), DUCTILE_OK);
    ductile_config_free(cfg);
    ductile_network_free(n);
    return e;
}

static void test_engine_load_names_what_the_path_is(void)
{
    ductile_engine *e = NULL;
    CHECK_EQ_INT(ductile_engine_load_file(dir, &e), DUCTILE_ERR_IO);
    CHECK_EQ_STR(ductile_last_error(), msg("'%s' is a directory, not a regular file", dir));
    CHECK_EQ_INT(ductile_engine_load_file(in_dir("fifo"), &e), DUCTILE_ERR_IO);
    CHECK_EQ_STR(ductile_last_error(), msg("'%s' is a FIFO, not a regular file", in_dir("fifo")));
    CHECK_EQ_INT(ductile_engine_load_file("/dev/null", &e), DUCTILE_ERR_IO);
    CHECK_EQ_STR(ductile_last_error(), "'/dev/null' is a character device, not a regular file");
    CHECK_EQ_INT(ductile_engine_load_file(in_dir("empty"), &e), DUCTILE_ERR_FORMAT);
    CHECK_EQ_STR(ductile_last_error(), msg("'%s' is empty (0 bytes), not an engine file", in_dir("empty")));
    CHECK_EQ_INT(ductile_engine_load_file(in_dir("absent.engine"), &e), DUCTILE_ERR_IO);
    CHECK_EQ_STR(ductile_last_error(), msg("cannot open '%s': No such file or directory", in_dir("absent.engine")));
    CHECK(e == NULL);
}

static void test_onnx_parse_names_what_the_path_is(ductile_builder *b)
{
    ductile_network *n = NULL;
    CHECK_EQ_INT(ductile_network_create(b, &n), DUCTILE_OK);
    CHECK_EQ_INT(ductile_onnx_parse_file(n, dir), DUCTILE_ERR_IO);
    CHECK_EQ_STR(ductile_last_error(), msg("'%s' is a directory, not a regular file", dir));
    CHECK_EQ_INT(ductile_onnx_parse_file(n, in_dir("fifo")), DUCTILE_ERR_IO);
    CHECK_EQ_STR(ductile_last_error(), msg("'%s' is a FIFO, not a regular file", in_dir("fifo")));
    CHECK_EQ_INT(ductile_onnx_parse_file(n, in_dir("empty")), DUCTILE_ERR_PARSE);
    CHECK_EQ_STR(ductile_last_error(), msg("'%s' is empty (0 bytes), not an ONNX model", in_dir("empty")));
    CHECK_EQ_INT(ductile_network_num_layers(n), 0);
    ductile_network_free(n);
}

static void test_engine_save_names_what_the_path_is(ductile_engine *e)
{
    CHECK_EQ_INT(ductile_engine_save(e, dir), DUCTILE_ERR_IO);
    CHECK_EQ_STR(ductile_last_error(), msg("'%s' is a directory, not a regular file", dir));
    CHECK_EQ_INT(ductile_engine_save(e, in_dir("fifo")), DUCTILE_ERR_IO);
    CHECK_EQ_STR(ductile_last_error(), msg("'%s' is a FIFO, not a regular file", in_dir("fifo")));
    const char *missing = in_dir("no/such/folder/m.engine");
    char want[1024];
    snprintf(want, sizeof want, "cannot create '%s': No such file or directory", missing);
    CHECK_EQ_INT(ductile_engine_save(e, missing), DUCTILE_ERR_IO);
    CHECK_EQ_STR(ductile_last_error(), want);

    /* A regular file: the same bytes come back. */
    const char *path = in_dir("m.engine");
    CHECK_EQ_INT(ductile_engine_save(e, path), DUCTILE_OK);
    ductile_engine *back = NULL;
    CHECK_EQ_INT(ductile_engine_load_file(path, &back), DUCTILE_OK);
    void *a = NULL, *bb = NULL;
    size_t na = 0, nb = 0;
    if (back) {
        CHECK_EQ_INT(ductile_engine_serialize(e, &a, &na), DUCTILE_OK);
        CHECK_EQ_INT(ductile_engine_serialize(back, &bb, &nb), DUCTILE_OK);
        CHECK(na == nb && a && bb && memcmp(a, bb, na) == 0);
    }
    ductile_free(a);
    ductile_free(bb);
    ductile_engine_free(back);
    unlink(path);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/ductile_test_files_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    CHECK_EQ_INT(mkfifo(in_dir("fifo"), 0600), 0);
    FILE *f = fopen(in_dir("empty"), "wb");
    CHECK(f != NULL);
    if (f) fclose(f);

    ductile_builder *b = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    test_engine_load_names_what_the_path_is();
    test_onnx_parse_names_what_the_path_is(b);
    ductile_engine *e = tiny_engine(b);
    if (e) test_engine_save_names_what_the_path_is(e);
    ductile_engine_free(e);
    ductile_builder_free(b);

    unlink(in_dir("fifo"));
    unlink(in_dir("empty"));
    rmdir(dir);
    TEST_MAIN_END();
}
