/* The harness the C op tests share: build a one-layer network (a layer whose inputs mirror the
 * given views, attributes set one at a time), run check + infer + the CPU kernel inline and on
 * a pool, compare an output with expected values, and free every buffer on every path (the
 * harness owns them all: ophelp_end frees them). The reference convolution and the random data
 * of the kernel tests are refconv.h's.
 *
 * A test defines nothing of this itself: it includes this header, calls ophelp_begin() first and
 * ends main with ophelp_end() before TEST_MAIN_END(). */
#ifndef DT_OPHELP_H
#define DT_OPHELP_H

#include "testutil.h"
#include "refconv.h"
#include "backend/cpu/elementwise_impl.h"
#include "backend/cpu/families.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "graph/network.h"
#include "ops/families.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static ductile_network *net;
static dt_pool *pool;
static int ophelp_names;
static void **ophelp_allocs;
static size_t ophelp_n_allocs, ophelp_cap_allocs;

/* ---- buffers: the harness frees every one in ophelp_end ---- */

/* Takes ownership of p (may be NULL) and returns it. */
static inline void *keep(void *p)
{
    if (!p) return NULL;
    if (ophelp_n_allocs == ophelp_cap_allocs) {
        size_t cap = ophelp_cap_allocs ? 2 * ophelp_cap_allocs : 256;
        void **a = realloc(ophelp_allocs, cap * sizeof *a);
        if (!a) {
            free(p);
            return NULL;
        }
        ophelp_allocs = a;
        ophelp_cap_allocs = cap;
    }
    return ophelp_allocs[ophelp_n_allocs++] = p;
}

/* The network and a 2-thread pool; nonzero when either cannot be made. */
static inline int ophelp_begin(void)
{
    return dt_network_new(&net) != DUCTILE_OK || dt_pool_create(2, &pool) != DUCTILE_OK;
}

static inline void ophelp_end(void)
{
    dt_pool_free(pool);
    dt_network_delete(net);
    for (size_t i = 0; i < ophelp_n_allocs; i++) free(ophelp_allocs[i]);
    free(ophelp_allocs);
    pool = NULL, net = NULL, ophelp_allocs = NULL, ophelp_n_allocs = ophelp_cap_allocs = 0;
}

/* ---- views ---- */

static const dt_view omitted = {.rank = -1};

/* A view of `data` (not copied); dims may be NULL for rank 0. */
static inline dt_view view_of(int dtype, int rank, const int64_t *dims, const void *data)
{
    dt_view v = {.dtype = dtype, .rank = rank, .data = (void *)data};
    for (int i = 0; i < rank; i++) v.dims[i] = dims[i];
    return v;
}

static inline dt_view fview(int rank, const int64_t *dims, const float *data)
{
    return view_of(DUCTILE_FLOAT32, rank, dims, data);
}

/* The generated data of the expected arrays embedded in the op tests (the generator scripts use
 * the same formula): x[i] = ((i * 7919 + seed * 31) % 23 - 11) / div. */
static inline float *gen(int64_t n, int seed, float div)
{
    float *x = keep(malloc((size_t)(n ? n : 1) * sizeof *x));
    for (int64_t i = 0; i < n; i++) x[i] = (float)((i * 7919 + seed * 31) % 23 - 11) / div;
    return x;
}

/* ---- one layer ---- */

static inline ductile_tensor *tensor(void)
{
    char name[32];
    snprintf(name, sizeof name, "t%d", ophelp_names++);
    return dt_network_add_tensor(net, name);
}

/* A layer of n_in inputs that mirror the views (rank -1: omitted; in NULL: all given), n_out
 * outputs and room for 8 attributes. */
static inline ductile_layer *layer(const char *op, int opset, int n_in, const dt_view *in, int n_out)
{
    ductile_layer *L = dt_network_add_layer(net, op, NULL, n_in, n_out, 8);
    L->opset = opset;
    L->n_attr = 0;
    for (int i = 0; i < n_in; i++) L->in[i] = !in || in[i].rank >= 0 ? tensor() : NULL;
    for (int i = 0; i < n_out; i++) L->out[i] = tensor();
    return L;
}

