/* String tensors through the C API: ductile_string views in and out of a built, serialized and
 * reloaded engine (a string constant, UTF-8, empty strings, outputs of a data-dependent shape,
 * two runs on one context); and the rules underneath with their exact messages: RE2 patterns
 * as POSIX expressions, StringSplit's pieces, and the engine blob of string constants. */
#include "eager_models.h"
#include "onnx_writer.h"
#include "testutil.h"
#include "format/strings.h"
#include "ops/strings.h"
#include "core/status.h"
#ifdef DT_WITH_CUDA
#include "backend/cuda/cuda.h"
#include "graph/network.h"
#endif

#include <stdlib.h>
#include <string.h>

static ductile_string str(const char *s) { return (ductile_string){*s ? s : NULL, strlen(s)}; }

static int same_str(ductile_string v, const char *want)
{
    return v.length == strlen(want) && (!v.length || !memcmp(v.data, want, v.length));
}

/* y = StringConcat(x, c); parts, n = StringSplit(y, "-"): eager_models.h's em_strings_model(1). */

static void test_strings_round_trip_through_an_engine_file(void)
{
    pbw m = em_strings_model(1);
    ductile_builder *b = NULL;
    ductile_network *n = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *e = NULL, *e2 = NULL;
    ductile_context *c = NULL;
    void *bytes = NULL;
    size_t size = 0;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_create(b, &n), DUCTILE_OK);
    CHECK_EQ_INT(ductile_onnx_parse_memory(n, m.p, m.n), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_create(b, &cfg), DUCTILE_OK);
    ductile_status s = ductile_builder_build(b, n, cfg, &e);
    if (s) fprintf(stderr, "build: %s\n", ductile_last_error());
    CHECK_EQ_INT(s, DUCTILE_OK);
    if (e) CHECK_EQ_INT(ductile_engine_serialize(e, &bytes, &size), DUCTILE_OK);
    ductile_engine_free(e);
    ductile_network_free(n);  /* the reloaded engine's constant owes nothing to the model */
    free(m.p);
    if (bytes) CHECK_EQ_INT(ductile_engine_load_memory(bytes, size, &e2), DUCTILE_OK);
    if (e2) CHECK_EQ_INT(ductile_context_create(e2, &c), DUCTILE_OK);
    CHECK_EQ_INT(ductile_engine_tensor_dtype(e2, "y"), DUCTILE_STRING);
    static const char *const runs[2][3] = {{"a-b", "", "\xe7\x9a\x84"}, {"x", "--", "q"}};
    static const char *const want_y[2][3] = {{"a-b-\xc3\xa9", "-\xc3\xa9", "\xe7\x9a\x84-\xc3\xa9"},
                                             {"x-\xc3\xa9", "---\xc3\xa9", "q-\xc3\xa9"}};
    static const int64_t want_n[2][3] = {{3, 2, 2}, {2, 4, 2}};
    for (int r = 0; c && r < 2; r++) {
        ductile_string x[3] = {str(runs[r][0]), str(runs[r][1]), str(runs[r][2])}, y[3];
        int64_t cnt[3];
        ductile_dims d = {1, {3}};
        CHECK_EQ_INT(ductile_context_set_input_shape(c, "x", &d), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_tensor_address(c, "x", x), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_tensor_address(c, "y", y), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_tensor_address(c, "n", cnt), DUCTILE_OK);
        s = ductile_context_execute(c);
        if (s) fprintf(stderr, "execute: %s\n", ductile_last_error());
        CHECK_EQ_INT(s, DUCTILE_OK);
        /* An eager engine (StringSplit's shape depends on data) writes its own buffers. */
        void *yp = NULL, *np = NULL, *pp = NULL;
        CHECK_EQ_INT(ductile_context_get_tensor_address(c, "y", &yp), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_get_tensor_address(c, "n", &np), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_get_tensor_address(c, "parts", &pp), DUCTILE_OK);
        ductile_dims pd;
        CHECK_EQ_INT(ductile_context_get_tensor_shape(c, "parts", &pd), DUCTILE_OK);
        CHECK_EQ_INT(pd.nb_dims, 2);
        CHECK_EQ_INT(pd.d[1], r ? 4 : 3);
        for (int i = 0; yp && np && i < 3; i++) {
            CHECK(same_str(((ductile_string *)yp)[i], want_y[r][i]));
            CHECK_EQ_INT(((int64_t *)np)[i], want_n[r][i]);
        }
        /* Padding is the empty string; the pieces view y's bytes. */
        if (pp && r == 0) {
            const ductile_string *p = pp;
            CHECK(same_str(p[0], "a") && same_str(p[1], "b") && same_str(p[2], "\xc3\xa9"));
            CHECK(same_str(p[3], "") && same_str(p[4], "\xc3\xa9") && same_str(p[5], ""));
        }
    }
    ductile_context_free(c);
    ductile_engine_free(e2);
    ductile_free(bytes);
    ductile_config_free(cfg);
    ductile_builder_free(b);
}

