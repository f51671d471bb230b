/* Whether this machine has a CUDA device ductile can build for: the config accepts
 * device "cuda" and the backend finds its device. GPU tests skip with "no CUDA device
 * found" when not. */
#ifndef DT_TEST_CUDA_PROBE_H
#define DT_TEST_CUDA_PROBE_H

#include "ductile.h"
#include "backend/backend.h"

#include <stdbool.h>

static inline bool test_cuda_device_found(void)
{
    ductile_builder *b = NULL;
    ductile_config *cfg = NULL;
    ductile_builder_create(&b);
    ductile_config_create(b, &cfg);
    ductile_status s = ductile_config_set_device(cfg, "cuda");
    ductile_config_free(cfg);
    ductile_builder_free(b);
    const dt_backend *be = dt_backend_find("cuda");
    dt_device_info dev;
    return s == DUCTILE_OK && be && (!be->device || be->device(&dev) == DUCTILE_OK);
}

#endif
