/* cli_shapes — parsing and printing of trtexec's shape specs (see cli_shapes.h). */
#include "cli_shapes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for a spec echoed back in a message (longer ones are cut). */
#define CLI_SPEC_ECHO 256

/* dynamic: "-1" is a dim too (--dynamicDims). */
static int parse_dims(const char *s, size_t len, ductile_dims *out, int dynamic, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return 0; /* rank 0 */
    size_t i = 0;
    while (i <= len) {
        if (out->nb_dims == DUCTILE_MAX_DIMS) {
            snprintf(err, err_size, "more than %d dims in '%.*s'", DUCTILE_MAX_DIMS, (int)len, s);
            return -1;
        }
        size_t start = i;
        int64_t v = 0;
        if (dynamic && len - i >= 2 && s[i] == '-' && s[i + 1] == '1' && (i + 2 == len || s[i + 2] == 'x')) {
            out->d[out->nb_dims++] = -1;
            i += 2;
            if (i == len)
                break;
            i++;
            if (i == len) {
                snprintf(err, err_size, "bad dims '%.*s' (trailing 'x')", (int)len, s);
                return -1;
            }
            continue;
        }
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            int digit = s[i] - '0';
            if (v > (INT64_MAX - digit) / 10) {
                snprintf(err, err_size, "dim too large in '%.*s'", (int)len, s);
                return -1;
            }
            v = v * 10 + digit;
            i++;
        }
        if (!dynamic && i == start && i < len && s[i] == '-') {
            snprintf(err, err_size,
                     "negative dim in '%.*s': a shape spec gives sizes; the range of a dynamic dim "
                     "goes in --minShapes/--optShapes/--maxShapes", (int)len, s);
            return -1;
        }
        if (i > start && i < len && s[i] == 'X') {
            /* trtexec's separator is the lowercase letter only; show the spec as it should be. */
            char fixed[CLI_SPEC_ECHO];
            snprintf(fixed, sizeof fixed, "%.*s", (int)len, s);
            for (char *c = fixed; *c; c++)
                if (*c == 'X')
                    *c = 'x';
            snprintf(err, err_size, "bad dims '%.*s': dims are joined by a lowercase 'x', as %s",
                     (int)len, s, fixed);
            return -1;
        }
        if (i == start || (i < len && s[i] != 'x')) {
            snprintf(err, err_size,
                     dynamic ? "bad dims '%.*s' (expected -1 or non-negative integers joined by 'x', as -1x3x-1x-1)"
                             : "bad dims '%.*s' (expected non-negative integers joined by 'x', as 1x3x224x224)",
                     (int)len, s);
            return -1;
        }
        out->d[out->nb_dims++] = v;
        if (i == len)
            break;
        i++; /* skip 'x' */
        if (i == len) {
            snprintf(err, err_size, "bad dims '%.*s' (trailing 'x')", (int)len, s);
            return -1;
        }
    }
    return 0;
}

/* Splits one item (not NUL-terminated: s[0..len)) into name and dims. */
static int parse_item(const char *s, size_t len, cli_shape *out, int dynamic, char *err, size_t err_size)
{
    const char *name;
    size_t name_len;
    const char *colon;
    if (len > 0 && s[0] == '\'') {
        const char *close = memchr(s + 1, '\'', len - 1);
        if (!close) {
            snprintf(err, err_size, "unterminated quote in '%.*s'", (int)len, s);
            return -1;
        }
        name = s + 1;
        name_len = (size_t)(close - name);
        colon = close + 1;
        if (colon >= s + len || *colon != ':') {
            snprintf(err, err_size, "expected ':' after the quoted name in '%.*s'", (int)len, s);
            return -1;
        }
    } else {
        colon = NULL;
        for (size_t i = len; i > 0; i--)
            if (s[i - 1] == ':') {
                colon = s + i - 1;
                break;
            }
        if (!colon) {
            snprintf(err, err_size, "expected name:dims in '%.*s'", (int)len, s);
            return -1;
        }
        name = s;
        name_len = (size_t)(colon - s);
    }
    if (name_len == 0) {
        snprintf(err, err_size, "empty input name in '%.*s'", (int)len, s);
        return -1;
    }
    const char *dims = colon + 1;
    if (parse_dims(dims, (size_t)(s + len - dims), &out->dims, dynamic, err, err_size) != 0)
        return -1;
    out->name = strndup(name, name_len);
    if (!out->name) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    return 0;
}

/* An item without a name: only digits and 'x' (no ':'). */
static int bare_dims(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!(s[i] >= '0' && s[i] <= '9') && s[i] != 'x')
            return 0;
    return 1;
}

/* The two mistakes that leave a bare item: dims written with ',' ("in:1,3,224,224", where ','
 * starts the next input), or no name at all ("1x3x224x224"). The message shows the fix.
 * prev: the item before (NULL for the first), which parsed as name:dims. */
