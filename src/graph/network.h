/* The network definition: the editable graph (layers, tensors, attributes) that the ONNX
 * importer fills, users edit, the builder optimizes and the engine format stores.
 *
 * Layers keep ONNX's op types and attributes as they are: one IR for import, editing,
 * serialization and execution. Everything is allocated from the network's arena and freed
 * with the network; handles given to users (tensors, layers) stay valid until then. */
#ifndef DT_NETWORK_H
#define DT_NETWORK_H

#include "ductile.h"
#include "core/arena.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DT_MAX_DIMS DUCTILE_MAX_DIMS

/* ONNX AttributeProto.AttributeType values. */
enum {
    DT_ATTR_FLOAT = 1,
    DT_ATTR_INT = 2,
    DT_ATTR_STRING = 3,
    DT_ATTR_TENSOR = 4,
    DT_ATTR_GRAPH = 5,        /* a subgraph (If, Loop, Scan): dt_attr.g */
    DT_ATTR_FLOATS = 6,
    DT_ATTR_INTS = 7,
    DT_ATTR_STRINGS = 8
};

typedef struct dt_attr {
    const char *name;
    int type;                 /* DT_ATTR_* */
    float f;                  /* FLOAT */
    int64_t i;                /* INT */
    const char *s;            /* STRING (NUL-terminated copy) */
    size_t s_len;
    int64_t n;                /* element count for FLOATS, INTS, STRINGS */
    const float *floats;
    const int64_t *ints;
    const char **strings;
    struct ductile_tensor *t; /* TENSOR: a constant not listed in the network's tensors */
    /* GRAPH: a nested network, kept alive by the network holding the layer (dt_network_keep).
     * Its inputs are the ONNX graph's formal inputs followed by its n_captured captures:
     * tensors of an enclosing scope it reads, named as there. The layer lists the enclosing
     * scope's tensors among its inputs too (graph/subgraph.h), so order, liveness and memory
     * planning see every read. */
    struct ductile_network *g;
} dt_attr;

struct ductile_tensor {
    const char *name;
    int dtype;                          /* ductile_dtype */
    int rank;                           /* -1: unknown */
    int64_t dims[DT_MAX_DIMS];          /* -1: dynamic or unknown */
    const char *dim_sym[DT_MAX_DIMS];   /* symbolic name of a dynamic dim, or NULL */
    /* Network inputs: overridden[i] once ductile_network_set_input_dims has set dim i;
     * declared[i] is then what the model declared for it (-1: dynamic). A fixed declared size
     * is where the build's tie check starts when it moves the dim (builder/dim_ties.c). */
    bool overridden[DT_MAX_DIMS];
    int64_t declared[DT_MAX_DIMS];
    int index;                          /* position in network->tensors, -1 for attr tensors */
    struct ductile_layer *producer;     /* NULL for inputs and constants */
    const void *data;                   /* constant value (initializer, folded), or NULL;
                                           aligned for its dtype; nbytes = count * size */
    size_t nbytes;
    bool is_input;
    bool is_output;
    int kind;                           /* ductile_value_kind: a tensor (0), a sequence or an
                                           optional; dtype is then the element dtype and rank 0 */
};

struct ductile_layer {
    const char *name;
    const char *op_type;
    const char *domain;     /* "" for the default ONNX domain */
    int opset;              /* opset version of the layer's domain */
    int index;              /* position in network->layers */
    int n_in, n_out;
    struct ductile_tensor **in;   /* in[i] == NULL: an omitted optional input */
    struct ductile_tensor **out;
    int n_attr;
    dt_attr *attrs;
};

/* Something the network keeps alive (a file mapping, a copied buffer) and releases. */
typedef struct dt_resource {
    struct dt_resource *next;
    void (*release)(void *ptr, size_t size);
    void *ptr;
    size_t size;
} dt_resource;

struct ductile_network {
    dt_arena arena;
    ductile_tensor **tensors;
    int n_tensors, cap_tensors;
    ductile_layer **layers;
    int n_layers, cap_layers;
    ductile_tensor **inputs;
    int n_inputs, cap_inputs;
    ductile_tensor **outputs;
    int n_outputs, cap_outputs;
    int *name_index;        /* open-addressing hash of tensor names -> index, -1 = empty */
    int name_index_cap;     /* a power of two, > 2 * n_tensors */
    int opset;              /* default-domain opset of the model (0 if none) */
    int next_auto_name;     /* counter for names of layers added by editing */
    dt_resource *resources;
    struct dt_file_watch *files;  /* the files the mappings above come from (core/file.h) */
    int n_captured;         /* a subgraph: its last n_captured inputs are outer-scope tensors */
};

/* Lifecycle. */
/* DUCTILE_OK unless a file the network's mappings come from changed since parsing (the
 * builder calls it before reading constants: a truncated file would be SIGBUS). */
ductile_status dt_network_check_files(const ductile_network *net);
ductile_status dt_network_new(ductile_network **out);
void dt_network_delete(ductile_network *net);
/* Keeps ptr alive until the network is freed, then calls release(ptr, size). */
ductile_status dt_network_keep(ductile_network *net, void *ptr, size_t size,
                               void (*release)(void *, size_t));

/* Building blocks (importer, editing, engine reader). All return NULL on out-of-memory or,
 * for add_tensor, when the name is taken (check with dt_network_find first). */
ductile_tensor *dt_network_add_tensor(ductile_network *net, const char *name);
/* A new tensor named "<base>/<suffix>", or "<base>/<suffix>.<i>" with the first i that is
 * free (an edit's new tensors, named after what they stand for). */
ductile_tensor *dt_network_add_named(ductile_network *net, const char *base, const char *suffix);
ductile_layer *dt_network_add_layer(ductile_network *net, const char *op_type, const char *name,
                                    int n_in, int n_out, int n_attr);
ductile_status dt_network_add_input(ductile_network *net, ductile_tensor *t);
ductile_status dt_network_add_output(ductile_network *net, ductile_tensor *t);
ductile_tensor *dt_network_find(const ductile_network *net, const char *name);
/* Room for this many more tensors, layers, inputs and outputs (false: out of memory), so an
 * edit can reserve first and then add without failing halfway. */
bool dt_network_reserve(ductile_network *net, int tensors, int layers, int inputs, int outputs);
/* Undoes the last dt_network_add_layer and the tensors added after it (a failed edit). */
void dt_network_drop_last_layer(ductile_network *net);

/* Attributes of a layer. */
const dt_attr *dt_attr_find(const ductile_layer *L, const char *name);
int64_t dt_attr_int(const ductile_layer *L, const char *name, int64_t dflt);
float dt_attr_float(const ductile_layer *L, const char *name, float dflt);
/* STRING attribute or dflt. */
const char *dt_attr_string(const ductile_layer *L, const char *name, const char *dflt);
/* INTS attribute: returns the array and sets *n, or NULL and *n = 0 when absent. */
const int64_t *dt_attr_ints(const ductile_layer *L, const char *name, int64_t *n);
/* Whether INTS attribute `name` is absent or every value equals v (strides all 1, pads all 0). */
bool dt_attr_ints_all(const ductile_layer *L, const char *name, int64_t v);
const float *dt_attr_floats(const ductile_layer *L, const char *name, int64_t *n);

/* Element count of a constant tensor (dims all known), or -1. */
int64_t dt_tensor_count(const ductile_tensor *t);

/* "[1,9,64,64]" into buf (always NUL-terminated); returns buf. -1 dims print as the
 * symbol name when one is given, else "?". */
char *dt_format_dims(char *buf, size_t cap, const int64_t *dims, int rank,
                     const char *const *syms);

#endif
