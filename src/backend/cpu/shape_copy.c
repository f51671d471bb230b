/* The strided-copy engine behind the CPU data-movement kernels. Written by hand rather than
 * taken from a library: it needs to see the whole index map (merging dims, finding contiguous
 * runs) to pick memcpy, a tiled transpose or an element loop. */
#include "backend/cpu/shape_copy.h"

#include <string.h>

/* Parallel work is split into pieces of at least this many bytes. */
#define DT_COPY_GRAIN_BYTES 32768
/* Side of the square tiles of the transposing path, in elements. */
#define DT_TILE 32

void dt_cpu_dense_strides(const dt_view *v, int64_t strides[DT_MAX_DIMS])
{
    int64_t s = 1;
    for (int i = v->rank - 1; i >= 0; i--) {
        strides[i] = s;
        s *= v->dims[i];
    }
}

size_t dt_cpu_view_bytes(const dt_view *v)
{
    return (size_t)dt_view_count(v) * ductile_dtype_size((ductile_dtype)v->dtype);
}

typedef struct dt_bytes_job {
    char *dst;
    const char *src;
    size_t n;
} dt_bytes_job;

static void dt_bytes_part(void *arg, int64_t begin, int64_t end, int tid)
{
    dt_bytes_job *j = arg;
    size_t b = (size_t)begin * DT_COPY_GRAIN_BYTES, e = (size_t)end * DT_COPY_GRAIN_BYTES;
    if (e > j->n) e = j->n;
    memcpy(j->dst + b, j->src + b, e - b);
}

void dt_cpu_copy_bytes(dt_exec *ex, void *dst, const void *src, size_t n)
{
    if (n == 0 || dst == src) return;
    if (n < (size_t)1 << 20 || !ex || !ex->pool) {
        memcpy(dst, src, n);
        return;
    }
    dt_bytes_job j = {dst, src, n};
    int64_t pieces = (int64_t)((n + DT_COPY_GRAIN_BYTES - 1) / DT_COPY_GRAIN_BYTES);
    dt_parallel_for(ex->pool, pieces, 16, dt_bytes_part, &j);
}

void dt_cpu_fill(void *dst, const void *elem, size_t esize, int64_t count)
{
    if (count <= 0) return;
    char *d = dst;
    size_t total = (size_t)count * esize, done = esize;
    memcpy(d, elem, esize);
    /* Doubling copies: log2(count) memcpy calls whatever the element size. */
    while (done < total) {
        size_t n = done < total - done ? done : total - done;
        memcpy(d + done, d, n);
        done += n;
    }
}

/* Drops unit dims and merges neighbours that are contiguous in the input, so that e.g. a
 * Transpose that only swaps unit dims becomes one memcpy. Returns false if the copy is empty. */
static bool dt_simplify(const dt_strided *in, dt_strided *s)
{
    s->rank = 0;
    for (int k = 0; k < in->rank; k++) {
        if (in->dims[k] == 0) return false;
        if (in->dims[k] == 1) continue;
        int t = s->rank;
        if (t > 0 && s->stride[t - 1] == in->stride[k] * in->dims[k]) {
            s->dims[t - 1] *= in->dims[k];
            s->stride[t - 1] = in->stride[k];
            continue;
        }
        s->dims[t] = in->dims[k];
        s->stride[t] = in->stride[k];
        s->rank++;
    }
    return true;
}

typedef struct dt_copy_job {
    dt_strided s;           /* simplified */
    char *out;
    const char *in;
    size_t es;
    int p;                  /* tiled path: the dim read with stride 1, else -1 */
    int64_t tile_i;         /* tiled path: rows of dim p per work item */
    int64_t out_stride[DT_STRIDED_MAX];
    int outer[DT_STRIDED_MAX]; /* the dims iterated outside the inner loop(s) */
    int n_outer;
} dt_copy_job;

/* Offsets of the outer multi-index idx, in input elements and output elements. */
static void dt_outer_offsets(const dt_copy_job *j, const int64_t *idx, int64_t *in_off, int64_t *out_off)
{
    int64_t a = 0, b = 0;
    for (int k = 0; k < j->n_outer; k++) {
        a += idx[k] * j->s.stride[j->outer[k]];
        b += idx[k] * j->out_stride[j->outer[k]];
    }
    *in_off = a;
    *out_off = b;
}

