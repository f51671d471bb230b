/* The engine file format, shared by the writer (builder/engine_write.c) and the reader
 * (runtime/engine_read.c); it includes only core, so neither side reaches into the other.
 *
 * The engine file format: an optimized network (layers in execution order), its profiles and
 * its constant data, in one buffer that is read in place (constants are not copied).
 *
 * All integers are little-endian. Offsets are from the start of the file unless said.
 *
 * Header (DT_ENGINE_HEADER_SIZE = 64 bytes):
 *    0  magic           8 bytes  "DUCTILE\0"
 *    8  version         u32      DT_ENGINE_FORMAT_VERSION; a reader takes only its own
 *   12  header size     u32      >= 64, a multiple of 8; the section table starts here
 *   16  section count   u32
 *   20  flags           u32      features the engine uses (DT_ENGINE_FLAG_*); a bit a reader
 *                                does not know is refused, so a reader older than the feature
 *                                names it rather than misreading the file
 *   24  file size       u64      the whole file, header included
 *   32  checksum        u32      CRC-32C (format/checksum.h) of bytes [0, 32) followed by
 *                                bytes [36, file size): every byte but the field itself
 *   36  reserved        u32      0
 *   40  library version 16 bytes ductile_version() of the writer, NUL-padded (informative)
 *   56  reserved        u64      0
 *
 * Section table at "header size": per section 24 bytes,
 *   section id u32, reserved u32 (0), offset u64, size u64.
 * A section lies inside the file after the table; an id appears at most once. A reader skips
 * ids it does not know (room to grow); a required section missing is an error naming it.
 * The writer puts sections in id order, each starting 8-byte aligned, zero padding between.
 *
 * Strings are referenced by index into STRINGS; DT_ENGINE_NO_STRING (0xFFFFFFFF) is none.
 * Tensors by index into TENSORS; -1 is an omitted optional input (or output).
 *
 * STRINGS (id 1): u32 count; per string: u32 length, the bytes, a NUL byte. (A string may
 *   hold NUL bytes inside, as ONNX STRING attributes can; names may not.)
 * TENSORS (id 2): u32 count; per tensor a tensor record (DT_ENGINE_TENSOR_RECORD = 128 bytes):
 *     0 name u32 (string), 4 dtype i32 (ductile_dtype; 0 allowed only without data),
 *     8 rank i32 (-1 unknown, 0..8), 12 flags u32 (bit 0 network input, bit 1 network output,
 *     bit 2 has data, bits 3-4 the ductile_value_kind: 0 a tensor, else a sequence or an
 *     optional, whose dtype is the element dtype, rank 0 and no data; added in version 2
 *     without a new version: older engines have 0 there and load unchanged), 16 dims i64[8] (-1 dynamic, unused ones 0), 80 dim symbols u32[8]
 *     (string or none), 112 blob offset u64 (relative to the BLOBS section, a multiple of 64),
 *     120 blob size u64 (= element count * dtype size; for STRING the size of the blob of
 *     format/strings.h: u64 lengths, then the bytes). Offset and size are 0 without data.
 * LAYERS (id 3): u32 count; per layer, in execution order:
 *     name, op_type, domain u32 (strings), opset i32, n_in u32, n_out u32, n_attr u32,
 *     reserved u32 (0), inputs i32[n_in], outputs i32[n_out] (tensor indices), then n_attr
 *     attributes: name u32 (string), type u32 (DT_ATTR_*), then by type:
 *       FLOAT   f32 bits as u32          INT     i64
 *       STRING  u32 (string)             TENSOR  a tensor record (flags: only bit 2)
 *       FLOATS  u64 count, f32[count]    INTS    u64 count, i64[count]
 *       STRINGS u64 count, u32[count] (strings)
 *   A layer input is a constant, a network input or the output of an earlier layer; a tensor
 *   has at most one producer, and inputs and constants have none.
 * IO (id 4): u32 n_inputs, u32 n_outputs, i32 opset (the network's default-domain opset),
 *     reserved u32 (0), inputs i32[n_inputs], outputs i32[n_outputs], in network order.
 *     A tensor is listed as input (output) exactly when its flags bit 0 (bit 1) is set.
 * PROFILES (id 5): u32 count; per profile: u32 n_entries; per entry: name u32 (string; a
 *     network input, once per profile), rank u32 (0..8), min i64[rank], opt i64[rank],
 *     max i64[rank], with 0 <= min <= opt <= max.
 * BLOBS (id 6): constant data, the section starting 64-byte aligned in the file and each
 *     blob at a multiple of 64 inside it, so a file loaded at a 64-byte-aligned address has
 *     every constant 64-byte aligned and usable in place.
 * TARGET (id 7, DT_ENGINE_TARGET_SIZE = 128 bytes): what the engine was built and tuned for.
 *     0 backend 16 bytes (NUL-padded name of a backend: lowercase letters, digits, '_'),
 *     16 device 96 bytes (NUL-padded printable name of the GPU; empty for the host),
 *     112 compute capability major u32, 116 minor u32 (0, 0 for the host), 120 reserved u64 (0).
 * SUBGRAPHS (id 8, optional: written only when a layer has a GRAPH attribute; 64-byte
 *     aligned in the file): the subgraphs of If, Loop and Scan. u32 version
 *     (DT_ENGINE_SUBGRAPHS_VERSION; another is refused naming it), u32 count; per subgraph
 *     (DT_ENGINE_SUBGRAPH_ENTRY = 24 bytes): u32 captured (its last inputs that are tensors
 *     of the enclosing graph, see graph/network.h), u32 reserved (0), offset u64 (from the
 *     section's start, a multiple of 64), size u64; then the subgraphs, each a whole engine
 *     image in this format (no profiles; TARGET of the enclosing engine), so they nest.
 *     A GRAPH attribute in LAYERS is: u32 index into this section's subgraphs.
 *
 * Version history: 1, the first. 2: TARGET (required). 2 with header flag bit 0
 * (DT_ENGINE_FLAG_STRINGS): tensors of dtype STRING (8) and their blobs; readers before it
 * refuse the flag ("flags 0x00000001 name features this build does not know"). Within 2:
 * SUBGRAPHS (optional, with its own version), so engines without control flow keep their
 * bytes; a reader from before it skips the section and refuses the GRAPH attribute by layer
 * and type. */