static inline dt_attr *attr(ductile_layer *L, const char *name, int type)
{
    dt_attr *a = &L->attrs[L->n_attr++];
    memset(a, 0, sizeof *a);
    a->name = name;
    a->type = type;
    return a;
}

static inline void a_int(ductile_layer *L, const char *name, int64_t v) { attr(L, name, DT_ATTR_INT)->i = v; }
static inline void a_float(ductile_layer *L, const char *name, float v) { attr(L, name, DT_ATTR_FLOAT)->f = v; }

static inline void a_str(ductile_layer *L, const char *name, const char *v)
{
    dt_attr *a = attr(L, name, DT_ATTR_STRING);
    a->s = v;
    a->s_len = strlen(v);
}

/* The values are copied into the network's arena. */
static inline void a_ints(ductile_layer *L, const char *name, const int64_t *v, int64_t n)
{
    dt_attr *a = attr(L, name, DT_ATTR_INTS);
    a->ints = dt_arena_memdup(&net->arena, v, sizeof *v * (size_t)(n ? n : 1));
    a->n = n;
}

static inline void a_floats(ductile_layer *L, const char *name, const float *v, int64_t n)
{
    dt_attr *a = attr(L, name, DT_ATTR_FLOATS);
    a->floats = dt_arena_memdup(&net->arena, v, sizeof *v * (size_t)(n ? n : 1));
    a->n = n;
}

/* ---- running it ---- */

static const dt_cpu_kernel *const ophelp_kernel_families[] = {
    dt_cpu_elementwise, dt_cpu_shape, dt_cpu_linalg, dt_cpu_nn,
    dt_cpu_fused,       dt_cpu_quant, dt_cpu_seq,    dt_cpu_vision,
};

static inline const dt_opdef *opdef(const char *op) { return dt_opdef_find(op); }

static inline dt_cpu_run_fn kernel(const char *op)
{
    for (size_t f = 0; f < sizeof ophelp_kernel_families / sizeof ophelp_kernel_families[0]; f++)
        for (const dt_cpu_kernel *k = ophelp_kernel_families[f]; k->op_type; k++)
            if (strcmp(k->op_type, op) == 0) return k->kernel ? dt_cpu_run_once : k->run;
    return NULL;
}

/* check + infer: on success the outputs have dtypes and shapes but no buffers. */
static inline ductile_status build(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    const dt_opdef *d = opdef(L->op_type);
    if (!d) return dt_fail(DUCTILE_ERR_UNSUPPORTED, "no definition of %s", L->op_type);
    for (int i = 0; i < L->n_out; i++) memset(&out[i], 0, sizeof out[i]);
    if (d->check) DT_TRY(d->check(L));
    return d->infer(L, in, out);
}

/* The kernel on outputs that build gave shapes: buffers of count + 1 elements of 8 bytes (room
 * for any dtype), zeroed, kept by the harness; inline or on the pool. */
static inline ductile_status run_built(const ductile_layer *L, const dt_view *in, dt_view *out,
                                bool threaded)
{
    dt_cpu_run_fn k = kernel(L->op_type);
    if (!k) return dt_fail(DUCTILE_ERR_UNSUPPORTED, "no CPU kernel for %s", L->op_type);
    for (int i = 0; i < L->n_out; i++) {
        out[i].data = keep(calloc((size_t)dt_view_count(&out[i]) + 1, 8));
        if (!out[i].data) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "test output %d", i);
    }
    dt_exec ex = {.pool = threaded ? pool : NULL};
    return k(L, in, out, &ex);
}

/* What output `o` must hold after build and the kernel. */
typedef struct want {
    int o;
    int dtype;              /* -1: not checked */
    int rank;               /* -1: only `count` is checked, not the dims */
    const int64_t *dims;
    int64_t count;
    /* the values: exactly one set; |got - want| <= atol + rtol * |want| (int64: exactly) */
    const float *f;
    const int64_t *i;
    const double *d;
    double atol, rtol;
    bool inline_only;       /* else run inline and on the pool */
} want;

