/* A bump allocator: many small objects freed together (a network's names, attributes,
 * tensors and layers). Allocation failure returns NULL; callers report OUT_OF_MEMORY. */
#ifndef DT_ARENA_H
#define DT_ARENA_H

#include <stddef.h>

typedef struct dt_arena_chunk dt_arena_chunk;
typedef struct dt_arena {
    dt_arena_chunk *head;
} dt_arena;

void dt_arena_init(dt_arena *a);
void dt_arena_release(dt_arena *a);
/* Zeroed, 16-byte-aligned memory, or NULL. */
void *dt_arena_alloc(dt_arena *a, size_t size);
/* Copies of a string (NUL-terminated) or of n bytes as a string; NULL on failure. */
char *dt_arena_strdup(dt_arena *a, const char *s);
char *dt_arena_strndup(dt_arena *a, const char *s, size_t n);
void *dt_arena_memdup(dt_arena *a, const void *p, size_t n);

#endif
