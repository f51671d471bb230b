/* Control flow through the C API and the engine format: a subgraph's outer-scope reads become
 * implicit inputs of its layer; an If runs both ways, also after a save and load; the
 * SUBGRAPHS section refuses corrupt entries with exact messages and no mutation crashes the
 * reader; a layer whose subgraph reads a tensor the layer does not list is refused. */
#include "ductile.h"
#include "core/alloc.h"
#include "core/status.h"
#include "format/format.h"
#include "format/profile.h"
#include "graph/network.h"
#include "graph/subgraph.h"
#include "runtime/engine_read.h"
#include "eager_models.h"
#include "onnx_writer.h"
#include "testutil.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static ductile_engine *build(ductile_builder *b, ductile_network *net)
{
    ductile_config *cfg = NULL;
    ductile_engine *e = NULL;
    CHECK_EQ_INT(ductile_config_create(b, &cfg), DUCTILE_OK);
    if (ductile_builder_build(b, net, cfg, &e) != DUCTILE_OK) e = NULL;
    ductile_config_free(cfg);
    return e;
}

static void run_if(const ductile_engine *e, bool cond, const float *x, float *y)
{
    ductile_context *c = NULL;
    CHECK_EQ_INT(ductile_context_create(e, &c), DUCTILE_OK);
    uint8_t cb = cond;
    CHECK_EQ_INT(ductile_context_set_tensor_address(c, "x", (void *)x), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_set_tensor_address(c, "c", &cb), DUCTILE_OK);
    CHECK_EQ_INT(ductile_context_execute(c), DUCTILE_OK);
    void *out = NULL;
    CHECK_EQ_INT(ductile_context_get_tensor_address(c, "y", &out), DUCTILE_OK);
    if (out) memcpy(y, out, 2 * sizeof(float));
    ductile_context_free(c);
}

static void test_outer_reads_become_implicit_inputs(const pbw *m)
{
    ductile_network *net = NULL;
    ductile_builder *b = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_create(b, &net), DUCTILE_OK);
    CHECK_EQ_INT(ductile_onnx_parse_memory(net, m->p, m->n), DUCTILE_OK);
    const ductile_layer *L = net->layers[net->n_layers - 1];
    CHECK_EQ_STR(L->op_type, "If");
    /* cond, then the enclosing tensors the branches read, each once: a (both), x (then). */
    CHECK_EQ_INT(L->n_in, 3);
    CHECK_EQ_STR(L->in[1]->name, "a");
    CHECK_EQ_STR(L->in[2]->name, "x");
    CHECK_EQ_INT(dt_ctrl_formal_inputs(L), 1);
    const ductile_network *t = dt_ctrl_graph(L, "then_branch"), *e = dt_ctrl_graph(L, "else_branch");
    CHECK(t && e);
    if (t && e) {
        CHECK_EQ_INT(t->n_captured, 2);
        CHECK_EQ_INT(e->n_captured, 1);
        CHECK_EQ_INT(dt_ctrl_capture_input(L, e, 0), 1);
    }

    ductile_engine *eng = build(b, net);
    CHECK(eng != NULL);
    const float x[2] = {-1.5f, 2.0f};
    float y[2] = {0};
    if (eng) {
        run_if(eng, true, x, y);
        CHECK(y[0] == -1.5f && y[1] == 4.0f);
        run_if(eng, false, x, y);
        CHECK(y[0] == 0.0f && y[1] == -2.0f);
        /* Saved and loaded: the subgraphs come back from the SUBGRAPHS section. */
        void *bytes = NULL;
        size_t size = 0;
        CHECK_EQ_INT(ductile_engine_serialize(eng, &bytes, &size), DUCTILE_OK);
        ductile_engine *loaded = NULL;
        CHECK_EQ_INT(ductile_engine_load_memory(bytes, size, &loaded), DUCTILE_OK);
        if (loaded) {
            run_if(loaded, true, x, y);
            CHECK(y[0] == -1.5f && y[1] == 4.0f);
            run_if(loaded, false, x, y);
            CHECK(y[0] == 0.0f && y[1] == -2.0f);
        }
        ductile_engine_free(loaded);
        ductile_free(bytes);
    }
    ductile_engine_free(eng);

    /* A layer that does not list what its subgraph reads (an edited network, or an engine's
     * bytes) is refused by name. */
    ductile_layer *W = net->layers[net->n_layers - 1];
    W->n_in = 2; /* drops x */
    CHECK(build(b, net) == NULL);
    CHECK_EQ_STR(ductile_last_error(),
                 "node 'if0' (If, opset 13): then_branch reads 'x' from the enclosing graph, but the node does not list it among its inputs");
    W->n_in = 1;
    CHECK(build(b, net) == NULL);
    CHECK_EQ_STR(ductile_last_error(),
                 "node 'if0' (If, opset 13): the node has 1 inputs, fewer than the 2 tensors of the enclosing graph its subgraphs read");
    W->n_in = 3;
    ductile_network_free(net);
    ductile_builder_free(b);
}

