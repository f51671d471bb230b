/* The whole-network precision check (optimize.h dt_pass_precision_check).
 *
 * Some reduced-precision tactics have an error that no property of one layer bounds:
 * bfloat16 F(4x4) Winograd rounds the transformed weights and inputs, whose size grows with
 * the transform's points, and whether that stays within --bf16's budget (rel L2 1e-2 against
 * float32) depends on what follows the layer: 2.7e-3 on resnet50, whose pooling averages the
 * noise away, 1.85e-2 on superres, whose last conv is its output (bench/results/
 * cpu-bf16w-2026-12-04-s20.md). The backend names such tactics and the precise tactic that
 * stands in for each (dt_backend.tactic_precise); where the timer chose some, the engine is run
 * as built and again with the precise tactics, on the same inputs (float inputs standard normal
 * from a fixed seed, others zero), at the shapes of every profile's points (opt, min, max)
 * whose reduced-precision choices differ from those of the points run before it (dt_check_points:
 * the timer chooses per point, and a choice made at min alone runs at min alone: session 38's
 * CI built superres --bf16 with bfloat16 Winograd on its last conv at min only, 1.35e-2 from
 * float32 there, when only opt was checked), and the chosen tactics stay only when every float
 * output of the two runs agrees within DT_PRECISION_CHECK_REL_L2 at each of them. Half
 * the budget: the rest is for the error the other reduced-precision layers make in both runs.
 * Where all of them together fail, the layers that may keep theirs are searched for
 * (dt_check_some), each candidate engine checked the same way.
 *
 * Where the check cannot run (a device backend's outputs are not host memory, an engine with
 * shape inputs whose values the builder cannot make up, no float output to compare, a run
 * that fails), the precise tactics are kept: a faster engine is never bought with an unchecked
 * error. DUCTILE_PRECISION_CHECK=accept / reject decides without running (tests of either
 * outcome). */
#include "builder/engine_write.h"
#include "builder/optimize.h"
#include "backend/tactic.h"
#include "core/alloc.h"
#include "core/status.h"
#include "runtime/engine_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DT_PRECISION_CHECK_REL_L2 5e-3

/* The index of L's `tactic` attribute, or -1. */
static int dt_tactic_attr_index(const ductile_layer *L)
{
    for (int i = 0; i < L->n_attr; i++)
        if (!strcmp(L->attrs[i].name, "tactic") && L->attrs[i].type == DT_ATTR_INTS) return i;
    return -1;
}

/* For every layer with a stored tactic that the backend says needs the check, the ids with
 * those tactics replaced by their precise ones (NULL: the layer has none); *n: such layers. */
static ductile_status dt_precise_ids(const dt_backend *be, ductile_network *net, const int64_t **swap, int *n)
{
    *n = 0;
    for (int l = 0; l < net->n_layers; l++) {
        ductile_layer *L = net->layers[l];
        swap[l] = NULL;
        int a = dt_tactic_attr_index(L);
        if (a < 0) continue;
        const dt_attr *t = &L->attrs[a];
        int64_t *ids = NULL;
        for (int64_t i = 0; i < t->n; i++) {
            int p = t->ints[i] > 0 ? be->tactic_precise(L, (int)t->ints[i]) : 0;
            if (p <= 0) continue;
            if (!ids) {
                ids = dt_arena_alloc(&net->arena, sizeof *ids * (size_t)t->n);
                if (!ids) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory checking precision");
                memcpy(ids, t->ints, sizeof *ids * (size_t)t->n);
            }
            ids[i] = p;
        }
        swap[l] = ids;
        *n += ids != NULL;
    }
    return DUCTILE_OK;
}

/* The tactic id of a layer with a `tactic` attribute at profile p's point pt: from `ids` where
 * given (that attribute's count of them, e.g. swap[l]), else from the attribute itself. */
