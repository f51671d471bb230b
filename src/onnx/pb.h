/* A protobuf wire-format reader, written by hand so that byte fields can stay views into the
 * model's mapping (zero-copy weights) and every failure can name the byte offset and field.
 *
 * A reader walks one message: a range [pos, end) of one buffer. Offsets are absolute in that
 * buffer (the whole model file), so messages name where in the file a problem lies. Nested
 * messages are opened with pb_sub, which counts depth and refuses more than PB_MAX_DEPTH.
 *
 * Error formats (DUCTILE_ERR_PARSE), with <field> = "field 'graph' (ModelProto field 7)" or,
 * for a number without a name, "field 99 (ModelProto)":
 *   truncated at byte offset O: <field> needs N bytes, R remain
 *   truncated at byte offset O: varint of <field> runs past the end of <Msg>
 *   truncated at byte offset O: length of <field> runs past the end of <Msg>
 *   truncated at byte offset O: field key runs past the end of <Msg>
 *   truncated at byte offset O: [last ]varint of packed <field> runs past its end
 *   malformed at byte offset O: varint longer than 10 bytes in <Msg>
 *   malformed at byte offset O: <field> has wire type W (group); groups are not supported
 *   malformed at byte offset O: <field> has wire type W, expected X
 *   malformed at byte offset O: invalid wire type W in <Msg>
 *   malformed at byte offset O: field number N in <Msg>          (0 or above 2^29-1)
 *   malformed at byte offset O: packed <field> has N bytes, not a multiple of W
 *   malformed at byte offset O: messages nested deeper than 64 in <field>
 */
#ifndef DT_ONNX_PB_H
#define DT_ONNX_PB_H

#include "ductile.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PB_MAX_DEPTH 64

enum { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_SGROUP = 3, PB_EGROUP = 4, PB_I32 = 5 };

/* Field names of one message type, for error messages; names[i] is field number i or NULL. */
typedef struct pb_msgdesc {
    const char *type;          /* "ModelProto" */
    const char *const *names;
    uint32_t n_names;
} pb_msgdesc;

typedef struct pb_reader {
    const uint8_t *base;       /* the whole buffer */
    size_t pos, end;           /* the message: [pos, end) */
    const pb_msgdesc *desc;
    int depth;
} pb_reader;

typedef struct pb_field {
    uint32_t num;
    int wire;
    uint64_t u;                /* VARINT, I64, I32 value */
    size_t off;                /* offset of the value (the payload for LEN) */
    size_t len;                /* LEN payload size */
    const pb_reader *from;     /* the reader it came from, for error messages */
} pb_field;

/* A reader over a whole buffer (the top-level message). */
void pb_init(pb_reader *r, const void *base, size_t size, const pb_msgdesc *desc);

/* Reads the next field. *more is false at the end of the message (f is then untouched). */
ductile_status pb_next(pb_reader *r, pb_field *f, bool *more);

/* Opens a LEN field as a nested message of type desc. */
ductile_status pb_sub(const pb_field *f, const pb_msgdesc *desc, pb_reader *out);

/* Checks the wire type of a field the caller knows; the error names the field. */
ductile_status pb_expect(const pb_field *f, int wire);

/* The payload of a LEN field. */
static inline const uint8_t *pb_bytes(const pb_field *f) { return f->from->base + f->off; }

/* "field 'graph' (ModelProto field 7)" into buf; returns buf. */
const char *pb_field_label(const pb_field *f, char *buf, size_t cap);

/* Packed repeated scalars inside a LEN payload f. For varints, *count is the number of bytes
 * without the continuation bit; for fixed-width elements (PB_I32, PB_I64) it is len / width,
 * and a remainder is refused. */
ductile_status pb_packed_count(const pb_field *f, int elem_wire, size_t *count);
/* Reads one varint of the packed payload f at *pos (absolute), advancing *pos. */
ductile_status pb_packed_varint(const pb_field *f, size_t *pos, uint64_t *v);

#endif
