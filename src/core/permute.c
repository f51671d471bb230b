#include "core/permute.h"

#include <string.h>

const int dt_perm_to_nhwc[4] = {0, 2, 3, 1}, dt_perm_to_nchw[4] = {0, 3, 1, 2};

void dt_permute(const void *src, void *dst, int rank, const int64_t *dims, const int *perm, size_t esize)
{
    int64_t stride[8], odims[8], ostride[8], idx[8] = {0};
    int64_t total = 1, s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        stride[d] = s;
        s *= dims[d];
    }
    for (int k = 0; k < rank; k++) {
        odims[k] = dims[perm[k]];
        ostride[k] = stride[perm[k]];   /* the source stride of output dim k */
        total *= odims[k];
    }
    const char *in = src;
    char *out = dst;
    int64_t off = 0;
    for (int64_t j = 0; j < total; j++) {
        if (esize == 4) ((uint32_t *)dst)[j] = ((const uint32_t *)src)[off];
        else if (esize == 2) ((uint16_t *)dst)[j] = ((const uint16_t *)src)[off];
        else memcpy(out + (size_t)j * esize, in + (size_t)off * esize, esize);
        /* Next output index, row-major; the source offset follows. */
        for (int k = rank - 1; k >= 0; k--) {
            off += ostride[k];
            if (++idx[k] < odims[k]) break;
            off -= ostride[k] * odims[k];
            idx[k] = 0;
        }
    }
}
