/* A sort on caller memory. The C library's qsort allocates its merge buffer (glibc, for
 * arrays over 1 KiB), which a kernel's run must not do; this is the same top-down merge sort
 * (halves of n / 2 and n - n / 2, ties taken from the left), so the order it gives matches
 * glibc's even under a comparator that is not a total order (NaN keys). */
#ifndef DT_CORE_SORT_H
#define DT_CORE_SORT_H

#include <stddef.h>

/* Sorts n elements of `size` bytes at base by cmp; tmp holds at least n * size bytes. */
void dt_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *), void *tmp);

#endif
