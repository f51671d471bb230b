/* libFuzzer harness: ONNX bytes through the importer; when they parse, an engine is built
 * with one profile made of the declared input shapes (dynamic dims 1..4), run once at its
 * min shapes, and everything is freed. */
#include "fuzz_common.h"

#include <stddef.h>
#include <stdint.h>

/* Fixed input dims above this make the harness skip building: runs stay small. */
#define FUZZ_MAX_FIXED_DIM 4096

static int fuzz_make_profile(ductile_network *net, ductile_profile *profile)
{
    int32_t n = ductile_network_num_inputs(net);
    for (int32_t i = 0; i < n; i++) {
        ductile_tensor *t = ductile_network_get_input(net, i);
        ductile_dims min = ductile_tensor_dims(t), opt, max;
        if (min.nb_dims < 0 || min.nb_dims > DUCTILE_MAX_DIMS) return -1;
        if (min.nb_dims == 0) continue;
        opt = max = min;
        for (int32_t k = 0; k < min.nb_dims; k++) {
            if (min.d[k] < 0) {
                min.d[k] = 1;
                opt.d[k] = 2;
                max.d[k] = 4;
            } else if (min.d[k] > FUZZ_MAX_FIXED_DIM) {
                return -1;
            }
        }
        if (fuzz_volume(&max) < 0) return -1;
        if (ductile_profile_set_shape(profile, ductile_tensor_name(t), &min, &opt, &max) != DUCTILE_OK)
            return -1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ductile_builder *builder = NULL;
    ductile_network *net = NULL;
    ductile_profile *profile = NULL;
    ductile_config *config = NULL;
    ductile_engine *engine = NULL;
    if (ductile_builder_create(&builder) != DUCTILE_OK) return 0;
    if (ductile_network_create(builder, &net) != DUCTILE_OK) goto done;
    if (ductile_onnx_parse_memory(net, data, size) != DUCTILE_OK) goto done;
    if (ductile_profile_create(builder, &profile) != DUCTILE_OK ||
        ductile_config_create(builder, &config) != DUCTILE_OK)
        goto done;
    if (fuzz_make_profile(net, profile) != 0) goto done;
    if (ductile_config_add_profile(config, profile, NULL) != DUCTILE_OK) goto done;
    if (ductile_builder_build(builder, net, config, &engine) != DUCTILE_OK) goto done;
    fuzz_run_engine(engine);
done:
    ductile_engine_free(engine);
    ductile_config_free(config);
    ductile_profile_free(profile);
    ductile_network_free(net);
    ductile_builder_free(builder);
    return 0;
}
