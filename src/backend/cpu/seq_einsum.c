/* Einsum on the CPU: a direct loop over the output labels and, inside, the summed labels. */
#include "backend/cpu/seq_kernels.h"
#include "core/alloc.h"
#include "ops/seq.h"
#include "core/status.h"

#include <stdlib.h>
#include <string.h>

ductile_status dt_cpu_seq_einsum(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)ex;
    dt_einsum_plan p;
    DT_TRY(dt_einsum_plan_get(L, in, &p));
    bool is_out[DT_EINSUM_MAX_LABELS] = {false};
    for (int i = 0; i < p.out_rank; i++) is_out[p.out_label[i]] = true;
    int red[DT_EINSUM_MAX_LABELS], nred = 0;
    for (int l = 0; l < p.n_labels; l++)
        if (!is_out[l]) red[nred++] = l;
    double *x[DT_EINSUM_MAX_IN] = {NULL};
    int64_t n_out = dt_view_count(&out[0]);
    double *y = dt_malloc((size_t)(n_out + 1) * sizeof *y);
    ductile_status st = y ? DUCTILE_OK : dt_seq_oom("Einsum");
    for (int i = 0; !st && i < p.n_in; i++)
        if (!(x[i] = dt_seq_load(&in[i]))) st = dt_seq_oom("Einsum");
    int64_t n_red = 1;
    for (int j = 0; j < nred; j++) n_red *= p.size[red[j]];
    for (int64_t o = 0; !st && o < n_out; o++) {
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
    if (!st) dt_seq_store(&out[0], y, n_out);
    for (int i = 0; i < p.n_in; i++) dt_free(x[i]);
    dt_free(y);
    return st;
}
