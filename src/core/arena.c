#include "core/arena.h"
#include "core/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct dt_arena_chunk {
    dt_arena_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

enum { DT_ARENA_CHUNK = 64 * 1024 };

void dt_arena_init(dt_arena *a) { a->head = NULL; }

void dt_arena_release(dt_arena *a)
{
    dt_arena_chunk *c = a->head;
    while (c) {
        dt_arena_chunk *n = c->next;
        dt_free(c);
        c = n;
    }
    a->head = NULL;
}

void *dt_arena_alloc(dt_arena *a, size_t size)
{
    if (size > SIZE_MAX - 64) return NULL;
    size = (size + 15) & ~(size_t)15;
    if (size == 0) size = 16;
    dt_arena_chunk *c = a->head;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > DT_ARENA_CHUNK ? size : DT_ARENA_CHUNK;
        c = dt_malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->used = 0;
        c->cap = cap;
        /* A big block goes behind the head so the head's free room is not wasted. */
        if (a->head && size > DT_ARENA_CHUNK / 4) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

char *dt_arena_strndup(dt_arena *a, const char *s, size_t n)
{
    char *p = dt_arena_alloc(a, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *dt_arena_strdup(dt_arena *a, const char *s) { return dt_arena_strndup(a, s, strlen(s)); }

void *dt_arena_memdup(dt_arena *a, const void *src, size_t n)
{
    void *p = dt_arena_alloc(a, n);
    if (p && n) memcpy(p, src, n);
    return p;
}
