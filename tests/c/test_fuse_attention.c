/* Attention fusion: the FusedAttention kernel against the unfused Mul, Mul, MatMul, Add,
 * Softmax, IsNaN, Where and MatMul kernels (bit for bit) at odd sizes, with masks of every
 * broadcast form and fully masked rows, serial and on a pool; its shape errors; and the
 * fusion pass on a hand-built chain as BERT exporters write it, with the near misses it must
 * leave alone. */
#include "testutil.h"
#include "refconv.h"
#include "netbuild.h"

#include "backend/cpu/kernels.h"
#include "builder/optimize.h"
#include "core/alloc.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "ops/families.h"
#include "ops/fused.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static dt_view view(int rank, const int64_t *dims, void *data, int dtype)
{
    dt_view v = {dtype, rank, {0}, data};
    for (int i = 0; i < rank; i++) v.dims[i] = dims[i];
    return v;
}

static ductile_status run1(const char *op, const ductile_layer *L, const dt_view *in, dt_view *out, dt_pool *pool)
{
    dt_exec ex = {.pool = pool};
    dt_cpu_run_fn fn = dt_cpu_kernel_find(op);
    return fn ? fn(L, in, out, &ex) : DUCTILE_ERR_INTERNAL;
}

/* ---- the kernel ---- */

typedef struct att_case {
    int64_t b, h, s, d, l, dv;
    int mask;           /* 0 none, 1 [b,1,1,l], 2 [b,1,s,l], 3 [s,l], 4 [b,h,s,1] */
    int fill;           /* 0 random 0 / -inf with whole rows masked, else one of FILL_* */
} att_case;

/* Masks whose rows end in keys the kernel leaves out (dead keys, fused_attention.c): causal
 * (query i of s sees the keys up to i + l - s) with float32's lowest as Hugging Face writes it,
 * or -inf; right padding (image x keeps l - 5 - 7 x keys, -1e9 past them); and a causal mask
 * at only -150 with Q scaled 400 times, so that the masked keys' scores (hundreds) make them
 * live: the bound must keep them, their weight is much of the softmax. FILL_NAN_V: causal,
 * with V's last key NaN: the rows of a block that leaves that key out equal the unfused
 * chain's with that key 0 (the unfused chain's e^-87 weight times NaN would make them NaN),
 * the others are NaN; the first 8 rows (at least one block) must be of the first kind. */
enum { FILL_CAUSAL = 1, FILL_CAUSAL_INF, FILL_PAD, FILL_NEAR, FILL_NAN_V };

static const att_case cases[] = {
    {1, 4, 16, 64, 16, 64, 1, 0},      /* bert_small at seq 16 */
    {3, 2, 7, 5, 9, 3, 2, 0},          /* odd everything */
    {2, 3, 37, 16, 37, 16, 3, 0},      /* more than 32 rows: packed A */
    {2, 2, 5, 8, 300, 6, 4, 0},        /* more than one K block in the second product */
    {1, 1, 1, 3, 1, 2, 0, 0},          /* one of everything, no mask */
    {4, 4, 33, 24, 33, 24, 1, 0},      /* enough work for one product per thread */
    {2, 3, 13, 8, 13, 8, 1, 0},        /* hidden 24 in 3 heads, seq 13: K packed 8 keys + a tail */
    {1, 3, 7, 8, 53, 8, 2, 0},         /* 53 keys: a full 48-key panel and a 5-key one */
    {1, 2, 139, 8, 141, 8, 2, 0},      /* more than DT_FA_ROWS (48) query rows: three blocks */
    {2, 1, 257, 5, 130, 3, 4, 0},      /* three blocks, the last of one row; a mask per query row */
    {1, 2, 139, 8, 141, 8, 2, FILL_CAUSAL},       /* causal, 2 past keys: blocks of 48 to 141 keys */
    {2, 3, 100, 64, 100, 64, 3, FILL_CAUSAL_INF}, /* causal with -inf, a mask shared by the batch */
    {3, 2, 120, 16, 150, 16, 1, FILL_PAD},        /* right padding: 145, 138, 131 keys */
    {1, 2, 130, 16, 130, 16, 2, FILL_NEAR},       /* masked keys too strong to leave out */
    {2, 2, 96, 16, 96, 8, 2, FILL_NAN_V},         /* left-out keys contribute exactly 0 */
    {1, 2, 5, 4, 0, 3, 2, FILL_CAUSAL},           /* no keys: zeros, no mask element read */
};

