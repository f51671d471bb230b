/* Resize -> Conv 1x1 as Conv 1x1 -> Resize (optimize.h dt_pass_commute_resize).
 *
 * A nearest or linear Resize of the spatial axes makes each output a combination of input
 * pixels whose weights sum to 1 (nearest: one pixel), channel by channel; a 1x1 conv mixes the
 * channels of each pixel: the two commute, conv(resize(x)) = W resize(x) + b = resize(W x + b).
 * Where the conv has fewer output than input channels, the Resize then moves fewer channels,
 * and an upscaling one leaves the conv fewer pixels: LR-ASPP's head (torchvision's
 * segmentation models, seg_lraspp) resizes 128 channels 2x and then convolves them down to
 * the classes; at 1024x1024 the Resize (8.4 MB written) and that conv took 1.27 ms of 66 on 1
 * thread (--bf16). Same values up to float rounding (the sums in another order; a bias passes
 * through the lerps unchanged, b + (b - b) w = b).
 *
 * Taken when: Resize (opset 11+) nearest or linear, no antialias, not tf_crop_and_resize (its
 * extrapolated pixels are not combinations), keep_aspect_ratio_policy stretch, its output read
 * by the Conv alone and not a network output; the Conv 1x1, group 1, strides and dilations 1,
 * no padding, constant weights and bias, fewer output channels than input; the Resize leaves
 * N and C alone, which the pass proves from its inputs: an `axes` attribute of spatial axes
 * only (the sizes or scales given are for those), constant scales [1, 1, ...], constant sizes
 * [N, C, ...] with X's N and C known, or sizes Concat(Slice(Shape(X), 0, 2), S) as PyTorch
 * exports interpolate(size=...). The rewritten Resize takes the spatial part alone with axes
 * [2, 3]. Not where the dims known now show a downscale (the conv would then run on more
 * pixels). */
#include "builder/optimize.h"
#include "core/alloc.h"
#include "core/status.h"

#include <stdlib.h>
#include <string.h>

static const int64_t dt_cr_spatial[2] = {2, 3};

/* The int64 value of a constant 1-D tensor at k, or -1. */
static int64_t dt_cr_const_i64(const ductile_tensor *t, int64_t k)
{
    if (!t || !t->data || t->dtype != DUCTILE_INT64 || t->rank != 1 || k >= t->dims[0]) return -1;
    return ((const int64_t *)t->data)[k];
}

/* A 1x1 conv of constant weights [M, C, 1, 1] (M < C) and bias, one group, stride and
 * dilation 1, no padding, reading y as its only dynamic input. */
static bool dt_cr_conv(const ductile_layer *C, const ductile_tensor *y)
{
    if (strcmp(C->op_type, "Conv") || strcmp(C->domain, "") || C->n_in < 2 || C->n_in > 3 || C->n_out != 1 ||
        C->in[0] != y || !C->out[0])
        return false;
    const ductile_tensor *w = C->in[1], *b = C->n_in > 2 ? C->in[2] : NULL;
    if (!w || !w->data || w->dtype != DUCTILE_FLOAT32 || w->rank != 4 || w->dims[2] != 1 || w->dims[3] != 1 ||
        w->dims[0] < 1 || w->dims[0] >= w->dims[1] || (b && !b->data))
        return false;
    const char *pad = dt_attr_string(C, "auto_pad", "NOTSET");
    return dt_attr_int(C, "group", 1) == 1 && (!strcmp(pad, "NOTSET") || !strcmp(pad, "VALID")) &&
           dt_attr_ints_all(C, "strides", 1) && dt_attr_ints_all(C, "dilations", 1) && dt_attr_ints_all(C, "pads", 0) &&
           dt_attr_ints_all(C, "kernel_shape", 1);
}

