/* BMP, parsed here: the format is a fixed header, an optional palette or bit masks and
 * uncompressed rows; a library would add a dependency for a few dozen lines. Every read is
 * bounds-checked against the data and a failure names the byte offset. Supported: the OS/2
 * core header (12 bytes) and the Windows headers (40 bytes and up, V4, V5), 1, 4 and 8 bits
 * per pixel through a palette, 16 and 32 bits (5-5-5 / BGRX, or bit masks), 24 bits (BGR),
 * bottom-up and top-down rows. RLE compression is refused. Channel values of n-bit masks are
 * scaled to 8 bits as Pillow's unpackers do (v * 255 / (2^n - 1)); palette indices past the
 * palette are black. */
#include "ops/image.h"
#include "core/checked.h"
#include "core/status.h"

#include <stdint.h>
#include <string.h>

static int dt_bmp_sniff(const uint8_t *d, size_t n) { return n >= 2 && d[0] == 'B' && d[1] == 'M'; }

static ductile_status dt_bmp_short(size_t at, size_t len, size_t n, const char *what)
{
    return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "BMP: %s needs bytes %zu to %zu, but the data ends at byte %zu", what, at,
                   at + len, n);
}

static ductile_status dt_bmp_u32(const uint8_t *d, size_t n, size_t at, const char *what, uint32_t *v)
{
    if (at > n || n - at < 4) return dt_bmp_short(at, 4, n, what);
    *v = d[at] | (uint32_t)d[at + 1] << 8 | (uint32_t)d[at + 2] << 16 | (uint32_t)d[at + 3] << 24;
    return DUCTILE_OK;
}

static ductile_status dt_bmp_u16(const uint8_t *d, size_t n, size_t at, const char *what, uint32_t *v)
{
    if (at > n || n - at < 2) return dt_bmp_short(at, 2, n, what);
    *v = d[at] | (uint32_t)d[at + 1] << 8;
    return DUCTILE_OK;
}

typedef struct dt_bmp {
    int64_t w, h;          /* h > 0 */
    bool top_down;
    uint32_t bpp, compression, offset, header, colors;
    uint32_t mask[3];      /* R, G, B for 16 and 32 bits */
    size_t palette, entry; /* palette's offset and bytes per entry */
} dt_bmp;

static ductile_status dt_bmp_header(const uint8_t *d, size_t n, dt_bmp *b)
{
    memset(b, 0, sizeof *b);
    DT_TRY(dt_bmp_u32(d, n, 10, "the pixel data offset", &b->offset));
    DT_TRY(dt_bmp_u32(d, n, 14, "the info header's size", &b->header));
    uint32_t v = 0, planes = 0;
    if (b->header == 12) {
        DT_TRY(dt_bmp_u16(d, n, 18, "the width", &v));
        b->w = v;
        DT_TRY(dt_bmp_u16(d, n, 20, "the height", &v));
        b->h = v;
        DT_TRY(dt_bmp_u16(d, n, 22, "the planes", &planes));
        DT_TRY(dt_bmp_u16(d, n, 24, "the bit count", &b->bpp));
        b->entry = 3;
    } else if (b->header >= 40 && b->header <= 124) {
        DT_TRY(dt_bmp_u32(d, n, 18, "the width", &v));
        b->w = (int32_t)v;
        DT_TRY(dt_bmp_u32(d, n, 22, "the height", &v));
        b->h = (int32_t)v;
        DT_TRY(dt_bmp_u16(d, n, 26, "the planes", &planes));
        DT_TRY(dt_bmp_u16(d, n, 28, "the bit count", &b->bpp));
        DT_TRY(dt_bmp_u32(d, n, 30, "the compression", &b->compression));
        DT_TRY(dt_bmp_u32(d, n, 46, "the colours used", &b->colors));
        b->entry = 4;
    } else {
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "BMP: the info header at byte 14 has size %u; expected 12 or 40 to 124",
                       b->header);
    }
    if (b->h < 0) {
        b->top_down = true;
        b->h = -b->h;
    }
    if (b->w < 1 || b->h < 1)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "BMP: the image is %lld x %lld pixels (bytes 18 to 26)", (long long)b->w,
                       (long long)b->h);
    if (planes != 1) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "BMP: %u planes; expected 1", planes);
    if (b->bpp != 1 && b->bpp != 4 && b->bpp != 8 && b->bpp != 16 && b->bpp != 24 && b->bpp != 32)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "BMP: %u bits per pixel; expected 1, 4, 8, 16, 24 or 32", b->bpp);
    /* Masks: BI_BITFIELDS (3) or BI_ALPHABITFIELDS (6) after a 40-byte header, inside a larger one. */
    bool masks = b->compression == 3 || b->compression == 6;
    if (b->compression != 0 && !(masks && (b->bpp == 16 || b->bpp == 32)))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "BMP: compression %u with %u bits per pixel; ductile decodes uncompressed (0) and bit masks (3, 6) at 16 and 32 bits",
                       b->compression, b->bpp);
    if (masks) {
        for (int k = 0; k < 3; k++) DT_TRY(dt_bmp_u32(d, n, 54 + 4 * (size_t)k, "the bit masks", &b->mask[k]));
    } else if (b->bpp == 16) {
        b->mask[0] = 0x7c00, b->mask[1] = 0x03e0, b->mask[2] = 0x001f;
    } else if (b->bpp == 32) {
        b->mask[0] = 0xff0000, b->mask[1] = 0xff00, b->mask[2] = 0xff;
    }
    b->palette = 14 + (size_t)b->header + (masks && b->header == 40 ? (b->compression == 6 ? 16 : 12) : 0);
    if (b->bpp <= 8) {
        uint32_t max = 1u << b->bpp;
        if (b->colors == 0 || b->colors > max) b->colors = max;
    }
    return DUCTILE_OK;
}

