/* TfIdfVectorizer (opset 9): counts the n-grams of a pool in each row of integer tokens
 * (skipping up to max_skip_count tokens between the items of an n-gram) and weighs the counts
 * (TF, IDF, TFIDF), as scikit-learn's vectorizers exported to ONNX. The pool, its ids and the
 * output layout come from attributes, checked here once; ductile has no string tensors, so a
 * pool of strings is refused. */
#include "ops/seq.h"
#include "core/status.h"

#include <string.h>

ductile_status dt_tfidf_attrs_check(const ductile_layer *L, dt_tfidf_attrs *a)
{
    memset(a, 0, sizeof *a);
    const char *mode = dt_attr_string(L, "mode", "");
    a->mode = !strcmp(mode, "TF") ? DT_TFIDF_TF : !strcmp(mode, "IDF") ? DT_TFIDF_IDF : !strcmp(mode, "TFIDF") ? DT_TFIDF_TFIDF : -1;
    if (a->mode < 0)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'mode' = '%s'; expected TF, IDF or TFIDF", mode);
    if (dt_attr_find(L, "pool_strings"))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'pool_strings': string tensors are not supported by ductile "
                       "(a pool of int64 tokens, pool_int64s, is)");
    a->pool = dt_attr_ints(L, "pool_int64s", &a->n_pool);
    a->counts = dt_attr_ints(L, "ngram_counts", &a->n_counts);
    a->indexes = dt_attr_ints(L, "ngram_indexes", &a->n_indexes);
    a->weights = dt_attr_floats(L, "weights", &a->n_weights);
    a->min_gram = dt_attr_int(L, "min_gram_length", 0);
    a->max_gram = dt_attr_int(L, "max_gram_length", 0);
    a->max_skip = dt_attr_int(L, "max_skip_count", 0);
    if (a->min_gram < 1 || a->max_gram < a->min_gram || a->max_gram > 64)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "attributes 'min_gram_length' = %lld and 'max_gram_length' = %lld; expected 1 <= min <= max <= 64",
                       (long long)a->min_gram, (long long)a->max_gram);
    if (a->max_skip < 0 || a->max_skip > 1024)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'max_skip_count' = %lld; expected 0..1024",
                       (long long)a->max_skip);
    if (!a->pool || !a->counts || !a->indexes)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attributes 'pool_int64s', 'ngram_counts' and 'ngram_indexes' are required");
    /* ngram_counts[s-1]: where the n-grams of size s start in the pool, ascending. */
    int64_t grams = 0;
    for (int64_t i = 0; i < a->n_counts; i++) {
        int64_t start = a->counts[i], end = i + 1 < a->n_counts ? a->counts[i + 1] : a->n_pool;
        if (start < 0 || end < start || end > a->n_pool || (end - start) % (i + 1) != 0)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "attribute 'ngram_counts'[%lld] = %lld: the %lld-grams must take pool_int64s[%lld..%lld), a "
                           "multiple of %lld items within the pool of %lld",
                           (long long)i, (long long)start, (long long)(i + 1), (long long)start, (long long)end,
                           (long long)(i + 1), (long long)a->n_pool);
        grams += (end - start) / (i + 1);
    }
    if (a->n_indexes != grams)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'ngram_indexes' has %lld values; the pool holds %lld n-grams",
                       (long long)a->n_indexes, (long long)grams);
    a->out_size = 0;
    for (int64_t i = 0; i < a->n_indexes; i++) {
        if (a->indexes[i] < 0 || a->indexes[i] >= (1 << 24))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'ngram_indexes'[%lld] = %lld; expected 0..%d",
                           (long long)i, (long long)a->indexes[i], (1 << 24) - 1);
        if (a->indexes[i] + 1 > a->out_size) a->out_size = a->indexes[i] + 1;
    }
    if (a->weights && a->n_weights > 0 && a->n_weights != a->n_indexes)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'weights' has %lld values; expected %lld (one per n-gram "
                       "of the pool)", (long long)a->n_weights, (long long)a->n_indexes);
    return DUCTILE_OK;
}

ductile_status dt_seq_check_tfidf(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 1, 1, 1, 1, DT_INPUT_NAMES("X")));
    dt_tfidf_attrs a;
    return dt_tfidf_attrs_check(L, &a);
}

ductile_status dt_seq_infer_tfidf(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    dt_tfidf_attrs a;
    DT_TRY(dt_tfidf_attrs_check(L, &a));
    if (in[0].dtype != DUCTILE_INT64 && in[0].dtype != DUCTILE_INT32)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input 0 (X) has dtype %s (supported: int32, int64)",
                       ductile_dtype_name((ductile_dtype)in[0].dtype));
    if (in[0].rank > 2 || (in[0].rank == 2 && in[0].dims[0] < 1)) {
        char s[160];
        dt_format_dims(s, sizeof s, in[0].dims, in[0].rank, NULL);
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (X) has shape %s; expected [C] or [B, C] with B >= 1", s);
    }
    memset(&out[0], 0, sizeof out[0]);
    out[0].dtype = DUCTILE_FLOAT32;
    out[0].rank = in[0].rank == 2 ? 2 : 1;
    out[0].dims[0] = in[0].rank == 2 ? in[0].dims[0] : a.out_size;
    if (in[0].rank == 2) out[0].dims[1] = a.out_size;
    return DUCTILE_OK;
}