static inline bool ophelp_same_dims(const ductile_layer *L, const dt_view *v, const want *w)
{
    bool same = w->rank < 0 ? dt_view_count(v) == w->count : v->rank == w->rank;
    for (int i = 0; same && w->rank >= 0 && i < w->rank; i++) same = v->dims[i] == w->dims[i];
    if (!same) {
        char a[160], b[160] = "";
        dt_format_dims(a, sizeof a, v->dims, v->rank, NULL);
        if (w->rank >= 0) dt_format_dims(b, sizeof b, w->dims, w->rank, NULL);
        else snprintf(b, sizeof b, "%lld elements", (long long)w->count);
        fprintf(stderr, "%s (opset %d): output %d shape %s, expected %s\n", L->op_type, L->opset,
                w->o, a, b);
    }
    return same;
}

/* build + kernel + comparison of output w->o, inline and (unless inline_only) on the pool. */
static inline void expect_want(const ductile_layer *L, const dt_view *in, const want *w)
{
    for (int threaded = 0; threaded < (w->inline_only ? 1 : 2); threaded++) {
        dt_view out[8];
        ductile_status st = build(L, in, out);
        if (st == DUCTILE_OK && w->dtype >= 0) {
            CHECK_EQ_INT(out[w->o].dtype, w->dtype);
            if (out[w->o].dtype != w->dtype) {
                fprintf(stderr, "%s (opset %d): output %d has dtype %s, expected %s\n",
                        L->op_type, L->opset, w->o,
                        ductile_dtype_name((ductile_dtype)out[w->o].dtype),
                        ductile_dtype_name((ductile_dtype)w->dtype));
                return;
            }
        }
        if (st == DUCTILE_OK) {
            bool same = ophelp_same_dims(L, &out[w->o], w);
            CHECK(same);
            if (!same) return;
            st = run_built(L, in, out, threaded);
        }
        if (st != DUCTILE_OK) fprintf(stderr, "%s (opset %d): %s\n", L->op_type, L->opset, dt_last_error());
        CHECK_EQ_INT(st, DUCTILE_OK);
        if (st != DUCTILE_OK) return;
        const dt_view *v = &out[w->o];
        int64_t n = dt_view_count(v), bad = -1;
        double got = 0, exp = 0;
        for (int64_t k = 0; k < n && bad < 0; k++) {
            if (w->i) {
                if (dt_ew_get_i64(v, k) != w->i[k]) bad = k;
                got = (double)dt_ew_get_i64(v, k), exp = (double)w->i[k];
                continue;
            }
            got = dt_ew_get_f64(v, k);
            exp = w->f ? (double)w->f[k] : w->d[k];
            if (!(fabs(got - exp) <= w->atol + w->rtol * fabs(exp))) bad = k;
        }
        if (bad >= 0)
            fprintf(stderr, "%s (opset %d, %s): output %d element %lld is %.9g, expected %.9g\n",
                    L->op_type, L->opset, threaded ? "pool" : "inline", w->o, (long long)bad,
                    got, exp);
        CHECK(bad < 0);
    }
}

/* check + infer fail with this status and a message containing `part`. */
static inline void expect_error(const ductile_layer *L, const dt_view *in, ductile_status status,
                         const char *part)
{
    dt_view out[8];
    ductile_status st = build(L, in, out);
    CHECK_EQ_INT(st, status);
    if (st != DUCTILE_OK && !strstr(dt_last_error(), part)) {
        fprintf(stderr, "%s: message \"%s\" lacks \"%s\"\n", L->op_type, dt_last_error(), part);
        CHECK(0);
    }
}

/* The compiled kernel's prepare (run when an engine is loaded, so the build fails naming the
 * node) refuses L with this status and exactly this message. */
static inline void expect_prepare_error(const ductile_layer *L, ductile_status status, const char *msg)
{
    const dt_kernel *k = dt_cpu_kernel_compiled(L->op_type);
    CHECK(k != NULL && k->prepare != NULL);
    if (!k || !k->prepare) return;
    void *params = NULL;
    CHECK_EQ_INT(k->prepare(L, &params), status);
    CHECK_EQ_STR(dt_last_error(), msg);
    CHECK(params == NULL);
}

#define DIMS(...) ((const int64_t[]){__VA_ARGS__})
#define NDIMS(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))

#endif
