/* Inverted-residual fusion: Conv(1x1) -> act -> Conv(depthwise) -> act [-> Conv(1x1)
 * [+ residual]] built by hand at odd sizes, fused by the pass into one FusedInvertedResidual
 * (CPU backend) and run by its kernel, against the same network fused without the backend's
 * kernel (three FusedConvs run one after another): the outputs must be equal bit for bit, on
 * the strip path (forced at these small sizes, with strips of 4 rows and of more) and on the
 * small-plane path, serial and on a pool of 2 (batches of 1 to 4: images side by side, in
 * turn on each thread, and left over). Also: the pass's near misses and the layer's shape errors. */
#include "testutil.h"
#include "refconv.h"
#include "netbuild.h"

#include "backend/cpu/conv.h"
#include "backend/cpu/families.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/kernels.h"
#include "builder/optimize.h"
#include "core/alloc.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "ops/families.h"
#include "ops/fused.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const dt_opdef *def_of(const ductile_layer *L)
{
    if (strcmp(L->domain, "ductile")) return dt_opdef_find(L->op_type);
    for (const dt_opdef *d = dt_ops_fused; d->op_type; d++)
        if (!strcmp(d->op_type, L->op_type)) return d;
    return NULL;
}

typedef struct irb_case {
    int64_t n, c, h, w, k, s, d;
    bool project, residual;
    const char *e_act, *d_act;   /* "", "Relu", "HardSwish" */
    bool no_expand;              /* depthwise -> project: X is the depthwise's input */
} irb_case;

/* The network's data: weights and input, the same for both builds. */
typedef struct irb_data {
    float *x, *we, *be, *wd, *bd, *wp, *bp;
    int64_t ce, oh, ow;
} irb_data;

static ductile_tensor *x_t, *y_t;

static ductile_layer *conv(ductile_tensor *x, const float *w, const int64_t wd[4], const float *b, int64_t group,
                           int64_t s, int64_t d, int64_t pad, const int64_t out[4])
{
    ductile_layer *L = layer("Conv", 3, 5);
    L->in[0] = x;
    L->in[1] = tensor(4, wd, w);
    L->in[2] = tensor(1, wd, b);
    int64_t k[2] = {wd[2], wd[3]}, st[2] = {s, s}, dl[2] = {d, d}, p[4] = {pad, pad, pad, pad};
    set_ints(L, "kernel_shape", k, 2);
    set_ints(L, "strides", st, 2);
    set_ints(L, "dilations", dl, 2);
    set_ints(L, "pads", p, 4);
    attr(L, "group", DT_ATTR_INT)->i = group;
    L->out[0] = tensor(4, out, NULL);
    return L;
}

/* act (may be "") on t: the tensor after it. */
static ductile_tensor *act(ductile_tensor *t, const char *name)
{
    if (!*name) return t;
    ductile_layer *A = layer(name, 1, 0);
    A->in[0] = t;
    A->out[0] = tensor(t->rank, t->dims, NULL);
    return A->out[0];
}

static void build(const irb_case *c, const irb_data *d)
{
    new_net();
    int64_t xd[4] = {c->n, c->c, c->h, c->w}, ed[4] = {c->n, d->ce, c->h, c->w}, dd[4] = {c->n, d->ce, d->oh, d->ow};
    x_t = tensor(4, xd, NULL);
    dt_network_add_input(net, x_t);
    int64_t wed[4] = {d->ce, c->c, 1, 1}, wdd[4] = {d->ce, 1, c->k, c->k}, wpd[4] = {c->c, d->ce, 1, 1};
    ductile_tensor *t = x_t;
    if (!c->no_expand) t = act(conv(x_t, d->we, wed, d->be, 1, 1, 1, 0, ed)->out[0], c->e_act);
    int64_t pad = (c->k - 1) / 2 * c->d;
    ductile_layer *D = conv(t, d->wd, wdd, d->bd, d->ce, c->s, c->d, pad, dd);
    t = act(D->out[0], c->d_act);
    if (c->project) {
        int64_t pd[4] = {c->n, c->c, d->oh, d->ow};
        ductile_layer *P = conv(t, d->wp, wpd, d->bp, 1, 1, 1, 0, pd);
        t = P->out[0];
        if (c->residual) {
            ductile_layer *A = layer("Add", 2, 0);
            A->in[0] = t;
            A->in[1] = x_t;
            A->out[0] = tensor(4, pd, NULL);
            t = A->out[0];
        }
    }
    y_t = t;
    dt_network_add_output(net, y_t);
}

