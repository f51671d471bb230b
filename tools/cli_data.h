/* cli_data — input data for a run: pseudo-random (deterministic) or read from a raw file,
 * and the half-precision conversions the JSON writer needs. */
#ifndef CLI_DATA_H
#define CLI_DATA_H

#include <stddef.h>
#include <stdint.h>
#include "ductile.h"

/* Fills count elements of an input named name, as --help documents: floats uniform in
 * [-1, 1); integers in [0, 100), or 1 when the name contains "mask"; bools 0/1 (1 for masks).
 * The sequence depends only on the name, so reruns and reordered inputs get the same data.
 * Returns 0, or CLI_EXIT_FAILURE after a message for a dtype it cannot fill. */
int cli_fill_random(ductile_dtype dtype, const char *name, void *data, size_t count);

/* Reads the file at path into data, which holds exactly bytes (the input's size for its
 * shape). A file of another size is refused with a message naming the input, the file, and
 * both byte counts. Returns 0 or CLI_EXIT_FAILURE. */
int cli_load_input(const char *name, const char *path, const char *shape_text, void *data,
                   size_t bytes);

float cli_half_to_float(uint16_t h);
float cli_bf16_to_float(uint16_t b);
uint16_t cli_float_to_half(float f);
uint16_t cli_float_to_bf16(float f);

#endif
