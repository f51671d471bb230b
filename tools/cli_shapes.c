/* cli_shapes — parsing and printing of trtexec's shape specs (see cli_shapes.h). */
#include "cli_shapes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int parse_list(const char *spec, cli_shape_list *list, int dynamic, char *err, size_t err_size)
{
    if (!spec || !*spec) {
        snprintf(err, err_size, "empty shape spec");
        return -1;
    }
    cli_shape_list added = {0};
    const char *p = spec;
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
