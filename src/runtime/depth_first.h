/* Depth first over the batch: the first layers of a batch run one image at a time.
 *
 * A convolutional network's first layers have the largest activations (MobileNetV2's stem
 * writes 1.6 MB an image, 13 MB for 8): run layer by layer over the whole batch, each of them
 * writes its output to memory and the next layer reads it back from there. Run over a group
 * of images through the whole prefix before the next group, a layer's output is still in
 * cache when the next layer reads it. A group holds as many images as there are threads
 * (each thread an image, as the kernels share a batch between threads).
 *
 * The prefix: the layers from the first on whose images are independent (convolutions,
 * pools, elementwise ops on [N, ...] operands; weights constant; no view, slice, sequence or
 * subgraph), up to the last of them with an operand of at least DT_DF_MIN_BYTES an image
 * (DUCTILE_DEPTH_FIRST_BYTES overrides it; 0 turns it off). Only with more images than a
 * group. DUCTILE_DEPTH_FIRST_GROUP=g, for experiments: groups of g images on any number of
 * threads. Its tensors: those the prefix reads from outside it or that are read after it (or
 * are network outputs) keep the whole batch and each group works on its images' part
 * (sliced); those written and read only inside it hold one group (a group's buffer, reused
 * by the next group). The memory plan keeps the sliced blocks live from the first step on,
 * as the first group writes them before the later groups run the layers in front of them;
 * where that plan needs more than the one layer by layer, the batch runs layer by layer (the
 * build checked the workspace limit against that one). */
#ifndef DT_RUNTIME_DEPTH_FIRST_H
#define DT_RUNTIME_DEPTH_FIRST_H

#include "runtime/engine_impl.h"
#include "runtime/memplan.h"

#define DT_DF_MIN_BYTES ((int64_t)1 << 20)

enum { DT_DF_WHOLE = 0, DT_DF_SLICED = 1, DT_DF_GROUP = 2 };

typedef struct dt_depth_first {
    int k;                  /* layers [0, k) run group by group; 0: off */
    int64_t n, g;           /* images in the batch, images in a group */
    unsigned char *role;    /* per tensor: DT_DF_WHOLE (not cut), DT_DF_SLICED, DT_DF_GROUP */
    dt_view *views;         /* per tensor: the views with the group tensors at g images */
    dt_memlife *mem;        /* the engine's lifetimes with the sliced blocks live from step 0 */
    int mem_k;              /* the k mem is for (0: none made) */
    double *ms;             /* per prefix layer: its time summed over the groups (profiling) */
    size_t *offsets;        /* per tensor: the arena offsets of the plan with the prefix */
} dt_depth_first;

/* Decides the prefix for these views (the shape pass's) and thread count, given the memory
 * plan layer by layer (offsets, *arena: dt_memplan's): d->k = 0 where none pays or where it
 * would take more memory, else the roles, group views and lifetimes, and offsets and *arena
 * become the plan with the prefix. */
ductile_status dt_df_choose(dt_depth_first *d, const ductile_engine *e, const dt_view *views, int threads, size_t *offsets,
                            size_t *arena);

/* The most scratch the prefix's layers ask at a group's views (and a last, smaller group's). */
ductile_status dt_df_scratch(const dt_depth_first *d, const ductile_engine *e, int threads, size_t *bytes);

/* v (tensor t's view, its data the whole tensor's buffer) cut to images [first, first +
 * count) of the group run now: a sliced tensor's part of the batch, a group tensor's buffer. */
void dt_df_cut(const dt_depth_first *d, int t, int64_t first, int64_t count, dt_view *v);

void dt_df_free(dt_depth_first *d);

#endif
