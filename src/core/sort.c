/* dt_sort: see sort.h. */
#include "core/sort.h"

#include <string.h>

void dt_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *), void *tmp)
{
    if (n <= 1) return;
    size_t n1 = n / 2, n2 = n - n1;
    char *b1 = base, *b2 = (char *)base + n1 * size, *t = tmp;
    dt_sort(b1, n1, size, cmp, tmp);
    dt_sort(b2, n2, size, cmp, tmp);
    while (n1 > 0 && n2 > 0) {
        if (cmp(b1, b2) <= 0) {
            memcpy(t, b1, size);
            b1 += size;
            n1--;
        } else {
            memcpy(t, b2, size);
            b2 += size;
            n2--;
        }
        t += size;
    }
    if (n1 > 0) memcpy(t, b1, n1 * size);
    memcpy(base, tmp, (n - n2) * size);
}
