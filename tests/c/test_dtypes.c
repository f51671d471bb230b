/* The 8-, 4- and 2-bit types: their sizes and names; Cast to and from them bit for bit against
 * ml_dtypes and onnx.numpy_helper (the tables below were computed with ml_dtypes 0.6.0 and
 * onnx 1.23: NaN, infinity, saturation, subnormals and rounding ties); every float8 code
 * round-tripping; packed initializers (raw_data and int32_data) unpacking to one byte per
 * element; and an engine holding these types through serialize, load and execute. */
#include "ophelp.h"
#include "pbwrite.h"
#include "ductile.h"
#include "backend/cpu/families.h"
#include "core/dtype.h"
#include "core/status.h"
#include "graph/network.h"
#include "ops/families.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- expected bit patterns (from ml_dtypes / onnx.numpy_helper at dev time) ---- */

#define N_F8 44
static const float f8_in[N_F8] = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 448.0f, 449.0f, 464.0f, 465.0f, 480.0f, 500.0f, -500.0f, 240.0f, 247.0f, 248.0f, 57344.0f, 60000.0f, 61440.0f, 65536.0f, 0.0010000000474974513f, 1.0000000116860974e-07f, 0.001953125f, 0.0009765625f, 0.00146484375f, 0.4789254665374756f, 1.0625f, 1.1875f, NAN, -NAN, INFINITY, -INFINITY, 1000000.0f, -1000000.0f, 1.52587890625e-05f, 1.1444091796875e-05f, 0.009999999776482582f, -0.009999999776482582f, 6.0f, 7.0f, 5.0f, 0.25f, 0.75f, 2.5f, -1.0000000116860974e-07f};
static const uint8_t f8_E4M3FN_sat[N_F8] = {0x00, 0x80, 0x38, 0xb8, 0x30, 0x7e, 0x7e, 0x7e, 0x7e, 0x7e, 0x7e, 0xfe, 0x77, 0x77, 0x78, 0x7e, 0x7e, 0x7e, 0x7e, 0x01, 0x00, 0x01, 0x00, 0x01, 0x2f, 0x38, 0x3a, 0x7f, 0xff, 0x7e, 0xfe, 0x7e, 0xfe, 0x00, 0x00, 0x05, 0x85, 0x4c, 0x4e, 0x4a, 0x28, 0x34, 0x42, 0x80};
static const uint8_t f8_E4M3FN_nosat[N_F8] = {0x00, 0x80, 0x38, 0xb8, 0x30, 0x7e, 0x7e, 0x7e, 0x7f, 0x7f, 0x7f, 0xff, 0x77, 0x77, 0x78, 0x7f, 0x7f, 0x7f, 0x7f, 0x01, 0x00, 0x01, 0x00, 0x01, 0x2f, 0x38, 0x3a, 0x7f, 0xff, 0x7f, 0xff, 0x7f, 0xff, 0x00, 0x00, 0x05, 0x85, 0x4c, 0x4e, 0x4a, 0x28, 0x34, 0x42, 0x80};
static const uint8_t f8_E4M3FNUZ_sat[N_F8] = {0x00, 0x00, 0x40, 0xc0, 0x38, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0xff, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x01, 0x00, 0x02, 0x01, 0x02, 0x37, 0x40, 0x42, 0x80, 0x80, 0x7f, 0xff, 0x7f, 0xff, 0x00, 0x00, 0x0a, 0x8a, 0x54, 0x56, 0x52, 0x30, 0x3c, 0x4a, 0x00};
static const uint8_t f8_E4M3FNUZ_nosat[N_F8] = {0x00, 0x00, 0x40, 0xc0, 0x38, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f, 0x7f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00, 0x02, 0x01, 0x02, 0x37, 0x40, 0x42, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00, 0x0a, 0x8a, 0x54, 0x56, 0x52, 0x30, 0x3c, 0x4a, 0x00};
static const uint8_t f8_E5M2_sat[N_F8] = {0x00, 0x80, 0x3c, 0xbc, 0x38, 0x5f, 0x5f, 0x5f, 0x5f, 0x60, 0x60, 0xe0, 0x5c, 0x5c, 0x5c, 0x7b, 0x7b, 0x7b, 0x7b, 0x14, 0x00, 0x18, 0x14, 0x16, 0x38, 0x3c, 0x3d, 0x7e, 0xfe, 0x7b, 0xfb, 0x7b, 0xfb, 0x01, 0x01, 0x21, 0xa1, 0x46, 0x47, 0x45, 0x34, 0x3a, 0x41, 0x80};
static const uint8_t f8_E5M2_nosat[N_F8] = {0x00, 0x80, 0x3c, 0xbc, 0x38, 0x5f, 0x5f, 0x5f, 0x5f, 0x60, 0x60, 0xe0, 0x5c, 0x5c, 0x5c, 0x7b, 0x7b, 0x7c, 0x7c, 0x14, 0x00, 0x18, 0x14, 0x16, 0x38, 0x3c, 0x3d, 0x7e, 0xfe, 0x7c, 0xfc, 0x7c, 0xfc, 0x01, 0x01, 0x21, 0xa1, 0x46, 0x47, 0x45, 0x34, 0x3a, 0x41, 0x80};
static const uint8_t f8_E5M2FNUZ_sat[N_F8] = {0x00, 0x00, 0x40, 0xc0, 0x3c, 0x63, 0x63, 0x63, 0x63, 0x64, 0x64, 0xe4, 0x60, 0x60, 0x60, 0x7f, 0x7f, 0x7f, 0x7f, 0x18, 0x00, 0x1c, 0x18, 0x1a, 0x3c, 0x40, 0x41, 0x80, 0x80, 0x7f, 0xff, 0x7f, 0xff, 0x02, 0x02, 0x25, 0xa5, 0x4a, 0x4b, 0x49, 0x38, 0x3e, 0x45, 0x00};
static const uint8_t f8_E5M2FNUZ_nosat[N_F8] = {0x00, 0x00, 0x40, 0xc0, 0x3c, 0x63, 0x63, 0x63, 0x63, 0x64, 0x64, 0xe4, 0x60, 0x60, 0x60, 0x7f, 0x7f, 0x80, 0x80, 0x18, 0x00, 0x1c, 0x18, 0x1a, 0x3c, 0x40, 0x41, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02, 0x02, 0x25, 0xa5, 0x4a, 0x4b, 0x49, 0x38, 0x3e, 0x45, 0x00};
static const uint8_t f8_E2M1_sat[N_F8] = {0x00, 0x08, 0x02, 0x0a, 0x01, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x0f, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x02, 0x08, 0x00, 0x07, 0x0f, 0x07, 0x0f, 0x00, 0x00, 0x00, 0x08, 0x07, 0x07, 0x06, 0x00, 0x02, 0x04, 0x08};
static const uint8_t f8_E2M1_nosat[N_F8] = {0x00, 0x08, 0x02, 0x0a, 0x01, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x0f, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x02, 0x08, 0x00, 0x07, 0x0f, 0x07, 0x0f, 0x00, 0x00, 0x00, 0x08, 0x07, 0x07, 0x06, 0x00, 0x02, 0x04, 0x08};
/* float64 1.0625 + 2^-40 -> e4m3fn: 0x38 (direct), via float32 0x38 */
#define N_E8 18
static const float e8_in[N_E8] = {0.0f, 9.99994610111476e-41f, 0.12399999797344208f, 0.25f, 0.5f, 1.100000023841858f, 1.5f, 1.75f, 3.0f, -5.0f, 1.7014118346046923e+38f, 2.5521177519070385e+38f, 3.0000000054977558e+38f, INFINITY, NAN, 1.25f, 1.125f, 1.7632415262334313e-38f};
static const uint8_t e8_up_1[N_E8] = {0x00, 0x01, 0x7c, 0x7d, 0x7e, 0x80, 0x80, 0x80, 0x81, 0x82, 0xfe, 0xfe, 0xfe, 0xff, 0xff, 0x80, 0x80, 0x02};
static const uint8_t e8_up_0[N_E8] = {0x00, 0x01, 0x7c, 0x7d, 0x7e, 0x80, 0x80, 0x80, 0x81, 0x82, 0xfe, 0xff, 0xff, 0xff, 0xff, 0x80, 0x80, 0x02};
static const uint8_t e8_down_1[N_E8] = {0x00, 0x00, 0x7b, 0x7d, 0x7e, 0x7f, 0x7f, 0x7f, 0x80, 0x81, 0xfe, 0xfe, 0xfe, 0xff, 0xff, 0x7f, 0x7f, 0x01};
static const uint8_t e8_down_0[N_E8] = {0x00, 0x00, 0x7b, 0x7d, 0x7e, 0x7f, 0x7f, 0x7f, 0x80, 0x81, 0xfe, 0xfe, 0xfe, 0xff, 0xff, 0x7f, 0x7f, 0x01};
static const uint8_t e8_nearest_1[N_E8] = {0x00, 0x00, 0x7c, 0x7d, 0x7e, 0x7f, 0x80, 0x80, 0x81, 0x81, 0xfe, 0xfe, 0xfe, 0xff, 0xff, 0x7f, 0x7f, 0x02};
static const uint8_t e8_nearest_0[N_E8] = {0x00, 0x00, 0x7c, 0x7d, 0x7e, 0x7f, 0x80, 0x80, 0x81, 0x81, 0xfe, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x7f, 0x02};
#define N_I4 34
static const float i4_in[N_I4] = {-9.0f, -8.0f, -7.0f, -6.0f, -5.0f, -4.0f, -3.0f, -2.0f, -1.0f, 0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f, 8.0f, 9.0f, 10.0f, 11.0f, 12.0f, 13.0f, 14.0f, 15.0f, 16.0f, 2.5f, -2.5f, 7.900000095367432f, -8.899999618530273f, NAN, INFINITY, 100.0f, -100.0f};
static const uint8_t i4_UINT4[N_I4] = {0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x00, 0x02, 0x0e, 0x07, 0x08, 0x00, 0x00, 0x04, 0x0c};
static const uint8_t i4_INT4[N_I4] = {0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x00, 0x02, 0x0e, 0x07, 0x08, 0x00, 0x00, 0x04, 0x0c};
static const uint8_t i4_UINT2[N_I4] = {0x03, 0x00, 0x01, 0x02, 0x03, 0x00, 0x01, 0x02, 0x03, 0x00, 0x01, 0x02, 0x03, 0x00, 0x01, 0x02, 0x03, 0x00, 0x01, 0x02, 0x03, 0x00, 0x01, 0x02, 0x03, 0x00, 0x02, 0x02, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00};
static const uint8_t i4_INT2[N_I4] = {0x03, 0x00, 0x01, 0x02, 0x03, 0x00, 0x01, 0x02, 0x03, 0x00, 0x01, 0x02, 0x03, 0x00, 0x01, 0x02, 0x03, 0x00, 0x01, 0x02, 0x03, 0x00, 0x01, 0x02, 0x03, 0x00, 0x02, 0x02, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00};

