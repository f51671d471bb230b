/* Dim expressions in canonical normal form (see symdim.h): construction and simplification,
 * comparison, evaluation, printing and parsing. */
#include "graph/symdim.h"
#include "core/checked.h"

#include <stdio.h>
#include <string.h>

enum { A_SYM, A_FLOOR, A_MIN, A_MAX };   /* also the atom order used when printing */

typedef struct sd_atom {
    int kind;
    const char *name;      /* A_SYM */
    const dt_sd *a, *b;    /* A_FLOOR: a/b; A_MIN, A_MAX: arguments in order (see minmax) */
} sd_atom;

typedef struct sd_term {
    int64_t k;                              /* nonzero coefficient */
    int n;                                  /* degree, >= 1 */
    const sd_atom *f[DT_SD_MAX_ATOMS];      /* sorted by atom_cmp */
} sd_term;

struct dt_sd {
    int64_t c0;
    int n;
    sd_term t[];    /* sorted by mono_cmp, distinct monomials */
};

void dt_symctx_init(dt_symctx *c)
{
    dt_arena_init(&c->arena);
    c->oom = false;
}

void dt_symctx_release(dt_symctx *c) { dt_arena_release(&c->arena); }

static void *sd_alloc(dt_symctx *c, size_t size)
{
    void *p = dt_arena_alloc(&c->arena, size);
    if (!p) c->oom = true;
    return p;
}

/* ---- order --------------------------------------------------------------------------- */

static int i64cmp(int64_t a, int64_t b) { return (a > b) - (a < b); }

static int atom_cmp(const sd_atom *x, const sd_atom *y)
{
    if (x == y) return 0;
    if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1;
    if (x->kind == A_SYM) {
        int r = strcmp(x->name, y->name);
        return (r > 0) - (r < 0);
    }
    int r = dt_sd_cmp(x->a, y->a);
    return r ? r : dt_sd_cmp(x->b, y->b);
}

/* Higher degree first, then atoms in order: "h*w + 2*h + floor(h/2)". */
static int mono_cmp(const sd_term *x, const sd_term *y)
{
    if (x->n != y->n) return x->n > y->n ? -1 : 1;
    for (int i = 0; i < x->n; i++) {
        int r = atom_cmp(x->f[i], y->f[i]);
        if (r) return r;
    }
    return 0;
}

int dt_sd_cmp(const dt_sd *a, const dt_sd *b)
{
    if (a == b) return 0;
    if (!a || !b) return a ? 1 : -1;
    if (a->n != b->n) return a->n < b->n ? -1 : 1;
    for (int i = 0; i < a->n; i++) {
        int r = mono_cmp(&a->t[i], &b->t[i]);
        if (!r) r = i64cmp(a->t[i].k, b->t[i].k);
        if (r) return r;
    }
    return i64cmp(a->c0, b->c0);
}

bool dt_sd_equal(const dt_sd *a, const dt_sd *b) { return a && b && dt_sd_cmp(a, b) == 0; }

bool dt_sd_is_const(const dt_sd *a, int64_t *v)
{
    if (!a || a->n) return false;
    if (v) *v = a->c0;
    return true;
}

/* ---- building polynomials -------------------------------------------------------------- */

/* Terms collect here, equal monomials merged as they come; cancelled terms are dropped at the
 * end, so the buffer has room for twice the final limit. */
typedef struct sd_buf {
    int64_t c0;
    int n;
    bool bad;   /* overflow or too large: the result is unknown */
    sd_term t[2 * DT_SD_MAX_TERMS];
} sd_buf;

static void buf_init(sd_buf *b, int64_t c0)
{
    b->c0 = c0;
    b->n = 0;
    b->bad = false;
}

static void buf_add(sd_buf *b, int64_t k, const sd_term *m)
{
    if (!k || b->bad) return;
    for (int i = 0; i < b->n; i++)
        if (mono_cmp(&b->t[i], m) == 0) {
            if (!dt_add_i64(b->t[i].k, k, &b->t[i].k)) b->bad = true;
            return;
        }
    if (b->n == 2 * DT_SD_MAX_TERMS) {
        b->bad = true;
        return;
    }
    b->t[b->n] = *m;
    b->t[b->n++].k = k;
}

static void buf_add_c0(sd_buf *b, int64_t k)
{
    if (!dt_add_i64(b->c0, k, &b->c0)) b->bad = true;
}

