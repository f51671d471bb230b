/* The activation memory planner (runtime/memplan.c):
 *   1. random lifetimes and sizes: no two blocks live at a common step share a byte, every
 *      block lies inside the arena, and when every neighbour is listed the arena is the one
 *      the naive greedy-by-size placement gives (the planner before lifetimes were listed
 *      once); with the default or a small budget the plan stays valid;
 *   2. a dense network (every block live at the last step): the work stays within the budget;
 *   3. an arena past SIZE_MAX is an error naming the block, not a wrap-around;
 *   4. a 100k-layer Relu/Add chain built through the API: planned at two shapes, each arena is
 *      exactly the three blocks live at an Add, within the budget, and the chain computes
 *      the right values (a block shared while live would zero them). */
#include "ductile.h"
#include "runtime/engine_impl.h"
#include "runtime/memplan.h"
#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* The placement as it was before: every block compared with every placed block. */
static size_t naive_arena(int n, const int *first, const int *last, const size_t *size)
{
    int *order = malloc(sizeof *order * (size_t)n);
    size_t *off = malloc(sizeof *off * (size_t)n), total = 0;
    char *done = calloc((size_t)n, 1);
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++) /* insertion sort: size descending, then index */
        for (int j = i; j > 0 && (size[order[j]] > size[order[j - 1]] ||
                                  (size[order[j]] == size[order[j - 1]] && order[j] < order[j - 1])); j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int i = 0; i < n; i++) {
        int b = order[i];
        size_t o = 0;
        for (bool moved = true; moved;) { /* lowest offset clear of every placed neighbour */
            moved = false;
            for (int a = 0; a < n; a++)
                if (done[a] && first[a] <= last[b] && first[b] <= last[a] && off[a] < o + size[b] && o < off[a] + size[a] &&
                    size[a] && size[b]) {
                    o = off[a] + size[a];
                    moved = true;
                }
        }
        off[b] = o;
        done[b] = 1;
        if (o + size[b] > total) total = o + size[b];
    }
    free(order);
    free(off);
    free(done);
    return total;
}

/* Checks a plan: inside the arena, no overlap between blocks live at a common step. */
static bool plan_valid(int n, const int *first, const int *last, const size_t *size, const size_t *off, size_t arena)
{
    for (int b = 0; b < n; b++)
        if (off[b] + size[b] > arena || off[b] + size[b] < off[b]) return false;
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++)
            if (first[a] <= last[b] && first[b] <= last[a] && size[a] && size[b] && off[a] < off[b] + size[b] &&
                off[b] < off[a] + size[a])
                return false;
    return true;
}

/* Bytes live at the busiest step: no plan can do with less. */
static size_t peak_live(int n, int steps, const int *first, const int *last, const size_t *size)
{
    size_t best = 0;
    for (int t = 0; t < steps; t++) {
        size_t live = 0;
        for (int b = 0; b < n; b++)
            if (first[b] <= t && t <= last[b]) live += size[b];
        if (live > best) best = live;
    }
    return best;
}

static void test_random_lifetimes(void)
{
    for (int round = 0; round < 60; round++) {
        int n = 1 + (int)(rnd() % 400), steps = 1 + (int)(rnd() % (size_t)(n + 5));
        int *first = malloc(sizeof *first * (size_t)n), *last = malloc(sizeof *last * (size_t)n);
        size_t *size = malloc(sizeof *size * (size_t)n), *off = malloc(sizeof *off * (size_t)n);
        int max_life = 1 + (int)(rnd() % (size_t)steps);
        for (int b = 0; b < n; b++) {
            first[b] = (int)(rnd() % (size_t)steps);
            int len = (int)(rnd() % (size_t)max_life);
            last[b] = first[b] + len >= steps ? steps - 1 : first[b] + len;
            /* few distinct sizes, so ties are common; some empty blocks */
            size[b] = rnd() % 10 == 0 ? 0 : 64 * (1 + rnd() % (round % 2 ? 4 : 1000));
        }
        /* A budget that lists every neighbour: the plan is the naive one. */
        dt_memlife *m = NULL;
        CHECK_EQ_INT(dt_memlife_make(n, first, last, steps, SIZE_MAX, &m), DUCTILE_OK);
        size_t arena = 0;
        dt_memplan_work w;
        CHECK_EQ_INT(dt_memlife_place(m, size, off, &arena, &w), DUCTILE_OK);
        CHECK(plan_valid(n, first, last, size, off, arena));
        CHECK_EQ_INT(arena, naive_arena(n, first, last, size));
        CHECK(arena >= peak_live(n, steps, first, last, size));
        CHECK_EQ_INT(w.stacked, 0);
        dt_memlife_free(m);
        /* The default budget: the same plan when it lists everything, valid when it does not. */
        size_t naive = arena;
        CHECK_EQ_INT(dt_memlife_make(n, first, last, steps, 0, &m), DUCTILE_OK);
        CHECK_EQ_INT(dt_memlife_place(m, size, off, &arena, &w), DUCTILE_OK);
        CHECK(plan_valid(n, first, last, size, off, arena));
        CHECK(w.neighbours <= DT_MEMPLAN_BUDGET(n));
        if (!w.stacked) CHECK_EQ_INT(arena, naive);
        dt_memlife_free(m);
        /* A budget of n entries: the busiest blocks are stacked; still valid. */
        CHECK_EQ_INT(dt_memlife_make(n, first, last, steps, (size_t)n, &m), DUCTILE_OK);
        CHECK_EQ_INT(dt_memlife_place(m, size, off, &arena, &w), DUCTILE_OK);
        CHECK(plan_valid(n, first, last, size, off, arena));
        CHECK(arena >= peak_live(n, steps, first, last, size));
        CHECK(w.neighbours <= (size_t)n);
        dt_memlife_free(m);
        free(first);
        free(last);
        free(size);
        free(off);
    }
}