/* Runs the network's layers in order with their CPU kernels; the output into y (malloc). */
static ductile_status run_net(const float *x, dt_pool *pool, float **y)
{
    float **buf = calloc((size_t)net->n_tensors + 1, sizeof *buf);
    ductile_status s = DUCTILE_OK;
    buf[x_t->index] = (float *)x;
    for (int l = 0; l < net->n_layers && !s; l++) {
        ductile_layer *L = net->layers[l];
        dt_view in[8], out = {0};
        for (int k = 0; k < L->n_in; k++) {
            ductile_tensor *t = L->in[k];
            in[k] = (dt_view){.rank = -1};
            if (!t) continue;
            in[k].dtype = DUCTILE_FLOAT32;
            in[k].rank = t->rank;
            for (int i = 0; i < t->rank; i++) in[k].dims[i] = t->dims[i];
            in[k].data = t->data ? (void *)t->data : buf[t->index];
        }
        const dt_opdef *d = def_of(L);
        s = d ? d->check(L) : DUCTILE_ERR_INTERNAL;
        if (!s) s = d->infer(L, in, &out);
        if (s) break;
        int64_t n = 1;
        for (int i = 0; i < out.rank; i++) n *= out.dims[i];
        float *o = malloc(sizeof(float) * (size_t)n);
        for (int64_t i = 0; i < n; i++) o[i] = NAN;
        out.data = o;
        buf[L->out[0]->index] = o;
        dt_exec ex = {.pool = pool};
        dt_cpu_run_fn fn = dt_cpu_kernel_find(L->op_type);
        s = fn ? fn(L, in, &out, &ex) : DUCTILE_ERR_INTERNAL;
    }
    *y = buf[y_t->index];
    buf[y_t->index] = NULL;
    buf[x_t->index] = NULL;
    for (int i = 0; i <= net->n_tensors; i++) free(buf[i]);
    free(buf);
    return s;
}

/* One case on one path: fused equals unfused bit for bit. bf16: the fused layer marked `bf16`
 * (its 1x1 GEMMs in bfloat16, --bf16 on AVX512-BF16) against the float32 unfused chain,
 * within bfloat16's rounding (rel err <= 2e-2, and not 0: bfloat16 did run), and on a pool bit
 * for bit what it gives on one thread; on_f32: that
 * layer's tactic on its float32 weights (+ DT_CONV_ON_F32, what the builder's timer keeps
 * where bfloat16 is slower), bit for bit again. */