static int mask_dims(const att_case *c, int64_t *md)
{
    switch (c->mask) {
    case 1: md[0] = c->b, md[1] = 1, md[2] = 1, md[3] = c->l; return 4;
    case 2: md[0] = c->b, md[1] = 1, md[2] = c->s, md[3] = c->l; return 4;
    case 3: md[0] = c->s, md[1] = c->l; return 2;
    case 4: md[0] = c->b, md[1] = c->h, md[2] = c->s, md[3] = 1; return 4;
    default: return 0;
    }
}

static int64_t count_of(int rank, const int64_t *d)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= d[i];
    return n;
}

/* The unfused chain, each layer by its own kernel. */
static ductile_status run_unfused(const att_case *c, const float *q, const float *kt, const float *v,
                                  const float *mask, float qs, float ks, float *y, dt_pool *pool)
{
    new_net();
    int64_t qd[4] = {c->b, c->h, c->s, c->d}, kd[4] = {c->b, c->h, c->d, c->l}, vd[4] = {c->b, c->h, c->l, c->dv},
            sd[4] = {c->b, c->h, c->s, c->l}, md[4];
    int mr = mask_dims(c, md);
    int64_t ns = count_of(4, sd), nq = count_of(4, qd), nk = count_of(4, kd);
    float *q2 = malloc(sizeof(float) * (size_t)nq), *k2 = malloc(sizeof(float) * (size_t)nk),
          *s = malloc(sizeof(float) * (size_t)ns), *p = malloc(sizeof(float) * (size_t)ns);
    uint8_t *isn = malloc((size_t)ns);
    static float zero = 0.0f;
    float qsv = qs, ksv = ks;
    ductile_status st;
    ductile_layer *mul = layer("Mul", 2, 0), *mm = layer("MatMul", 2, 0), *add = layer("Add", 2, 0),
                  *sm = layer("Softmax", 1, 0), *in_ = layer("IsNaN", 1, 0), *wh = layer("Where", 3, 0);
    dt_view a[3], o;
    a[0] = view(4, qd, (void *)q, DUCTILE_FLOAT32), a[1] = view(0, NULL, &qsv, DUCTILE_FLOAT32);
    o = view(4, qd, q2, DUCTILE_FLOAT32);
    if ((st = run1("Mul", mul, a, &o, pool))) goto out;
    a[0] = view(4, kd, (void *)kt, DUCTILE_FLOAT32), a[1] = view(0, NULL, &ksv, DUCTILE_FLOAT32);
    o = view(4, kd, k2, DUCTILE_FLOAT32);
    if ((st = run1("Mul", mul, a, &o, pool))) goto out;
    a[0] = view(4, qd, q2, DUCTILE_FLOAT32), a[1] = view(4, kd, k2, DUCTILE_FLOAT32);
    o = view(4, sd, s, DUCTILE_FLOAT32);
    if ((st = run1("MatMul", mm, a, &o, pool))) goto out;
    if (mr) {
        a[0] = o, a[1] = view(mr, md, (void *)mask, DUCTILE_FLOAT32);
        if ((st = run1("Add", add, a, &o, pool))) goto out;
    }
    a[0] = o;
    o = view(4, sd, p, DUCTILE_FLOAT32);
    if ((st = run1("Softmax", sm, a, &o, pool))) goto out;
    a[0] = o;
    dt_view b = view(4, sd, isn, DUCTILE_BOOL);
    if ((st = run1("IsNaN", in_, a, &b, pool))) goto out;
    a[0] = b, a[1] = view(0, NULL, &zero, DUCTILE_FLOAT32), a[2] = o;
    if ((st = run1("Where", wh, a, &o, pool))) goto out;
    a[0] = o, a[1] = view(4, vd, (void *)v, DUCTILE_FLOAT32);
    int64_t yd[4] = {c->b, c->h, c->s, c->dv};
    o = view(4, yd, y, DUCTILE_FLOAT32);
    st = run1("MatMul", mm, a, &o, pool);
out:
    free(q2), free(k2), free(s), free(p), free(isn);
    return st;
}

/* dst[b, j, i, k] = src[b, i, j, k] over [n0, n1, n2, n3] (dims of src): the heads'
 * Transpose, done here by hand. */
