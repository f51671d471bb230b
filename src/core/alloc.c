#include "core/alloc.h"
#include "core/status.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

/* The header sits in the last 16 bytes before the pointer handed out. */
typedef struct dt_block_header {
    size_t size;    /* what the library asked for */
    size_t offset;  /* pointer handed out - pointer the allocator returned */
} dt_block_header;

enum { DT_ALLOC_MIN_ALIGN = 16 };
_Static_assert(sizeof(dt_block_header) <= DT_ALLOC_MIN_ALIGN, "header fits the minimum alignment");

/* Large blocks (packed weights, the engine's bytes, activation arenas) ask for transparent
 * huge pages before their first touch: a resnet50 engine streams ~230 MB of weights per run,
 * 60,000 4 KiB pages whose TLB misses (two-level walks under a hypervisor) cost more than the
 * 2 MiB pages' few hundred. Linux with THP "madvise" (the common default) gives huge pages only
 * to advised ranges; elsewhere, or when the kernel refuses, this is a no-op. Only the whole
 * 2 MiB pages inside the block are advised, so no neighbouring allocation is affected. The
 * advice outlives the block where the C library served it from its heap (blocks under its
 * mmap threshold, which rises to 32 MB as large blocks are freed) and reuses the range: that
 * range was resident whole while the block lived, so at worst it stays so. */
static void dt_advise_huge(void *p, size_t size)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (!p || size < DT_ALLOC_HUGE_MIN) return;
    uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1);
    uintptr_t b = ((uintptr_t)p + size) & ~(huge - 1);
    if (b > a) (void)madvise((void *)a, b - a, MADV_HUGEPAGE);
#else
    (void)p;
    (void)size;
#endif
}

static void *dt_default_alloc(void *user, size_t size, size_t alignment)
{
    (void)user;
    void *p = NULL;
    if (alignment <= alignof(max_align_t)) p = malloc(size);
    else if (posix_memalign(&p, alignment, size) != 0) p = NULL;
    dt_advise_huge(p, size);
    return p;
}

static void dt_default_free(void *user, void *ptr)
{
    (void)user;
    free(ptr);
}

static const ductile_allocator dt_default = {dt_default_alloc, dt_default_free, NULL};
/* Only changed while no block is live (ductile_set_allocator), so readers need no lock; a
 * caller that sets it while another thread uses the library breaks the documented contract. */
static ductile_allocator dt_current = {dt_default_alloc, dt_default_free, NULL};
static size_t dt_live; /* atomic */

size_t dt_alloc_live(void) { return __atomic_load_n(&dt_live, __ATOMIC_ACQUIRE); }

ductile_status ductile_set_allocator(const ductile_allocator *allocator)
{
    if (allocator && (!allocator->alloc || !allocator->free))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "ductile_set_allocator: alloc and free must both be set (NULL restores "
                       "the default allocator)");
    size_t live = dt_alloc_live();
    if (live)
        return dt_fail(DUCTILE_ERR_STATE,
                       "ductile_set_allocator: %zu block%s allocated by ductile %s still live; "
                       "free every ductile object (and every buffer from "
                       "ductile_engine_serialize) before changing the allocator",
                       live, live == 1 ? "" : "s", live == 1 ? "is" : "are");
    dt_current = allocator ? *allocator : dt_default;
    return DUCTILE_OK;
}

void *dt_aligned_alloc(size_t alignment, size_t size)
{
    if (alignment < DT_ALLOC_MIN_ALIGN) alignment = DT_ALLOC_MIN_ALIGN;
    if (alignment & (alignment - 1)) return NULL;
    /* The header takes one alignment unit in front, so the pointer handed out keeps the
     * alignment the allocator gave the block. */
    if (size > SIZE_MAX - alignment) return NULL;
    unsigned char *base = dt_current.alloc(dt_current.user, size + alignment, alignment);
    if (!base) return NULL;
    unsigned char *p = base + alignment;
    dt_block_header h = {size, alignment};
    memcpy(p - sizeof h, &h, sizeof h);
    __atomic_add_fetch(&dt_live, 1, __ATOMIC_RELAXED);
    return p;
}

void *dt_malloc(size_t size) { return dt_aligned_alloc(DT_ALLOC_MIN_ALIGN, size); }

void *dt_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) return NULL;
    void *p = dt_malloc(n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

static dt_block_header dt_header(const void *p)
{
    dt_block_header h;
    memcpy(&h, (const unsigned char *)p - sizeof h, sizeof h);
    return h;
}

void dt_free(void *p)
{
    if (!p) return;
    dt_block_header h = dt_header(p);
    __atomic_sub_fetch(&dt_live, 1, __ATOMIC_RELEASE);
    dt_current.free(dt_current.user, (unsigned char *)p - h.offset);
}

void *dt_realloc(void *p, size_t size)
{
    if (!p) return dt_malloc(size);
    dt_block_header h = dt_header(p);
    void *q = dt_aligned_alloc(h.offset, size);
    if (!q) return NULL;
    memcpy(q, p, h.size < size ? h.size : size);
    dt_free(p);
    return q;
}

char *dt_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = dt_malloc(len + 1);
    if (!p) return NULL;
    memcpy(p, s, len);
    p[len] = 0;
    return p;
}

char *dt_strdup(const char *s) { return dt_strndup(s, SIZE_MAX - 1); }
