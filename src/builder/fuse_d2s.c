/* A channels-last FusedConv -> DepthToSpace as one FusedConv with attribute depth_to_space
 * (ops/fused.h), where the backend's conv kernel writes the DepthToSpace's layout itself
 * (dt_backend.writes_d2s). Superres ends conv (32 -> 9, NHWC) -> DepthToSpace (blocksize 3,
 * the layout pass's "NHWC" reading, the precision pass's folded Cast to float32): a separate
 * kernel and a pass over the network's largest tensor for what is a permutation of the conv's
 * stores. Runs after the precision pass (the layers it folds are those precision left: half
 * inputs, a float32 `to`), on the network the engine is then written from.
 * On by default; DUCTILE_FUSE_CONV_D2S=0 keeps the DepthToSpace a layer (for comparisons).
 * Checked on the H200 (scripts/cuda_s19_d2s.sh, session 21: tests, memcheck 0 errors; superres
 * FP16 224x224 0.210 -> 0.123 ms in scripts/cuda_latency.py). */
#include "builder/optimize.h"
#include "core/status.h"
#include "ops/fused.h"

#include <stdlib.h>
#include <string.h>

/* The layer of net writing t, and how many layer inputs read t. */
static ductile_layer *dt_writer(const ductile_network *net, const ductile_tensor *t, int *readers)
{
    ductile_layer *w = NULL;
    *readers = 0;
    for (int i = 0; i < net->n_layers; i++) {
        ductile_layer *L = net->layers[i];
        if (!L) continue;
        for (int k = 0; k < L->n_out; k++)
            if (L->out[k] == t) w = L;
        for (int k = 0; k < L->n_in; k++)
            if (L->in[k] == t) (*readers)++;
    }
    return w;
}

ductile_status dt_pass_fuse_d2s(ductile_network *net, const dt_backend *be, int *fused)
{
    *fused = 0;
    const char *off = getenv("DUCTILE_FUSE_CONV_D2S");
    if (!be || !be->writes_d2s || (off && !strcmp(off, "0"))) return DUCTILE_OK;
    for (int i = 0; i < net->n_layers; i++) {
        ductile_layer *D = net->layers[i];
        if (strcmp(D->op_type, "DepthToSpace") || strcmp(D->domain, "") || D->n_in != 1 || D->n_out != 1 || !D->in[0] ||
            !D->out[0] || strcmp(dt_attr_string(D, "layout", ""), "NHWC"))
            continue;
        ductile_tensor *t = D->in[0];
        int readers = 0;
        ductile_layer *F = dt_writer(net, t, &readers);
        if (!F || readers != 1 || t->is_output || strcmp(F->op_type, "FusedConv") || strcmp(F->domain, "ductile") ||
            F->n_out != 1 || !dt_fused_conv_nhwc(F) || dt_fused_conv_d2s(F, NULL) || dt_attr_find(F, "to") ||
            !be->writes_d2s(F, D))
            continue;
        const char *mode = dt_attr_string(D, "mode", "DCR");
        dt_attr add[3] = {
            {.name = "depth_to_space", .type = DT_ATTR_INT, .i = dt_attr_int(D, "blocksize", 0)},
            {.name = "d2s_mode", .type = DT_ATTR_STRING, .s = mode, .s_len = strlen(mode)},
            {.name = "to", .type = DT_ATTR_INT, .i = dt_attr_int(D, "to", t->dtype)},
        };
        DT_TRY(dt_layer_add_attrs(net, F, add, 3));
        ductile_tensor *y = D->out[0];
        F->out[0] = y;
        y->producer = F;
        net->layers[i] = NULL;
        (*fused)++;
    }
    int n = 0;
    for (int i = 0; i < net->n_layers; i++)
        if (net->layers[i]) {
            net->layers[n] = net->layers[i];
            net->layers[n]->index = n;
            n++;
        }
    net->n_layers = n;
    return DUCTILE_OK;
}
