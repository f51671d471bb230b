/* TIFF through libtiff's RGBA interface (every photometric interpretation, compression and bit
 * depth libtiff knows, converted to 8-bit RGBA), first image of the file, alpha dropped;
 * unassociated alpha and CMYK as Pillow reads them (dt_tiff_as_pillow).
 * Messages come from a handler of this open (TIFFOpenOptions), not libtiff's global one, so
 * threads decoding at once do not share them. */
#include "ops/image.h"
#include "core/status.h"

static int dt_tiff_sniff(const uint8_t *d, size_t n)
{
    return n >= 4 && ((d[0] == 'I' && d[1] == 'I' && (d[2] == 42 || d[2] == 43) && d[3] == 0) ||
                      (d[0] == 'M' && d[1] == 'M' && d[2] == 0 && (d[3] == 42 || d[3] == 43)));
}

#if DT_IMAGE_LIBS
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <tiffio.h>

typedef struct dt_tiff_src {
    const uint8_t *d;
    toff_t n, at;
    char msg[256];
} dt_tiff_src;

static tmsize_t dt_tiff_readfn(thandle_t h, void *buf, tmsize_t size)
{
    dt_tiff_src *s = h;
    if (size < 0) return -1;
    toff_t k = s->at >= s->n ? 0 : s->n - s->at;
    if ((toff_t)size < k) k = (toff_t)size;
    if (k) memcpy(buf, s->d + s->at, (size_t)k);
    s->at += k;
    return (tmsize_t)k;
}

static tmsize_t dt_tiff_writefn(thandle_t h, void *buf, tmsize_t size) { return 0; }

/* Positions past the end are allowed (reads there return nothing), as on a file. */
static toff_t dt_tiff_seekfn(thandle_t h, toff_t off, int whence)
{
    dt_tiff_src *s = h;
    toff_t base = whence == SEEK_CUR ? s->at : whence == SEEK_END ? s->n : 0;
    if (off > UINT64_MAX - base) return (toff_t)-1;
    s->at = base + off;
    return s->at;
}

static int dt_tiff_closefn(thandle_t h) { return 0; }
static toff_t dt_tiff_sizefn(thandle_t h) { return ((dt_tiff_src *)h)->n; }
static int dt_tiff_mapfn(thandle_t h, void **base, toff_t *size) { return 0; }
static void dt_tiff_unmapfn(thandle_t h, void *base, toff_t size) {}

/* The first error is kept; libtiff often adds a second, vaguer one on the way out. */
static int dt_tiff_error(TIFF *t, void *user, const char *module, const char *fmt, va_list ap)
{
    dt_tiff_src *s = user;
    if (!s->msg[0]) {
        int k = module ? snprintf(s->msg, sizeof s->msg, "%s: ", module) : 0;
        if (k < 0 || (size_t)k >= sizeof s->msg) k = 0;
        vsnprintf(s->msg + k, sizeof s->msg - (size_t)k, fmt, ap);
    }
    return 1;
}

static int dt_tiff_warning(TIFF *t, void *user, const char *module, const char *fmt, va_list ap) { return 1; }

/* Where libtiff's RGBA reading and Pillow part, this open's copy of the directory is changed
 * (the file is not) so that libtiff hands over the samples as they are:
 * - unassociated alpha: libtiff multiplies the colours by it, Pillow keeps them; declared
 *   associated, they pass through;
 * - 8-bit CMYK: libtiff's conversion truncates where Pillow's rounds; read as RGB plus an
 *   associated alpha, the four inks arrive as R, G, B, A and are converted here (returns 1). */
static int dt_tiff_as_pillow(TIFF *t)
{
    uint16_t photometric = 0, spp = 1, bps = 1, inkset = INKSET_CMYK, nextra = 0, *extra = NULL;
    TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &photometric);
    TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(t, TIFFTAG_INKSET, &inkset);
    if (photometric == PHOTOMETRIC_SEPARATED && inkset == INKSET_CMYK && spp == 4 && bps == 8) {
        uint16_t assoc = EXTRASAMPLE_ASSOCALPHA;
        if (TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB) && TIFFSetField(t, TIFFTAG_EXTRASAMPLES, 1, &assoc))
            return 1;
        TIFFSetField(t, TIFFTAG_PHOTOMETRIC, photometric);
        return 0;
    }
    if (TIFFGetField(t, TIFFTAG_EXTRASAMPLES, &nextra, &extra) && nextra >= 1 && nextra <= 8 &&
        extra[0] == EXTRASAMPLE_UNASSALPHA) {
        uint16_t types[8];
        memcpy(types, extra, nextra * sizeof *types);
        types[0] = EXTRASAMPLE_ASSOCALPHA;
        TIFFSetField(t, TIFFTAG_EXTRASAMPLES, nextra, types);
    }
    return 0;
}

