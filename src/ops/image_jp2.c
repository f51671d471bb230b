/* JPEG 2000 (a JP2 file or a bare J2K codestream) through libopenjp2, read from memory with a
 * stream of our own. Components become 8-bit as Pillow makes them: signed samples offset by
 * half their range, then shifted to 8 bits (right for deeper samples, left for shallower);
 * one or two components are gray (with alpha), three or four RGB (with alpha). Subsampled
 * components are spread over the pixels they cover. */
#include "ops/image.h"
#include "core/status.h"

#include <string.h>

static const uint8_t dt_jp2_box[12] = {0, 0, 0, 12, 'j', 'P', ' ', ' ', 0x0d, 0x0a, 0x87, 0x0a};

static int dt_jp2_is_jp2(const uint8_t *d, size_t n) { return n >= 12 && !memcmp(d, dt_jp2_box, 12); }
static int dt_jp2_sniff(const uint8_t *d, size_t n)
{
    return dt_jp2_is_jp2(d, n) || (n >= 4 && d[0] == 0xff && d[1] == 0x4f && d[2] == 0xff && d[3] == 0x51);
}

#if DT_IMAGE_LIBS
#include <stdio.h>

#include <openjpeg.h>

typedef struct dt_jp2_src {
    const uint8_t *d;
    size_t n, at;
    char msg[256];
} dt_jp2_src;

static OPJ_SIZE_T dt_jp2_readfn(void *buf, OPJ_SIZE_T len, void *user)
{
    dt_jp2_src *s = user;
    if (s->at >= s->n) return (OPJ_SIZE_T)-1;
    size_t k = s->n - s->at < len ? s->n - s->at : len;
    memcpy(buf, s->d + s->at, k);
    s->at += k;
    return k;
}

static OPJ_OFF_T dt_jp2_skipfn(OPJ_OFF_T len, void *user)
{
    dt_jp2_src *s = user;
    if (len < 0 ? (uint64_t)-(len + 1) + 1 > s->at : (uint64_t)len > s->n - s->at) {
        s->at = len < 0 ? 0 : s->n;
        return -1;
    }
    s->at = (size_t)((OPJ_OFF_T)s->at + len);
    return len;
}

static OPJ_BOOL dt_jp2_seekfn(OPJ_OFF_T pos, void *user)
{
    dt_jp2_src *s = user;
    if (pos < 0 || (uint64_t)pos > s->n) return OPJ_FALSE;
    s->at = (size_t)pos;
    return OPJ_TRUE;
}

/* The first error is kept, without libopenjp2's trailing newline and spaces. */
static void dt_jp2_error(const char *msg, void *user)
{
    dt_jp2_src *s = user;
    if (s->msg[0]) return;
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    size_t k = strlen(s->msg);
    while (k && (s->msg[k - 1] == '\n' || s->msg[k - 1] == '\r' || s->msg[k - 1] == ' ')) s->msg[--k] = 0;
}

static void dt_jp2_quiet(const char *msg, void *user) { (void)msg, (void)user; }

typedef struct dt_jp2_dec {
    dt_jp2_src src;
    opj_codec_t *codec;
    opj_stream_t *stream;
    opj_image_t *image;
} dt_jp2_dec;

static void dt_jp2_close(dt_jp2_dec *j)
{
    if (j->image) opj_image_destroy(j->image);
    if (j->stream) opj_stream_destroy(j->stream);
    if (j->codec) opj_destroy_codec(j->codec);
}

static ductile_status dt_jp2_fail(dt_jp2_dec *j, const char *what)
{
    ductile_status s = dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "JPEG 2000: %s (%s; at byte %zu of %zu)",
                               j->src.msg[0] ? j->src.msg : "libopenjp2 gave no reason", what, j->src.at, j->src.n);
    dt_jp2_close(j);
    return s;
}