static int64_t dt_chosen_id(const ductile_layer *L, const int64_t *ids, int p, int pt)
{
    const dt_attr *t = &L->attrs[dt_tactic_attr_index(L)];
    return dt_tactic_at(ids ? ids : t->ints, t->n, (int)dt_attr_int(L, "tactic_points", 1), p, pt);
}

/* The (profile, point) pairs the check runs, need[p * DT_TACTIC_POINTS + point]: those where
 * some layer's chosen id (net's, before the swap) is not its precise one (swap[l]), each only
 * where that set of chosen ids over the listed layers differs from every pair of the same
 * profile marked before it (opt first, then min and max): a point that takes opt's choices
 * (not timed there, or the same shapes) adds nothing to opt's run. */
static void dt_check_points(const ductile_network *net, const int64_t **swap, int n_profiles, bool *need)
{
    static const int order[DT_TACTIC_POINTS] = {DUCTILE_PROFILE_OPT, DUCTILE_PROFILE_MIN, DUCTILE_PROFILE_MAX};
    for (int p = 0; p < n_profiles; p++)
        for (int k = 0; k < DT_TACTIC_POINTS; k++) {
            int pt = order[k];
            bool reduced = false, seen = false;
            for (int j = 0; j < k && !seen; j++) {
                int q = order[j];
                if (!need[p * DT_TACTIC_POINTS + q]) continue;
                bool same = true;
                for (int l = 0; l < net->n_layers && same; l++) {
                    const ductile_layer *L = net->layers[l];
                    same = !swap[l] || dt_chosen_id(L, NULL, p, pt) == dt_chosen_id(L, NULL, p, q);
                }
                seen = same;
            }
            for (int l = 0; l < net->n_layers && !reduced; l++) {
                const ductile_layer *L = net->layers[l];
                reduced = swap[l] && dt_chosen_id(L, NULL, p, pt) != dt_chosen_id(L, swap[l], p, pt);
            }
            need[p * DT_TACTIC_POINTS + pt] = reduced && !seen;
        }
}

/* Exchanges the `tactic` ids of the listed layers that `pick` marks (by their place among
 * them, in network order; all of them where pick is NULL) with swap[l], so a second call
 * undoes it. */
static void dt_swap_picked(ductile_network *net, const int64_t **swap, const bool *pick)
{
    for (int l = 0, i = 0; l < net->n_layers; l++) {
        if (!swap[l]) continue;
        bool take = !pick || pick[i];
        i++;
        if (!take) continue;
        ductile_layer *L = net->layers[l];
        dt_attr *t = &L->attrs[dt_tactic_attr_index(L)];
        const int64_t *keep = t->ints;
        t->ints = swap[l];
        swap[l] = keep;
    }
}

static void dt_swap_ids(ductile_network *net, const int64_t **swap) { dt_swap_picked(net, swap, NULL); }

/* The float32 outputs of one run: values of every output, one after another, and where each
 * starts (off[n_out] the total). */
typedef struct dt_check_run {
    float *v;
    size_t *off;
    int n_out;
} dt_check_run;

static uint64_t dt_splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Standard normal values (Box-Muller over a fixed seed per input). */
static void dt_normal_fill(float *x, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i += 2) {
        double u = ((double)(dt_splitmix(&seed) >> 11) + 1.0) * 0x1p-53;
        double v = (double)(dt_splitmix(&seed) >> 11) * 0x1p-53;
        double r = sqrt(-2.0 * log(u));
        x[i] = (float)(r * cos(6.283185307179586 * v));
        if (i + 1 < n) x[i + 1] = (float)(r * sin(6.283185307179586 * v));
    }
}

static size_t dt_dims_count(const ductile_dims *d)
{
    size_t n = 1;
    for (int i = 0; i < d->nb_dims; i++) n *= d->d[i] > 0 ? (size_t)d->d[i] : 0;
    return n;
}

