/* The two public entry points and ModelProto. Parsing builds into a fresh network and moves
 * the result into the caller's only on success, so a failed parse leaves it empty. */
#include "onnx/onnx_internal.h"
#include "core/alloc.h"
#include "format/format.h"
#include "core/file.h"
#include "core/status.h"
#include "graph/symbolic.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define DT_EXPORT __attribute__((visibility("default")))

enum { M_IR_VERSION = 1, M_GRAPH = 7, M_OPSET_IMPORT = 8 };

bool dt_onnx_default_domain(const char *d) { return !d[0] || strcmp(d, "ai.onnx") == 0; }

int dt_onnx_opset(const dt_import *im, const char *domain)
{
    bool dflt = dt_onnx_default_domain(domain);
    for (int i = 0; i < im->n_opsets; i++)
        if (dflt ? dt_onnx_default_domain(im->opsets[i].domain) : strcmp(im->opsets[i].domain, domain) == 0)
            return im->opsets[i].version;
    return 0;
}

const char *dt_onnx_str(dt_import *im, const pb_field *f)
{
    return dt_arena_strndup(&im->net->arena, (const char *)pb_bytes(f), f->len);
}

const char *dt_onnx_tmpstr(dt_import *im, const pb_field *f)
{
    if (f->len >= im->scratch_cap) {
        size_t cap = f->len + 64;
        char *p = dt_realloc(im->scratch, cap);
        if (!p) return NULL;
        im->scratch = p;
        im->scratch_cap = cap;
    }
    memcpy(im->scratch, pb_bytes(f), f->len);
    im->scratch[f->len] = 0;
    return im->scratch;
}

static ductile_status dt_opset_entry_read(dt_import *im, const pb_field *f, dt_opset_entry *e)
{
    pb_reader r;
    pb_field g;
    bool more;
    int64_t version = 0;
    size_t version_off = f->off;
    e->domain = "";
    e->version = 0;
    DT_TRY(pb_sub(f, &dt_pb_opset, &r));
    for (;;) {
        DT_TRY(pb_next(&r, &g, &more));
        if (!more) break;
        if (g.num == 1) {
            DT_TRY(pb_expect(&g, PB_LEN));
            if (!(e->domain = dt_onnx_str(im, &g))) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory reading an opset_import domain");
        } else if (g.num == 2) {
            DT_TRY(pb_expect(&g, PB_VARINT));
            version = (int64_t)g.u;
            version_off = g.off;
        }
    }
    /* The default domain's opset decides what every op means (ops read L->opset; 0 there
     * stands for "the newest", for layers added through the API), so it must be a real one
     * that ductile knows. Other domains' nodes are refused by name, whatever their opset. */
    if (dt_onnx_default_domain(e->domain)) {
        if (version < 1)
            return dt_fail(DUCTILE_ERR_PARSE,
                           "opset_import: opset %lld of the default domain (ai.onnx) is not an "
                           "ONNX opset (expected 1..%d)", (long long)version, DT_ONNX_MAX_OPSET);
        if (version > DT_ONNX_MAX_OPSET)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                           "opset_import: the model uses opset %lld of the default domain "
                           "(ai.onnx), newer than opset %d, the newest ductile implements",
                           (long long)version, DT_ONNX_MAX_OPSET);
    } else if (version < 0 || version > 100000) {
        return dt_fail(DUCTILE_ERR_PARSE, "malformed at byte offset %zu: opset version %lld of domain '%s', "
                       "expected 0..100000", version_off, (long long)version, e->domain);
    }
    e->version = (int)version;
    return DUCTILE_OK;
}

static ductile_status dt_model(dt_import *im, const uint8_t *buf, size_t size)
{
    pb_reader r;
    pb_field g, graph = {0};
    bool more, has_graph = false;
    int n_opsets = 0;

    /* First pass: find the graph and count opsets (the graph is skipped by its length). */
    pb_init(&r, buf, size, &dt_pb_model);
    for (;;) {
        DT_TRY(pb_next(&r, &g, &more));
        if (!more) break;
        if (g.num == M_GRAPH) {
            DT_TRY(pb_expect(&g, PB_LEN));
            graph = g;
            has_graph = true;
        } else if (g.num == M_OPSET_IMPORT) {
            DT_TRY(pb_expect(&g, PB_LEN));
            n_opsets++;
        } else if (g.num == M_IR_VERSION) {
            /* A newer IR may change what fields mean; older ones (and none) read as ONNX's. */
            DT_TRY(pb_expect(&g, PB_VARINT));
            int64_t v = (int64_t)g.u;
            if (v < 0)
                return dt_fail(DUCTILE_ERR_PARSE, "malformed at byte offset %zu: ir_version %lld is negative",
                               g.off, (long long)v);
            if (v > DT_ONNX_MAX_IR_VERSION)
                return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                               "ir_version %lld is newer than IR version %d, the newest the ONNX "
                               "importer reads", (long long)v, DT_ONNX_MAX_IR_VERSION);
        }
    }
    if (!has_graph) return dt_fail(DUCTILE_ERR_PARSE, "the model has no graph (ModelProto field 7)");
    /* A file cut right after the graph still parses as a protobuf; opset_import tells. */
    if (!n_opsets) return dt_fail(DUCTILE_ERR_PARSE, "the model has no opset_import (ModelProto field 8)");

    im->opsets = dt_arena_alloc(&im->net->arena, (size_t)n_opsets * sizeof *im->opsets);
    if (!im->opsets) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for %d opset_import entries", n_opsets);
    pb_init(&r, buf, size, &dt_pb_model);
    for (;;) {
        DT_TRY(pb_next(&r, &g, &more));
        if (!more) break;
        if (g.num == M_OPSET_IMPORT) DT_TRY(dt_opset_entry_read(im, &g, &im->opsets[im->n_opsets++]));
    }
    im->net->opset = dt_onnx_opset(im, "");
    /* graph.from is &r, re-initialized above over the same buffer: still valid. */
    return dt_onnx_graph(im, &graph);
}

