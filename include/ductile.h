/*
 * ductile.h — the public C API of ductile, a dynamic-shape inference engine for ONNX models.
 *
 * This header is the specification. Everything a caller may rely on is written here.
 *
 * Object model (mirrors TensorRT):
 *
 *   1. ductile_builder_create            a builder: the factory for the objects below.
 *   2. ductile_network_create            an empty network definition (editable graph),
 *      ductile_onnx_parse_file/_memory   ... filled from an ONNX model.
 *   3. ductile_network_add_* / mark / unmark   edit it (optional).
 *   4. ductile_profile_create + ductile_profile_set_shape    min/opt/max per dynamic input.
 *   5. ductile_config_create + ductile_config_add_profile    builder options and profiles.
 *   6. ductile_builder_build             network + config -> engine (immutable).
 *      ductile_engine_save / _serialize  engine -> file or bytes;
 *      ductile_engine_load_file/_memory  file or bytes -> engine.
 *   7. ductile_context_create            per-thread execution state on an engine:
 *      set_profile, set_input_shape, get_tensor_shape, set_tensor_address, execute.
 *   8. ductile_*_free                    every create has its free; free(NULL) is a no-op.
 *
 * Errors. Every call that can fail returns a ductile_status. DUCTILE_OK is 0. On failure the
 * message of the failure is kept for the calling thread and read with ductile_last_error():
 * it names the input, node, dimension or byte offset at fault and what was expected. A call
 * never aborts or exits the process on bad input.
 *
 * Threads. A builder, network, profile and config are used by one thread at a time. An engine
 * is immutable once built or loaded: any number of threads may share it and create contexts
 * on it. A context is used by one thread at a time (create one context per thread); a call
 * that overlaps another call on the same context is refused with DUCTILE_ERR_STATE ("a
 * context belongs to one thread at a time"), never run, but calls that merely interleave are
 * not detected, and freeing a context in use is undefined.
 *
 * Ownership. "Owned by X" means the pointer stays valid until X is freed or changed as said;
 * the caller must not free it. Strings returned by the library are NUL-terminated UTF-8.
 * Memory the caller owns (ductile_engine_serialize's bytes) is released with ductile_free,
 * never free(). Every allocation goes through ductile_set_allocator's allocator (the C
 * library's by default); an allocation that fails gives DUCTILE_ERR_OUT_OF_MEMORY and leaves
 * every existing object as it was.
 */
#ifndef DUCTILE_H
#define DUCTILE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility; everything declared here is its exported API. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

#define DUCTILE_VERSION_MAJOR 0
#define DUCTILE_VERSION_MINOR 1
#define DUCTILE_VERSION_PATCH 0

/* ---------------------------------------------------------------------------------------- */
/* Status                                                                                     */
/* ---------------------------------------------------------------------------------------- */

/* Status codes. The numeric values are fixed and will not change. */
typedef enum ductile_status {
    DUCTILE_OK = 0,
    DUCTILE_ERR_INVALID_ARGUMENT = 1, /* NULL where not allowed, bad index, bad enum value   */
    DUCTILE_ERR_PARSE = 2,            /* malformed ONNX model (truncated, bad wire data)     */
    DUCTILE_ERR_UNSUPPORTED = 3,      /* an op, attribute, dtype or feature not implemented  */
    DUCTILE_ERR_SHAPE = 4,            /* shapes that do not fit (inference, set_input_shape) */
    DUCTILE_ERR_PROFILE = 5,          /* an optimization profile that is invalid or does not
                                         fit the model                                       */
    DUCTILE_ERR_OUT_OF_MEMORY = 6,
    DUCTILE_ERR_IO = 7,               /* a file could not be opened, read or written         */
    DUCTILE_ERR_FORMAT = 8,           /* an engine file that is corrupted or of another
                                         version                                             */
    DUCTILE_ERR_STATE = 9,            /* a call made at the wrong point of the life cycle    */
    DUCTILE_ERR_INTERNAL = 10         /* a bug in ductile; the message says where            */
} ductile_status;

/* The name of a status code ("DUCTILE_ERR_SHAPE"); "DUCTILE_UNKNOWN_STATUS" for others.
 * Static storage. */
const char *ductile_status_name(ductile_status status);

/* The message of the most recent failed call made by this thread, or "" if none.
 * Owned by the library; valid until the next failing call on this thread. */
const char *ductile_last_error(void);

/* "0.1.0" */
const char *ductile_version(void);

/* ---------------------------------------------------------------------------------------- */
/* Memory                                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* A replacement for the C library's allocator (as SQLite's SQLITE_CONFIG_MALLOC).
 *   alloc: at least size bytes aligned to alignment (a power of two, >= 16), or NULL when out
 *          of memory; the call that needed the memory then fails with
 *          DUCTILE_ERR_OUT_OF_MEMORY and a message naming what was being allocated, and every
 *          object that existed before stays usable. size includes a small header the library
 *          keeps in front of each block (its size), which is why free needs none.
 *   free:  releases a pointer alloc returned (never NULL).
 *   user:  passed to both unchanged.
 * alloc and free may be called from any thread that calls into the library and from the
 * worker threads of a context, at once: they must be thread-safe. */