static const dt_sd *buf_finish(dt_symctx *c, sd_buf *b)
{
    if (b->bad) return NULL;
    int n = 0;
    for (int i = 0; i < b->n; i++)
        if (b->t[i].k) b->t[n++] = b->t[i];
    if (n > DT_SD_MAX_TERMS) return NULL;
    for (int i = 1; i < n; i++) {   /* insertion sort: n is small */
        sd_term x = b->t[i];
        int j = i - 1;
        for (; j >= 0 && mono_cmp(&b->t[j], &x) > 0; j--) b->t[j + 1] = b->t[j];
        b->t[j + 1] = x;
    }
    dt_sd *r = sd_alloc(c, sizeof *r + (size_t)n * sizeof r->t[0]);
    if (!r) return NULL;
    r->c0 = b->c0;
    r->n = n;
    memcpy(r->t, b->t, (size_t)n * sizeof r->t[0]);
    return r;
}

const dt_sd *dt_sd_const(dt_symctx *c, int64_t v)
{
    dt_sd *r = sd_alloc(c, sizeof *r);
    if (r) r->c0 = v;
    return r;
}

static const dt_sd *from_atom(dt_symctx *c, int kind, const char *name, const dt_sd *a, const dt_sd *b)
{
    sd_atom *at = sd_alloc(c, sizeof *at);
    dt_sd *r = sd_alloc(c, sizeof *r + sizeof r->t[0]);
    if (!at || !r) return NULL;
    at->kind = kind;
    at->name = name;
    at->a = a;
    at->b = b;
    r->n = 1;
    r->t[0].k = 1;
    r->t[0].n = 1;
    r->t[0].f[0] = at;
    return r;
}

const dt_sd *dt_sd_sym(dt_symctx *c, const char *name)
{
    if (!name) return NULL;
    char *copy = dt_arena_strdup(&c->arena, name);
    if (!copy) {
        c->oom = true;
        return NULL;
    }
    return from_atom(c, A_SYM, copy, NULL, NULL);
}

const dt_sd *dt_sd_add(dt_symctx *c, const dt_sd *a, const dt_sd *b)
{
    if (!a || !b) return NULL;
    sd_buf buf;
    buf_init(&buf, a->c0);
    buf_add_c0(&buf, b->c0);
    for (int i = 0; i < a->n; i++) buf_add(&buf, a->t[i].k, &a->t[i]);
    for (int i = 0; i < b->n; i++) buf_add(&buf, b->t[i].k, &b->t[i]);
    return buf_finish(c, &buf);
}

const dt_sd *dt_sd_mul_const(dt_symctx *c, const dt_sd *a, int64_t k)
{
    if (!a) return NULL;
    sd_buf buf;
    buf_init(&buf, 0);
    if (!dt_mul_i64(a->c0, k, &buf.c0)) return NULL;
    for (int i = 0; i < a->n; i++) {
        int64_t p;
        if (!dt_mul_i64(a->t[i].k, k, &p)) return NULL;
        buf_add(&buf, p, &a->t[i]);
    }
    return buf_finish(c, &buf);
}

const dt_sd *dt_sd_sub(dt_symctx *c, const dt_sd *a, const dt_sd *b)
{
    return dt_sd_add(c, a, dt_sd_mul_const(c, b, -1));
}

const dt_sd *dt_sd_add_const(dt_symctx *c, const dt_sd *a, int64_t k)
{
    return dt_sd_add(c, a, dt_sd_const(c, k));
}

/* Product of two monomials: merge of two sorted atom lists. */
static bool mono_mul(const sd_term *x, const sd_term *y, sd_term *out)
{
    if (x->n + y->n > DT_SD_MAX_ATOMS) return false;
    int i = 0, j = 0;
    out->n = 0;
    while (i < x->n || j < y->n) {
        if (j >= y->n || (i < x->n && atom_cmp(x->f[i], y->f[j]) <= 0)) out->f[out->n++] = x->f[i++];
        else out->f[out->n++] = y->f[j++];
    }
    return true;
}

