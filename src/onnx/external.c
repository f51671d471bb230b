/* External tensor data (TensorProto.data_location = EXTERNAL): files next to the model,
 * mapped once each and kept alive by the network. Only paths that stay inside the model's
 * folder are opened (dt_file_open_beneath: symlinks are resolved and checked here, whatever
 * the kernel), so a model cannot make the importer read arbitrary files. */
#include "onnx/onnx_internal.h"
#include "core/checked.h"
#include "core/file.h"
#include "core/status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void dt_ext_unmap(void *p, size_t n) { munmap(p, n); }

/* True if loc is relative and has no ".." component. (The confined open refuses escapes
 * too; this check comes first so the message names the location, not a lookup.) */
static bool dt_ext_location_ok(const char *loc)
{
    if (!loc[0] || loc[0] == '/') return false;
    for (const char *p = loc; *p;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') return false;
        p += n;
        if (*p == '/') p++;
    }
    return true;
}

static ductile_status dt_ext_file_get(dt_import *im, const char *tn, const char *loc,
                                      dt_ext_file **out)
{
    for (dt_ext_file *e = im->ext; e; e = e->next)
        if (strcmp(e->location, loc) == 0) {
            *out = e;
            return DUCTILE_OK;
        }
    int fd;
    struct stat st;
    ductile_status s = dt_file_open_beneath(im->dir, loc, "external data file", "the model's folder", &fd, &st);
    if (s) return dt_fail_prefix(s, "tensor '%s'", tn);
    /* The build reads the mapping; the watch lets it refuse a file truncated since (SIGBUS). */
    s = dt_file_watch_add(&im->net->files, im->dir, loc, "external data file", &st);
    if (s) {
        close(fd);
        return s;
    }
    dt_ext_file *e = dt_arena_alloc(&im->net->arena, sizeof *e);
    if (!e) {
        close(fd);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory reading external data file '%s'", loc);
    }
    e->location = (char *)loc;
    e->size = (size_t)st.st_size;
    if (e->size) {
        void *p = mmap(NULL, e->size, PROT_READ, MAP_PRIVATE, fd, 0);
        int err = errno;
        close(fd);
        if (p == MAP_FAILED)
            return dt_fail(DUCTILE_ERR_IO, "tensor '%s': cannot map external data file '%s': %s", tn, loc,
                           strerror(err));
        DT_TRY(dt_network_keep(im->net, p, e->size, dt_ext_unmap));
        e->data = p;
    } else {
        close(fd);
    }
    e->next = im->ext;
    im->ext = e;
    *out = e;
    return DUCTILE_OK;
}

static bool dt_ext_number(const char *s, uint64_t *v)
{
    uint64_t x = 0;
    if (!*s) return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        if (__builtin_mul_overflow(x, 10, &x) || __builtin_add_overflow(x, (uint64_t)(*s - '0'), &x))
            return false;
    }
    *v = x;
    return true;
}

ductile_status dt_onnx_external(dt_import *im, ductile_tensor *t, const pb_field *f, size_t nbytes)
{
    const char *tn = t->name;
    if (!im->dir)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "tensor '%s': external data needs ductile_onnx_parse_file (the model's folder)", tn);
    const char *loc = NULL;
    uint64_t offset = 0, length = 0;
    bool has_length = false;
    pb_reader r, er;
    pb_field g, h;
    bool more;
    DT_TRY(pb_sub(f, &dt_pb_tensor, &r));
    for (;;) {
        DT_TRY(pb_next(&r, &g, &more));
        if (!more) break;
        if (g.num != 13) continue;
        const char *key = "", *val = "";
        DT_TRY(pb_sub(&g, &dt_pb_entry, &er));
        for (;;) {
            DT_TRY(pb_next(&er, &h, &more));
            if (!more) break;
            if (h.num != 1 && h.num != 2) continue;
            DT_TRY(pb_expect(&h, PB_LEN));
            const char *s = dt_onnx_str(im, &h);
            if (!s) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory reading a tensor's external_data");
            if (h.num == 1) key = s;
            else val = s;
        }
        if (strcmp(key, "location") == 0) {
            loc = val;
        } else if (strcmp(key, "offset") == 0 || strcmp(key, "length") == 0) {
            uint64_t v;
            if (!dt_ext_number(val, &v))
                return dt_fail(DUCTILE_ERR_PARSE, "tensor '%s': external data '%s' is '%s', expected a non-negative integer",
                               tn, key, val);
            if (key[0] == 'o') offset = v;
            else { length = v; has_length = true; }
        }
    }
    if (!loc)
        return dt_fail(DUCTILE_ERR_PARSE, "tensor '%s': external data has no 'location'", tn);
    if (!dt_ext_location_ok(loc))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "tensor '%s': external data location '%s' is refused: it must be a relative path inside the model's folder, without '..'",
                       tn, loc);
    if (has_length && length != nbytes)
        return dt_fail(DUCTILE_ERR_PARSE, "tensor '%s': external data length %llu, expected %zu (dims and dtype)",
                       tn, (unsigned long long)length, nbytes);
    dt_ext_file *e = NULL;
    DT_TRY(dt_ext_file_get(im, tn, loc, &e));
    uint64_t end;
    if (__builtin_add_overflow(offset, (uint64_t)nbytes, &end) || end > e->size)
        return dt_fail(DUCTILE_ERR_PARSE, "tensor '%s': external data at offset %llu, %zu bytes, runs past the end of '%s' (%zu bytes)",
                       tn, (unsigned long long)offset, nbytes, loc, e->size);
    size_t es = ductile_dtype_size((ductile_dtype)t->dtype);
    if (nbytes && offset % es == 0) {   /* the mapping is page-aligned */
        t->data = e->data + offset;
        return DUCTILE_OK;
    }
    void *copy = dt_arena_alloc(&im->net->arena, nbytes);
    if (!copy) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "tensor '%s': out of memory (%zu bytes)", tn, nbytes);
    if (nbytes) memcpy(copy, e->data + offset, nbytes);
    t->data = copy;
    return DUCTILE_OK;
}
