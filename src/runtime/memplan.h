/* Activation memory: one arena per context; tensors whose lifetimes do not overlap share bytes.
 *
 * Lifetimes depend only on the network, so they are planned once per engine (dt_memlife_make,
 * from dt_plan_make at load); offsets depend on the shapes and are planned per set of shapes
 * (dt_memplan), in O(n log n) for n blocks whatever the network. */
#ifndef DT_MEMPLAN_H
#define DT_MEMPLAN_H

#include "runtime/engine_impl.h"

#include <stddef.h>

/* The lifetimes of n blocks over n_steps steps (layers): block b is live from step first[b]
 * through last[b] (0 <= first <= last < n_steps), and with it the time-neighbours of the
 * blocks that get exact placement (see memplan.c). */
typedef struct dt_memlife dt_memlife;

/* budget: the most neighbour entries listed in all (the work per shape is bounded by it);
 * 0 takes the default, DT_MEMPLAN_BUDGET(n). Ties between equal sizes go to the lower block
 * index. */
#define DT_MEMPLAN_BUDGET(n) ((size_t)32 * (size_t)(n) + 65536)
ductile_status dt_memlife_make(int n, const int *first, const int *last, int n_steps, size_t budget,
                               dt_memlife **out);
void dt_memlife_free(dt_memlife *m);

/* The last step block b lives at (its last reader's, or its views' or slices'). */
int dt_memlife_last(const dt_memlife *m, int b);

/* m's lifetimes with the blocks b where from0[b] is set living from step 0 on (depth first
 * over the batch, runtime/depth_first.h: a group of images writes them before the layers
 * that free the blocks below them have run for the next group). */
ductile_status dt_memlife_from_step0(const dt_memlife *m, const unsigned char *from0, dt_memlife **out);

/* What one placement did, for tests: every entry read from the neighbour lists, and the
 * blocks placed above their lifetime's highest block instead (too many neighbours). */
typedef struct dt_memplan_work {
    size_t neighbours;
    int stacked;
} dt_memplan_work;

/* Places every block (sizes in bytes, used as given): offsets[b], *arena = the end of the
 * highest block. Blocks live at a common step never share a byte. work may be NULL.
 * DUCTILE_ERR_SHAPE when the arena would pass SIZE_MAX (the message names the block). */
ductile_status dt_memlife_place(const dt_memlife *m, const size_t *sizes, size_t *offsets, size_t *arena,
                                dt_memplan_work *work);

/* The engine's blocks: one per ACTIVATION tensor that a layer writes, live from its producer
 * to its last reader, but for views (plan->alias_of, set before): they share their first
 * tensor's block, which lives to the last reader of any of them; and a whole's block (the
 * top of a chain of plan->slice_of) from the first writer to the last reader of any of its
 * slices. Made by dt_plan_make. */
ductile_status dt_memplan_lifetimes(const ductile_network *net, dt_plan *plan);

/* Which Concat and Split parts may be placed as slices of their whole (plan->slice_of, after
 * alias_of, before dt_memplan_lifetimes; runtime/plan_slices.c): none unless backend b joins
 * in place. Made by dt_plan_make. */
ductile_status dt_plan_slices(const ductile_network *net, const dt_backend *b, dt_plan *plan);

/* Sets offsets[t] for every ACTIVATION tensor (others untouched; a view gets its first
 * tensor's offset; a slice its whole's plus the parts before it where, at these shapes, it is
 * contiguous there and 64-byte aligned, and then its own block is not placed) and *arena_size
 * for the views' shapes. Offsets are 64-byte aligned. A size that overflows names the tensor, its
 * producer and its shape. */
ductile_status dt_memplan(const ductile_engine *e, const dt_view *views, size_t *offsets,
                          size_t *arena_size);
/* The same with lifetimes mem (of the engine's blocks, as dt_memlife_from_step0 makes). */
ductile_status dt_memplan_with(const ductile_engine *e, const dt_view *views, const dt_memlife *mem, size_t *offsets,
                               size_t *arena_size);

#endif
