/* The whole workflow on an image model with one input (N, 3, H, W), such as seg_lraspp.onnx:
 * parse, put a sigmoid on the first output, build one profile, save and load the engine, run
 * it at a size inside the profile.
 *   cc workflow.c -Iinclude build/libductile.a $(make -s link-flags) -o workflow
 *   ./workflow seg_lraspp.onnx input_1 seg.engine */
#include <stdio.h>
#include <stdlib.h>

#include "ductile.h"

/* Every call returns a status; on failure ductile_last_error() says what is wrong. */
#define CHECK(call)                                                                    \
    do {                                                                               \
        ductile_status s_ = (call);                                                    \
        if (s_ != DUCTILE_OK) {                                                        \
            fprintf(stderr, "%s: %s\n", ductile_status_name(s_), ductile_last_error()); \
            goto done;                                                                 \
        }                                                                              \
    } while (0)

static size_t volume(const ductile_dims *d)
{
    size_t n = 1;
    for (int i = 0; i < d->nb_dims; i++)
        n *= (size_t)d->d[i];
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s model.onnx input_name engine_file\n", argv[0]);
        return 2;
    }
    const char *model = argv[1], *input = argv[2], *engine_file = argv[3];
    int rc = 1;
    ductile_builder *b = NULL;
    ductile_network *net = NULL;
    ductile_profile *p = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *e = NULL;
    ductile_context *ctx = NULL;
    float *image = NULL, *result = NULL;

    CHECK(ductile_builder_create(&b));
    CHECK(ductile_network_create(b, &net));
    CHECK(ductile_onnx_parse_file(net, model));

    /* edit: logits -> sigmoid */
    ductile_tensor *logits = ductile_network_get_output(net, 0);
    ductile_layer *sig;
    CHECK(ductile_network_unmark_output(net, logits));
    CHECK(ductile_network_add_activation(net, logits, DUCTILE_ACTIVATION_SIGMOID, &sig));
    CHECK(ductile_network_mark_output(net, ductile_layer_get_output(sig, 0)));

    /* one profile: height and width from 512 to 1600 */
    ductile_dims mn = {4, {1, 3, 512, 512}}, op = {4, {1, 3, 1024, 1024}},
                 mx = {4, {1, 3, 1600, 1600}};
    CHECK(ductile_profile_create(b, &p));
    CHECK(ductile_profile_set_shape(p, input, &mn, &op, &mx));
    CHECK(ductile_config_create(b, &cfg));
    CHECK(ductile_config_add_profile(cfg, p, NULL));

    CHECK(ductile_builder_build(b, net, cfg, &e));
    CHECK(ductile_engine_save(e, engine_file));
    ductile_engine_free(e);
    e = NULL;
    CHECK(ductile_engine_load_file(engine_file, &e));

    /* run at 777x555; I/O tensors are inputs first, then outputs */
    const char *output = ductile_engine_io_tensor_name(e, 1);
    ductile_dims shape = {4, {1, 3, 777, 555}}, out_shape;
    CHECK(ductile_context_create(e, &ctx));
    CHECK(ductile_context_set_profile(ctx, 0));
    CHECK(ductile_context_set_input_shape(ctx, input, &shape));
    CHECK(ductile_context_get_tensor_shape(ctx, output, &out_shape));

    size_t in_count = volume(&shape), out_count = volume(&out_shape);
    image = malloc(in_count * sizeof *image);
    result = malloc(out_count * sizeof *result);
    if (!image || !result) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }
    for (size_t i = 0; i < in_count; i++)
        image[i] = 0.5f;
    CHECK(ductile_context_set_tensor_address(ctx, input, image));
    CHECK(ductile_context_set_tensor_address(ctx, output, result));
    CHECK(ductile_context_execute(ctx));

    double sum = 0;
    for (size_t i = 0; i < out_count; i++)
        sum += result[i];
    printf("%s:", output);
    for (int i = 0; i < out_shape.nb_dims; i++)
        printf("%s%lld", i ? "x" : " ", (long long)out_shape.d[i]);
    printf(", mean %.6f\n", sum / (double)out_count);
    rc = 0;
done:
    free(image);
    free(result);
    ductile_context_free(ctx);
    ductile_engine_free(e);
    ductile_config_free(cfg);
    ductile_profile_free(p);
    ductile_network_free(net);
    ductile_builder_free(b);
    return rc;
}