static float *swap12(const float *src, int64_t n0, int64_t n1, int64_t n2, int64_t n3)
{
    float *dst = malloc(sizeof(float) * (size_t)(n0 * n1 * n2 * n3));
    for (int64_t a = 0; a < n0; a++)
        for (int64_t i = 0; i < n1; i++)
            for (int64_t j = 0; j < n2; j++)
                memcpy(dst + ((a * n2 + j) * n1 + i) * n3, src + ((a * n1 + i) * n2 + j) * n3, sizeof(float) * (size_t)n3);
    return dst;
}

/* [B, H, D, L] -> [B, L, H, D] */
static float *kt_to_k(const float *kt, int64_t b, int64_t h, int64_t d, int64_t l)
{
    float *k = malloc(sizeof(float) * (size_t)(b * h * d * l));
    for (int64_t x = 0; x < b; x++)
        for (int64_t y = 0; y < h; y++)
            for (int64_t z = 0; z < d; z++)
                for (int64_t t = 0; t < l; t++) k[((x * l + t) * h + y) * d + z] = kt[((x * h + y) * d + z) * l + t];
    return k;
}

/* Layouts: LAYOUT_BSHD: the fused layer reads Q, K, V as [B, S, H, D] and writes
 * [B, S, H, Dv]; the unfused chain is given the transposed tensors and its output transposed
 * back. LAYOUT_KROWS: it reads K [B, H, L, D] where the chain reads Kt. */