static void dt_outer_unflatten(const dt_copy_job *j, int64_t flat, int64_t *idx)
{
    for (int k = j->n_outer - 1; k >= 0; k--) {
        int64_t d = j->s.dims[j->outer[k]];
        idx[k] = flat % d;
        flat /= d;
    }
}

static void dt_outer_next(const dt_copy_job *j, int64_t *idx)
{
    for (int k = j->n_outer - 1; k >= 0; k--) {
        if (++idx[k] < j->s.dims[j->outer[k]]) return;
        idx[k] = 0;
    }
}

#define DT_GATHER_ROW(T)                                                                     \
    do {                                                                                     \
        T *o_ = (T *)o;                                                                      \
        const T *i_ = (const T *)i;                                                          \
        for (int64_t x = 0; x < n; x++) o_[x] = i_[x * st];                                  \
    } while (0)

/* out[x] = in[x * st] for x < n, by element size. */
static void dt_gather_row(char *o, const char *i, int64_t n, int64_t st, size_t es)
{
    switch (es) {
    case 1: DT_GATHER_ROW(uint8_t); break;
    case 2: DT_GATHER_ROW(uint16_t); break;
    case 4: DT_GATHER_ROW(uint32_t); break;
    case 8: DT_GATHER_ROW(uint64_t); break;
    default:
        for (int64_t x = 0; x < n; x++) memcpy(o + (size_t)x * es, i + (x * st) * (int64_t)es, es);
    }
}

/* Rows over all dims but the last: memcpy when the last dim is contiguous, else a gather. */
static void dt_rows_part(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_copy_job *j = arg;
    int last = j->s.rank - 1;
    int64_t n = j->s.dims[last], st = j->s.stride[last];
    size_t es = j->es, row = (size_t)n * es;
    int64_t idx[DT_STRIDED_MAX], in_off, out_off;
    dt_outer_unflatten(j, begin, idx);
    for (int64_t r = begin; r < end; r++) {
        dt_outer_offsets(j, idx, &in_off, &out_off);
        char *o = j->out + out_off * (int64_t)es;
        const char *i = j->in + in_off * (int64_t)es;
        if (st == 1) memcpy(o, i, row);
        else dt_gather_row(o, i, n, st, es);
        dt_outer_next(j, idx);
    }
}

#define DT_TILE_LOOP(T)                                                                      \
    do {                                                                                     \
        T *o_ = (T *)o;                                                                      \
        const T *i_ = (const T *)i;                                                          \
        for (int64_t jb = 0; jb < nj; jb += DT_TILE) {                                       \
            int64_t je = jb + DT_TILE < nj ? jb + DT_TILE : nj;                              \
            for (int64_t x = i0; x < i1; x++)                                                \
                for (int64_t y = jb; y < je; y++) o_[x * osp + y] = i_[x + y * stl];         \
        }                                                                                    \
    } while (0)

/* o[x * NJ + y] = i[x + y * stl] for x in [i0, i1), y < NJ: NJ rows of the input interleaved
 * (DepthToSpace's and PixelShuffle's last step, NJ = the blocksize), NJ a constant so that
 * the loop vectorizes into loads of each row and lane shuffles. */
static inline __attribute__((always_inline)) void dt_interleave_rows(uint32_t *restrict o, const uint32_t *restrict i,
                                                                     int64_t i0, int64_t i1, int64_t stl, const int NJ)
{
    for (int64_t x = i0; x < i1; x++)
        for (int y = 0; y < NJ; y++) o[x * NJ + y] = i[x + y * stl];
}

__attribute__((target_clones("avx512f", "avx2", "default"))) static void
dt_interleave_rows_u32(uint32_t *o, const uint32_t *i, int64_t i0, int64_t i1, int64_t stl, int nj)
{
    if (nj == 2) dt_interleave_rows(o, i, i0, i1, stl, 2);
    else if (nj == 3) dt_interleave_rows(o, i, i0, i1, stl, 3);
    else dt_interleave_rows(o, i, i0, i1, stl, 4);
}