/* Appends to r the float32 outputs of one run of ctx at profile p's shapes of `point`. */
static ductile_status dt_check_run_point(const ductile_engine *e, ductile_context *ctx, int p, int point,
                                         dt_check_run *r)
{
    ductile_status s = ductile_context_set_profile(ctx, p);
    int n = ductile_engine_num_io_tensors(e);
    for (int i = 0; !s && i < n; i++) {
        const char *name = ductile_engine_io_tensor_name(e, i);
        ductile_dims d;
        if (ductile_engine_is_input(e, name) != 1) continue;
        s = ductile_engine_get_profile_shape(e, p, name, point, &d);
        if (!s) s = ductile_context_set_input_shape(ctx, name, &d);
    }
    for (int i = 0; !s && i < n; i++) {
        const char *name = ductile_engine_io_tensor_name(e, i);
        ductile_dims d;
        void *data;
        if (ductile_engine_is_input(e, name) != 1) continue;
        s = ductile_context_get_tensor_address(ctx, name, &data);
        if (!s) s = ductile_context_get_tensor_shape(ctx, name, &d);
        if (!s && ductile_engine_tensor_dtype(e, name) == DUCTILE_FLOAT32)
            dt_normal_fill(data, dt_dims_count(&d), 0x5eed0000u + (uint64_t)i);
    }
    if (!s) s = ductile_context_execute(ctx);
    /* The float32 outputs, copied out of the context's buffers after those of earlier runs. */
    size_t total = r->n_out ? r->off[r->n_out] : 0;
    size_t *off = s ? NULL : dt_realloc(r->off, sizeof *r->off * ((size_t)r->n_out + (size_t)n + 1));
    if (!off && !s) s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory checking precision");
    if (off) r->off = off;
    for (int i = 0; !s && i < n; i++) {
        const char *name = ductile_engine_io_tensor_name(e, i);
        ductile_dims d;
        if (ductile_engine_is_input(e, name) != 0 || ductile_engine_tensor_dtype(e, name) != DUCTILE_FLOAT32) continue;
        s = ductile_context_get_tensor_shape(ctx, name, &d);
        if (s) break;
        size_t c = dt_dims_count(&d);
        float *v = dt_realloc(r->v, sizeof *v * (total + c + 1));
        if (!v) {
            s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory checking precision");
            break;
        }
        r->v = v;
        void *data;
        s = ductile_context_get_tensor_address(ctx, name, &data);
        if (!s) memcpy(r->v + total, data, sizeof *v * c);
        r->off[r->n_out++] = total;
        total += c;
    }
    if (!s) r->off[r->n_out] = total;
    return s;
}

/* Runs e at each (profile, point) that need marks (dt_check_points), in that order; r gets
 * their float32 outputs one after another. DUCTILE_ERR_UNSUPPORTED: nothing to compare. */
static ductile_status dt_check_run_engine(const ductile_engine *e, int threads, const bool *need, int n_profiles,
                                          dt_check_run *r)
{
    memset(r, 0, sizeof *r);
    ductile_context *ctx = NULL;
    DT_TRY(ductile_context_create(e, &ctx));
    ductile_status s = ductile_context_set_threads(ctx, threads);
    for (int k = 0; !s && k < n_profiles * DT_TACTIC_POINTS; k++)
        if (need[k]) s = dt_check_run_point(e, ctx, k / DT_TACTIC_POINTS, k % DT_TACTIC_POINTS, r);
    ductile_context_free(ctx);
    if (!s && !r->n_out) s = DUCTILE_ERR_UNSUPPORTED;
    return s;
}

/* The largest rel L2 of a's outputs against b's (infinite where a value is not finite in one
 * and is in the other, or where a's and b's outputs differ in size). */
