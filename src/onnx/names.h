/* A hash map from tensor name to tensor, so the importer resolves a node's inputs in constant
 * time (dt_network_find is a linear search and big graphs have thousands of names). */
#ifndef DT_ONNX_NAMES_H
#define DT_ONNX_NAMES_H

#include "graph/network.h"

#include <stddef.h>

typedef struct dt_names {
    ductile_tensor **slots;    /* open addressing; NULL: empty */
    size_t cap, count;
} dt_names;

void dt_names_free(dt_names *m);
ductile_tensor *dt_names_get(const dt_names *m, const char *name);
/* Adds t under t->name (which must not be present). 0 on out-of-memory. */
int dt_names_put(dt_names *m, ductile_tensor *t);

#endif
