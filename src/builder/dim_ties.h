/* Fixed dims and the constants that tie them: the build-time checks behind
 * ductile_network_set_input_dims (see dim_ties.c for the rule and why). */
#ifndef DT_DIM_TIES_H
#define DT_DIM_TIES_H

#include "builder/profile_check.h"

/* Refuses profile p when it gives a dim the model fixes (and no override changed) another
 * size or a range, naming the input, the dim, the declared size and the override; with
 * `search`, also whether the model ties the dim (moved alone) to its declared size. */
ductile_status dt_fixed_dims_check(const ductile_engine *e, const dt_input_decl *decl, int p, bool search);

/* Moves every overridden dim alone from the model's size to profile p's min and max and
 * refuses the profile when a node ties the dim to the model's size. */
ductile_status dt_ties_check(const ductile_engine *e, const dt_input_decl *decl, int p);

#endif
