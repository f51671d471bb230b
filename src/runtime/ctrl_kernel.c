/* Subgraphs a kernel runs (FlexAttention's score_mod and prob_mod; see dt_exec.subgraph in
 * backend/backend.h): the kernel keeps its compiled form and its place in the static plan
 * (its output shapes follow from its inputs), and the runtime lends it the subgraph runner
 * of If/Loop/Scan (ctrl_subrun.c) for the length of its run. Each call runs the subgraph once
 * on whole tensors and copies its outputs into the kernel's. The run's buffers belong to the
 * context (dt_subruns, kept from one execute to the next, so a steady run allocates nothing;
 * the engine stays immutable and shared); a layer inside another subgraph, or a caller
 * without a context (the builder), gets a run of its own per call. */
#include "runtime/ctrl_internal.h"
#include "core/alloc.h"
#include "core/dtype.h"
#include "core/status.h"
#include "graph/subgraph.h"

#include <stdio.h>
#include <string.h>

/* At most two GRAPH attributes per layer (dt_ctrl.g). */
enum { DT_KEPT_PER_LAYER = 2 };

struct dt_subruns {
    const dt_plan *plan;
    dt_subrun *runs;          /* per plan layer, DT_KEPT_PER_LAYER each; sg NULL: not made yet */
};

ductile_status dt_subruns_create(const dt_plan *p, dt_subruns **out)
{
    *out = NULL;
    bool any = false;
    for (int i = 0; i < p->n_layers; i++) any |= p->layers[i].graphs != NULL;
    if (!any) return DUCTILE_OK;
    dt_subruns *s = dt_calloc(1, sizeof *s);
    if (s) s->runs = dt_calloc((size_t)p->n_layers * DT_KEPT_PER_LAYER, sizeof *s->runs);
    if (!s || !s->runs) {
        dt_free(s);
        return dt_ctrl_oom("the subgraph runs of a context");
    }
    s->plan = p;
    *out = s;
    return DUCTILE_OK;
}

void dt_subruns_free(dt_subruns *s)
{
    if (!s) return;
    for (int i = 0; i < s->plan->n_layers * DT_KEPT_PER_LAYER; i++)
        if (s->runs[i].sg) dt_subrun_free(&s->runs[i]);
    dt_free(s->runs);
    dt_free(s);
}

uint64_t dt_subruns_bytes(const dt_subruns *s)
{
    uint64_t n = 0;
    for (int i = 0; s && i < s->plan->n_layers * DT_KEPT_PER_LAYER; i++) {
        const dt_subrun *r = &s->runs[i];
        if (!r->sg) continue;
        n += r->scratch_cap;
        for (int t = 0; t < r->sg->net->n_tensors; t++) n += r->caps[t];
    }
    return n;
}

typedef struct dt_kernel_graphs {
    const dt_ctrl *c;
    const ductile_layer *L;
    const dt_view *in;        /* the layer's inputs: what the subgraphs capture */
    const dt_exec *ex;
    dt_subrun *kept;          /* the context's runs for this layer's graphs, or NULL */
} dt_kernel_graphs;

static void dt_view_text(const dt_view *v, char *buf, size_t cap)
{
    char dims[160];
    dt_format_dims(dims, sizeof dims, v->dims, v->rank, NULL);
    snprintf(buf, cap, "%s %s", ductile_dtype_name((ductile_dtype)v->dtype), dims);
}

/* Subgraph output k (v) into the kernel's view `want`, which fixes its dtype and shape. */
static ductile_status dt_kernel_graph_out(const dt_subgraph *sg, int k, const dt_view *v, dt_view *want)
{
    const char *name = sg->net->outputs[k]->name;
    if (v->rank < 0 || (!v->data && dt_view_count(v) > 0))
        return dt_fail(DUCTILE_ERR_SHAPE, "output %d ('%s') has no value", k, name);
    bool same = v->dtype == want->dtype && v->rank == want->rank;
    for (int d = 0; same && d < v->rank; d++) same = v->dims[d] == want->dims[d];
    if (!same) {
        char got[200], exp[200];
        dt_view_text(v, got, sizeof got);
        dt_view_text(want, exp, sizeof exp);
        return dt_fail(DUCTILE_ERR_SHAPE, "output %d ('%s') is %s; expected %s (the dtype and shape of its input)", k,
                       name, got, exp);
    }
    size_t bytes;
    if (!dt_view_bytes(v, &bytes)) return dt_fail(DUCTILE_ERR_SHAPE, "output %d ('%s') overflows", k, name);
    /* An output that is the input itself is already in place. */
    if (bytes && v->data != want->data) memmove(want->data, v->data, bytes);
    return DUCTILE_OK;
}

static ductile_status dt_kernel_graph_run(void *user, int attr, const dt_view *in, dt_view *out)
{
    const dt_kernel_graphs *b = user;
    int gi = 0;
    while (gi < b->c->n_graphs && b->c->g[gi].attr_index != attr) gi++;
    if (gi == b->c->n_graphs) return dt_fail(DUCTILE_ERR_INTERNAL, "attribute %d of the node is not a subgraph", attr);
    const dt_subgraph *sg = &b->c->g[gi];
    dt_subrun local, *r = b->kept ? &b->kept[gi] : &local;
    if (!b->kept || !r->sg) DT_TRY(dt_subrun_init(r, sg, b->in, NULL, b->L));
    else dt_subrun_bind(r, b->in, NULL, b->L);
    int fi = dt_graph_formal_inputs(sg->net);
    for (int i = 0; i < fi; i++) r->inputs[i] = in[i];
    ductile_status s = dt_subrun_exec(r, b->ex);
    for (int k = 0; !s && k < sg->net->n_outputs; k++) s = dt_kernel_graph_out(sg, k, dt_subrun_output(r, k), &out[k]);
    if (!b->kept) dt_subrun_free(r);
    return s ? dt_fail_prefix(s, "%s", sg->attr) : DUCTILE_OK;
}

ductile_status dt_ctrl_kernel_run(const dt_plan_layer *pl, const dt_view *in, dt_view *out, dt_exec *ex)
{
    /* The context's runs belong to its engine's plan: a layer of a nested plan (a Loop
     * body's) is not in it, and its exec carries none (dt_subrun_exec). */
    const dt_subruns *kept = ex->subruns;
    int i = pl->layer->index;
    bool mine = kept && i >= 0 && i < kept->plan->n_layers && &kept->plan->layers[i] == pl;
    dt_kernel_graphs b = {pl->graphs, pl->layer, in, ex, mine ? kept->runs + (size_t)i * DT_KEPT_PER_LAYER : NULL};
    ductile_status (*fn)(void *, int, const dt_view *, dt_view *) = ex->subgraph;
    void *user = ex->subgraph_user;
    ex->subgraph = dt_kernel_graph_run;
    ex->subgraph_user = &b;
    ductile_status s = pl->kernel ? pl->kernel->run(pl->params, in, out, ex) : pl->legacy(pl->layer, in, out, ex);
    ex->subgraph = fn;
    ex->subgraph_user = user;
    return s;
}