const dt_sd *dt_sd_mul(dt_symctx *c, const dt_sd *a, const dt_sd *b)
{
    if (!a || !b) return NULL;
    sd_buf buf;
    buf_init(&buf, 0);
    if (!dt_mul_i64(a->c0, b->c0, &buf.c0)) return NULL;
    for (int i = 0; i < a->n; i++) {
        int64_t p;
        if (!dt_mul_i64(a->t[i].k, b->c0, &p)) return NULL;
        buf_add(&buf, p, &a->t[i]);
    }
    for (int j = 0; j < b->n; j++) {
        int64_t p;
        if (!dt_mul_i64(b->t[j].k, a->c0, &p)) return NULL;
        buf_add(&buf, p, &b->t[j]);
    }
    for (int i = 0; i < a->n; i++)
        for (int j = 0; j < b->n; j++) {
            sd_term m;
            int64_t p;
            if (!mono_mul(&a->t[i], &b->t[j], &m) || !dt_mul_i64(a->t[i].k, b->t[j].k, &p)) return NULL;
            buf_add(&buf, p, &m);
        }
    return buf_finish(c, &buf);
}

/* ---- division -------------------------------------------------------------------------- */

/* a = k*q + r with r in [0, k), for k >= 2 (no step can overflow). */
static void divmod_i64(int64_t a, int64_t k, int64_t *q, int64_t *r)
{
    *q = a / k;
    *r = a % k;
    if (*r < 0) {
        *r += k;
        *q -= 1;
    }
}

