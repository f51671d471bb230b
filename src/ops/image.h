/* ImageDecoder (opset 20): the image codecs that infer and the CPU kernel share, so the output
 * shape infer announces and the pixels the kernel writes come from one reading of the bytes.
 *
 * Each format is one file (image_<format>.c): JPEG (libjpeg), PNG (libpng), TIFF (libtiff),
 * WebP (libwebp), JPEG 2000 (libopenjp2) through the system libraries; BMP and PNM parsed
 * here (a few dozen header bytes, every read bounds-checked). What is decoded is what Pillow
 * (onnx's reference implementation) makes of the file, converted to RGB as Pillow's
 * convert("RGB") does: grayscale repeated, palettes looked up, alpha dropped, CMYK converted
 * with Pillow's formula, 16-bit samples cut to 8 bits (PNG: the high byte, as Pillow).
 *
 * Errors (DUCTILE_ERR_INVALID_ARGUMENT for malformed data, DUCTILE_ERR_UNSUPPORTED for a valid
 * file ductile does not decode) start with the format ("PNG: ...") and give the byte offset at
 * fault or the library's own message. No decoder aborts, exits or leaks on any input: the
 * libraries' longjmp-based error paths are caught in the function that set them up. */
#ifndef DT_OPS_IMAGE_H
#define DT_OPS_IMAGE_H

#include "ops/op.h"

#include <stddef.h>
#include <stdint.h>

/* 0 in `make IMAGE=0` builds, which link none of the image libraries: their formats are
 * still recognised, and refused by name (DT_IMAGE_ABSENT); BMP and PNM are decoded. */
#ifndef DT_IMAGE_LIBS
#define DT_IMAGE_LIBS 1
#endif

/* The largest image decoded: H * W pixels (so the RGBA work buffer stays within 1 GiB). */
#define DT_IMAGE_MAX_PIXELS ((int64_t)1 << 28)

typedef struct dt_image_codec {
    const char *name;
    /* True when the data starts with this format's signature (n may be small). */
    int (*sniff)(const uint8_t *d, size_t n);
    /* Reads the header: *h, *w >= 1. */
    ductile_status (*probe)(const uint8_t *d, size_t n, int64_t *h, int64_t *w);
    /* Decodes an image whose probe gave h x w into buf: packed RGB rows (h * w * 3 bytes at
     * its start) on return; buf holds dt_image_work_bytes(h, w) bytes (a decoder may use all
     * of them on the way). NULL for a format this build has no library for (its probe
     * refuses first). */
    ductile_status (*decode)(const uint8_t *d, size_t n, int64_t h, int64_t w, uint8_t *buf);
} dt_image_codec;

extern const dt_image_codec dt_image_bmp, dt_image_jpeg, dt_image_jp2, dt_image_png, dt_image_pnm,
    dt_image_tiff, dt_image_webp;

/* The codec of a format whose library this build lacks: probe refuses, naming both. */
#define DT_IMAGE_ABSENT(var, label, sniff_fn)                                                          \
    static ductile_status var##_absent(const uint8_t *d, size_t n, int64_t *h, int64_t *w)             \
    {                                                                                                  \
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "%s: this build of ductile has no %s decoder (built with IMAGE=0)", \
                       label, label);                                                                  \
    }                                                                                                  \
    const dt_image_codec var = {label, sniff_fn, var##_absent, NULL};

/* The codec whose signature d starts with; NULL with DUCTILE_ERR_INVALID_ARGUMENT set (empty
 * data, or a start no supported format has, its first bytes in hex). */
ductile_status dt_image_sniff(const uint8_t *d, size_t n, const dt_image_codec **codec);
/* Sniff and probe: the codec and the size, checked against DT_IMAGE_MAX_PIXELS. */
ductile_status dt_image_probe(const uint8_t *d, size_t n, const dt_image_codec **codec, int64_t *h,
                              int64_t *w);
/* Bytes of the decode buffer for an h x w image: h * w * 4 (false when h or w is < 1 or the
 * image exceeds DT_IMAGE_MAX_PIXELS). */
int dt_image_work_bytes(int64_t h, int64_t w, size_t *bytes);

/* Pixel formats of the attribute pixel_format (image.c). */
enum { DT_IMAGE_RGB, DT_IMAGE_BGR, DT_IMAGE_GRAY };
/* The attribute, read (the check has refused other strings): DT_IMAGE_*. */
int dt_image_pixel_format(const ductile_layer *L);
/* Pillow's convert("L") (ITU-R 601-2 luma, 16-bit fixed point rounded): rgb[n * 3] -> y[n]. */
void dt_image_rgb_to_gray(const uint8_t *rgb, uint8_t *y, int64_t n);

/* Op definition (image.c), an entry of the vision family. */
ductile_status dt_image_check(const ductile_layer *L);
ductile_status dt_image_infer(const ductile_layer *L, const dt_view *in, dt_view *out);

#endif
