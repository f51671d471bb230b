/* Activation memory planning.
 *
 * Placement is greedy by size: blocks in decreasing size, each at the lowest offset where it
 * overlaps no placed block whose lifetime overlaps its own. Of the simple heuristics it is the
 * one that reaches the lower bound (the peak of bytes live at one step) on every suite model;
 * a linear scan in time order with a best-fit free list gives up to 40% more (seg_lraspp).
 *
 * Done naively, each block compares itself with every placed block: O(n^2 log n), and it ran on
 * every shape change. Here the lifetimes are fixed per engine, so dt_memlife_make lists once,
 * at load, the time-neighbours of each block (the blocks live at some common step); placing a
 * block then reads only its own list. The lists hold n * (blocks live at once) entries at most,
 * which is small for real networks but quadratic for a Concat of 100k inputs or a tensor read
 * by every layer: so they are capped at a budget (DT_MEMPLAN_BUDGET), the blocks with the most
 * neighbours left out first. A block left out is placed just above the highest block of its
 * lifetime, which a segment tree over the steps answers in O(log n). The work per shape is
 * O(n log n + budget log n); on every suite model all blocks fit the budget and the plan is
 * exactly the naive one's. */
#include "runtime/memplan.h"
#include "core/alloc.h"
#include "core/checked.h"
#include "core/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dt_memlife {
    int n, n_steps;
    int *first, *last;          /* per block */
    size_t *adj_start;          /* n + 1: block b's neighbours are adj[adj_start[b] .. adj_start[b+1]) */
    int *adj;
    unsigned char *listed;      /* per block: its neighbours are listed (else it is stacked) */
    size_t max_list;
    bool any_stacked;
};

void dt_memlife_free(dt_memlife *m)
{
    if (!m) return;
    dt_free(m->first);
    dt_free(m->last);
    dt_free(m->adj_start);
    dt_free(m->adj);
    dt_free(m->listed);
    dt_free(m);
}

static ductile_status dt_memlife_oom(dt_memlife *m, int *a, int *b, int *c, int *d, size_t *e)
{
    dt_memlife_free(m);
    dt_free(a);
    dt_free(b);
    dt_free(c);
    dt_free(d);
    dt_free(e);
    return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory planning activation lifetimes");
}