static void expect_posix(const char *re2, const char *want)
{
    char buf[256];
    ductile_status s = dt_regex_to_posix(re2, buf, sizeof buf);
    if (s) fprintf(stderr, "%s: %s\n", re2, dt_last_error());
    CHECK_EQ_INT(s, DUCTILE_OK);
    CHECK_EQ_STR(buf, want);
}

static void expect_refused(const char *re2, const char *msg)
{
    char buf[256];
    CHECK_EQ_INT(dt_regex_to_posix(re2, buf, sizeof buf), DUCTILE_ERR_UNSUPPORTED);
    CHECK_EQ_STR(dt_last_error(), msg);
}

static void test_re2_patterns_become_anchored_posix_or_are_refused(void)
{
    expect_posix("www\\.[\\w.-]+\\.\\bcom\\b", "^(www\\.[0-9A-Za-z_.-]+\\.\\bcom\\b)$");
    expect_posix("[\\w.\\-]{0,25}@(yahoo|gmail)", "^([0-9A-Za-z_.-]{0,25}@(yahoo|gmail))$");
    /* RE2's classes are ASCII: spelled out, since C.UTF-8's take every letter. */
    expect_posix("\\w\\W\\s[[:alpha:][:punct:]\\d]", "^([0-9A-Za-z_][^0-9A-Za-z_][\t\n\f\r ][A-Za-z[:punct:]0-9])$");
    expect_posix("\\d+\\D(?:ab)*?[^\\]x\\^]", "^([0-9]+[^0-9](ab)*[^]x^])$");
    expect_posix("a\\/b\\-c", "^(a/b-c)$");
    expect_refused("a(?i)b", "byte 1: a group with flags or a name ((?...)) is RE2 syntax that ductile's POSIX matcher lacks");
    expect_refused("\\pL", "byte 0: the escape \\p is RE2 syntax that ductile's POSIX matcher lacks");
    expect_refused("x\\Ay", "byte 1: the escape \\A is RE2 syntax that ductile's POSIX matcher lacks");
    expect_refused("[\\W]", "byte 1: a negated class (\\W, \\D, \\S) inside [...] is RE2 syntax that ductile's POSIX matcher lacks");
}

static void expect_split(const char *s, const char *delim, int64_t maxsplit, const char *const *want)
{
    ductile_string out[8];
    int64_t n = dt_string_split(str(s), delim, strlen(delim), maxsplit, out, 8), k = 0;
    while (want[k]) k++;
    CHECK_EQ_INT(n, k);
    for (int64_t i = 0; i < n && i < k; i++) CHECK(same_str(out[i], want[i]));
}

static void test_string_split_pieces(void)
{
    expect_split("o-n--x-", "-", -1, S("o", "n", "", "x", ""));
    expect_split("a::b::c", "::", 1, S("a", "b::c"));
    expect_split("  hello   world ! ", "", -1, S("hello", "world", "!"));
    expect_split(" the quick brown fox  ", "", 2, S("the", "quick", "brown fox"));
    const char *const none[] = {NULL};
    expect_split("", "-", -1, none);
    expect_split("   ", "", -1, none);
}

static void test_string_blobs_are_bounded(void)
{
    /* lengths 2, 0, 3 then "ab" "cde" */
    unsigned char blob[3 * 8 + 5] = {2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0,
                                     'a', 'b', 'c', 'd', 'e'};
    ductile_string v[3];
    uint64_t at = 0;
    CHECK_EQ_INT(dt_strings_blob_read(blob, sizeof blob, 3, v, &at), DUCTILE_OK);
    CHECK(same_str(v[0], "ab") && same_str(v[1], "") && same_str(v[2], "cde"));
    CHECK(v[1].data == NULL);
    uint64_t size = 0;
    CHECK(dt_strings_blob_size(v, 3, &size));
    CHECK_EQ_INT(size, sizeof blob);
    CHECK_EQ_INT(dt_strings_blob_read(blob, sizeof blob - 1, 3, v, &at), DUCTILE_ERR_FORMAT);
    CHECK_EQ_STR(dt_last_error(), "element 2's length 3 runs past the blob's 28 bytes");
    CHECK_EQ_INT(at, 16);
    CHECK_EQ_INT(dt_strings_blob_read(blob, sizeof blob, 2, v, &at), DUCTILE_ERR_FORMAT);
    CHECK_EQ_STR(dt_last_error(), "11 bytes after the last string");
    CHECK_EQ_INT(dt_strings_blob_read(blob, 20, 3, v, &at), DUCTILE_ERR_FORMAT);
    CHECK_EQ_STR(dt_last_error(), "3 string lengths do not fit in the blob's 20 bytes");
}

