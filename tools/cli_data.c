/* cli_data — input data generation and loading (see cli_data.h). */
#include "cli_data.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_util.h"

/* splitmix64: tiny, well-distributed, and identical on every platform. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t seed_of(const char *name)
{
    uint64_t h = 0xCBF29CE484222325ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001B3ull;
    return h;
}

/* 24 random bits scaled to [-1, 1): exactly representable in float32. */
static float uniform(uint64_t *state)
{
    return (float)(next_random(state) >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

int cli_fill_random(ductile_dtype dtype, const char *name, void *data, size_t count)
{
    uint64_t state = seed_of(name);
    int mask = strstr(name, "mask") != NULL;
    for (size_t i = 0; i < count; i++) {
        int64_t v = mask ? 1 : (int64_t)(next_random(&state) % 100);
        switch (dtype) {
        case DUCTILE_FLOAT32: ((float *)data)[i] = uniform(&state); break;
        case DUCTILE_FLOAT64: ((double *)data)[i] = uniform(&state); break;
        case DUCTILE_FLOAT16: ((uint16_t *)data)[i] = cli_float_to_half(uniform(&state)); break;
        case DUCTILE_BFLOAT16: ((uint16_t *)data)[i] = cli_float_to_bf16(uniform(&state)); break;
        case DUCTILE_INT64: ((int64_t *)data)[i] = v; break;
        case DUCTILE_UINT64: ((uint64_t *)data)[i] = (uint64_t)v; break;
        case DUCTILE_INT32: ((int32_t *)data)[i] = (int32_t)v; break;
        case DUCTILE_UINT32: ((uint32_t *)data)[i] = (uint32_t)v; break;
        case DUCTILE_INT16: ((int16_t *)data)[i] = (int16_t)v; break;
        case DUCTILE_UINT16: ((uint16_t *)data)[i] = (uint16_t)v; break;
        case DUCTILE_INT8: ((int8_t *)data)[i] = (int8_t)v; break;
        case DUCTILE_UINT8: ((uint8_t *)data)[i] = (uint8_t)v; break;
        case DUCTILE_BOOL: ((uint8_t *)data)[i] = mask ? 1 : (uint8_t)(v & 1); break;
        default:
            return cli_fail("input '%s' has dtype %s, which the CLI cannot fill; give it with "
                            "--loadInputs", name, ductile_dtype_name(dtype));
        }
    }
    return 0;
}

int cli_load_input(const char *name, const char *path, const char *shape_text, void *data,
                   size_t bytes)
{
    /* O_NONBLOCK: a FIFO opens at once (and is refused below) instead of waiting for a
     * writer; it changes nothing for a regular file. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        int err = errno;
        if (fd >= 0) close(fd);
        return cli_fail("--loadInputs: cannot open '%s' for input '%s': %s", path, name,
                        strerror(err));
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return cli_fail("--loadInputs: '%s' for input '%s' is not a regular file", path, name);
    }
    if ((uint64_t)st.st_size != (uint64_t)bytes) {
        fclose(f);
        return cli_fail("--loadInputs: input '%s' (%s) needs %zu bytes but '%s' has %lld bytes",
                        name, shape_text, bytes, path, (long long)st.st_size);
    }
    size_t got = bytes ? fread(data, 1, bytes, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (got != bytes || err)
        return cli_fail("--loadInputs: read %zu of %zu bytes from '%s' for input '%s'", got,
                        bytes, path, name);
    return 0;
}

float cli_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
    float v;
    if (exp == 0)
        v = ldexpf((float)mant, -24); /* zero or subnormal */
    else if (exp == 31)
        v = mant ? NAN : INFINITY;
    else
        v = ldexpf((float)(mant | 0x400), (int)exp - 25);
    return sign ? -v : v;
}

float cli_bf16_to_float(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t cli_float_to_bf16(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    if ((bits & 0x7FFFFFFF) > 0x7F800000)
        return (uint16_t)((bits >> 16) | 0x40); /* keep NaN a NaN */
    bits += 0x7FFF + ((bits >> 16) & 1);     /* round to nearest even */
    return (uint16_t)(bits >> 16);
}

uint16_t cli_float_to_half(float f)
{
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    float a = fabsf(f);
    if (isnan(f))
        return sign | 0x7E00;
    if (a >= 65520.0f)
        return sign | 0x7C00; /* rounds to infinity */
    if (a < ldexpf(1.0f, -14)) /* subnormal half: multiples of 2^-24 */
        return sign | (uint16_t)lrintf(a * 16777216.0f);
    int e;
    float m = frexpf(a, &e);                   /* a = m * 2^e, m in [0.5, 1) */
    uint32_t mant = (uint32_t)lrintf(m * 2048.0f); /* 11 bits incl. the implicit one */
    if (mant == 2048) {
        mant = 1024;
        e++;
    }
    return sign | (uint16_t)(((uint32_t)(e + 14) << 10) | (mant & 0x3FF));
}
