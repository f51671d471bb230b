/* A layer's stored tactics: the ids the builder timed (builder/tactics.c) per optimization
 * profile and per shape point of the profile, and the one a run takes.
 *
 * Attributes (written by the builder, read once by a kernel's prepare):
 *   tactic         INTS  per profile p, `tactic_points` ids: p * points + point
 *   tactic_points  INT   ids per profile: DT_TACTIC_POINTS (one per point, in the order of
 *                        ductile_profile_selector: min, opt, max), or 1 (absent: engines
 *                        written before per-point tactics, whose one id was timed at opt and
 *                        now serves every point).
 * The context picks the point nearest the shapes it runs at (runtime/points.c) and hands it to
 * kernels in dt_exec.point, next to dt_exec.profile. */
#ifndef DT_BACKEND_TACTIC_H
#define DT_BACKEND_TACTIC_H

#include "backend/backend.h"

#include <stdint.h>

enum { DT_TACTIC_POINTS = 3 };

/* Reads L's `tactic` (*ids NULL and *n 0 when absent) and `tactic_points` (*points), and
 * refuses (DUCTILE_ERR_INVALID_ARGUMENT) a points value other than 1 or DT_TACTIC_POINTS and a
 * count of ids that is not a multiple of it. Checking the ids themselves is the kernel's. */
ductile_status dt_tactic_attr(const ductile_layer *L, const int64_t **ids, int64_t *n, int *points);

/* The id stored for (profile, point) in ids[0..n) of `points` per profile; 0 (none: the
 * kernel's heuristic) for a profile past the stored ones. One id per profile serves every
 * point. */
static inline int64_t dt_tactic_at(const int64_t *ids, int64_t n, int points, int profile, int point)
{
    if (profile < 0 || points < 1) return 0;
    int k = points == 1 ? 0 : point >= 0 && point < points ? point : DUCTILE_PROFILE_OPT;
    int64_t i = (int64_t)profile * points + k;
    return i < n ? ids[i] : 0;
}

#endif
