/* Graph passes the builder runs on a working copy of the user's network (which it only reads). */
#ifndef DT_PASSES_H
#define DT_PASSES_H

#include "graph/network.h"

/* A new network holding, in execution order, only the layers the outputs need (a tensor
 * with data needs no producer) and only the tensors those layers use, plus every input and
 * output. Tensors and layers are new; names, attributes and constant data are shared with
 * `src`, which must outlive the copy. */
ductile_status dt_pass_extract(const ductile_network *src, ductile_network **out);

/* Computes at build time every layer whose inputs are all constants (and which writes no
 * network output); its outputs become constants whose data `net` owns. Run dt_pass_extract
 * afterwards to drop the folded layers. */
ductile_status dt_pass_fold_constants(ductile_network *net);

/* Common subexpressions (builder/cse.c): a layer with the same op, attributes and inputs
 * (the same tensors, or constants of equal value) as an earlier one is dropped and its
 * readers read the earlier one's outputs; never random ops, training Dropout, layers with
 * subgraphs, other domains' ops, or a layer whose output is a network output or read by a
 * subgraph layer. Run after dt_pass_fold_constants (the repeated constants are data then).
 * *merged (may be NULL): the layers dropped. */
ductile_status dt_pass_cse(ductile_network *net, int *merged);

/* Settles the dtype of every tensor a layer computes (builder/dtypes.c): the one the layer's
 * infer computes, written into net; a declared dtype that differs is refused
 * (DUCTILE_ERR_INVALID_ARGUMENT, naming the node, the tensor and both dtypes). *out: the
 * engine written for `target` from net with those dtypes and the (normalized) profiles. The
 * dtypes themselves are inferred on a CPU engine (the reference backend, which runs every
 * engine, eager and shape-input ones included). */
struct ductile_profile;
struct ductile_engine;
struct dt_engine_target;
ductile_status dt_pass_dtypes(ductile_network *net, const struct ductile_profile *profiles,
                              int n_profiles, const struct dt_engine_target *target,
                              struct ductile_engine **out);

#endif
