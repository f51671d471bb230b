/*
 * cli_shapes — trtexec's shape specs: "name:1x3x224x224[,name2:4x128]".
 * A name may be quoted ('input:0':1x3) when it holds ':' or ','; unquoted, the dims follow the
 * last ':' of the item, so names such as input:0 work without quotes too. "name:" (no dims)
 * is a scalar of rank 0.
 */
#ifndef CLI_SHAPES_H
#define CLI_SHAPES_H

#include <stddef.h>
#include "ductile.h"

typedef struct cli_shape {
    char *name;                      /* malloc'd, owned by the list */
    ductile_dims dims;
} cli_shape;

typedef struct cli_shape_list {
    cli_shape *items;
    int count;
} cli_shape_list;

/* Appends the items of spec to *list (which may already hold items: repeated flags add up).
 * Returns 0, or -1 with a message in err (naming the item at fault); on failure *list is
 * unchanged. A name given twice is refused. */
int cli_shapes_parse(const char *spec, cli_shape_list *list, char *err, size_t err_size);

/* As cli_shapes_parse, where a dim may also be -1 (dynamic): --dynamicDims=input:-1x1x-1x-1. */
int cli_shapes_parse_dynamic(const char *spec, cli_shape_list *list, char *err, size_t err_size);

/* Frees the items; *list becomes empty. NULL: no-op. */
void cli_shapes_free(cli_shape_list *list);

/* The item of that name, or NULL. */
const cli_shape *cli_shapes_find(const cli_shape_list *list, const char *name);

/* "1x3x224x224" ("scalar" for rank 0) into buf, always NUL-terminated. Returns buf. */
char *cli_dims_format(const ductile_dims *dims, char *buf, size_t size);

/* Elements of a shape; -1 on a negative dim or overflow of int64. */
int64_t cli_dims_volume(const ductile_dims *dims);

#endif
