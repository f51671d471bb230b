/* On/off switches read from the environment (A/B switches of kernels and fusions). */
#ifndef DT_CORE_ENV_H
#define DT_CORE_ENV_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The switch `name`, read once into *cache (a static of the caller, -1 before the first read):
 * on by default (dflt) unless the variable is "0", off by default unless it is "1". */
static inline bool dt_env_switch(int *cache, const char *name, bool dflt)
{
    if (*cache < 0) {
        const char *v = getenv(name);
        *cache = dflt ? !(v && !strcmp(v, "0")) : (v && !strcmp(v, "1"));
    }
    return *cache;
}

#endif