enum { LAYOUT_PLAIN, LAYOUT_BSHD, LAYOUT_KROWS, LAYOUTS };
static const char *const layout_names[LAYOUTS] = {"", "bshd", "krows"};
static bool run_case(const att_case *c, int layout, dt_pool *pool)
{
    const bool bshd = layout == LAYOUT_BSHD;
    int64_t qd[4] = {c->b, c->h, c->s, c->d}, kd[4] = {c->b, c->h, c->d, c->l}, vd[4] = {c->b, c->h, c->l, c->dv},
            md[4], yd[4] = {c->b, c->h, c->s, c->dv};
    int mr = mask_dims(c, md);
    int64_t nm = mr ? count_of(mr, md) : 0, ny = count_of(4, yd);
    float *q = rand_buf(count_of(4, qd)), *kt = rand_buf(count_of(4, kd)), *v = rand_buf(count_of(4, vd));
    float *mask = mr ? rand_buf(nm) : NULL;
    if (c->fill) {
        float dead = c->fill == FILL_CAUSAL || c->fill == FILL_NAN_V ? -FLT_MAX : c->fill == FILL_CAUSAL_INF ? -INFINITY
                   : c->fill == FILL_PAD    ? -1e9f
                                            : -150.0f;
        for (int64_t e = 0; e < nm; e++) {
            int64_t t = e % c->l, i = e / c->l % c->s, x = e / c->l;
            mask[e] = (c->fill == FILL_PAD ? t >= c->l - 5 - 7 * x : t > i + c->l - c->s) ? dead : 0.0f;
        }
        if (c->fill == FILL_NEAR)
            for (int64_t e = 0; e < count_of(4, qd); e++) q[e] *= 400.0f;
        if (c->fill == FILL_NAN_V)   /* 0 for the unfused chain, NaN for the kernel below */
            for (int64_t e = 0; e < count_of(4, vd); e++)
                if (e / c->dv % c->l == c->l - 1) v[e] = 0.0f;
    } else {
        /* 0 or -inf as exporters make it, with whole rows masked: their softmax is NaN, made 0. */
        for (int64_t i = 0; i < nm; i++) mask[i] = mask[i] < -0.3f ? -INFINITY : 0.0f;
        if (mr && c->mask != 4) for (int64_t t = 0; t < md[mr - 1]; t++) mask[t] = -INFINITY;
        if (c->mask == 4) mask[0] = -INFINITY;
    }
    float *y = malloc(sizeof(float) * (size_t)ny), *want = malloc(sizeof(float) * (size_t)ny);
    float *qp = NULL, *kp = NULL, *vp = NULL, *yl = NULL;
    bool ok = false;
    float qs = 0.3535533845424652f, ks = 0.3535533845424652f;
    if (run_unfused(c, q, kt, v, mask, qs, ks, want, pool)) {
        fprintf(stderr, "unfused: %s\n", ductile_last_error());
        goto out;
    }
    if (c->fill == FILL_NAN_V)
        for (int64_t e = 0; e < count_of(4, vd); e++)
            if (e / c->dv % c->l == c->l - 1) v[e] = NAN;
    if (bshd) {
        qp = swap12(q, c->b, c->h, c->s, c->d);
        kp = kt_to_k(kt, c->b, c->h, c->d, c->l);
        vp = swap12(v, c->b, c->h, c->l, c->dv);
        int64_t q2[4] = {c->b, c->s, c->h, c->d}, k2[4] = {c->b, c->l, c->h, c->d}, v2[4] = {c->b, c->l, c->h, c->dv};
        memcpy(qd, q2, sizeof q2), memcpy(kd, k2, sizeof k2), memcpy(vd, v2, sizeof v2);
        yl = want;
        want = swap12(yl, c->b, c->h, c->s, c->dv);
    }
    if (layout == LAYOUT_KROWS) {   /* K [b, h, l, d]: Kt's last two dims swapped */
        kp = malloc(sizeof(float) * (size_t)count_of(4, kd));
        for (int64_t x = 0; x < c->b * c->h; x++)
            for (int64_t z = 0; z < c->d; z++)
                for (int64_t t = 0; t < c->l; t++) kp[(x * c->l + t) * c->d + z] = kt[(x * c->d + z) * c->l + t];
        kd[2] = c->l, kd[3] = c->d;
    }
    new_net();
    ductile_layer *L = layer("FusedAttention", 4, 4);
    L->domain = "ductile";
    L->in[0] = tensor(4, qd, NULL), L->in[1] = tensor(4, kd, NULL), L->in[2] = tensor(4, vd, NULL);
    L->in[3] = mr ? tensor(mr, md, NULL) : NULL;
    L->attrs[0] = (dt_attr){.name = "q_scale", .type = DT_ATTR_FLOAT, .f = qs};
    L->attrs[1] = (dt_attr){.name = "k_scale", .type = DT_ATTR_FLOAT, .f = ks};
    L->attrs[2] = (dt_attr){.name = "nan_to_zero", .type = DT_ATTR_INT, .i = 1};
    L->attrs[3] = (dt_attr){.name = "layout", .type = DT_ATTR_STRING, .s = layout_names[layout],
                            .s_len = strlen(layout_names[layout])};
    L->n_attr = 4;
    dt_view in[4] = {view(4, qd, bshd ? qp : q, DUCTILE_FLOAT32), view(4, kd, kp ? kp : kt, DUCTILE_FLOAT32),
                     view(4, vd, bshd ? vp : v, DUCTILE_FLOAT32),
                     mr ? view(mr, md, mask, DUCTILE_FLOAT32) : (dt_view){.rank = -1}},
           out = {0};
    const dt_opdef *d = NULL;
    for (const dt_opdef *e = dt_ops_fused; e->op_type; e++)
        if (!strcmp(e->op_type, "FusedAttention")) d = e;
    if (!d || d->check(L) || d->infer(L, in, &out)) {
        fprintf(stderr, "check/infer: %s\n", ductile_last_error());
        goto out;
    }
    CHECK(out.rank == 4 && out.dims[3] == c->dv && out.dims[bshd ? 1 : 2] == c->s && out.dims[bshd ? 2 : 1] == c->h);
    out.data = y;
    for (int64_t i = 0; i < ny; i++) y[i] = NAN;
    if (run1("FusedAttention", L, in, &out, pool)) {
        fprintf(stderr, "run: %s\n", ductile_last_error());
        goto out;
    }
    int64_t diff = -1;
    for (int64_t i = 0; i < ny && diff < 0; i++) {
        /* FILL_NAN_V: query row of element i (bshd: [b, s, h, dv], else [b, h, s, dv]) */
        int64_t row = bshd ? i / (c->dv * c->h) % c->s : i / c->dv % c->s;
        bool nan_ok = c->fill == FILL_NAN_V && row >= 8 && isnan(y[i]);
        if (memcmp(&y[i], &want[i], sizeof(float)) && !nan_ok) diff = i;
    }
    if (c->fill == FILL_NAN_V && !isnan(y[ny - 1])) diff = ny - 1;   /* the row that sees the NaN key */
    ok = diff < 0;
    if (!ok)
        fprintf(stderr, "case b%lld h%lld s%lld d%lld l%lld dv%lld mask %d layout '%s' pool %d: first difference at %lld: %.9g vs %.9g\n",
                (long long)c->b, (long long)c->h, (long long)c->s, (long long)c->d, (long long)c->l, (long long)c->dv,
                c->mask, layout_names[layout], pool != NULL, (long long)diff, (double)y[diff], (double)want[diff]);
out:
    free(q), free(kt), free(v), free(mask), free(y), free(want);
    free(qp), free(kp), free(vp), free(yl);
    return ok;
}

