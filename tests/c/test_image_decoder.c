/* ImageDecoder's codecs (src/ops/image*.c) on the image seeds (fuzz/corpus/image, written by
 * scripts/make_fuzz_seeds.py with Pillow): the lossless files decode to rgb.ppm's pixels;
 * every prefix of every file and thousands of files with random bytes changed give a status
 * whose message names the format, never a crash (run it under ASan: `make asan-test`, or
 * build this test with -fsanitize=address, which also reports leaks on the error paths);
 * sizes past DT_IMAGE_MAX_PIXELS and compressed BMPs are refused with exact messages. In a
 * `make IMAGE=0` build the formats of the libraries are refused by name instead. */
#include "core/status.h"
#include "ops/image.h"
#include "testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const FILES[] = {
    "rgb.ppm", "rgb.png", "rgb.bmp", "rgb.tif", "rgb_lzw.tif", "rgb.webp", "rgb.jp2", "rgb.j2k",
    "rgb.jpg", "gray_progressive.jpg", "lossy.webp", "palette_trns.png", "palette4.bmp", "gray.pgm", "bits.pbm",
    "cmyk.jpg", "animated.webp",
};
/* The ones that hold rgb.ppm's pixels exactly (FILES[0..LOSSLESS)). */
enum { N_FILES = sizeof FILES / sizeof FILES[0], LOSSLESS = 8 };

/* Decodes beyond this many bytes are skipped in the fuzz loops (a changed header may ask for
 * a large image; the size checks themselves run, only the buffer is not made). */
#define WORK_CAP ((size_t)1 << 24)

static uint8_t *read_file(const char *name, size_t *n)
{
    char path[256];
    snprintf(path, sizeof path, "fuzz/corpus/image/%s", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s (run from the repository root)\n", path);
        return NULL;
    }
    uint8_t *d = malloc(1 << 16);
    *n = d ? fread(d, 1, 1 << 16, f) : 0;
    fclose(f);
    return d;
}

/* Probe, then decode into a fresh buffer; *rgb (malloc'd, h * w * 3 bytes) on success. */
static ductile_status decode(const uint8_t *d, size_t n, int64_t *h, int64_t *w, uint8_t **rgb)
{
    *rgb = NULL;
    const dt_image_codec *c;
    DT_TRY(dt_image_probe(d, n, &c, h, w));
    size_t bytes;
    CHECK(dt_image_work_bytes(*h, *w, &bytes));
    if (bytes > WORK_CAP) return DUCTILE_OK;
    uint8_t *buf = malloc(bytes);
    if (!buf) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "test: out of memory");
    ductile_status s = c->decode(d, n, *h, *w, buf);
    if (s) {
        free(buf);
        return s;
    }
    *rgb = buf;
    return DUCTILE_OK;
}

/* A failure's message starts with the format the bytes were taken for, or says none was. */
static void check_message(const uint8_t *d, size_t n, ductile_status s)
{
    CHECK(s == DUCTILE_ERR_INVALID_ARGUMENT || s == DUCTILE_ERR_UNSUPPORTED || s == DUCTILE_ERR_OUT_OF_MEMORY);
    const dt_image_codec *c;
    ductile_status sn = dt_image_sniff(d, n, &c);
    const char *msg = dt_last_error();
    if (sn) {
        CHECK(!strncmp(msg, "the encoded image ", 18));
        return;
    }
    char want[32];
    snprintf(want, sizeof want, "%s: ", c->name);
    if (strncmp(msg, want, strlen(want)) != 0) {
        fprintf(stderr, "  message without its format (%s): %s\n", c->name, msg);
        CHECK(0);
    }
}

static void test_lossless_files_decode_to_the_ppm_pixels(uint8_t *const *data, const size_t *len)
{
    /* rgb.ppm is "P6\n7 5\n255\n" and the raster: its last 7 * 5 * 3 bytes. */
    CHECK(len[0] >= 105);
    const uint8_t *want = data[0] + len[0] - 105;
    for (int f = 0; f < LOSSLESS; f++) {
        int64_t h = 0, w = 0;
        uint8_t *rgb;
        ductile_status s = decode(data[f], len[f], &h, &w, &rgb);
        const dt_image_codec *c;
        if (!DT_IMAGE_LIBS && !dt_image_sniff(data[f], len[f], &c) && !c->decode) {
            /* make IMAGE=0: the format is named and refused. */
            char want[160];
            snprintf(want, sizeof want, "%s: this build of ductile has no %s decoder (built with IMAGE=0)", c->name,
                     c->name);
            CHECK_EQ_INT(s, DUCTILE_ERR_UNSUPPORTED);
            CHECK_EQ_STR(dt_last_error(), want);
            continue;
        }
        if (s) fprintf(stderr, "  %s: %s\n", FILES[f], dt_last_error());
        CHECK_EQ_INT(s, DUCTILE_OK);
        CHECK_EQ_INT(h, 5);
        CHECK_EQ_INT(w, 7);
        if (!s && rgb && memcmp(rgb, want, 105) != 0) {
            fprintf(stderr, "  %s: pixels differ from rgb.ppm\n", FILES[f]);
            CHECK(0);
        }
        free(rgb);
    }
}