static bool run_case(const irb_case *c, dt_pool *pool, const char *path, bool strips, bool bf16, bool on_f32)
{
    irb_data d = {.ce = c->no_expand ? c->c : c->c * 6};
    int64_t pad = (c->k - 1) / 2 * c->d;
    d.oh = (c->h + 2 * pad - c->d * (c->k - 1) - 1) / c->s + 1;
    d.ow = (c->w + 2 * pad - c->d * (c->k - 1) - 1) / c->s + 1;
    d.x = rand_buf(c->n * c->c * c->h * c->w);
    d.we = rand_buf(d.ce * c->c), d.be = rand_buf(d.ce);
    d.wd = rand_buf(d.ce * c->k * c->k), d.bd = rand_buf(d.ce);
    d.wp = rand_buf(c->c * d.ce), d.bp = rand_buf(c->c);
    float *want = NULL, *got = NULL;
    bool ok = false;
    build(c, &d);
    int layers = net->n_layers;
    if (dt_pass_fuse(net) != DUCTILE_OK || count_op("FusedInvertedResidual") != 0 ||
        run_net(d.x, pool, &want) != DUCTILE_OK) {
        fprintf(stderr, "unfused: %s\n", ductile_last_error());
        goto out;
    }
    build(c, &d);
    if (dt_pass_fuse_for(net, dt_backend_host()) != DUCTILE_OK) goto out;
    if (count_op("FusedInvertedResidual") != 1 || net->n_layers != 1) {
        fprintf(stderr, "the pass left %d layers of %d (%d fused)\n", net->n_layers, layers,
                count_op("FusedInvertedResidual"));
        goto out;
    }
    /* The path the settings ask for is the one that runs. */
    ductile_layer *F = net->layers[0];
    dt_attr mark = {.name = "bf16", .type = DT_ATTR_INT, .i = 1};
    if (bf16 && dt_layer_add_attrs(net, F, &mark, 1) != DUCTILE_OK) goto out;
    /* The unfused chain's depthwise: 16 channels per vector by heuristic on rows of <= 8. */
    dt_conv_geom gd = {.spatial = 2, .c = d.ce, .m = d.ce, .group = d.ce, .k = {c->k, c->k}, .s = {c->s, c->s},
                       .d = {c->d, c->d}, .out = {d.oh, d.ow}};
    bool dw16 = dt_cpu_dw16_pays(&gd);
    static int64_t on32;    /* the attribute keeps the pointer (dt_layer_add_attrs) */
    on32 = DT_CONV_ON_F32 + (dw16 ? DT_CONV_DW16 : DT_CONV_DEPTHWISE);
    dt_attr tac = {.name = "tactic", .type = DT_ATTR_INTS, .n = 1, .ints = &on32};
    if (on_f32 && dt_layer_add_attrs(net, F, &tac, 1) != DUCTILE_OK) goto out;
    bf16 = bf16 && !on_f32;
    void *params = NULL;
    dt_view xv = {DUCTILE_FLOAT32, 4, {c->n, c->c, c->h, c->w}, NULL}, fin[5] = {xv};
    fin[DT_IRB_WD] = (dt_view){DUCTILE_FLOAT32, 4, {d.ce, 1, c->k, c->k}, d.wd};
    const char *taken = NULL;
    if (dt_cpu_fused_irb_kernel.prepare(F, &params) == DUCTILE_OK)
        taken = dt_cpu_fused_irb_path(params, fin, 0, DUCTILE_PROFILE_OPT, pool ? dt_pool_threads(pool) : 1);
    dt_free(params);
    const char *want_path = strips ? (bf16 ? "strips.bf16" : "strips")
                            : bf16 ? (dw16 ? "unfused.dw16.bf16" : "unfused.bf16")
                                   : (dw16 ? "unfused.dw16" : "unfused");
    if (!taken || strcmp(taken, want_path)) {
        fprintf(stderr, "%s: path '%s'\n", path, taken ? taken : "(none)");
        goto out;
    }
    if (run_net(d.x, pool, &got) != DUCTILE_OK) {
        fprintf(stderr, "fused: %s\n", ductile_last_error());
        goto out;
    }
    int64_t n = c->n * (c->project ? c->c : d.ce) * d.oh * d.ow, diff = -1;
    if (bf16) {
        double *w = malloc(sizeof(double) * (size_t)n);
        for (int64_t i = 0; i < n; i++) w[i] = want[i];
        double e = rel_err(got, w, n);
        free(w);
        ok = e <= 2e-2 && e > 0;
        if (!ok) fprintf(stderr, "%s bf16: rel err %.3g vs float32\n", path, e);
        /* and the bits of one thread on any number (the expand in bfloat16 on every path) */
        float *one = NULL;
        if (ok && pool && (run_net(d.x, NULL, &one) != DUCTILE_OK || memcmp(one, got, sizeof(float) * (size_t)n))) {
            fprintf(stderr, "%s bf16: n %lld c %lld %lldx%lld k %lld s %lld: %d threads differ from 1\n", path,
                    (long long)c->n, (long long)c->c, (long long)c->h, (long long)c->w, (long long)c->k,
                    (long long)c->s, dt_pool_threads(pool));
            ok = false;
        }
        free(one);
        goto out;
    }
    for (int64_t i = 0; i < n && diff < 0; i++)
        if (memcmp(&got[i], &want[i], sizeof(float))) diff = i;
    ok = diff < 0;
    if (!ok)
        fprintf(stderr,
                "%s: n %lld c %lld %lldx%lld k %lld s %lld d %lld project %d res %d acts '%s' '%s' pool %d: first "
                "difference at %lld of %lld (%.9g vs %.9g)\n",
                path, (long long)c->n, (long long)c->c, (long long)c->h, (long long)c->w, (long long)c->k,
                (long long)c->s, (long long)c->d, c->project, c->residual, c->e_act, c->d_act, pool != NULL,
                (long long)diff, (long long)n, (double)got[diff], (double)want[diff]);
out:
    free(d.x), free(d.we), free(d.be), free(d.wd), free(d.bd), free(d.wp), free(d.bp);
    free(want), free(got);
    return ok;
}

