/* CRC-32C written by hand: two small paths (hardware instruction, table) are less than a
 * dependency, and the engine reader must not rely on anything it cannot vouch for. */
#include "format/checksum.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#define DT_CRC32C_POLY 0x82F63B78u /* reflected Castagnoli polynomial */

static uint32_t dt_crc_table[8][256];
static pthread_once_t dt_crc_once = PTHREAD_ONCE_INIT;

static void dt_crc_init_tables(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (DT_CRC32C_POLY & (0u - (c & 1u)));
        dt_crc_table[0][i] = c;
    }
    /* Table k advances a byte through k more zero bytes: the basis of slice-by-8. */
    for (int k = 1; k < 8; k++)
        for (int i = 0; i < 256; i++) {
            uint32_t c = dt_crc_table[k - 1][i];
            dt_crc_table[k][i] = (c >> 8) ^ dt_crc_table[0][c & 0xFF];
        }
}

static uint32_t dt_crc_tables(uint32_t c, const unsigned char *p, size_t n)
{
    pthread_once(&dt_crc_once, dt_crc_init_tables);
    while (n >= 8) {
        /* Little-endian load regardless of the host's byte order. */
        uint32_t lo = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                      (uint32_t)p[3] << 24;
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
                      (uint32_t)p[7] << 24;
        lo ^= c;
        c = dt_crc_table[7][lo & 0xFF] ^ dt_crc_table[6][(lo >> 8) & 0xFF] ^
            dt_crc_table[5][(lo >> 16) & 0xFF] ^ dt_crc_table[4][lo >> 24] ^
            dt_crc_table[3][hi & 0xFF] ^ dt_crc_table[2][(hi >> 8) & 0xFF] ^
            dt_crc_table[1][(hi >> 16) & 0xFF] ^ dt_crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) c = (c >> 8) ^ dt_crc_table[0][(c ^ *p++) & 0xFF];
    return c;
}

uint32_t dt_crc32c_portable(uint32_t crc, const void *data, size_t n)
{
    return ~dt_crc_tables(~crc, data, n);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) static uint32_t dt_crc_hw(uint32_t c, const unsigned char *p,
                                                           size_t n)
{
    uint64_t c64 = c;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = _mm_crc32_u64(c64, v);
        p += 8;
        n -= 8;
    }
    c = (uint32_t)c64;
    while (n--) c = _mm_crc32_u8(c, *p++);
    return c;
}

static bool dt_have_sse42(void)
{
    /* Read once per call: cheap (a cached cpuid result) and free of static state. */
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}

uint32_t dt_crc32c(uint32_t crc, const void *data, size_t n)
{
    if (n == 0) return crc;
    if (dt_have_sse42()) return ~dt_crc_hw(~crc, data, n);
    return ~dt_crc_tables(~crc, data, n);
}
#else
uint32_t dt_crc32c(uint32_t crc, const void *data, size_t n)
{
    if (n == 0) return crc;
    return ~dt_crc_tables(~crc, data, n);
}
#endif
