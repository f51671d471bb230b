/* ImageDecoder: which codec reads the bytes, the op's check and infer, and the colour rules
 * every codec shares (ops/image.h). */
#include "ops/image.h"
#include "core/checked.h"
#include "core/status.h"

#include <stdio.h>
#include <string.h>

static const dt_image_codec *const dt_codecs[] = {
    &dt_image_jpeg, &dt_image_png, &dt_image_bmp, &dt_image_webp, &dt_image_tiff, &dt_image_jp2, &dt_image_pnm,
};

ductile_status dt_image_sniff(const uint8_t *d, size_t n, const dt_image_codec **codec)
{
    *codec = NULL;
    if (n == 0) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "the encoded image is empty");
    for (size_t i = 0; i < sizeof dt_codecs / sizeof dt_codecs[0]; i++)
        if (dt_codecs[i]->sniff(d, n)) {
            *codec = dt_codecs[i];
            return DUCTILE_OK;
        }
    char hex[3 * 8 + 1] = "";
    for (size_t i = 0, k = 0; i < n && i < 8; i++) k += (size_t)snprintf(hex + k, sizeof hex - k, "%s%02x", i ? " " : "", d[i]);
    return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                   "the encoded image starts with bytes %s, the signature of no supported format (BMP, JPEG, JPEG 2000, PNG, PNM, TIFF, WebP)",
                   hex);
}

int dt_image_work_bytes(int64_t h, int64_t w, size_t *bytes)
{
    int64_t px;
    if (h < 1 || w < 1 || !dt_mul_i64(h, w, &px) || px > DT_IMAGE_MAX_PIXELS) return 0;
    *bytes = (size_t)px * 4;
    return 1;
}

ductile_status dt_image_probe(const uint8_t *d, size_t n, const dt_image_codec **codec, int64_t *h,
                              int64_t *w)
{
    DT_TRY(dt_image_sniff(d, n, codec));
    DT_TRY((*codec)->probe(d, n, h, w));
    size_t bytes;
    if (!dt_image_work_bytes(*h, *w, &bytes))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "%s: the image is %lld x %lld pixels; ductile decodes at most %lld pixels",
                       (*codec)->name, (long long)*w, (long long)*h, (long long)DT_IMAGE_MAX_PIXELS);
    return DUCTILE_OK;
}

void dt_image_rgb_to_gray(const uint8_t *rgb, uint8_t *y, int64_t n)
{
    /* Pillow's L24: 0.299, 0.587, 0.114 in 16-bit fixed point, rounded; the weights sum to
     * 65536, so a gray pixel stays itself. */
    for (int64_t i = 0; i < n; i++, rgb += 3)
        y[i] = (uint8_t)((rgb[0] * 19595u + rgb[1] * 38470u + rgb[2] * 7471u + 0x8000u) >> 16);
}

int dt_image_pixel_format(const ductile_layer *L)
{
    const char *f = dt_attr_string(L, "pixel_format", "RGB");
    return !strcmp(f, "BGR") ? DT_IMAGE_BGR : !strcmp(f, "Grayscale") ? DT_IMAGE_GRAY : DT_IMAGE_RGB;
}

ductile_status dt_image_check(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 1, 1, 1, 1, NULL));
    const char *f = dt_attr_string(L, "pixel_format", "RGB");
    if (strcmp(f, "RGB") && strcmp(f, "BGR") && strcmp(f, "Grayscale"))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'pixel_format' = '%s'; expected 'RGB', 'BGR' or 'Grayscale'", f);
    return DUCTILE_OK;
}

/* The output is [H, W, C]: H and W from the image's header, so the data must be known (the
 * engine runs eagerly unless the bytes are a constant). */
ductile_status dt_image_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    const char *name = L->in[0] ? L->in[0]->name : "";
    if (in[0].dtype != DUCTILE_UINT8 || in[0].rank != 1) {
        char s[160];
        dt_format_dims(s, sizeof s, in[0].dims, in[0].rank, NULL);
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 0 ('%s') is %s %s; expected a 1-D uint8 tensor of encoded bytes",
                       name, ductile_dtype_name((ductile_dtype)in[0].dtype), s);
    }
    out[0].dtype = DUCTILE_UINT8;
    out[0].rank = 3;
    if (!in[0].data)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the output shape depends on the data of input 0 ('%s')", name);
    const dt_image_codec *c;
    int64_t h, w;
    ductile_status s = dt_image_probe(in[0].data, (size_t)in[0].dims[0], &c, &h, &w);
    if (s) return dt_fail_prefix(s, "input 0 ('%s')", name);
    out[0].dims[0] = h;
    out[0].dims[1] = w;
    out[0].dims[2] = dt_image_pixel_format(L) == DT_IMAGE_GRAY ? 1 : 3;
    return DUCTILE_OK;
}