/* ---- harness: one Cast layer run through infer and the CPU kernel ---- */

static int layer_counter;

/* Cast to `to` with saturate (-1: absent) and round_mode (NULL: absent). */
static ductile_layer *cast_layer(int to, int saturate, const char *round_mode)
{
    char name[64];
    snprintf(name, sizeof name, "Cast_%d", layer_counter++);
    ductile_layer *L = dt_network_add_layer(net, "Cast", name, 1, 1, 3);
    char tn[80];
    snprintf(tn, sizeof tn, "%s_in", name);
    L->in[0] = dt_network_add_tensor(net, tn);
    snprintf(tn, sizeof tn, "%s_out", name);
    L->out[0] = dt_network_add_tensor(net, tn);
    L->opset = 25;
    int k = 0;
    L->attrs[k].name = "to";
    L->attrs[k].type = DT_ATTR_INT;
    L->attrs[k++].i = to;
    if (saturate >= 0) {
        L->attrs[k].name = "saturate";
        L->attrs[k].type = DT_ATTR_INT;
        L->attrs[k++].i = saturate;
    }
    if (round_mode) {
        L->attrs[k].name = "round_mode";
        L->attrs[k].type = DT_ATTR_STRING;
        L->attrs[k].s = round_mode;
        L->attrs[k++].s_len = strlen(round_mode);
    }
    L->n_attr = k;
    return L;
}

