/* PNM (Netpbm: P1 to P6, plain and raw bitmaps, graymaps and pixmaps), parsed here: a text
 * header and rows of samples. Samples are scaled to 8 bits as Pillow does,
 * round(v * 255 / maxval), halves to even (Python's round); a maxval over 255 takes two bytes per raw sample, most
 * significant first. Bitmaps: 1 is black. Every read is bounds-checked and errors name the
 * byte offset. */
#include "ops/image.h"
#include "core/status.h"

#include <stdbool.h>
#include <string.h>

static int dt_pnm_sniff(const uint8_t *d, size_t n) { return n >= 2 && d[0] == 'P' && d[1] >= '1' && d[1] <= '6'; }

static bool dt_pnm_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* The next decimal number at *at, after whitespace and '#' comments (to the end of the line). */
static ductile_status dt_pnm_number(const uint8_t *d, size_t n, size_t *at, const char *what, int64_t max, int64_t *v)
{
    size_t i = *at;
    for (;;) {
        while (i < n && dt_pnm_space(d[i])) i++;
        if (i < n && d[i] == '#') {
            while (i < n && d[i] != '\n' && d[i] != '\r') i++;
            continue;
        }
        break;
    }
    if (i >= n) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "PNM: the data ends at byte %zu before %s", n, what);
    if (d[i] < '0' || d[i] > '9')
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "PNM: byte %zu (0x%02x) starts %s; expected a decimal number", i, d[i],
                       what);
    size_t start = i;
    int64_t x = 0;
    for (; i < n && d[i] >= '0' && d[i] <= '9'; i++) {
        x = x * 10 + (d[i] - '0');
        if (x > max)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "PNM: %s at byte %zu exceeds %lld", what, start, (long long)max);
    }
    *v = x;
    *at = i;
    return DUCTILE_OK;
}

typedef struct dt_pnm {
    int kind;              /* 1..6 */
    int64_t w, h, maxval;
    size_t data;           /* offset of the raster (raw) or of the first sample's text (plain) */
} dt_pnm;

static ductile_status dt_pnm_header(const uint8_t *d, size_t n, dt_pnm *p)
{
    p->kind = d[1] - '0';
    size_t at = 2;
    DT_TRY(dt_pnm_number(d, n, &at, "the width", INT32_MAX, &p->w));
    DT_TRY(dt_pnm_number(d, n, &at, "the height", INT32_MAX, &p->h));
    p->maxval = 1;
    if (p->kind != 1 && p->kind != 4) {
        DT_TRY(dt_pnm_number(d, n, &at, "the maximum value", 65535, &p->maxval));
        if (p->maxval < 1) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "PNM: the maximum value is 0; expected 1 to 65535");
    }
    if (p->w < 1 || p->h < 1)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "PNM: the image is %lld x %lld pixels", (long long)p->w, (long long)p->h);
    /* Raw formats: exactly one whitespace byte between the header and the raster. */
    if (p->kind >= 4) {
        if (at >= n || !dt_pnm_space(d[at]))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "PNM: byte %zu should be the whitespace that ends the header", at);
        at++;
    }
    p->data = at;
    return DUCTILE_OK;
}

static ductile_status dt_pnm_probe(const uint8_t *d, size_t n, int64_t *h, int64_t *w)
{
    dt_pnm p;
    DT_TRY(dt_pnm_header(d, n, &p));
    *h = p.h;
    *w = p.w;
    return DUCTILE_OK;
}

static uint8_t dt_pnm_scale(int64_t v, int64_t maxval)
{
    if (v > maxval) v = maxval;
    int64_t q = v * 255 / maxval, r2 = v * 255 % maxval * 2;
    return (uint8_t)(q + (r2 > maxval || (r2 == maxval && (q & 1))));
}

static ductile_status dt_pnm_decode(const uint8_t *d, size_t n, int64_t h, int64_t w, uint8_t *buf)
{
    dt_pnm p;
    DT_TRY(dt_pnm_header(d, n, &p));
    int chans = p.kind == 3 || p.kind == 6 ? 3 : 1;
    size_t count = (size_t)(h * w), at = p.data;
    if (p.kind == 4) {
        size_t stride = ((size_t)w + 7) / 8;
        if (n - at < stride * (size_t)h)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "PNM: the raster needs bytes %zu to %zu, but the data ends at byte %zu",
                           at, at + stride * (size_t)h, n);
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++) {
                uint8_t bit = (d[at + (size_t)y * stride + (size_t)x / 8] >> (7 - x % 8)) & 1;
                memset(buf + (size_t)(y * w + x) * 3, bit ? 0 : 255, 3);
            }
        return DUCTILE_OK;
    }
    size_t samples = count * (size_t)chans, bytes = p.maxval > 255 ? 2 : 1;
    if (p.kind >= 5 && n - at < samples * bytes)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "PNM: the raster needs bytes %zu to %zu, but the data ends at byte %zu", at,
                       at + samples * bytes, n);
    for (size_t i = 0; i < samples; i++) {
        int64_t v;
        if (p.kind >= 5) {
            const uint8_t *s = d + at + i * bytes;
            v = bytes == 2 ? (s[0] << 8 | s[1]) : s[0];
        } else if (p.kind == 1) {
            /* Plain bitmaps: the digits need no separators. */
            while (at < n && (dt_pnm_space(d[at]) || d[at] == '#')) {
                if (d[at] == '#')
                    while (at < n && d[at] != '\n' && d[at] != '\r') at++;
                else
                    at++;
            }
            if (at >= n || (d[at] != '0' && d[at] != '1'))
                return at >= n ? dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "PNM: the data ends at byte %zu before pixel %zu", n, i)
                               : dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "PNM: byte %zu (0x%02x) should be pixel %zu, 0 or 1", at,
                                         d[at], i);
            v = d[at++] == '1' ? 0 : 1;
        } else {
            DT_TRY(dt_pnm_number(d, n, &at, "a sample", 65535, &v));
        }
        uint8_t s8 = dt_pnm_scale(v, p.maxval);
        if (chans == 3) buf[i] = s8;
        else memset(buf + i * 3, s8, 3);
    }
    return DUCTILE_OK;
}

const dt_image_codec dt_image_pnm = {"PNM", dt_pnm_sniff, dt_pnm_probe, dt_pnm_decode};
