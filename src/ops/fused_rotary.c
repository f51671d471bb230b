/* FusedRotary (ops/fused.h; made by builder/fuse_rotary.c): X's last dim even, COS and SIN
 * float like X and broadcasting to it with that dim equal. */
#include "ops/families.h"
#include "ops/fused.h"
#include "core/status.h"

#include <stdio.h>

ductile_status dt_frot_check(const ductile_layer *L)
{
    return dt_check_arity(L, 3, 3, 1, 1, DT_INPUT_NAMES("X", "COS", "SIN"));
}

ductile_status dt_frot_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    const dt_view *x = &in[DT_FROT_X];
    DT_TRY(dt_want_float(in, DT_FROT_X, "X", -1));
    if (x->rank < 1 || x->dims[x->rank - 1] % 2)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 (X) has rank %d and last dim %lld; expected an even last dim",
                       x->rank, x->rank < 1 ? 0LL : (long long)x->dims[x->rank - 1]);
    for (int i = DT_FROT_COS; i <= DT_FROT_SIN; i++) {
        const char *name = i == DT_FROT_COS ? "COS" : "SIN";
        DT_TRY(dt_want_float(in, i, name, DT_FROT_X));
        int64_t st[DT_MAX_DIMS];
        if (!dt_fused_layernorm_strides(x, x->rank - 1, &in[i], st)) {
            char sr[160], sx[160];
            dt_format_dims(sr, sizeof sr, in[i].dims, in[i].rank, NULL);
            dt_format_dims(sx, sizeof sx, x->dims, x->rank, NULL);
            return dt_fail(DUCTILE_ERR_SHAPE, "input %d (%s) has shape %s; expected one that broadcasts to X's %s with "
                           "the last dim equal", i, name, sr, sx);
        }
    }
    out[0] = *x;
    out[0].data = NULL;
    return DUCTILE_OK;
}
