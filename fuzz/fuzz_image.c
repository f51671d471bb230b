/* libFuzzer harness: ImageDecoder's codecs (src/ops/image*.c) on any bytes: sniff, probe and,
 * when the image is small, decode into a buffer of exactly the size the codec asks for (so
 * ASan sees a write past it). A refusal must carry a message; crashing, leaking (a longjmp out
 * of a library that skips its cleanup) or reading out of bounds is the bug. */
#include "core/status.h"
#include "ops/image.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const dt_image_codec *c;
    int64_t h, w;
    size_t bytes;
    if (dt_image_probe(data, size, &c, &h, &w)) {
        if (!dt_last_error()[0]) abort();
        return 0;
    }
    if (!dt_image_work_bytes(h, w, &bytes)) abort(); /* probe checked the size */
    if (bytes > ((size_t)1 << 24)) return 0;
    uint8_t *buf = malloc(bytes);
    if (!buf) return 0;
    if (c->decode(data, size, h, w, buf) && !dt_last_error()[0]) abort();
    free(buf);
    return 0;
}
