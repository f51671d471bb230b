/* bfloat16 rounding as the kernels round (dt_bf16_round: to nearest even), back in a float:
 * what the bfloat16 kernel tests build their rounded references from. */
#ifndef DT_TEST_BF16_TESTUTIL_H
#define DT_TEST_BF16_TESTUTIL_H

#include "backend/cpu/gemm.h"

#include <stdint.h>
#include <string.h>

static inline float round_bf16(float f)
{
    uint32_t u = (uint32_t)dt_bf16_round(f) << 16;
    float r;
    memcpy(&r, &u, sizeof r);
    return r;
}

#endif