static uint32_t ld32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t ld64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static ductile_status read_copy(const unsigned char *src, size_t n)
{
    void *buf = NULL;
    if (posix_memalign(&buf, 64, n ? n : 1)) return DUCTILE_ERR_OUT_OF_MEMORY;
    memcpy(buf, src, n);
    ductile_network *net = NULL;
    ductile_profile *p = NULL;
    int np = 0;
    ductile_status s = dt_engine_read_ex(buf, n, DT_ENGINE_READ_NO_CHECKSUM, &net, &p, &np);
    if (s == DUCTILE_OK) {
        ductile_network_free(net);
        for (int i = 0; i < np; i++) dt_profile_clear(&p[i]);
        dt_free(p);
    }
    free(buf);
    return s;
}

static void test_subgraphs_section_refuses_corruption(const pbw *m)
{
    ductile_network *net = NULL;
    ductile_builder *b = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_create(b, &net), DUCTILE_OK);
    CHECK_EQ_INT(ductile_onnx_parse_memory(net, m->p, m->n), DUCTILE_OK);
    ductile_engine *eng = build(b, net);
    void *bytes = NULL;
    size_t n = 0;
    CHECK(eng && ductile_engine_serialize(eng, &bytes, &n) == DUCTILE_OK);
    if (!bytes) goto done;
    unsigned char *f = bytes, *g = malloc(n);
    uint32_t hsize = ld32(f + 12), nsec = ld32(f + 16);
    size_t sub = 0, entry = 0;
    for (uint32_t i = 0; i < nsec; i++)
        if (ld32(f + hsize + 24 * i) == DT_SECTION_SUBGRAPHS) {
            entry = hsize + 24 * i;
            sub = (size_t)ld64(f + entry + 8);
        }
    CHECK(sub != 0 && sub % 64 == 0);
    CHECK_EQ_INT(ld32(f + sub), DT_ENGINE_SUBGRAPHS_VERSION);
    CHECK_EQ_INT(ld32(f + sub + 4), 2); /* then and else */
    CHECK_EQ_INT(read_copy(f, n), DUCTILE_OK);

    char want[300];
    /* An entry's offset off its 64-byte grid. */
    memcpy(g, f, n);
    uint64_t off = ld64(g + sub + 8 + 8) + 8;
    memcpy(g + sub + 16, &off, 8);
    CHECK_EQ_INT(read_copy(g, n), DUCTILE_ERR_FORMAT);
    snprintf(want, sizeof want,
             "engine section SUBGRAPHS at byte offset %zu: subgraph 0 at offset %llu (+%llu bytes) is not a 64-byte-aligned "
             "range inside the section (%llu bytes)",
             sub + 16, (unsigned long long)off, (unsigned long long)ld64(f + sub + 24),
             (unsigned long long)ld64(f + entry + 16));
    CHECK_EQ_STR(dt_last_error(), want);

    /* The section's id unknown to this reader: the GRAPH attributes have nowhere to point. */
    memcpy(g, f, n);
    g[entry] = 9;
    CHECK_EQ_INT(read_copy(g, n), DUCTILE_ERR_FORMAT);
    CHECK(strstr(dt_last_error(), "GRAPH attribute: subgraph 0, but the engine has no SUBGRAPHS section") != NULL);

    /* A subgraph index past the count. */
    memcpy(g, f, n);
    uint32_t one = 1;
    memcpy(g + sub + 4, &one, 4);
    CHECK_EQ_INT(read_copy(g, n), DUCTILE_ERR_FORMAT);
    CHECK(strstr(dt_last_error(), "GRAPH attribute: subgraph 1 out of range (1 subgraphs)") != NULL);

    /* Random mutations (checksum off): refused or read, never a crash. */
    uint64_t rng = 0x243F6A8885A308D3ull;
    int accepted = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(g, f, n);
        for (int j = 0; j < 4; j++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t pos = (rng >> 60) < 12 && n > sub ? sub + (size_t)((rng >> 20) % (n - sub)) : (size_t)((rng >> 20) % n);
            g[pos] = (unsigned char)(rng >> 52);
        }
        ductile_status s = read_copy(g, n);
        CHECK(s == DUCTILE_OK || s == DUCTILE_ERR_FORMAT);
        accepted += s == DUCTILE_OK;
    }
    fprintf(stderr, "subgraph mutations: %d of 3000 parsed (checksum off)\n", accepted);
    free(g);