typedef struct ductile_allocator {
    void *(*alloc)(void *user, size_t size, size_t alignment);
    void (*free)(void *user, void *ptr);
    void *user;
} ductile_allocator;

/* Makes every allocation of the library go through *allocator (copied); NULL restores the C
 * library's. Only while no memory of the library is live: every ductile object freed and every
 * buffer of ductile_engine_serialize released (DUCTILE_ERR_STATE otherwise, with the count of
 * live blocks). Not thread-safe: call it before other threads use the library. alloc or free
 * NULL: DUCTILE_ERR_INVALID_ARGUMENT. Thread stacks (pthread) and the file mappings (mmap) of
 * a parsed model and its external data are the operating system's and do not go through it. */
ductile_status ductile_set_allocator(const ductile_allocator *allocator);

/* ---------------------------------------------------------------------------------------- */
/* Types and dims                                                                            */
/* ---------------------------------------------------------------------------------------- */

/* Element types. Values are those of ONNX's TensorProto.DataType.
 * The 8-, 4- and 2-bit types (17..26) take one byte per element in every ductile buffer
 * (as numpy's ml_dtypes holds them): float8 bit patterns, and 4-bit and 2-bit values in the
 * low bits of their byte. Only an ONNX file packs 4-bit and 2-bit types (low bits first); the
 * importer unpacks them. */
typedef enum ductile_dtype {
    DUCTILE_UNDEFINED = 0,
    DUCTILE_FLOAT32 = 1,
    DUCTILE_UINT8 = 2,
    DUCTILE_INT8 = 3,
    DUCTILE_UINT16 = 4,
    DUCTILE_INT16 = 5,
    DUCTILE_INT32 = 6,
    DUCTILE_INT64 = 7,
    DUCTILE_STRING = 8,
    DUCTILE_BOOL = 9,
    DUCTILE_FLOAT16 = 10,
    DUCTILE_FLOAT64 = 11,
    DUCTILE_UINT32 = 12,
    DUCTILE_UINT64 = 13,
    DUCTILE_BFLOAT16 = 16,
    DUCTILE_FLOAT8E4M3FN = 17,       /* no inf; NaN 0x7f/0xff; max 448                        */
    DUCTILE_FLOAT8E4M3FNUZ = 18,     /* no inf, no -0; NaN 0x80; max 240                      */
    DUCTILE_FLOAT8E5M2 = 19,         /* IEEE-like: inf 0x7c; max 57344                        */
    DUCTILE_FLOAT8E5M2FNUZ = 20,     /* no inf, no -0; NaN 0x80; max 57344                    */
    DUCTILE_UINT4 = 21,              /* 0..15                                                 */
    DUCTILE_INT4 = 22,               /* -8..7                                                 */
    DUCTILE_FLOAT4E2M1 = 23,         /* no inf, no NaN; max 6                                 */
    DUCTILE_FLOAT8E8M0 = 24,         /* 2^(bits-127), unsigned; NaN 0xff                      */
    DUCTILE_UINT2 = 25,              /* 0..3                                                  */
    DUCTILE_INT2 = 26                /* -2..1                                                 */
} ductile_dtype;

/* "float32", "int64", ...; "undefined" for others. Static storage. */
const char *ductile_dtype_name(ductile_dtype dtype);
/* Bytes per element: for STRING, sizeof(ductile_string); 0 for unknown types. */
size_t ductile_dtype_size(ductile_dtype dtype);

/* One element of a STRING tensor: a view of `length` bytes of UTF-8 (not NUL-terminated;
 * data may be NULL when length is 0). A string tensor's buffer is an array of these, one per
 * element, set and read through the same calls as other tensors (set_tensor_address,
 * get_tensor_address).
 *   1. Inputs: the caller owns the bytes and keeps them unchanged until execute returns.
 *   2. Outputs: the views point into memory the context owns (bytes a string op made),
 *      into the engine's constants, or into an input's bytes (Identity, Gather, StringSplit
 *      pass views through); valid until the next execute on the context, a change of shapes
 *      or profile, or the context is freed (and, for views of inputs, as long as those
 *      bytes). Copy them out before then.
 * String tensors live in host memory and their ops run on the CPU, on every backend: a CUDA
 * engine refuses a device pointer bound to one. */
typedef struct ductile_string {
    const char *data;
    size_t length;
} ductile_string;

#define DUCTILE_MAX_DIMS 8

/* A shape. In a network definition a dim of -1 is dynamic (see ductile_tensor_dim_name). */
typedef struct ductile_dims {
    int32_t nb_dims;                 /* 0 <= nb_dims <= DUCTILE_MAX_DIMS */
    int64_t d[DUCTILE_MAX_DIMS];
} ductile_dims;

