/* ductile_engine_layer_info: the engine's layers as JSON, in the spirit of trtexec's
 * --dumpLayerInfo: per layer its inputs, outputs, stage, kernel, placement, TF32 mark and the
 * tactic ids per profile and shape point ("Tactics": [{"min": 25, "opt": 3, "max": 3}]). */
#include "runtime/engine_impl.h"
#include "backend/tactic.h"
#include "core/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct dt_sbuf {
    char *p;
    size_t n, cap;
    int oom;
} dt_sbuf;

static void dt_sb_printf(dt_sbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) { b->oom = 1; return; }
        if (b->p && b->n + (size_t)k < b->cap) { b->n += (size_t)k; return; }
        size_t nc = (b->cap ? b->cap * 2 : 4096) + (size_t)k;
        char *np = dt_realloc(b->p, nc);
        if (!np) { b->oom = 1; return; }
        b->p = np;
        b->cap = nc;
    }
}

/* A JSON string literal. */
static void dt_sb_str(dt_sbuf *b, const char *s)
{
    dt_sb_printf(b, "\"");
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') dt_sb_printf(b, "\\%c", ch);
        else if (ch < 0x20) dt_sb_printf(b, "\\u%04x", ch);
        else dt_sb_printf(b, "%c", ch);
    }
    dt_sb_printf(b, "\"");
}

/* The layer's stored tactics, one object per profile with the id a run takes at each shape
 * point (backend/tactic.h; 0: the kernel's heuristic); nothing for a layer without. */
static void dt_sb_tactics(dt_sbuf *b, const ductile_engine *e, const ductile_layer *L)
{
    const int64_t *ids;
    int64_t n;
    int points;
    if (dt_tactic_attr(L, &ids, &n, &points) || !n) return;
    dt_sb_printf(b, ", \"Tactics\": [");
    for (int p = 0; p < e->n_profiles; p++)
        dt_sb_printf(b, "%s{ \"min\": %lld, \"opt\": %lld, \"max\": %lld }", p ? ", " : "",
                     (long long)dt_tactic_at(ids, n, points, p, DUCTILE_PROFILE_MIN),
                     (long long)dt_tactic_at(ids, n, points, p, DUCTILE_PROFILE_OPT),
                     (long long)dt_tactic_at(ids, n, points, p, DUCTILE_PROFILE_MAX));
    dt_sb_printf(b, "]");
}

static const char *const dt_kind_name[] = {"constant", "input", "shape", "activation", "output"};

const char *ductile_engine_layer_info(const ductile_engine *e)
{
    return e ? e->layer_info : NULL;
}

char *dt_layer_info_make(const ductile_engine *e)
{
    dt_sbuf b = {0};
    const ductile_network *net = e->net;
    dt_sb_printf(&b, "{\n  \"Layers\": [");
    for (int i = 0; i < e->plan.n_layers; i++) {
        const dt_plan_layer *pl = &e->plan.layers[i];
        const ductile_layer *L = pl->layer;
        dt_sb_printf(&b, "%s\n    { \"Name\": ", i ? "," : "");
        dt_sb_str(&b, L->name);
        dt_sb_printf(&b, ", \"LayerType\": ");
        dt_sb_str(&b, L->op_type);
        dt_sb_printf(&b, ", \"Inputs\": [");
        for (int k = 0; k < L->n_in; k++) {
            dt_sb_printf(&b, "%s", k ? ", " : "");
            if (L->in[k]) {
                dt_sb_printf(&b, "{ \"Name\": ");
                dt_sb_str(&b, L->in[k]->name);
                dt_sb_printf(&b, ", \"Kind\": \"%s\", \"Dtype\": \"%s\" }", dt_kind_name[e->plan.kind[L->in[k]->index]],
                             ductile_dtype_name((ductile_dtype)L->in[k]->dtype));
            } else {
                dt_sb_printf(&b, "null");
            }
        }
        dt_sb_printf(&b, "], \"Outputs\": [");
        for (int k = 0; k < L->n_out; k++) {
            dt_sb_printf(&b, "%s{ \"Name\": ", k ? ", " : "");
            dt_sb_str(&b, L->out[k]->name);
            dt_sb_printf(&b, ", \"Dtype\": \"%s\" }", ductile_dtype_name((ductile_dtype)L->out[k]->dtype));
        }
        /* Value layers run on the host in the shape pass; a device backend's layers without a
         * kernel there run on the host between copies ("cpu fallback"), as do all layers of
         * an eager engine on one (see "HostEngine" below); layers that move sequences and
         * optionals are the runtime's own (runtime/seqval.c). */
        const char *be = pl->seq ? "runtime" : pl->value || pl->fallback ? dt_backend_host()->name : e->backend->name;
        dt_sb_printf(&b, "], \"Stage\": \"%s\", \"Kernel\": \"%s.%s\"%s%s%s%s%s", pl->value ? "shape" : "execute", be,
                     L->op_type, pl->fallback ? ", \"Placement\": \"cpu fallback\"" : "",
                     dt_attr_int(L, "tf32", 0) ? ", \"TF32\": true" : "",
                     dt_attr_int(L, "bf16", 0) ? ", \"BF16\": true" : "",
                     dt_attr_int(L, "fp16", 0) ? ", \"FP16\": true" : "",
                     dt_attr_int(L, "lean_act", 0) ? ", \"LeanActivation\": true" : "");
        dt_sb_tactics(&b, e, L);
        /* A tensor layout other than ONNX's, as ductile's string attribute `layout` says
         * (FusedConv, MaxPool, AveragePool "NHWC": the builder's layout pass; FusedAttention
         * "bshd"). ONNX's own integer `layout` (LSTM's) is not one. */
        const dt_attr *layout = dt_attr_find(L, "layout");
        if (layout && layout->type == DT_ATTR_STRING && layout->s && layout->s[0]) {
            dt_sb_printf(&b, ", \"Layout\": ");
            dt_sb_str(&b, layout->s);
        }
        dt_sb_printf(&b, " }");
    }
    dt_sb_printf(&b, "\n  ],");
    /* An eager engine on a device backend runs on the host (dt_engine_upload): why. */
    if (e->plan.eager && !e->backend->host_memory) {
        dt_sb_printf(&b, "\n  \"HostEngine\": { \"Reason\": \"output shapes depend on data computed at run time\", "
                         "\"Node\": ");
        dt_sb_str(&b, e->plan.eager_cause->name);
        dt_sb_printf(&b, ", \"LayerType\": ");
        dt_sb_str(&b, e->plan.eager_cause->op_type);
        dt_sb_printf(&b, " },");
    }
    dt_sb_printf(&b, "\n  \"Bindings\": [");
    for (int i = 0; i < net->n_inputs + net->n_outputs; i++) {
        const ductile_tensor *t = i < net->n_inputs ? net->inputs[i] : net->outputs[i - net->n_inputs];
        dt_sb_printf(&b, "%s", i ? ", " : "");
        dt_sb_str(&b, t->name);
    }
    dt_sb_printf(&b, "]\n}\n");
    if (b.oom) {
        dt_free(b.p);
        return NULL;
    }
    return b.p;
}