static void test_fused_attention_equals_unfused_kernels(dt_pool *pool)
{
    int bad = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int layout = 0; layout < LAYOUTS; layout++) bad += !run_case(&cases[c], layout, pool);
    CHECK_EQ_INT(bad, 0);
}

static void test_fused_attention_refusals(void)
{
    new_net();
    int64_t qd[4] = {2, 3, 5, 8}, kd[4] = {2, 3, 8, 7}, vd[4] = {2, 3, 6, 4}, md[4] = {2, 1, 2, 7};
    ductile_layer *L = layer("FusedAttention", 4, 0);
    L->domain = "ductile";
    L->in[0] = tensor(4, qd, NULL), L->in[1] = tensor(4, kd, NULL), L->in[2] = tensor(4, vd, NULL);
    L->in[3] = tensor(4, md, NULL);
    const dt_opdef *d = NULL;
    for (const dt_opdef *e = dt_ops_fused; e->op_type; e++)
        if (!strcmp(e->op_type, "FusedAttention")) d = e;
    CHECK(d != NULL);
    if (!d) return;
    dt_view in[4] = {view(4, qd, NULL, DUCTILE_FLOAT32), view(4, kd, NULL, DUCTILE_FLOAT32),
                     view(4, vd, NULL, DUCTILE_FLOAT32), view(4, md, NULL, DUCTILE_FLOAT32)},
           out;
    CHECK_EQ_INT(d->infer(L, in, &out), DUCTILE_ERR_SHAPE);
    CHECK_EQ_STR(ductile_last_error(), "input 2 (V) has 6 rows; Kt has 7 keys");
    in[2].dims[2] = 7;
    CHECK_EQ_INT(d->infer(L, in, &out), DUCTILE_ERR_SHAPE);
    CHECK_EQ_STR(ductile_last_error(), "input 3 (mask) of shape [2,1,2,7] does not broadcast to the scores");
    in[3].dims[2] = 5;
    in[1].dims[0] = 1;
    CHECK_EQ_INT(d->infer(L, in, &out), DUCTILE_ERR_SHAPE);
    CHECK_EQ_STR(ductile_last_error(), "dim 0: Q has 2, Kt 1 and V 2; the batch dims must be equal");
    in[1].dims[0] = 2;
    CHECK_EQ_INT(d->infer(L, in, &out), DUCTILE_OK);
    CHECK(out.rank == 4 && out.dims[0] == 2 && out.dims[1] == 3 && out.dims[2] == 5 && out.dims[3] == 4);
}

/* ---- the pass ---- */

typedef struct chain {
    int softmax_axis;       /* 0: default (-1) */
    float where_value;      /* the Where's constant for NaN (fuses only as 0) */
    bool no_nan_fix;        /* Softmax read by the MatMul directly */
    bool mask_grows;        /* a mask of rank 5 broadcasts the scores up */
    bool v_broadcasts;      /* V [1, H, L, Dv] against Q [B, H, S, D] */
    bool scores_output;     /* the scores are a network output too */
    int opset;              /* Softmax's; 0: 13 */
    bool half;              /* float16 constants, no dtype known otherwise */
    bool k_rows;            /* Kt = Transpose(K [2, 4, 5, 8], perm 0 1 3 2), as Hugging Face's decoders */
} chain;

static ductile_tensor *k_in;
static ductile_layer *k_tr;

static ductile_layer *mq, *mk, *mm1, *add, *sm, *isn, *wh, *mm2, *after;
static ductile_tensor *q, *kt, *v, *mask;

static void set_int(ductile_layer *L, const char *name, int64_t v)
{
    L->attrs[L->n_attr++] = (dt_attr){.name = name, .type = DT_ATTR_INT, .i = v};
}

