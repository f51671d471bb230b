/* A seeded random generator for the CPU kernels that draw random numbers (training-mode
 * Dropout): MT19937 seeded and read exactly as numpy's RandomState(seed).random_sample, which
 * ONNX's reference and its node tests use, so a seeded op's output is reproducible and equal
 * to the reference's. */
#ifndef DT_CPU_RANDOM_H
#define DT_CPU_RANDOM_H

#include <stdint.h>

typedef struct dt_mt19937 {
    uint32_t mt[624];
    int pos;
} dt_mt19937;

/* numpy's RandomState(seed) for a seed in [0, 2^32). */
void dt_mt_seed(dt_mt19937 *m, uint32_t seed);
/* numpy's random_sample(): a double in [0, 1) from two 32-bit draws (53 bits). */
double dt_mt_double(dt_mt19937 *m);
/* A seed for ops without a seed attribute: differs between calls (a counter mixed with the
 * clock), so their outputs are random as ONNX specifies. */
uint32_t dt_random_seed(void);

#endif
