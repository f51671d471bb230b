/* Recorded runs (CUDA graphs) of a device context, one per execution key, kept LRU.
 *
 * A run's layers queue the same work whenever the key is the same: the profile, the input
 * shapes and shape-input values (which decide every tensor's shape and every value a kernel
 * reads on the host), and the device address of every buffer a layer reads or writes (the
 * context builds the key: dt_execute_device). So a record made at a key replays correctly at
 * that key, and a key that differs in anything gets a record of its own.
 *
 * When: the first run at a key runs layer by layer and is only remembered (it makes the
 * backend's per-shape plans and grows its workspace, which cannot be recorded); the second run
 * records and launches the record; later runs launch it. A key seen once costs no recording
 * and takes no graph's place. A key whose recording failed runs layer by layer for good.
 *
 * Bounds: at most `max` records (the least recently used is freed first) and at most `max`
 * keys seen once or failed, in a table of 2 * max entries searched linearly (max is small:
 * 16 by default). Looking a key up allocates nothing; a new key allocates its copy. */
#ifndef DT_GRAPHS_H
#define DT_GRAPHS_H

#include "backend/backend.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The records a context keeps by default (ductile_context_set_cuda_graphs). */
#define DT_GRAPHS_DEFAULT 16
#define DT_GRAPHS_MAX 4096

typedef struct dt_graph_entry {
    unsigned char *key;     /* NULL: a free slot */
    size_t key_len;
    uint64_t hash;
    void *graph;            /* the backend's record; NULL: seen once, or failed */
    bool failed;            /* recording failed at this key: never record it again */
    uint64_t used;          /* last use, for LRU */
} dt_graph_entry;

typedef struct dt_graphs {
    int max;                /* records kept at most; 0: off */
    dt_graph_entry *slots;  /* 2 * max */
    uint64_t clock;
    unsigned char *key;     /* the key being built (dt_graphs_key_*) */
    size_t key_len, key_cap;
    bool key_bad;           /* the key could not grow: no lookups this run */
} dt_graphs;

/* Sets the bound (0..DT_GRAPHS_MAX, checked by the caller), freeing every record. */
ductile_status dt_graphs_set_max(dt_graphs *g, int max, const dt_backend *be);
/* Frees every record and the table. */
void dt_graphs_free(dt_graphs *g, const dt_backend *be);

/* Building the key of this run: reset, then add its parts. Never fails: a key that cannot
 * grow (out of memory) marks itself bad, and dt_graphs_find then finds nothing. */
void dt_graphs_key_reset(dt_graphs *g);
void dt_graphs_key_add(dt_graphs *g, const void *bytes, size_t n);

/* The entry of the key built, or NULL (also when the key is bad); marks it used. */
dt_graph_entry *dt_graphs_find(dt_graphs *g);
/* Remembers the key built as seen once; evicts the least recently used key seen once or
 * failed when max of them are kept. Out of memory: remembers nothing (the run goes on). */
void dt_graphs_remember(dt_graphs *g);
/* Stores a record for entry e (found by dt_graphs_find): when max records are kept, the
 * least recently used one is freed and its entry dropped. */
void dt_graphs_store(dt_graphs *g, dt_graph_entry *e, void *graph, const dt_backend *be);
/* Records held now, for tests and reports. */
int dt_graphs_count(const dt_graphs *g);

#endif
