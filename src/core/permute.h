/* Element order of a tensor permuted (Transpose's rule, any element size): where a layout
 * pass moves constants (builder/layout.c) and where a reference kernel reorders its operands
 * (the CPU's channels-last FusedConv). */
#ifndef DT_CORE_PERMUTE_H
#define DT_CORE_PERMUTE_H

#include <stddef.h>
#include <stdint.h>

/* dst[j] = src[i] where dst has dims out[k] = dims[perm[k]] (rank <= 8, perm a permutation of
 * 0..rank-1): Transpose(perm). src and dst must not overlap; elements are esize bytes. */
void dt_permute(const void *src, void *dst, int rank, const int64_t *dims, const int *perm, size_t esize);

/* The channels-last permutations of a 4-D tensor: [N, C, H, W] -> [N, H, W, C] and back. */
extern const int dt_perm_to_nhwc[4], dt_perm_to_nchw[4];

#endif