static double dt_check_worst(const dt_check_run *a, const dt_check_run *b)
{
    if (a->n_out != b->n_out) return INFINITY;
    double worst = 0;
    for (int o = 0; o < a->n_out; o++) {
        if (a->off[o + 1] - a->off[o] != b->off[o + 1] - b->off[o]) return INFINITY;
        double d2 = 0, r2 = 0;
        for (size_t i = a->off[o], j = b->off[o]; i < a->off[o + 1]; i++, j++) {
            double x = a->v[i], y = b->v[j];
            if (isfinite(x) != isfinite(y)) return INFINITY;
            if (!isfinite(y)) continue;
            d2 += (x - y) * (x - y);
            r2 += y * y;
        }
        double rel = r2 > 0 ? sqrt(d2 / r2) : (d2 > 0 ? INFINITY : 0);
        if (rel > worst) worst = rel;
    }
    return worst;
}

/* Where the chosen tactics of all the layers fail the check, some may keep theirs. */
typedef struct dt_check_span {
    ductile_network *net;  /* carrying the precise ids */
    const int64_t **swap;  /* the chosen ones */
    int n;                 /* layers with reduced-precision tactics */
    const ductile_profile *profiles;
    int n_profiles;
    const dt_engine_target *target;
    int threads;
    const dt_check_run *ref; /* the precise engine's outputs */
    const bool *need;        /* the (profile, point) pairs run (dt_check_points) */
    bool log;
} dt_check_span;

/* Engines written and run in search of layers that may keep their tactics (each a write and a
 * run at the checked points: a few seconds on the benchmark's yolo). */
#define DT_CHECK_TRIALS 12

/* Writes and runs the engine with the chosen tactics on the layers `pick` marks; where its
 * outputs pass, it replaces *best. */
static ductile_status dt_check_try(const dt_check_span *sp, const bool *pick, ductile_engine **best, bool *pass)
{
    ductile_engine *e = NULL;
    dt_check_run r = {0};
    double worst = INFINITY;
    dt_swap_picked(sp->net, sp->swap, pick);
    ductile_status s = dt_engine_rewrite(sp->net, sp->profiles, sp->n_profiles, sp->target, &e);
    dt_swap_picked(sp->net, sp->swap, pick);
    if (!s) {
        ductile_status rs = dt_check_run_engine(e, sp->threads, sp->need, sp->n_profiles, &r);
        if (rs == DUCTILE_ERR_OUT_OF_MEMORY) s = rs;
        else if (!rs) worst = dt_check_worst(&r, sp->ref);
    }
    dt_free(r.v);
    dt_free(r.off);
    *pass = !s && worst <= DT_PRECISION_CHECK_REL_L2;
    if (sp->log && !s) {
        int k = 0;
        for (int i = 0; i < sp->n; i++) k += pick[i];
        fprintf(stderr, "precision check: %d of them kept, outputs rel L2 %.3g: %s\n", k, worst,
                *pass ? "passes" : "fails");
    }
    if (*pass) {
        ductile_engine_free(*best);
        *best = e;
    } else {
        ductile_engine_free(e);
    }
    return s;
}

/* The layers that keep their chosen tactics where all of them together fail (keep[i], by place
 * in network order; *best on entry the precise engine, on return the one with keep's). The
 * error grows with the layers kept, and one layer can add most of it (yolo's 32 bfloat16
 * Winograd layers: 5.4e-3 all together, over the check's 5e-3; the first 20 3.5e-3, the first
 * 21 4.4e-3, the first 22 5.3e-3), so rounds of bisection: the most of the layers from
 * `start` on that pass together with those kept (the whole rest tried first, except in the
 * first round, where it is known to fail); the layer after them stays precise and the next
 * round starts past it. Every engine taken passed the check itself, whether or not the error
 * is monotone in the layers kept. */