static ductile_status dt_bmp_probe(const uint8_t *d, size_t n, int64_t *h, int64_t *w)
{
    dt_bmp b;
    DT_TRY(dt_bmp_header(d, n, &b));
    *h = b.h;
    *w = b.w;
    return DUCTILE_OK;
}

/* Field v & mask scaled to 8 bits. */
static uint8_t dt_bmp_field(uint32_t v, uint32_t mask)
{
    if (!mask) return 0;
    int shift = __builtin_ctz(mask);
    uint32_t max = mask >> shift;
    return (uint8_t)((uint64_t)((v & mask) >> shift) * 255 / max);
}

static ductile_status dt_bmp_decode(const uint8_t *d, size_t n, int64_t h, int64_t w, uint8_t *buf)
{
    dt_bmp b;
    DT_TRY(dt_bmp_header(d, n, &b));
    if (b.bpp <= 8) {
        size_t end;
        if (!dt_mul_size(b.colors, b.entry, &end) || !dt_add_size(end, b.palette, &end) || end > n)
            return dt_bmp_short(b.palette, (size_t)b.colors * b.entry, n, "the palette");
    }
    /* Rows are padded to 4 bytes; w * bpp cannot overflow (w * h <= DT_IMAGE_MAX_PIXELS). */
    size_t stride = ((size_t)w * b.bpp + 31) / 32 * 4, total = SIZE_MAX;
    if (!dt_mul_size(stride, (size_t)h, &total) || b.offset > n || n - b.offset < total)
        return dt_bmp_short(b.offset, total, n, "the pixel data");
    for (int64_t y = 0; y < h; y++) {
        const uint8_t *row = d + b.offset + (size_t)(b.top_down ? y : h - 1 - y) * stride;
        uint8_t *o = buf + (size_t)y * w * 3;
        for (int64_t x = 0; x < w; x++, o += 3) {
            if (b.bpp <= 8) {
                uint32_t bits = (uint32_t)(x * b.bpp);
                uint32_t idx = (row[bits / 8] >> (8 - b.bpp - bits % 8)) & ((1u << b.bpp) - 1);
                if (idx >= b.colors) {
                    o[0] = o[1] = o[2] = 0;
                } else {
                    const uint8_t *e = d + b.palette + (size_t)idx * b.entry;
                    o[0] = e[2], o[1] = e[1], o[2] = e[0];
                }
            } else if (b.bpp == 24) {
                const uint8_t *p = row + x * 3;
                o[0] = p[2], o[1] = p[1], o[2] = p[0];
            } else {
                const uint8_t *p = row + x * (b.bpp / 8);
                uint32_t v = b.bpp == 16 ? (uint32_t)(p[0] | p[1] << 8)
                                         : p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
                for (int k = 0; k < 3; k++) o[k] = dt_bmp_field(v, b.mask[k]);
            }
        }
    }
    return DUCTILE_OK;
}

const dt_image_codec dt_image_bmp = {"BMP", dt_bmp_sniff, dt_bmp_probe, dt_bmp_decode};