ductile_status dt_memlife_make(int n, const int *first, const int *last, int n_steps, size_t budget,
                               dt_memlife **out)
{
    *out = NULL;
    if (n < 0 || n_steps < 0 || (n > 0 && n_steps < 1))
        return dt_fail(DUCTILE_ERR_INTERNAL, "memory plan: %d blocks over %d steps", n, n_steps);
    for (int b = 0; b < n; b++)
        if (first[b] < 0 || first[b] > last[b] || last[b] >= n_steps)
            return dt_fail(DUCTILE_ERR_INTERNAL, "memory plan: block %d lives over steps %d..%d, outside 0..%d",
                           b, first[b], last[b], n_steps - 1);
    if (!budget) budget = DT_MEMPLAN_BUDGET(n);
    size_t nn = (size_t)n + 1, ns = (size_t)n_steps + 2;
    dt_memlife *m = dt_calloc(1, sizeof *m);
    int *by_first = dt_malloc(nn * sizeof *by_first);    /* blocks sorted by first step (stable) */
    int *fstart = dt_calloc(ns, sizeof *fstart);         /* by_first[fstart[t]..fstart[t+1]) start at t */
    int *lcount = dt_calloc(ns, sizeof *lcount);         /* blocks that end before step t */
    int *link = dt_malloc(2 * nn * sizeof *link);        /* the live list: next, prev */
    size_t *deg = dt_malloc(nn * sizeof *deg);
    if (!m || !by_first || !fstart || !lcount || !link || !deg) return dt_memlife_oom(m, by_first, fstart, lcount, link, deg);
    m->n = n;
    m->n_steps = n_steps;
    m->first = dt_malloc(nn * sizeof *m->first);
    m->last = dt_malloc(nn * sizeof *m->last);
    m->adj_start = dt_calloc(nn, sizeof *m->adj_start);
    m->listed = dt_calloc(nn, 1);
    if (!m->first || !m->last || !m->adj_start || !m->listed) return dt_memlife_oom(m, by_first, fstart, lcount, link, deg);
    if (n) {
        memcpy(m->first, first, (size_t)n * sizeof *first);
        memcpy(m->last, last, (size_t)n * sizeof *last);
    }
    /* Counting sorts over the steps: O(n + steps). */
    for (int b = 0; b < n; b++) {
        fstart[first[b] + 1]++;
        lcount[last[b] + 1]++;
    }
    for (int t = 0; t <= n_steps; t++) {
        fstart[t + 1] += fstart[t];
        lcount[t + 1] += lcount[t];
    }
    int *fill = dt_malloc(ns * sizeof *fill);
    if (!fill) return dt_memlife_oom(m, by_first, fstart, lcount, link, deg);
    memcpy(fill, fstart, ns * sizeof *fill);
    for (int b = 0; b < n; b++) by_first[fill[first[b]]++] = b;
    dt_free(fill);
    /* Neighbours of b: the blocks that start by its last step, less those that ended before its
     * first step, less itself. */
    size_t total = 0, max_deg = 0;
    for (int b = 0; b < n; b++) {
        deg[b] = (size_t)(fstart[last[b] + 1] - lcount[first[b]] - 1);
        total += deg[b];
        if (deg[b] > max_deg) max_deg = deg[b];
    }
    /* Over budget: list the blocks with the fewest neighbours first, up to the budget. */
    size_t cap = max_deg;
    if (total > budget) {
        size_t *hist = dt_calloc(max_deg + 1, sizeof *hist);
        if (!hist) return dt_memlife_oom(m, by_first, fstart, lcount, link, deg);
        for (int b = 0; b < n; b++) hist[deg[b]]++;
        size_t sum = 0;
        cap = 0;
        for (size_t d = 0; d <= max_deg; d++) {
            if (hist[d] && (sum + hist[d] * d > budget)) break;
            sum += hist[d] * d;
            cap = d;
        }
        dt_free(hist);
    }
    for (int b = 0; b < n; b++) {
        m->listed[b] = deg[b] <= cap;
        m->any_stacked |= !m->listed[b];
        m->adj_start[b + 1] = m->adj_start[b] + (m->listed[b] ? deg[b] : 0);
        if (m->listed[b] && deg[b] > m->max_list) m->max_list = deg[b];
    }
    m->adj = dt_malloc((m->adj_start[n] + 1) * sizeof *m->adj);
    if (!m->adj) return dt_memlife_oom(m, by_first, fstart, lcount, link, deg);
    /* One sweep over the steps with the list of live blocks that started earlier: a listed
     * block's neighbours are those (all live at its first step, so no more than its degree)
     * and the blocks that start within its lifetime. */
    int *next = link, *prev = link + nn, head = n; /* index n: the list's sentinel */
    next[head] = prev[head] = head;
    int *end_next = dt_malloc(nn * sizeof *end_next), *end_head = dt_malloc(ns * sizeof *end_head);
    if (!end_next || !end_head) {
        dt_free(end_next);
        dt_free(end_head);
        return dt_memlife_oom(m, by_first, fstart, lcount, link, deg);
    }
    for (int t = 0; t < n_steps; t++) end_head[t] = -1;
    for (int b = 0; b < n; b++) {
        end_next[b] = end_head[last[b]];
        end_head[last[b]] = b;
    }
    for (int t = 0; t < n_steps; t++) {
        for (int i = fstart[t]; i < fstart[t + 1]; i++) {
            int b = by_first[i];
            if (!m->listed[b]) continue;
            size_t pos = m->adj_start[b];
            for (int a = next[head]; a != head; a = next[a]) m->adj[pos++] = a;
            for (int j = fstart[t]; j < fstart[last[b] + 1]; j++)
                if (by_first[j] != b) m->adj[pos++] = by_first[j];
        }
        for (int i = fstart[t]; i < fstart[t + 1]; i++) {
            int b = by_first[i];
            next[b] = head;
            prev[b] = prev[head];
            next[prev[head]] = b;
            prev[head] = b;
        }
        for (int b = end_head[t]; b >= 0; b = end_next[b]) {
            next[prev[b]] = next[b];
            prev[next[b]] = prev[b];
        }
    }
    dt_free(end_next);
    dt_free(end_head);
    dt_free(by_first);
    dt_free(fstart);
    dt_free(lcount);
    dt_free(link);
    dt_free(deg);
    *out = m;
    return DUCTILE_OK;
}

