/* libFuzzer harness: engine bytes with the header's file size and CRC-32C rewritten to match
 * the fuzzed bytes before loading, so mutations reach the section parser, the planner and
 * execution instead of stopping at the checksum (which refuses nearly every mutated file). */
#include "fuzz_common.h"
#include "format/checksum.h"
#include "format/format.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void fuzz_st32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *b = malloc(size ? size : 1);
    if (!b) return 0;
    if (size) memcpy(b, data, size);
    if (size >= DT_ENGINE_HEADER_SIZE) {
        for (int i = 0; i < 8; i++) b[DT_ENGINE_OFF_FILE_SIZE + i] = (uint8_t)((uint64_t)size >> (8 * i));
        uint32_t crc = dt_crc32c(0, b, DT_ENGINE_OFF_CHECKSUM);
        crc = dt_crc32c(crc, b + DT_ENGINE_OFF_CHECKSUM + 4, size - DT_ENGINE_OFF_CHECKSUM - 4);
        fuzz_st32(b + DT_ENGINE_OFF_CHECKSUM, crc);
    }
    ductile_engine *engine = NULL;
    if (ductile_engine_load_memory(b, size, &engine) == DUCTILE_OK) {
        fuzz_run_engine(engine);
        ductile_engine_free(engine);
    }
    free(b);
    return 0;
}
