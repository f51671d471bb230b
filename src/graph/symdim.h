/* Symbolic dims: a dim is an integer or an expression over named symbols ("batch", "height").
 *
 * Canonical normal form. An expression is a polynomial with int64 coefficients:
 *     c0 + k1*m1 + k2*m2 + ...
 * where each monomial m is a product of atoms (sorted, repeats allowed: h*h), and an atom is
 *   - a symbol (a dim name; symbols stand for dims, so they are >= 0),
 *   - floor(N/D): floor division kept opaque because it does not simplify,
 *   - min(A, B) or max(A, B).
 * Constructors normalize, so two expressions are equal exactly when their forms are equal
 * (dt_sd_equal): 3*h == h*3, h + h == 2*h, (2*h)/2 == h, floor((h + 2 - 3)/1) + 1 == h.
 * Ceil division is canonicalized into floor: ceil(a/k) = floor((a + k - 1)/k).
 * floor((k*q + r)/k) = q + floor(r/k) with the remainders of r's coefficients in [0, k) and
 * their common factor with k divided out, so floor((h - 1)/2) + 1 prints floor((h + 1)/2);
 * floor((floor(x/a) + c)/b) = floor((x + a*c)/(a*b)) folds nested strided convolutions.
 * min/max simplify when the difference of their arguments has a known sign.
 *
 * Printing (stable and readable; dt_sd_parse reads it back):
 *     terms by decreasing degree, then by atom order (symbols by name, then floor, min, max);
 *     the constant last; "3*height", "batch*seq", "2*h - 1", "floor((image_height + 1)/2)",
 *     "floor(h/2)", "min(seq, 512)".
 *
 * Memory: expressions are immutable and allocated from the context's arena; they live until
 * dt_symctx_release. Every constructor accepts NULL operands ("unknown") and then returns NULL;
 * it also returns NULL when the result would overflow int64 or grow past the size limits
 * below (an unknown dim, not an error) and on allocation failure, which sets ctx->oom. */
#ifndef DT_SYMDIM_H
#define DT_SYMDIM_H

#include "core/arena.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DT_SD_MAX_TERMS 24  /* terms of one polynomial */
#define DT_SD_MAX_ATOMS 8   /* atoms of one monomial */

typedef struct dt_symctx {
    dt_arena arena;
    bool oom;   /* an allocation failed: some results are NULL for that reason */
} dt_symctx;

typedef struct dt_sd dt_sd;

void dt_symctx_init(dt_symctx *c);
void dt_symctx_release(dt_symctx *c);

/* Leaves. dt_sd_sym copies the name. */
const dt_sd *dt_sd_const(dt_symctx *c, int64_t v);
const dt_sd *dt_sd_sym(dt_symctx *c, const char *name);

/* Arithmetic. */
const dt_sd *dt_sd_add(dt_symctx *c, const dt_sd *a, const dt_sd *b);
const dt_sd *dt_sd_sub(dt_symctx *c, const dt_sd *a, const dt_sd *b);
const dt_sd *dt_sd_mul(dt_symctx *c, const dt_sd *a, const dt_sd *b);
const dt_sd *dt_sd_add_const(dt_symctx *c, const dt_sd *a, int64_t k);
const dt_sd *dt_sd_mul_const(dt_symctx *c, const dt_sd *a, int64_t k);
/* floor(a/b) and ceil(a/b) (mathematical, rounding toward -inf / +inf). A constant divisor of
 * 0 gives NULL. A non-constant divisor divides exactly when it is one monomial dividing every
 * term (batch*seq*256 / (batch*seq*64) == 4); otherwise the quotient stays an opaque atom. */
const dt_sd *dt_sd_floordiv(dt_symctx *c, const dt_sd *a, const dt_sd *b);
const dt_sd *dt_sd_ceildiv(dt_symctx *c, const dt_sd *a, const dt_sd *b);
const dt_sd *dt_sd_min(dt_symctx *c, const dt_sd *a, const dt_sd *b);
const dt_sd *dt_sd_max(dt_symctx *c, const dt_sd *a, const dt_sd *b);

/* Queries. NULL is unknown: not constant, not equal to anything, not known >= 0. */
bool dt_sd_is_const(const dt_sd *a, int64_t *v);
bool dt_sd_equal(const dt_sd *a, const dt_sd *b);
/* A total order on canonical forms (NULL first); 0 exactly when equal. */
int dt_sd_cmp(const dt_sd *a, const dt_sd *b);
/* True when a >= 0 for every value of its symbols (all symbols are >= 0). */
bool dt_sd_nonneg(const dt_sd *a);
/* When a is min(x, y) (one atom, coefficient 1, no constant): its arguments. */
bool dt_sd_as_min(const dt_sd *a, const dt_sd **x, const dt_sd **y);

/* Evaluates a with symbol values from lookup (returns false for an unknown symbol). False on
 * an unknown symbol, overflow or division by zero. */
typedef bool (*dt_sd_lookup)(void *arg, const char *name, int64_t *value);
bool dt_sd_eval(const dt_sd *a, dt_sd_lookup lookup, void *arg, int64_t *out);

/* Prints the canonical form into buf (always NUL-terminated when cap > 0). Returns false when
 * a is NULL or the text does not fit. */
bool dt_sd_print(const dt_sd *a, char *buf, size_t cap);
/* Reads the printed form back (identifiers are [A-Za-z_][A-Za-z0-9_.]*; floor(N/D), min(A, B),
 * max(A, B), + - *, parentheses, integers). NULL when the text is not such an expression. */
const dt_sd *dt_sd_parse(dt_symctx *c, const char *text);

#endif
