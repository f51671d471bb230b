#include "onnx/names.h"
#include "core/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t dt_names_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

void dt_names_free(dt_names *m)
{
    dt_free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}

ductile_tensor *dt_names_get(const dt_names *m, const char *name)
{
    if (!m->cap) return NULL;
    for (size_t i = dt_names_hash(name) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        ductile_tensor *t = m->slots[i];
        if (!t) return NULL;
        if (strcmp(t->name, name) == 0) return t;
    }
}

static void dt_names_insert(ductile_tensor **slots, size_t cap, ductile_tensor *t)
{
    size_t i = dt_names_hash(t->name) & (cap - 1);
    while (slots[i]) i = (i + 1) & (cap - 1);
    slots[i] = t;
}

int dt_names_put(dt_names *m, ductile_tensor *t)
{
    /* Grow at half full so probes stay short. */
    if ((m->count + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        ductile_tensor **slots = dt_calloc(cap, sizeof *slots);
        if (!slots) return 0;
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i]) dt_names_insert(slots, cap, m->slots[i]);
        dt_free(m->slots);
        m->slots = slots;
        m->cap = cap;
    }
    dt_names_insert(m->slots, m->cap, t);
    m->count++;
    return 1;
}
