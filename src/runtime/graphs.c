/* Recorded runs per execution key (see graphs.h). */
#include "runtime/graphs.h"
#include "core/alloc.h"
#include "core/status.h"

#include <string.h>

static void dt_entry_clear(dt_graph_entry *e, const dt_backend *be)
{
    if (e->graph) be->graph_free(e->graph);
    dt_free(e->key);
    memset(e, 0, sizeof *e);
}

static void dt_graphs_clear(dt_graphs *g, const dt_backend *be)
{
    for (int i = 0; g->slots && i < 2 * g->max; i++) dt_entry_clear(&g->slots[i], be);
}

void dt_graphs_free(dt_graphs *g, const dt_backend *be)
{
    dt_graphs_clear(g, be);
    dt_free(g->slots);
    dt_free(g->key);
    memset(g, 0, sizeof *g);
}

ductile_status dt_graphs_set_max(dt_graphs *g, int max, const dt_backend *be)
{
    dt_graph_entry *slots = NULL;
    if (max > 0 && !(slots = dt_calloc((size_t)max * 2, sizeof *slots)))
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for %d graphs", max);
    dt_graphs_clear(g, be);
    dt_free(g->slots);
    g->slots = slots;
    g->max = max;
    return DUCTILE_OK;
}

void dt_graphs_key_reset(dt_graphs *g)
{
    g->key_len = 0;
    g->key_bad = false;
}

void dt_graphs_key_add(dt_graphs *g, const void *bytes, size_t n)
{
    if (g->key_bad) return;
    if (n > g->key_cap - g->key_len) {
        size_t cap = g->key_cap ? g->key_cap : 256;
        while (cap - g->key_len < n && cap <= SIZE_MAX / 2) cap *= 2;
        unsigned char *p = cap - g->key_len >= n ? dt_realloc(g->key, cap) : NULL;
        if (!p) {
            g->key_bad = true;
            return;
        }
        g->key = p;
        g->key_cap = cap;
    }
    memcpy(g->key + g->key_len, bytes, n);
    g->key_len += n;
}

/* FNV-1a: the key is compared in full on a hash match; the hash only skips the memcmp. */
static uint64_t dt_key_hash(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

dt_graph_entry *dt_graphs_find(dt_graphs *g)
{
    if (g->key_bad || !g->max) return NULL;
    uint64_t h = dt_key_hash(g->key, g->key_len);
    for (int i = 0; i < 2 * g->max; i++) {
        dt_graph_entry *e = &g->slots[i];
        if (e->key && e->hash == h && e->key_len == g->key_len && memcmp(e->key, g->key, g->key_len) == 0) {
            e->used = ++g->clock;
            return e;
        }
    }
    return NULL;
}

/* The least recently used entry with (with_graph) or without a record, and how many such
 * entries there are; *free_slot: an empty slot, or NULL. */
static dt_graph_entry *dt_lru(dt_graphs *g, bool with_graph, int *count, dt_graph_entry **free_slot)
{
    dt_graph_entry *lru = NULL;
    *count = 0;
    *free_slot = NULL;
    for (int i = 0; i < 2 * g->max; i++) {
        dt_graph_entry *e = &g->slots[i];
        if (!e->key) {
            if (!*free_slot) *free_slot = e;
            continue;
        }
        if ((e->graph != NULL) != with_graph) continue;
        ++*count;
        if (!lru || e->used < lru->used) lru = e;
    }
    return lru;
}

void dt_graphs_remember(dt_graphs *g)
{
    if (g->key_bad || !g->max) return;
    int n;
    dt_graph_entry *slot;
    dt_graph_entry *lru = dt_lru(g, false, &n, &slot);
    unsigned char *key = dt_malloc(g->key_len ? g->key_len : 1);
    if (!key) return;
    /* Seen-once keys never take more than max slots, so a free slot exists below that. */
    if (n >= g->max) {
        dt_free(lru->key);
        slot = lru;
    }
    memcpy(key, g->key, g->key_len);
    *slot = (dt_graph_entry){.key = key, .key_len = g->key_len, .hash = dt_key_hash(g->key, g->key_len),
                             .used = ++g->clock};
}

void dt_graphs_store(dt_graphs *g, dt_graph_entry *e, void *graph, const dt_backend *be)
{
    int n;
    dt_graph_entry *slot;
    dt_graph_entry *lru = dt_lru(g, true, &n, &slot);
    if (n >= g->max) dt_entry_clear(lru, be);
    e->graph = graph;
    e->used = ++g->clock;
}

int dt_graphs_count(const dt_graphs *g)
{
    int n = 0;
    for (int i = 0; g->slots && i < 2 * g->max; i++) n += g->slots[i].graph != NULL;
    return n;
}