/* The Resize's sizes as Concat(Slice(Shape(x), 0, 2), S): S, else NULL. */
static ductile_tensor *dt_cr_torch_sizes(const ductile_tensor *sizes, const ductile_tensor *x)
{
    const ductile_layer *P = sizes ? sizes->producer : NULL;
    if (!P || strcmp(P->op_type, "Concat") || strcmp(P->domain, "") || P->n_in != 2 || dt_attr_int(P, "axis", -1) != 0)
        return NULL;
    const ductile_tensor *head = P->in[0];
    ductile_tensor *tail = P->in[1];
    const ductile_layer *S = head ? head->producer : NULL;
    /* tail's dims and dtype may not be inferred yet: a valid sizes of X's rank 4 after the two
     * values of the head has two more */
    if (!tail || (tail->rank >= 0 && tail->rank != 1) || (tail->rank == 1 && tail->dims[0] >= 0 && tail->dims[0] != 2) ||
        !S ||
        strcmp(S->op_type, "Slice") || strcmp(S->domain, "") || S->n_in < 3 || S->opset < 10)
        return NULL;
    const ductile_tensor *axes = S->n_in > 3 ? S->in[3] : NULL, *steps = S->n_in > 4 ? S->in[4] : NULL;
    if (dt_cr_const_i64(S->in[1], 0) != 0 || S->in[1]->dims[0] != 1 || dt_cr_const_i64(S->in[2], 0) != 2 ||
        S->in[2]->dims[0] != 1 || (axes && dt_cr_const_i64(axes, 0) != 0) || (steps && dt_cr_const_i64(steps, 0) != 1))
        return NULL;
    const ductile_layer *Sh = S->in[0] ? S->in[0]->producer : NULL;
    if (!Sh || strcmp(Sh->op_type, "Shape") || strcmp(Sh->domain, "") || Sh->in[0] != x || dt_attr_find(Sh, "start") ||
        dt_attr_find(Sh, "end"))
        return NULL;
    return tail;
}

static void dt_cr_release(void *ptr, size_t n)
{
    (void)n;
    dt_free(ptr);
}

/* A new constant of the n values at v (n * es bytes) of dtype, named after `like`. */
static ductile_tensor *dt_cr_const(ductile_network *net, const ductile_tensor *like, int dtype, const void *v,
                                   int64_t n, size_t es)
{
    ductile_tensor *t = dt_network_add_named(net, like->name, "spatial");
    void *buf = t ? dt_aligned_alloc(64, (size_t)n * es) : NULL;
    if (!buf) return NULL;
    if (dt_network_keep(net, buf, (size_t)n * es, dt_cr_release)) {
        dt_free(buf);
        return NULL;
    }
    memcpy(buf, v, (size_t)n * es);
    t->dtype = dtype;
    t->rank = 1;
    t->dims[0] = n;
    t->data = buf;
    t->nbytes = (size_t)n * es;
    return t;
}

/* What takes the place of R's scales and sizes (index 2 or 3 in *slot, the tensor in *with)
 * and whether `axes` [2, 3] must be added; false where R may change N or C. */
static ductile_status dt_cr_spatial_only(ductile_network *net, const ductile_layer *R, const ductile_tensor *x,
                                         int64_t cin, bool *ok, int *slot, ductile_tensor **with, bool *add_axes)
{
    *ok = false, *slot = -1, *with = NULL, *add_axes = false;
    int64_t nax = 0;
    const int64_t *ax = dt_attr_ints(R, "axes", &nax);
    if (ax) {
        for (int64_t k = 0; k < nax; k++)
            if (!((ax[k] >= 2 && ax[k] < 4) || (ax[k] >= -2 && ax[k] < 0))) return DUCTILE_OK;
        *ok = true;
        return DUCTILE_OK;
    }
    ductile_tensor *scales = R->n_in > 2 ? R->in[2] : NULL, *sizes = R->n_in > 3 ? R->in[3] : NULL;
    if (scales && scales->rank == 1 && scales->dims[0] == 0) scales = NULL;   /* an empty "not given" */
    if (sizes && sizes->rank == 1 && sizes->dims[0] == 0) sizes = NULL;
    if (sizes && !scales) {
        ductile_tensor *tail = dt_cr_torch_sizes(sizes, x);
        if (!tail && sizes->data && sizes->dtype == DUCTILE_INT64 && sizes->rank == 1 && sizes->dims[0] == 4 &&
            x->dims[0] >= 0 && dt_cr_const_i64(sizes, 0) == x->dims[0] && dt_cr_const_i64(sizes, 1) == cin) {
            tail = dt_cr_const(net, sizes, DUCTILE_INT64, (const int64_t *)sizes->data + 2, 2, sizeof(int64_t));
            if (!tail) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory moving Resize '%s'", R->name);
        }
        if (!tail) return DUCTILE_OK;
        *slot = 3, *with = tail;
    } else if (scales && !sizes) {
        const float *s = scales->data;
        if (!s || scales->dtype != DUCTILE_FLOAT32 || scales->rank != 1 || scales->dims[0] != 4 || s[0] != 1.0f ||
            s[1] != 1.0f)
            return DUCTILE_OK;
        *with = dt_cr_const(net, scales, DUCTILE_FLOAT32, s + 2, 2, sizeof(float));
        if (!*with) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory moving Resize '%s'", R->name);
        *slot = 2;
    } else {
        return DUCTILE_OK;
    }
    *ok = *add_axes = true;
    return DUCTILE_OK;
}

