#include "format/strings.h"
#include "core/status.h"

#include <inttypes.h>
#include <string.h>

bool dt_strings_blob_size(const ductile_string *v, int64_t count, uint64_t *size)
{
    uint64_t n;
    if (count < 0 || __builtin_mul_overflow((uint64_t)count, 8u, &n)) return false;
    for (int64_t i = 0; i < count; i++)
        if (__builtin_add_overflow(n, (uint64_t)v[i].length, &n)) return false;
    *size = n;
    return true;
}

ductile_status dt_strings_blob_read(const unsigned char *blob, uint64_t size, int64_t count,
                                    ductile_string *out, uint64_t *bad_at)
{
    uint64_t pos;
    if (count < 0 || __builtin_mul_overflow((uint64_t)count, 8u, &pos) || pos > size) {
        *bad_at = 0;
        return dt_fail(DUCTILE_ERR_FORMAT, "%" PRId64 " string lengths do not fit in the blob's %" PRIu64 " bytes",
                       count, size);
    }
    for (int64_t i = 0; i < count; i++) {
        uint64_t len;
        memcpy(&len, blob + (size_t)i * 8, 8); /* little-endian hosts only (format.h) */
        if (len > size - pos) {
            *bad_at = (uint64_t)i * 8;
            return dt_fail(DUCTILE_ERR_FORMAT, "element %" PRId64 "'s length %" PRIu64 " runs past the blob's %" PRIu64
                           " bytes", i, len, size);
        }
        out[i] = (ductile_string){len ? (const char *)blob + pos : NULL, (size_t)len};
        pos += len;
    }
    if (pos != size) {
        *bad_at = pos;
        return dt_fail(DUCTILE_ERR_FORMAT, "%" PRIu64 " bytes after the last string", size - pos);
    }
    return DUCTILE_OK;
}