/* Opens the codec and reads the header into j->image. */
static ductile_status dt_jp2_open(dt_jp2_dec *j, const uint8_t *d, size_t n)
{
    memset(j, 0, sizeof *j);
    j->src.d = d;
    j->src.n = n;
    j->codec = opj_create_decompress(dt_jp2_is_jp2(d, n) ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K);
    j->stream = opj_stream_create(OPJ_J2K_STREAM_CHUNK_SIZE, OPJ_TRUE);
    if (!j->codec || !j->stream) {
        dt_jp2_close(j);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "JPEG 2000: out of memory creating the decoder");
    }
    opj_set_error_handler(j->codec, dt_jp2_error, &j->src);
    opj_set_warning_handler(j->codec, dt_jp2_quiet, &j->src);
    opj_set_info_handler(j->codec, dt_jp2_quiet, &j->src);
    opj_stream_set_read_function(j->stream, dt_jp2_readfn);
    opj_stream_set_skip_function(j->stream, dt_jp2_skipfn);
    opj_stream_set_seek_function(j->stream, dt_jp2_seekfn);
    opj_stream_set_user_data(j->stream, &j->src, NULL);
    opj_stream_set_user_data_length(j->stream, n);
    opj_dparameters_t p;
    opj_set_default_decoder_parameters(&p);
    if (!opj_setup_decoder(j->codec, &p)) return dt_jp2_fail(j, "setting up the decoder");
    if (!opj_read_header(j->stream, j->codec, &j->image) || !j->image) return dt_jp2_fail(j, "reading the header");
    const opj_image_t *im = j->image;
    if (im->x1 <= im->x0 || im->y1 <= im->y0 || im->numcomps < 1) {
        snprintf(j->src.msg, sizeof j->src.msg, "the image area is [%u, %u) x [%u, %u) with %u components", im->x0, im->x1,
                 im->y0, im->y1, im->numcomps);
        return dt_jp2_fail(j, "reading the header");
    }
    return DUCTILE_OK;
}

static ductile_status dt_jp2_probe(const uint8_t *d, size_t n, int64_t *h, int64_t *w)
{
    dt_jp2_dec j;
    DT_TRY(dt_jp2_open(&j, d, n));
    *w = j.image->x1 - j.image->x0;
    *h = j.image->y1 - j.image->y0;
    dt_jp2_close(&j);
    return DUCTILE_OK;
}

/* Sample (x, y) of the image from component c, as 8 bits. */
static uint8_t dt_jp2_sample(const opj_image_t *im, const opj_image_comp_t *c, int64_t x, int64_t y)
{
    int64_t cx = (int64_t)(im->x0 + x) / c->dx - c->x0, cy = (int64_t)(im->y0 + y) / c->dy - c->y0;
    if (cx < 0) cx = 0;
    if (cx >= c->w) cx = c->w - 1;
    if (cy < 0) cy = 0;
    if (cy >= c->h) cy = c->h - 1;
    int64_t v = c->data[cy * c->w + cx];
    if (c->sgnd) v += (int64_t)1 << (c->prec - 1);
    v = c->prec > 8 ? v >> (c->prec - 8) : v << (8 - c->prec);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static ductile_status dt_jp2_decode(const uint8_t *d, size_t n, int64_t h, int64_t w, uint8_t *buf)
{
    dt_jp2_dec j;
    DT_TRY(dt_jp2_open(&j, d, n));
    opj_image_t *im = j.image;
    if ((int64_t)(im->x1 - im->x0) != w || (int64_t)(im->y1 - im->y0) != h) {
        dt_jp2_close(&j);
        return dt_fail(DUCTILE_ERR_INTERNAL, "JPEG 2000: the header changed between probe and decode");
    }
    if (!opj_decode(j.codec, j.stream, im)) return dt_jp2_fail(&j, "decoding");
    if (!opj_end_decompress(j.codec, j.stream)) return dt_jp2_fail(&j, "finishing");
    if (im->color_space == OPJ_CLRSPC_SYCC || im->color_space == OPJ_CLRSPC_CMYK || im->color_space == OPJ_CLRSPC_EYCC) {
        dt_jp2_close(&j);
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "JPEG 2000: the image is in %s; ductile decodes gray and RGB",
                       im->color_space == OPJ_CLRSPC_CMYK ? "CMYK" : "YCC");
    }
    int planes = im->numcomps >= 3 ? 3 : 1;
    for (int k = 0; k < planes; k++) {
        const opj_image_comp_t *c = &im->comps[k];
        if (!c->data || !c->w || !c->h || !c->dx || !c->dy || c->prec < 1 || c->prec > 31) {
            snprintf(j.src.msg, sizeof j.src.msg, "component %d has no samples or a precision of %u bits", k, c->prec);
            return dt_jp2_fail(&j, "decoding");
        }
    }
    for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++) {
            uint8_t *o = buf + (size_t)(y * w + x) * 3;
            for (int k = 0; k < 3; k++) o[k] = dt_jp2_sample(im, &im->comps[planes == 3 ? k : 0], x, y);
        }
    dt_jp2_close(&j);
    return DUCTILE_OK;
}

const dt_image_codec dt_image_jp2 = {"JPEG 2000", dt_jp2_sniff, dt_jp2_probe, dt_jp2_decode};
#else
DT_IMAGE_ABSENT(dt_image_jp2, "JPEG 2000", dt_jp2_sniff)
#endif