static void build_chain(const chain *c)
{
    static float scale = 0.35f, wv;
    wv = c->where_value;
    new_net();
    int64_t qd[4] = {2, 4, 5, 8}, kd[4] = {2, 4, 8, 5}, vd[4] = {c->v_broadcasts ? 1 : 2, 4, 5, 8},
            sd[4] = {2, 4, 5, 5}, md[5] = {1, 2, 1, 1, 5}, yd[4] = {2, 4, 5, 8};
    q = tensor(4, qd, NULL), kt = tensor(4, kd, NULL), v = tensor(4, vd, NULL);
    mask = c->mask_grows ? tensor(5, md, NULL) : tensor(4, md + 1, NULL);
    k_in = kt, k_tr = NULL;
    if (c->k_rows) {
        int64_t kr[4] = {2, 4, 5, 8};
        static const int64_t p0132[4] = {0, 1, 3, 2};
        k_in = tensor(4, kr, NULL);
        k_tr = layer("Transpose", 1, 1);
        k_tr->attrs[k_tr->n_attr++] = (dt_attr){.name = "perm", .type = DT_ATTR_INTS, .n = 4, .ints = p0132};
        k_tr->in[0] = k_in, k_tr->out[0] = kt;
    }
    dt_network_add_input(net, q), dt_network_add_input(net, k_in), dt_network_add_input(net, v);
    dt_network_add_input(net, mask);
    mq = layer("Mul", 2, 0), mq->in[0] = q, mq->in[1] = tensor(0, NULL, &scale), mq->out[0] = tensor(4, qd, NULL);
    mk = layer("Mul", 2, 0), mk->in[0] = kt, mk->in[1] = tensor(0, NULL, &scale), mk->out[0] = tensor(4, kd, NULL);
    mm1 = layer("MatMul", 2, 0), mm1->in[0] = mq->out[0], mm1->in[1] = mk->out[0], mm1->out[0] = tensor(4, sd, NULL);
    int64_t grown[5] = {1, 2, 4, 5, 5};
    add = layer("Add", 2, 0), add->in[0] = mm1->out[0], add->in[1] = mask;
    add->out[0] = c->mask_grows ? tensor(5, grown, NULL) : tensor(4, sd, NULL);
    sm = layer("Softmax", 1, 1), sm->in[0] = add->out[0], sm->out[0] = tensor(add->out[0]->rank, add->out[0]->dims, NULL);
    sm->opset = c->opset ? c->opset : 13;
    if (c->softmax_axis) set_int(sm, "axis", c->softmax_axis);
    ductile_tensor *p = sm->out[0];
    isn = wh = NULL;
    if (!c->no_nan_fix) {
        isn = layer("IsNaN", 1, 0), isn->in[0] = p, isn->out[0] = tensor(p->rank, p->dims, NULL);
        isn->out[0]->dtype = DUCTILE_BOOL;
        wh = layer("Where", 3, 0), wh->in[0] = isn->out[0], wh->in[1] = tensor(1, (int64_t[]){1}, &wv), wh->in[2] = p;
        wh->out[0] = tensor(p->rank, p->dims, NULL);
        p = wh->out[0];
    }
    mm2 = layer("MatMul", 2, 0), mm2->in[0] = p, mm2->in[1] = v, mm2->out[0] = tensor(4, yd, NULL);
    after = layer("Relu", 1, 0), after->in[0] = mm2->out[0], after->out[0] = tensor(4, yd, NULL);
    dt_network_add_output(net, after->out[0]);
    if (c->scores_output) dt_network_add_output(net, mm1->out[0]);
    /* A float16 model as the pass may see it: constants float16, activations without a
     * dtype yet (the dtypes pass runs later). */
    if (c->half)
        for (int i = 0; i < net->n_tensors; i++)
            net->tensors[i]->dtype = net->tensors[i]->data ? DUCTILE_FLOAT16 : DUCTILE_UNDEFINED;
}