static void test_dense_lifetimes_stay_in_budget(void)
{
    /* Block b is written at step b and read at the last step (a Concat of every layer's
     * output): n^2/2 neighbour pairs, far over the default budget. */
    enum { N = 5000 };
    int *first = malloc(sizeof *first * N), *last = malloc(sizeof *last * N);
    size_t *size = malloc(sizeof *size * N), *off = malloc(sizeof *off * N);
    size_t sum = 0;
    for (int b = 0; b < N; b++) {
        first[b] = b;
        last[b] = N;
        size[b] = 64 * (1 + rnd() % 8);
        sum += size[b];
    }
    dt_memlife *m = NULL;
    CHECK_EQ_INT(dt_memlife_make(N, first, last, N + 1, 0, &m), DUCTILE_OK);
    size_t arena = 0;
    dt_memplan_work w;
    CHECK_EQ_INT(dt_memlife_place(m, size, off, &arena, &w), DUCTILE_OK);
    CHECK(w.neighbours <= DT_MEMPLAN_BUDGET(N));
    CHECK(w.stacked > 0);
    CHECK(plan_valid(N, first, last, size, off, arena));
    CHECK_EQ_INT(arena, sum); /* all live at the end: the peak is the sum, and it is reached */
    dt_memlife_free(m);
    free(first);
    free(last);
    free(size);
    free(off);
}

static void test_arena_overflow_is_an_error(void)
{
    int first[2] = {0, 0}, last[2] = {1, 1};
    size_t size[2] = {(size_t)1 << 63, ((size_t)1 << 63) + 64}, off[2], arena = 0;
    dt_memlife *m = NULL;
    CHECK_EQ_INT(dt_memlife_make(2, first, last, 2, 0, &m), DUCTILE_OK);
    CHECK_EQ_INT(dt_memlife_place(m, size, off, &arena, NULL), DUCTILE_ERR_SHAPE);
    CHECK_EQ_STR(ductile_last_error(),
                 "the activation memory passes 18446744073709551615 bytes: block 0 (9223372036854775808 bytes) would start at byte 9223372036854775872");
    dt_memlife_free(m);
    int bad_first[1] = {2}, bad_last[1] = {1};
    CHECK_EQ_INT(dt_memlife_make(1, bad_first, bad_last, 3, 0, &m), DUCTILE_ERR_INTERNAL);
    CHECK_EQ_STR(ductile_last_error(), "memory plan: block 0 lives over steps 2..1, outside 0..2");
}

/* x -> Relu -> y; Add(y, x) -> next x; CHAIN times: 2 * CHAIN layers. */
enum { CHAIN = 50000 };

static size_t chain_arena(const ductile_engine *e, int64_t batch, dt_memplan_work *w)
{
    dt_shape_state st;
    size_t arena = 0;
    CHECK_EQ_INT(dt_shape_state_init(&st, e), DUCTILE_OK);
    dt_view *v = &st.views[e->net->inputs[0]->index];
    v->rank = 2;
    v->dims[0] = batch;
    v->dims[1] = 16;
    dt_exec ex = {.pool = NULL};
    CHECK_EQ_INT(dt_shape_pass(e, &st, &ex), DUCTILE_OK);
    size_t *offsets = calloc((size_t)e->net->n_tensors, sizeof *offsets);
    CHECK_EQ_INT(dt_memplan(e, st.views, offsets, &arena), DUCTILE_OK);
    /* The same placement through the block interface, for its work counts. */
    size_t *sizes = malloc(sizeof *sizes * (size_t)e->plan.n_mem), *offs = malloc(sizeof *offs * (size_t)e->plan.n_mem);
    for (int b = 0; b < e->plan.n_mem; b++) {
        size_t bytes = 0;
        CHECK(dt_view_bytes(&st.views[e->plan.mem_tensor[b]], &bytes));
        sizes[b] = (bytes + 63) & ~(size_t)63;
    }
    size_t arena2 = 0;
    CHECK_EQ_INT(dt_memlife_place(e->plan.mem, sizes, offs, &arena2, w), DUCTILE_OK);
    CHECK_EQ_INT(arena2, arena);
    free(sizes);
    free(offs);
    free(offsets);
    dt_shape_state_free(&st, e);
    return arena;
}

