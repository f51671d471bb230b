#ifndef DT_DTYPE_H
#define DT_DTYPE_H

#include "ductile.h"
#include <stdbool.h>

/* True for the types ductile can hold in a tensor buffer (the fixed-size types and STRING,
 * whose elements are ductile_string views). */
bool dt_dtype_valid(int dtype);
/* dt_dtype_valid and not STRING: a type whose bytes are its value. */
bool dt_dtype_numeric(int dtype);

/* Bits one element takes in an ONNX file's packed data: 4 for uint4, int4 and float4e2m1,
 * 2 for uint2 and int2, else 8 * ductile_dtype_size (0 for types ductile cannot hold). In
 * memory every type takes ductile_dtype_size bytes; only the importer sees packing. */
int dt_dtype_file_bits(int dtype);

#endif