/* Moves the network built in tmp into the caller's network on success; frees tmp. */
static ductile_status dt_finish(ductile_network *network, ductile_network *tmp, ductile_status s)
{
    if (s == DUCTILE_OK) {
        ductile_network old = *network;
        *network = *tmp;
        *tmp = old;
    }
    dt_network_delete(tmp);
    return s;
}

static ductile_status dt_import_run(ductile_network *tmp, const uint8_t *buf, size_t size,
                                    const char *dir)
{
    /* A saved engine handed to the parser would fail deep in the wire format ("wire type 4");
     * its magic can never start a ModelProto ('D' is field 8 with wire type 4, a group). */
    if (size >= sizeof DT_ENGINE_MAGIC && memcmp(buf, DT_ENGINE_MAGIC, sizeof DT_ENGINE_MAGIC) == 0)
        return dt_fail(DUCTILE_ERR_PARSE, "this is a ductile engine file (magic \"DUCTILE\" at byte offset 0), "
                       "not an ONNX model: load it with ductile_engine_load_file (Python: ductile.load_engine, "
                       "CLI: --loadEngine)");
    dt_import im = {0};
    im.net = tmp;
    im.dir = dir;
    ductile_status s = dt_model(&im, buf, size);
    /* Symbolic shapes are annotations: only running out of memory fails the parse. */
    if (s == DUCTILE_OK && dt_symbolic_infer(tmp) == DUCTILE_ERR_OUT_OF_MEMORY) s = DUCTILE_ERR_OUT_OF_MEMORY;
    dt_names_free(&im.names);
    dt_free(im.scratch);
    return s;
}

static ductile_status dt_check_empty(const ductile_network *network, const char *fn)
{
    if (!network) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "%s: network is NULL", fn);
    if (network->n_layers || network->n_tensors)
        return dt_fail(DUCTILE_ERR_STATE, "%s: the network is not empty (%d layers, %d tensors); parse into a new network",
                       fn, network->n_layers, network->n_tensors);
    return DUCTILE_OK;
}

static void dt_release_free(void *p, size_t n) { dt_free(p); }
static void dt_release_unmap(void *p, size_t n) { munmap(p, n); }

DT_EXPORT ductile_status ductile_onnx_parse_memory(ductile_network *network, const void *data, size_t size)
{
    DT_TRY(dt_check_empty(network, "ductile_onnx_parse_memory"));
    if (!data && size) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "ductile_onnx_parse_memory: data is NULL");
    ductile_network *tmp;
    DT_TRY(dt_network_new(&tmp));
    /* The copy is dt_malloc'd, so raw tensor bytes keep the file's alignment mod 16. */
    void *copy = dt_malloc(size ? size : 1);
    if (!copy) {
        dt_network_delete(tmp);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "ductile_onnx_parse_memory: out of memory copying %zu bytes", size);
    }
    if (size) memcpy(copy, data, size);
    ductile_status s = dt_network_keep(tmp, copy, size, dt_release_free);
    if (s == DUCTILE_OK) s = dt_import_run(tmp, copy, size, NULL);
    return dt_finish(network, tmp, s);
}

DT_EXPORT ductile_status ductile_onnx_parse_file(ductile_network *network, const char *path)
{
    DT_TRY(dt_check_empty(network, "ductile_onnx_parse_file"));
    if (!path) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "ductile_onnx_parse_file: path is NULL");
    int fd;
    struct stat st;
    DT_TRY(dt_file_open_read(path, NULL, &fd, &st));
    size_t size = (size_t)st.st_size;
    if (size == 0) {
        close(fd);
        return dt_fail(DUCTILE_ERR_PARSE, "'%s' is empty (0 bytes), not an ONNX model", path);
    }
    void *map = NULL;
    if (size) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int err = errno;
            close(fd);
            return dt_fail(DUCTILE_ERR_IO, "cannot map '%s': %s", path, strerror(err));
        }
    }
    close(fd);

    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char *dir = slash ? dt_strndup(path, (size_t)(slash - path) + 1) : dt_strdup(".");
    ductile_network *tmp = NULL;
    ductile_status s = dir ? dt_network_new(&tmp)
                           : dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory parsing '%s'", path);
    if (s != DUCTILE_OK) {
        if (map) munmap(map, size);
        dt_free(dir);
        return s;
    }
    if (map) s = dt_network_keep(tmp, map, size, dt_release_unmap);   /* frees map on failure */
    /* Initializers point into the mapping; the build refuses to read it if the file shrank. */
    if (s == DUCTILE_OK && map) s = dt_file_watch_add(&tmp->files, dir, base, "model file", &st);
    if (s == DUCTILE_OK) s = dt_import_run(tmp, map, size, dir);
    if (s != DUCTILE_OK) dt_fail_prefix(s, "%s", base);
    dt_free(dir);
    return dt_finish(network, tmp, s);
}
