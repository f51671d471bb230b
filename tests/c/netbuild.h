/* Building small networks by hand for the fusion tests (test_fuse*.c): float32 tensors and
 * layers named in order, attributes in the network's arena. One network at a time (`net`). */
#ifndef DT_TEST_NETBUILD_H
#define DT_TEST_NETBUILD_H

#include "graph/network.h"

#include <stdio.h>
#include <string.h>

static ductile_network *net;
static int counter;
static int layer_opset = 20;    /* the opset of the layers `layer` adds */

static inline void new_net(void)
{
    dt_network_delete(net);
    dt_network_new(&net);
}

static inline ductile_tensor *tensor(int rank, const int64_t *dims, const void *data)
{
    char name[32];
    snprintf(name, sizeof name, "t%d", counter++);
    ductile_tensor *t = dt_network_add_tensor(net, name);
    t->dtype = DUCTILE_FLOAT32;
    t->rank = rank;
    for (int i = 0; i < rank; i++) t->dims[i] = dims[i];
    t->data = data;
    if (data) t->nbytes = sizeof(float) * (size_t)dt_tensor_count(t);
    return t;
}

static inline ductile_layer *layer(const char *op, int n_in, int n_attr)
{
    char name[32];
    snprintf(name, sizeof name, "l%d", counter++);
    ductile_layer *L = dt_network_add_layer(net, op, name, n_in, 1, n_attr);
    L->opset = layer_opset;
    L->n_attr = 0;
    return L;
}

static inline dt_attr *attr(ductile_layer *L, const char *name, int type)
{
    dt_attr *a = &L->attrs[L->n_attr++];
    memset(a, 0, sizeof *a);
    a->name = name;
    a->type = type;
    return a;
}

static inline void set_ints(ductile_layer *L, const char *name, const int64_t *v, int n)
{
    dt_attr *a = attr(L, name, DT_ATTR_INTS);
    a->n = n;
    a->ints = dt_arena_memdup(&net->arena, v, sizeof *v * (size_t)n);
}

static inline void set_string(ductile_layer *L, const char *name, const char *v)
{
    dt_attr *a = attr(L, name, DT_ATTR_STRING);
    a->s = v;
    a->s_len = strlen(v);
}

/* How many layers of `net` have op type op. */
static inline int count_op(const char *op)
{
    int n = 0;
    for (int l = 0; l < net->n_layers; l++) n += !strcmp(net->layers[l]->op_type, op);
    return n;
}

#endif
