/* TfIdfVectorizer on the CPU. prepare sorts the pool's n-grams of the counted sizes
 * (lexicographically, a prefix before its extensions; a repeated n-gram keeps the last id, as
 * the reference's trie does) into the params blob; the run walks each row's n-grams, skipping
 * as the attributes say, and finds each prefix by binary search: a prefix no pool n-gram
 * extends ends the walk, an exact match counts. */
#include "backend/cpu/seq_kernels.h"
#include "core/alloc.h"
#include "core/sort.h"
#include "core/status.h"
#include "ops/seq.h"

#include <string.h>

typedef struct dt_gram {
    const int64_t *tok;     /* its tokens, in the params' token array */
    int32_t len;
    int32_t column;         /* output column (ngram_indexes of its id) */
} dt_gram;

typedef struct dt_tfidf_params {
    int mode;
    int64_t min_gram, max_gram, max_skip, out_size, n_grams;
    int64_t cap;            /* grams room in the blob (n_grams once repeats are dropped) */
    bool has_weights;
    /* then: dt_gram grams[cap]; float weights[out_size] if has_weights; int64_t tokens[] */
} dt_tfidf_params;

static dt_gram *dt_grams(const dt_tfidf_params *p) { return (dt_gram *)(p + 1); }
static float *dt_weights(const dt_tfidf_params *p) { return (float *)(dt_grams(p) + p->cap); }
static int64_t *dt_tokens(const dt_tfidf_params *p)
{
    return (int64_t *)(dt_weights(p) + (p->has_weights ? p->out_size : 0) + 1);
}

/* Sign of (a's tokens, len) against (b, blen): lexicographic, a prefix first. */
static int dt_seq_cmp(const int64_t *a, int64_t alen, const int64_t *b, int64_t blen)
{
    for (int64_t i = 0; i < alen && i < blen; i++)
        if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static int dt_gram_order(const void *x, const void *y)
{
    const dt_gram *a = x, *b = y;
    int c = dt_seq_cmp(a->tok, a->len, b->tok, b->len);
    return c ? c : (a->tok < b->tok ? -1 : a->tok > b->tok); /* pool order among equals */
}

static ductile_status dt_tfidf_prepare(const ductile_layer *L, void **out)
{
    dt_tfidf_attrs a;
    DT_TRY(dt_tfidf_attrs_check(L, &a));
    int64_t n = 0;
    for (int64_t i = 0; i < a.n_counts; i++) {
        int64_t end = i + 1 < a.n_counts ? a.counts[i + 1] : a.n_pool;
        if (i + 1 >= a.min_gram && i + 1 <= a.max_gram) n += (end - a.counts[i]) / (i + 1);
    }
    bool w = a.weights && a.n_weights > 0;
    size_t bytes = sizeof(dt_tfidf_params) + (size_t)n * sizeof(dt_gram) +
                   ((size_t)(w ? a.out_size : 0) + 1) * sizeof(float) + (size_t)a.n_pool * sizeof(int64_t) + 8;
    dt_tfidf_params *p = dt_malloc(bytes);
    if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory compiling node '%s'", L->name);
    *p = (dt_tfidf_params){a.mode, a.min_gram, a.max_gram, a.max_skip, a.out_size, n, n, w};
    /* tokens must be 8-byte aligned: the float area is padded by one float and rounded */
    int64_t *tok = (int64_t *)(((uintptr_t)dt_tokens(p) + 7) & ~(uintptr_t)7);
    memcpy(tok, a.pool, (size_t)a.n_pool * sizeof(int64_t));
    /* weights[id] is the weight of the pool's id-th n-gram (the spec, and onnxruntime; ONNX's
     * reference reads it per output column, the same where ngram_indexes is the identity):
     * laid out per output column here. */
    if (w) {
        float *cw = dt_weights(p);
        for (int64_t i = 0; i < a.out_size; i++) cw[i] = 0.0f;
        for (int64_t i = 0; i < a.n_indexes; i++) cw[a.indexes[i]] = a.weights[i];
    }
    dt_gram *g = dt_grams(p);
    int64_t k = 0, id = 0;
    for (int64_t i = 0; i < a.n_counts; i++) {
        int64_t start = a.counts[i], end = i + 1 < a.n_counts ? a.counts[i + 1] : a.n_pool;
        for (int64_t at = start; at + i + 1 <= end; at += i + 1, id++)
            if (i + 1 >= a.min_gram && i + 1 <= a.max_gram)
                g[k++] = (dt_gram){tok + at, (int32_t)(i + 1), (int32_t)a.indexes[id]};
    }
    /* dt_sort, not qsort: qsort allocates around the allocator hook (core/alloc.h). */
    dt_gram *tmp = dt_malloc((size_t)(n ? n : 1) * sizeof *tmp);
    if (!tmp) {
        dt_free(p);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory compiling node '%s'", L->name);
    }
    dt_sort(g, (size_t)n, sizeof *g, dt_gram_order, tmp);
    dt_free(tmp);
    /* Equal n-grams: the last in the pool wins; keep it alone. */
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        if (m && !dt_seq_cmp(g[m - 1].tok, g[m - 1].len, g[i].tok, g[i].len)) g[m - 1] = g[i];
        else g[m++] = g[i];
    }
    p->n_grams = m;
    *out = p;
    return DUCTILE_OK;
}