static void test_pass_fuses_attention_chain(void)
{
    build_chain(&(chain){0});
    ductile_tensor *y = mm2->out[0];
    CHECK_EQ_INT(dt_pass_fuse_for(net, dt_backend_host()), DUCTILE_OK);
    CHECK_EQ_INT(net->n_layers, 2);
    ductile_layer *F = net->layers[0];
    CHECK_EQ_STR(F->op_type, "FusedAttention");
    CHECK_EQ_STR(F->domain, "ductile");
    CHECK_EQ_INT(F->n_in, 4);
    CHECK(F->in[DT_FA_Q] == q && F->in[DT_FA_KT] == kt && F->in[DT_FA_V] == v && F->in[DT_FA_MASK] == mask);
    CHECK(F->out[0] == y && y->producer == F);
    CHECK(dt_attr_float(F, "q_scale", 0) == 0.35f && dt_attr_float(F, "k_scale", 0) == 0.35f);
    CHECK_EQ_INT((int)dt_attr_int(F, "nan_to_zero", -1), 1);
    CHECK(net->layers[1] == after);

    build_chain(&(chain){.no_nan_fix = true});
    CHECK_EQ_INT(dt_pass_fuse_for(net, dt_backend_host()), DUCTILE_OK);
    CHECK_EQ_INT(net->n_layers, 2);
    CHECK_EQ_INT((int)dt_attr_int(net->layers[0], "nan_to_zero", -1), 0);

    build_chain(&(chain){.softmax_axis = 3});   /* the last axis by its index */
    CHECK_EQ_INT(dt_pass_fuse_for(net, dt_backend_host()), DUCTILE_OK);
    CHECK_EQ_INT(count_op("FusedAttention"), 1);

    /* K's Transpose to Kt is absorbed: layout "krows", K the input */
    build_chain(&(chain){.k_rows = true});
    CHECK_EQ_INT(dt_pass_fuse_for(net, dt_backend_host()), DUCTILE_OK);
    CHECK_EQ_INT(net->n_layers, 2);
    CHECK_EQ_INT(count_op("Transpose"), 0);
    F = net->layers[0];
    CHECK(F->in[DT_FA_KT] == k_in && F->in[DT_FA_Q] == q);
    CHECK_EQ_STR(dt_attr_string(F, "layout", "?"), "krows");
}

static ductile_layer *transpose(ductile_tensor *x, const int64_t *perm, const int64_t *out_dims)
{
    ductile_layer *T = layer("Transpose", 1, 1);
    T->attrs[T->n_attr++] = (dt_attr){.name = "perm", .type = DT_ATTR_INTS, .n = 4,
                                      .ints = dt_arena_memdup(&net->arena, perm, sizeof *perm * 4)};
    T->in[0] = x;
    T->out[0] = tensor(4, out_dims, NULL);
    return T;
}

/* BERT's heads: Q, K, V [B, S, H, D] transposed to [B, H, S, D] (K to [B, H, D, S]) before,
 * and the output transposed back after; out_perm: the output Transpose's perm. */
static void build_heads_chain(const int64_t *out_perm)
{
    enum { B = 2, S = 5, H = 3, D = 4 };
    new_net();
    int64_t src[4] = {B, S, H, D}, bhsd[4] = {B, H, S, D}, bhds[4] = {B, H, D, S}, sc[4] = {B, H, S, S},
            md[4] = {B, 1, 1, S}, ydims[4] = {out_perm[0] == 0 && out_perm[1] == 2 ? B : H, S, H, D};
    q = tensor(4, src, NULL), kt = tensor(4, src, NULL), v = tensor(4, src, NULL), mask = tensor(4, md, NULL);
    dt_network_add_input(net, q), dt_network_add_input(net, kt), dt_network_add_input(net, v);
    dt_network_add_input(net, mask);
    ductile_layer *tq = transpose(q, (int64_t[]){0, 2, 1, 3}, bhsd), *tk = transpose(kt, (int64_t[]){0, 2, 3, 1}, bhds),
                  *tv = transpose(v, (int64_t[]){0, 2, 1, 3}, bhsd);
    mm1 = layer("MatMul", 2, 0), mm1->in[0] = tq->out[0], mm1->in[1] = tk->out[0], mm1->out[0] = tensor(4, sc, NULL);
    /* unscaled, mask first, no NaN fix: each optional part absent */
    add = layer("Add", 2, 0), add->in[0] = mask, add->in[1] = mm1->out[0], add->out[0] = tensor(4, sc, NULL);
    sm = layer("Softmax", 1, 0), sm->in[0] = add->out[0], sm->out[0] = tensor(4, sc, NULL);
    sm->opset = 13;
    mm2 = layer("MatMul", 2, 0), mm2->in[0] = sm->out[0], mm2->in[1] = tv->out[0], mm2->out[0] = tensor(4, bhsd, NULL);
    ductile_layer *ty = transpose(mm2->out[0], out_perm, ydims);
    after = layer("Relu", 1, 0), after->in[0] = ty->out[0], after->out[0] = tensor(4, ydims, NULL);
    dt_network_add_output(net, after->out[0]);
}

