/* Every allocation of the library, through the allocator the caller set with
 * ductile_set_allocator (the C library's by default).
 *
 * Each block carries a header of DT_ALLOC_HEADER bytes (more for a larger alignment) just
 * before the pointer returned, holding the block's size and the distance back to what the
 * caller's alloc returned. The public free callback takes no size, and realloc through
 * alloc + copy + free needs the old one: a header answers both without every caller having
 * to carry sizes around (the alternative, dt_realloc(p, old, new), would have to be threaded
 * through every growing array and would silently corrupt memory when a caller passed a
 * wrong old size). Sixteen bytes per block is nothing next to the tensors and arena chunks
 * that make up nearly all of the library's memory.
 *
 * Memory from these functions must be freed with dt_free, never with free(), and memory
 * from the C library (realpath, getline) must never reach dt_free. */
#ifndef DT_ALLOC_H
#define DT_ALLOC_H

#include <stddef.h>

/* Blocks from the default allocator of at least this many bytes are advised for transparent
 * huge pages (alloc.c says why). */
#define DT_ALLOC_HUGE_MIN ((size_t)4 << 20)

/* NULL when out of memory (or size overflows with the header). Aligned to 16 bytes. */
void *dt_malloc(size_t size);
/* Zeroed; NULL also when n * size overflows. */
void *dt_calloc(size_t n, size_t size);
/* As realloc: NULL leaves p untouched and valid; p == NULL allocates. size 0 frees p and
 * returns a fresh minimal block (never NULL for success). */
void *dt_realloc(void *p, size_t size);
/* alignment: a power of two (16 is used when smaller). */
void *dt_aligned_alloc(size_t alignment, size_t size);
/* NULL: no-op. */
void dt_free(void *p);
char *dt_strdup(const char *s);
char *dt_strndup(const char *s, size_t n);

/* Blocks allocated and not yet freed, across all threads (ductile_set_allocator refuses to
 * swap allocators while any exist). */
size_t dt_alloc_live(void);

#endif