/* Opaque handles. */
typedef struct ductile_builder ductile_builder;
typedef struct ductile_network ductile_network;
typedef struct ductile_tensor ductile_tensor;
typedef struct ductile_layer ductile_layer;
typedef struct ductile_profile ductile_profile;
typedef struct ductile_config ductile_config;
typedef struct ductile_engine ductile_engine;
typedef struct ductile_context ductile_context;

/* ---------------------------------------------------------------------------------------- */
/* Builder                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* Constructs a builder. *out is set to NULL on failure. Free with ductile_builder_free. */
ductile_status ductile_builder_create(ductile_builder **out);
/* Destroys a builder. Networks, profiles and configs it created stay valid. NULL: no-op. */
void ductile_builder_free(ductile_builder *builder);

/* ---------------------------------------------------------------------------------------- */
/* Network definition                                                                        */
/* ---------------------------------------------------------------------------------------- */

/* Constructs an empty network. Free with ductile_network_free. */
ductile_status ductile_network_create(ductile_builder *builder, ductile_network **out);
/* Destroys a network and every tensor and layer handle it gave out. NULL: no-op. */
void ductile_network_free(ductile_network *network);

/* Parses an ONNX model (ModelProto) into an empty network.
 *   1. The file is mapped, not copied; initializers are used in place where their bytes are
 *      stored raw and aligned, so weights are not held twice. The mapping lives as long as
 *      the network: the model file and its external data must not change until the network
 *      is built (ductile_builder_build refuses, naming the file, one that changed since).
 *   2. External data files are read only from inside the folder that holds the model file;
 *      a location with ".." or an absolute path is refused, and so is a symlink that leads
 *      out of the folder (symlinks that stay inside are followed).
 *   A path (the model's or external data's) that is not a regular file, such as a FIFO or a
 *   directory, is refused with a message saying what it is; no open blocks.
 *   3. Symbolic dims keep their names (ductile_tensor_dim_name).
 *   4. An unsupported op or attribute is refused with a message naming the node, its op type
 *      and opset, and what is unsupported.
 * The network must be empty (DUCTILE_ERR_STATE otherwise). On failure it is left empty. */
ductile_status ductile_onnx_parse_file(ductile_network *network, const char *path);
/* As ductile_onnx_parse_file, from bytes. The bytes are copied; the caller keeps ownership of
 * data. External data is refused (there is no folder to read it from). */
ductile_status ductile_onnx_parse_memory(ductile_network *network, const void *data, size_t size);

/* Adds a network input (TensorRT's addInput). dims->d[i] = -1 marks a dynamic dim; dim_names
 * (may be NULL, or hold NULL entries) names dynamic dims so inputs can share them ("batch").
 * *out (may be NULL) is the new tensor, owned by the network. The name must be new. */
ductile_status ductile_network_add_input(ductile_network *network, const char *name,
                                         ductile_dtype dtype, const ductile_dims *dims,
                                         const char *const *dim_names, ductile_tensor **out);

/* Overrides the declared shape of a network input (TensorRT's ITensor::setDimensions; in
 * Python, network.get_input(0).shape = (-1, 1, -1, -1); on the command line, --dynamicDims).
 *   1. dims->nb_dims equals the input's rank (any rank when the model leaves it unknown);
 *      every d[i] >= -1.
 *   2. d[i] = -1 makes dim i dynamic. A dim the model fixes gets the symbol "<input>_dim<i>"
 *      (characters other than letters, digits and '_' become '_'; "_2", "_3", ... is appended
 *      when another input already uses the name); a dim already dynamic keeps its symbol.
 *      d[i] >= 0 fixes dim i to that size.
 *   3. Without an override a dim the model fixes stays fixed: a profile that ranges it is
 *      refused at build time (see ductile_builder_build).
 *   4. At build time every overridden dim is moved alone from the model's size to the
 *      profile's min and max; a node whose constant still holds the model's size (a Reshape
 *      whose -1 turns the extra rows into batch, a Slice or Resize that keeps the old size)
 *      fails the build, naming the node, the constant, the input dim and the range. Such a
 *      model must be exported again with that dim dynamic.
 *   5. The symbolic dims of every layer output are inferred again (ductile_tensor_dim_name).
 * The input must belong to the network (INVALID_ARGUMENT otherwise). Handles stay valid. */
ductile_status ductile_network_set_input_dims(ductile_network *network, ductile_tensor *input,
                                              const ductile_dims *dims);

/* Counts and handles. Handles are owned by the network and valid until it is freed.
 * An index out of range gives NULL. */
int32_t ductile_network_num_inputs(const ductile_network *network);
int32_t ductile_network_num_outputs(const ductile_network *network);
int32_t ductile_network_num_layers(const ductile_network *network);
ductile_tensor *ductile_network_get_input(ductile_network *network, int32_t index);
ductile_tensor *ductile_network_get_output(ductile_network *network, int32_t index);
ductile_layer *ductile_network_get_layer(ductile_network *network, int32_t index);
/* The tensor of that name, or NULL. */
ductile_tensor *ductile_network_find_tensor(ductile_network *network, const char *name);

/* Makes a tensor a network output (appended to the output list). Marking an output twice is
 * a no-op. A network input cannot be an output (INVALID_ARGUMENT); a constant can (execute
 * copies it into the output's buffer). */