static ductile_status dt_tiff_read(const uint8_t *d, size_t n, int64_t *h, int64_t *w, uint8_t *buf)
{
    dt_tiff_src src = {d, n, 0, ""};
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (!opts) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "TIFF: out of memory creating the decoder");
    TIFFOpenOptionsSetErrorHandlerExtR(opts, dt_tiff_error, &src);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, dt_tiff_warning, &src);
    /* No single allocation of libtiff larger than the largest RGBA image decoded. */
    size_t cap = (size_t)DT_IMAGE_MAX_PIXELS * 4;
    TIFFOpenOptionsSetMaxSingleMemAlloc(opts, (tmsize_t)cap);
    TIFF *t = TIFFClientOpenExt("data", "rm", &src, dt_tiff_readfn, dt_tiff_writefn, dt_tiff_seekfn, dt_tiff_closefn,
                                dt_tiff_sizefn, dt_tiff_mapfn, dt_tiff_unmapfn, opts);
    TIFFOpenOptionsFree(opts);
    if (!t)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "TIFF: %s", src.msg[0] ? src.msg : "libtiff could not open the data");
    uint32_t tw = 0, th = 0;
    if (!TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &tw) || !TIFFGetField(t, TIFFTAG_IMAGELENGTH, &th) || !tw || !th) {
        TIFFClose(t);
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "TIFF: the first image has no width or length (%u x %u)", tw, th);
    }
    if (!buf) {
        *h = th;
        *w = tw;
        TIFFClose(t);
        return DUCTILE_OK;
    }
    int cmyk = dt_tiff_as_pillow(t);
    char emsg[1024] = "";
    if (!TIFFRGBAImageOK(t, emsg)) {
        TIFFClose(t);
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "TIFF: %s", emsg);
    }
    /* ABGR words, top row first, into the whole buffer (h * w * 4 bytes). */
    uint32_t *px = (uint32_t *)buf;
    int ok = TIFFReadRGBAImageOriented(t, tw, th, px, ORIENTATION_TOPLEFT, 1);
    TIFFClose(t);
    if (!ok) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "TIFF: %s", src.msg[0] ? src.msg : "libtiff could not decode the image");
    /* Packed RGB over the same bytes: pixel i's word is read before bytes 3i..3i+2 (< 4i + 4)
     * are written, and no later word starts before 4(i + 1). */
    size_t count = (size_t)tw * th;
    for (size_t i = 0; i < count; i++) {
        uint32_t v = px[i];
        uint8_t rgb[3] = {(uint8_t)TIFFGetR(v), (uint8_t)TIFFGetG(v), (uint8_t)TIFFGetB(v)};
        if (cmyk) {
            /* C, M, Y in R, G, B and K in A: Pillow's cmyk2rgb, (255 - k) - c * (255 - k) / 255
             * with the product rounded as its MULDIV255. */
            unsigned nk = 255u - TIFFGetA(v);
            for (int k = 0; k < 3; k++) {
                unsigned p = rgb[k] * nk + 128;
                rgb[k] = (uint8_t)(nk - (((p >> 8) + p) >> 8));
            }
        }
        memcpy(buf + 3 * i, rgb, 3);
    }
    return DUCTILE_OK;
}

static ductile_status dt_tiff_probe(const uint8_t *d, size_t n, int64_t *h, int64_t *w)
{
    return dt_tiff_read(d, n, h, w, NULL);
}

static ductile_status dt_tiff_decode(const uint8_t *d, size_t n, int64_t h, int64_t w, uint8_t *buf)
{
    return dt_tiff_read(d, n, &h, &w, buf);
}

const dt_image_codec dt_image_tiff = {"TIFF", dt_tiff_sniff, dt_tiff_probe, dt_tiff_decode};
#else
DT_IMAGE_ABSENT(dt_image_tiff, "TIFF", dt_tiff_sniff)
#endif
