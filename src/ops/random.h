/* Ops whose output is a random draw (ops/random.c): never folded at build time nor computed
 * in the shape pass as a value, so an unseeded draw is fresh on every execute. */
#ifndef DT_OPS_RANDOM_H
#define DT_OPS_RANDOM_H

#include <stdbool.h>

bool dt_op_draws_random(const char *op_type);

#endif