ductile_status ductile_network_mark_output(ductile_network *network, ductile_tensor *tensor);
/* Removes a tensor from the output list (it stays in the graph). Not an output: INVALID_ARGUMENT. */
ductile_status ductile_network_unmark_output(ductile_network *network, ductile_tensor *tensor);

typedef enum ductile_activation {
    DUCTILE_ACTIVATION_RELU = 0,
    DUCTILE_ACTIVATION_SIGMOID = 1,
    DUCTILE_ACTIVATION_TANH = 2
} ductile_activation;

typedef enum ductile_elementwise {
    DUCTILE_ELEMENTWISE_SUM = 0,   /* a + b, with ONNX (numpy) broadcasting */
    DUCTILE_ELEMENTWISE_PROD = 1,  /* a * b */
    DUCTILE_ELEMENTWISE_SUB = 2,   /* a - b */
    DUCTILE_ELEMENTWISE_DIV = 3,   /* a / b */
    DUCTILE_ELEMENTWISE_MAX = 4,
    DUCTILE_ELEMENTWISE_MIN = 5
} ductile_elementwise;

/* Adds a layer applying an activation to a float tensor of this network. *out is the new
 * layer, owned by the network; its output 0 is a new tensor named "<layer name>_output". */
ductile_status ductile_network_add_activation(ductile_network *network, ductile_tensor *input,
                                              ductile_activation type, ductile_layer **out);
/* Adds a layer combining two tensors of this network elementwise (same dtype). */
ductile_status ductile_network_add_elementwise(ductile_network *network, ductile_tensor *a,
                                               ductile_tensor *b, ductile_elementwise op,
                                               ductile_layer **out);

/* Layer queries. Strings owned by the network. Index out of range: NULL. */
const char *ductile_layer_name(const ductile_layer *layer);
const char *ductile_layer_op_type(const ductile_layer *layer);  /* ONNX op type, "Conv" */
int32_t ductile_layer_num_inputs(const ductile_layer *layer);
int32_t ductile_layer_num_outputs(const ductile_layer *layer);
ductile_tensor *ductile_layer_get_input(ductile_layer *layer, int32_t index);
ductile_tensor *ductile_layer_get_output(ductile_layer *layer, int32_t index);

/* Tensor queries. Strings owned by the network. */
const char *ductile_tensor_name(const ductile_tensor *tensor);
ductile_dtype ductile_tensor_dtype(const ductile_tensor *tensor);
/* Declared shape: nb_dims = -1 if the rank is unknown; a dynamic dim is -1. */
ductile_dims ductile_tensor_dims(const ductile_tensor *tensor);
/* The symbolic name of dim i ("batch"), or NULL when the dim is fixed or unnamed. */
const char *ductile_tensor_dim_name(const ductile_tensor *tensor, int32_t i);
/* 1 for a network input, 0 otherwise. */
int ductile_tensor_is_input(const ductile_tensor *tensor);
/* 1 for a network output, 0 otherwise. */
int ductile_tensor_is_output(const ductile_tensor *tensor);

/* ---------------------------------------------------------------------------------------- */
/* Optimization profiles and builder config                                                  */
/* ---------------------------------------------------------------------------------------- */

/* Constructs an empty optimization profile. Free with ductile_profile_free. */
ductile_status ductile_profile_create(ductile_builder *builder, ductile_profile **out);
void ductile_profile_free(ductile_profile *profile);

/* Sets the shape range of one input, replacing an earlier one for that name.
 *   1. min, opt and max have the same nb_dims, 1..DUCTILE_MAX_DIMS.
 *   2. 0 <= min.d[i] <= opt.d[i] <= max.d[i] for every i.
 * Checked here; that the name and rank match the network is checked at build time. */
ductile_status ductile_profile_set_shape(ductile_profile *profile, const char *input_name,
                                         const ductile_dims *min, const ductile_dims *opt,
                                         const ductile_dims *max);

/* Constructs a builder config with defaults: no profile, workspace = the backend's memory, float32,
 * threads = number of online CPUs. Free with ductile_config_free. */
ductile_status ductile_config_create(ductile_builder *builder, ductile_config **out);
void ductile_config_free(ductile_config *config);

/* Copies a profile into the config; *index (may be NULL) is its index in the engine. */
ductile_status ductile_config_add_profile(ductile_config *config, const ductile_profile *profile,
                                          int32_t *index);
/* Upper bound in bytes for a context's activation memory (the arena its intermediate tensors
 * share). The build plans it at min, opt and max of every profile and refuses a profile that
 * needs more (DUCTILE_ERR_PROFILE, naming the bytes and the corner). 0 (the default): the
 * backend's memory (the CPU: the machine's physical memory; CUDA: the GPU's global memory),
 * so an absurd max fails the build rather than the first run. Engines whose shapes follow from input values (shape inputs,
 * NonZero) are not checked. */
ductile_status ductile_config_set_workspace(ductile_config *config, uint64_t bytes);