/* ---- allocation failures: each allocation of a string workflow failed in turn ---- */

typedef struct counting {
    long calls, fail_at, failed, live_blocks;
} counting;

static counting cnt;

static void *count_alloc(void *user, size_t size, size_t alignment)
{
    counting *c = user;
    if (++c->calls == c->fail_at) {
        c->failed++;
        return NULL;
    }
    void *p = NULL;
    if (posix_memalign(&p, alignment < 16 ? 16 : alignment, size ? size : 1)) return NULL;
    memset(p, 0xa5, size); /* garbage: nothing may rely on fresh memory being zero */
    c->live_blocks++;
    return p;
}

static void count_free(void *user, void *ptr)
{
    ((counting *)user)->live_blocks--;
    free(ptr);
}

/* x -> StringNormalizer(UPPER) -> u -> LabelEncoder (ai.onnx.ml) -> v -> Cast(string) -> w */
static pbw alloc_model(void)
{
    pbw g = {0};
    int64_t three = 3;
    pbw up = attr_str("case_change_action", "UPPER", 3);
    w_msg(&g, 1, node("norm", "StringNormalizer", NULL, S("x"), S("u"), &up, 1));
    pbw le[2] = {{0}, {0}};
    w_str(&le[0], 1, "keys_strings");
    w_str(&le[0], 9, "AB");   /* AttributeProto: strings = 9, ints = 8, type = 20 */
    w_str(&le[0], 9, "\xc3\x89T\xc3\x89");
    w_int(&le[0], 20, 8);
    w_str(&le[1], 1, "values_int64s");
    w_int(&le[1], 8, 1);
    w_int(&le[1], 8, 2);
    w_int(&le[1], 20, 7);
    w_msg(&g, 1, node("le", "LabelEncoder", "ai.onnx.ml", S("u"), S("v"), le, 2));
    pbw to = attr_int("to", DUCTILE_STRING);
    w_msg(&g, 1, node("cast", "Cast", NULL, S("v"), S("w"), &to, 1));
    w_str(&g, 2, "g");
    w_msg(&g, 11, value_info("x", DUCTILE_STRING, 1, &three, NULL));
    w_msg(&g, 12, value_info("u", DUCTILE_STRING, 1, &three, NULL));
    w_msg(&g, 12, value_info("w", DUCTILE_STRING, 1, &three, NULL));
    pbw m = {0}, o = {0}, o2 = {0};
    w_int(&m, 1, 8);
    w_msg(&m, 7, g);
    w_str(&o, 1, "");
    w_int(&o, 2, 21);
    w_msg(&m, 8, o);
    w_str(&o2, 1, "ai.onnx.ml");
    w_int(&o2, 2, 4);
    w_msg(&m, 8, o2);
    return m;
}