/* Casts n elements of `from` at x; returns a malloc'd output (NULL on failure). */
static void *cast(int from, const void *x, int64_t n, int to, int saturate, const char *round_mode)
{
    ductile_layer *L = cast_layer(to, saturate, round_mode);
    dt_view in = {from, 1, {n}, (void *)x}, out;
    memset(&out, 0, sizeof out);
    ductile_status s = opdef("Cast")->infer(L, &in, &out);
    CHECK_EQ_INT(s, DUCTILE_OK);
    CHECK_EQ_INT(out.dtype, to);
    if (s) return NULL;
    size_t bytes = (size_t)n * ductile_dtype_size((ductile_dtype)to);
    unsigned char *buf = malloc(bytes + 16);
    memset(buf, 0xA5, bytes + 16);
    out.data = buf;
    dt_exec ex = {0};
    s = kernel("Cast")(L, &in, &out, &ex);
    CHECK_EQ_INT(s, DUCTILE_OK);
    for (int i = 0; i < 16; i++) CHECK(buf[bytes + i] == 0xA5);
    return buf;
}

static int bytes_differ(const char *what, const uint8_t *got, const uint8_t *want, int n)
{
    int bad = 0;
    for (int i = 0; i < n; i++)
        if (got[i] != want[i]) {
            if (bad++ < 4) fprintf(stderr, "%s: element %d is 0x%02x, expected 0x%02x\n", what, i, got[i], want[i]);
        }
    return bad;
}

static const int lowp_floats[] = {DUCTILE_FLOAT8E4M3FN, DUCTILE_FLOAT8E4M3FNUZ, DUCTILE_FLOAT8E5M2,
                                  DUCTILE_FLOAT8E5M2FNUZ, DUCTILE_FLOAT4E2M1};

/* ---- tests ---- */