/* The worker threads the engine's contexts will run with (ductile_context_set_threads): the
 * CPU's tactics are timed on this many, since the fastest kernel of a layer can differ between
 * 1 and 2 threads. 1..64; 0 (the default): the number of online CPUs. Contexts may still run
 * with any count. */
ductile_status ductile_config_set_threads(ductile_config *config, int32_t threads);

/* Precision. Float32 is the default everywhere, with TF32 off.
 *   FP16 / BF16: mixed precision on a backend with half kernels (CUDA): layers that have a
 *     half kernel compute on float16 (bfloat16) tensors with float32 accumulation; the others
 *     stay float32 with casts around them. Engine inputs and outputs stay float32. Both set:
 *     float16. The CPU backend: BF16 on a CPU with AVX512-BF16 makes the GEMM convolutions
 *     compute in bfloat16 with float32 accumulation, tensors staying float32 (--dumpLayerInfo
 *     shows "BF16": true; its float32 layers' Sigmoid and SiLU take the same lean form as the
 *     bfloat16 ones, relative error 1.3e-4: "LeanActivation": true); such an engine loads only
 *     on a CPU with AVX512-BF16. FP16, and BF16
 *     on a CPU without it, are accepted and build float32 (ductile_config_has_precision says
 *     which). DUCTILE_CPU_BF16=0 in the environment treats the CPU as lacking AVX512-BF16.
 *   TF32: float32 convolutions and matmuls may use TF32 tensor cores (CUDA; the choice is
 *     stored in the engine's layers). No effect on the CPU. */
typedef enum ductile_builder_flag {
    DUCTILE_FLAG_FP16 = 0,
    DUCTILE_FLAG_BF16 = 1,
    DUCTILE_FLAG_TF32 = 2
} ductile_builder_flag;
ductile_status ductile_config_set_flag(ductile_config *config, ductile_builder_flag flag, int on);
/* 1 when the config's backend (its device) computes with `flag` on this machine, 0 when the
 * flag would change nothing (TensorRT's platformHasFastFp16); 0 for a NULL config or an
 * unknown flag. */
int ductile_config_has_precision(const ductile_config *config, ductile_builder_flag flag);
/* Selects the backend the engine is built for and runs on: "cpu" (the default) or "cuda".
 *   1. An unknown name, or "cuda" in a build without the CUDA backend (make CUDA=0), is
 *      refused here with DUCTILE_ERR_INVALID_ARGUMENT / DUCTILE_ERR_UNSUPPORTED.
 *   2. The device itself is looked for at build time: with no GPU (or no driver) the build
 *      fails with DUCTILE_ERR_UNSUPPORTED and "no CUDA device found".
 *   3. A CUDA engine records the GPU it was built on (name, compute capability) and loads
 *      only on a GPU of the same compute capability. */
ductile_status ductile_config_set_device(ductile_config *config, const char *device);

/* Called by ductile_builder_build while it times tactics (the long part of a build): once per
 * layer examined, with done = layers examined so far (1..total) of the total in profile
 * `profile` (0..n_profiles-1). Runs on the building thread; must not call into the builder.
 * fn NULL (the default) turns it off. The config keeps user as given, without owning it. */
typedef void (*ductile_progress_fn)(void *user, int32_t profile, int32_t n_profiles, int32_t done,
                                    int32_t total);
ductile_status ductile_config_set_progress(ductile_config *config, ductile_progress_fn fn, void *user);

/* ---------------------------------------------------------------------------------------- */
/* Engine                                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* Builds an engine. The network and config are only read; they may be freed afterwards.
 *   1. A network input whose declared shape has a dynamic dim must be covered by every
 *      profile. A dim the model fixes stays fixed: a profile that gives it another size or
 *      a range is refused with a message naming the input, the dim, the declared size, the
 *      override (ductile_network_set_input_dims) and whether a node of the model ties the
 *      dim to its size, in which case an override is not enough.
 *   2. Inputs that share a symbolic dim name must get equal ranges for it in each profile.
 *   3. Shapes are inferred at min, opt and max of every profile; a constant in the model that
 *      contradicts a profile fails the build with a message naming the node, the constant,
 *      the input dimension and the profile range.
 *   4. The activation memory at min, opt and max of every profile fits the workspace limit
 *      (ductile_config_set_workspace).
 *   5. Every dim overridden by ductile_network_set_input_dims is moved alone from the model's
 *      size to the profile's min and max; a node whose constant ties the dim to that size
 *      fails the build, with the same naming (see ductile_network_set_input_dims).
 * A network without dynamic inputs may be built with no profile (one is made of its shapes). */
ductile_status ductile_builder_build(ductile_builder *builder, const ductile_network *network,
                                     const ductile_config *config, ductile_engine **out);

/* Writes the engine to bytes. *data is allocated through the library's allocator and owned
 * by the caller: release it with ductile_free, never free() (it does not point at the start
 * of what the allocator returned). */