static void test_fused_equals_unfused(dt_pool *pool, bool bf16, bool on_f32)
{
    static const int64_t chans[] = {3, 5, 17}, sizes[][2] = {{7, 7}, {9, 13}, {13, 9}, {35, 35}, {35, 20}};
    static const char *acts[][2] = {{"Relu", "Relu"}, {"HardSwish", "HardSwish"}, {"", "Relu"}};
    /* strips: min bytes 0 (always), strip bytes 1 (4 rows) or 64 KB (more); small-plane path */
    static const struct { int64_t min, strip; const char *name; } paths[] = {
        {0, 1, "strips of 4 rows"}, {0, 64 << 10, "strips of more rows"}, {INT64_MAX, 384 << 10, "small planes"}};
    int bad = 0, ran = 0, i = 0;
    int64_t keep[6] = {dt_cpu_irb_min_bytes, dt_cpu_irb_min_batch_bytes, dt_cpu_irb_strip_bytes, dt_cpu_irb_weight_ratio,
                       dt_cpu_irb_min_noexpand_bytes, dt_cpu_irb_max_strip_bytes};
    dt_cpu_irb_max_strip_bytes = INT64_MAX;
    for (size_t p = 0; p < 3; p++) {
        dt_cpu_irb_min_bytes = dt_cpu_irb_min_batch_bytes = dt_cpu_irb_min_noexpand_bytes = paths[p].min;
        dt_cpu_irb_strip_bytes = paths[p].strip;
        dt_cpu_irb_weight_ratio = 0;
        for (size_t ci = 0; ci < 3; ci++)
            for (size_t si = 0; si < 5; si++)
                for (int64_t k = 3; k <= 5; k += 2)
                    for (int64_t s = 1; s <= 2; s++)
                        for (int variant = 0; variant < 5; variant++, i++) {
                            /* variant 0: expand + depthwise; 1: + project; 2: + residual (stride 1);
                             * 3, 4: 1 and 2 without the expand */
                            if ((variant == 2 || variant == 4) && s != 1) continue;
                            irb_case c = {.n = 1 + i / 3 % 4, .c = chans[ci], .h = sizes[si][0], .w = sizes[si][1],
                                          .k = k, .s = s, .d = 1 + (i % 7 == 3), .project = variant >= 1,
                                          .residual = variant == 2 || variant == 4, .e_act = acts[i % 3][0],
                                          .d_act = acts[i % 3][1], .no_expand = variant >= 3};
                            if (bf16 && i % 4) continue;   /* a quarter of the cases */
                            ran++;
                            bad += !run_case(&c, pool, paths[p].name, paths[p].min == 0, bf16, on_f32);
                        }
    }
    dt_cpu_irb_min_bytes = keep[0], dt_cpu_irb_min_batch_bytes = keep[1];
    dt_cpu_irb_strip_bytes = keep[2], dt_cpu_irb_weight_ratio = keep[3], dt_cpu_irb_min_noexpand_bytes = keep[4];
    dt_cpu_irb_max_strip_bytes = keep[5];
    CHECK(ran > (bf16 ? 125 : 500));
    CHECK_EQ_INT(bad, 0);
}

/* The default thresholds: an expanded image of 1.7 MB runs the unfused chain alone (under
 * dt_cpu_irb_min_bytes), and so do two where each thread takes whole images (the chains
 * run image by image); two images on more threads run in strips (3.4 MB over
 * dt_cpu_irb_min_batch_bytes: the split convs would run each stage over both); every way
 * equal to the unfused network bit for bit. */
static void test_strips_by_batch(dt_pool *pool)
{
    irb_case c = {.n = 1, .c = 23, .h = 57, .w = 55, .k = 3, .s = 1, .d = 1, .project = true, .residual = true,
                  .e_act = "Relu", .d_act = "Relu"};
    CHECK(run_case(&c, pool, "one image of 1.7 MB expanded", false, false, false));
    c.n = 2;
    CHECK(run_case(&c, pool, "two images of 1.7 MB expanded", dt_pool_threads(pool) > 2, false, false));
}

/* A block without a project whose strips would pass dt_cpu_irb_max_strip_bytes runs the
 * unfused chain on any number of threads (dt_cpu_irb_max_far_strip_bytes where its
 * expanded tensor passes dt_cpu_irb_far_bytes); under the limit, strips; every way equal to
 * the unfused network bit for bit. */