/* ---- placement ---- */

/* The highest end of the blocks placed over steps: max over a range, raise a range to at
 * least v. mx[node] is the highest point of the node's range counting the raises at or below
 * it; raise[node] applies to every step of the node's range. */
typedef struct dt_skyline {
    size_t *mx, *raise;
    int n;
} dt_skyline;

static size_t dt_sky_max(const dt_skyline *s, int node, int lo, int hi, int a, int b)
{
    if (b < lo || hi < a) return 0;
    if (a <= lo && hi <= b) return s->mx[node];
    int mid = lo + (hi - lo) / 2;
    size_t l = dt_sky_max(s, 2 * node, lo, mid, a, b), r = dt_sky_max(s, 2 * node + 1, mid + 1, hi, a, b);
    size_t v = l > r ? l : r;
    return v > s->raise[node] ? v : s->raise[node];
}

static void dt_sky_raise(dt_skyline *s, int node, int lo, int hi, int a, int b, size_t v)
{
    if (b < lo || hi < a) return;
    if (v > s->mx[node]) s->mx[node] = v;
    if (a <= lo && hi <= b) {
        if (v > s->raise[node]) s->raise[node] = v;
        return;
    }
    int mid = lo + (hi - lo) / 2;
    dt_sky_raise(s, 2 * node, lo, mid, a, b, v);
    dt_sky_raise(s, 2 * node + 1, mid + 1, hi, a, b, v);
}

typedef struct dt_sized { size_t size; int block; } dt_sized;
typedef struct dt_span { size_t begin, end; } dt_span;

static int dt_by_size_desc(const void *a, const void *b)
{
    const dt_sized *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return (x->block > y->block) - (x->block < y->block);   /* deterministic */
}