static int64_t gcd_i64(int64_t a, int64_t b)
{
    if (a < 0) a = -a;
    if (b < 0) b = -b;
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static const dt_sd *floordiv_const(dt_symctx *c, const dt_sd *a, int64_t k)
{
    /* a is NULL when the caller's own arithmetic overflowed (ceil's a + k - 1, the nested
     * floor's a*c): the quotient is unknown too. */
    if (!a || k == 0 || k == INT64_MIN) return NULL;
    if (k < 0) {   /* floor(a/k) == floor(-a/-k) */
        a = dt_sd_mul_const(c, a, -1);
        k = -k;
        if (!a) return NULL;
    }
    if (k == 1) return a;
    /* a = k*q + r with every coefficient of r in [0, k): floor(a/k) = q + floor(r/k). */
    sd_buf q, r;
    int64_t qk, rk;
    divmod_i64(a->c0, k, &qk, &rk);
    buf_init(&q, qk);
    buf_init(&r, rk);
    for (int i = 0; i < a->n; i++) {
        divmod_i64(a->t[i].k, k, &qk, &rk);
        buf_add(&q, qk, &a->t[i]);
        buf_add(&r, rk, &a->t[i]);
    }
    const dt_sd *qp = buf_finish(c, &q);
    if (r.n == 0) return qp;    /* floor(r0/k) == 0 */
    int64_t g = gcd_i64(k, r.c0);
    for (int i = 0; i < r.n; i++) g = gcd_i64(g, r.t[i].k);
    k /= g;
    r.c0 /= g;
    for (int i = 0; i < r.n; i++) r.t[i].k /= g;
    const sd_atom *f = r.t[0].f[0];
    int64_t inner_k, m, den;
    if (r.n == 1 && r.t[0].k == 1 && r.t[0].n == 1 && f->kind == A_FLOOR &&
        dt_sd_is_const(f->b, &inner_k) && inner_k > 0 && dt_mul_i64(inner_k, r.c0, &m) &&
        dt_mul_i64(inner_k, k, &den)) {
        /* floor((floor(x/a) + c)/k) == floor((x + a*c)/(a*k)): strided layers in a row. */
        return dt_sd_add(c, qp, floordiv_const(c, dt_sd_add_const(c, f->a, m), den));
    }
    const dt_sd *rp = buf_finish(c, &r);
    const dt_sd *kp = dt_sd_const(c, k);
    if (!rp || !kp) return NULL;
    return dt_sd_add(c, qp, from_atom(c, A_FLOOR, NULL, rp, kp));
}

/* a / b when b is one monomial that divides every term of a exactly; else NULL. */
static const dt_sd *div_exact_mono(dt_symctx *c, const dt_sd *a, const dt_sd *b)
{
    if (b->n != 1 || b->c0 != 0 || a->c0 != 0) return NULL;
    const sd_term *d = &b->t[0];
    sd_buf buf;
    buf_init(&buf, 0);
    for (int i = 0; i < a->n; i++) {
        const sd_term *t = &a->t[i];
        if (d->k == -1 && t->k == INT64_MIN) return NULL;
        if (t->k % d->k) return NULL;
        sd_term m = {.n = 0};
        int j = 0;   /* remove d's atoms (a sorted sub-multiset) from t's */
        for (int s = 0; s < t->n; s++) {
            if (j < d->n && atom_cmp(t->f[s], d->f[j]) == 0) j++;
            else m.f[m.n++] = t->f[s];
        }
        if (j < d->n) return NULL;
        if (m.n == 0) buf_add_c0(&buf, t->k / d->k);
        else buf_add(&buf, t->k / d->k, &m);
    }
    return buf_finish(c, &buf);
}

const dt_sd *dt_sd_floordiv(dt_symctx *c, const dt_sd *a, const dt_sd *b)
{
    if (!a || !b) return NULL;
    int64_t k;
    if (dt_sd_is_const(b, &k)) return floordiv_const(c, a, k);
    if (dt_sd_is_const(a, &k) && k == 0) return a;
    if (dt_sd_equal(a, b)) return dt_sd_const(c, 1);    /* a divisor is taken to be nonzero */
    const dt_sd *q = div_exact_mono(c, a, b);
    if (q || c->oom) return q;
    return from_atom(c, A_FLOOR, NULL, a, b);
}

const dt_sd *dt_sd_ceildiv(dt_symctx *c, const dt_sd *a, const dt_sd *b)
{
    if (!a || !b) return NULL;
    int64_t k;
    int64_t av;
    if (dt_sd_is_const(b, &k) && k > 0) {
        /* A constant divides exactly; otherwise a + k - 1 may overflow (a slice step of
         * INT64_MAX), and the quotient is then unknown (NULL), never a crash. */
        if (dt_sd_is_const(a, &av)) return dt_sd_const(c, av / k + (av % k > 0));
        return floordiv_const(c, dt_sd_add_const(c, a, k - 1), k);
    }
    /* ceil(a/b) == -floor(-a/b) */
    return dt_sd_mul_const(c, dt_sd_floordiv(c, dt_sd_mul_const(c, a, -1), b), -1);
}

/* ---- sign, min, max -------------------------------------------------------------------- */

static bool atom_nonneg(const sd_atom *f)
{
    switch (f->kind) {
    case A_SYM: return true;
    case A_FLOOR: return dt_sd_nonneg(f->a) && dt_sd_nonneg(f->b);
    case A_MIN: return dt_sd_nonneg(f->a) && dt_sd_nonneg(f->b);
    default: return dt_sd_nonneg(f->a) || dt_sd_nonneg(f->b);
    }
}

bool dt_sd_nonneg(const dt_sd *a)
{
    if (!a || a->c0 < 0) return false;
    for (int i = 0; i < a->n; i++) {
        if (a->t[i].k < 0) return false;
        for (int j = 0; j < a->t[i].n; j++)
            if (!atom_nonneg(a->t[i].f[j])) return false;
    }
    return true;
}

static const dt_sd *minmax(dt_symctx *c, int kind, const dt_sd *a, const dt_sd *b)
{
    if (!a || !b) return NULL;
    if (dt_sd_equal(a, b)) return a;
    const dt_sd *d = dt_sd_sub(c, b, a);   /* b - a */
    if (d && dt_sd_nonneg(d)) return kind == A_MIN ? a : b;
    const dt_sd *nd = dt_sd_mul_const(c, d, -1);
    if (nd && dt_sd_nonneg(nd)) return kind == A_MIN ? b : a;
    if (c->oom) return NULL;
    /* Arguments in canonical order, constants last: "min(seq, 512)". */
    bool ka = dt_sd_is_const(a, NULL), kb = dt_sd_is_const(b, NULL);
    if (ka != kb ? ka : dt_sd_cmp(a, b) > 0) {
        const dt_sd *t = a;
        a = b;
        b = t;
    }
    return from_atom(c, kind, NULL, a, b);
}

const dt_sd *dt_sd_min(dt_symctx *c, const dt_sd *a, const dt_sd *b) { return minmax(c, A_MIN, a, b); }
const dt_sd *dt_sd_max(dt_symctx *c, const dt_sd *a, const dt_sd *b) { return minmax(c, A_MAX, a, b); }

bool dt_sd_as_min(const dt_sd *a, const dt_sd **x, const dt_sd **y)
{
    if (!a || a->n != 1 || a->c0 || a->t[0].k != 1 || a->t[0].n != 1 || a->t[0].f[0]->kind != A_MIN)
        return false;
    *x = a->t[0].f[0]->a;
    *y = a->t[0].f[0]->b;
    return true;
}

/* ---- evaluation ------------------------------------------------------------------------ */

static bool atom_eval(const sd_atom *f, dt_sd_lookup lookup, void *arg, int64_t *out)
{
    if (f->kind == A_SYM) return lookup && lookup(arg, f->name, out);
    int64_t x, y;
    if (!dt_sd_eval(f->a, lookup, arg, &x) || !dt_sd_eval(f->b, lookup, arg, &y)) return false;
    if (f->kind == A_MIN) *out = x < y ? x : y;
    else if (f->kind == A_MAX) *out = x > y ? x : y;
    else {
        if (y == 0 || (x == INT64_MIN && y == -1)) return false;
        int64_t q = x / y;
        *out = (x % y != 0 && ((x < 0) != (y < 0))) ? q - 1 : q;
    }
    return true;
}

bool dt_sd_eval(const dt_sd *a, dt_sd_lookup lookup, void *arg, int64_t *out)
{
    if (!a) return false;
    int64_t acc = a->c0;
    for (int i = 0; i < a->n; i++) {
        int64_t p = a->t[i].k, v;
        for (int j = 0; j < a->t[i].n; j++)
            if (!atom_eval(a->t[i].f[j], lookup, arg, &v) || !dt_mul_i64(p, v, &p)) return false;
        if (!dt_add_i64(acc, p, &acc)) return false;
    }
    *out = acc;
    return true;
}

/* ---- printing -------------------------------------------------------------------------- */

typedef struct sd_writer {
    char *buf;
    size_t cap, len;
    bool ok;
} sd_writer;

static void put(sd_writer *w, const char *s)
{
    size_t n = strlen(s);
    if (!w->ok || w->len + n >= w->cap) {
        w->ok = false;
        return;
    }
    memcpy(w->buf + w->len, s, n + 1);
    w->len += n;
}

static void put_u64(sd_writer *w, uint64_t v)
{
    char tmp[24];
    snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    put(w, tmp);
}

static uint64_t mag(int64_t v) { return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v; }

static void print_poly(sd_writer *w, const dt_sd *a);

/* Whether x needs no parentheses as a numerator ("h*w/2" reads as (h*w)/2) or denominator. */
static bool simple_num(const dt_sd *x) { return x->n == 0 ? x->c0 >= 0 : (x->n == 1 && !x->c0 && x->t[0].k == 1); }
static bool simple_den(const dt_sd *x) { return x->n == 0 ? x->c0 >= 0 : (simple_num(x) && x->t[0].n == 1); }

static void print_part(sd_writer *w, const dt_sd *x, bool simple)
{
    if (!simple) put(w, "(");
    print_poly(w, x);
    if (!simple) put(w, ")");
}

static void print_atom(sd_writer *w, const sd_atom *f)
{
    switch (f->kind) {
    case A_SYM: put(w, f->name); return;
    case A_FLOOR:
        put(w, "floor(");
        print_part(w, f->a, simple_num(f->a));
        put(w, "/");
        print_part(w, f->b, simple_den(f->b));
        put(w, ")");
        return;
    default:
        put(w, f->kind == A_MIN ? "min(" : "max(");
        print_poly(w, f->a);
        put(w, ", ");
        print_poly(w, f->b);
        put(w, ")");
    }
}

static void print_poly(sd_writer *w, const dt_sd *a)
{
    if (a->n == 0) {
        if (a->c0 < 0) put(w, "-");
        put_u64(w, mag(a->c0));
        return;
    }
    for (int i = 0; i < a->n; i++) {
        const sd_term *t = &a->t[i];
        put(w, i == 0 ? (t->k < 0 ? "-" : "") : (t->k < 0 ? " - " : " + "));
        if (mag(t->k) != 1) {
            put_u64(w, mag(t->k));
            put(w, "*");
        }
        for (int j = 0; j < t->n; j++) {
            if (j) put(w, "*");
            print_atom(w, t->f[j]);
        }
    }
    if (a->c0) {
        put(w, a->c0 < 0 ? " - " : " + ");
        put_u64(w, mag(a->c0));
    }
}

bool dt_sd_print(const dt_sd *a, char *buf, size_t cap)
{
    if (cap) buf[0] = 0;
    if (!a || !cap) return false;
    sd_writer w = {buf, cap, 0, true};
    print_poly(&w, a);
    if (!w.ok) buf[0] = 0;
    return w.ok;
}

/* ---- parsing --------------------------------------------------------------------------- */

typedef struct sd_parser {
    dt_symctx *c;
    const char *p;
    int depth;      /* bounds the recursion on hostile text */
    bool bad;
} sd_parser;

enum { SD_MAX_DEPTH = 64 };

static void skip_ws(sd_parser *s)
{
    while (*s->p == ' ' || *s->p == '\t') s->p++;
}

static bool accept(sd_parser *s, char ch)
{
    skip_ws(s);
    if (*s->p != ch) return false;
    s->p++;
    return true;
}

static bool is_id0(char ch) { return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_'; }
static bool is_id(char ch) { return is_id0(ch) || (ch >= '0' && ch <= '9') || ch == '.'; }

static const dt_sd *parse_expr(sd_parser *s);

static const dt_sd *parse_call(sd_parser *s, const char *name, size_t len)
{
    bool is_floor = len == 5 && !memcmp(name, "floor", 5);
    const dt_sd *a = parse_expr(s);
    if (!accept(s, is_floor ? '/' : ',')) {
        s->bad = true;
        return NULL;
    }
    const dt_sd *b = parse_expr(s);
    if (!accept(s, ')')) s->bad = true;
    if (s->bad) return NULL;
    if (is_floor) return dt_sd_floordiv(s->c, a, b);
    return name[1] == 'i' ? dt_sd_min(s->c, a, b) : dt_sd_max(s->c, a, b);
}

static const dt_sd *parse_factor(sd_parser *s)
{
    skip_ws(s);
    const char *p = s->p;
    if (*p >= '0' && *p <= '9') {
        int64_t v = 0;
        for (; *p >= '0' && *p <= '9'; p++)
            if (!dt_mul_i64(v, 10, &v) || !dt_add_i64(v, *p - '0', &v)) {
                s->bad = true;
                return NULL;
            }
        s->p = p;
        return dt_sd_const(s->c, v);
    }
    if (accept(s, '(')) {
        const dt_sd *e = parse_expr(s);
        if (!accept(s, ')')) s->bad = true;
        return e;
    }
    if (!is_id0(*p)) {
        s->bad = true;
        return NULL;
    }
    while (is_id(*p)) p++;
    const char *name = s->p;
    size_t len = (size_t)(p - name);
    s->p = p;
    bool fn = (len == 5 && !memcmp(name, "floor", 5)) || (len == 3 && (!memcmp(name, "min", 3) || !memcmp(name, "max", 3)));
    if (fn && accept(s, '(')) return parse_call(s, name, len);
    char *copy = dt_arena_strndup(&s->c->arena, name, len);
    if (!copy) {
        s->c->oom = true;
        return NULL;
    }
    return dt_sd_sym(s->c, copy);
}

static const dt_sd *parse_term(sd_parser *s)
{
    bool neg = accept(s, '-');
    const dt_sd *e = parse_factor(s);
    while (!s->bad && accept(s, '*')) e = dt_sd_mul(s->c, e, parse_factor(s));
    return neg ? dt_sd_mul_const(s->c, e, -1) : e;
}

static const dt_sd *parse_expr(sd_parser *s)
{
    if (++s->depth > SD_MAX_DEPTH) {
        s->bad = true;
        return NULL;
    }
    const dt_sd *e = parse_term(s);
    for (;;) {
        if (s->bad) break;
        if (accept(s, '+')) e = dt_sd_add(s->c, e, parse_term(s));
        else if (accept(s, '-')) e = dt_sd_sub(s->c, e, parse_term(s));
        else break;
    }
    s->depth--;
    return e;
}

const dt_sd *dt_sd_parse(dt_symctx *c, const char *text)
{
    if (!text) return NULL;
    sd_parser s = {c, text, 0, false};
    const dt_sd *e = parse_expr(&s);
    skip_ws(&s);
    return s.bad || *s.p ? NULL : e;
}