static ductile_status dt_check_some(const dt_check_span *sp, bool *keep, ductile_engine **best)
{
    int n = sp->n, start = 0, trials = 0;
    bool *pick = dt_calloc((size_t)n, sizeof *pick);
    if (!pick) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory checking precision");
    ductile_status s = DUCTILE_OK;
    while (!s && start < n && trials < DT_CHECK_TRIALS) {
        int rest = n - start, lo = 0, hi = start ? rest + 1 : rest; /* lo layers pass, hi fail; rest + 1: untried */
        while (!s && hi - lo > 1 && trials < DT_CHECK_TRIALS) {
            int mid = hi > rest ? rest : lo + (hi - lo) / 2;
            for (int i = 0; i < n; i++) pick[i] = keep[i] || (i >= start && i < start + mid);
            bool pass = false;
            s = dt_check_try(sp, pick, best, &pass);
            trials++;
            if (pass) lo = mid;
            else hi = mid;
        }
        for (int i = start; i < start + lo; i++) keep[i] = true;
        start += lo + 1;
    }
    dt_free(pick);
    return s;
}

ductile_status dt_pass_precision_check(ductile_engine **e, ductile_network *net, const ductile_profile *profiles,
                                       int n_profiles, const dt_engine_target *target, int threads)
{
    const dt_backend *be = (*e)->backend;
    if (!be->tactic_precise || n_profiles < 1) return DUCTILE_OK;
    const int64_t **swap = dt_calloc((size_t)net->n_layers + 1, sizeof *swap);
    if (!swap) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory checking precision");
    int n = 0;
    ductile_status s = dt_precise_ids(be, net, swap, &n);
    if (s || !n) {
        dt_free(swap);
        return s;
    }
    bool *need = dt_calloc((size_t)n_profiles * DT_TACTIC_POINTS, sizeof *need);
    if (!need) {
        dt_free(swap);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory checking precision");
    }
    dt_check_points(net, swap, n_profiles, need);
    const char *mode = getenv("DUCTILE_PRECISION_CHECK");
    bool log = dt_tactic_log();
    bool accept = false, ran = false;
    double worst = NAN;
    dt_check_run a = {0}, b = {0};
    ductile_engine *precise = NULL;
    /* The precise engine: net now carries the precise ids. */
    dt_swap_ids(net, swap);
    s = dt_engine_rewrite(net, profiles, n_profiles, target, &precise);
    if (!s && mode && !strcmp(mode, "accept")) accept = true;
    else if (!s && !(mode && !strcmp(mode, "reject")) && be->host_memory && !(*e)->plan.n_shape_inputs) {
        ductile_status ra = dt_check_run_engine(*e, threads, need, n_profiles, &a);
        ductile_status rb = ra ? ra : dt_check_run_engine(precise, threads, need, n_profiles, &b);
        if (ra == DUCTILE_ERR_OUT_OF_MEMORY || rb == DUCTILE_ERR_OUT_OF_MEMORY) s = ra ? ra : rb;
        else if (!ra && !rb) {
            worst = dt_check_worst(&a, &b);
            accept = worst <= DT_PRECISION_CHECK_REL_L2;
            ran = true;
        }
    }
    if (log)
        fprintf(stderr, "precision check: %d layer(s) with reduced-precision tactics, outputs rel L2 %.3g: %s\n", n,
                worst, accept ? "kept" : "replaced by the precise tactics");
    if (!s && accept) {
        dt_swap_ids(net, swap); /* back to the chosen ids: net matches *e again */
        ductile_engine_free(precise);
    } else if (!s) {
        bool *keep = ran && n > 1 ? dt_calloc((size_t)n, sizeof *keep) : NULL;
        if (ran && n > 1 && !keep) s = dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory checking precision");
        if (keep) {
            dt_check_span span = {net, swap, n, profiles, n_profiles, target, threads, &b, need, log};
            s = dt_check_some(&span, keep, &precise);
        }
        ductile_engine_free(*e);
        *e = precise;
        if (keep) dt_swap_picked(net, swap, keep); /* net matches *e: the kept layers' chosen ids */
        dt_free(keep);
    } else {
        dt_swap_ids(net, swap);
        ductile_engine_free(precise);
    }
    dt_free(a.v);
    dt_free(b.v);
    dt_free(a.off);
    dt_free(b.off);
    dt_free(need);
    dt_free(swap);
    return s;
}