static void test_max_strip_without_project(dt_pool *pool)
{
    int64_t keep[4] = {dt_cpu_irb_min_bytes, dt_cpu_irb_strip_bytes, dt_cpu_irb_weight_ratio, dt_cpu_irb_max_strip_bytes};
    dt_cpu_irb_min_bytes = 0, dt_cpu_irb_strip_bytes = 1, dt_cpu_irb_weight_ratio = 0;
    irb_case c = {.n = 1, .c = 5, .h = 19, .w = 17, .k = 5, .s = 1, .d = 1, .e_act = "Relu", .d_act = "HardSwish"};
    dt_cpu_irb_max_strip_bytes = 1;
    CHECK(run_case(&c, pool, "no project, strips over the limit", false, false, false));
    int64_t far[2] = {dt_cpu_irb_far_bytes, dt_cpu_irb_max_far_strip_bytes};
    dt_cpu_irb_far_bytes = 1;   /* an expanded tensor past the L3: the far limit instead */
    CHECK(run_case(&c, pool, "no project, strips over the limit, far expanded tensor", true, false, false));
    dt_cpu_irb_max_far_strip_bytes = 1;
    CHECK(run_case(&c, pool, "no project, strips over the far limit", false, false, false));
    dt_cpu_irb_far_bytes = far[0], dt_cpu_irb_max_far_strip_bytes = far[1];
    dt_cpu_irb_max_strip_bytes = INT64_MAX;
    CHECK(run_case(&c, pool, "no project, strips under the limit", true, false, false));
    c.project = true;   /* the limit is for blocks without a project */
    dt_cpu_irb_max_strip_bytes = 1;
    CHECK(run_case(&c, pool, "a project, strips over the limit", true, false, false));
    dt_cpu_irb_min_bytes = keep[0], dt_cpu_irb_strip_bytes = keep[1], dt_cpu_irb_weight_ratio = keep[2];
    dt_cpu_irb_max_strip_bytes = keep[3];
}

/* Planes of 128-255 pixels, which plain 1x1 convs batch over the images: the chain runs its
 * images one after another through one image's E and D, and equals the unfused network bit
 * for bit: 2-5 images (odd sizes, 23 -> 138 -> 23 channels), stride 1 with a residual and
 * stride 2 (7x8 outputs). On a pool of 3, 5 images run 3 side by side and the 2 left over in
 * turn, each split over the threads. */
static void test_images_in_turn(dt_pool *pool)
{
    irb_case c = {.c = 23, .h = 15, .w = 13, .k = 3, .s = 1, .d = 1, .project = true, .residual = true,
                  .e_act = "Relu", .d_act = "HardSwish"};
    for (c.n = 2; c.n <= 5; c.n++) CHECK(run_case(&c, pool, "15x13 planes in turn", false, false, false));
    c.s = 2, c.residual = false, c.n = 3;
    CHECK(run_case(&c, pool, "15x13 planes in turn, stride 2", false, false, false));
}

/* What the pass leaves alone: a 1x1 of stride 2 (no expand: depthwise and project fuse
 * without it), a 3x3 conv that is not depthwise, an expanded tensor read twice (likewise);
 * and no fusion without the backend's kernel. */
static void test_pass_near_misses(void)
{
    irb_case c = {.n = 1, .c = 3, .h = 9, .w = 9, .k = 3, .s = 1, .d = 1, .project = true, .e_act = "Relu",
                  .d_act = "Relu"};
    irb_data d = {.ce = 18, .oh = 9, .ow = 9};
    float w[18 * 18 * 9] = {0};
    d.x = d.we = d.be = d.wd = d.bd = d.wp = d.bp = w;
    build(&c, &d);
    CHECK_EQ_INT(dt_pass_fuse(net), DUCTILE_OK);
    CHECK_EQ_INT(count_op("FusedInvertedResidual"), 0);
    CHECK_EQ_INT(count_op("FusedConv"), 3);

    build(&c, &d);
    net->layers[0]->attrs[1].ints = (int64_t[]){2, 2};   /* the expand's strides */
    CHECK_EQ_INT(dt_pass_fuse_for(net, dt_backend_host()), DUCTILE_OK);
    CHECK_EQ_INT(count_op("FusedInvertedResidual"), 1);
    CHECK_EQ_INT(count_op("FusedConv"), 1);
    CHECK(net->layers[1]->n_in > DT_IRB_WE && net->layers[1]->in[DT_IRB_WE] == NULL);

    build(&c, &d);
    net->layers[2]->attrs[4].i = 1;   /* the 3x3's group: a full conv */
    CHECK_EQ_INT(dt_pass_fuse_for(net, dt_backend_host()), DUCTILE_OK);
    CHECK_EQ_INT(count_op("FusedInvertedResidual"), 0);

    build(&c, &d);
    dt_network_add_output(net, net->layers[1]->out[0]);   /* the expand's activation read twice */
    CHECK_EQ_INT(dt_pass_fuse_for(net, dt_backend_host()), DUCTILE_OK);
    CHECK_EQ_INT(count_op("FusedInvertedResidual"), 1);
    CHECK_EQ_INT(count_op("FusedConv"), 1);

    /* The project's input read twice: expand + depthwise fuse, the project stays. */
    build(&c, &d);
    dt_network_add_output(net, net->layers[3]->out[0]);
    CHECK_EQ_INT(dt_pass_fuse_for(net, dt_backend_host()), DUCTILE_OK);
    CHECK_EQ_INT(count_op("FusedInvertedResidual"), 1);
    CHECK_EQ_INT(count_op("FusedConv"), 1);
}

