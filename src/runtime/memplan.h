/* Activation memory for one set of shapes: one arena, tensors whose lifetimes do not overlap
 * share bytes. Recomputed when input shapes change (a few microseconds per hundred tensors). */
#ifndef DT_MEMPLAN_H
#define DT_MEMPLAN_H

#include "runtime/engine_impl.h"

/* Sets offsets[t] for every ACTIVATION tensor (others untouched) and *arena_size.
 * Offsets are 64-byte aligned. */
ductile_status dt_memplan(const ductile_engine *e, const dt_view *views, size_t *offsets,
                          size_t *arena_size);

#endif
