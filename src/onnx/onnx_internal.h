/* Shared state and steps of the ONNX importer (src/onnx/). import.c drives: ModelProto ->
 * GraphProto -> initializers, inputs, nodes, value_info, outputs, each in its own file. */
#ifndef DT_ONNX_INTERNAL_H
#define DT_ONNX_INTERNAL_H

#include "graph/network.h"
#include "onnx/names.h"
#include "onnx/pb.h"

#include <stdbool.h>

extern const pb_msgdesc dt_pb_model, dt_pb_graph, dt_pb_node, dt_pb_attr, dt_pb_tensor,
    dt_pb_value_info, dt_pb_type, dt_pb_type_tensor, dt_pb_shape, dt_pb_dim, dt_pb_opset,
    dt_pb_entry;
extern const pb_msgdesc dt_pb_type_sequence, dt_pb_type_optional;

/* The newest opset of the default domain and the newest IR version ductile implements: those of
 * the onnx release whose backend tests ductile is judged by (opset 28 cases included; what
 * fails is listed in tests/conformance/expected_failures.txt). A newer model is refused by
 * name rather than read with older semantics. */
#define DT_ONNX_MAX_OPSET 28
#define DT_ONNX_MAX_IR_VERSION 14

typedef struct dt_opset_entry {
    const char *domain;     /* "" for the default domain ("ai.onnx" is folded into it) */
    int version;
} dt_opset_entry;

/* An external data file mapped once and shared by the tensors that point into it. */
typedef struct dt_ext_file {
    struct dt_ext_file *next;
    char *location;
    const uint8_t *data;
    size_t size;
} dt_ext_file;

typedef struct dt_import {
    ductile_network *net;       /* the network being built (a fresh one) */
    const char *dir;            /* the model's folder for external data; NULL: from memory */
    dt_names names;             /* tensor name -> tensor, for fast lookup */
    dt_opset_entry *opsets;     /* in net->arena */
    int n_opsets;
    dt_ext_file *ext;           /* external files opened so far (kept by net) */
    char *scratch;              /* dt_malloc'd buffer for names looked up, not kept */
    size_t scratch_cap;
    struct dt_import *parent;   /* a subgraph's: the enclosing graph's import (else NULL) */
    int depth;                  /* nesting depth of subgraphs (0: the model's graph) */
} dt_import;

/* The opset of a domain from opset_import, 0 if absent. */
int dt_onnx_opset(const dt_import *im, const char *domain);
/* True for "" and "ai.onnx". */
bool dt_onnx_default_domain(const char *domain);

/* Decodes a TensorProto into t (name, dtype, rank, dims, data, nbytes); t->name is set from
 * the proto unless name_override is given. Data is zero-copy when raw and aligned. */
ductile_status dt_onnx_tensor(dt_import *im, const pb_field *f, const char *name_override,
                              ductile_tensor *t);

/* Points t->data at external bytes (data_location = EXTERNAL), reading the external_data
 * entries of the TensorProto f. nbytes is the size the dims and dtype need. */
ductile_status dt_onnx_external(dt_import *im, ductile_tensor *t, const pb_field *f,
                                size_t nbytes);

/* A declared tensor type of a ValueInfoProto. */
typedef struct dt_vtype {
    const char *name;           /* arena copy */
    bool is_tensor;             /* a tensor_type is present */
    int elem;                   /* 0 if absent */
    int rank;                   /* -1: no shape */
    int64_t dims[DT_MAX_DIMS];
    const char *syms[DT_MAX_DIMS];
    int raw_rank;               /* rank as declared, may exceed DT_MAX_DIMS */
    int kind;                   /* ductile_value_kind of a sequence or optional of tensors (elem:
                                   the element dtype; is_tensor false); -1: another type */
    bool has_type;              /* a type is declared at all (subgraph inputs may omit it) */
} dt_vtype;
/* A TypeProto field (an attribute's `tp`): kind and element dtype as dt_onnx_value_info reads
 * them. */
ductile_status dt_onnx_type_proto(dt_import *im, const pb_field *f, dt_vtype *out);
ductile_status dt_onnx_value_info(dt_import *im, const pb_field *f, dt_vtype *out);

/* Fills the network from the GraphProto field gf of the model. */
ductile_status dt_onnx_graph(dt_import *im, const pb_field *gf);

/* Adds the layer (or, for Constant, the constant tensor) of a NodeProto; index: its position
 * in the graph, for generated names. */
ductile_status dt_onnx_node(dt_import *im, const pb_field *f, int index);

/* A tensor by name as a node of this graph sees it: one of its own, else (subgraphs) a
 * tensor of an enclosing scope, which becomes a captured input of this graph (and of every
 * graph between); NULL when no scope has it or out of memory (*oom set). */
ductile_tensor *dt_onnx_resolve(dt_import *im, const char *name, bool *oom);

/* Parses the GraphProto of attribute a (field gf) into a nested network: a->g. */
ductile_status dt_onnx_subgraph(dt_import *im, const pb_field *gf, dt_attr *a);

/* Appends to L's inputs the enclosing-scope tensors its GRAPH attributes capture (each once,
 * in attribute order), resolved in im's scope. */
ductile_status dt_onnx_implicit_inputs(dt_import *im, ductile_layer *L);

/* Copies a byte string into the network's arena as a NUL-terminated string; NULL: no memory. */
const char *dt_onnx_str(dt_import *im, const pb_field *f);
/* The same into im->scratch, valid until the next call; NULL: no memory. */
const char *dt_onnx_tmpstr(dt_import *im, const pb_field *f);

#endif