/* Work item = (outer index, block of dim p): a 2-D transpose between dim p (contiguous in
 * the input) and the last dim (contiguous in the output), in tiles that stay in cache. */
static void dt_tiled_part(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_copy_job *j = arg;
    int last = j->s.rank - 1, p = j->p;
    int64_t np = j->s.dims[p], nj = j->s.dims[last], stl = j->s.stride[last];
    int64_t osp = j->out_stride[p], blocks = (np + j->tile_i - 1) / j->tile_i;
    size_t es = j->es;
    int64_t idx[DT_STRIDED_MAX], in_off = 0, out_off = 0;
    for (int64_t u = begin; u < end; u++) {
        int64_t b = u % blocks;
        if (u == begin || b == 0) {
            dt_outer_unflatten(j, u / blocks, idx);
            dt_outer_offsets(j, idx, &in_off, &out_off);
        }
        int64_t i0 = b * j->tile_i, i1 = i0 + j->tile_i < np ? i0 + j->tile_i : np;
        char *o = j->out + out_off * (int64_t)es;
        const char *i = j->in + in_off * (int64_t)es;
        if (es == 4 && nj >= 2 && nj <= 4 && osp == nj) {
            /* a few rows interleaved: superres' DepthToSpace 0.69 -> 0.3 ms at 480x320 */
            dt_interleave_rows_u32((uint32_t *)o, (const uint32_t *)i, i0, i1, stl, (int)nj);
            continue;
        }
        switch (es) {
        case 1: DT_TILE_LOOP(uint8_t); break;
        case 2: DT_TILE_LOOP(uint16_t); break;
        case 4: DT_TILE_LOOP(uint32_t); break;
        case 8: DT_TILE_LOOP(uint64_t); break;
        default:
            for (int64_t x = i0; x < i1; x++)
                for (int64_t y = 0; y < nj; y++)
                    memcpy(o + (x * osp + y) * (int64_t)es, i + (x + y * stl) * (int64_t)es, es);
        }
    }
}

void dt_cpu_strided_copy(dt_exec *ex, void *out, const void *in, size_t esize, const dt_strided *src)
{
    dt_copy_job j;
    if (!dt_simplify(src, &j.s)) return;
    j.out = out;
    j.in = in;
    j.es = esize;
    j.p = -1;
    if (j.s.rank == 0) {
        memcpy(out, in, esize);
        return;
    }
    int64_t o = 1;
    for (int k = j.s.rank - 1; k >= 0; k--) {
        j.out_stride[k] = o;
        o *= j.s.dims[k];
    }
    int last = j.s.rank - 1;
    int64_t total = o, nj = j.s.dims[last];
    dt_pool *pool = ex ? ex->pool : NULL;
    if (j.s.stride[last] != 1 && j.s.rank >= 2)
        for (int k = last - 1; k >= 0; k--)
            if (j.s.stride[k] == 1) {
                j.p = k;
                break;
            }
    j.n_outer = 0;
    for (int k = 0; k < last; k++)
        if (k != j.p) j.outer[j.n_outer++] = k;
    if (j.p < 0) {
        int64_t rows = total / nj, row_bytes = nj * (int64_t)esize;
        int64_t grain = DT_COPY_GRAIN_BYTES / row_bytes;
        dt_parallel_for(pool, rows, grain < 1 ? 1 : grain, dt_rows_part, &j);
        return;
    }
    /* Short output rows need taller tiles to give each work item enough to do. */
    j.tile_i = nj >= DT_TILE ? DT_TILE : 1024 / nj;
    int64_t blocks = (j.s.dims[j.p] + j.tile_i - 1) / j.tile_i;
    int64_t items = total / (nj * j.s.dims[j.p]) * blocks;
    int64_t grain = DT_COPY_GRAIN_BYTES / (j.tile_i * nj * (int64_t)esize);
    dt_parallel_for(pool, items, grain < 1 ? 1 : grain, dt_tiled_part, &j);
}