#ifndef DT_FORMAT_H
#define DT_FORMAT_H

#include "ductile.h"

#include <stddef.h>
#include <stdint.h>

#define DT_ENGINE_FORMAT_VERSION 2
#define DT_ENGINE_MAGIC "DUCTILE" /* 8 bytes with its NUL */
#define DT_ENGINE_HEADER_SIZE 64
#define DT_ENGINE_SECTION_ENTRY 24
#define DT_ENGINE_TENSOR_RECORD 128
#define DT_ENGINE_BLOB_ALIGN 64
#define DT_ENGINE_NO_STRING 0xFFFFFFFFu
#define DT_ENGINE_TARGET_SIZE 128

/* Byte offsets of header fields (tests patch them). */
enum {
    DT_ENGINE_OFF_MAGIC = 0,
    DT_ENGINE_OFF_VERSION = 8,
    DT_ENGINE_OFF_HEADER_SIZE = 12,
    DT_ENGINE_OFF_SECTION_COUNT = 16,
    DT_ENGINE_OFF_FLAGS = 20,
    DT_ENGINE_OFF_FILE_SIZE = 24,
    DT_ENGINE_OFF_CHECKSUM = 32,
    DT_ENGINE_OFF_LIB_VERSION = 40
};

enum {
    DT_SECTION_STRINGS = 1,
    DT_SECTION_TENSORS = 2,
    DT_SECTION_LAYERS = 3,
    DT_SECTION_IO = 4,
    DT_SECTION_PROFILES = 5,
    DT_SECTION_BLOBS = 6,
    DT_SECTION_TARGET = 7,
    DT_SECTION_SUBGRAPHS = 8
};

/* Header flags: features an engine uses that a reader must know. */
enum {
    DT_ENGINE_FLAG_STRINGS = 1u     /* STRING tensors (format/strings.h) */
};

#define DT_ENGINE_SUBGRAPHS_VERSION 1
#define DT_ENGINE_SUBGRAPH_ENTRY 24

enum {
    DT_ENGINE_TENSOR_INPUT = 1u,
    DT_ENGINE_TENSOR_OUTPUT = 2u,
    DT_ENGINE_TENSOR_DATA = 4u,
    DT_ENGINE_TENSOR_KIND = 0x18u   /* bits 3-4: ductile_value_kind */
};
#define DT_ENGINE_TENSOR_KIND_SHIFT 3

/* The TARGET section in memory. */
typedef struct dt_engine_target {
    char backend[16];       /* NUL-terminated: at most 15 characters */
    char device[96];        /* NUL-terminated: at most 95 characters */
    uint32_t cc_major, cc_minor;
} dt_engine_target;

#endif
