/* Ops on string tensors (ONNX's StringNormalizer, StringConcat, StringSplit, RegexFullMatch and
 * ai.onnx.ml's LabelEncoder), and the rule of which ops take strings at all. The kernels are
 * the CPU's (backend/cpu/strings.c); these are the rules infer and the kernels share. */
#ifndef DT_OPS_STRINGS_H
#define DT_OPS_STRINGS_H

#include "ops/op.h"

#include <locale.h>
#include <stdbool.h>
#include <stddef.h>

/* Every op that reads or writes a string tensor is on a list (ops/strings.c): data movement
 * (Identity, Reshape, Gather, Concat, ...), Equal, Cast and the string ops. For another op,
 * DUCTILE_ERR_UNSUPPORTED naming the first string input or output ("input 0 ('x') has dtype
 * string; Add does not take strings"). The plan runs it on every layer, so no numeric kernel
 * ever sees a string view. */
ductile_status dt_strings_check_layer(const ductile_layer *L);
/* Cast and CastLike with a string side: DUCTILE_ERR_UNSUPPORTED unless the other side is
 * float16/32/64, an integer type, bool or string ("Cast from bfloat16 to string is not
 * supported (...)"). */
ductile_status dt_strings_cast_pair(int from, int to);
/* Whether the layer makes string bytes at run time (StringConcat, StringNormalizer, Cast to
 * string): such layers need a context's string arena, so they are neither folded at build
 * time nor run in the shape pass. */
bool dt_strings_makes_bytes(const ductile_layer *L);

/* The C.UTF-8 locale (made once), or (locale_t)0 where the C library lacks it: the Unicode
 * tables of case changes and the multibyte rules RegexFullMatch runs under. */
locale_t dt_strings_utf8_locale(void);
/* The byte offset of the first invalid UTF-8 sequence in s (overlong, surrogate, beyond
 * U+10FFFF, truncated), or SIZE_MAX when s is valid. */
size_t dt_utf8_invalid_at(ductile_string s);

/* RegexFullMatch: the RE2 pattern as a POSIX extended expression anchored at both ends
 * (glibc's regcomp, with its \w \W \s \S \b \B), into buf[cap]. DUCTILE_ERR_UNSUPPORTED naming
 * the byte offset and the construct RE2 has and POSIX lacks ("(?i)", "\p{L}", "\A"). */
ductile_status dt_regex_to_posix(const char *re2, char *buf, size_t cap);

/* StringSplit's rule: the pieces of s (Python's str.split(delimiter, maxsplit); delimiter
 * NULL or "": runs of whitespace, ends stripped), except where onnxruntime differs and ONNX's
 * text leaves it open: "" has no pieces with any delimiter (numpy's reference: one), and the
 * rest after maxsplit whitespace splits loses its trailing whitespace. Writes at most cap pieces into out (may be
 * NULL) and returns how many there are. */
int64_t dt_string_split(ductile_string s, const char *delim, size_t dlen, int64_t maxsplit,
                        ductile_string *out, int64_t cap);

/* StringNormalizer's attributes, read once. */
typedef struct dt_strnorm_attrs {
    int action;                /* 0 NONE, 1 LOWER, 2 UPPER */
    bool case_sensitive;
    int64_t n_stop;
    const char *const *stop;   /* the layer's stopwords (NUL-terminated) */
} dt_strnorm_attrs;
ductile_status dt_strnorm_attrs_read(const ductile_layer *L, dt_strnorm_attrs *a);
/* Whether s is a stopword. Without case sensitivity both sides are compared case-folded
 * (ASCII and the code points towlower maps). */
bool dt_strnorm_is_stop(const dt_strnorm_attrs *a, ductile_string s);
/* The case change of s (UTF-8) into out (room for 4 * s.length bytes); returns the length, or
 * -1 with *bad set to the byte offset of invalid UTF-8. */
int64_t dt_strnorm_case(int action, ductile_string s, char *out, size_t *bad);

#endif