/* Whether the dims known now show R's output smaller than its input along an axis. */
static bool dt_cr_downscale(const ductile_tensor *x, const ductile_tensor *y)
{
    for (int a = 2; a < 4; a++)
        if (x->dims[a] >= 0 && y->dims[a] >= 0 && y->dims[a] < x->dims[a]) return true;
    return false;
}

ductile_status dt_pass_commute_resize(ductile_network *net, int *moved)
{
    *moved = 0;
    int nt = net->n_tensors;   /* the tensors counted (constants made below come after) */
    int *uses = dt_calloc((size_t)nt + 1, sizeof *uses);
    if (!uses) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory counting the readers of %d tensors", net->n_tensors);
    for (int l = 0; l < net->n_layers; l++)
        for (int k = 0; k < net->layers[l]->n_in; k++)
            if (net->layers[l]->in[k] && net->layers[l]->in[k]->index >= 0) uses[net->layers[l]->in[k]->index]++;
    ductile_status s = DUCTILE_OK;
    for (int i = 0; i < net->n_layers && !s; i++) {
        ductile_layer *R = net->layers[i];
        if (strcmp(R->op_type, "Resize") || strcmp(R->domain, "") || R->opset < 11 || R->n_in < 1 || R->n_out != 1)
            continue;
        ductile_tensor *x = R->in[0], *y = R->out[0];
        const char *mode = dt_attr_string(R, "mode", "nearest");
        if (!x || !y || y->is_output || y->index < 0 || y->index >= nt || uses[y->index] != 1 || x->rank != 4 ||
            (strcmp(mode, "nearest") && strcmp(mode, "linear")) || dt_attr_int(R, "antialias", 0) != 0 ||
            !strcmp(dt_attr_string(R, "coordinate_transformation_mode", "half_pixel"), "tf_crop_and_resize") ||
            strcmp(dt_attr_string(R, "keep_aspect_ratio_policy", "stretch"), "stretch") || dt_cr_downscale(x, y))
            continue;
        int j = i + 1;
        while (j < net->n_layers && !dt_cr_conv(net->layers[j], y)) j++;
        if (j == net->n_layers) continue;
        ductile_layer *C = net->layers[j];
        const ductile_tensor *w = C->in[1];
        if (x->dims[1] >= 0 && x->dims[1] != w->dims[1]) continue;
        bool ok, add_axes;
        int slot;
        ductile_tensor *with;
        s = dt_cr_spatial_only(net, R, x, w->dims[1], &ok, &slot, &with, &add_axes);
        if (s || !ok) continue;
        if (add_axes) {
            dt_attr a = {.name = "axes", .type = DT_ATTR_INTS, .n = 2, .ints = dt_cr_spatial};
            s = dt_layer_add_attrs(net, R, &a, 1);
            if (s) break;
        }
        if (slot >= 0) {
            ductile_tensor *old = R->in[slot];
            R->in[slot] = with;
            if (old && old->index >= 0 && old->index < nt) uses[old->index]--;
            if (with->index >= 0 && with->index < nt) uses[with->index]++;
            if (slot == 2 && R->n_in > 3) R->in[3] = NULL;
        }
        /* Conv(x) -> y, then Resize(y) -> the conv's old output, in each other's place: the
         * conv reads x and constants (there before i), the Resize y and inputs there before i;
         * the layers between read neither y nor the conv's output. */
        ductile_tensor *z = C->out[0];
        C->in[0] = x;
        C->out[0] = y;
        R->in[0] = y;
        R->out[0] = z;
        y->producer = C;
        z->producer = R;
        y->rank = 4;
        for (int a = 0; a < 4; a++) {
            y->dims[a] = a == 1 ? w->dims[0] : x->dims[a];
            y->dim_sym[a] = a == 1 ? NULL : x->dim_sym[a];
            y->overridden[a] = false;
            y->declared[a] = -1;
        }
        net->layers[i] = C, C->index = i;
        net->layers[j] = R, R->index = j;
        (*moved)++;
    }
    dt_free(uses);
    return s;
}