static int dt_by_begin(const void *a, const void *b)
{
    const dt_span *x = a, *y = b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

static ductile_status dt_place(const dt_memlife *m, const size_t *sizes, size_t *offsets, size_t *arena,
                               dt_memplan_work *work, int *failed)
{
    int n = m->n;
    size_t nn = (size_t)n + 1;
    dt_sized *order = dt_malloc(nn * sizeof *order);
    unsigned char *done = dt_calloc(nn, 1);
    dt_span *near = dt_malloc((m->max_list + 1) * sizeof *near);
    dt_skyline sky = {NULL, NULL, m->n_steps};
    if (m->any_stacked) {
        sky.mx = dt_calloc(4 * (size_t)m->n_steps, sizeof *sky.mx);
        sky.raise = dt_calloc(4 * (size_t)m->n_steps, sizeof *sky.raise);
    }
    ductile_status s = DUCTILE_OK;
    if (!order || !done || !near || (m->any_stacked && (!sky.mx || !sky.raise)))
        s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory planning activation memory (%d tensors)", n);
    for (int b = 0; !s && b < n; b++) order[b] = (dt_sized){sizes[b], b};
    if (!s) qsort(order, (size_t)n, sizeof *order, dt_by_size_desc);
    size_t top = 0;
    for (int i = 0; !s && i < n; i++) {
        int b = order[i].block;
        size_t size = sizes[b], off = 0, end;
        if (m->listed[b]) {
            size_t k = 0;
            for (size_t j = m->adj_start[b]; j < m->adj_start[b + 1]; j++) {
                int a = m->adj[j];
                if (done[a]) near[k++] = (dt_span){offsets[a], offsets[a] + sizes[a]}; /* checked when placed */
            }
            if (work) work->neighbours += m->adj_start[b + 1] - m->adj_start[b];
            qsort(near, k, sizeof *near, dt_by_begin);
            for (size_t j = 0; j < k; j++) {
                if (near[j].begin >= off && near[j].begin - off >= size) break; /* fits in the gap before it */
                if (near[j].end > off) off = near[j].end;
            }
        } else {
            off = dt_sky_max(&sky, 1, 0, m->n_steps - 1, m->first[b], m->last[b]);
            if (work) work->stacked++;
        }
        if (!dt_add_size(off, size, &end)) {
            if (failed) *failed = b;
            s = dt_fail(DUCTILE_ERR_SHAPE, "the activation memory passes %zu bytes: block %d (%zu bytes) would start at byte %zu",
                        (size_t)SIZE_MAX, b, size, off);
            break;
        }
        if (m->any_stacked) dt_sky_raise(&sky, 1, 0, m->n_steps - 1, m->first[b], m->last[b], end);
        offsets[b] = off;
        done[b] = 1;
        if (end > top) top = end;
    }
    dt_free(order);
    dt_free(done);
    dt_free(near);
    dt_free(sky.mx);
    dt_free(sky.raise);
    if (!s) *arena = top;
    return s;
}

ductile_status dt_memlife_place(const dt_memlife *m, const size_t *sizes, size_t *offsets, size_t *arena,
                                dt_memplan_work *work)
{
    if (work) memset(work, 0, sizeof *work);
    return dt_place(m, sizes, offsets, arena, work, NULL);
}

int dt_memlife_last(const dt_memlife *m, int b) { return m->last[b]; }

ductile_status dt_memlife_from_step0(const dt_memlife *m, const unsigned char *from0, dt_memlife **out)
{
    *out = NULL;
    size_t nn = (size_t)m->n + 1;
    int *first = dt_malloc(nn * sizeof *first);
    if (!first) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory planning activation lifetimes");
    for (int b = 0; b < m->n; b++) first[b] = from0[b] ? 0 : m->first[b];
    ductile_status s = dt_memlife_make(m->n, first, m->last, m->n_steps, 0, out);
    dt_free(first);
    return s;
}

/* ---- the engine's blocks ---- */

ductile_status dt_memplan_lifetimes(const ductile_network *net, dt_plan *p)
{
    /* A tensor that is a view of another (alias_of) has no block: its first tensor's block
     * lives until the last reader of any view of it. */
    int n = 0;
    for (int t = 0; t < net->n_tensors; t++)
        n += p->kind[t] == DT_TENSOR_ACTIVATION && net->tensors[t]->producer && p->alias_of[t] < 0;
    size_t nn = (size_t)n + 1, nt = (size_t)net->n_tensors + 1;
    int *first = dt_malloc(nn * sizeof *first), *last = dt_malloc(nn * sizeof *last);
    int *reach = dt_malloc(nt * sizeof *reach);
    p->mem_tensor = dt_malloc(nn * sizeof *p->mem_tensor);
    p->mem_block = dt_malloc(nt * sizeof *p->mem_block);
    if (!first || !last || !reach || !p->mem_tensor || !p->mem_block) {
        dt_free(first);
        dt_free(last);
        dt_free(reach);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory planning %d tensors", net->n_tensors);
    }
    for (int t = 0; t < net->n_tensors; t++) {
        reach[t] = p->last_use[t];
        p->mem_block[t] = -1;
    }
    for (int t = 0; t < net->n_tensors; t++) {
        int r = p->alias_of[t];
        if (r >= 0 && p->last_use[t] > reach[r]) reach[r] = p->last_use[t];
    }
    int b = 0;
    for (int t = 0; t < net->n_tensors; t++) {
        if (p->kind[t] != DT_TENSOR_ACTIVATION || !net->tensors[t]->producer || p->alias_of[t] >= 0) continue;
        p->mem_tensor[b] = t;
        p->mem_block[t] = b;
        first[b] = net->tensors[t]->producer->index;
        last[b] = reach[t] < first[b] ? first[b] : reach[t];
        b++;
    }
    /* Every whole up a chain of slices lives while any slice below it does: at shapes where
     * a slice is not contiguous in its whole the slices under it sit in its own block. */
    for (int t = 0; t < net->n_tensors; t++) {
        int bt = p->mem_block[t];
        if (p->slice_of[t] < 0 || bt < 0) continue;
        for (int w = p->slice_of[t], hops = 0; w >= 0 && hops < net->n_tensors; w = p->slice_of[w], hops++) {
            int bw = p->mem_block[w];
            if (bw < 0) break;
            if (first[bt] < first[bw]) first[bw] = first[bt];
            if (last[bt] > last[bw]) last[bw] = last[bt];
        }
    }
    p->n_mem = n;
    ductile_status s = dt_memlife_make(n, first, last, net->n_layers, 0, &p->mem);
    dt_free(first);
    dt_free(last);
    dt_free(reach);
    return s;
}

/* Where slice t (plan->slice_of) starts in its whole at these shapes, or SIZE_MAX where it is
 * not contiguous there (a dim before the axis other than 1) or not 64-byte aligned (the
 * kernels' non-temporal stores need it). */
static size_t dt_slice_offset(const ductile_network *net, const dt_plan *p, const dt_view *views, int t)
{
    const ductile_layer *L = net->layers[p->slice_layer[t]];
    const dt_view *whole = &views[p->slice_of[t]];
    bool split = !strcmp(L->op_type, "Split");
    int64_t axis = dt_attr_int(L, "axis", 0);
    if (axis < 0) axis += whole->rank;
    if (axis < 0 || axis >= whole->rank || whole->dtype != views[t].dtype) return SIZE_MAX;
    for (int64_t i = 0; i < axis; i++)
        if (whole->dims[i] != 1) return SIZE_MAX;
    size_t off = 0, bytes = 0, all = 0;
    for (int j = 0; j < p->slice_pos[t]; j++) {
        const ductile_tensor *part = split ? L->out[j] : L->in[j];
        if (!part || !dt_view_bytes(&views[part->index], &bytes) || !dt_add_size(off, bytes, &off)) return SIZE_MAX;
    }
    if (off % 64 || !dt_view_bytes(&views[t], &bytes) || !dt_view_bytes(whole, &all) || bytes > all || off > all - bytes)
        return SIZE_MAX;
    return off;
}

/* offsets[t] of every slice placed in its whole (rel[t] != SIZE_MAX), wholes first: a chain is
 * walked up to its first whole not so placed, then offsets assigned down it (no recursion: a
 * model may nest thousands of Concats). */
static void dt_slice_offsets(const dt_plan *p, int n_tensors, const size_t *rel, bool *done, int *chain,
                             size_t *offsets)
{
    for (int t = 0; t < n_tensors; t++) {
        int n = 0;
        for (int u = t; rel[u] != SIZE_MAX && !done[u] && n < n_tensors; u = p->slice_of[u]) chain[n++] = u;
        while (n > 0) {
            int u = chain[--n];
            offsets[u] = offsets[p->slice_of[u]] + rel[u];
            done[u] = true;
        }
    }
}

ductile_status dt_memplan(const ductile_engine *e, const dt_view *views, size_t *offsets, size_t *arena_size)
{
    return dt_memplan_with(e, views, e->plan.mem, offsets, arena_size);
}

ductile_status dt_memplan_with(const ductile_engine *e, const dt_view *views, const dt_memlife *mem, size_t *offsets,
                               size_t *arena_size)
{
    const ductile_network *net = e->net;
    const dt_plan *p = &e->plan;
    size_t nn = (size_t)p->n_mem + 1;
    size_t *sizes = dt_malloc(nn * sizeof *sizes), *offs = dt_malloc(nn * sizeof *offs);
    if (!sizes || !offs) {
        dt_free(sizes);
        dt_free(offs);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory planning activation memory (%d tensors)", p->n_mem);
    }
    ductile_status s = DUCTILE_OK;
    for (int b = 0; b < p->n_mem && !s; b++) {
        const ductile_tensor *T = net->tensors[p->mem_tensor[b]];
        const dt_view *v = &views[T->index];
        size_t bytes;
        if (!dt_view_bytes(v, &bytes) || bytes > SIZE_MAX - 63) { /* the shape pass checks the first */
            char dims[256];
            dt_format_dims(dims, sizeof dims, v->dims, v->rank, NULL);
            s = dt_fail(DUCTILE_ERR_SHAPE, "tensor '%s' (output of node '%s' (%s)) has shape %s: its size in bytes passes %zu",
                        T->name, T->producer->name, T->producer->op_type, dims, (size_t)SIZE_MAX - 63);
            break;
        }
        sizes[b] = (bytes + 63) & ~(size_t)63;
    }
    /* A view's bytes are its first tensor's (view ops keep the element count, which the
     * shape pass checks; the block is grown all the same should a view need more). */
    for (int t = 0; t < net->n_tensors && !s; t++) {
        int r = p->alias_of[t];
        size_t bytes;
        if (r < 0 || p->mem_block[r] < 0) continue;
        if (!dt_view_bytes(&views[t], &bytes) || bytes > SIZE_MAX - 63) {
            s = dt_fail(DUCTILE_ERR_SHAPE, "tensor '%s' (output of node '%s' (%s)): its size in bytes passes %zu",
                        net->tensors[t]->name, net->tensors[t]->producer->name, net->tensors[t]->producer->op_type,
                        (size_t)SIZE_MAX - 63);
            break;
        }
        bytes = (bytes + 63) & ~(size_t)63;
        if (bytes > sizes[p->mem_block[r]]) sizes[p->mem_block[r]] = bytes;
    }
    /* Slices placed in their wholes at these shapes need no block of their own. */
    size_t nt = (size_t)net->n_tensors + 1;
    size_t *rel = s ? NULL : dt_malloc(nt * sizeof *rel);
    bool *done = s ? NULL : dt_calloc(nt, sizeof *done);
    int *chain = s ? NULL : dt_malloc(nt * sizeof *chain);
    if (!s && (!rel || !done || !chain))
        s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory planning activation memory (%d tensors)", p->n_mem);
    for (int t = 0; t < net->n_tensors && !s; t++) {
        rel[t] = p->slice_of[t] >= 0 && p->mem_block[t] >= 0 ? dt_slice_offset(net, p, views, t) : SIZE_MAX;
        if (rel[t] != SIZE_MAX) sizes[p->mem_block[t]] = 0;
    }
    int failed = -1;
    if (!s) s = dt_place(mem, sizes, offs, arena_size, NULL, &failed);
    if (s && failed >= 0) {
        const ductile_tensor *T = net->tensors[p->mem_tensor[failed]];
        s = dt_fail(DUCTILE_ERR_SHAPE, "the activation memory passes %zu bytes: tensor '%s' (output of node '%s' (%s), %zu bytes) does not fit",
                    (size_t)SIZE_MAX, T->name, T->producer->name, T->producer->op_type, sizes[failed]);
    }
    for (int b = 0; b < p->n_mem && !s; b++) offsets[p->mem_tensor[b]] = offs[b];
    if (!s) dt_slice_offsets(p, net->n_tensors, rel, done, chain, offsets);
    for (int t = 0; t < net->n_tensors && !s; t++)
        if (p->alias_of[t] >= 0 && p->mem_block[p->alias_of[t]] >= 0) offsets[t] = offsets[p->alias_of[t]];
    dt_free(sizes);
    dt_free(offs);
    dt_free(rel);
    dt_free(done);
    dt_free(chain);
    return s;
}
