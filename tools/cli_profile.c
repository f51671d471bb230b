/* cli_profile — the collector behind --dumpProfile / --exportProfile (see cli_profile.h). */
#include "cli_profile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli_json.h"
#include "cli_util.h"

typedef struct cli_layer_prof {
    char *name, *op, *tactic;
    double ms, flops;
} cli_layer_prof;

struct cli_profile {
    cli_layer_prof *layers;     /* by execution index */
    int n, cap;
    long runs;                  /* executes seen (reports of index 0) */
    int oom;
};

cli_profile *cli_profile_create(void) { return calloc(1, sizeof(cli_profile)); }

void cli_profile_free(cli_profile *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n; i++) {
        free(p->layers[i].name);
        free(p->layers[i].op);
        free(p->layers[i].tactic);
    }
    free(p->layers);
    free(p);
}

static char *dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void cli_profile_report(void *user, const ductile_layer_timing *t)
{
    cli_profile *p = user;
    if (p->oom || t->index < 0)
        return;
    if (t->index == 0)
        p->runs++;
    if (t->index >= p->cap) {
        int cap = t->index + 64;
        cli_layer_prof *grown = realloc(p->layers, (size_t)cap * sizeof *grown);
        if (!grown) {
            p->oom = 1;
            return;
        }
        memset(grown + p->cap, 0, (size_t)(cap - p->cap) * sizeof *grown);
        p->layers = grown;
        p->cap = cap;
    }
    cli_layer_prof *l = &p->layers[t->index];
    if (!l->name) {
        l->name = dup(t->layer);
        l->op = dup(t->op_type);
        l->tactic = dup(t->tactic);
        if (!l->name || !l->op || !l->tactic) {
            p->oom = 1;
            return;
        }
        l->flops = t->flops;
    }
    l->ms += t->ms;
    if (t->index >= p->n)
        p->n = t->index + 1;
}

static double total_ms(const cli_profile *p)
{
    double s = 0;
    for (int i = 0; i < p->n; i++)
        s += p->layers[i].ms;
    return s;
}

typedef struct op_total {
    const char *op;
    double ms;
    int layers;
} op_total;

static int by_ms_desc(const void *a, const void *b)
{
    double x = ((const op_total *)a)->ms, y = ((const op_total *)b)->ms;
    return x < y ? 1 : x > y ? -1 : strcmp(((const op_total *)a)->op, ((const op_total *)b)->op);
}

void cli_profile_print(const cli_profile *p, FILE *f)
{
    if (p->oom) {
        fprintf(f, "Profile: out of memory while collecting\n");
        return;
    }
    double total = total_ms(p), runs = p->runs > 0 ? (double)p->runs : 1;
    double pct = total > 0 ? 100.0 / total : 0;
    int w = 32;   /* the tactic column: as wide as the widest tactic */
    for (int i = 0; i < p->n; i++)
        if (p->layers[i].tactic && (int)strlen(p->layers[i].tactic) + 2 > w)
            w = (int)strlen(p->layers[i].tactic) + 2;
    fprintf(f, "\n=== Profile (%ld iterations ) ===\n", p->runs);
    fprintf(f, "%11s%11s%10s   %-*s%s\n", "Time(ms)", "Avg.(ms)", "Time(%)", w, "Tactic", "Layer");
    for (int i = 0; i < p->n; i++) {
        const cli_layer_prof *l = &p->layers[i];
        if (!l->name)
            continue;
        fprintf(f, "%11.2f%11.4f%10.1f   %-*s%s\n", l->ms, l->ms / runs, l->ms * pct, w, l->tactic, l->name);
    }
    fprintf(f, "%11.2f%11.4f%10.1f   %-*s%s\n", total, total / runs, total > 0 ? 100.0 : 0.0, w, "", "Total");

    /* Per op type, largest first: where a model's time goes at a glance. */
    op_total *ops = calloc((size_t)p->n + 1, sizeof *ops);
    int n_ops = 0;
    for (int i = 0; ops && i < p->n; i++) {
        const cli_layer_prof *l = &p->layers[i];
        if (!l->name)
            continue;
        int k = 0;
        while (k < n_ops && strcmp(ops[k].op, l->op))
            k++;
        if (k == n_ops)
            ops[n_ops++].op = l->op;
        ops[k].ms += l->ms;
        ops[k].layers++;
    }
    if (ops) {
        qsort(ops, (size_t)n_ops, sizeof *ops, by_ms_desc);
        fprintf(f, "\n=== Profile by op type ===\n");
        fprintf(f, "%11s%11s%10s%9s   %s\n", "Time(ms)", "Avg.(ms)", "Time(%)", "Layers", "Op type");
        for (int k = 0; k < n_ops; k++)
            fprintf(f, "%11.2f%11.4f%10.1f%9d   %s\n", ops[k].ms, ops[k].ms / runs, ops[k].ms * pct, ops[k].layers,
                    ops[k].op);
    }
    free(ops);
    fprintf(f, "\n");
}

int cli_profile_export(const cli_profile *p, const char *path)
{
    if (p->oom)
        return cli_fail("--exportProfile: out of memory while collecting the profile");
    FILE *f = fopen(path, "w");
    if (!f)
        return cli_fail("cannot write --exportProfile file '%s': %s", path, strerror(errno));
    double total = total_ms(p), runs = p->runs > 0 ? (double)p->runs : 1;
    fprintf(f, "[\n  { \"count\" : %ld }\n", p->runs);
    for (int i = 0; i < p->n; i++) {
        const cli_layer_prof *l = &p->layers[i];
        if (!l->name)
            continue;
        fprintf(f, ", { \"name\" : ");
        cli_json_string(f, l->name);
        fprintf(f, ", \"timeMs\" : %.6f, \"averageMs\" : %.6f, \"percentage\" : %.4f, \"opType\" : ", l->ms,
                l->ms / runs, total > 0 ? l->ms / total * 100 : 0.0);
        cli_json_string(f, l->op);
        fprintf(f, ", \"tactic\" : ");
        cli_json_string(f, l->tactic);
        fprintf(f, ", \"flops\" : %.0f }\n", l->flops);
    }
    fprintf(f, "]\n");
    if (fclose(f) != 0)
        return cli_fail("cannot write --exportProfile file '%s': %s", path, strerror(errno));
    return 0;
}