/* The layer's shape errors name the input and what was expected. */
static void test_infer_errors(void)
{
    irb_case c = {.n = 1, .c = 3, .h = 9, .w = 9, .k = 3, .s = 1, .d = 1, .project = true, .e_act = "",
                  .d_act = ""};
    irb_data d = {.ce = 18, .oh = 9, .ow = 9};
    float w[18 * 18 * 9] = {0};
    d.x = d.we = d.be = d.wd = d.bd = d.wp = d.bp = w;
    build(&c, &d);
    CHECK_EQ_INT(dt_pass_fuse_for(net, dt_backend_host()), DUCTILE_OK);
    CHECK_EQ_INT(net->n_layers, 1);
    ductile_layer *F = net->layers[0];
    const dt_opdef *def = def_of(F);
    dt_view in[7], out;
    for (int k = 0; k < 7; k++) {
        in[k] = (dt_view){.dtype = DUCTILE_FLOAT32, .rank = F->in[k]->rank};
        for (int i = 0; i < F->in[k]->rank; i++) in[k].dims[i] = F->in[k]->dims[i];
    }
    CHECK_EQ_INT(def->infer(F, in, &out), DUCTILE_OK);
    CHECK_EQ_INT(out.rank, 4);
    CHECK(out.dims[0] == 1 && out.dims[1] == 3 && out.dims[2] == 9 && out.dims[3] == 9);
    in[0].dims[1] = 4;
    CHECK_EQ_INT(def->infer(F, in, &out), DUCTILE_ERR_SHAPE);
    CHECK_EQ_STR(ductile_last_error(), "input 1 (We) has shape [18,3,1,1]; expected [M, 4, 1, 1]");
    in[0].dims[1] = 3;
    in[6].dims[0] = 4;
    CHECK_EQ_INT(def->infer(F, in, &out), DUCTILE_ERR_SHAPE);
    CHECK_EQ_STR(ductile_last_error(), "input 6 (Bp) must be [3], one bias per output channel");
}

int main(void)
{
    dt_pool *pool = NULL;
    CHECK_EQ_INT(dt_pool_create(2, &pool), DUCTILE_OK);
    test_fused_equals_unfused(NULL, false, false);
    test_fused_equals_unfused(pool, false, false);
    if (dt_cpu_has_bf16()) {
        test_fused_equals_unfused(NULL, true, false);
        test_fused_equals_unfused(pool, true, false);
        test_fused_equals_unfused(pool, true, true);
    } else {
        fprintf(stderr, "skip: this CPU lacks AVX512-BF16; the bf16 inverted-residual blocks not run\n");
    }
    test_strips_by_batch(NULL);
    test_strips_by_batch(pool);
    test_max_strip_without_project(NULL);
    test_max_strip_without_project(pool);
    test_images_in_turn(NULL);
    test_images_in_turn(pool);
    dt_pool *pool3 = NULL;
    CHECK_EQ_INT(dt_pool_create(3, &pool3), DUCTILE_OK);
    test_images_in_turn(pool3);
    test_strips_by_batch(pool3);
    dt_pool_free(pool3);
    test_pass_near_misses();
    test_infer_errors();
    dt_pool_free(pool);
    dt_network_delete(net);
    TEST_MAIN_END();
}
