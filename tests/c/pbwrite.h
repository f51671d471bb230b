/* A tiny protobuf writer for the C tests, so that test models are explicit and can be broken on
 * purpose: each w_* appends one field to a growing buffer (out of memory ends the test with
 * status 2), w_msg nests a message and frees it. */
#ifndef DT_PBWRITE_H
#define DT_PBWRITE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pbw {
    uint8_t *p;
    size_t n, cap;
} pbw;

static inline void w_raw(pbw *w, const void *d, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->p = realloc(w->p, w->cap);
        if (!w->p) {
            fprintf(stderr, "test: out of memory\n");
            exit(2);
        }
    }
    if (n) memcpy(w->p + w->n, d, n);
    w->n += n;
}

static inline void w_varint(pbw *w, uint64_t v)
{
    uint8_t b[10];
    int n = 0;
    do {
        b[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    w_raw(w, b, (size_t)n);
}

static inline void w_key(pbw *w, unsigned field, unsigned wire) { w_varint(w, (uint64_t)field << 3 | wire); }
static inline void w_int(pbw *w, unsigned field, int64_t v) { w_key(w, field, 0); w_varint(w, (uint64_t)v); }
static inline void w_bytes(pbw *w, unsigned field, const void *d, size_t n)
{
    w_key(w, field, 2);
    w_varint(w, n);
    w_raw(w, d, n);
}
static inline void w_str(pbw *w, unsigned field, const char *s) { w_bytes(w, field, s, strlen(s)); }
/* Appends a nested message and frees it. */
static inline void w_msg(pbw *w, unsigned field, pbw sub)
{
    w_bytes(w, field, sub.p, sub.n);
    free(sub.p);
}
static inline void w_f32(pbw *w, unsigned field, float f)
{
    w_key(w, field, 5);
    w_raw(w, &f, 4);
}
/* Packed repeated varints. */
static inline void w_packed(pbw *w, unsigned field, const int64_t *v, int n)
{
    pbw p = {0};
    for (int i = 0; i < n; i++) w_varint(&p, (uint64_t)v[i]);
    w_msg(w, field, p);
}

#endif