/* The whole workflow once; DUCTILE_OK with u and w checked, or the first failure. */
static ductile_status alloc_workflow(const pbw *m)
{
    ductile_builder *b = NULL;
    ductile_network *n = NULL;
    ductile_config *cfg = NULL;
    ductile_engine *e = NULL, *e2 = NULL;
    ductile_context *c = NULL;
    void *bytes = NULL;
    size_t size = 0;
    ductile_string x[3] = {str("ab"), str("\xc3\xa9t\xc3\xa9"), str("zz")}, u[3], w[3];
    ductile_dims d = {1, {3}};
    ductile_status s = ductile_builder_create(&b);
    if (!s) s = ductile_network_create(b, &n);
    if (!s) s = ductile_onnx_parse_memory(n, m->p, m->n);
    if (!s) s = ductile_config_create(b, &cfg);
    if (!s) s = ductile_builder_build(b, n, cfg, &e);
    if (!s) s = ductile_engine_serialize(e, &bytes, &size);
    if (!s) s = ductile_engine_load_memory(bytes, size, &e2);
    if (!s) s = ductile_context_create(e2, &c);
    if (!s) s = ductile_context_set_input_shape(c, "x", &d);
    if (!s) s = ductile_context_set_tensor_address(c, "x", x);
    if (!s) s = ductile_context_execute(c);
    /* StringNormalizer makes the engine eager: outputs are in the context's buffers. */
    void *up = NULL, *wp = NULL;
    if (!s) s = ductile_context_get_tensor_address(c, "u", &up);
    if (!s) s = ductile_context_get_tensor_address(c, "w", &wp);
    if (!s) {
        memcpy(u, up, sizeof u);
        memcpy(w, wp, sizeof w);
        CHECK(same_str(u[0], "AB") && same_str(u[1], "\xc3\x89T\xc3\x89") && same_str(u[2], "ZZ"));
        CHECK(same_str(w[0], "1") && same_str(w[1], "2") && same_str(w[2], "-1"));
    }
    ductile_context_free(c);
    ductile_engine_free(e2);
    ductile_free(bytes);
    ductile_engine_free(e);
    ductile_config_free(cfg);
    ductile_network_free(n);
    ductile_builder_free(b);
    return s;
}

static void test_every_failed_allocation_of_a_string_workflow_is_reported_and_freed(void)
{
    static const ductile_allocator a = {count_alloc, count_free, &cnt};
    pbw m = alloc_model();
    CHECK_EQ_INT(ductile_set_allocator(&a), DUCTILE_OK);
    long runs = 0;
    for (long k = 1; k < 100000; k++, runs++) {
        cnt.calls = cnt.failed = 0;
        cnt.fail_at = k;
        ductile_status s = alloc_workflow(&m);
        CHECK_EQ_INT(cnt.live_blocks, 0);
        if (!cnt.failed) {
            if (s) fprintf(stderr, "workflow: %s\n", ductile_last_error());
            CHECK_EQ_INT(s, DUCTILE_OK);
            break;
        }
        if (s != DUCTILE_ERR_OUT_OF_MEMORY) {
            fprintf(stderr, "allocation %ld failed: status %d, %s\n", k, (int)s, ductile_last_error());
            CHECK_EQ_INT(s, DUCTILE_ERR_OUT_OF_MEMORY);
        } else {
            CHECK(strstr(ductile_last_error(), "out of memory") != NULL);
        }
    }
    CHECK(runs > 50);
    CHECK_EQ_INT(ductile_set_allocator(NULL), DUCTILE_OK);
    free(m.p);
}

#ifdef DT_WITH_CUDA
/* The CUDA backend places every layer touching strings on the host ("cpu fallback"): string
 * views point into host memory. No GPU needed: supports() decides from the views. */
static void test_cuda_leaves_string_layers_to_the_host(void)
{
    ductile_network *n = NULL;
    CHECK_EQ_INT(dt_network_new(&n), DUCTILE_OK);
    if (!n) return;
    static const char *const ops[] = {"Identity", "Relu", "Cast", "Equal"};
    int64_t d = 4;
    for (int k = 0; k < 4; k++) {
        ductile_layer *L = dt_network_add_layer(n, ops[k], ops[k], 1, 1, 0);
        L->in[0] = dt_network_add_tensor(n, ops[k]);
        char on[32];
        snprintf(on, sizeof on, "%s_out", ops[k]);
        L->out[0] = dt_network_add_tensor(n, on);
        L->opset = 13;
        dt_view f = {DUCTILE_FLOAT32, 1, {d}, NULL}, st = {DUCTILE_STRING, 1, {d}, NULL},
                b = {DUCTILE_BOOL, 1, {d}, NULL};
        /* a string input or a string output: never on the GPU */
        CHECK(!dt_cuda_supports(L, &st, k == 3 ? &b : k == 2 ? &f : &st));
        if (k == 2) CHECK(!dt_cuda_supports(L, &f, &st));
        /* the same layer on floats is the GPU's (Relu, Cast float -> float): the check can fail */
        if (k == 1 || k == 2) CHECK(dt_cuda_supports(L, &f, &f));
    }
    dt_network_delete(n);
}
#endif

int main(void)
{
    test_strings_round_trip_through_an_engine_file();
    test_re2_patterns_become_anchored_posix_or_are_refused();
    test_string_split_pieces();
    test_string_blobs_are_bounded();
    test_every_failed_allocation_of_a_string_workflow_is_reported_and_freed();
#ifdef DT_WITH_CUDA
    test_cuda_leaves_string_layers_to_the_host();
#endif
    TEST_MAIN_END();
}