done:
    ductile_free(bytes);
    ductile_engine_free(eng);
    ductile_network_free(net);
    ductile_builder_free(b);
}

/* Loop(M, "", s0) and a reverse Scan over xs: eager_models.h's em_loop_scan_model. */

static void test_loop_state_grows_and_scan_runs_in_reverse(void)
{
    pbw m = em_loop_scan_model();
    ductile_network *net = NULL;
    ductile_builder *b = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_create(b, &net), DUCTILE_OK);
    CHECK_EQ_INT(ductile_onnx_parse_memory(net, m.p, m.n), DUCTILE_OK);
    ductile_engine *e = build(b, net);
    CHECK(e != NULL);
    ductile_context *c = NULL;
    if (e) CHECK_EQ_INT(ductile_context_create(e, &c), DUCTILE_OK);
    const float s0 = 2.0f, x = 1.5f, xs[3] = {1.0f, 10.0f, 100.0f};
    for (int64_t M = 0; c && M <= 4; M += 2) {
        CHECK_EQ_INT(ductile_context_set_tensor_address(c, "M", &M), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_tensor_address(c, "s0", (void *)&s0), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_tensor_address(c, "x", (void *)&x), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_tensor_address(c, "xs", (void *)xs), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_execute(c), DUCTILE_OK);
        ductile_dims d;
        void *p = NULL;
        CHECK_EQ_INT(ductile_context_get_tensor_shape(c, "s", &d), DUCTILE_OK);
        CHECK(d.nb_dims == 1 && d.d[0] == M + 1);
        CHECK_EQ_INT(ductile_context_get_tensor_address(c, "s", &p), DUCTILE_OK);
        for (int64_t i = 0; p && i <= M; i++) CHECK(((float *)p)[i] == (i ? x : s0));
        CHECK_EQ_INT(ductile_context_get_tensor_shape(c, "totals", &d), DUCTILE_OK);
        CHECK(d.nb_dims == 1 && d.d[0] == M);
        CHECK_EQ_INT(ductile_context_get_tensor_address(c, "totals", &p), DUCTILE_OK);
        for (int64_t i = 0; p && i < M; i++) CHECK(((float *)p)[i] == s0 + x * (float)(i + 1));
        /* Reverse: r = x + 100, then + 10, then + 1; runs[t] is the sum after step t. */
        CHECK_EQ_INT(ductile_context_get_tensor_address(c, "runs", &p), DUCTILE_OK);
        CHECK(p && ((float *)p)[0] == 101.5f && ((float *)p)[1] == 111.5f && ((float *)p)[2] == 112.5f);
        CHECK_EQ_INT(ductile_context_get_tensor_address(c, "r", &p), DUCTILE_OK);
        CHECK(p && *(float *)p == 112.5f);
    }
    ductile_context_free(c);
    ductile_engine_free(e);
    ductile_network_free(net);
    ductile_builder_free(b);
    free(m.p);
}

/* One engine, a context per thread: the nested plans are the engine's and read-only, every
 * run's subgraph buffers its own. */
typedef struct loop_job {
    const ductile_engine *e;
    int64_t m;
    int bad;
} loop_job;

static void *loop_thread(void *arg)
{
    loop_job *j = arg;
    ductile_context *c = NULL;
    if (ductile_context_create(j->e, &c) != DUCTILE_OK) {
        j->bad++;
        return NULL;
    }
    ductile_context_set_threads(c, 1);
    const float s0 = 2.0f, x = 1.5f, xs[3] = {1.0f, 10.0f, 100.0f};
    for (int it = 0; it < 200; it++) {
        int64_t m = j->m + it % 3;
        void *p = NULL;
        ductile_dims d;
        if (ductile_context_set_tensor_address(c, "M", &m) || ductile_context_set_tensor_address(c, "s0", (void *)&s0) ||
            ductile_context_set_tensor_address(c, "x", (void *)&x) || ductile_context_set_tensor_address(c, "xs", (void *)xs) ||
            ductile_context_execute(c) || ductile_context_get_tensor_shape(c, "totals", &d) ||
            ductile_context_get_tensor_address(c, "totals", &p) || d.d[0] != m ||
            (m && ((float *)p)[m - 1] != s0 + x * (float)m)) {
            j->bad++;
            break;
        }
    }
    ductile_context_free(c);
    return NULL;
}

