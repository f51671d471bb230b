#include "core/dtype.h"

const char *ductile_dtype_name(ductile_dtype t)
{
    switch (t) {
    case DUCTILE_FLOAT32: return "float32";
    case DUCTILE_UINT8: return "uint8";
    case DUCTILE_INT8: return "int8";
    case DUCTILE_UINT16: return "uint16";
    case DUCTILE_INT16: return "int16";
    case DUCTILE_INT32: return "int32";
    case DUCTILE_INT64: return "int64";
    case DUCTILE_STRING: return "string";
    case DUCTILE_BOOL: return "bool";
    case DUCTILE_FLOAT16: return "float16";
    case DUCTILE_FLOAT64: return "float64";
    case DUCTILE_UINT32: return "uint32";
    case DUCTILE_UINT64: return "uint64";
    case DUCTILE_BFLOAT16: return "bfloat16";
    case DUCTILE_FLOAT8E4M3FN: return "float8e4m3fn";
    case DUCTILE_FLOAT8E4M3FNUZ: return "float8e4m3fnuz";
    case DUCTILE_FLOAT8E5M2: return "float8e5m2";
    case DUCTILE_FLOAT8E5M2FNUZ: return "float8e5m2fnuz";
    case DUCTILE_UINT4: return "uint4";
    case DUCTILE_INT4: return "int4";
    case DUCTILE_FLOAT4E2M1: return "float4e2m1";
    case DUCTILE_FLOAT8E8M0: return "float8e8m0";
    case DUCTILE_UINT2: return "uint2";
    case DUCTILE_INT2: return "int2";
    default: return "undefined";
    }
}

size_t ductile_dtype_size(ductile_dtype t)
{
    switch (t) {
    case DUCTILE_BOOL: case DUCTILE_UINT8: case DUCTILE_INT8: return 1;
    /* One byte each in memory, 4-bit and 2-bit types included (see ductile.h). */
    case DUCTILE_FLOAT8E4M3FN: case DUCTILE_FLOAT8E4M3FNUZ: case DUCTILE_FLOAT8E5M2:
    case DUCTILE_FLOAT8E5M2FNUZ: case DUCTILE_UINT4: case DUCTILE_INT4: case DUCTILE_FLOAT4E2M1:
    case DUCTILE_FLOAT8E8M0: case DUCTILE_UINT2: case DUCTILE_INT2: return 1;
    case DUCTILE_UINT16: case DUCTILE_INT16: case DUCTILE_FLOAT16: case DUCTILE_BFLOAT16: return 2;
    case DUCTILE_FLOAT32: case DUCTILE_INT32: case DUCTILE_UINT32: return 4;
    case DUCTILE_FLOAT64: case DUCTILE_INT64: case DUCTILE_UINT64: return 8;
    /* A view of bytes held elsewhere (ductile.h): copies move views, never bytes. */
    case DUCTILE_STRING: return sizeof(ductile_string);
    default: return 0;
    }
}

bool dt_dtype_valid(int t) { return ductile_dtype_size((ductile_dtype)t) != 0; }

bool dt_dtype_numeric(int t) { return t != DUCTILE_STRING && dt_dtype_valid(t); }

int dt_dtype_file_bits(int t)
{
    switch (t) {
    case DUCTILE_UINT4: case DUCTILE_INT4: case DUCTILE_FLOAT4E2M1: return 4;
    case DUCTILE_UINT2: case DUCTILE_INT2: return 2;
    case DUCTILE_STRING: return 0; /* string_data, never raw bytes */
    default: return 8 * (int)ductile_dtype_size((ductile_dtype)t);
    }
}