static void explain_bare_dims(const char *spec, const char *prev, const char *item, char *err,
                              size_t err_size)
{
    size_t item_len = strcspn(item, ",");
    size_t prev_len = prev ? (size_t)(item - 1 - prev) : 0;
    const char *prev_dims = prev ? memrchr(prev, ':', prev_len) : NULL;
    int joins = prev_dims && !memchr(prev_dims, 'x', (size_t)(prev + prev_len - prev_dims)) &&
                !memchr(item, 'x', item_len);
    if (!joins) {
        snprintf(err, err_size, "'%.*s' has no input name: write name:dims, as input:%.*s",
                 (int)item_len, item, (int)item_len, item);
        return;
    }
    /* Every ',' followed by a bare number joins dims: show the spec with 'x' there. */
    char fixed[CLI_SPEC_ECHO];
    snprintf(fixed, sizeof fixed, "%s", spec);
    for (char *c = fixed; (c = strchr(c, ',')) != NULL; c++) {
        size_t len = strcspn(c + 1, ",");
        if (len > 0 && bare_dims(c + 1, len) && !memchr(c + 1, 'x', len))
            *c = 'x';
    }
    snprintf(err, err_size, "dims are joined by 'x', not by ',' which separates inputs: write %s",
             fixed);
}

static int parse_list(const char *spec, cli_shape_list *list, int dynamic, char *err, size_t err_size)
{
    if (!spec || !*spec) {
        snprintf(err, err_size, "empty shape spec");
        return -1;
    }
    cli_shape_list added = {0};
    const char *p = spec, *prev = NULL;
    for (;;) {
        /* An item ends at the first ',' outside a quoted name. */
        const char *end = p;
        if (*end == '\'') {
            const char *close = strchr(end + 1, '\'');
            end = close ? close + 1 : end + strlen(end);
        }
        while (*end && *end != ',')
            end++;
        cli_shape item;
        if (end == p) {
            snprintf(err, err_size, !*end && p != spec ? "trailing ',' with no name:dims after it"
                                                       : "empty item: two ',' in a row or a leading ','");
            goto fail;
        }
        if (bare_dims(p, (size_t)(end - p))) {
            explain_bare_dims(spec, prev, p, err, err_size);
            goto fail;
        }
        if (parse_item(p, (size_t)(end - p), &item, dynamic, err, err_size) != 0)
            goto fail;
        if (cli_shapes_find(list, item.name) || cli_shapes_find(&added, item.name)) {
            snprintf(err, err_size, "input '%s' given twice", item.name);
            free(item.name);
            goto fail;
        }
        cli_shape *grown = realloc(added.items, sizeof *grown * (size_t)(added.count + 1));
        if (!grown) {
            snprintf(err, err_size, "out of memory");
            free(item.name);
            goto fail;
        }
        added.items = grown;
        added.items[added.count++] = item;
        if (!*end)
            break;
        prev = p;
        p = end + 1;
    }
    cli_shape *all = realloc(list->items, sizeof *all * (size_t)(list->count + added.count));
    if (!all) {
        snprintf(err, err_size, "out of memory");
        goto fail;
    }
    memcpy(all + list->count, added.items, sizeof *all * (size_t)added.count);
    list->items = all;
    list->count += added.count;
    free(added.items);
    return 0;
fail:
    cli_shapes_free(&added);
    return -1;
}

int cli_shapes_parse(const char *spec, cli_shape_list *list, char *err, size_t err_size)
{
    return parse_list(spec, list, 0, err, err_size);
}

int cli_shapes_parse_dynamic(const char *spec, cli_shape_list *list, char *err, size_t err_size)
{
    return parse_list(spec, list, 1, err, err_size);
}

void cli_shapes_free(cli_shape_list *list)
{
    if (!list)
        return;
    for (int i = 0; i < list->count; i++)
        free(list->items[i].name);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

const cli_shape *cli_shapes_find(const cli_shape_list *list, const char *name)
{
    for (int i = 0; list && i < list->count; i++)
        if (strcmp(list->items[i].name, name) == 0)
            return &list->items[i];
    return NULL;
}

char *cli_dims_format(const ductile_dims *dims, char *buf, size_t size)
{
    if (size == 0)
        return buf;
    buf[0] = '\0';
    if (dims->nb_dims <= 0) {
        snprintf(buf, size, dims->nb_dims == 0 ? "scalar" : "unknown");
        return buf;
    }
    size_t used = 0;
    for (int i = 0; i < dims->nb_dims && used < size; i++) {
        int n = snprintf(buf + used, size - used, i ? "x%lld" : "%lld", (long long)dims->d[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return buf;
}

int64_t cli_dims_volume(const ductile_dims *dims)
{
    int64_t v = 1;
    for (int i = 0; i < dims->nb_dims; i++) {
        if (dims->d[i] < 0)
            return -1;
        if (dims->d[i] != 0 && v > INT64_MAX / dims->d[i])
            return -1;
        v *= dims->d[i];
    }
    return v;
}
