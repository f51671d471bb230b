/* Concat and Split: each (outer index, part) pair is one contiguous memcpy, but for parts
 * the plan put in place (runtime/plan_slices.c: the part is a slice of the whole). */
#include "backend/cpu/shape_copy.h"
#include "core/alloc.h"
#include "backend/cpu/shape_kernels.h"
#include "core/status.h"
#include "ops/shape.h"

#include <stdlib.h>
#include <string.h>

typedef struct dt_join_job {
    int n_parts;
    bool split;             /* false: parts -> whole (Concat); true: whole -> parts (Split) */
    char *whole;
    char **parts;
    size_t *part_bytes;     /* bytes of one part per outer index */
    size_t *part_off;       /* offset of the part within one outer row of the whole */
    size_t row_bytes;       /* bytes of one outer row of the whole */
} dt_join_job;

static void dt_join_part(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_join_job *j = arg;
    for (int64_t u = begin; u < end; u++) {
        int64_t o = u / j->n_parts;
        int p = (int)(u % j->n_parts);
        size_t n = j->part_bytes[p];
        char *w = j->whole + (size_t)o * j->row_bytes + j->part_off[p];
        char *q = j->parts[p] + (size_t)o * n;
        if (q == w) continue; /* planned in place (runtime/plan_slices.c) */
        if (j->split) memcpy(q, w, n);
        else memcpy(w, q, n);
    }
}

/* parts[i] has dims[axis] = sizes[i]; the whole is `whole` (the dims besides axis agree). */
static ductile_status dt_join(dt_exec *ex, const dt_view *whole, int axis, int n_parts,
                              const dt_view *parts, bool split)
{
    size_t es = ductile_dtype_size((ductile_dtype)whole->dtype);
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= whole->dims[i];
    for (int i = axis + 1; i < whole->rank; i++) inner *= whole->dims[i];
    /* A plan refuses layers of more than 64 inputs or outputs, so the run path keeps its
     * tables on the stack; only a layer run once with more (constant folding) allocates. */
    enum { DT_JOIN_STACK = 64 };
    char *stack[DT_JOIN_STACK * 3];
    char **ptrs = n_parts <= DT_JOIN_STACK ? stack : dt_malloc((size_t)n_parts * (sizeof(char *) + 2 * sizeof(size_t)));
    if (!ptrs) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for %d parts", n_parts);
    dt_join_job j = {.n_parts = n_parts, .split = split, .whole = whole->data, .parts = ptrs,
                     .part_bytes = (size_t *)(ptrs + n_parts)};
    j.part_off = j.part_bytes + n_parts;
    size_t off = 0;
    for (int p = 0; p < n_parts; p++) {
        ptrs[p] = parts[p].data;
        j.part_bytes[p] = (size_t)(parts[p].dims[axis] * inner) * es;
        j.part_off[p] = off;
        off += j.part_bytes[p];
    }
    j.row_bytes = off;
    int64_t units = outer * n_parts;
    int64_t grain = off ? (int64_t)(32768 / (off / (size_t)n_parts + 1)) : units;
    if (off) dt_parallel_for(ex ? ex->pool : NULL, units, grain < 1 ? 1 : grain, dt_join_part, &j);
    if (ptrs != stack) dt_free(ptrs);
    return DUCTILE_OK;
}

/* "in_place" where every part is where the copy would put it, "part_in_place" where some
 * are (the plan put them there: runtime/plan_slices.c), else NULL. */
static const char *dt_join_path(const dt_view *whole, int64_t axis, int n_parts, const dt_view *parts)
{
    if (axis < 0) axis += whole->rank;
    if (axis < 0 || axis >= whole->rank) return NULL;
    for (int64_t i = 0; i < axis; i++)
        if (whole->dims[i] != 1) return NULL;
    size_t off = 0;
    int placed = 0;
    for (int p = 0; p < n_parts; p++) {
        placed += parts[p].data == (const char *)whole->data + off;
        off += dt_cpu_view_bytes(&parts[p]);
    }
    return placed == n_parts ? "in_place" : placed ? "part_in_place" : NULL;
}

/* Concat compiled: the axis read once. */
typedef struct dt_concat_params {
    int64_t axis;
    int n_in;
} dt_concat_params;

static ductile_status dt_concat_prepare(const ductile_layer *L, void **out)
{
    dt_concat_params p = {dt_attr_int(L, "axis", 0), L->n_in};
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_concat_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_concat_params *p = params;
    int axis;
    DT_TRY(dt_norm_axis(p->axis, out[0].rank, &axis));
    return dt_join(ex, &out[0], axis, p->n_in, in, false);
}

const dt_kernel dt_cpu_concat_kernel = {.prepare = dt_concat_prepare, .run = dt_concat_run};

const char *dt_cpu_concat_path(const void *params, const dt_view *in, const dt_view *out)
{
    const dt_concat_params *p = params;
    return dt_join_path(&out[0], p->axis, p->n_in, in);
}

/* Split compiled: 'axis' and (before opset 13) 'split' read once; the layer kept for its
 * outputs' count and for naming inputs in messages. */
typedef struct dt_split_params {
    const ductile_layer *L;
    dt_split_attrs a;
} dt_split_params;

static ductile_status dt_split_prepare(const ductile_layer *L, void **out)
{
    dt_split_params p = {.L = L};
    DT_TRY(dt_split_attrs_read(L, &p.a));
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_split_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_split_params *p = params;
    int axis;
    int64_t sizes[DT_SHAPE_MAX_OUTPUTS];
    DT_TRY(dt_split_sizes_of(p->L, &p->a, in, &axis, sizes));
    return dt_join(ex, &in[0], axis, p->L->n_out, out, true);
}

const dt_kernel dt_cpu_split_kernel = {.prepare = dt_split_prepare, .run = dt_split_run};

const char *dt_cpu_split_path(const void *params, const dt_view *in, const dt_view *out)
{
    const dt_split_params *p = params;
    return dt_join_path(&in[0], p->a.axis, p->L->n_out, out);
}
