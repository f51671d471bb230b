/* libFuzzer harness: engine bytes through the public loader (checksum included), then one
 * execution at the min shapes of profile 0 when they load. */
#include "fuzz_common.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ductile_engine *engine = NULL;
    if (ductile_engine_load_memory(data, size, &engine) != DUCTILE_OK) return 0;
    fuzz_run_engine(engine);
    ductile_engine_free(engine);
    return 0;
}