static void test_new_types_take_one_byte_and_have_onnx_values(void)
{
    static const struct { int t; const char *name; int bits; } types[] = {
        {17, "float8e4m3fn", 8}, {18, "float8e4m3fnuz", 8}, {19, "float8e5m2", 8},
        {20, "float8e5m2fnuz", 8}, {21, "uint4", 4}, {22, "int4", 4}, {23, "float4e2m1", 4},
        {24, "float8e8m0", 8}, {25, "uint2", 2}, {26, "int2", 2},
    };
    CHECK_EQ_INT(DUCTILE_FLOAT8E4M3FN, 17);
    CHECK_EQ_INT(DUCTILE_INT2, 26);
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        CHECK_EQ_INT(ductile_dtype_size((ductile_dtype)types[i].t), 1);
        CHECK_EQ_STR(ductile_dtype_name((ductile_dtype)types[i].t), types[i].name);
        CHECK(dt_dtype_valid(types[i].t));
        CHECK_EQ_INT(dt_dtype_file_bits(types[i].t), types[i].bits);
    }
    CHECK_EQ_INT(dt_dtype_file_bits(DUCTILE_FLOAT32), 32);
    CHECK(!dt_dtype_valid(27));
    /* A string element is a view: its buffer holds ductile_string, never bytes of text. */
    CHECK(dt_dtype_valid(DUCTILE_STRING));
    CHECK(!dt_dtype_numeric(DUCTILE_STRING));
    CHECK(dt_dtype_numeric(DUCTILE_FLOAT32));
    CHECK_EQ_INT(ductile_dtype_size(DUCTILE_STRING), sizeof(ductile_string));
    CHECK_EQ_INT(dt_dtype_file_bits(DUCTILE_STRING), 0);
}