static void test_pass_absorbs_the_heads_transposes(void)
{
    build_heads_chain((const int64_t[]){0, 2, 1, 3});
    ductile_tensor *y = after->in[0];
    CHECK_EQ_INT(dt_pass_fuse_for(net, dt_backend_host()), DUCTILE_OK);
    CHECK_EQ_INT(count_op("Transpose"), 0);
    CHECK_EQ_INT(count_op("FusedAttention"), 1);
    CHECK_EQ_INT(net->n_layers, 2);
    ductile_layer *F = net->layers[0];
    CHECK_EQ_STR(F->op_type, "FusedAttention");
    CHECK_EQ_STR(dt_attr_string(F, "layout", "?"), "bshd");
    CHECK(F->in[DT_FA_Q] == q && F->in[DT_FA_KT] == kt && F->in[DT_FA_V] == v && F->in[DT_FA_MASK] == mask);
    CHECK(F->out[0] == y);
    CHECK_EQ_INT((int)dt_attr_int(F, "nan_to_zero", -1), 0);
    CHECK(dt_attr_float(F, "q_scale", 0) == 1.0f && dt_attr_float(F, "k_scale", 0) == 1.0f);

    /* An output Transpose of another perm: the attention fuses, every Transpose stays. */
    build_heads_chain((const int64_t[]){1, 0, 2, 3});
    CHECK_EQ_INT(dt_pass_fuse_for(net, dt_backend_host()), DUCTILE_OK);
    CHECK_EQ_INT(count_op("FusedAttention"), 1);
    CHECK_EQ_INT(count_op("Transpose"), 4);
    for (int l = 0; l < net->n_layers; l++)
        if (!strcmp(net->layers[l]->op_type, "FusedAttention"))
            CHECK_EQ_STR(dt_attr_string(net->layers[l], "layout", "?"), "");
}

static void test_pass_leaves_attention_near_misses(void)
{
    const dt_backend *cpu = dt_backend_host();
    static const chain misses[] = {
        {.softmax_axis = 2},        /* not the last axis */
        {.where_value = 1.0f},      /* NaN made 1, not 0 */
        {.mask_grows = true},       /* the mask broadcasts the scores up a rank */
        {.v_broadcasts = true},     /* V shared over the batch: the kernel does not broadcast */
        {.scores_output = true},    /* the scores are read outside the chain */
        {.opset = 11},              /* Softmax before 13 flattens from the axis */
        {.half = true, .no_nan_fix = true},   /* float16: would fail to build if fused */
    };
    for (size_t i = 0; i < sizeof misses / sizeof misses[0]; i++) {
        build_chain(&misses[i]);
        int n = net->n_layers;
        CHECK_EQ_INT(dt_pass_fuse_for(net, cpu), DUCTILE_OK);
        if (count_op("FusedAttention") != 0) fprintf(stderr, "near miss %zu fused\n", i);
        CHECK_EQ_INT(count_op("FusedAttention"), 0);
        CHECK_EQ_INT(net->n_layers, n);
    }
    build_chain(&(chain){0});
    CHECK_EQ_INT(dt_pass_fuse(net), DUCTILE_OK);     /* no backend: no fusion */
    CHECK_EQ_INT(count_op("FusedAttention"), 0);
}

int main(void)
{
    refconv_rng = 0x243f6a8885a308d3ull;
    dt_network_new(&net);
    dt_pool *pool = NULL;
    dt_pool_create(2, &pool);
    test_fused_attention_equals_unfused_kernels(NULL);
    test_fused_attention_equals_unfused_kernels(pool);
    test_fused_attention_refusals();
    test_pass_fuses_attention_chain();
    test_pass_leaves_attention_near_misses();
    test_pass_absorbs_the_heads_transposes();
    dt_pool_free(pool);
    dt_network_delete(net);
    TEST_MAIN_END();
}
