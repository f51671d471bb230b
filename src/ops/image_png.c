/* PNG through libpng, converted to 8-bit RGB as Pillow's convert("RGB") would: palettes looked
 * up (transparency ignored), low bit depths widened, 16-bit samples cut to their high byte
 * (Pillow's "RGB;16B"), alpha dropped, gray repeated; no gamma correction (Pillow applies
 * none). libpng's errors longjmp to the setjmp below, where its structures are destroyed;
 * reads past the end of the data are errors naming the offset. Chunks after the image data
 * are not read (Pillow tolerates their absence). */
#include "ops/image.h"
#include "core/status.h"

#include <string.h>

static int dt_png_sniff(const uint8_t *d, size_t n) { return n >= 8 && !memcmp(d, "\x89PNG\r\n\x1a\n", 8); }

#if DT_IMAGE_LIBS
#include <setjmp.h>
#include <stdio.h>

#include <png.h>

typedef struct dt_png_src {
    const uint8_t *d;
    size_t n, at;
    char msg[200];
} dt_png_src;

static void dt_png_error(png_structp png, png_const_charp msg)
{
    dt_png_src *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s (at byte %zu of %zu)", msg, s->at, s->n);
    png_longjmp(png, 1);
}

static void dt_png_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static void dt_png_readfn(png_structp png, png_bytep out, size_t len)
{
    dt_png_src *s = png_get_io_ptr(png);
    if (len > s->n - s->at) {
        snprintf(s->msg, sizeof s->msg, "the data ends at byte %zu; %zu more bytes were needed at byte %zu", s->n, len,
                 s->at);
        png_longjmp(png, 1);
    }
    memcpy(out, s->d + s->at, len);
    s->at += len;
}

static ductile_status dt_png_read(const uint8_t *d, size_t n, int64_t *h, int64_t *w, uint8_t *rgb)
{
    dt_png_src src = {d, n, 0, ""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, dt_png_error, dt_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "PNG: out of memory creating the decoder");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "PNG: %s", src.msg);
    }
    png_set_read_fn(png, &src, dt_png_readfn);
    png_read_info(png, info);
    png_uint_32 pw, ph;
    int depth, type, interlace;
    png_get_IHDR(png, info, &pw, &ph, &depth, &type, &interlace, NULL, NULL);
    if (!rgb) {
        *h = ph;
        *w = pw;
        png_destroy_read_struct(&png, &info, NULL);
        return DUCTILE_OK;
    }
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_strip_16(png);
    /* Palettes with transparency come out of the expansion with alpha too. */
    if ((type & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS)) png_set_strip_alpha(png);
    if (!(type & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t row = (size_t)*w * 3, got = png_get_rowbytes(png, info);
    if ((int64_t)ph != *h || (int64_t)pw != *w || got != row) {
        png_destroy_read_struct(&png, &info, NULL);
        return dt_fail(DUCTILE_ERR_INTERNAL, "PNG: rows of %zu bytes for %lld pixels", got, (long long)*w);
    }
    /* Interlaced images: every pass reads into the same rows, filling in their pixels. */
    for (int p = 0; p < passes; p++)
        for (int64_t y = 0; y < *h; y++) png_read_row(png, rgb + (size_t)y * row, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    return DUCTILE_OK;
}

static ductile_status dt_png_probe(const uint8_t *d, size_t n, int64_t *h, int64_t *w)
{
    return dt_png_read(d, n, h, w, NULL);
}

static ductile_status dt_png_decode(const uint8_t *d, size_t n, int64_t h, int64_t w, uint8_t *buf)
{
    return dt_png_read(d, n, &h, &w, buf);
}

const dt_image_codec dt_image_png = {"PNG", dt_png_sniff, dt_png_probe, dt_png_decode};
#else
DT_IMAGE_ABSENT(dt_image_png, "PNG", dt_png_sniff)
#endif