/* Every prefix: a status and a named format; one that decodes has the whole file's size. */
static void test_every_prefix_gives_a_status(uint8_t *const *data, const size_t *len)
{
    for (int f = 0; f < N_FILES; f++) {
        int64_t fh = 0, fw = 0;
        uint8_t *rgb;
        ductile_status s = decode(data[f], len[f], &fh, &fw, &rgb);
        CHECK_EQ_INT(s, DT_IMAGE_LIBS || s == DUCTILE_OK ? DUCTILE_OK : DUCTILE_ERR_UNSUPPORTED);
        free(rgb);
        if (s) continue;
        int refused = 0;
        for (size_t k = 0; k < len[f]; k++) {
            /* A copy of exactly k bytes, so ASan sees any read past the prefix. */
            uint8_t *p = malloc(k ? k : 1);
            memcpy(p, data[f], k);
            int64_t h = 0, w = 0;
            s = decode(p, k, &h, &w, &rgb);
            if (s) {
                check_message(p, k, s);
                refused++;
            } else {
                CHECK(h == fh && w == fw);
            }
            free(rgb);
            free(p);
        }
        /* The header at least must be there: most prefixes are refused. */
        CHECK(refused > (int)len[f] / 2);
    }
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void test_changed_bytes_give_a_status(uint8_t *const *data, const size_t *len)
{
    uint32_t seed = 12345;
    int decoded = 0, refused = 0;
    for (int f = 0; f < N_FILES; f++)
        for (int it = 0; it < 400; it++) {
            size_t n = len[f];
            uint8_t *p = malloc(n);
            memcpy(p, data[f], n);
            int flips = 1 + (int)(lcg(&seed) % 4);
            for (int k = 0; k < flips; k++) {
                size_t at = lcg(&seed) % n;
                /* Half the time a header byte, where a change reaches the most code. */
                if (lcg(&seed) & 1) at %= n < 64 ? n : 64;
                p[at] = (uint8_t)lcg(&seed);
            }
            int64_t h, w;
            uint8_t *rgb;
            ductile_status s = decode(p, n, &h, &w, &rgb);
            if (s) {
                check_message(p, n, s);
                refused++;
            } else {
                decoded++;
            }
            free(rgb);
            free(p);
        }
    /* Both ways happen: the loop reaches the decoders, not only the header checks. */
    CHECK(decoded > (DT_IMAGE_LIBS ? 100 : 10));
    CHECK(refused > 100);
}

static void test_refusals_name_what_is_not_decoded(void)
{
    const dt_image_codec *c;
    int64_t h, w;
    const char *big = "P6 100000 100000 255\n";
    CHECK_EQ_INT(dt_image_probe((const uint8_t *)big, strlen(big), &c, &h, &w), DUCTILE_ERR_UNSUPPORTED);
    CHECK_EQ_STR(dt_last_error(), "PNM: the image is 100000 x 100000 pixels; ductile decodes at most 268435456 pixels");
    /* An 8-bit BMP with RLE8 (compression 1). */
    uint8_t bmp[64] = {'B', 'M'};
    bmp[10] = 62, bmp[14] = 40, bmp[18] = 2, bmp[22] = 2, bmp[26] = 1, bmp[28] = 8, bmp[30] = 1;
    CHECK_EQ_INT(dt_image_probe(bmp, sizeof bmp, &c, &h, &w), DUCTILE_ERR_UNSUPPORTED);
    CHECK_EQ_STR(dt_last_error(),
                 "BMP: compression 1 with 8 bits per pixel; ductile decodes uncompressed (0) and bit masks (3, 6) at 16 and 32 bits");
    CHECK_EQ_INT(dt_image_probe(bmp, 0, &c, &h, &w), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_STR(dt_last_error(), "the encoded image is empty");
}

int main(void)
{
    uint8_t *data[N_FILES];
    size_t len[N_FILES];
    for (int f = 0; f < N_FILES; f++) {
        data[f] = read_file(FILES[f], &len[f]);
        if (!data[f] || len[f] == 0) return 1;
    }
    test_lossless_files_decode_to_the_ppm_pixels(data, len);
    test_every_prefix_gives_a_status(data, len);
    test_changed_bytes_give_a_status(data, len);
    test_refusals_name_what_is_not_decoded();
    for (int f = 0; f < N_FILES; f++) free(data[f]);
    TEST_MAIN_END();
}