ductile_status ductile_engine_serialize(const ductile_engine *engine, void **data, size_t *size);
ductile_status ductile_engine_save(const ductile_engine *engine, const char *path);
/* Reads an engine. A file of another format version, truncated or corrupted (checksum) is
 * refused with DUCTILE_ERR_FORMAT and a message naming the byte offset or field. The file is
 * read into memory: it may change once loaded. Load and save refuse a path that is not a
 * regular file (a FIFO, a directory) with DUCTILE_ERR_IO, without blocking. */
ductile_status ductile_engine_load_file(const char *path, ductile_engine **out);
ductile_status ductile_engine_load_memory(const void *data, size_t size, ductile_engine **out);
void ductile_engine_free(ductile_engine *engine);
/* Frees memory the library gave the caller (ductile_engine_serialize), through the allocator
 * that allocated it. NULL: no-op. */
void ductile_free(void *ptr);

/* I/O tensors: inputs first, in network order, then outputs. */
int32_t ductile_engine_num_io_tensors(const ductile_engine *engine);
const char *ductile_engine_io_tensor_name(const ductile_engine *engine, int32_t index);
int ductile_engine_is_input(const ductile_engine *engine, const char *name);  /* 1, 0, or -1: no such tensor */
ductile_dtype ductile_engine_tensor_dtype(const ductile_engine *engine, const char *name);
/* The dims of an I/O tensor as the network declares them (TensorRT's engine-level shape):
 * -1 where a dim is dynamic; nb_dims -1 where even the rank is unknown. A context gives the
 * concrete shape. DUCTILE_ERR_INVALID_ARGUMENT when name is no I/O tensor of the engine. */
ductile_status ductile_engine_get_tensor_dims(const ductile_engine *engine, const char *name,
                                              ductile_dims *out);
int32_t ductile_engine_num_profiles(const ductile_engine *engine);

typedef enum ductile_profile_selector {
    DUCTILE_PROFILE_MIN = 0,
    DUCTILE_PROFILE_OPT = 1,
    DUCTILE_PROFILE_MAX = 2
} ductile_profile_selector;
/* The min, opt or max shape of an input in a profile. */
ductile_status ductile_engine_get_profile_shape(const ductile_engine *engine, int32_t profile,
                                                const char *input_name,
                                                ductile_profile_selector which, ductile_dims *out);
/* A JSON description of the engine's layers (name, op type, inputs, outputs, kernel),
 * as trtexec's --dumpLayerInfo prints it. Owned by the engine. */
const char *ductile_engine_layer_info(const ductile_engine *engine);
/* The backend the engine runs on ("cpu", "cuda"; see ductile_config_set_device), or NULL for
 * a NULL engine. Static string. */
const char *ductile_engine_device(const ductile_engine *engine);
/* Where an I/O tensor's buffers are (TensorRT's getTensorLocation): the memory the context's
 * own buffer is in, and the memory a buffer bound to it must be in.
 *   1. A CPU engine: HOST for every tensor.
 *   2. A CUDA engine: DEVICE, except HOST for shape inputs (their values decide shapes),
 *      string tensors, sequences and optionals, and every I/O tensor of an engine that runs
 *      on the host ("HostEngine" in the layer info: output shapes that depend on computed
 *      data; its inputs take device memory too, copied to the host by execute).
 * -1 when the engine or the name is NULL or no I/O tensor. */
typedef enum ductile_tensor_location {
    DUCTILE_LOCATION_DEVICE = 0,
    DUCTILE_LOCATION_HOST = 1
} ductile_tensor_location;
int ductile_engine_tensor_location(const ductile_engine *engine, const char *name);

/* ---------------------------------------------------------------------------------------- */
/* Execution context                                                                         */
/* ---------------------------------------------------------------------------------------- */

/* Constructs a context on an engine. The engine must outlive the context. Profile 0 is
 * active; no input shape is set. Free with ductile_context_free. */
ductile_status ductile_context_create(const ductile_engine *engine, ductile_context **out);
void ductile_context_free(ductile_context *context);

/* Number of worker threads for execute (default: the number of online CPUs, at most 64). */
ductile_status ductile_context_set_threads(ductile_context *context, int32_t threads);

/* Selects the active profile. Input shapes set before are cleared. */
ductile_status ductile_context_set_profile(ductile_context *context, int32_t profile);
int32_t ductile_context_get_profile(const ductile_context *context);

/* Sets the shape of an input for the next executions.
 *   1. The name is an input of the engine.
 *   2. nb_dims equals the rank of the input.
 *   3. min[i] <= shape[i] <= max[i] of the active profile for every i.
 * Dims that share a symbol across inputs are checked for agreement when all inputs are set. */
ductile_status ductile_context_set_input_shape(ductile_context *context, const char *name,
                                               const ductile_dims *shape);
/* The shape of an input or output for the input shapes set. Output shapes need every input
 * shape set (DUCTILE_ERR_STATE otherwise); computing them runs the shape program. */
ductile_status ductile_context_get_tensor_shape(ductile_context *context, const char *name,
                                                ductile_dims *out);

