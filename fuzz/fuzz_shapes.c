/* libFuzzer harness: the CLI's shape-spec parser (tools/cli_shapes.c). The bytes up to the
 * first NUL are one spec, the rest a second spec appended to the same list (as repeated
 * --shapes flags are); every item is then looked up, printed and measured. */
#include "cli_shapes.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *spec = malloc(size + 2);
    if (!spec) return 0;
    memcpy(spec, data, size);
    spec[size] = spec[size + 1] = '\0';
    const char *second = spec + strlen(spec) + 1;
    cli_shape_list list = {0};
    char err[256];
    int a = cli_shapes_parse(spec, &list, err, sizeof err);
    int before = list.count;
    if (cli_shapes_parse(second, &list, err, sizeof err) != 0 && list.count != before) abort();
    if (a != 0 && before != 0) abort(); /* a failed parse leaves the list unchanged */
    for (int i = 0; i < list.count; i++) {
        const cli_shape *s = &list.items[i];
        if (cli_shapes_find(&list, s->name) != s) abort(); /* names are unique */
        char buf[16];
        cli_dims_format(&s->dims, buf, sizeof buf);
        cli_dims_volume(&s->dims);
        if (s->dims.nb_dims < 0 || s->dims.nb_dims > DUCTILE_MAX_DIMS) abort();
    }
    cli_shapes_free(&list);
    free(spec);
    return 0;
}
