/* JPEG through libjpeg(-turbo), set up as Pillow decodes: RGB out (CMYK and YCCK files as
 * CMYK, converted as Pillow converts them), the default (ISLOW) inverse DCT, fancy
 * upsampling. libjpeg reports errors by calling error_exit, which must not return: it
 * longjmps back to the one setjmp below, where the decompressor is destroyed (that frees
 * everything libjpeg allocated). Truncated data is an error, as in Pillow, rather than
 * libjpeg's warning and a gray-filled rest. */
#include "ops/image.h"
#include "core/status.h"

static int dt_jpeg_sniff(const uint8_t *d, size_t n) { return n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff; }

#if DT_IMAGE_LIBS
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

typedef struct dt_jpeg_err {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    int eof; /* the data ended: the offset is its end (libjpeg reads ahead of where it is) */
} dt_jpeg_err;

static void dt_jpeg_error_exit(j_common_ptr c)
{
    dt_jpeg_err *e = (dt_jpeg_err *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jump, 1);
}

/* Warnings are ignored, except the end of the data before the image's: an error. */
static void dt_jpeg_emit(j_common_ptr c, int level)
{
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) {
        ((dt_jpeg_err *)c->err)->eof = 1;
        dt_jpeg_error_exit(c);
    }
}

/* Pillow's reading of CMYK JPEG: the samples inverted (it assumes Adobe's convention, as
 * its writer does), then its cmyk2rgb: (255 - k) - c * (255 - k) / 255, the product rounded
 * as its MULDIV255. In place, CMYK words to packed RGB (pixel i is read before bytes
 * 3i..3i+2 < 4i + 4 are written). */
static void dt_jpeg_cmyk_to_rgb(uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = buf + 4 * i;
        unsigned nk = p[3], c[3] = {255u - p[0], 255u - p[1], 255u - p[2]};
        for (int k = 0; k < 3; k++) {
            unsigned t = c[k] * nk + 128;
            buf[3 * i + k] = (uint8_t)(nk - (((t >> 8) + t) >> 8));
        }
    }
}

/* Header only (rgb NULL), or the whole image into rgb (h * w * 3 bytes). */
static ductile_status dt_jpeg_read(const uint8_t *d, size_t n, int64_t *h, int64_t *w, uint8_t *rgb)
{
    struct jpeg_decompress_struct ci;
    dt_jpeg_err e;
    memset(&ci, 0, sizeof ci);
    e.eof = 0;
    ci.err = jpeg_std_error(&e.mgr);
    e.mgr.error_exit = dt_jpeg_error_exit;
    e.mgr.emit_message = dt_jpeg_emit;
    if (setjmp(e.jump)) {
        size_t at = e.eof ? n : ci.src ? n - ci.src->bytes_in_buffer : 0;
        int oom = e.mgr.msg_code == JERR_OUT_OF_MEMORY;
        jpeg_destroy_decompress(&ci);
        return dt_fail(oom ? DUCTILE_ERR_OUT_OF_MEMORY : DUCTILE_ERR_INVALID_ARGUMENT, "JPEG: %s (at byte %zu of %zu)",
                       e.msg, at, n);
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, d, (unsigned long)n);
    jpeg_read_header(&ci, TRUE);
    /* CMYK and YCCK files come out as CMYK; made RGB below, as Pillow does. */
    int cmyk = ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK;
    ci.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    ci.dct_method = JDCT_ISLOW;
    ci.do_fancy_upsampling = TRUE;
    if (!rgb) {
        jpeg_calc_output_dimensions(&ci);
        *h = ci.output_height;
        *w = ci.output_width;
        jpeg_destroy_decompress(&ci);
        return DUCTILE_OK;
    }
    jpeg_start_decompress(&ci);
    int comps = cmyk ? 4 : 3;
    if ((int64_t)ci.output_height != *h || (int64_t)ci.output_width != *w || ci.output_components != comps) {
        jpeg_destroy_decompress(&ci);
        return dt_fail(DUCTILE_ERR_INTERNAL, "JPEG: decoding gives %u x %u x %d pixels, the header %lld x %lld x %d",
                       ci.output_width, ci.output_height, ci.output_components, (long long)*w, (long long)*h, comps);
    }
    size_t row = (size_t)*w * (size_t)comps;
    while (ci.output_scanline < ci.output_height) {
        JSAMPROW p = rgb + (size_t)ci.output_scanline * row;
        jpeg_read_scanlines(&ci, &p, 1);
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    if (cmyk) dt_jpeg_cmyk_to_rgb(rgb, (size_t)(*h * *w));
    return DUCTILE_OK;
}

static ductile_status dt_jpeg_probe(const uint8_t *d, size_t n, int64_t *h, int64_t *w)
{
    return dt_jpeg_read(d, n, h, w, NULL);
}

static ductile_status dt_jpeg_decode(const uint8_t *d, size_t n, int64_t h, int64_t w, uint8_t *buf)
{
    return dt_jpeg_read(d, n, &h, &w, buf);
}

const dt_image_codec dt_image_jpeg = {"JPEG", dt_jpeg_sniff, dt_jpeg_probe, dt_jpeg_decode};
#else
DT_IMAGE_ABSENT(dt_image_jpeg, "JPEG", dt_jpeg_sniff)
#endif
