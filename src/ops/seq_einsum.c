/* Einsum: the equation parsed into labels, their sizes and each input's stride per label.
 * Repeated labels in one term (diagonals) sum their strides; ellipsis dims are labels of
 * their own, right-aligned and broadcast like numpy. */
#include "ops/seq.h"
#include "core/status.h"

#include <string.h>

static int letter_id(char c)
{
    if (c >= 'a' && c <= 'z') return c - 'a';
    if (c >= 'A' && c <= 'Z') return 26 + c - 'A';
    return -1;
}

ductile_status dt_seq_check_einsum(const ductile_layer *L)
{
    if (L->n_in > DT_EINSUM_MAX_IN)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "%d inputs; 1 to %d are supported", L->n_in,
                       DT_EINSUM_MAX_IN);
    /* Every operand is required: lo = n_in makes the arity check name an omitted one. */
    DT_TRY(dt_check_arity(L, L->n_in > 0 ? L->n_in : 1, DT_EINSUM_MAX_IN, 1, 1, NULL));
    const dt_attr *a = dt_attr_find(L, "equation");
    if (!a || a->type != DT_ATTR_STRING)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'equation' (a string) is required");
    return DUCTILE_OK;
}

ductile_status dt_einsum_plan_get(const ductile_layer *L, const dt_view *in, dt_einsum_plan *p)
{
    return dt_einsum_plan_of(dt_attr_string(L, "equation", ""), L, in, p);
}

ductile_status dt_einsum_plan_of(const char *eq, const ductile_layer *L, const dt_view *in, dt_einsum_plan *p)
{
    memset(p, 0, sizeof *p);
    char terms[DT_EINSUM_MAX_IN + 1][64];
    int nt = 0, len = 0;
    bool has_out = false;
    for (const char *c = eq;; c++) {
        if (*c == ' ') continue;
        if (*c == ',' || *c == '\0' || (*c == '-' && c[1] == '>')) {
            if (nt > DT_EINSUM_MAX_IN) return dt_fail(DUCTILE_ERR_UNSUPPORTED, "equation '%s' has too many terms", eq);
            terms[nt][len] = '\0';
            nt++, len = 0;
            if (*c == '\0') break;
            if (*c == '-') {
                if (has_out) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "equation '%s' has two '->'", eq);
                has_out = true;
                c++;
            }
            continue;
        }
        if (len >= 63) return dt_fail(DUCTILE_ERR_UNSUPPORTED, "equation '%s' has a term that is too long", eq);
        terms[nt][len++] = *c;
    }
    p->n_in = nt - has_out;
    if (p->n_in != L->n_in)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "equation '%s' has %d operands but the node has %d inputs", eq, p->n_in, L->n_in);
    for (int i = 0; i < L->n_in; i++) DT_TRY(dt_seq_want_float(in, i, "Inputs"));
    /* Pass 1: ellipsis ranks. */
    int ell[DT_EINSUM_MAX_IN], E = 0;
    for (int i = 0; i < p->n_in; i++) {
        int letters = 0, dots = 0;
        for (const char *c = terms[i]; *c; c++) {
            if (*c == '.') dots++;
            else if (letter_id(*c) >= 0) letters++;
            else return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "equation '%s': character '%c' is not a label", eq, *c);
        }
        if (dots != 0 && (dots != 3 || !strstr(terms[i], "...")))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "equation '%s': a '.' outside '...'", eq);
        ell[i] = dots ? in[i].rank - letters : 0;
        if (ell[i] < 0 || (!dots && letters != in[i].rank))
            return dt_fail(DUCTILE_ERR_SHAPE, "equation '%s': term %d ('%s') does not match input %d of rank %d", eq, i,
                           terms[i], i, in[i].rank);
        if (ell[i] > E) E = ell[i];
    }
    int id_of[52], count[52] = {0};
    for (int k = 0; k < 52; k++) id_of[k] = -1;
    p->n_labels = E;
    for (int k = 0; k < E; k++) p->size[k] = 1;
    /* Pass 2: labels, sizes and strides. */
    for (int i = 0; i < p->n_in; i++) {
        int64_t stride[DT_MAX_DIMS], s = 1;
        for (int d = in[i].rank - 1; d >= 0; d--) stride[d] = s, s *= in[i].dims[d];
        int axis = 0;
        for (const char *c = terms[i]; *c; c++) {
            int lab[DT_MAX_DIMS], nl = 0;
            if (*c == '.') {
                for (int j = 0; j < ell[i]; j++) lab[nl++] = E - ell[i] + j;
                c += 2;
            } else {
                int k = letter_id(*c);
                count[k]++;
                if (id_of[k] < 0) {
                    if (p->n_labels >= DT_EINSUM_MAX_LABELS)
                        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "equation '%s' has too many labels", eq);
                    id_of[k] = p->n_labels++;
                    p->size[id_of[k]] = 1;
                }
                lab[nl++] = id_of[k];
            }
            for (int j = 0; j < nl; j++, axis++) {
                int64_t d = in[i].dims[axis];
                int l = lab[j];
                if (d != 1) {
                    if (p->size[l] != 1 && p->size[l] != d)
                        return dt_fail(DUCTILE_ERR_SHAPE, "equation '%s': dim %d of input %d is %lld; the label has size %lld",
                                       eq, axis, i, (long long)d, (long long)p->size[l]);
                    p->size[l] = d;
                    p->stride[i][l] += stride[axis];
                }
            }
        }
    }
    /* A label seen with size 1 in one input and d in another: strides of size-1 dims are 0. */
    p->out_rank = 0;
    if (has_out) {
        for (const char *c = terms[nt - 1]; *c; c++) {
            if (p->out_rank >= DT_MAX_DIMS) return dt_fail(DUCTILE_ERR_UNSUPPORTED, "output rank too large");
            if (*c == '.') {
                for (int j = 0; j < E; j++) p->out_label[p->out_rank++] = j;
                c += 2;
                continue;
            }
            int k = letter_id(*c);
            if (k < 0 || id_of[k] < 0)
                return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "equation '%s': output label '%c' is in no input", eq, *c);
            p->out_label[p->out_rank++] = id_of[k];
        }
    } else {
        for (int j = 0; j < E; j++) p->out_label[p->out_rank++] = j;
        for (int k = 0; k < 52; k++) {
            int kk = k < 26 ? 26 + k : k - 26; /* numpy sorts uppercase before lowercase */
            if (count[kk] == 1) {
                if (p->out_rank >= DT_MAX_DIMS) return dt_fail(DUCTILE_ERR_UNSUPPORTED, "output rank too large");
                p->out_label[p->out_rank++] = id_of[kk];
            }
        }
    }
    return DUCTILE_OK;
}

ductile_status dt_seq_infer_einsum(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    dt_einsum_plan p;
    DT_TRY(dt_einsum_plan_get(L, in, &p));
    memset(&out[0], 0, sizeof out[0]);
    out[0].dtype = in[0].dtype;
    out[0].rank = p.out_rank;
    for (int i = 0; i < p.out_rank; i++) out[0].dims[i] = p.size[p.out_label[i]];
    return DUCTILE_OK;
}
