/* Einsum on the CPU: a direct loop over the output labels and, inside, the summed labels. */
#include "backend/cpu/seq_kernels.h"
#include "ops/seq.h"
#include "core/status.h"

#include <stdlib.h>
#include <string.h>

/* Einsum compiled: the equation read once (the layer's string: the plan of labels and strides
 * depends on the input ranks and dims, so it is derived per run); L for the messages. */
typedef struct dt_seq_einsum {
    const ductile_layer *L;
    const char *eq;
} dt_seq_einsum;

static ductile_status dt_einsum_prepare(const ductile_layer *L, void **out)
{
    dt_seq_einsum p = {L, dt_attr_string(L, "equation", "")};
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

/* Doubles of the run: every operand, then y. */
static int64_t dt_einsum_doubles(int n_in, const dt_view *in, const dt_view *out)
{
    int64_t n = dt_seq_n1(&out[0]);
    for (int i = 0; i < n_in; i++) n += dt_seq_n1(&in[i]);
    return n;
}

static ductile_status dt_einsum_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                        size_t *bytes)
{
    const dt_seq_einsum *c = params;
    return dt_seq_scratch_bytes("Einsum", dt_einsum_doubles(c->L->n_in, in, out), bytes);
}

static ductile_status dt_einsum_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_seq_einsum *c = params;
    dt_einsum_plan p;
    DT_TRY(dt_einsum_plan_of(c->eq, c->L, in, &p));
    bool is_out[DT_EINSUM_MAX_LABELS] = {false};
    for (int i = 0; i < p.out_rank; i++) is_out[p.out_label[i]] = true;
    int red[DT_EINSUM_MAX_LABELS], nred = 0;
    for (int l = 0; l < p.n_labels; l++)
        if (!is_out[l]) red[nred++] = l;
    double *cur;
    DT_TRY(dt_seq_scratch("Einsum", ex, dt_einsum_doubles(p.n_in, in, out), &cur));
    double *x[DT_EINSUM_MAX_IN] = {NULL};
    int64_t n_out = dt_view_count(&out[0]);
    double *y = dt_seq_take(&cur, dt_seq_n1(&out[0]));
    for (int i = 0; i < p.n_in; i++) x[i] = dt_seq_take_load(&cur, &in[i]);
    int64_t n_red = 1;
    for (int j = 0; j < nred; j++) n_red *= p.size[red[j]];
    for (int64_t o = 0; o < n_out; o++) {
        int64_t base[DT_EINSUM_MAX_IN] = {0}, rem = o;
        for (int a = p.out_rank - 1; a >= 0; a--) {
            int l = p.out_label[a];
            int64_t idx = rem % p.size[l];
            rem /= p.size[l];
            for (int i = 0; i < p.n_in; i++) base[i] += idx * p.stride[i][l];
        }
        double acc = 0;
        for (int64_t r = 0; r < n_red; r++) {
            int64_t off[DT_EINSUM_MAX_IN];
            memcpy(off, base, sizeof off);
            int64_t rr = r;
            for (int j = nred - 1; j >= 0; j--) {
                int l = red[j];
                int64_t idx = rr % p.size[l];
                rr /= p.size[l];
                for (int i = 0; i < p.n_in; i++) off[i] += idx * p.stride[i][l];
            }
            double v = 1;
            for (int i = 0; i < p.n_in; i++) v *= x[i][off[i]];
            acc += v;
        }
        y[o] = acc;
    }
    dt_seq_store(&out[0], y, n_out);
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_seq_einsum_kernel = {
    .prepare = dt_einsum_prepare, .scratch = dt_einsum_scratch, .run = dt_einsum_run,
};