static void test_float_to_float8_matches_ml_dtypes(void)
{
    static const struct { int t; const uint8_t *sat, *nosat; const char *name; } cases[] = {
        {DUCTILE_FLOAT8E4M3FN, f8_E4M3FN_sat, f8_E4M3FN_nosat, "e4m3fn"},
        {DUCTILE_FLOAT8E4M3FNUZ, f8_E4M3FNUZ_sat, f8_E4M3FNUZ_nosat, "e4m3fnuz"},
        {DUCTILE_FLOAT8E5M2, f8_E5M2_sat, f8_E5M2_nosat, "e5m2"},
        {DUCTILE_FLOAT8E5M2FNUZ, f8_E5M2FNUZ_sat, f8_E5M2FNUZ_nosat, "e5m2fnuz"},
        {DUCTILE_FLOAT4E2M1, f8_E2M1_sat, f8_E2M1_nosat, "e2m1"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char what[64];
        /* saturate absent means 1 */
        uint8_t *y = cast(DUCTILE_FLOAT32, f8_in, N_F8, cases[c].t, -1, NULL);
        snprintf(what, sizeof what, "float32 -> %s (saturate)", cases[c].name);
        if (y) CHECK_EQ_INT(bytes_differ(what, y, cases[c].sat, N_F8), 0);
        free(y);
        y = cast(DUCTILE_FLOAT32, f8_in, N_F8, cases[c].t, 0, NULL);
        snprintf(what, sizeof what, "float32 -> %s (saturate=0)", cases[c].name);
        if (y) CHECK_EQ_INT(bytes_differ(what, y, cases[c].nosat, N_F8), 0);
        free(y);
        /* float64 and float16 sources give the same bytes for these (float16-exact) inputs */
        double d[N_F8];
        for (int i = 0; i < N_F8; i++) d[i] = f8_in[i];
        y = cast(DUCTILE_FLOAT64, d, N_F8, cases[c].t, 1, NULL);
        snprintf(what, sizeof what, "float64 -> %s", cases[c].name);
        if (y) CHECK_EQ_INT(bytes_differ(what, y, cases[c].sat, N_F8), 0);
        free(y);
    }
    /* float64 goes through float32 first, as in ml_dtypes: 1.0625 + 2^-40 is a tie there */
    double tie = 1.0625 + ldexp(1.0, -40);
    uint8_t *y = cast(DUCTILE_FLOAT64, &tie, 1, DUCTILE_FLOAT8E4M3FN, 1, NULL);
    if (y) CHECK_EQ_INT(y[0], 0x38);
    free(y);
}

static void test_every_float8_code_round_trips(void)
{
    for (size_t k = 0; k < sizeof lowp_floats / sizeof *lowp_floats; k++) {
        int t = lowp_floats[k], n = t == DUCTILE_FLOAT4E2M1 ? 16 : 256;
        uint8_t codes[256];
        for (int i = 0; i < n; i++) codes[i] = (uint8_t)i;
        float *f = cast(t, codes, n, DUCTILE_FLOAT32, -1, NULL);
        if (!f) continue;
        uint8_t *back = cast(DUCTILE_FLOAT32, f, n, t, 0, NULL);
        int bad = 0, nans = 0;
        for (int i = 0; i < n && back; i++) {
            if (isnan(f[i])) {
                nans++;
                continue;
            }
            if (back[i] != codes[i]) bad++;
            /* positive codes increase with their values */
            if (i > 0 && i < n / 2 && !isnan(f[i - 1]) && !isinf(f[i]) && !(f[i] > f[i - 1])) bad++;
        }
        if (bad) fprintf(stderr, "%s: %d codes do not round-trip\n", ductile_dtype_name((ductile_dtype)t), bad);
        CHECK_EQ_INT(bad, 0);
        int want_nans = t == DUCTILE_FLOAT8E4M3FN ? 2 : t == DUCTILE_FLOAT8E5M2 ? 6
                      : t == DUCTILE_FLOAT4E2M1 ? 0 : 1;
        CHECK_EQ_INT(nans, want_nans);
        free(f);
        free(back);
    }
    /* spot values: largest, smallest subnormal, infinity */
    uint8_t c[4] = {0x7e, 0x01, 0xfe, 0x80};
    float *f = cast(DUCTILE_FLOAT8E4M3FN, c, 4, DUCTILE_FLOAT32, -1, NULL);
    if (f) CHECK(f[0] == 448.0f && f[1] == 0x1p-9f && f[2] == -448.0f && f[3] == 0.0f && signbit(f[3]));
    free(f);
    uint8_t e[3] = {0x7c, 0xfc, 0x01};
    f = cast(DUCTILE_FLOAT8E5M2, e, 3, DUCTILE_FLOAT32, -1, NULL);
    if (f) CHECK(isinf(f[0]) && f[0] > 0 && isinf(f[1]) && f[1] < 0 && f[2] == 0x1p-16f);
    free(f);
    uint8_t u[2] = {0x7f, 0x01};
    f = cast(DUCTILE_FLOAT8E4M3FNUZ, u, 2, DUCTILE_FLOAT32, -1, NULL);
    if (f) CHECK(f[0] == 240.0f && f[1] == 0x1p-10f);
    free(f);
    /* float8 -> float16 */
    uint16_t *h = cast(DUCTILE_FLOAT8E4M3FN, c, 4, DUCTILE_FLOAT16, -1, NULL);
    if (h) CHECK(h[0] == 0x5f00 && h[1] == 0x1800 && h[2] == 0xdf00 && h[3] == 0x8000);
    free(h);
}

static void test_float8e8m0_rounds_as_onnx_helper(void)
{
    static const struct { const char *mode; int sat; const uint8_t *want; } cases[] = {
        {"up", 1, e8_up_1}, {"up", 0, e8_up_0}, {"down", 1, e8_down_1},
        {"down", 0, e8_down_0}, {"nearest", 1, e8_nearest_1}, {"nearest", 0, e8_nearest_0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char what[64];
        snprintf(what, sizeof what, "float32 -> float8e8m0 (%s, saturate=%d)", cases[c].mode, cases[c].sat);
        uint8_t *y = cast(DUCTILE_FLOAT32, e8_in, N_E8, DUCTILE_FLOAT8E8M0, cases[c].sat, cases[c].mode);
        if (y) CHECK_EQ_INT(bytes_differ(what, y, cases[c].want, N_E8), 0);
        free(y);
    }
    /* defaults: round up, saturate */
    uint8_t *y = cast(DUCTILE_FLOAT32, e8_in, N_E8, DUCTILE_FLOAT8E8M0, -1, NULL);
    if (y) CHECK_EQ_INT(bytes_differ("float32 -> float8e8m0 (defaults)", y, e8_up_1, N_E8), 0);
    free(y);
    uint8_t codes[4] = {0, 127, 130, 255};
    float *f = cast(DUCTILE_FLOAT8E8M0, codes, 4, DUCTILE_FLOAT32, -1, NULL);
    if (f) CHECK(f[0] == 0x1p-127f && f[1] == 1.0f && f[2] == 8.0f && isnan(f[3]));
    free(f);
}

static void test_4bit_and_2bit_integers_wrap_like_ml_dtypes(void)
{
    static const struct { int t; const uint8_t *want; } cases[] = {
        {DUCTILE_UINT4, i4_UINT4}, {DUCTILE_INT4, i4_INT4}, {DUCTILE_UINT2, i4_UINT2}, {DUCTILE_INT2, i4_INT2},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char what[64];
        snprintf(what, sizeof what, "float32 -> %s", ductile_dtype_name((ductile_dtype)cases[c].t));
        uint8_t *y = cast(DUCTILE_FLOAT32, i4_in, N_I4, cases[c].t, -1, NULL);
        if (y) CHECK_EQ_INT(bytes_differ(what, y, cases[c].want, N_I4), 0);
        free(y);
    }
    /* integers wrap too; loads use only the low bits and sign-extend */
    int64_t v[5] = {-9, 7, 8, 17, -1};
    uint8_t *y = cast(DUCTILE_INT64, v, 5, DUCTILE_INT4, -1, NULL);
    if (y) CHECK(y[0] == 0x7 && y[1] == 0x7 && y[2] == 0x8 && y[3] == 0x1 && y[4] == 0xf);
    free(y);
    uint8_t raw[4] = {0x0f, 0xff, 0x08, 0x17};
    int8_t *i8 = cast(DUCTILE_INT4, raw, 4, DUCTILE_INT8, -1, NULL);
    if (i8) CHECK(i8[0] == -1 && i8[1] == -1 && i8[2] == -8 && i8[3] == 7);
    free(i8);
    uint8_t *u8 = cast(DUCTILE_UINT4, raw, 4, DUCTILE_UINT8, -1, NULL);
    if (u8) CHECK(u8[0] == 15 && u8[1] == 15 && u8[2] == 8 && u8[3] == 7);
    free(u8);
    float *f = cast(DUCTILE_INT2, raw, 4, DUCTILE_FLOAT32, -1, NULL);
    if (f) CHECK(f[0] == -1.0f && f[1] == -1.0f && f[2] == 0.0f && f[3] == -1.0f);
    free(f);
    /* int4 -> float8 and float8 -> int4 */
    uint8_t i4[3] = {0x9, 0x7, 0x0};   /* -7, 7, 0 */
    y = cast(DUCTILE_INT4, i4, 3, DUCTILE_FLOAT8E4M3FN, -1, NULL);
    if (y) CHECK(y[0] == 0xce && y[1] == 0x4e && y[2] == 0x00);
    free(y);
    uint8_t f8[3] = {0xce, 0x4e, 0x7f};  /* -7, 7, NaN */
    y = cast(DUCTILE_FLOAT8E4M3FN, f8, 3, DUCTILE_INT4, -1, NULL);
    if (y) CHECK(y[0] == 0x9 && y[1] == 0x7 && y[2] == 0x0);
    free(y);
    /* to bool: NaN is true */
    bool *b = cast(DUCTILE_FLOAT8E4M3FN, f8, 3, DUCTILE_BOOL, -1, NULL);
    if (b) CHECK(b[0] && b[1] && b[2]);
    free(b);
}

static void test_cast_check_refuses_bad_saturate_and_round_mode(void)
{
    ductile_layer *L = cast_layer(DUCTILE_FLOAT8E4M3FN, 2, NULL);
    CHECK_EQ_INT(opdef("Cast")->check(L), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(dt_last_error(), "attribute 'saturate' = 2; expected 0 or 1");
    L = cast_layer(DUCTILE_FLOAT8E8M0, 1, "sideways");
    CHECK_EQ_INT(opdef("Cast")->check(L), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK(strstr(dt_last_error(), "attribute 'round_mode' = 'sideways'") != NULL);
    L = cast_layer(27, -1, NULL);
    CHECK_EQ_INT(opdef("Cast")->check(L), DUCTILE_ERR_UNSUPPORTED);
}

static void test_bitcast_keeps_bits_and_refuses_other_widths(void)
{
    float x[2] = {1.0f, -0.0f};
    ductile_layer *L = cast_layer(DUCTILE_INT32, -1, NULL);
    L->op_type = "BitCast";
    dt_view in = {DUCTILE_FLOAT32, 1, {2}, x}, out;
    memset(&out, 0, sizeof out);
    CHECK_EQ_INT(opdef("BitCast")->infer(L, &in, &out), DUCTILE_OK);
    CHECK_EQ_INT(out.dtype, DUCTILE_INT32);
    int32_t y[2] = {0, 0};
    out.data = y;
    dt_exec ex = {0};
    CHECK_EQ_INT(kernel("BitCast")(L, &in, &out, &ex), DUCTILE_OK);
    CHECK(y[0] == 0x3f800000 && y[1] == INT32_MIN);
    /* int4 -> uint4 keeps the low four bits; int4 -> uint8 differs in width */
    uint8_t i4[2] = {0xff, 0x07}, u4[2] = {0, 0};
    L = cast_layer(DUCTILE_UINT4, -1, NULL);
    L->op_type = "BitCast";
    in = (dt_view){DUCTILE_INT4, 1, {2}, i4};
    memset(&out, 0, sizeof out);
    CHECK_EQ_INT(opdef("BitCast")->infer(L, &in, &out), DUCTILE_OK);
    out.data = u4;
    CHECK_EQ_INT(kernel("BitCast")(L, &in, &out, &ex), DUCTILE_OK);
    CHECK(u4[0] == 0xf && u4[1] == 0x7);
    L = cast_layer(DUCTILE_UINT8, -1, NULL);
    L->op_type = "BitCast";
    memset(&out, 0, sizeof out);
    CHECK_EQ_INT(opdef("BitCast")->infer(L, &in, &out), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(dt_last_error(), "BitCast from int4 (4 bits) to uint8 (8 bits): the bit widths must be equal");
}

/* ---- importer and engine: a tiny protobuf writer ---- */

static pbw tensor_proto(const char *name, int dtype, int64_t n, const void *raw, size_t raw_n,
                  const int64_t *int32_data, int n32)
{
    pbw t = {0};
    w_int(&t, 1, n);
    w_int(&t, 2, dtype);
    w_str(&t, 8, name);
    if (raw) w_bytes(&t, 9, raw, raw_n);
    if (int32_data) {
        pbw p = {0};
        for (int i = 0; i < n32; i++) w_varint(&p, (uint64_t)int32_data[i]);
        w_msg(&t, 5, p);
    }
    return t;
}

static pbw value_info(const char *name, int elem, int64_t n)
{
    pbw tt = {0}, type = {0}, v = {0}, shape = {0}, d = {0};
    w_int(&tt, 1, elem);
    w_int(&d, 1, n);
    w_msg(&shape, 1, d);
    w_msg(&tt, 2, shape);
    w_msg(&type, 1, tt);
    w_str(&v, 1, name);
    w_msg(&v, 2, type);
    return v;
}

static pbw cast_node(const char *in, const char *out, int to)
{
    pbw n = {0}, a = {0};
    w_str(&n, 1, in);
    w_str(&n, 2, out);
    w_str(&n, 4, "Cast");
    w_str(&a, 1, "to");
    w_int(&a, 3, to);
    w_int(&a, 20, 2);   /* AttributeProto.INT */
    w_msg(&n, 5, a);
    return n;
}

static pbw model(pbw graph)
{
    pbw m = {0}, o = {0};
    w_int(&m, 1, 10);
    w_str(&m, 2, "ductile-test");
    w_msg(&m, 7, graph);
    w_str(&o, 1, "");
    w_int(&o, 2, 25);
    w_msg(&m, 8, o);
    return m;
}

static void test_packed_initializers_unpack_to_one_byte_each(void)
{
    /* int4 [-1, 7, -8, 1, 2]: raw_data packs two per byte, low nibble first, the last half
     * byte padding; uint2 [3, 0, 1, 2, 3] in int32_data, four per entry; float8 one per entry. */
    const uint8_t i4_raw[3] = {0x7f, 0x18, 0x02};
    const int64_t u2_packed[2] = {0x93, 0x03};
    const int64_t f8_entries[3] = {0x38, 0xb8, 0x7f};
    pbw g = {0};
    w_str(&g, 2, "g");
    w_msg(&g, 5, tensor_proto("i4", DUCTILE_INT4, 5, i4_raw, 3, NULL, 0));
    w_msg(&g, 5, tensor_proto("u2", DUCTILE_UINT2, 5, NULL, 0, u2_packed, 2));
    w_msg(&g, 5, tensor_proto("f8", DUCTILE_FLOAT8E4M3FN, 3, NULL, 0, f8_entries, 3));
    w_msg(&g, 5, tensor_proto("u4_raw", DUCTILE_UINT4, 4, "\x21\x43", 2, NULL, 0));
    w_msg(&g, 1, cast_node("i4", "y", DUCTILE_FLOAT32));
    w_msg(&g, 12, value_info("y", DUCTILE_FLOAT32, 5));
    pbw m = model(g);
    ductile_network *n = NULL;
    if (dt_network_new(&n) != DUCTILE_OK) exit(2);
    CHECK_EQ_INT(ductile_onnx_parse_memory(n, m.p, m.n), DUCTILE_OK);
    ductile_tensor *t;
    if ((t = dt_network_find(n, "i4")) && t->data) {
        const uint8_t *d = t->data;
        CHECK_EQ_INT(t->nbytes, 5);
        CHECK(d[0] == 0xf && d[1] == 0x7 && d[2] == 0x8 && d[3] == 0x1 && d[4] == 0x2);
    } else CHECK(!"int4 initializer missing");
    if ((t = dt_network_find(n, "u2")) && t->data) {
        const uint8_t *d = t->data;
        CHECK_EQ_INT(t->nbytes, 5);
        CHECK(d[0] == 3 && d[1] == 0 && d[2] == 1 && d[3] == 2 && d[4] == 3);
    } else CHECK(!"uint2 initializer missing");
    if ((t = dt_network_find(n, "f8")) && t->data) {
        const uint8_t *d = t->data;
        CHECK(d[0] == 0x38 && d[1] == 0xb8 && d[2] == 0x7f);
    } else CHECK(!"float8 initializer missing");
    if ((t = dt_network_find(n, "u4_raw")) && t->data) {
        const uint8_t *d = t->data;
        CHECK(d[0] == 1 && d[1] == 2 && d[2] == 3 && d[3] == 4);
    } else CHECK(!"uint4 initializer missing");
    dt_network_delete(n);
    free(m.p);

    /* raw_data of the unpacked size is refused, naming the packed size */
    g = (pbw){0};
    w_str(&g, 2, "g");
    w_msg(&g, 5, tensor_proto("i4", DUCTILE_INT4, 5, "\0\0\0\0\0", 5, NULL, 0));
    w_msg(&g, 1, cast_node("i4", "y", DUCTILE_FLOAT32));
    w_msg(&g, 12, value_info("y", DUCTILE_FLOAT32, 5));
    m = model(g);
    if (dt_network_new(&n) != DUCTILE_OK) exit(2);
    CHECK_EQ_INT(ductile_onnx_parse_memory(n, m.p, m.n), DUCTILE_ERR_PARSE);
    CHECK_EQ_STR(ductile_last_error(),
                 "tensor 'i4': raw_data has 5 bytes, expected 3 (dims [5], int4, packed)");
    dt_network_delete(n);
    free(m.p);
}

static void test_engine_runs_float8_and_int4_through_serialize(void)
{
    /* x: float8e5m2 [4] input -> float32; w: int4 initializer -> float32 */
    pbw g = {0};
    w_str(&g, 2, "g");
    w_msg(&g, 5, tensor_proto("w", DUCTILE_INT4, 3, "\x9f\x07", 2, NULL, 0));
    w_msg(&g, 1, cast_node("x", "y", DUCTILE_FLOAT32));
    w_msg(&g, 1, cast_node("w", "z", DUCTILE_FLOAT32));
    w_msg(&g, 1, cast_node("x", "x8", DUCTILE_FLOAT8E4M3FN));
    w_msg(&g, 11, value_info("x", DUCTILE_FLOAT8E5M2, 4));
    w_msg(&g, 12, value_info("y", DUCTILE_FLOAT32, 4));
    w_msg(&g, 12, value_info("z", DUCTILE_FLOAT32, 3));
    w_msg(&g, 12, value_info("x8", DUCTILE_FLOAT8E4M3FN, 4));
    pbw m = model(g);
    ductile_builder *b = NULL;
    ductile_network *n = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *e = NULL, *e2 = NULL;
    ductile_context *c = NULL;
    void *bytes = NULL;
    size_t size = 0;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_create(b, &n), DUCTILE_OK);
    CHECK_EQ_INT(ductile_onnx_parse_memory(n, m.p, m.n), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_create(b, &cfg), DUCTILE_OK);
    ductile_status s = ductile_builder_build(b, n, cfg, &e);
    CHECK_EQ_INT(s, DUCTILE_OK);
    if (s) fprintf(stderr, "build: %s\n", ductile_last_error());
    if (e) {
        CHECK_EQ_INT(ductile_engine_serialize(e, &bytes, &size), DUCTILE_OK);
        CHECK_EQ_INT(ductile_engine_load_memory(bytes, size, &e2), DUCTILE_OK);
    }
    if (e2) CHECK_EQ_INT(ductile_context_create(e2, &c), DUCTILE_OK);
    if (c) {
        uint8_t x[4] = {0x3c, 0xc0, 0x7c, 0x7b};   /* 1, -2, inf, 57344 */
        float y[4], z[3];
        uint8_t x8[4];
        ductile_dims d = {1, {4}};
        CHECK_EQ_INT(ductile_context_set_input_shape(c, "x", &d), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_tensor_address(c, "x", x), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_tensor_address(c, "y", y), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_tensor_address(c, "z", z), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_tensor_address(c, "x8", x8), DUCTILE_OK);
        s = ductile_context_execute(c);
        CHECK_EQ_INT(s, DUCTILE_OK);
        if (s) fprintf(stderr, "execute: %s\n", ductile_last_error());
        if (!s) {
            CHECK(y[0] == 1.0f && y[1] == -2.0f && isinf(y[2]) && y[3] == 57344.0f);
            CHECK(z[0] == -1.0f && z[1] == -7.0f && z[2] == 7.0f);
            CHECK(x8[0] == 0x38 && x8[1] == 0xc0 && x8[2] == 0x7e && x8[3] == 0x7e);
        }
    }
    ductile_context_free(c);
    ductile_engine_free(e2);
    ductile_engine_free(e);
    ductile_free(bytes);
    ductile_config_free(cfg);
    ductile_network_free(n);
    ductile_builder_free(b);
    free(m.p);
}

int main(void)
{
    if (dt_network_new(&net) != DUCTILE_OK) return 1;
    test_new_types_take_one_byte_and_have_onnx_values();
    test_float_to_float8_matches_ml_dtypes();
    test_every_float8_code_round_trips();
    test_float8e8m0_rounds_as_onnx_helper();
    test_4bit_and_2bit_integers_wrap_like_ml_dtypes();
    test_cast_check_refuses_bad_saturate_and_round_mode();
    test_bitcast_keeps_bits_and_refuses_other_widths();
    test_packed_initializers_unpack_to_one_byte_each();
    test_engine_runs_float8_and_int4_through_serialize();
    dt_network_delete(net);
    TEST_MAIN_END();
}