/* Binds a caller buffer to an input or output. The caller owns it and keeps it valid and
 * large enough (product of dims * dtype size) until execute returns. NULL unbinds: the
 * context then uses its own buffer (see ductile_context_get_tensor_address). */
ductile_status ductile_context_set_tensor_address(ductile_context *context, const char *name,
                                                  void *data);
/* The buffer the next execute reads (input) or writes (output): the caller's if bound, else
 * the context's own (device memory for a CUDA engine), sized for the current shapes and zeroed
 * when new. Owned by the context; valid until shapes change, the profile changes or the context
 * is freed. Needs every input shape set.
 *   1. For an input it only sizes the buffer: write the values into it before execute.
 *   2. Shape inputs (int32/int64 inputs whose values decide shapes, TensorRT's shape
 *      tensors): output shapes are computed from their values, so get_tensor_shape and
 *      get_tensor_address on an output fail with DUCTILE_ERR_STATE until each shape input has
 *      a bound buffer or its own buffer was returned here (and then written). */
ductile_status ductile_context_get_tensor_address(ductile_context *context, const char *name,
                                                  void **data);

/* Runs the engine on the inputs' buffers and writes the outputs' buffers. Every input shape
 * must be set, and every input's data given: a bound buffer, or the context's own buffer
 * returned by get_tensor_address (DUCTILE_ERR_STATE otherwise, naming the input). New values
 * in a shape input are seen here and by the shape queries. Synchronous on the CPU.
 * Data-dependent shapes: when an output's shape follows from data computed at run time
 * (NonZero, Unique, ...), get_tensor_shape answers for it only after execute
 * (DUCTILE_ERR_STATE before, and again once an input's shape, buffer or value is set), and
 * execute writes it into the context's own buffer: read it with get_tensor_address after
 * execute (a buffer bound to such an output is not used). */
ductile_status ductile_context_execute(ductile_context *context);
/* Queues the run on a CUDA stream (a cudaStream_t; NULL: the default stream) and returns
 * without waiting, as TensorRT's enqueueV3 does. CUDA engines only; on the CPU backend it is
 * execute.
 *   1. Buffers bound with set_tensor_address may be device memory (used in place, the caller
 *      keeps them valid until the stream has run) or host memory (copied through the
 *      context's own device buffers; the copies make the call wait for those transfers).
 *   2. The context's own buffers (get_tensor_address) are device memory, except a shape
 *      input's (TensorRT's shape tensors): shapes are computed on the host, so a shape input
 *      is host memory, its own buffer too, and binding device memory to one is refused.
 *   3. A layer without a GPU kernel ("cpu fallback" in the layer info) runs on the host: the
 *      call waits for the stream before it.
 *   4. An engine whose output shapes depend on data computed at run time (control flow,
 *      sequences, NonZero...: "HostEngine" in the layer info) runs on the host, all of it.
 *      Its context's own buffers are host memory; an input bound to device memory is copied
 *      to the host on the stream, and the call waits for it, so it returns when the run is
 *      done. Its outputs are in the context's own host buffers after the call; binding
 *      device memory to one is refused.
 *   5. String tensors and sequence items are host memory (see ductile_string, set_sequence).
 * One stream per context at a time: the next call on the context may reuse its buffers. */
ductile_status ductile_context_execute_async(ductile_context *context, void *stream);

/* CUDA graphs: how many recorded runs the context keeps (default 16; 0 turns them off and
 * frees those kept; at most 4096). Any change frees the graphs kept. Accepted and without
 * effect on a backend that does not record runs (the CPU) and on an engine with "cpu
 * fallback" layers (they run on the host in the middle of a run).
 *   1. A run's GPU work is recorded per execution key: profile, input shapes, shape-input
 *      values, and the device address of every buffer it reads or writes (bound device
 *      buffers, the context's own buffers, its activation memory).
 *   2. The first execute at a key runs kernel by kernel (it sets up the kernels' plans and
 *      workspace); the second records the run into a graph and launches it; later ones
 *      launch the graph: one launch on the stream instead of one per kernel.
 *   3. Binding another device buffer, or new shapes, makes a new key: its first run is
 *      kernel by kernel again. Caller host buffers are copied outside the graph, so binding
 *      new host arrays (numpy) on every run keeps the key.
 *   4. When more keys have graphs than the bound, the least recently used graph is freed.
 *   5. Work that cannot be recorded makes the key run kernel by kernel for good, never an
 *      error; so does a stream that the caller is itself recording into a graph. */
ductile_status ductile_context_set_cuda_graphs(ductile_context *context, int32_t max_graphs);
/* The bound set by ductile_context_set_cuda_graphs (16 by default); -1 for a NULL context. */
int32_t ductile_context_get_cuda_graphs(const ductile_context *context);

/* The bytes of backend memory the context holds now (device memory for a CUDA engine, host
 * memory for the CPU): activation memory, kernel scratch, its own input and output buffers
 * (the items of its sequences and optionals included),
 * device copies of shape-derived values, and the backend's workspace. Activation memory is
 * planned for the shapes run (not the profile's max), and buffers grow to the largest shapes
 * run and are kept until the context is freed; so this is what the shapes run so far took,
 * and 0 (plus a workspace) before the first execute or get_tensor_address. The engine's
 * weights are not counted. Reads the context: call it from the thread that uses it. */
