#include "runtime/memplan.h"
#include "core/checked.h"
#include "core/status.h"

#include <stdlib.h>

typedef struct dt_block {
    int tensor;
    int first, last;      /* layers that write it and read it last */
    size_t size, offset;
} dt_block;

static int dt_by_size_desc(const void *a, const void *b)
{
    const dt_block *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->tensor - y->tensor;   /* deterministic */
}

static int dt_by_offset(const void *a, const void *b)
{
    const dt_block *x = *(const dt_block *const *)a, *y = *(const dt_block *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

ductile_status dt_memplan(const ductile_engine *e, const dt_view *views, size_t *offsets, size_t *arena_size)
{
    const ductile_network *net = e->net;
    const dt_plan *p = &e->plan;
    int n = 0;
    dt_block *blocks = malloc(((size_t)net->n_tensors + 1) * sizeof *blocks);
    dt_block **placed = malloc(((size_t)net->n_tensors + 1) * sizeof *placed);
    if (!blocks || !placed) {
        free(blocks);
        free(placed);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory planning activation memory");
    }
    for (int t = 0; t < net->n_tensors; t++) {
        if (p->kind[t] != DT_TENSOR_ACTIVATION || !net->tensors[t]->producer) continue;
        size_t bytes;
        if (!dt_view_bytes(&views[t], &bytes) || bytes > SIZE_MAX - 64) {
            free(blocks);
            free(placed);
            return dt_fail(DUCTILE_ERR_SHAPE, "tensor '%s' is too large", net->tensors[t]->name);
        }
        dt_block *b = &blocks[n++];
        b->tensor = t;
        b->first = net->tensors[t]->producer->index;
        b->last = p->last_use[t] < b->first ? b->first : p->last_use[t];
        b->size = (bytes + 63) & ~(size_t)63;
        b->offset = 0;
    }
    qsort(blocks, (size_t)n, sizeof *blocks, dt_by_size_desc);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        dt_block *b = &blocks[i];
        int m = 0;
        for (int j = 0; j < i; j++)
            if (blocks[j].first <= b->last && b->first <= blocks[j].last) placed[m++] = &blocks[j];
        qsort(placed, (size_t)m, sizeof *placed, dt_by_offset);
        size_t off = 0;
        for (int j = 0; j < m; j++) {
            if (placed[j]->offset >= off + b->size) break;   /* fits in the gap before it */
            size_t end = placed[j]->offset + placed[j]->size;
            if (end > off) off = end;
        }
        b->offset = off;
        if (!dt_add_size(off, b->size, &off)) {
            free(blocks);
            free(placed);
            return dt_fail(DUCTILE_ERR_SHAPE, "activation memory size overflows");
        }
        if (off > total) total = off;
        offsets[b->tensor] = b->offset;
    }
    free(blocks);
    free(placed);
    *arena_size = total;
    return DUCTILE_OK;
}