typedef struct dt_tfidf_job {
    const dt_tfidf_params *p;
    const void *x;
    bool x64;
    int64_t c;
    float *y;
} dt_tfidf_job;

static void dt_tfidf_rows(void *arg, int64_t b, int64_t e, int tid)
{
    (void)tid;
    const dt_tfidf_job *j = arg;
    const dt_tfidf_params *p = j->p;
    const dt_gram *g = dt_grams(p);
    int64_t prefix[64];
    for (int64_t r = b; r < e; r++) {
        float *y = j->y + r * p->out_size;
        memset(y, 0, (size_t)p->out_size * sizeof *y);
        int64_t start_size = p->min_gram;
        for (int64_t d = 1; d <= p->max_skip + 1 && p->n_grams; d++) {
            for (int64_t s0 = 0; s0 < j->c; s0++) {
                if (s0 + d * (start_size - 1) >= j->c) break;
                int64_t lo = 0;
                for (int64_t s = 1; s <= p->max_gram && s0 + (s - 1) * d < j->c; s++) {
                    int64_t at = r * j->c + s0 + (s - 1) * d;
                    prefix[s - 1] = j->x64 ? ((const int64_t *)j->x)[at] : ((const int32_t *)j->x)[at];
                    /* lower bound of the prefix, from the last one's: extensions sort after it */
                    int64_t hi = p->n_grams;
                    while (lo < hi) {
                        int64_t mid = lo + (hi - lo) / 2;
                        if (dt_seq_cmp(g[mid].tok, g[mid].len, prefix, s) < 0) lo = mid + 1;
                        else hi = mid;
                    }
                    if (lo == p->n_grams || g[lo].len < s || dt_seq_cmp(g[lo].tok, s, prefix, s) != 0) break;
                    if (g[lo].len == s && s >= start_size) y[g[lo].column] += 1.0f;
                }
            }
            if (start_size == 1 && ++start_size > p->max_gram) break;
        }
        const float *w = p->has_weights ? dt_weights(p) : NULL;
        for (int64_t i = 0; i < p->out_size; i++) {
            float f = y[i];
            switch (p->mode) {
            case DT_TFIDF_TF: break;
            case DT_TFIDF_IDF: y[i] = f > 0 ? (w ? w[i] : 1.0f) : 0.0f; break;
            default: y[i] = w ? w[i] * f : f; break;
            }
        }
    }
}

static ductile_status dt_tfidf_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_tfidf_params *p = params;
    int64_t rows = in[0].rank == 2 ? in[0].dims[0] : 1;
    int64_t c = in[0].rank == 0 ? 1 : in[0].dims[in[0].rank - 1];
    dt_tfidf_job j = {p, in[0].data, in[0].dtype == DUCTILE_INT64, c, out[0].data};
    dt_parallel_for(ex->pool, rows, 1, dt_tfidf_rows, &j);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_seq_tfidf_kernel = {.prepare = dt_tfidf_prepare, .run = dt_tfidf_run};
