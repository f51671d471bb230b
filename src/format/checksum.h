/* CRC-32C (Castagnoli), the checksum of engine files.
 *
 * CRC-32C rather than a 64-bit hash: it is guaranteed to detect every error burst of up to 32
 * bits (so every single-byte flip), and x86 computes it in hardware (SSE4.2 crc32), about
 * 2 ms for a 15 MB engine. Machines without SSE4.2 use a slice-by-8 table. */
#ifndef DT_CHECKSUM_H
#define DT_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC-32C over n more bytes: crc is 0 to start, or the result for the bytes
 * before, so dt_crc32c(dt_crc32c(0, a, na), b, nb) is the CRC of a followed by b.
 * Thread-safe. data may be NULL when n is 0. */
uint32_t dt_crc32c(uint32_t crc, const void *data, size_t n);

/* The same with the table path forced (for tests comparing the two paths). */
uint32_t dt_crc32c_portable(uint32_t crc, const void *data, size_t n);

#endif