static void test_long_chain(void)
{
    ductile_builder *b = NULL;
    ductile_network *net = NULL;
    CHECK_EQ_INT(ductile_builder_create(&b), DUCTILE_OK);
    CHECK_EQ_INT(ductile_network_create(b, &net), DUCTILE_OK);
    ductile_dims d = {2, {-1, 16}};
    const char *names[] = {"batch", NULL};
    ductile_tensor *x = NULL;
    CHECK_EQ_INT(ductile_network_add_input(net, "x", DUCTILE_FLOAT32, &d, names, &x), DUCTILE_OK);
    for (int i = 0; i < CHAIN && x; i++) {
        ductile_layer *L = NULL;
        if (ductile_network_add_activation(net, x, DUCTILE_ACTIVATION_RELU, &L)) break;
        ductile_tensor *y = ductile_layer_get_output(L, 0);
        if (ductile_network_add_elementwise(net, y, x, DUCTILE_ELEMENTWISE_SUM, &L)) break;
        x = ductile_layer_get_output(L, 0);
    }
    CHECK_EQ_INT(ductile_network_num_layers(net), 2 * CHAIN);
    CHECK_EQ_INT(ductile_network_mark_output(net, x), DUCTILE_OK);
    ductile_profile *p = NULL;
    ductile_config *c = NULL;
    ductile_engine *e = NULL;
    ductile_dims mn = {2, {1, 16}}, opt = {2, {4, 16}}, mx = {2, {8, 16}};
    CHECK_EQ_INT(ductile_profile_create(b, &p), DUCTILE_OK);
    CHECK_EQ_INT(ductile_profile_set_shape(p, "x", &mn, &opt, &mx), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_create(b, &c), DUCTILE_OK);
    CHECK_EQ_INT(ductile_config_add_profile(c, p, NULL), DUCTILE_OK);
    CHECK_EQ_INT(ductile_builder_build(b, net, c, &e), DUCTILE_OK);
    if (e) {
        /* Lifetimes planned at load: every layer output but the network's is a block. */
        CHECK_EQ_INT(e->plan.n_mem, 2 * CHAIN - 1);
        for (int k = 0; k < 2; k++) {
            int64_t batch = k ? 8 : 2;
            dt_memplan_work w;
            size_t arena = chain_arena(e, batch, &w);
            /* At each Add: x, Relu(x) and the sum, batch x 16 floats each (64-byte aligned). */
            size_t block = ((size_t)batch * 16 * 4 + 63) & ~(size_t)63;
            CHECK_EQ_INT(arena, 3 * block);
            CHECK(w.neighbours <= DT_MEMPLAN_BUDGET(e->plan.n_mem));
            CHECK_EQ_INT(w.stacked, 0);
        }
        /* Inputs <= 0 go through unchanged (Relu gives 0); a block shared while live would not. */
        ductile_context *ctx = NULL;
        CHECK_EQ_INT(ductile_context_create(e, &ctx), DUCTILE_OK);
        ductile_dims s = {2, {3, 16}};
        float in[48], out[48];
        for (int i = 0; i < 48; i++) in[i] = -(float)i;
        const char *oname = ductile_engine_io_tensor_name(e, 1);
        CHECK_EQ_INT(ductile_context_set_input_shape(ctx, "x", &s), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, "x", in), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_set_tensor_address(ctx, oname, out), DUCTILE_OK);
        CHECK_EQ_INT(ductile_context_execute(ctx), DUCTILE_OK);
        int bad = 0;
        for (int i = 0; i < 48; i++) bad += out[i] != in[i];
        CHECK_EQ_INT(bad, 0);
        ductile_context_free(ctx);
    }
    ductile_engine_free(e);
    ductile_config_free(c);
    ductile_profile_free(p);
    ductile_network_free(net);
    ductile_builder_free(b);
}

int main(void)
{
    test_random_lifetimes();
    test_dense_lifetimes_stay_in_budget();
    test_arena_overflow_is_an_error();
    test_long_chain();
    TEST_MAIN_END();
}
