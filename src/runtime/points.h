/* The shape points of an optimization profile (min, opt, max: ductile_profile_selector) where
 * the builder times tactics, and the one a context's shapes are nearest to, whose tactics its
 * kernels run (backend/tactic.h, dt_exec.point). */
#ifndef DT_RUNTIME_POINTS_H
#define DT_RUNTIME_POINTS_H

#include "runtime/engine_impl.h"

#include <stdbool.h>

/* Sets the views (rank, dims) of e's inputs to profile p's shapes at `point`; an input the
 * profile does not name (fixed) takes its declared dims. */
void dt_point_views(const ductile_engine *e, int p, int point, dt_view *views);
/* Whether points a and b of profile p give every input the same shape. */
bool dt_points_same(const ductile_engine *e, int p, int a, int b);
/* The point of profile p nearest the input shapes in views: the one whose total input volume
 * (the sum over the network's inputs of their element counts) is nearest in log scale,
 * |ln V - ln V_point| with volumes under 1 taken as 1; ties go to opt, then min. The timing
 * of a tactic scales with the work, so a ratio, not a difference, says how near two shapes
 * are: batch 2 is nearer batch 1 than batch 8. */
int dt_point_nearest(const ductile_engine *e, int p, const dt_view *views);

#endif
