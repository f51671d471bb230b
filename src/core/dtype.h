#ifndef DT_DTYPE_H
#define DT_DTYPE_H

#include "ductile.h"
#include <stdbool.h>

/* True for the types ductile can hold in a tensor buffer (all fixed-size types). */
bool dt_dtype_valid(int dtype);

#endif