static void test_contexts_on_threads_share_one_engine(void)
{
    pbw m = em_loop_scan_model();
    ductile_network *net = NULL;
    ductile_builder *b = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_create(b, &net), DUCTILE_OK);
    CHECK_EQ_INT(ductile_onnx_parse_memory(net, m.p, m.n), DUCTILE_OK);
    ductile_engine *e = build(b, net);
    CHECK(e != NULL);
    pthread_t t[4];
    loop_job jobs[4];
    for (int i = 0; e && i < 4; i++) {
        jobs[i] = (loop_job){e, i * 3, 0};
        CHECK_EQ_INT(pthread_create(&t[i], NULL, loop_thread, &jobs[i]), 0);
    }
    for (int i = 0; e && i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK_EQ_INT(jobs[i].bad, 0);
    }
    ductile_engine_free(e);
    ductile_network_free(net);
    ductile_builder_free(b);
    free(m.p);
}

/* FlexAttention's modifiers are subgraphs too: the symbolic pass infers them on the scores'
 * shape [b, hq, l, s] (so the dims inside are the model's symbols), and Y is [b, hq, l, ev]. */
static void test_flex_modifier_dims_are_symbolic(void)
{
    pbw mod = {0}, g = {0};
    w_msg(&mod, 1, node("neg", "Neg", NULL, S("x"), S("n"), NULL, 0));
    w_msg(&mod, 1, node("add", "Add", NULL, S("n", "x"), S("y"), NULL, 0));
    w_str(&mod, 2, "score_mod");
    w_msg(&mod, 11, value_info("x", DUCTILE_FLOAT32, -1, NULL, NULL));
    w_msg(&mod, 12, value_info("y", DUCTILE_FLOAT32, -1, NULL, NULL));
    pbw attr = em_attr_graph("score_mod", mod);
    w_msg(&g, 1, node("flex", "FlexAttention", "ai.onnx.preview", S("Q", "K", "V"), S("Y"), &attr, 1));
    w_str(&g, 2, "g");
    int64_t d[4] = {-1, -1, -1, -1};
    w_msg(&g, 11, value_info("Q", DUCTILE_FLOAT32, 4, d, S("b", "hq", "l", "e")));
    w_msg(&g, 11, value_info("K", DUCTILE_FLOAT32, 4, d, S("b", "hkv", "s", "e")));
    w_msg(&g, 11, value_info("V", DUCTILE_FLOAT32, 4, d, S("b", "hkv", "s", "ev")));
    w_msg(&g, 12, value_info("Y", DUCTILE_FLOAT32, -1, NULL, NULL));
    pbw m = model(g, "ai.onnx.preview", 1);
    ductile_builder *b = NULL;
    ductile_network *net = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_create(b, &net), DUCTILE_OK);
    CHECK_EQ_INT(ductile_onnx_parse_memory(net, m.p, m.n), DUCTILE_OK);
    const char *want_y[4] = {"b", "hq", "l", "ev"}, *want_n[4] = {"b", "hq", "l", "s"};
    const ductile_tensor *y = ductile_network_get_output(net, 0);
    const ductile_network *sub = dt_ctrl_graph(net->layers[0], "score_mod");
    const ductile_tensor *n = sub ? dt_network_find(sub, "n") : NULL;
    CHECK(y && n);
    for (int i = 0; y && n && i < 4; i++) {
        CHECK_EQ_STR(ductile_tensor_dim_name(y, i), want_y[i]);
        CHECK_EQ_STR(ductile_tensor_dim_name(n, i), want_n[i]);
    }
    ductile_network_free(net);
    ductile_builder_free(b);
    free(m.p);
}

int main(void)
{
    test_flex_modifier_dims_are_symbolic();
    pbw m = em_if_model();
    test_outer_reads_become_implicit_inputs(&m);
    test_subgraphs_section_refuses_corruption(&m);
    free(m.p);
    test_loop_state_grows_and_scan_runs_in_reverse();
    test_contexts_on_threads_share_one_engine();
    TEST_MAIN_END();
}
