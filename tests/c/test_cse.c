/* The common-subexpression pass (builder/cse.c) on hand-built networks: repeated layers over
 * the same tensors or over equal constants merge (a repeated chain whole, its readers rewired),
 * and what must stay does: other constants or attributes, random ops, training Dropout, other
 * domains, a layer whose output is a network output (an earlier one may stand for it). */
#include "testutil.h"
#include "netbuild.h"

#include "builder/passes.h"
#include "core/status.h"

#include <string.h>

static const float two[4] = {2, 2, 2, 2}, two_again[4] = {2, 2, 2, 2}, three[4] = {2, 2, 2, 3};
static const int64_t four = 4;

static ductile_layer *unary(const char *op, ductile_tensor *x)
{
    ductile_layer *L = layer(op, 1, 2);
    L->in[0] = x;
    L->out[0] = tensor(-1, NULL, NULL);
    return L;
}

static ductile_layer *binary(const char *op, ductile_tensor *a, ductile_tensor *b)
{
    ductile_layer *L = layer(op, 2, 1);
    L->in[0] = a;
    L->in[1] = b;
    L->out[0] = tensor(-1, NULL, NULL);
    return L;
}

static ductile_tensor *flag(const unsigned char *v)
{
    ductile_tensor *t = tensor(0, NULL, NULL);
    t->dtype = DUCTILE_BOOL;
    t->data = v;
    t->nbytes = 1;
    return t;
}

static ductile_layer *dropout(ductile_tensor *x, ductile_tensor *ratio, ductile_tensor *train)
{
    ductile_layer *L = layer("Dropout", 3, 0);
    L->in[0] = x;
    L->in[1] = ratio;
    L->in[2] = train;
    L->out[0] = tensor(-1, NULL, NULL);
    return L;
}

static bool alive(const ductile_layer *L)
{
    for (int l = 0; l < net->n_layers; l++)
        if (net->layers[l] == L) return l == L->index;
    return false;
}

static void test_repeated_chains_merge(void)
{
    new_net();
    ductile_tensor *x = tensor(1, &four, NULL);
    CHECK_EQ_INT(dt_network_add_input(net, x), DUCTILE_OK);
    /* Mul(x, 2) -> Relu twice, the second over a constant of its own with equal bytes. */
    ductile_layer *m1 = binary("Mul", x, tensor(1, &four, two));
    ductile_layer *r1 = unary("Relu", m1->out[0]);
    ductile_layer *m2 = binary("Mul", x, tensor(1, &four, two_again));
    ductile_layer *r2 = unary("Relu", m2->out[0]);
    /* Other bytes, another attribute value: distinct. */
    ductile_layer *m3 = binary("Mul", x, tensor(1, &four, three));
    ductile_layer *a1 = unary("LeakyRelu", x);
    attr(a1, "alpha", DT_ATTR_FLOAT)->f = 0.1f;
    ductile_layer *a2 = unary("LeakyRelu", x);
    attr(a2, "alpha", DT_ATTR_FLOAT)->f = 0.2f;
    ductile_layer *a3 = unary("LeakyRelu", x);
    attr(a3, "alpha", DT_ATTR_FLOAT)->f = 0.1f;
    /* Random and other-domain layers never merge. */
    ductile_layer *n1 = unary("RandomNormalLike", x), *n2 = unary("RandomNormalLike", x);
    static const unsigned char yes = 1;
    ductile_tensor *ratio = tensor(0, NULL, (const float[]){0.5f}), *train = flag(&yes);
    ductile_layer *d1 = dropout(x, ratio, train), *d2 = dropout(x, ratio, train);
    ductile_layer *c1 = unary("Relu", x), *c2 = unary("Relu", x);
    c1->domain = c2->domain = "com.example";
    /* A reader of both chains, and a repeat that is a network output. */
    ductile_layer *sum = binary("Add", r1->out[0], r2->out[0]);
    ductile_layer *r3 = unary("Relu", m1->out[0]);
    CHECK_EQ_INT(dt_network_add_output(net, sum->out[0]), DUCTILE_OK);
    CHECK_EQ_INT(dt_network_add_output(net, r3->out[0]), DUCTILE_OK);
    ductile_layer *leaky = binary("Add", a2->out[0], a3->out[0]);
    ductile_layer *outs[] = {m3, leaky, a1, n1, n2, d1, d2, c1, c2};
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++)
        CHECK_EQ_INT(dt_network_add_output(net, outs[i]->out[0]), DUCTILE_OK);
    int before = net->n_layers, merged = -1;
    CHECK_EQ_INT(dt_pass_cse(net, &merged), DUCTILE_OK);
    /* m2 -> m1, r2 -> r1 (its input rewired first), a3 -> a1: nothing else. */
    CHECK_EQ_INT(merged, 3);
    CHECK_EQ_INT(net->n_layers, before - 3);
    CHECK(alive(m1) && alive(r1) && alive(a1) && !alive(m2) && !alive(r2) && !alive(a3));
    CHECK(alive(m3) && alive(a2) && alive(n1) && alive(n2) && alive(d1) && alive(d2) && alive(c1) && alive(c2));
    CHECK(sum->in[0] == r1->out[0] && sum->in[1] == r1->out[0]);
    CHECK(leaky->in[0] == a2->out[0] && leaky->in[1] == a1->out[0]);
    /* r3 repeats r1 but its output is the network's: it stays. */
    CHECK(alive(r3));
    for (int l = 0; l < net->n_layers; l++) CHECK_EQ_INT(net->layers[l]->index, l);
    /* Nothing left: a second run merges nothing. */
    CHECK_EQ_INT(dt_pass_cse(net, &merged), DUCTILE_OK);
    CHECK_EQ_INT(merged, 0);
}

/* A Dropout whose training_mode is a constant false is the identity: those merge. */
static void test_inference_dropout_merges(void)
{
    new_net();
    ductile_tensor *x = tensor(1, &four, NULL);
    CHECK_EQ_INT(dt_network_add_input(net, x), DUCTILE_OK);
    static const unsigned char no = 0;
    ductile_tensor *ratio = tensor(0, NULL, (const float[]){0.5f}), *train = flag(&no);
    ductile_layer *d[2] = {dropout(x, ratio, train), dropout(x, ratio, train)};
    ductile_layer *sum = binary("Add", d[0]->out[0], d[1]->out[0]);
    CHECK_EQ_INT(dt_network_add_output(net, sum->out[0]), DUCTILE_OK);
    int merged = -1;
    CHECK_EQ_INT(dt_pass_cse(net, &merged), DUCTILE_OK);
    CHECK_EQ_INT(merged, 1);
    CHECK(alive(d[0]) && !alive(d[1]) && sum->in[1] == d[0]->out[0]);
}

int main(void)
{
    test_repeated_chains_merge();
    test_inference_dropout_merges();
    dt_network_delete(net);
    TEST_MAIN_END();
}