ductile_status ductile_context_get_memory_size(const ductile_context *context, uint64_t *bytes);

/* Per-layer profiling (TensorRT's IProfiler). One report per layer that an execute runs, in
 * execution order, made right after the layer ends, on the thread that called execute. The
 * struct and its strings are valid during the call only. Fields may be added at the end. */
typedef struct ductile_layer_timing {
    const char *layer;      /* the engine's layer name (ductile_engine_layer_info's "Name") */
    const char *op_type;    /* "FusedConv", "MatMul", ... */
    const char *tactic;     /* the kernel that ran and, where it has several, the path it took
                               at these shapes: "cpu.FusedConv.winograd", "cpu.Softmax" */
    double ms;              /* wall time of the layer */
    double flops;           /* floating-point operations of a convolution or matrix product at
                               the run's shapes (a multiply-add counts 2); 0 for other layers */
    int32_t index;          /* 0.. in execution order among the layers execute runs */
} ductile_layer_timing;
typedef void (*ductile_profiler_fn)(void *user, const ductile_layer_timing *timing);

/* Sets the context's profiler; fn NULL (the default) turns it off. The context keeps user as
 * given, without owning it.
 *   1. Layers computed from shapes alone (the shape pass: Shape, Gather of shapes, ...) are
 *      not executed and not reported; an execute that fails reports the layers before the one
 *      that failed.
 *   2. On the CPU, timing a layer costs two clock reads; the sum of one execute's reports is
 *      at most its wall time (the rest is the shape pass, output copies, waking the workers).
 *   3. On a device backend (CUDA) the runtime waits for the stream after every layer while a
 *      profiler is set, so each report is that layer's time and execute_async returns only
 *      when the run is done: profiling makes runs slower and synchronous.
 *   4. Waiting for the stream after every layer cannot happen inside a recorded CUDA graph:
 *      while a profiler is set, runs are neither recorded nor replayed as graphs (every run
 *      goes kernel by kernel, whatever ductile_context_set_cuda_graphs says); the graphs
 *      kept stay kept and are replayed again once the profiler is turned off.
 *   5. fn must not call into this context. */
ductile_status ductile_context_set_profiler(ductile_context *context, ductile_profiler_fn fn, void *user);

/* ---------------------------------------------------------------------------------------- */
/* Sequences and optionals (ONNX sequence_type, optional_type)                               */
/* ---------------------------------------------------------------------------------------- */

/* What an I/O tensor holds. A sequence is a list of tensors of one dtype, each with its own
 * shape; an optional is empty or holds one tensor (or one sequence). ductile_engine_tensor_dtype
 * gives the element dtype of a sequence or optional, ductile_engine_get_tensor_dims rank 0.
 * Engines with such values run eagerly (shapes known after execute). */
typedef enum ductile_value_kind {
    DUCTILE_VALUE_TENSOR = 0,
    DUCTILE_VALUE_SEQUENCE = 1,
    DUCTILE_VALUE_OPTIONAL_TENSOR = 2,
    DUCTILE_VALUE_OPTIONAL_SEQUENCE = 3
} ductile_value_kind;

/* The kind of an I/O tensor; -1 when the engine or the name is NULL or no I/O tensor. */
int ductile_engine_tensor_kind(const ductile_engine *engine, const char *name);

/* One tensor of a sequence (or the tensor of an optional): dtype, shape and packed data. */
typedef struct ductile_item {
    ductile_dtype dtype;
    ductile_dims dims;
    const void *data;       /* count * ductile_dtype_size(dtype) bytes, C order */
} ductile_item;

/* Sets a sequence or optional input for the next executions; the items are copied (the
 * caller may free them when the call returns).
 *   1. A sequence input: n >= 0 items, each of the input's dtype, rank 0..8.
 *   2. An optional input: n == -1 is empty; an optional tensor takes n == 1, an optional
 *      sequence n >= 0 items.
 * The value stays for later executes until set again. Items are host memory on every backend
 * (a CUDA engine refuses an item in device memory, naming it). A sequence or optional input takes no
 * set_input_shape and no tensor address (DUCTILE_ERR_INVALID_ARGUMENT); execute refuses one
 * never set (DUCTILE_ERR_STATE, naming it). DUCTILE_ERR_INVALID_ARGUMENT names the item at
 * fault and leaves the value the input had; out of memory leaves it without one. */
ductile_status ductile_context_set_sequence(ductile_context *context, const char *name,
                                            const ductile_item *items, int64_t n);
/* The value of a sequence or optional output after execute (or of an input as set): *n items
 * at *items (n == -1: an empty optional). Owned by the context, valid until the next execute,
 * set_sequence or context free. DUCTILE_ERR_STATE before the first execute. */
ductile_status ductile_context_get_sequence(ductile_context *context, const char *name,
                                            const ductile_item **items, int64_t *n);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* DUCTILE_H */
