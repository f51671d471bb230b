/* WebP through libwebp's advanced decoding API, straight into the caller's buffer as RGB
 * (libwebp's default fancy upsampling, as Pillow gets). An animated file gives its first
 * frame on the canvas, through libwebpdemux's animation decoder as Pillow reads it (the
 * canvas outside the frame is black). */
#include "ops/image.h"
#include "core/status.h"

#include <string.h>

static int dt_webp_sniff(const uint8_t *d, size_t n) { return n >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4); }

#if DT_IMAGE_LIBS
#include <webp/decode.h>
#include <webp/demux.h>

static const char *dt_webp_status(VP8StatusCode s)
{
    switch (s) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "the data ends before the image does";
    default: return "unknown error";
    }
}

static ductile_status dt_webp_probe(const uint8_t *d, size_t n, int64_t *h, int64_t *w)
{
    WebPBitstreamFeatures f;
    VP8StatusCode s = WebPGetFeatures(d, n, &f);
    if (s != VP8_STATUS_OK)
        return dt_fail(s == VP8_STATUS_OUT_OF_MEMORY ? DUCTILE_ERR_OUT_OF_MEMORY : DUCTILE_ERR_INVALID_ARGUMENT,
                       "WebP: %s (libwebp status %d reading the header of %zu bytes)", dt_webp_status(s), (int)s, n);
    *h = f.height;
    *w = f.width;
    return DUCTILE_OK;
}

/* The first frame of an animation, composed on the canvas (RGBA, libwebpdemux's memory). */
static ductile_status dt_webp_decode_first_frame(const uint8_t *d, size_t n, int64_t h, int64_t w, uint8_t *buf)
{
    WebPAnimDecoderOptions o;
    if (!WebPAnimDecoderOptionsInit(&o)) return dt_fail(DUCTILE_ERR_INTERNAL, "WebP: libwebpdemux's version does not match its header");
    o.color_mode = MODE_RGBA;
    o.use_threads = 0;
    WebPData data = {d, n};
    WebPAnimDecoder *dec = WebPAnimDecoderNew(&data, &o);
    if (!dec) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "WebP: libwebpdemux could not read the animation (%zu bytes)", n);
    WebPAnimInfo info;
    uint8_t *rgba = NULL;
    int ts = 0;
    if (!WebPAnimDecoderGetInfo(dec, &info) || info.canvas_width != w || info.canvas_height != h ||
        !WebPAnimDecoderGetNext(dec, &rgba, &ts) || !rgba) {
        WebPAnimDecoderDelete(dec);
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "WebP: the first frame of the animation could not be decoded (%zu bytes)", n);
    }
    for (size_t i = 0, count = (size_t)(h * w); i < count; i++) memcpy(buf + 3 * i, rgba + 4 * i, 3);
    WebPAnimDecoderDelete(dec);
    return DUCTILE_OK;
}

static ductile_status dt_webp_decode(const uint8_t *d, size_t n, int64_t h, int64_t w, uint8_t *buf)
{
    WebPBitstreamFeatures f;
    if (WebPGetFeatures(d, n, &f) == VP8_STATUS_OK && f.has_animation) return dt_webp_decode_first_frame(d, n, h, w, buf);
    WebPDecoderConfig c;
    if (!WebPInitDecoderConfig(&c)) return dt_fail(DUCTILE_ERR_INTERNAL, "WebP: libwebp's version does not match its header");
    c.output.colorspace = MODE_RGB;
    c.output.is_external_memory = 1;
    c.output.u.RGBA.rgba = buf;
    c.output.u.RGBA.stride = (int)(w * 3);
    c.output.u.RGBA.size = (size_t)(h * w * 3);
    VP8StatusCode s = WebPDecode(d, n, &c);
    int ow = c.output.width, oh = c.output.height;
    WebPFreeDecBuffer(&c.output);
    if (s != VP8_STATUS_OK)
        return dt_fail(s == VP8_STATUS_OUT_OF_MEMORY ? DUCTILE_ERR_OUT_OF_MEMORY : DUCTILE_ERR_INVALID_ARGUMENT,
                       "WebP: %s (libwebp status %d decoding %zu bytes)", dt_webp_status(s), (int)s, n);
    if (ow != w || oh != h)
        return dt_fail(DUCTILE_ERR_INTERNAL, "WebP: decoding gives %d x %d pixels, the header %lld x %lld", ow, oh,
                       (long long)w, (long long)h);
    return DUCTILE_OK;
}

const dt_image_codec dt_image_webp = {"WebP", dt_webp_sniff, dt_webp_probe, dt_webp_decode};
#else
DT_IMAGE_ABSENT(dt_image_webp, "WebP", dt_webp_sniff)
#endif
