/* The blob of a STRING constant in an engine file (format.h, BLOBS): per element its length as
 * a u64, then every element's bytes in order, no separators (a string may hold NUL bytes). In
 * memory a string tensor is an array of ductile_string views; the reader points them into the
 * blob, so string constants are not copied either. */
#ifndef DT_FORMAT_STRINGS_H
#define DT_FORMAT_STRINGS_H

#include "ductile.h"

#include <stdbool.h>
#include <stdint.h>

/* The blob size of count views; false when it overflows. */
bool dt_strings_blob_size(const ductile_string *v, int64_t count, uint64_t *size);
/* Views into a blob of `size` bytes holding count strings: out[count]. DUCTILE_OK, or
 * DUCTILE_ERR_FORMAT with *bad_at set to the blob-relative offset of the fault and a message
 * ("element 3's length 99 runs past the blob's 40 bytes") the caller prefixes. */
ductile_status dt_strings_blob_read(const unsigned char *blob, uint64_t size, int64_t count,
                                    ductile_string *out, uint64_t *bad_at);

#endif
