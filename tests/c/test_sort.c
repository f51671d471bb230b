/* dt_sort (core/sort.h) against the C library's qsort, which kernels used before: the same
 * order for keys with ties and with NaN (where the comparator is not a total order, so only
 * the same merge sort as glibc's gives the same answer), on sizes above and below the 1 KiB
 * where glibc's qsort starts to allocate. */
#include "core/sort.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct { double v; int64_t i; } item;

/* TopK's comparator: larger first, ties by index; NaN compares unequal to everything. */
static int desc(const void *a, const void *b)
{
    const item *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static void test_sort_orders_like_qsort(void)
{
    static const int sizes[] = {0, 1, 2, 3, 7, 64, 65, 100, 1000, 4097};
    uint32_t seed = 12345;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int n = sizes[s];
        for (int with_nan = 0; with_nan < 2; with_nan++) {
            item *a = malloc(sizeof(item) * (size_t)(n + 1)), *b = malloc(sizeof(item) * (size_t)(n + 1));
            item *tmp = malloc(sizeof(item) * (size_t)(n + 1));
            for (int k = 0; k < n; k++) {
                seed = seed * 1664525u + 1013904223u;
                a[k].v = (double)(seed >> 28); /* 16 values: many ties */
                if (with_nan && (seed >> 8) % 7 == 0) a[k].v = NAN;
                a[k].i = k;
            }
            memcpy(b, a, sizeof(item) * (size_t)n);
            qsort(a, (size_t)n, sizeof(item), desc);
            dt_sort(b, (size_t)n, sizeof(item), desc, tmp);
            int same = 1;
            for (int k = 0; k < n; k++) same &= a[k].i == b[k].i;
            CHECK(same);
            free(a);
            free(b);
            free(tmp);
        }
    }
}

int main(void)
{
    test_sort_orders_like_qsort();
    TEST_MAIN_END();
}
