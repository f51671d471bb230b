/* MT19937 (Matsumoto and Nishimura), seeded and read as numpy's legacy RandomState. */
#include "backend/cpu/random.h"

#include <stdatomic.h>
#include <time.h>

void dt_mt_seed(dt_mt19937 *m, uint32_t seed)
{
    m->mt[0] = seed;
    for (int i = 1; i < 624; i++) m->mt[i] = 1812433253u * (m->mt[i - 1] ^ (m->mt[i - 1] >> 30)) + (uint32_t)i;
    m->pos = 624;
}

static uint32_t dt_mt_next(dt_mt19937 *m)
{
    if (m->pos >= 624) {
        for (int i = 0; i < 624; i++) {
            uint32_t y = (m->mt[i] & 0x80000000u) | (m->mt[(i + 1) % 624] & 0x7fffffffu);
            m->mt[i] = m->mt[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        m->pos = 0;
    }
    uint32_t y = m->mt[m->pos++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

double dt_mt_double(dt_mt19937 *m)
{
    uint32_t a = dt_mt_next(m) >> 5, b = dt_mt_next(m) >> 6;
    return ((double)a * 67108864.0 + (double)b) / 9007199254740992.0;
}

uint32_t dt_random_seed(void)
{
    static _Atomic uint32_t counter;
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    uint32_t c = atomic_fetch_add(&counter, 1u);
    return (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec * 2654435761u ^ c * 0x9e3779b9u;
}
